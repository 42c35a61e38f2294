"""``path label`` file lists and CSV manifests.

**File lists** (the convention of the SSL-backdoor / PatchSearch research code): one sample per
line, ``<path> <int label>``. The label is the last whitespace-separated token, so paths may
contain spaces; a line with a single token, or whose whole text names an existing file, is an
unlabeled sample (label -1). Blank lines and lines starting with ``#`` are skipped.

**CSV manifests**: a header row with a ``path`` column (aliases ``file``, ``filename``,
``image``) and optionally a ``label`` column (alias ``target``); other columns are ignored, an
empty label means unlabeled.

In both, a label may be an integer (``-1`` = unlabeled) or, when class names are known, a class
name. Class names come from the ``class_names`` argument, else from ``classes.txt`` next to the
list (one name per line), else they are ``"0".."K-1"`` for the largest label K-1.

Paths are relative to ``root`` (default: the list file's folder). Absolute paths are accepted only
when they lie inside ``root``: the research lists use absolute paths, so pass ``root=/datasets``
to read them. Whatever resolves outside ``root`` (``..``, absolute paths, symlinks) is refused with
the list file and line number, so a manifest cannot make naviewer read arbitrary files.
"""

from __future__ import annotations

import csv
import os
import re
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from naviewer.data.base import UNLABELED
from naviewer.data.files import FileBackedDataset
from naviewer.data.imageio import DEFAULT_MAX_PIXELS
from naviewer.errors import NaviewerError

CLASSES_FILE = "classes.txt"
_INT = re.compile(r"[+-]?\d+")
_PATH_COLUMNS = ("path", "file", "filename", "image")
_LABEL_COLUMNS = ("label", "target")


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise NaviewerError("file not found", path) from None
    except IsADirectoryError:
        raise NaviewerError("expected a file, found a folder", path) from None
    except UnicodeDecodeError as exc:
        raise NaviewerError(f"not UTF-8 text (byte {exc.start})", path) from None
    except OSError as exc:
        raise NaviewerError(f"cannot read file: {exc.strerror or exc}", path) from None


def read_class_names(path: "str | Path") -> list[str]:
    """One class name per non-blank line."""
    path = Path(path)
    return [line.strip() for line in _read_text(path).splitlines() if line.strip()]


def _parse_txt(list_path: Path, root: Path) -> list[tuple[int, str, Optional[str]]]:
    """(line number, path text, label text or None) per sample line."""
    entries = []
    for number, raw in enumerate(_read_text(list_path).splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.rsplit(None, 1)
        if len(parts) == 1:
            entries.append((number, line, None))
        elif _INT.fullmatch(parts[1]) or not (root / line).is_file():
            entries.append((number, parts[0], parts[1]))
        else:  # a path with spaces and no label
            entries.append((number, line, None))
    return entries


def _parse_csv(list_path: Path) -> list[tuple[int, str, Optional[str]]]:
    text = _read_text(list_path)
    reader = csv.reader(text.splitlines())
    try:
        header = next(reader)
    except StopIteration:
        raise NaviewerError("CSV manifest is empty (expected a header with a 'path' column)", list_path) from None
    except csv.Error as exc:
        raise NaviewerError(f"line 1: malformed CSV: {exc}", list_path) from None
    columns = [name.strip().lower() for name in header]
    path_col = next((columns.index(c) for c in _PATH_COLUMNS if c in columns), None)
    if path_col is None:
        raise NaviewerError(f"CSV header {header!r} has no 'path' column", list_path)
    label_col = next((columns.index(c) for c in _LABEL_COLUMNS if c in columns), None)
    entries = []
    try:
        for row in reader:
            number = reader.line_num
            if not row or all(not cell.strip() for cell in row):
                continue
            if path_col >= len(row) or not row[path_col].strip():
                raise NaviewerError(f"line {number}: no path", list_path)
            label = row[label_col].strip() if label_col is not None and label_col < len(row) else ""
            entries.append((number, row[path_col].strip(), label or None))
    except csv.Error as exc:
        raise NaviewerError(f"line {reader.line_num}: malformed CSV: {exc}", list_path) from None
    return entries


class FileListDataset(FileBackedDataset):
    """Samples listed in a ``path label`` text file (``.txt`` etc.) or a CSV manifest (``.csv``)."""

    def __init__(
        self,
        list_path: "str | Path",
        root: "str | Path | None" = None,
        class_names: Optional[Sequence[str]] = None,
        max_pixels: int = DEFAULT_MAX_PIXELS,
    ) -> None:
        list_path = Path(list_path).resolve()
        self.list_path = list_path
        self.is_csv = list_path.suffix.lower() == ".csv"
        self.kind = "csv-manifest" if self.is_csv else "filelist"
        root_path = Path(root) if root is not None else list_path.parent
        if not root_path.is_dir():
            raise NaviewerError("dataset root is not a folder", root_path)
        root_abs = Path(os.path.abspath(root_path))
        root_real = root_path.resolve()
        self._given_root = root is not None
        self._given_names = list(class_names) if class_names is not None else None

        if class_names is not None:
            names: Optional[list[str]] = [str(c) for c in class_names]
        elif (list_path.parent / CLASSES_FILE).is_file() and list_path.name != CLASSES_FILE:
            names = read_class_names(list_path.parent / CLASSES_FILE)
        else:
            names = None
        name_to_index = {name: i for i, name in enumerate(names)} if names else {}

        entries = _parse_csv(list_path) if self.is_csv else _parse_txt(list_path, root_abs)
        if not entries:
            raise NaviewerError("the list has no samples", list_path)

        paths: list[Path] = []
        keys: list[str] = []
        labels = np.empty(len(entries), dtype=np.int64)
        for k, (number, text, label_text) in enumerate(entries):
            labels[k] = self._label(label_text, name_to_index, names, number, list_path)
            path, key = self._resolve(text, root_abs, root_real, number, list_path)
            paths.append(path)
            keys.append(key)
        if names is None:
            top = int(labels.max()) if len(labels) else -1
            names = [str(i) for i in range(top + 1)]
        super().__init__(root_real, paths, keys, labels, names, max_pixels)

    @staticmethod
    def _label(text: Optional[str], name_to_index: dict[str, int], names: Optional[list[str]], number: int,
               list_path: Path) -> int:
        if text is None:
            return UNLABELED
        if _INT.fullmatch(text):
            value = int(text)
        elif text in name_to_index:
            return name_to_index[text]
        else:
            hint = "" if names else " (no class names known: give class_names or a classes.txt)"
            raise NaviewerError(f"line {number}: label {text!r} is not an integer or a class name{hint}", list_path)
        if value == UNLABELED:
            return UNLABELED
        if value < 0 or (names is not None and value >= len(names)):
            top = f"0..{len(names) - 1}" if names is not None else "0 or more"
            raise NaviewerError(f"line {number}: label {value} is out of range ({top}, or -1 for unlabeled)", list_path)
        return value

    @staticmethod
    def _resolve(text: str, root_abs: Path, root_real: Path, number: int, list_path: Path) -> tuple[Path, str]:
        """Absolute file path and source key (posix path relative to the root), refusing escapes."""
        given = Path(text)
        candidate = given if given.is_absolute() else root_abs / given
        real = candidate.resolve()
        if not real.is_relative_to(root_real):
            raise NaviewerError(
                f"line {number}: path {text!r} is outside the dataset root {root_real} "
                "(absolute paths and '..' must stay inside it; give a wider root to allow it)",
                list_path,
            )
        if not real.is_file():
            raise NaviewerError(f"line {number}: image not found: {text!r}", list_path)
        lexical = Path(os.path.normpath(candidate))
        key = lexical.relative_to(root_abs) if lexical.is_relative_to(root_abs) else real.relative_to(root_real)
        return real, key.as_posix()

    def describe(self) -> dict[str, Any]:
        info: dict[str, Any] = {"kind": self.kind, "path": str(self.list_path), "size": len(self)}
        if self._given_root:
            info["root"] = str(self.root)
        if self._given_names is not None:
            info["class_names"] = list(self._given_names)
        if self.max_pixels != DEFAULT_MAX_PIXELS:
            info["max_pixels"] = self.max_pixels
        return info


def write_file_list(path: "str | Path", keys: Sequence[str], labels: "Sequence[int] | np.ndarray") -> Path:
    """Write a ``path label`` list (atomically: temporary name, then rename); the inverse of the reader."""
    path = Path(path)
    labels = np.asarray(labels, dtype=np.int64)
    if len(keys) != len(labels):
        raise ValueError(f"{len(keys)} paths but {len(labels)} labels")
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8", newline="\n") as handle:
        for key, label in zip(keys, labels):
            if "\n" in key:
                raise ValueError(f"path {key!r} contains a newline")
            handle.write(f"{key} {int(label)}\n")
    os.replace(tmp, path)
    return path
