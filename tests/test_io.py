"""Atomic writes: the target is either the old or the new complete file, never a partial one."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from naviewer.io import (
    atomic_path,
    atomic_save_npy,
    atomic_write_json,
    atomic_write_text,
    cleanup_stale_temps,
    temp_path_for,
)


def test_atomic_path_keeps_suffix_and_replaces(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "emb.npy"
    with atomic_path(target) as tmp:
        assert tmp.parent == target.parent and tmp.suffix == ".npy" and tmp.name.startswith(".")
        np.save(tmp, np.arange(3))  # np.save would append .npy to a name without it
    assert np.load(target).tolist() == [0, 1, 2]
    assert os.listdir(target.parent) == ["emb.npy"]


def test_failed_write_leaves_old_file_and_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "a.txt"
    atomic_write_text(target, "old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("boom")
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["a.txt"]


def test_json_and_npy_helpers(tmp_path: Path) -> None:
    atomic_write_json(tmp_path / "x.json", {"a": np.int64(1), "b": np.arange(2), "p": tmp_path})
    assert (tmp_path / "x.json").read_text().count("\n") > 1
    atomic_save_npy(tmp_path / "x.npy", np.ones((2, 2), np.float16))
    assert np.load(tmp_path / "x.npy", mmap_mode="r").dtype == np.float16
    with pytest.raises(TypeError):
        atomic_save_npy(tmp_path / "o.npy", np.array([object()]))
    assert not (tmp_path / "o.npy").exists()


def test_cleanup_removes_only_temps_of_dead_processes(tmp_path: Path) -> None:
    mine = temp_path_for(tmp_path / "kept.txt")
    mine.write_text("in progress")
    dead = tmp_path / ".kept.tmp-999999999-abcd1234.txt"
    dead.write_text("left by a killed process")
    other = tmp_path / "notes.txt"
    other.write_text("user file")
    assert cleanup_stale_temps(tmp_path) == [dead]
    assert mine.exists() and other.exists()


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")
def test_a_pipe_where_a_file_is_expected_is_refused_not_read(tmp_path):
    """A FIFO given as an image, an anchor-id file, a trigger or embeddings blocked the first read for ever."""
    from naviewer.analysis.embeddings import file_fingerprint
    from naviewer.attacks.triggers import load_trigger
    from naviewer.data.imageio import load_image
    from naviewer.errors import NaviewerError
    from naviewer.io import check_regular_file
    from naviewer.workflows.anchor_sources import parse_anchor_spec

    pipe = tmp_path / "pipe.png"
    os.mkfifo(pipe)
    for call in (lambda: load_image(pipe), lambda: load_trigger(pipe), lambda: file_fingerprint(pipe),
                 lambda: parse_anchor_spec(f"ids:@{pipe}")):
        with pytest.raises(NaviewerError, match="not a regular file"):
            call()
    with pytest.raises(NaviewerError, match="is a folder"):
        check_regular_file(tmp_path, "image")
    check_regular_file(tmp_path / "missing.png")  # missing: the caller says so in its own words


def test_a_write_that_fails_names_the_target_not_a_temporary_file(tmp_path: Path) -> None:
    """embed --out under ``ulimit -f`` said "File too large" alone, and a read-only folder named ".last-...tmp"
    (a sweep, session 19): the failing write is reported as the target's."""
    import errno

    import pytest

    from naviewer.io import atomic_path, describe_os_error

    target = tmp_path / "e.npy"
    with pytest.raises(OSError) as caught:
        with atomic_path(target) as tmp:
            with open(tmp, "wb") as handle:
                handle.write(b"x")
                raise OSError(errno.EFBIG, "File too large")
    assert caught.value.filename == str(target) and not target.exists()
    assert "ulimit -f" in describe_os_error(caught.value)
    with pytest.raises(OSError) as caught:
        with atomic_path(target) as tmp:
            raise PermissionError(errno.EACCES, "Permission denied", str(tmp))
    assert caught.value.filename == str(target)
    with pytest.raises(OSError) as caught:  # another file's failure keeps its own name
        with atomic_path(target):
            raise FileNotFoundError(errno.ENOENT, "No such file", str(tmp_path / "source.png"))
    assert caught.value.filename == str(tmp_path / "source.png")


def test_digits_names_the_demos_grey_16px_digits() -> None:
    """A newcomer typed --dataset digits (no such path), then got the tinted 32 px set from "demo", on which the demo's
    small encoder stays at 15 % kNN accuracy (session 22): "digits" is the demo's own data."""
    from naviewer.data.sources import has_split, is_builtin, open_dataset, peek_class_names

    digits, demo = open_dataset("digits"), open_dataset("Demo")
    assert digits.image_size(0) == (16, 16) and demo.image_size(0) == (32, 32)
    import numpy as np

    rgb = np.asarray(digits.image(0))
    assert rgb.ndim == 2 or np.array_equal(rgb[..., 0], rgb[..., 1])  # grey
    assert is_builtin(" digits ") and has_split("digits", "test") and peek_class_names("digits")[0] == "0"


def test_byte_sizes_read_in_the_unit_that_shows_them():
    """"they need 0.0 MiB, the disk has 0.0 MiB free" said nothing (a bad-input probe, session 27)."""
    from naviewer.io import byte_size

    assert byte_size(0) == "0 bytes" and byte_size(1) == "1 byte" and byte_size(1023) == "1,023 bytes"
    assert byte_size(6272) == "6.1 KiB" and byte_size(3 * 2**20) == "3.0 MiB" and byte_size(2.5 * 2**30) == "2.5 GiB"



def test_a_new_file_is_never_put_over_one_written_meanwhile(tmp_path):
    """Two `prune --out p.pt` started together both checked that p.pt did not exist, both wrote it, both said so, and
    one result was lost (a bad-input probe, session 28). With replace=False the second is refused and leaves the
    first's file and no temporary."""
    import pytest

    from naviewer.io import atomic_path

    target = tmp_path / "p.pt"
    with pytest.raises(FileExistsError):
        with atomic_path(target, replace=False) as tmp:
            tmp.write_text("second")
            target.write_text("first")  # another process got there first, after this one's check
    assert target.read_text() == "first"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.pt"]
    with atomic_path(tmp_path / "q.pt", replace=False) as tmp:  # a free name: put in place as usual
        tmp.write_text("only")
    assert (tmp_path / "q.pt").read_text() == "only" and len(list(tmp_path.iterdir())) == 2


def test_a_file_where_a_folder_belongs_is_named(tmp_path):
    """`WS/runs` a file read "naviewer: error: WS/runs: File exists" (a bad-input probe, session 28)."""
    import pytest

    from naviewer.errors import NaviewerError
    from naviewer.io import make_folder

    (tmp_path / "runs").write_text("x")
    with pytest.raises(NaviewerError) as caught:
        make_folder(tmp_path / "runs" / "r1")
    assert caught.value.path == str(tmp_path / "runs") and "a file where a folder belongs" in caught.value.message
    assert make_folder(tmp_path / "a" / "b").is_dir()


def test_a_message_of_millions_of_characters_is_said_shortened():
    """A 10-million-character value in workspace.toml made a 10 MB error line (a fuzz, session 34)."""
    from naviewer.errors import MESSAGE_LIMIT, NaviewerError

    error = NaviewerError("value = '" + "A" * 10_000_000 + "': write true or false", "ws/workspace.toml")
    assert len(error.message) <= MESSAGE_LIMIT
    assert error.message.startswith("value = 'AAA") and error.message.endswith("': write true or false")
    assert "characters left out" in error.message and str(error).startswith("ws/workspace.toml: ")
    assert NaviewerError("short").message == "short"
