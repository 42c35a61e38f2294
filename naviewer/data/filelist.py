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

import bisect
import codecs
import contextlib
import csv
import os
import re
import stat
import warnings
from array import array
from pathlib import Path
from typing import Any, Iterable, Iterator, Optional, Sequence, TextIO

import numpy as np

from naviewer.data.base import UNLABELED, DatasetWarning
from naviewer.data.files import FileBackedDataset, KeyBuilder, RealKeys
from naviewer.data.imageio import DEFAULT_MAX_PIXELS
from naviewer.data.names import bad_name_char, describe_char, list_line_problem, name_problem, shown
from naviewer.errors import NaviewerError
from naviewer.io import atomic_path, json_loads

CLASSES_FILE = "classes.txt"
_INT = re.compile(r"[+-]?[0-9]+")
#: most classes a list may imply by its labels alone (labels number the classes 0..K-1); ImageNet-21k has 21,841
MAX_CLASSES = 100_000
#: ``<path><spaces or tabs><last token>``: the label is the last token, the path may hold spaces
_PATH_LABEL = re.compile(r"(.+?)[ \t]+([^ \t]+)", re.S)
_PATH_COLUMNS = ("path", "file", "filename", "image")
_LABEL_COLUMNS = ("label", "target")


def _os_error(exc: OSError, path: Path) -> NaviewerError:
    if isinstance(exc, FileNotFoundError):
        return NaviewerError("file not found", path)
    if isinstance(exc, IsADirectoryError):
        return NaviewerError("expected a file, found a folder", path)
    return NaviewerError(f"cannot read file: {exc.strerror or exc}", path)


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise NaviewerError(f"not UTF-8 text (byte {exc.start})", path) from None
    except OSError as exc:
        raise _os_error(exc, path) from None


def _check_text(path: Path) -> None:
    """Raise what :func:`_read_text` would, reading the file in 1 MB pieces (nothing of it is kept)."""
    decoder = codecs.getincrementaldecoder("utf-8-sig")()
    try:
        with open(path, "rb") as handle:
            while True:
                block = handle.read(1 << 20)
                decoder.decode(block, final=not block)
                if not block:
                    return
    except UnicodeDecodeError:
        _read_text(path)  # the message of a whole read (its byte offset counts past a BOM)
        raise NaviewerError("not UTF-8 text", path) from None
    except OSError as exc:
        raise _os_error(exc, path) from None


@contextlib.contextmanager
def _open_text(path: Path) -> Iterator[TextIO]:
    """The checked list, line by line: UTF-8 (a BOM dropped), ``\\r\\n`` and ``\\r`` read as ``\\n`` as
    ``Path.read_text`` reads them, so a streamed list splits into the lines the whole text did."""
    _check_text(path)
    try:
        handle = open(path, encoding="utf-8-sig")
    except OSError as exc:
        raise _os_error(exc, path) from None
    with handle:
        yield handle


def _is_comment(line: str) -> bool:
    return line == "#" or (line.startswith("#") and line[1:2].isspace())


def _export_record(list_path: Path) -> tuple[Optional[Path], str]:
    """(the dataset root a naviewer export's ``kept.txt`` lists its absolute paths under, why there is none): its
    provenance.json names it, so the cleaned set trains as it is (``naviewer train --dataset EXPORT/kept.txt``
    refused every line as "outside the dataset root"; session 18). ``(None, "")`` for any other list, or no record:
    its own folder stays the root. The reason goes with the "outside the dataset root" refusal it leads to (a
    damaged record beside the list blamed the root alone; session 22)."""
    if list_path.name != "kept.txt":
        return None, ""
    record_path = list_path.parent / "provenance.json"
    if not record_path.exists():
        return None, ""
    try:
        record = json_loads(record_path.read_text(encoding="utf-8"))
    except OSError as exc:
        return None, f"cannot be read ({exc.strerror or exc})"
    except (ValueError, UnicodeDecodeError):
        return None, "is not valid JSON"
    kept = record.get("kept_paths") if isinstance(record, dict) else None
    root = kept.get("dataset_root") if isinstance(kept, dict) else None
    if root is None:
        return None, "does not name the export's dataset root (kept_paths.dataset_root)"
    if not isinstance(record.get("naviewer_version"), str):
        return None, "is not a naviewer export record (no naviewer_version)"
    if not isinstance(root, str) or not Path(root).is_absolute():
        return None, f"names no absolute dataset root ({root!r})"
    if not Path(root).is_dir():
        return None, f"names the dataset root {root}, which is not a folder here"
    return Path(root), ""


def _export_root(list_path: Path) -> Optional[Path]:
    return _export_record(list_path)[0]


def _export_root_note(list_path: Path) -> str:
    """Why a ``kept.txt``'s export root was not used, said with the "outside the dataset root" refusal."""
    why = _export_record(list_path)[1]
    if not why:
        return ""
    return (f"; the export's {list_path.parent / 'provenance.json'} {why}, so the list's own folder was taken as the "
            "root: mend that file's kept_paths.dataset_root, or copy the list into the dataset root")


def read_class_names(path: "str | Path") -> list[str]:
    """One class name per non-blank line. A line of ``#`` then a space (or ``#`` alone) is a comment: a header
    comment used to become class 0 and shift every name by one (a class folder named ``#x`` stays a name). A
    name given twice is refused (its label was ambiguous)."""
    path = Path(path)
    names = [line.strip() for line in _read_text(path).splitlines() if line.strip() and not _is_comment(line.strip())]
    seen: dict[str, int] = {}
    for index, name in enumerate(names):
        if name in seen:
            raise NaviewerError(f"class name {name!r} is listed twice (classes {seen[name]} and {index})", path)
        seen[name] = index
    return names


def _warn_numeric_names(names: Sequence[str], path: Path) -> None:
    """Class names that are numbers other than their line positions: a list's integer label is always a
    position, so a label "3" meant as the class named "3" silently became another class (a sweep)."""
    clash = next((i for i, name in enumerate(names) if _INT.fullmatch(name) and int(name) != i), None)
    if clash is not None:
        warnings.warn(
            f"{path}: the class names are numbers that are not their line positions (line {clash + 1} names "
            f"'{names[clash]}', class {clash}): a list's integer label is always a position (label {clash} is class "
            f"'{names[clash]}'; label {names[clash]} is not), so write the labels as positions 0..{len(names) - 1}",
            DatasetWarning,
            stacklevel=4,
        )


def _lines(handle: Iterable[str]) -> Iterator[tuple[int, str]]:
    """(line number, text) of every line, split at line feeds only (``\\r\\n`` accepted).

    ``str.splitlines`` would also break at form feeds, U+0085 or U+2028 inside a file name and turn
    one entry into two; here such a character stays in its line, and the path check refuses it.
    """
    for number, line in enumerate(handle, start=1):
        if line.endswith("\n"):
            line = line[:-1]
        yield number, line[:-1] if line.endswith("\r") else line


def _parse_txt(list_path: Path, root: Path) -> Iterator[tuple[int, str, Optional[str]]]:
    """(line number, path text, label text or None) per sample line, read as the lines go by."""
    root_text = str(root)
    with _open_text(list_path) as handle:
        for number, raw in _lines(handle):
            line = raw.strip(" \t")
            if not line:
                continue
            if line.startswith("#"):
                _warn_if_a_file(list_path, root_text, number, line)
                continue
            bad = bad_name_char(line.replace("\t", " "))
            if bad is not None:
                raise NaviewerError(
                    f"line {number}: {shown(line)} contains {describe_char(bad)}; a file name with a control "
                    "character or line separator cannot be listed (rename the file)",
                    list_path,
                )
            match = _PATH_LABEL.fullmatch(line)
            if match is None:
                yield number, line, None
            elif _INT.fullmatch(match.group(2)) or not os.path.isfile(os.path.join(root_text, line)):
                yield number, match.group(1), match.group(2)
            else:  # a path with spaces and no label
                yield number, line, None


def _warn_if_a_file(list_path: Path, root: str, number: int, line: str) -> None:
    """A comment line that names an existing image ("#c.png 0" beside a file "#c.png") is still a comment, said: it
    was left out without a word (a bad-input probe, session 30)."""
    match = _PATH_LABEL.fullmatch(line)
    names = [line] + ([match.group(1)] if match is not None else [])
    if any(os.path.isfile(os.path.join(root, name)) for name in names):
        name = names[-1]
        warnings.warn(f"{list_path}: line {number} {shown(line)} is read as a comment, but a file of that name "
                      f"exists; write ./{name} to list it", DatasetWarning, stacklevel=2)


def _parse_csv(list_path: Path) -> Iterator[tuple[int, str, Optional[str]]]:
    with _open_text(list_path) as handle:
        reader = csv.reader(handle)
        try:
            header = next(reader)
        except StopIteration:
            raise NaviewerError("CSV manifest is empty (expected a header with a 'path' column)", list_path) from None
        except csv.Error as exc:
            raise NaviewerError(f"line 1: malformed CSV: {exc}", list_path) from None
        columns = [name.strip().lower() for name in header]
        for kind, names in (("path", _PATH_COLUMNS), ("label", _LABEL_COLUMNS)):
            read = [c for c in columns if c in names]
            if len(read) > 1:  # `path,path,label` (or `path,file`) read the first column, the other dropped unsaid
                raise NaviewerError(f"line 1: the CSV header has {len(read)} {kind} columns ({', '.join(read)}); "
                                    "keep one", list_path)
        path_col = next((columns.index(c) for c in _PATH_COLUMNS if c in columns), None)
        if path_col is None:
            raise NaviewerError(f"CSV header {header!r} has no 'path' column", list_path)
        label_col = next((columns.index(c) for c in _LABEL_COLUMNS if c in columns), None)
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                raise NaviewerError(f"line {reader.line_num}: malformed CSV: {exc}", list_path) from None
            number = reader.line_num
            if not row or all(not cell.strip() for cell in row):
                continue
            if path_col >= len(row) or not row[path_col].strip():
                raise NaviewerError(f"line {number}: no path", list_path)
            if len(row) > len(header):  # `cat/0.png,0` under a header `path`: the label was dropped unsaid
                hint = ("quote a path that holds a comma, or name the extra column in the header"
                        if label_col is not None else  # the header has a label column already: that advice misled
                        "add a 'label' column to the header, or quote a path that holds a comma")
                raise NaviewerError(f"line {number}: {len(row)} fields but the header {header!r} names "
                                    f"{len(header)} ({hint})", list_path)
            label = row[label_col].strip() if label_col is not None and label_col < len(row) else ""
            yield number, row[path_col].strip(), label or None


def _plain(text: str) -> bool:
    """A relative path without ``.``, ``..`` or empty parts: its key is itself (no normalising needed)."""
    if text[:1] == "/" or _SLOW_SEPARATORS:
        return False
    framed = f"/{text}/"
    return "//" not in framed and "/./" not in framed and "/../" not in framed


#: the fast path assumes '/' is the only separator
_SLOW_SEPARATORS = os.sep != "/" or os.altsep is not None


class _Resolver:
    """Key and real key (the path relative to the real root with every symlink resolved) of a listed path.

    Anything that resolves outside the root is refused, as is a missing file, whatever the path. A
    plain relative path (no ``.``, ``..``, empty part) costs one ``lstat``: its folder is resolved
    once per folder (cached) and the file itself is taken as it is when it is a regular file, not a
    symlink. Every other path (absolute, ``..``, a file symlink, a folder that resolves outside the
    root) goes through ``Path.resolve`` as before.
    """

    def __init__(self, root_abs: Path, root_real: Path, list_path: Path) -> None:
        self.root_abs = root_abs
        self.root_real = root_real
        self.list_path = list_path
        self._abs_text = str(root_abs)
        self._real_text = str(root_real)
        # folder key -> (its real path + '/', its real key + '/'), or None: take the slow path
        self._folders: dict[str, Optional[tuple[str, str]]] = {"": (os.path.join(self._real_text, ""), "")}

    def __call__(self, text: str, number: int) -> tuple[str, str]:
        problem = name_problem(text)
        if problem:
            raise NaviewerError(f"line {number}: {problem} (rename the file)", self.list_path)
        if _plain(text):
            head, _, base = text.rpartition("/")
            folder = self._folders.get(head, False)
            if folder is False:
                folder = self._folders[head] = self._folder(head)
            if folder is not None:
                try:
                    mode = os.lstat(folder[0] + base).st_mode
                except (OSError, ValueError):
                    mode = 0
                if stat.S_ISREG(mode):
                    return text, (folder[1] + base if folder[1] != head + "/" else text)
                if not stat.S_ISLNK(mode):  # missing, a folder, a device...: what is_file() refused
                    raise NaviewerError(f"line {number}: {_why_no_image(Path(folder[0] + base))}: {shown(text)}"
                                        f"{_separator_hint(text)}", self.list_path)
        return self._resolve(text, number)

    def _folder(self, head: str) -> Optional[tuple[str, str]]:
        real = os.path.realpath(os.path.join(self._abs_text, head))
        if real != self._real_text and not real.startswith(os.path.join(self._real_text, "")):
            return None  # outside the root: a file link there could still lead back in; resolve each file
        relative = Path(real).relative_to(self.root_real).as_posix()
        return os.path.join(real, ""), ("" if relative == "." else relative + "/")

    def _resolve(self, text: str, number: int) -> tuple[str, str]:
        """Key and real key, refusing escapes (every path, one ``Path.resolve`` each)."""
        root_abs, root_real, list_path = self.root_abs, self.root_real, self.list_path
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
            raise NaviewerError(f"line {number}: {_why_no_image(real)}: {shown(text)}{_separator_hint(text)}", list_path)
        lexical = Path(os.path.normpath(candidate))
        key = lexical.relative_to(root_abs) if lexical.is_relative_to(root_abs) else real.relative_to(root_real)
        return key.as_posix(), real.relative_to(root_real).as_posix()


def _why_no_image(path: Path) -> str:
    """Why a listed path is no image to read, in words: "image not found" was said for an image in a folder naviewer
    may not read (a sweep, session 24), which sent the user looking for a file that is there."""
    try:
        mode = os.stat(path).st_mode
    except PermissionError:
        return "image not readable (permission denied on its folder)"
    except (OSError, ValueError):
        return "image not found"
    if stat.S_ISDIR(mode):
        return "a folder, not an image"
    if not stat.S_ISREG(mode):
        return "not a regular file (a pipe or device), not an image"
    return "image not found"


def _separator_hint(text: str) -> str:
    """A hint for a path written with Windows' separators (a bare "image not found" left the reason to guess)."""
    return " (a Windows path? write / between folders: naviewer reads \\ as part of a name)" if "\\" in text else ""


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except (OSError, ValueError):
        return False


class _Entries:
    """What the listed lines add up to, held compactly: keys, labels, line numbers, a 64-bit hash of
    each real key, and the real keys that differ from their key (reached through a symlink)."""

    def __init__(self) -> None:
        self.keys = KeyBuilder()
        self.labels = array("q")
        self.lines = array("q")
        self.hashes = array("q")
        self.real_index = array("q")
        self.real_keys = KeyBuilder()

    def __len__(self) -> int:
        return len(self.labels)

    def add(self, number: int, key: str, real_key: str, label: int) -> None:
        if real_key != key:
            self.real_index.append(len(self.labels))
            self.real_keys.append(real_key)
        self.keys.append(key)
        self.labels.append(label)
        self.lines.append(number)
        self.hashes.append(hash(real_key))

    def real_key(self, index: int) -> str:
        where = bisect.bisect_left(self.real_index, index)
        if where < len(self.real_index) and self.real_index[where] == index:
            return self.real_keys.get(where)
        return self.keys.get(index)

    def duplicates(self) -> tuple[np.ndarray, np.ndarray]:
        """(entry, the earlier entry naming the same file) for every repeat, in line order.

        The 64-bit hashes are sorted (stable: line order within equal hashes); only entries that share a
        hash are compared, by their real keys, so no set of N strings is ever built.
        """
        hashes = np.frombuffer(self.hashes, dtype=np.int64) if len(self.hashes) else np.zeros(0, np.int64)
        order = np.argsort(hashes, kind="stable")
        ordered = hashes[order]
        same = ordered[1:] == ordered[:-1]
        del ordered
        if not same.any():
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        shared = np.zeros(len(order), dtype=bool)
        shared[1:] |= same
        shared[:-1] |= same
        starts = np.ones(len(order), dtype=bool)  # where a run of equal hashes starts (in sorted order)
        starts[1:] = ~same
        del same
        positions = np.flatnonzero(shared)
        members = order[positions].tolist()
        run_starts = starts[positions].tolist()
        del order, shared, starts, positions
        repeats: list[int] = []
        firsts: list[int] = []
        seen: dict[str, int] = {}
        for index, new_run in zip(members, run_starts):
            if new_run:
                seen = {}
            first = seen.setdefault(self.real_key(index), index)
            if first != index:
                repeats.append(index)
                firsts.append(first)
        repeat_array = np.asarray(repeats, dtype=np.int64)
        first_array = np.asarray(firsts, dtype=np.int64)
        by_line = np.argsort(repeat_array, kind="stable")
        return repeat_array[by_line], first_array[by_line]


class FileListDataset(FileBackedDataset):
    """Samples listed in a ``path label`` text file (``.txt`` etc.) or a CSV manifest (``.csv``).

    Nothing is kept per line as a Python object: keys go into one byte buffer, labels, line numbers
    and a 64-bit hash of each resolved path into arrays; repeats are found by sorting the hashes.
    """

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
        root_path = Path(root) if root is not None else (_export_root(list_path) or list_path.parent)
        if not root_path.is_dir():
            raise NaviewerError("dataset root is not a folder", root_path)
        root_abs = Path(os.path.abspath(root_path))
        root_real = root_path.resolve()
        self._given_root = root is not None
        self._given_names = list(class_names) if class_names is not None else None

        if class_names is not None:
            names: Optional[list[str]] = [str(c) for c in class_names]
        elif (os.path.lexists(list_path.parent / CLASSES_FILE) and not (list_path.parent / CLASSES_FILE).is_file()
              and list_path.name != CLASSES_FILE):  # a pipe or a folder there was passed over in silence (a sweep)
            raise NaviewerError("the class names file beside the list is not a regular file (a pipe, a folder or a "
                                "broken link): make it a text file of class names, or remove it",
                                list_path.parent / CLASSES_FILE)
        elif (list_path.parent / CLASSES_FILE).is_file() and list_path.name != CLASSES_FILE:
            names = read_class_names(list_path.parent / CLASSES_FILE)
            _warn_numeric_names(names, list_path.parent / CLASSES_FILE)
        else:
            names = None
        name_to_index = {name: i for i, name in enumerate(names)} if names else {}

        def parse() -> Iterator[tuple[int, str, Optional[str]]]:
            return _parse_csv(list_path) if self.is_csv else _parse_txt(list_path, root_abs)

        resolve = _Resolver(root_abs, root_real, list_path)
        entries = _Entries()
        lines = parse()
        error: Optional[NaviewerError] = None
        unlabelled: list[int] = []  # lines with no label at all (not "-1"): the first few, and how many
        missing = labelled = 0
        for number, text, label_text in lines:
            try:
                label = self._label(label_text, name_to_index, names, number, list_path)
                key, real_key = resolve(text, number)
            except NaviewerError as exc:
                note = "" if self._given_root or "outside the dataset root" not in exc.message \
                    else _export_root_note(list_path)
                error = NaviewerError(exc.message + note, exc.path) if note else exc
                break
            if label_text is None:
                missing += 1
                if len(unlabelled) < 3:
                    unlabelled.append(number)
            else:
                labelled += 1
            entries.add(number, key, real_key, label)
        if error is None and missing and labelled:
            # a label left off one line read as "unlabelled" without a word (a sweep, session 19): lists are labelled
            # throughout or not at all, and -1 says "unlabelled" on purpose
            first = ", ".join(str(n) for n in unlabelled) + (" ..." if missing > len(unlabelled) else "")
            warnings.warn(f"{list_path}: {missing:,} line{'s' if missing != 1 else ''} {'have' if missing != 1 else 'has'} "
                          f"no label (line{'s' if missing != 1 else ''} {first}) while {labelled:,} have one: "
                          f"{'they are' if missing != 1 else 'it is'} read as unlabelled; write -1 to mean that, or "
                          "add the label", DatasetWarning, stacklevel=2)
        if error is not None:
            for _ in lines:  # a malformed line further on is reported first, as when the list was parsed whole
                pass
        elif not len(entries):
            raise NaviewerError("the list has no samples", list_path)

        repeats, firsts = entries.duplicates()
        labels = np.frombuffer(entries.labels, dtype=np.int64) if len(entries) else np.zeros(0, np.int64)
        line_numbers = np.frombuffer(entries.lines, dtype=np.int64) if len(entries) else np.zeros(0, np.int64)
        clash = np.flatnonzero(labels[repeats] != labels[firsts])
        if len(clash):  # the first line that gives a file listed before another label
            repeat, first = int(repeats[clash[0]]), int(firsts[clash[0]])
            number = int(line_numbers[repeat])
            text = next(t for n, t, _ in parse() if n == number)
            raise NaviewerError(
                f"line {number}: {shown(text)} is listed on line {int(line_numbers[first])} with label "
                f"{_label_text(int(labels[first]))} and here with label {_label_text(int(labels[repeat]))}: "
                "a file carries one label",
                list_path,
            )
        if error is not None:
            raise error
        if len(repeats):
            shown_repeats = [f"line {int(line_numbers[r])} (= line {int(line_numbers[f])})"
                             for r, f in zip(repeats[:5], firsts[:5])]
            more = f" and {len(repeats) - 5} more" if len(repeats) > 5 else ""
            warnings.warn(
                f"{list_path}: {len(repeats)} duplicate entr{'y' if len(repeats) == 1 else 'ies'} ignored "
                f"(the first listing of each file is kept): {', '.join(shown_repeats)}{more}",
                DatasetWarning,
                stacklevel=3,
            )
        #: how many listed lines repeated a file already listed (ignored)
        self.duplicates = len(repeats)
        keys = entries.keys.build()
        real_index = np.frombuffer(entries.real_index, dtype=np.int64) if len(entries.real_index) else None
        real_keys = entries.real_keys.build()
        del entries, line_numbers
        if len(repeats):
            keep = np.ones(len(labels), dtype=bool)
            keep[repeats] = False
            kept = np.flatnonzero(keep)
            keys = keys.take(kept)
            labels = labels[kept]
            if real_index is not None:
                stays = keep[real_index]
                real_keys = real_keys.take(np.flatnonzero(stays))
                real_index = (np.cumsum(keep) - 1)[real_index[stays]]
            del keep, kept
        label_array = np.array(labels, dtype=np.int64)  # its own memory (not the builder's)
        if names is None:
            names = [str(i) for i in range(int(label_array.max()) + 1 if len(label_array) else 0)]
            # one counting pass (np.unique sorted every label: seconds at 10M)
            empty = int((np.bincount(label_array[label_array >= 0], minlength=len(names)) == 0).sum())
            if empty:  # labels are class numbers: a stray 99999 made 100,000 classes, without a word
                warnings.warn(
                    f"{list_path}: {empty:,} of the {len(names):,} classes (0-{len(names) - 1}) have no image: "
                    "integer labels are class numbers, so a gap or a stray large label makes empty classes; give "
                    "class names (a classes.txt) or number the classes from 0 without gaps",
                    DatasetWarning,
                    stacklevel=3,
                )
        real = RealKeys(real_index, real_keys) if real_index is not None and len(real_index) else None
        super().__init__(root_real, keys, label_array, names, max_pixels, real_keys=real)

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
            empty = names is not None and (list_path.parent / CLASSES_FILE).is_file()
            hint = "" if names else (f" ({list_path.parent / CLASSES_FILE} is empty: write one class name a line in it)"
                                     if empty else " (no class names known: put a classes.txt beside the list, one "
                                     "name a line)")
            raise NaviewerError(f"line {number}: label {shown(text)} is not an integer or a class name{hint}", list_path)
        if value == UNLABELED:
            return UNLABELED
        shown_label = text if len(text) <= 24 else text[:20] + f"... ({len(text)} digits)"
        if value < 0 or (names is not None and value >= len(names)):
            top = f"0..{len(names) - 1}" if names is not None else "0 or more"
            source = list_path.parent / CLASSES_FILE
            whose = (f"; the {len(names)} class name(s) come from {source}" if names is not None and source.is_file()
                     else "")  # an empty or short classes.txt read as "out of range (0..-1)" without naming it
            if names is not None and not names and value >= 0 and source.is_file():
                raise NaviewerError(f"line {number}: label {shown_label} names a class, but {source} is empty: write "
                                    "one class name a line in it, or remove it", list_path)
            raise NaviewerError(f"line {number}: label {shown_label} is out of range ({top}, or -1 for unlabeled)"
                                f"{whose}", list_path)
        if names is None and value >= MAX_CLASSES:
            count = f"{value + 1:,}" if value < 10**18 else f"more than {MAX_CLASSES:,}"
            raise NaviewerError(
                f"line {number}: label {shown_label} would make {count} classes (labels number the classes from 0; "
                f"at most {MAX_CLASSES:,} without class names): renumber the labels 0..K-1, or give the class "
                f"names in a {CLASSES_FILE} beside the list",
                list_path,
            )
        return value

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
