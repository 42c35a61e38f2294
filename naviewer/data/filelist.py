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

Lines are split at line feeds only (``\\r\\n`` accepted); a line or path holding any other control
character or a line separator (form feed, U+0085, U+2028...) is refused with its line number, so
no file name can add or split an entry (:mod:`naviewer.data.names`). The label is separated by
spaces or tabs. A file listed twice with the same label is kept once, with a ``DatasetWarning``;
with two different labels it is refused. Without class names, labels may imply at most
``MAX_CLASSES`` (100,000) classes: one stray ``10000000`` would otherwise build ten million names.

Paths are relative to ``root`` (default: the list file's folder). Absolute paths are accepted only
when they lie inside ``root``: the research lists use absolute paths, so pass ``root=/datasets``
to read them. Whatever resolves outside ``root`` (``..``, absolute paths, symlinks) is refused with
the list file and line number, so a manifest cannot make naviewer read arbitrary files.
"""

from __future__ import annotations

import csv
import io
import os
import warnings
import re
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from naviewer.data.base import UNLABELED, DatasetWarning
from naviewer.data.files import FileBackedDataset
from naviewer.data.imageio import DEFAULT_MAX_PIXELS
from naviewer.data.names import bad_name_char, describe_char, list_line_problem, name_problem, shown
from naviewer.errors import NaviewerError
from naviewer.io import atomic_path

CLASSES_FILE = "classes.txt"
_INT = re.compile(r"[+-]?[0-9]+")
#: most classes a list may imply by its labels alone (labels number the classes 0..K-1); ImageNet-21k has 21,841
MAX_CLASSES = 100_000
#: ``<path><spaces or tabs><last token>``: the label is the last token, the path may hold spaces
_PATH_LABEL = re.compile(r"(.+?)[ \t]+([^ \t]+)", re.S)
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


def _lines(text: str) -> "list[tuple[int, str]]":
    """(line number, text) of every line, split at line feeds only (``\\r\\n`` accepted).

    ``str.splitlines`` would also break at form feeds, U+0085 or U+2028 inside a file name and turn
    one entry into two; here such a character stays in its line, and the path check refuses it.
    """
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [(number, line[:-1] if line.endswith("\r") else line) for number, line in enumerate(lines, start=1)]


def _parse_txt(list_path: Path, root: Path) -> list[tuple[int, str, Optional[str]]]:
    """(line number, path text, label text or None) per sample line."""
    entries = []
    for number, raw in _lines(_read_text(list_path)):
        line = raw.strip(" \t")
        if not line or line.startswith("#"):
            continue
        bad = bad_name_char(line.replace("\t", " "))
        if bad is not None:
            raise NaviewerError(
                f"line {number}: {shown(line)} contains {describe_char(bad)}; a file name with a control character "
                "or line separator cannot be listed (rename the file)",
                list_path,
            )
        match = _PATH_LABEL.fullmatch(line)
        if match is None:
            entries.append((number, line, None))
        elif _INT.fullmatch(match.group(2)) or not _is_file(root / line):
            entries.append((number, match.group(1), match.group(2)))
        else:  # a path with spaces and no label
            entries.append((number, line, None))
    return entries


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except (OSError, ValueError):
        return False


def _parse_csv(list_path: Path) -> list[tuple[int, str, Optional[str]]]:
    text = _read_text(list_path)
    reader = csv.reader(io.StringIO(text, newline=""))
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
        labels: list[int] = []
        first_line: dict[Path, tuple[int, int]] = {}  # real path -> (line, label) where it was first listed
        duplicates: list[str] = []
        for number, text, label_text in entries:
            label = self._label(label_text, name_to_index, names, number, list_path)
            path, key = self._resolve(text, root_abs, root_real, number, list_path)
            seen = first_line.get(path)
            if seen is not None:
                if seen[1] != label:
                    raise NaviewerError(
                        f"line {number}: {shown(text)} is listed on line {seen[0]} with label "
                        f"{_label_text(seen[1])} and here with label {_label_text(label)}: a file carries one label",
                        list_path,
                    )
                duplicates.append(f"line {number} (= line {seen[0]})")
                continue
            first_line[path] = (number, label)
            paths.append(path)
            keys.append(key)
            labels.append(label)
        if duplicates:
            more = f" and {len(duplicates) - 5} more" if len(duplicates) > 5 else ""
            warnings.warn(
                f"{list_path}: {len(duplicates)} duplicate entr{'y' if len(duplicates) == 1 else 'ies'} ignored "
                f"(the first listing of each file is kept): {', '.join(duplicates[:5])}{more}",
                DatasetWarning,
                stacklevel=3,
            )
        #: how many listed lines repeated a file already listed (ignored)
        self.duplicates = len(duplicates)
        label_array = np.asarray(labels, dtype=np.int64)
        if names is None:
            names = [str(i) for i in range(int(label_array.max()) + 1 if len(label_array) else 0)]
        super().__init__(root_real, paths, keys, label_array, names, max_pixels)

    @staticmethod
    def _label(text: Optional[str], name_to_index: dict[str, int], names: Optional[list[str]], number: int,
               list_path: Path) -> int:
        if text is None:
            return UNLABELED
        if _INT.fullmatch(text):
            digits = text.lstrip("+-").lstrip("0")
            # int() of a 5000-digit string is refused by Python itself; anything this long is out of range anyway
            value = int(text) if len(digits) <= 18 else (-1 if text.startswith("-") else 1) * 10**18
        elif text in name_to_index:
            return name_to_index[text]
        else:
            hint = "" if names else " (no class names known: give class_names or a classes.txt)"
            raise NaviewerError(f"line {number}: label {shown(text)} is not an integer or a class name{hint}", list_path)
        if value == UNLABELED:
            return UNLABELED
        shown_label = text if len(text) <= 24 else text[:20] + f"... ({len(text)} digits)"
        if value < 0 or (names is not None and value >= len(names)):
            top = f"0..{len(names) - 1}" if names is not None else "0 or more"
            raise NaviewerError(f"line {number}: label {shown_label} is out of range ({top}, or -1 for unlabeled)",
                                list_path)
        if names is None and value >= MAX_CLASSES:
            count = f"{value + 1:,}" if value < 10**18 else f"more than {MAX_CLASSES:,}"
            raise NaviewerError(
                f"line {number}: label {shown_label} would make {count} classes (labels number the classes from 0; "
                f"at most {MAX_CLASSES:,} without class names): renumber the labels 0..K-1, or give the class "
                f"names in a {CLASSES_FILE} beside the list",
                list_path,
            )
        return value

    @staticmethod
    def _resolve(text: str, root_abs: Path, root_real: Path, number: int, list_path: Path) -> tuple[Path, str]:
        """Absolute file path and source key (posix path relative to the root), refusing escapes."""
        problem = name_problem(text)
        if problem:
            raise NaviewerError(f"line {number}: {problem} (rename the file)", list_path)
        given = Path(text)
        candidate = given if given.is_absolute() else root_abs / given
        try:
            real = candidate.resolve()
        except (OSError, RuntimeError) as exc:  # a symlink loop
            raise NaviewerError(f"line {number}: cannot resolve {shown(text)} ({exc})", list_path) from None
        if not real.is_relative_to(root_real):
            raise NaviewerError(
                f"line {number}: path {shown(text)} is outside the dataset root {root_real} "
                "(absolute paths and '..' must stay inside it; give a wider root to allow it)",
                list_path,
            )
        if not _is_file(real):
            raise NaviewerError(f"line {number}: image not found: {shown(text)}", list_path)
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


def _label_text(label: int) -> str:
    return "-1 (unlabeled)" if label == UNLABELED else str(label)


def write_file_list(path: "str | Path", keys: Sequence[str], labels: "Sequence[int] | np.ndarray") -> Path:
    """Write a ``path label`` list (atomically: temporary name, then rename); the inverse of the reader.

    Every path is checked before anything is written: one that would not read back as itself (a
    control character or line separator that would end the line and forge the next one, leading or
    trailing whitespace, a leading ``#``) is a NaviewerError naming the list and the entry.
    """
    path = Path(path)
    labels = np.asarray(labels, dtype=np.int64).reshape(-1)
    if len(keys) != len(labels):
        raise ValueError(f"{len(keys)} paths but {len(labels)} labels")
    keys = [str(key) for key in keys]
    for index, key in enumerate(keys):
        problem = list_line_problem(key)
        if problem:
            raise NaviewerError(f"entry {index} cannot be written as one 'path label' line: {problem}", path)
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8", newline="\n") as handle:
            handle.writelines(f"{key} {int(label)}\n" for key, label in zip(keys, labels.tolist()))
    return path
