"""Helpers shared by more than one test folder, under their own module name.

``tests/`` is on ``sys.path`` (the root conftest puts it there), so any test or folder kit can
``from common_kit import ...``; never import a conftest. Nothing here imports torch at module level.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Iterator


def one_torch_thread() -> Iterator[None]:
    """Fixture body (``pytest.fixture(autouse=True)(one_torch_thread)`` in a folder's conftest): torch on one
    thread for the test, the old count restored after."""
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def sigkill_after_line(code: str, *args: str, line: str) -> int:
    """Run ``python -c code args``; once it prints ``line``, SIGKILL it. The child's return code."""
    child = subprocess.Popen([sys.executable, "-c", code, *args], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == line
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    return child.returncode


def sql(database: Path, *statements: str, params: tuple = ()) -> None:
    """Run SQL statements on a workspace database behind naviewer's back (another tool's edit)."""
    conn = sqlite3.connect(database)
    try:
        for statement in statements:
            conn.execute(statement, params if "?" in statement else ())
        conn.commit()
    finally:
        conn.close()


def drop_review_check(database: Path) -> None:
    """The review table as a store made before the CHECK constraint: another tool can then write any state."""
    sql(database, "CREATE TABLE review_old(sample_id INTEGER PRIMARY KEY, state TEXT NOT NULL, reviewer TEXT NOT NULL, "
                  "time REAL NOT NULL)", "INSERT INTO review_old SELECT * FROM review", "DROP TABLE review",
        "ALTER TABLE review_old RENAME TO review")
