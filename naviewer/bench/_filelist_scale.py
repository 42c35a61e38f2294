"""``naviewer bench workspace --file-list M``: opening and registering big ``path label`` lists.

A tree of real tiny images (1x1 PNGs, each a different colour, 1000 class folders) is made once;
lists of M lines point at them, and at hard links to them past ``--files`` lines, so every line is
a distinct path that the reader really checks on disk and the duplicate check collapses nothing.
Each phase runs in a fresh process (its own peak RSS):

- ``floor``: only imports the reader (the RSS floor);
- ``open`` / ``open_legacy``: ``FileListDataset(list)`` against :class:`LegacyFileList`, the reader
  as it was before issue 17 item 4 (kept verbatim below as the baseline);
- ``register`` / ``register_legacy``: ``Workspace.create`` over the first R lines with each reader
  (every image decoded and content-hashed: that part is inherent).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import warnings
import zlib
from pathlib import Path
from typing import Any, Optional

import numpy as np

from naviewer.bench._rss import peak_rss_mb as _peak_mb

CLASSES = 1000
_MARK = ".naviewer-bench-tree"


# -- the image tree ---------------------------------------------------------------------------
def _png(i: int) -> bytes:
    """A 1x1 RGB PNG whose colour encodes ``i`` (distinct up to 2**24 images)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    pixel = bytes((i & 255, (i >> 8) & 255, (i >> 16) & 255))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00" + pixel)) + chunk(b"IEND", b""))


def key_of(i: int, files: int) -> str:
    """The relative path of line ``i``: a real file below ``files``, past it a hard link to one."""
    name = "img" if i < files else "lnk"
    return f"train/c{i % CLASSES:04d}/{name}_{i:08d}.png"


def make_tree(root: Path, files: int, lines: int, report=print) -> None:  # noqa: ANN001
    """``files`` PNGs and ``lines - files`` hard links under ``root/train`` (reused when already there)."""
    mark = root / _MARK
    if mark.is_file() and json.loads(mark.read_text()) == {"files": files, "lines": lines}:
        report(f"  reusing the image tree in {root}")
        return
    need = files * 4200 + max(lines - files, 0) * 80 + (1 << 30)
    free = shutil.disk_usage(root).free
    if free < 2 * need:
        raise SystemExit(f"not enough free disk in {root}: {free / 1e9:.1f} GB free, ~{need / 1e9:.1f} GB needed "
                         "(x2 margin)")
    start = time.perf_counter()
    for c in range(min(CLASSES, max(files, lines))):
        (root / "train" / f"c{c:04d}").mkdir(parents=True, exist_ok=True)
    base = os.path.join(str(root), "")
    for i in range(files):
        try:
            with open(base + key_of(i, files), "xb") as handle:
                handle.write(_png(i))
        except FileExistsError:  # an interrupted earlier run
            pass
    for i in range(files, lines):
        try:
            os.link(base + key_of(i % files, files), base + key_of(i, files))
        except FileExistsError:
            pass
    mark.write_text(json.dumps({"files": files, "lines": lines}))
    report(f"  made {files:,} PNG files and {max(lines - files, 0):,} hard links in {time.perf_counter() - start:.0f} s")


def write_list(root: Path, lines: int, files: int) -> Path:
    path = root / f"list_{lines}.txt"
    if not path.is_file():
        tmp = path.with_suffix(".tmp")
        with open(tmp, "w", encoding="utf-8") as handle:
            step = 100_000
            for start in range(0, lines, step):
                handle.write("".join(f"{key_of(i, files)} {i % CLASSES}\n" for i in range(start, min(lines, start + step))))
        os.replace(tmp, path)
    return path


# -- the reader as it was before issue 17 item 4 (the baseline) -------------------------------
_INT = re.compile(r"[+-]?[0-9]+")
_PATH_LABEL = re.compile(r"(.+?)[ \t]+([^ \t]+)", re.S)


class LegacyFileList:
    """The pre-item-4 ``FileListDataset`` + ``FileBackedDataset`` on a ``.txt`` list: the same per-line
    work (whole text split, ``Path.resolve`` + ``is_file`` per line) and the same objects kept per line
    (the parsed tuples, then a real ``Path``, a key ``str``, a label in a list, a ``first_line`` dict
    entry, and once an image is read a ``_sizes`` dict entry); error messages shortened, class names
    taken from the labels."""

    kind = "filelist"

    def __init__(self, list_path: "str | Path") -> None:
        from naviewer.data.base import UNLABELED
        from naviewer.data.names import bad_name_char, name_problem
        from naviewer.errors import NaviewerError

        list_path = Path(list_path).resolve()
        self.list_path = list_path
        root_path = list_path.parent
        root_abs = Path(os.path.abspath(root_path))
        root_real = root_path.resolve()
        text = list_path.read_text(encoding="utf-8-sig")
        rows = text.split("\n")
        if rows and rows[-1] == "":
            rows.pop()
        lines = [(n, r[:-1] if r.endswith("\r") else r) for n, r in enumerate(rows, start=1)]
        entries = []
        for number, raw in lines:
            line = raw.strip(" \t")
            if not line or line.startswith("#"):
                continue
            if bad_name_char(line.replace("\t", " ")) is not None:
                raise NaviewerError(f"line {number}: control character", list_path)
            match = _PATH_LABEL.fullmatch(line)
            if match is None:
                entries.append((number, line, None))
            elif _INT.fullmatch(match.group(2)) or not (root_abs / line).is_file():
                entries.append((number, match.group(1), match.group(2)))
            else:
                entries.append((number, line, None))
        del text, rows, lines
        paths: list = []
        keys: list = []
        labels: list = []
        first_line: dict = {}
        duplicates: list = []
        for number, text_, label_text in entries:
            label = UNLABELED if label_text is None else int(label_text)
            if name_problem(text_):
                raise NaviewerError(f"line {number}: bad name", list_path)
            given = Path(text_)
            candidate = given if given.is_absolute() else root_abs / given
            real = candidate.resolve()
            if not real.is_relative_to(root_real):
                raise NaviewerError(f"line {number}: outside", list_path)
            if not real.is_file():
                raise NaviewerError(f"line {number}: image not found", list_path)
            lexical = Path(os.path.normpath(candidate))
            key = (lexical.relative_to(root_abs) if lexical.is_relative_to(root_abs)
                   else real.relative_to(root_real)).as_posix()
            seen = first_line.get(real)
            if seen is not None:
                if seen[1] != label:
                    raise NaviewerError(f"line {number}: two labels", list_path)
                duplicates.append(f"line {number} (= line {seen[0]})")
                continue
            first_line[real] = (number, label)
            paths.append(real)
            keys.append(key)
            labels.append(label)
        self.duplicates = len(duplicates)
        self.root = root_real
        self._paths = list(paths)
        self._keys = list(keys)
        self._labels = np.asarray(labels, dtype=np.int64)
        self._class_names = [str(i) for i in range(int(self._labels.max()) + 1)]
        self._sizes: dict = {}
        self.max_pixels = 64_000_000
        # the old reader held these for the dataset's lifetime (entries until the constructor returned)
        self._first_line = first_line

    def __len__(self) -> int:
        return len(self._paths)

    @property
    def labels(self) -> np.ndarray:
        return self._labels

    @property
    def class_names(self) -> list:
        return self._class_names

    def source_key(self, index: int) -> str:
        return self._keys[index]

    def image(self, index: int) -> np.ndarray:
        from naviewer.data.imageio import load_image

        image = load_image(self._paths[index], self.max_pixels)
        self._sizes[int(index)] = (int(image.shape[0]), int(image.shape[1]))
        return image

    def content_hash(self, index: int) -> str:
        from naviewer.data.base import pixel_hash

        return pixel_hash(self.image(index))

    def describe(self) -> dict:
        return {"kind": self.kind, "path": str(self.list_path), "size": len(self)}


# -- the phases -------------------------------------------------------------------------------


def child(phase: str, list_path: str, scratch: str) -> dict:
    """One measured phase, in a fresh process; returns its figures."""
    out: dict[str, Any] = {"phase": phase}
    if phase == "floor":
        import naviewer.data.filelist  # noqa: F401
        import naviewer.workspace.workspace  # noqa: F401

        out["peak_mb"] = _peak_mb()
        return out
    from naviewer.data.filelist import FileListDataset

    reader = LegacyFileList if phase.endswith("_legacy") else FileListDataset
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = reader(list_path)
    out["open_seconds"] = time.perf_counter() - start
    out["samples"] = len(data)
    out["open_peak_mb"] = _peak_mb()
    if phase.startswith("register"):
        from naviewer.workspace.workspace import Workspace

        start = time.perf_counter()
        ws = Workspace.create(Path(scratch) / f"ws_{phase}", dataset=data)  # type: ignore[arg-type]
        out["register_seconds"] = time.perf_counter() - start
        out["registered"] = ws.store.sample_count()
        ws.close()
        shutil.rmtree(Path(scratch) / f"ws_{phase}", ignore_errors=True)
    out["peak_mb"] = _peak_mb()
    return out


def _run_child(phase: str, list_path: Path, scratch: Path) -> dict:
    code = ("import json, sys; from naviewer.bench._filelist_scale import child; "
            "print(json.dumps(child(sys.argv[1], sys.argv[2], sys.argv[3])))")
    done = subprocess.run([sys.executable, "-c", code, phase, str(list_path), str(scratch)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"bench child {phase} {list_path.name} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_file_lists(sizes: list, files: int, register: Optional[int], scratch: Optional[str], keep: bool,
                   baseline: bool = True, baseline_up_to: Optional[int] = None) -> dict:
    sizes = sorted(int(m) for m in sizes)
    files = max(1, min(int(files), sizes[-1]))
    register = min(sizes[0], 100_000) if register is None else min(int(register), sizes[-1])
    if scratch is not None:
        Path(scratch).mkdir(parents=True, exist_ok=True)
    tree = Path(scratch) / "filelist-tree" if keep and scratch else Path(tempfile.mkdtemp(dir=scratch))
    tree.mkdir(parents=True, exist_ok=True)
    figures: dict[str, Any] = {"bench": "workspace-file-list", "files": files, "rows": []}
    try:
        print(f"file lists over real images: {files:,} 1x1 PNG files in {CLASSES} folders, "
              "lines past them are hard links (distinct paths)", flush=True)
        make_tree(tree, files, sizes[-1], report=lambda text: print(text, flush=True))
        floor = _run_child("floor", tree, tree)["peak_mb"]
        figures["floor_mb"] = floor
        print(f"  import-only process: {floor:.0f} MB", flush=True)
        for m in sizes:
            listing = write_list(tree, m, files)
            row: dict[str, Any] = {"lines": m, "list_mb": listing.stat().st_size / 1e6}
            row["open"] = _run_child("open", listing, tree)
            if baseline and (baseline_up_to is None or m <= baseline_up_to):
                row["open_legacy"] = _run_child("open_legacy", listing, tree)
            figures["rows"].append(row)
            print(_format_open(row, floor), flush=True)
        if register:
            listing = write_list(tree, register, files)
            reg: dict[str, Any] = {"lines": register, "register": _run_child("register", listing, tree)}
            if baseline and (baseline_up_to is None or register <= baseline_up_to):
                reg["register_legacy"] = _run_child("register_legacy", listing, tree)
            figures["register"] = reg
            print(_format_register(reg), flush=True)
    finally:
        if not keep:
            shutil.rmtree(tree, ignore_errors=True)
    return figures


def _format_open(row: dict, floor: float) -> str:
    m, new = row["lines"], row["open"]
    text = (f"N = {m:,} lines (list {row['list_mb']:.0f} MB)\n"
            f"  open, compact keys      {new['open_seconds']:8.1f} s  peak {new['peak_mb']:7.0f} MB"
            f"  ({new['open_seconds'] / (m / 1e6):.1f} s per million lines)")
    if "open_legacy" in row:
        old = row["open_legacy"]
        text += (f"\n  open, old reader        {old['open_seconds']:8.1f} s  peak {old['peak_mb']:7.0f} MB"
                 f"  -> new/old: time x{new['open_seconds'] / old['open_seconds']:.2f}, peak above the import floor "
                 f"x{(new['peak_mb'] - floor) / max(old['peak_mb'] - floor, 1e-9):.2f}")
    return text


def _format_register(reg: dict) -> str:
    m, new = reg["lines"], reg["register"]
    per_m = lambda r: (r["open_seconds"] + r["register_seconds"]) / (m / 1e6)  # noqa: E731
    text = (f"register {m:,} lines (open + Workspace.create, every image decoded and hashed)\n"
            f"  compact keys            {new['open_seconds'] + new['register_seconds']:8.1f} s  peak "
            f"{new['peak_mb']:7.0f} MB  ({per_m(new):.0f} s per million)")
    if "register_legacy" in reg:
        old = reg["register_legacy"]
        text += (f"\n  old reader              {old['open_seconds'] + old['register_seconds']:8.1f} s  peak "
                 f"{old['peak_mb']:7.0f} MB  ({per_m(old):.0f} s per million)")
    return text


def main(args: argparse.Namespace) -> int:
    if any(int(m) <= 0 for m in args.file_list):
        print("--file-list: sizes must be positive", file=sys.stderr)
        return 2
    figures = run_file_lists(args.file_list, args.files, args.register, args.dir, args.keep,
                             baseline=not args.no_baseline, baseline_up_to=args.baseline_up_to)
    if getattr(args, "json", None):
        from naviewer.outputs import stamp

        Path(args.json).write_text(json.dumps(stamp(figures, "bench workspace"), indent=2))
    return 0
