"""Atomic file writes: write to a temporary name in the same directory, fsync, then rename.

Why: a process killed mid-write (SIGKILL, power loss, a cancelled job) must never leave a
truncated checkpoint, embedding array or manifest under the real name. ``os.replace`` within one
directory is atomic on POSIX and Windows, so a reader sees either the old file or the new one.

Temporary names are hidden and keep the target's suffix (``.last.tmp-<pid>-<rand>.pt``) so that
libraries which append a suffix (``np.save``) or dispatch on it still behave; they are removed
when the write fails, and :func:`cleanup_stale_temps` removes those left by killed processes.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import secrets
import stat
import tokenize
import zipfile
from pathlib import Path
from typing import Any, Callable, Iterator, Optional, Union

import numpy as np

from naviewer.errors import NaviewerError

PathLike = Union[str, "os.PathLike[str]"]

_TEMP_RE = re.compile(r"^\..+\.tmp-(\d+)-[0-9a-f]+(\.[^.]*)?$")


def temp_path_for(target: PathLike) -> Path:
    """A fresh hidden temporary name next to ``target`` that keeps its suffix."""
    target = Path(target)
    stem, suffix = target.stem, target.suffix
    return target.with_name(f".{stem}.tmp-{os.getpid()}-{secrets.token_hex(4)}{suffix}")


def fsync_path(path: PathLike) -> None:
    """Flush a written file to disk (so a rename after it cannot expose an empty file)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(directory: PathLike) -> None:
    """Make a rename durable. Best effort: some platforms cannot open directories."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(target: PathLike, fsync: bool = True, replace: bool = True) -> Iterator[Path]:
    """Yield a temporary path next to ``target``; on success fsync it and rename it onto ``target``.

    The caller writes the temporary path with whatever library it likes (``torch.save``,
    ``np.save``, ``Image.save``). If the block raises, the temporary file is removed and ``target``
    is left untouched. The parent directory is created if needed. ``replace`` False: a ``target`` that exists when
    the file is put in place is a FileExistsError and is left as it is (a hard link, which never replaces: two
    commands checking "does --out exist?" at once both wrote, and one result was lost; a probe, session 28).
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path_for(target)
    try:
        yield tmp
        if not tmp.exists():
            raise FileNotFoundError(f"atomic write of {target}: nothing was written to {tmp}")
        if fsync:
            fsync_path(tmp)
        if replace:
            os.replace(tmp, target)
        else:
            _put_new(tmp, target)
        if fsync:
            fsync_dir(target.parent)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(exc, OSError) and (exc.filename is None or os.fsdecode(exc.filename) == str(tmp)):
            # a write that failed through a handle names no file, and the temporary one is ours: the target is what
            # the user knows (embed said "File too large" alone, a read-only folder ".last-...npy.8796.tmp"; a sweep)
            exc.filename = str(target)
        raise


def _put_new(tmp: Path, target: Path) -> None:
    """``tmp`` renamed to ``target`` only if ``target`` does not exist (FileExistsError otherwise), atomically where
    the file system has hard links; elsewhere (FAT, some network shares) checked just before the rename."""
    try:
        os.link(tmp, target)
    except FileExistsError:
        raise FileExistsError(errno.EEXIST, "exists already", str(target)) from None
    except OSError:
        if target.exists():
            raise FileExistsError(errno.EEXIST, "exists already", str(target)) from None
        os.replace(tmp, target)
        return
    tmp.unlink()


def file_stamp(path: PathLike) -> str:
    """"SIZE-MTIME_NS" of a file ("" when it cannot be read): what tells a file written again at the same path (a
    retrained last.pt, a replaced embeddings array) from the one a record was made of."""
    try:
        status = os.stat(path)
    except OSError:
        return ""
    return f"{status.st_size}-{status.st_mtime_ns}"


def byte_size(n: float) -> str:
    """``n`` bytes in the unit that shows it ("0 bytes", "6.1 KiB", "2.4 GiB"): "need 0.0 MiB, the disk has 0.0 MiB
    free" said nothing (a bad-input probe, session 27)."""
    n = max(0.0, float(n))
    if n < 1024:
        return f"{int(n):,} byte{'' if int(n) == 1 else 's'}"
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        n /= 1024.0
        if n < 1024 or unit == "TiB":
            return f"{n:,.1f} {unit}"
    return f"{n:,.1f} TiB"  # pragma: no cover - the loop returns


def atomic_write_bytes(path: PathLike, data: bytes, fsync: bool = True) -> Path:
    with atomic_path(path, fsync=fsync) as tmp:
        with open(tmp, "wb") as handle:
            handle.write(data)
    return Path(path)


def atomic_write_text(path: PathLike, text: str, encoding: str = "utf-8", fsync: bool = True) -> Path:
    return atomic_write_bytes(path, text.encode(encoding), fsync=fsync)


def json_default(value: Any) -> Any:
    """``json.dumps(default=...)`` for numpy scalars/arrays and paths, which plain json refuses."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def atomic_write_json(path: PathLike, obj: Any, indent: int | None = 2, fsync: bool = True) -> Path:
    text = json.dumps(obj, indent=indent, default=json_default, sort_keys=False)
    return atomic_write_text(path, text + "\n", fsync=fsync)


def atomic_save_npy(path: PathLike, array: np.ndarray, fsync: bool = True) -> Path:
    """Save ``array`` as ``.npy`` (no pickles) atomically, so it can later be memory-mapped."""
    array = np.asanyarray(array)
    if array.dtype.hasobject:
        raise TypeError("refusing to save an object array: it would need pickle to load")
    with atomic_path(path, fsync=fsync) as tmp:
        with open(tmp, "wb") as handle:
            np.save(handle, array, allow_pickle=False)
    return Path(path)


#: what ``np.load`` raises on a damaged ``.npy``: ValueError and EOFError for most, OverflowError for a header whose
#: shape is negative, tokenize.TokenError or SyntaxError for a header dict that does not parse, MemoryError for a
#: shape past memory (the first three came out as tracebacks of review and detect --embeddings; a fuzz, session 34)
NPY_READ_ERRORS = (ValueError, OSError, EOFError, OverflowError, SyntaxError, TypeError, MemoryError,
                   tokenize.TokenError)


def npy_error_words(exc: BaseException) -> str:
    """One of :data:`NPY_READ_ERRORS` in words (a tokenizer's tuple read "(('EOF in multi-line statement', (2, 0)))")."""
    if "pickle" in str(exc):
        return "it holds Python objects (pickles are never loaded)"
    if isinstance(exc, (tokenize.TokenError, SyntaxError)) or "malformed node" in str(exc):  # (ast's words)
        return "its header does not parse"
    if isinstance(exc, OverflowError):
        return f"its header gives an impossible shape ({exc})"
    if isinstance(exc, MemoryError):
        return "its header gives a shape too large for memory"
    return str(exc)


def not_npy_reason(path: PathLike) -> Optional[str]:
    """Why ``path`` is not a ``.npy`` file (None when it starts with NumPy's header). np.load calls anything else
    "pickled data" when pickles are refused, which read as "it holds Python objects" for a text file."""
    with open(path, "rb") as handle:
        magic = handle.read(6)
    if magic == b"\x93NUMPY":
        return None
    if not magic:
        return "the file is empty"
    return ("a .npz archive (give one of its arrays as a .npy)" if magic[:2] == b"PK" else
            "not a .npy file (naviewer embed writes one; np.save too)")


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def cleanup_stale_temps(directory: PathLike) -> list[Path]:
    """Remove temporary files in ``directory`` whose writing process no longer exists."""
    directory = Path(directory)
    removed: list[Path] = []
    if not directory.is_dir():
        return removed
    for entry in directory.iterdir():
        match = _TEMP_RE.match(entry.name)
        if match and entry.is_file() and not _pid_alive(int(match.group(1))):
            with contextlib.suppress(OSError):
                entry.unlink()
                removed.append(entry)
    return removed


def json_loads(text: Union[str, bytes]) -> Any:
    """``json.loads``, with a document nested too deeply for Python's recursion (a thousand ``[``) raised as the
    ``ValueError`` (a ``json.JSONDecodeError``) every reader already turns into a message: it was a RecursionError
    and a traceback (a mutation fuzz, session 22)."""
    try:
        return json.loads(text)
    except RecursionError:
        doc = text if isinstance(text, str) else text.decode("utf-8", "replace")
        raise json.JSONDecodeError("nested too deeply to read", doc[:200], 0) from None


def check_regular_file(path: PathLike, what: str = "file") -> None:
    """Refuse a path that exists but is not a regular file (after links): a named pipe blocks the first
    ``open`` for ever, a device reads without end. A missing path passes: the caller says it is missing."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return
    if stat.S_ISDIR(mode):
        raise NaviewerError(f"the {what} is a folder, not a file", path)
    if not stat.S_ISREG(mode):
        raise NaviewerError(f"the {what} is not a regular file (a pipe, socket or device)", path)


def describe_image_read_error(exc: OSError) -> str:
    """An OSError reading an image in plain words: the system's reason (permission denied...) when it has an errno,
    else Pillow's own ("Truncated File Read"), which means the file is damaged or cut short."""
    return describe_os_error(exc) if exc.errno is not None else f"damaged or cut short: {exc}"


def describe_os_error(exc: OSError) -> str:
    """One plain phrase for an OSError (read-only file system, disk full, permission denied...)."""
    reasons = {
        errno.ENOSPC: "the disk is full",
        errno.EFBIG: "the file is larger than this system allows (the file system, or the shell's ulimit -f)",
        errno.EROFS: "the file system is read-only",
        errno.EACCES: "permission denied",
        errno.EPERM: "permission denied",
        getattr(errno, "EDQUOT", -1): "the disk quota is exceeded",
        errno.ENOTDIR: "a part of the path is a file, not a folder",
        errno.EISDIR: "it is a folder",
        errno.ENOENT: "no such file or folder",
        errno.ELOOP: "a symbolic link points back to itself (a link loop)",
    }
    return reasons.get(exc.errno or 0) or (exc.strerror or str(exc))


def make_folder(directory: PathLike) -> Path:
    """``directory`` and its parents, made; one of them a file is a NaviewerError naming it (``WS/runs`` a file read
    "File exists"; a bad-input probe, session 28)."""
    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        blocker = next((p for p in (directory, *directory.parents) if p.exists() and not p.is_dir()), directory)
        raise NaviewerError("a file where a folder belongs (was it replaced?): move it away", blocker) from None
    return directory


@contextlib.contextmanager
def held_alone(path: PathLike, busy: str, unguarded: Optional[Callable[[BaseException], None]] = None,
               where: Optional[PathLike] = None) -> Iterator[None]:
    """Hold the lock file ``path`` while the block runs, or refuse at once with NaviewerError(``busy``, ``where`` or
    ``path``) when another process holds it. The operating system drops the lock when its holder dies, so a killed holder never
    blocks the next. On a file system without locks the block runs unguarded, after ``unguarded(exc)``."""
    from filelock import FileLock, Timeout

    path = Path(path)
    make_folder(path.parent)
    lock = FileLock(path, timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise NaviewerError(busy, where if where is not None else path) from None
    except (OSError, NotImplementedError) as exc:
        if unguarded is not None:
            unguarded(exc)
        yield
        return
    try:
        yield
    finally:
        lock.release()


def sniff_checkpoint(path: PathLike, read_through: bool = True) -> Optional[str]:
    """What the file plainly is when it is not a checkpoint torch could read, from its first bytes; None when it
    may be one. Torch-free, so the window's dialogs can say it as a path is typed (``read_through`` False: no
    pass over a zip archive's checksums, which reads the whole file)."""
    path = Path(path)
    try:
        size = path.stat().st_size
        with open(path, "rb") as handle:
            head = handle.read(8)
    except OSError as exc:
        return f"cannot read it: {describe_os_error(exc)}"
    if size == 0:
        return "the file is empty (0 bytes)"
    if head.startswith(b"PK\x03\x04"):
        try:
            whole = zipfile.is_zipfile(path)
        except (zipfile.BadZipFile, OSError, EOFError, ValueError):  # its end record damaged ("spans multiple disks":
            whole = False                                             # a traceback, one byte changed; a fuzz, s. 34)
        if not whole:
            return f"the file is truncated or damaged: its zip archive is incomplete ({size:,} bytes)"
        if not read_through:
            return None
        # torch's reader does not check the archive's CRCs: 64 random bytes in the middle of a checkpoint loaded
        # as other weights without a word. Reading it once more costs ~20 ms for a small encoder.
        damaged = None
        try:
            with zipfile.ZipFile(path) as archive:
                for info in archive.infolist():
                    if info.CRC == 0:  # torch.serialization.set_crc32_options(False) writes none: nothing to check
                        continue
                    try:
                        with archive.open(info) as part:
                            while part.read(1 << 24):
                                pass
                    except zipfile.BadZipFile:
                        damaged = info.filename
                        break
        except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError):
            return "the file is damaged: its zip archive cannot be read through"
        if damaged is not None:
            return f"the file is damaged: its part {damaged!r} fails its checksum (changed after it was written)"
        return None
    if head.startswith(b"\x93NUMPY"):
        return "this is a NumPy array file (.npy), not a PyTorch checkpoint"
    if head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        return None  # a pickle: torch's legacy format, or a plain pickle (torch's error tells which)
    return "its content is neither a zip archive nor a pickle (random or foreign data, not a PyTorch checkpoint)"
