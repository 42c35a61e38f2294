"""Another process holding the database locked: refused before the work, not after it."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from naviewer.errors import NaviewerError
from naviewer.workspace.store import WorkspaceStore


def test_a_database_locked_for_writing_is_refused_at_once(tmp_path: Path) -> None:
    """detect ran, waited 30 s without a word, then threw its pass away (a sweep, session 19)."""
    path = tmp_path / "naviewer.sqlite"
    store = WorkspaceStore(path, create=True)
    try:
        store.check_writable()  # free: nothing to say
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # another process's write in progress
        try:
            with pytest.raises(NaviewerError, match="locked for writing") as caught:
                store.check_writable(wait_s=0.2)
            assert caught.value.path == str(path)
        finally:
            other.execute("ROLLBACK")
            other.close()
        store.check_writable(wait_s=0.2)
    finally:
        store.close()


def test_a_database_replaced_by_a_folder_is_said_so(tmp_path: Path) -> None:
    (tmp_path / "naviewer.sqlite").mkdir()
    with pytest.raises(NaviewerError, match="is a folder"):
        WorkspaceStore(tmp_path / "naviewer.sqlite")


def test_an_exclusive_lock_at_open_is_said_as_a_lock_not_read_only(tmp_path: Path) -> None:
    """An exclusive lock held by a database browser read as "the workspace is open read-only" (a sweep, session 19)."""
    path = tmp_path / "naviewer.sqlite"
    WorkspaceStore(path, create=True).close()
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("PRAGMA locking_mode=EXCLUSIVE")
    other.execute("BEGIN EXCLUSIVE")
    try:
        try:
            store = WorkspaceStore(path, busy_timeout_s=0.2)
        except NaviewerError as exc:
            assert "locked" in exc.message and "read-only" not in exc.message
        else:  # the platform let it open: then it is not read-only either
            assert not store.read_only
            store.close()
    finally:
        other.execute("ROLLBACK")
        other.close()
