"""``workspace.toml``: what a workspace is (dataset, settings, recipes), read with tomllib, written with tomli_w.

The file is small and human-editable; it is always rewritten whole and atomically, so an editor
or a crash never sees half a file. Every read-modify-write holds :func:`config_lock`, a
cross-process file lock (``filelock``) on ``.workspace.lock`` beside it, so two processes updating
different sections never lose one (an atomic rename alone keeps the file whole, not both updates).
"""

from __future__ import annotations

import contextlib
import os
import threading
import warnings
try:  # Python 3.11+; 3.10 reads TOML with the tomli backport (a dependency there)
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]
from pathlib import Path
from typing import Any, Iterator, Optional, Union

import numpy as np
import tomli_w

from naviewer.errors import NaviewerError
from naviewer.io import atomic_write_text, describe_os_error
from naviewer.workspace.anchor_record import ANCHOR_KINDS

PathLike = Union[str, "os.PathLike[str]"]

CONFIG_NAME = "workspace.toml"
#: the lock file every writer of workspace.toml holds (hidden, beside it; left in place)
LOCK_NAME = ".workspace.lock"
#: how long a writer waits for another process's update (updates take milliseconds)
LOCK_TIMEOUT_S = 60.0
#: version of the workspace layout this code writes; opening a newer one is refused
WORKSPACE_SCHEMA = 1


def toml_safe(value: Any) -> Any:
    """Plain TOML-able data: paths -> str, numpy -> Python, tuples -> lists, ``None`` entries dropped.

    TOML has no null, so a key whose value is ``None`` is left out (``update_config`` uses that
    to delete keys). Non-finite floats are allowed by TOML (``nan``, ``inf``) and kept.
    """
    if isinstance(value, dict):
        return {str(k): toml_safe(v) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value) if isinstance(value, (set, frozenset)) else value
        return [toml_safe(v) for v in items if v is not None]
    if isinstance(value, np.ndarray):
        return toml_safe(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return value


_IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm"})


def _looks_like_dataset(folder: Path) -> bool:
    """A CIFAR folder, or class folders holding images (a few looked at): a dataset opened as a workspace."""
    try:
        from naviewer.data.cifar import find_cifar_dir

        if find_cifar_dir(folder) is not None:
            return True
        for sub in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))[:20]:
            inner = sub / "train" if (sub / "train").is_dir() else sub  # a train/test split holds class folders
            for level in (inner, *[p for p in sorted(inner.iterdir())[:5] if p.is_dir()]):
                if any(f.suffix.lower() in _IMAGE_SUFFIXES for f in list(level.iterdir())[:50]):
                    return True
    except NaviewerError:  # a CIFAR-10 and a CIFAR-100 side by side ("name the one to open"): a dataset all the same
        return True
    except (OSError, ValueError):
        return False
    return False


def read_config(path: PathLike) -> dict[str, Any]:
    """Parse and check ``workspace.toml``; every problem is a NaviewerError naming the file."""
    from naviewer.io import check_regular_file

    path = Path(path)
    check_regular_file(path, "workspace.toml")  # a pipe in its place blocked the open for ever
    try:
        text = path.read_text(encoding="utf-8-sig")  # a BOM (Notepad's UTF-8) read as "garbled ... column 1"
    except FileNotFoundError as exc:
        inside = next((folder for folder in list(path.absolute().parents)[1:4] if (folder / CONFIG_NAME).is_file()),
                      None)  # WS/dataset opened by mistake said only "not a workspace" (newcomer session 18)
        hint = f"; it lies inside the workspace {inside}: open that folder" if inside is not None else ""
        if not hint and _looks_like_dataset(path.parent):  # the likeliest newcomer slip (session 27)
            hint = ("; it looks like a dataset: make a workspace from it (File ▸ New workspace…, or naviewer new "
                    "WORKSPACE --dataset FOLDER)")
        raise NaviewerError(f"not a naviewer workspace (workspace.toml is missing){hint}", path) from exc
    except UnicodeDecodeError:  # "'utf-8' codec can't decode byte 0xb7 in position 1" said in a message box
        raise NaviewerError("the workspace configuration is not text (a binary file in place of workspace.toml?)",
                            path) from None
    except OSError as exc:
        from naviewer.io import describe_os_error

        raise NaviewerError(f"cannot read the workspace configuration: {describe_os_error(exc)}", path) from None
    try:
        config = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise NaviewerError(f"garbled workspace configuration ({exc})", path) from exc
    except RecursionError:  # a thousand nested arrays: tomllib recursed out (a mutation fuzz, session 22)
        raise NaviewerError("garbled workspace configuration (nested too deeply to read)", path) from None
    header = config.get("workspace")
    if not isinstance(header, dict) or "schema" not in header:
        raise NaviewerError("not a naviewer workspace configuration (no [workspace] schema)", path)
    schema = header["schema"]
    if not isinstance(schema, int) or isinstance(schema, bool) or schema < 1:
        raise NaviewerError(f"bad workspace schema {schema!r}", path)
    if schema > WORKSPACE_SCHEMA:
        raise NaviewerError(
            f"workspace schema {schema} is newer than this naviewer supports ({WORKSPACE_SCHEMA}); upgrade naviewer",
            path,
        )
    _check_sections(config, path)
    return config


def _check_sections(config: dict[str, Any], path: Path) -> None:
    """The shapes the code relies on: naviewer's own sections are tables, class names a list of strings."""
    # naviewer's own sections, and those the workflows read as tables
    for name in ("workspace", "dataset", "classes", "settings", "anchors", "evaluation", "dift", "attack", "floor"):
        if name in config and not isinstance(config[name], dict):
            raise NaviewerError(
                f"[{name}] must be a table, found {name} = {_short(config[name])} (was the file edited by hand?)", path
            )
    names = config.get("classes", {}).get("names", [])
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise NaviewerError(f"[classes] names must be a list of strings, found {_short(names)}", path)
    repeated = repeated_name(names)
    if repeated is not None:  # export wrote classes.txt with the name twice: two labels a reader cannot tell apart
        raise NaviewerError(f"[classes] names repeats {_short(repeated)}: every class needs its own name", path)
    dataset, anchors = config.get("dataset", {}), config.get("anchors", {})
    for section, key, low, value in (("dataset", "samples", 0, dataset.get("samples")),
                                     ("dataset", "size", 0, dataset.get("size")),
                                     ("anchors", "per_class", 1, anchors.get("per_class")),
                                     ("anchors", "seed", 0, anchors.get("seed"))):
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < low):
            raise NaviewerError(f"[{section}] {key} must be a whole number{' >= 1' if low else ''}, found "
                                f"{_short(value)}", path)
    floor = config.get("floor", {})
    for key in ("asr", "asr_all", "knn_acc"):  # read as float() by every table: asr = "high" was a traceback
        value = floor.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                  or not (value != value or 0.0 <= value <= 1.0)):  # nan: not measurable
            raise NaviewerError(f"[floor] {key} must be a fraction between 0 and 1, found {_short(value)}", path)
    kind = anchors.get("kind")
    if kind is not None and kind not in ANCHOR_KINDS:  # read as "labels" before: safe, but the edit went unnoticed
        raise NaviewerError(f"[anchors] kind = {_short(kind)} is not one naviewer writes ({', '.join(ANCHOR_KINDS)})",
                            path)
    _check_attack(config, names, path)


def _check_attack(config: dict[str, Any], names: list, path: Path) -> None:
    """The keys naviewer writes in [attack], of their types, where they are there: ``target_class = "zero"`` or ``99``
    (of 3 classes) and ``num_poisons = {a = 1}`` opened, and detect and finetune ran on them (a fuzz, session 34)."""
    attack = config.get("attack", {})
    for key in ("target_class", "num_poisons", "seed"):
        value = attack.get(key)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
            raise NaviewerError(f"[attack] {key} must be a whole number, found {_short(value)}", path)
    target = attack.get("target_class")
    if target is not None and names and target >= len(names):
        raise NaviewerError(f"[attack] target_class is {target}, but [classes] names {len(names)} classes "
                            f"(0..{len(names) - 1})", path)
    if "name" in attack and not (isinstance(attack["name"], str) and attack["name"].strip()):
        raise NaviewerError(f"[attack] name must be an attack's name in quotes, found {_short(attack['name'])}", path)
    for key in ("settings", "clean"):
        if key in attack and not isinstance(attack[key], dict):
            raise NaviewerError(f"[attack] {key} must be a table, found {_short(attack[key])}", path)
    rate = attack.get("poison_rate")
    if rate is not None and (isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0.0 <= rate <= 1.0):
        raise NaviewerError(f"[attack] poison_rate must be a fraction between 0 and 1, found {_short(rate)}", path)


def repeated_name(names: list) -> Optional[str]:
    """The first class name given twice, or None."""
    seen: set = set()
    for name in names:
        if name in seen:
            return name
        seen.add(name)
    return None


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def write_config(path: PathLike, config: dict[str, Any]) -> None:
    """Atomically rewrite ``workspace.toml`` (a read-modify-write must also hold :func:`config_lock`)."""
    try:
        text = tomli_w.dumps(toml_safe(config))
    except (TypeError, ValueError) as exc:
        raise NaviewerError(f"setting cannot be stored in TOML ({exc})", path) from exc
    try:
        atomic_write_text(path, text)
    except OSError as exc:
        raise NaviewerError(f"cannot write the workspace configuration: {describe_os_error(exc)}", path) from None


class WorkspaceLockWait(UserWarning):
    """Said when a command waits for another process's workspace lock (the CLI prints it as one line)."""


_thread_locks: dict[str, threading.RLock] = {}
_thread_locks_guard = threading.Lock()


@contextlib.contextmanager
def config_lock(config_path: PathLike, timeout_s: float = LOCK_TIMEOUT_S) -> Iterator[None]:
    """Hold the workspace's cross-process lock (and a per-path thread lock) around a read-modify-write.

    ``filelock`` takes an ``fcntl``/``msvcrt`` lock on ``.workspace.lock``: the operating system
    releases it when its holder dies (SIGKILL included), so a killed writer never blocks the next.
    A workspace whose folder cannot be written is a NaviewerError, as is a lock still held after
    ``timeout_s``.
    """
    from filelock import FileLock, Timeout

    config_path = Path(config_path)
    key = os.path.abspath(config_path)
    with _thread_locks_guard:
        thread_lock = _thread_locks.setdefault(key, threading.RLock())
    lock_path = config_path.with_name(LOCK_NAME)
    with thread_lock:
        try:
            lock = FileLock(lock_path, timeout=timeout_s)
            try:
                lock.acquire(timeout=min(1.0, timeout_s))
            except Timeout:  # said, then waited for: a command hung 43 s here without a word (a sweep, session 17)
                warnings.warn(WorkspaceLockWait(f"{lock_path}: another process is changing this workspace; waiting "
                                                f"for it (up to {timeout_s:.0f} s)"), stacklevel=3)
                lock.acquire()
        except Timeout:
            raise NaviewerError(
                f"another process has held the workspace lock for {timeout_s:.0f} s; try again when it is done",
                lock_path,
            ) from None
        except OSError as exc:
            raise NaviewerError(f"cannot lock the workspace for writing: {describe_os_error(exc)}", lock_path) from None
        try:
            yield
        finally:
            lock.release()
