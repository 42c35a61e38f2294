"""Damage a seeded fuzz of the workspace's files reached as tracebacks (session 34): one byte or one value, each said
as a damaged file naming it (exit 2 on the command line), never SQLite's, NumPy's or zipfile's own exception."""

from __future__ import annotations

import sqlite3
import struct
from pathlib import Path

import numpy as np
import pytest

from naviewer.errors import NaviewerError
from naviewer.workspace import WorkspaceStore


def _store(tmp_path: Path) -> Path:
    path = tmp_path / "s.sqlite"
    with WorkspaceStore(path, create=True) as store:
        store.add_samples(["k/0", "k/1"], ["0" * 32, "1" * 32], np.array([0, 1]))
        store.add_run("r", "train", {"a": 1})
        store.add_detection_pass("dift", {"flagged": np.array([True, False])}, {}, run="r", epoch=3)
    return path


def test_text_that_is_not_utf8_is_a_damaged_database(tmp_path):
    path = _store(tmp_path)
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE runs SET config_json = CAST(x'7b2261223a2022ff227d' AS TEXT)")
    with WorkspaceStore(path) as store, pytest.raises(NaviewerError, match="damaged: a text value is not UTF-8") as err:
        store.runs()
    assert str(err.value.path) == str(path)


def test_a_pass_epoch_of_text_is_a_damaged_database(tmp_path):
    path = _store(tmp_path)
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE detection_passes SET epoch = 'e'")
    with WorkspaceStore(path) as store, pytest.raises(NaviewerError, match="pass 1's epoch is 'e', not a whole number"):
        store.passes()


def _npy(tmp_path: Path, header_edit) -> Path:
    path = tmp_path / "e.npy"
    np.save(path, np.zeros((30, 64), np.float32))
    raw = path.read_bytes()
    n = struct.unpack("<H", raw[8:10])[0]
    path.write_bytes(raw[:10] + header_edit(raw[10:10 + n], n) + raw[10 + n:])
    return path


@pytest.mark.parametrize("edit, words", [
    (lambda h, n: h.replace(b"(30, 64)", b"(-1, 64)").ljust(n, b" ")[:n - 1] + b"\n", "impossible shape"),
    (lambda h, n: b"{'descr': <f4, shape: (" + b" " * (n - 24) + b"\n", "header does not parse"),
])
def test_an_npy_header_that_cannot_be_read_is_said(tmp_path, edit, words):
    from naviewer.gui.detect_dialog import embeddings_problem
    from naviewer.io import NPY_READ_ERRORS, npy_error_words

    path = _npy(tmp_path, edit)
    with pytest.raises(NPY_READ_ERRORS) as raised:
        np.load(path, mmap_mode="r", allow_pickle=False)
    assert words in npy_error_words(raised.value)
    assert words in embeddings_problem(path, 30)


def test_a_checkpoint_whose_zip_end_record_is_damaged_is_said(tmp_path):
    """One byte of the zip64 end record ("2 disks") raised zipfile's BadZipFile out of is_zipfile."""
    import zipfile

    from naviewer.io import sniff_checkpoint

    path = tmp_path / "last.pt"
    with zipfile.ZipFile(path, "w", allowZip64=True) as archive:
        archive.writestr("archive/data.pkl", b"x" * 100)
    raw = bytearray(path.read_bytes())
    # force a zip64 locator: append one by hand after the end record's own fields are read as zip64
    end = raw.rfind(b"PK\x05\x06")
    locator = b"PK\x06\x07" + struct.pack("<IQI", 0, end, 2)  # "total number of disks": 2
    path.write_bytes(bytes(raw[:end]) + locator + bytes(raw[end:]))
    assert "truncated or damaged" in (sniff_checkpoint(path) or "")
