"""Helpers of the bad-input corpus: run a command, snapshot a folder, make tiny sources, checkpoints, workspaces.

Everything is generated at test time (no binary files in the repository). Each corpus case runs one
``naviewer`` command in-process (``naviewer.cli.main``: a traceback would escape it and fail the
test) and asserts the contract of issue 15: exit status 2, one line naming the file, no traceback,
nothing changed on disk.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Optional, Sequence

import numpy as np
import torch
from PIL import Image

from common_kit import drop_review_check, sql  # noqa: F401  (the corpus cases use them from here)

#: SQLite's transient companions: present only while a connection is open, never content
TRANSIENT_SUFFIXES = ("-wal", "-shm", "-journal")
TINY_TRAIN = ["--arch", "resnet10", "--width", "8", "--image-size", "16", "--batch-size", "8", "--threads", "1",
              "--warmup-epochs", "0", "--max-steps-per-epoch", "1"]


@dataclass
class Outcome:
    code: int
    out: str
    err: str


def run_cli(argv: Sequence[str]) -> Outcome:
    """``naviewer ARGV`` in this process, with its stdout and stderr captured."""
    from naviewer.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in argv])
    return Outcome(code, out.getvalue(), err.getvalue())


def snapshot(root: Path) -> dict[str, tuple[str, str]]:
    """Every entry under ``root``: its kind and content hash (link target for symlinks), by relative path."""
    entries: dict[str, tuple[str, str]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            rel = os.fsdecode(os.fsencode(path.relative_to(root)))
            if name.endswith(TRANSIENT_SUFFIXES):
                continue
            if path.is_symlink():
                entries[rel] = ("link", os.readlink(path))
            elif path.is_dir():
                entries[rel] = ("dir", "")
            else:
                entries[rel] = ("file", hashlib.sha256(path.read_bytes()).hexdigest())
    return entries


def error_line(outcome: Outcome) -> str:
    """The one ``naviewer: error:`` line of stderr (progress bars and warnings may precede it)."""
    lines = [line for line in outcome.err.splitlines() if line.startswith("naviewer: error:")]
    assert len(lines) == 1, f"expected one error line, got stderr:\n{outcome.err}"
    return lines[0]


def assert_refused(outcome: Outcome, names: "str | Path | Sequence[str | Path]", *words: str) -> str:
    """Exit 2, one error line naming the file (and saying ``words``), no traceback."""
    assert outcome.code == 2, f"exit {outcome.code}\nstdout:\n{outcome.out}\nstderr:\n{outcome.err}"
    assert "Traceback" not in outcome.err and "Traceback" not in outcome.out, outcome.err
    line = error_line(outcome)
    for name in [names] if isinstance(names, (str, Path)) else names:
        assert str(name) in line, f"{name} not named in: {line}"
    for word in words:
        assert word in line, f"{word!r} not in: {line}"
    return line


# -- sources ---------------------------------------------------------------------------------------------
def png_bytes(value: int = 0, size: int = 4) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.full((size, size, 3), value % 256, np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def write_image(path: Path, value: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(png_bytes(value))
    return path


def image_tree(root: Path, classes: Sequence[str] = ("a", "b"), per_class: int = 2) -> Path:
    for k, cls in enumerate(classes):
        for i in range(per_class):
            write_image(root / cls / f"{i}.png", 16 * k + i)
    return root


def file_list(root: Path, text: str, name: str = "list.txt", images: Sequence[str] = ("a.png", "b.png")) -> Path:
    for i, image in enumerate(images):
        write_image(root / image, 40 + i)
    path = root / name
    path.write_text(text, encoding="utf-8")
    return path


def cifar_folder(root: Path, batch: object = None, meta: object = None, raw_batch: Optional[bytes] = None) -> Path:
    """``root/cifar-10-batches-py`` with one training batch (``batch`` or a valid one) and a test batch."""
    import pickle

    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rows = np.zeros((2, 3072), np.uint8)
    good = {b"batch_label": b"x", b"labels": [0, 1], b"data": rows, b"filenames": [b"0.png", b"1.png"]}
    names = {b"label_names": [b"cat", b"dog"], b"num_cases_per_batch": 2}
    with open(folder / "batches.meta", "wb") as handle:
        pickle.dump(names if meta is None else meta, handle, protocol=2)
    if raw_batch is not None:
        (folder / "data_batch_1").write_bytes(raw_batch)
    else:
        with open(folder / "data_batch_1", "wb") as handle:
            pickle.dump(good if batch is None else batch, handle, protocol=2)
    with open(folder / "test_batch", "wb") as handle:
        pickle.dump(good, handle, protocol=2)
    return root


# -- checkpoints -----------------------------------------------------------------------------------------
def tiny_backbone_state() -> dict[str, torch.Tensor]:
    from naviewer.ssl.backbones import BackboneConfig, build_backbone

    torch.manual_seed(0)
    return build_backbone(BackboneConfig("resnet10", True, 8)).state_dict()


def naviewer_checkpoint(path: Path, state: dict[str, torch.Tensor], **changes: object) -> Path:
    payload: dict[str, object] = {
        "format": "naviewer-checkpoint", "version": 1,
        "method": {"method": "simclr", "backbone": {"arch": "resnet10", "cifar_stem": True, "width": 8}, "settings": {}},
        "config": {"image_size": 16}, "model": {"backbone." + k: v for k, v in state.items()},
    }
    payload.update(changes)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(payload, path)
    return path


# -- workspaces ------------------------------------------------------------------------------------------
def tiny_workspace(path: Path, n: int = 8, with_pass: bool = True) -> Path:
    """A workspace over a tiny on-disk image folder, with one detection pass and one decision."""
    from naviewer.data import open_dataset
    from naviewer.workspace import Workspace

    source = image_tree(path.parent / f"{path.name}-data", per_class=n // 2)
    with Workspace.create(path, open_dataset(source)) as ws:
        if with_pass:
            count = ws.store.sample_count()
            ws.store.add_detection_pass("dift", {"density": np.linspace(0, 1, count), "flagged": np.arange(count) < 2},
                                        {"k": 3})
            ws.store.set_review([0], "confirmed", "alice")
    return path


# -- read-only folders -----------------------------------------------------------------------------------
def read_only_runner() -> Optional[Callable[[Path, Sequence[str]], Outcome]]:
    """A way to run ``naviewer ARGV`` in a child process that sees ``folder`` read-only, or None.

    Not root: the folder's write bits are taken away for the run. Root ignores file modes, so there
    the child runs in its own mount namespace with a read-only bind mount (``unshare -m``), when the
    machine allows it.
    """
    if hasattr(os, "geteuid") and os.geteuid() != 0:
        return _run_chmod
    return _run_unshare if _can_mount() else None


def _can_mount() -> bool:
    """Root with a private mount namespace (``unshare -m``) and the right to mount a tmpfs in it."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0 or shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "-m", "sh", "-c", "d=$(mktemp -d) && mount -t tmpfs -o size=64k tmpfs $d "
                            "&& umount $d && rmdir $d"], capture_output=True)
    return probe.returncode == 0


def _child(argv: Sequence[str]) -> list[str]:
    return [sys.executable, "-m", "naviewer", *[str(a) for a in argv]]


def _run_chmod(folder: Path, argv: Sequence[str]) -> Outcome:
    modes = {}
    for dirpath, dirnames, filenames in os.walk(folder):
        for name in [*dirnames, *filenames, ""]:
            path = Path(dirpath) / name if name else Path(dirpath)
            modes[path] = path.stat().st_mode
    try:
        for path, mode in modes.items():
            path.chmod(mode & ~0o222)
        done = subprocess.run(_child(argv), capture_output=True, text=True, timeout=300)
    finally:
        for path, mode in sorted(modes.items(), key=lambda item: len(item[0].parts)):
            path.chmod(mode)
    return Outcome(done.returncode, done.stdout, done.stderr)


def _run_unshare(folder: Path, argv: Sequence[str]) -> Outcome:
    import shlex

    script = (f"mount --bind {shlex.quote(str(folder))} {shlex.quote(str(folder))} && "
              f"mount -o remount,bind,ro {shlex.quote(str(folder))} && exec " + shlex.join(_child(argv)))
    done = subprocess.run(["unshare", "-m", "sh", "-c", script], capture_output=True, text=True, timeout=300)
    return Outcome(done.returncode, done.stdout, done.stderr)


def tmpfs_runner() -> Optional[Callable[[Path, int, str], Outcome]]:
    """Run a shell snippet with a tiny tmpfs (a really full disk) mounted at a folder, or None if impossible."""
    if not _can_mount():
        return None

    def run(folder: Path, size_kib: int, script: str) -> Outcome:
        full = f"mount -t tmpfs -o size={size_kib}k tmpfs {folder} && {script}"
        done = subprocess.run(["unshare", "-m", "sh", "-c", full], capture_output=True, text=True, timeout=300,
                              env={**os.environ, "NAVIEWER_PY": sys.executable})
        return Outcome(done.returncode, done.stdout, done.stderr)

    return run


@contextlib.contextmanager
def unchanged(root: Path) -> Iterator[None]:
    """Assert that nothing under ``root`` changes inside the block."""
    before = snapshot(root)
    yield
    after = snapshot(root)
    added = sorted(set(after) - set(before))
    removed = sorted(set(before) - set(after))
    changed = sorted(k for k in set(before) & set(after) if before[k] != after[k])
    assert not (added or removed or changed), f"disk changed: added {added}, removed {removed}, changed {changed}"
