"""A workspace: one directory holding everything naviewer knows about one dataset.

```
workspace.toml      what this workspace is (dataset source + hash, settings, recipes)
naviewer.sqlite     samples, detection passes, review decisions + audit log, runs
embeddings/<run>/   feature arrays (.npy, memory-mappable)
checkpoints/<run>/  encoder checkpoints
runs/<run>/         metrics.jsonl and run outputs
exports/            manifests
ground_truth.json   what a crafted attack poisoned (read by evaluation, never by detection)
```

Creation happens in a hidden staging directory that is renamed into place at the end, so a
cancelled or killed ``create`` (registering 1.28M samples takes a while) leaves no half-made
workspace behind.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import os
import re
import secrets
import shutil
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Optional, Union

import numpy as np

from naviewer import __version__
from naviewer.data.names import list_line_problem, name_problem
from naviewer.errors import NaviewerError
from naviewer.io import NPY_READ_ERRORS, npy_error_words, _pid_alive, atomic_save_npy, atomic_write_json, json_loads, make_folder
from naviewer.jobs import JobContext, ensure_context
from naviewer.workspace.source_root import source_root
from naviewer.workspace.config import (
    CONFIG_NAME,
    WORKSPACE_SCHEMA,
    config_lock,
    describe_os_error,
    read_config,
    repeated_name,
    write_config,
)
from naviewer.workspace.store import WorkspaceStore

if TYPE_CHECKING:
    from naviewer.data.base import ImageDataset

PathLike = Union[str, "os.PathLike[str]"]

STORE_NAME = "naviewer.sqlite"
GROUND_TRUTH_NAME = "ground_truth.json"
SUBDIRS = ("runs", "checkpoints", "embeddings", "exports")
#: sections owned by the code itself; update_config refuses to touch them
RESERVED_SECTIONS = ("workspace", "dataset", "classes")
#: keys naviewer adds to [dataset] next to the source's describe() dict
_OWN_DATASET_KEYS = ("content_hash", "samples", "inside_workspace")
#: the [dataset] keys that name files: written relative to the workspace when they lie inside it
_DATASET_PATH_KEYS = ("path", "root")

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$")


def dataset_hash(content_hashes: "list[str] | tuple[str, ...]") -> str:
    """Identity of a dataset: BLAKE2b-128 over its per-sample content hashes, in id order."""
    digest = hashlib.blake2b(digest_size=16)
    for value in content_hashes:
        digest.update(value.encode("ascii", "replace"))
        digest.update(b"\n")
    return digest.hexdigest()


def _utc_now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _check_name(kind: str, name: str) -> str:
    """Run names and tags become directory/file names: keep them plain (no separators, no '..')."""
    if isinstance(name, str) and len(name) > MAX_NAME:  # a 300-character --run: "File name too long" (a sweep)
        raise NaviewerError(f"bad {kind} name: {len(name)} characters, at most {MAX_NAME} (it names files and folders)")
    if isinstance(name, str) and name.strip(".") == "":  # '.' and '..' are made of allowed characters: say why
        raise NaviewerError(f"bad {kind} name {name!r}: a name cannot be only dots (it names a folder)")
    if not isinstance(name, str) or not _NAME_RE.match(name) or ".." in name:
        # "letters" read as any letter, and 'prüfung-1' was refused by it (a bad-input probe, session 27)
        raise NaviewerError(
            f"bad {kind} name {name!r}: use ASCII letters (a-z, A-Z), digits, '.', '_', '-', '+' (no path "
            "separators, no '..')"
        )
    return name


check_name = _check_name  # the commands check a --run before they build a path from it

#: a run name or tag is a folder's and a file's name (with suffixes such as "-finetune-2" and ".lock" added)
MAX_NAME = 128  # as _NAME_RE allows


class Workspace:
    """An opened workspace. Use :meth:`create` or :meth:`open`; close it (or use ``with``) when done."""

    def __init__(self, path: Path, config: dict[str, Any], store: WorkspaceStore) -> None:
        self.path = path
        self._config = config
        self.store = store

    # -- life cycle -------------------------------------------------------------------------
    @staticmethod
    def refuse_taken_path(path: PathLike) -> None:
        """A new workspace goes where nothing is, or into an empty folder; callers that do long work first (crafting
        an attack) check here before it, not after."""
        path = Path(path).expanduser()
        if path.exists() and (not path.is_dir() or any(path.iterdir())):
            raise NaviewerError("cannot create a workspace here: the path exists and is not an empty directory", path)

    @classmethod
    def create(
        cls,
        path: PathLike,
        dataset: "Optional[ImageDataset]" = None,
        settings: Optional[dict[str, Any]] = None,
        ctx: Optional[JobContext] = None,
        finish: Optional[Callable[["Workspace"], None]] = None,
    ) -> "Workspace":
        """Make a new workspace at ``path`` (absent or an empty directory) and register ``dataset``.

        ``finish`` completes it (anchors, [evaluation], [dift]) while it is still the hidden staging folder: the
        workspace appears whole or not at all. Written after the rename, a kill in between left a workspace without
        those sections that opened without a word (a bad-input probe, session 27)."""
        ctx = ensure_context(ctx)
        path = Path(path).expanduser().absolute()
        cls.refuse_taken_path(path)
        _sweep_dead_staging(path)
        repeated = repeated_name(list(getattr(dataset, "class_names", None) or [])) if dataset is not None else None
        if repeated is not None:  # caught only when the finished workspace was read back: a dead folder
            raise NaviewerError(f"the dataset names the class {repeated!r} twice: every class needs its own name",
                                getattr(dataset, "root", None) or getattr(dataset, "path", None))
        staging = path.parent / f".{path.name}.creating-{os.getpid()}-{secrets.token_hex(4)}"
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            staging.mkdir()
        except OSError as exc:
            blocker = next((folder for folder in path.absolute().parents if folder.exists()), None)
            if blocker is not None and not blocker.is_dir():  # "File exists" hid that a parent is a file (a sweep)
                raise NaviewerError(f"cannot create a workspace here: {blocker} is a file, not a folder", path) from None
            raise NaviewerError(f"cannot create a workspace here: {describe_os_error(exc)}", path) from None
        try:
            (staging / _STAGING_HOST).write_text(socket.gethostname(), encoding="utf-8")  # whose process this is
            for name in SUBDIRS:
                (staging / name).mkdir()
            config: dict[str, Any] = {
                "workspace": {"schema": WORKSPACE_SCHEMA, "created": _utc_now(), "naviewer_version": __version__},
                "settings": dict(settings or {}),
            }
            store = WorkspaceStore(staging / STORE_NAME, create=True)
            try:
                if dataset is not None:
                    config.update(_register_dataset(store, dataset, ctx))
            finally:
                store.close()
            write_config(staging / CONFIG_NAME, config)
            if finish is not None:
                staged = cls.open(staging)
                try:
                    finish(staged)
                finally:
                    staged.close()
            (staging / _STAGING_HOST).unlink()
            if path.exists():
                path.rmdir()  # empty (checked above); rename cannot replace a directory everywhere
            os.rename(staging, path)
        except NaviewerError as exc:
            shutil.rmtree(staging, ignore_errors=True)
            if exc.path and Path(exc.path).is_relative_to(staging):  # name the workspace, not the staging folder
                message = exc.message.removesuffix("; nothing was changed")
                raise NaviewerError(f"{message} ({Path(exc.path).name}); nothing was left behind", path) from None
            raise
        except OSError as exc:
            shutil.rmtree(staging, ignore_errors=True)
            raise NaviewerError(f"cannot create the workspace: {describe_os_error(exc)}; nothing was left behind",
                                path) from None
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return cls.open(path)

    @classmethod
    def open(cls, path: PathLike, read_only: Optional[bool] = None) -> "Workspace":
        """Open an existing workspace; NaviewerError (naming the file) if it is missing, corrupt or too new.

        ``read_only`` None (the default): for writing when the workspace can be written, else for
        reading only (listing, review views, export elsewhere); True: never write. Writes to a
        read-only workspace are a NaviewerError and change nothing.
        """
        path = Path(path).expanduser().absolute()
        if not path.exists():
            raise NaviewerError("no such workspace", path)
        if not path.is_dir():
            raise NaviewerError("not a naviewer workspace (not a directory)", path)
        config = read_config(path / CONFIG_NAME)
        store = WorkspaceStore(path / STORE_NAME, read_only=read_only)
        try:
            _check_consistency(path, config, store)
        except BaseException:
            store.close()
            raise
        return cls(path, config, store)

    @property
    def read_only(self) -> bool:
        """True when this workspace was opened for reading only."""
        return self.store.read_only

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> "Workspace":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Workspace {self.path} n={self.store.sample_count()}>"

    # -- configuration ----------------------------------------------------------------------
    @property
    def config(self) -> dict[str, Any]:
        """The parsed ``workspace.toml`` (treat as read-only; change it through :meth:`update_config`)."""
        return self._config

    @property
    def config_path(self) -> Path:
        return self.path / CONFIG_NAME

    def reload_config(self) -> dict[str, Any]:
        """Re-read ``workspace.toml`` after another connection or process rewrote it (returned)."""
        self._config = read_config(self.config_path)
        return self._config

    @property
    def settings(self) -> dict[str, Any]:
        return dict(self._config.get("settings", {}))

    @property
    def class_names(self) -> list[str]:
        return list(self._config.get("classes", {}).get("names", []))

    def update_config(self, section: str, values: dict[str, Any], *, replace: bool = False) -> None:
        """Merge ``values`` into ``[section]`` and rewrite the file atomically; a ``None`` value deletes its key.
        ``replace``: ``values`` become the whole section (its other keys go), decided under the lock: two ``naviewer
        anchors`` at once each deleted the keys it had read at its start, and the workspace kept a mix of both
        anchor sets (a bad-input probe, session 30).

        The file is re-read under the workspace's cross-process lock (:func:`~naviewer.workspace.config.config_lock`),
        so sections written meanwhile by another process or thread survive.
        """
        if section in RESERVED_SECTIONS:
            raise NaviewerError(f"[{section}] is managed by naviewer and cannot be updated", self.config_path)
        if not re.match(r"^[A-Za-z_][A-Za-z0-9_-]*$", section):
            raise NaviewerError(f"bad configuration section name {section!r}", self.config_path)
        with config_lock(self.config_path):
            config = read_config(self.config_path)
            current = config.get(section, {})
            if not isinstance(current, dict):
                raise NaviewerError(f"{section} = {current!r} in the file is not a table; cannot update [{section}]",
                                    self.config_path)
            current = {} if replace else dict(current)
            for key, value in values.items():
                if value is None:
                    current.pop(key, None)
                else:
                    current[key] = value
            if current:
                config[section] = current
            else:  # every key deleted: the section goes too (an empty [anchors] is no anchors, and reads as one)
                config.pop(section, None)
            write_config(self.config_path, config)
            self._config = read_config(self.config_path)

    def register_dataset(self, dataset: "ImageDataset", ctx: Optional[JobContext] = None) -> None:
        """Register the samples of a workspace created without a dataset. A dataset inside the workspace (the
        crafted set of ``naviewer new --attack``, in ``dataset/``) is recorded relative to it, so that a copied or
        moved workspace reads its own copy, not the original's."""
        if self.store.sample_count():
            raise NaviewerError("this workspace already has a dataset", self.path / STORE_NAME)
        sections = _register_dataset(self.store, dataset, ensure_context(ctx))
        sections["dataset"] = _relative_dataset_paths(sections["dataset"], self.path)
        with config_lock(self.config_path):
            config = read_config(self.config_path)
            config.update(sections)
            write_config(self.config_path, config)
            self._config = read_config(self.config_path)

    def dataset_record(self) -> dict[str, Any]:
        """The [dataset] section with its paths absolute: the ones recorded relative to the workspace (a dataset
        inside it) resolved against where the workspace is now. Read this, not ``config["dataset"]``."""
        return absolute_dataset_record(self._config.get("dataset", {}), self.path)

    def checked_dataset(self) -> "ImageDataset":
        """:meth:`dataset`, each image checked against its registered content hash as it is decoded: what the
        passes that read every image use (training, embedding for detection), so a replaced or swapped image is
        named instead of scored under another sample's id (opening checks only a sample of them)."""
        from naviewer.workspace.store import SampleColumn
        from naviewer.workspace.verified import VerifiedDataset

        record = self.dataset_record()
        where = record.get("path") or record.get("root") or self.config_path
        return VerifiedDataset(self.dataset(), SampleColumn(self.store, "hash", self.store.sample_count()), where)

    def dataset(self) -> "ImageDataset":
        """Re-open the dataset recorded in ``workspace.toml`` through ``naviewer.data.open_dataset``."""
        spec = {k: v for k, v in self.dataset_record().items() if k not in _OWN_DATASET_KEYS}
        if not spec:
            raise NaviewerError("this workspace has no dataset", self.config_path)
        if spec.get("kind") == "memory":
            raise NaviewerError(
                "this workspace's dataset was built in memory and has no source to re-open", self.config_path
            )
        try:
            from naviewer.data import open_dataset  # type: ignore[attr-defined]
        except ImportError as exc:  # pragma: no cover - depends on the data package
            raise NaviewerError(f"cannot re-open datasets ({exc})", self.config_path) from exc
        for key in _DATASET_PATH_KEYS:  # a hand-edited root = 5 reached os.fspath as a TypeError traceback
            if key in spec and not isinstance(spec[key], str):
                raise NaviewerError(f"[dataset] {key} must be a path in quotes, got {spec[key]!r}", self.config_path)
        try:
            dataset = open_dataset(spec)
        except (TypeError, AttributeError) as exc:  # another wrong type in a hand-edited [dataset]
            raise NaviewerError(f"[dataset] cannot be opened as written ({exc})", self.config_path) from None
        except NaviewerError as exc:
            if exc.message.startswith("the dataset changed") and "size" in spec:
                # with 50,000 images "now has 49,999" does not say which one went (a bad-input probe, session 26)
                raise NaviewerError(exc.message + self._what_changed(open_dataset, spec), exc.path) from None
            if exc.path is not None:
                raise
            # "unknown dataset kind 'x' in description", "...has no 'root'": no file named (a sweep, session 17)
            raise NaviewerError(f"[dataset] cannot be opened as written: {exc.message}", self.config_path) from None
        expected = self.store.sample_count()
        if len(dataset) != expected:
            raise NaviewerError(
                f"the dataset source now has {len(dataset)} samples, the workspace registered {expected}",
                self.config_path,
            )
        if not getattr(self, "_samples_checked", False):  # once per open workspace, not per call (runs re-open often)
            self._check_same_samples(dataset)
            self._samples_checked = True
        return dataset

    #: how many scattered samples :meth:`dataset` compares by key and by pixels (a cost independent of N)
    IDENTITY_KEYS = 256
    IDENTITY_PIXELS = 16

    def _what_changed(self, open_dataset: Any, spec: dict[str, Any], shown: int = 3) -> str:
        """" (missing: emu/7.png; new: emu/8.png)": the registered samples' source keys the source no longer lists
        and those it lists anew, a few of each; "" where the source cannot be listed."""
        try:
            dataset = open_dataset({k: v for k, v in spec.items() if k != "size"})
            now = {dataset.source_key(i) for i in range(len(dataset))}
            registered = list(self.store.source_keys())  # streamed in windows: one IN (...) of every id went past
        except Exception:  # noqa: BLE001 - SQLite's parameter limit on a large set (a review, session 27); a diagnosis
            return ""      # only: the error it adds to stands without it
        was = set(registered)
        parts = []
        for word, keys in (("missing", [key for key in registered if key not in now]), ("new", sorted(now - was))):
            if keys:
                more = f" and {len(keys) - shown:,} more" if len(keys) > shown else ""
                parts.append(f"{word}: {', '.join(keys[:shown])}{more}")
        return f" ({'; '.join(parts)})" if parts else ""

    def _check_same_samples(self, dataset: "ImageDataset") -> None:
        """The re-opened source must still list the registered samples in the registered order: every label,
        and the source key of the first and last 32 and of 256 scattered samples, and the pixels of 16 of them.
        A reordered or edited file list with the same length used to pass, and every id (reviews, flags, the
        export) then pointed at another image. (A single edited line away from the checked rows can pass.)"""
        n = len(dataset)
        if n == 0:
            return
        record = self.dataset_record()  # a file list records its path, an image folder its root
        where = record.get("path") or record.get("root") or self.config_path
        labels = np.asarray(dataset.labels, dtype=np.int64)
        stored_labels = self.store.labels()
        if len(stored_labels) == n and not np.array_equal(labels, stored_labels):
            first = int(np.flatnonzero(labels != stored_labels)[0])
            raise NaviewerError(f"the dataset source no longer matches the workspace: sample {first} has label "
                                f"{int(labels[first])}, registered as {int(stored_labels[first])} (the list was "
                                "edited or reordered); restore it, or create a new workspace from it", where)
        rng = np.random.default_rng(n)
        ends = np.r_[np.arange(min(n, 32)), np.arange(max(0, n - 32), n)]
        ids = np.unique(np.r_[ends, rng.choice(n, size=min(n, self.IDENTITY_KEYS), replace=False)])
        stored = self.store.sample_values(ids, "source_key")
        for i in ids.tolist():
            key = dataset.source_key(i)
            if i in stored and key != stored[i]:
                raise NaviewerError(f"the dataset source no longer matches the workspace: sample {i} was "
                                    f"{stored[i]!r} when registered, the source now lists {key!r} there (the list "
                                    "was reordered or edited); restore it, or create a new workspace from it", where)
        picked = rng.choice(ids, size=min(len(ids), self.IDENTITY_PIXELS), replace=False)
        hashes = self.store.sample_values(picked, "hash")
        for i in sorted(int(x) for x in picked):
            if i in hashes and hashes[i] and dataset.content_hash(i) != hashes[i]:
                raise NaviewerError(f"the dataset source no longer matches the workspace: sample {i} "
                                    f"({dataset.source_key(i)}) has other pixels than when it was registered (the "
                                    "image was replaced); restore it, or create a new workspace", where)

    # -- files ------------------------------------------------------------------------------
    def run_dir(self, name: str) -> Path:
        directory = self.path / "runs" / _check_name("run", name)
        make_folder(directory)
        return directory

    def checkpoint_dir(self, run: str, create: bool = True) -> Path:
        """The run's checkpoint folder; made unless ``create`` is False (a lookup: with ``checkpoints`` a file, the
        analyst panel's "is the encoder there?" raised NotADirectoryError while making it, and did not open)."""
        directory = self.path / "checkpoints" / _check_name("run", run)
        if create:
            make_folder(directory)
        return directory

    @property
    def exports_dir(self) -> Path:
        return self.path / "exports"

    def embeddings_path(self, run: str, tag: str) -> Path:
        return self.path / "embeddings" / _check_name("run", run) / f"{_check_name('tag', tag)}.npy"

    def save_embeddings(self, run: str, tag: str, array: np.ndarray) -> Path:
        """Write ``array`` (N, D) atomically as ``.npy``; float16/float32 keep their dtype."""
        path = self.embeddings_path(run, tag)
        try:
            atomic_save_npy(path, array)
        except TypeError as exc:
            raise NaviewerError(f"cannot save embeddings ({exc})", path) from exc
        return path

    def load_embeddings(self, run: str, tag: str, mmap: bool = True) -> np.ndarray:
        """Embeddings saved by :meth:`save_embeddings`, memory-mapped read-only by default."""
        path = self.embeddings_path(run, tag)
        if not path.is_file():
            # the names there: a tag's 8 hex digits are not guessable (posthoc:last for posthoc:last-1095a40b; a
            # newcomer, session 34)
            try:
                there = [f"{r}:{t}" for r, t in self.embeddings()  # not the map's 2-D projection caches
                         if not t.endswith(("-pca2d", "-umap2d", "-tsne2d"))]
            except NaviewerError:
                there = []
            said = (f"; the workspace has {', '.join(there[:8])}" + (f" and {len(there) - 8} more" if len(there) > 8
                                                                     else "")) if there else "; the workspace has none"
            raise NaviewerError(f"no such embeddings file{said}", path)
        from naviewer.io import not_npy_reason

        try:
            kind = not_npy_reason(path)
        except OSError as exc:
            raise NaviewerError(f"cannot read the embeddings file ({exc.strerror or exc})", path) from None
        if kind is not None:  # a text file was "it holds Python objects (pickles are never loaded)" (a sweep)
            raise NaviewerError(f"corrupt embeddings file ({kind})", path)
        try:
            array = np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
        except NPY_READ_ERRORS as exc:
            raise NaviewerError(f"corrupt embeddings file ({npy_error_words(exc)})", path) from None
        if not isinstance(array, np.ndarray) or array.ndim != 2:
            raise NaviewerError(f"embeddings must be a 2-D array (one row per sample), found shape "
                                f"{getattr(array, 'shape', None)}", path)
        if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
            raise NaviewerError(f"embeddings must be numbers, found {array.dtype}", path)
        expected = self.store.sample_count()
        if len(array) != expected:
            raise NaviewerError(f"the embeddings have {len(array)} rows but the workspace has {expected} samples", path)
        return array

    def embeddings(self, run: Optional[str] = None) -> list[tuple[str, str]]:
        """``(run, tag)`` of every saved embeddings file, optionally for one run. None saved (the folder deleted to
        free space) is an empty list; a folder that cannot be listed is a NaviewerError naming it (it reached the
        window as a bare FileNotFoundError, and the analyst panel silently did not open)."""
        root = self.path / "embeddings"
        try:
            runs = [root / run] if run is not None else sorted(p for p in root.iterdir() if p.is_dir())
            found = []
            for directory in runs:
                if directory.is_dir():
                    found.extend((directory.name, f.stem) for f in sorted(directory.glob("*.npy"))
                                 if not f.name.startswith("."))
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise NaviewerError(f"cannot list the saved embeddings: {describe_os_error(exc)}",
                                exc.filename or root) from None
        return found

    @property
    def ground_truth_path(self) -> Path:
        return self.path / GROUND_TRUTH_NAME

    def write_ground_truth(self, record: dict[str, Any]) -> None:
        """Keep what an attack poisoned, apart from detection (only evaluation reads it)."""
        with config_lock(self.config_path):
            try:
                atomic_write_json(self.ground_truth_path, record)
            except OSError as exc:
                raise NaviewerError(f"cannot write the ground truth: {describe_os_error(exc)}",
                                    self.ground_truth_path) from None

    def read_ground_truth(self) -> Optional[dict[str, Any]]:
        path = self.ground_truth_path
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except UnicodeDecodeError:  # (random bytes: a bare UnicodeDecodeError kept the analyst panel shut)
            raise NaviewerError("the ground truth is not a text file (not UTF-8)", path) from None
        except OSError as exc:  # a folder, unreadable, a link loop
            raise NaviewerError(f"cannot read the ground truth: {describe_os_error(exc)}", path) from None
        try:
            value = json_loads(text)
        except ValueError as exc:
            raise NaviewerError(f"garbled ground truth ({exc})", path) from exc
        if not isinstance(value, dict):
            raise NaviewerError("ground truth must be a JSON object", path)
        return value


def _check_consistency(path: Path, config: dict[str, Any], store: WorkspaceStore) -> None:
    """workspace.toml and the database describe the same samples: counts agree, labels name classes."""
    count = store.sample_count()
    recorded = config.get("dataset", {}).get("samples")
    if recorded is not None and recorded != count:
        raise NaviewerError(
            f"the database holds {count} samples but workspace.toml records {recorded} "
            "(one of them was changed or replaced by another tool)",
            path / STORE_NAME,
        )
    if count and "dataset" in config and "classes" not in config:
        # the section deleted by hand: the workspace opened, and export wrote an empty classes.txt beside labels
        # 0, 1, 2 with status 0 (a bad-input probe, session 27)
        raise NaviewerError("[classes] is missing, but the samples are labelled (naviewer writes it with the "
                            "dataset's class names): was workspace.toml edited? Put the section back", path / CONFIG_NAME)
    if count:
        low, high = store.label_range
        names = config.get("classes", {}).get("names", [])
        # names = [] with labelled samples: a hand edit (naviewer names every label of a dataset, "0", "1", ... at
        # least); a workspace made without a dataset (the benches' stores) has no [classes] names at all
        named = "names" in config.get("classes", {})
        if low < -1 or (named and high >= len(names)):
            bad = low if low < -1 else high
            if not names and low >= -1:
                raise NaviewerError(f"[classes] names is empty, but the samples are labelled (labels up to {high}): "
                                    "give each class its name, as naviewer wrote them", path / CONFIG_NAME)
            raise NaviewerError(
                f"a sample has label {bad}, but workspace.toml names {len(names)} classes (labels 0..{len(names) - 1}, "
                "or -1 for unlabeled)",
                path / STORE_NAME,
            )
    if count and "dataset" not in config and "classes" in config:
        # the section deleted by hand: the workspace opened and every later step (the analyst, Train, Detect) failed
        # one by one with "this workspace has no dataset" (a GUI probe, session 33); a store made without a dataset
        # (the benches') has no [classes] either
        raise NaviewerError(f"[dataset] is missing, but the database holds {count:,} samples: was workspace.toml "
                            "edited? Put the section back (naviewer writes it with the dataset's path and kind)",
                            path / CONFIG_NAME)


def absolute_dataset_record(section: Any, workspace: Path) -> dict[str, Any]:
    """A [dataset] section with the paths recorded relative to the workspace (a dataset inside it) made absolute
    against ``workspace``: :meth:`Workspace.dataset_record`, for a config read without opening the workspace."""
    record = dict(section) if isinstance(section, dict) else {}
    if record.get("inside_workspace"):
        for key in _DATASET_PATH_KEYS:
            if isinstance(record.get(key), str) and not Path(record[key]).is_absolute():
                record[key] = str(Path(workspace) / record[key])
    return record


def dataset_folders(record: dict[str, Any]) -> list[Path]:
    """The folders a dataset record's images lie in: its ``root``, and its list's folder (``path`` a file) or
    ``path`` itself (a folder). What nothing may be written into (an export) and no "trusted" set may be drawn from."""
    folders = []
    if record.get("root"):
        folders.append(Path(os.path.abspath(str(record["root"]))))
    if record.get("path"):
        listed = Path(os.path.abspath(str(record["path"])))
        folders.append(listed.parent if listed.suffix else listed)
    return folders


def _relative_dataset_paths(section: dict[str, Any], workspace: Path) -> dict[str, Any]:
    """``section`` with the paths that lie inside ``workspace`` made relative to it (and marked so)."""
    out = dict(section)
    for key in _DATASET_PATH_KEYS:
        value = out.get(key)
        if isinstance(value, str) and Path(value).is_absolute():
            try:
                out[key] = Path(value).relative_to(workspace).as_posix()
            except ValueError:
                continue
            out["inside_workspace"] = True
    return out


def _warn_label_conflicts(store: WorkspaceStore, dataset: "ImageDataset", description: dict[str, Any]) -> None:
    """Say when identical images carry different labels (a file hard-linked or copied into two class
    folders was registered once in each, silently): each keeps its own label, which the analyst should know."""
    import warnings

    from naviewer.data.base import DatasetWarning

    if description.get("kind") != "image-folder":
        return  # where a file can sit in two class folders; the GROUP BY costs ~20 % of registering 1M rows
    count, pairs = store.label_conflicts()
    if not count:
        return
    names = list(dataset.class_names)
    labels = store.labels()
    keys = store.sample_values([i for pair in pairs for i in pair])

    def said(i: int) -> str:
        label = int(labels[i])
        return f"{keys.get(i, i)} ({names[label] if 0 <= label < len(names) else label})"

    examples = "; ".join(f"{said(a)} = {said(b)}" for a, b in pairs)
    where = description.get("root") or description.get("path") or "the dataset"
    warnings.warn(f"{where}: {count:,} image(s) appear with identical pixels under two or more labels (e.g. {examples}); "
                  "each copy keeps its own label. A file linked or copied into two class folders? Remove the wrong "
                  "copy, or expect these samples to look mislabelled", DatasetWarning, stacklevel=2)


#: inside a staging folder: the host whose process makes it (a PID says nothing of another machine's process)
_STAGING_HOST = ".creating-host"


def _sweep_dead_staging(path: Path) -> None:
    """Remove ``.NAME.creating-PID-*`` staging folders beside ``path`` whose process is gone (a ``new`` killed by SIGKILL
    or a crash left them for ever; a bad-input probe, session 27). A live process's staging is left alone, and one
    made on another machine (a shared file system: its PID means nothing here) or whose host is not recorded."""
    try:  # every workspace's staging in this folder, not only this name's: `new other` left a killed `new wn`'s
        leftovers = list(path.parent.glob(".*.creating-*"))  # staging there (a bad-input probe, session 28)
    except OSError:
        return
    for folder in leftovers:
        match = re.fullmatch(r"\..+\.creating-(\d+)-[0-9a-f]+", folder.name)
        if match is None or not folder.is_dir() or _pid_alive(int(match.group(1))):
            continue
        try:
            host = (folder / _STAGING_HOST).read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError):
            continue
        if host == socket.gethostname():
            shutil.rmtree(folder, ignore_errors=True)


def _relative(path: Path, root: Any) -> str:
    """``path`` under the dataset's ``root`` as the user sees it there ("horse/bad.png"), else whole."""
    try:
        shown = Path(path).relative_to(Path(root)).as_posix() if root else str(path)
    except (TypeError, ValueError):
        return str(path)
    # the root itself (a file list that lists itself) read as "." (a bad-input probe, session 30)
    return Path(path).name if shown == "." else shown


def _register_dataset(store: WorkspaceStore, dataset: "ImageDataset", ctx: JobContext) -> dict[str, Any]:
    """Hash and register every sample; returns the [dataset] and [classes] config sections.

    The rows stream from the dataset into the store in chunks (``WorkspaceStore.add_sample_rows``):
    no list of keys or hashes is built, and the dataset hash is folded in as the rows go by.
    """
    n = len(dataset)
    message = "registering samples"
    ctx.progress(0, n, message)
    labels = np.asarray(dataset.labels, dtype=np.int64).reshape(-1)
    if len(labels) != n:
        raise NaviewerError(f"the dataset has {n} samples but {len(labels)} labels")
    # kept.txt lists absolute paths for file-backed sources, the keys themselves for the others: a key of
    # the latter must also read back from a `path label` line (no edge whitespace, no leading '#')
    description = dict(dataset.describe())
    check = name_problem if source_root(description) is not None else list_line_problem
    digest = hashlib.blake2b(digest_size=16)  # what dataset_hash computes, one row at a time
    step = 256

    def rows():  # noqa: ANN202 - a generator of (key, hash, label)
        for start in range(0, n, step):  # labels as Python ints a step at a time (10M at once: ~350 MB)
            ctx.check()
            if start:
                ctx.progress(start, n, message)
            for index, label in enumerate(labels[start:start + step].tolist(), start=start):
                yield row(index, label)

    def row(index: int, label: int) -> tuple[str, str, int]:
        key = str(dataset.source_key(index))
        problem = check(key)
        if problem:
            where = description.get("root") or description.get("path")
            raise NaviewerError(f"sample {index} cannot be registered: {problem}", where)
        try:
            content = str(dataset.content_hash(index))
        except NaviewerError as exc:
            if exc.path is None:
                raise
            # every unreadable file in one message: one a Create named the next one each time (a newcomer pressed
            # Create three times for three broken PNGs; session 27). Nothing is kept: the error below ends it.
            unreadable.append((Path(exc.path), exc.message))
            content = ""
        digest.update((content + "\n").encode("ascii", "replace"))
        return key, content, label

    unreadable: list[tuple[Path, str]] = []
    added = store.add_sample_rows(rows())
    ctx.progress(n, n, message)
    if unreadable:
        shown = 5
        where = description.get("root") or description.get("path")
        listed = "; ".join(f"{_relative(path, where)}: {problem}" for path, problem in unreadable[:shown])
        more = f"; and {len(unreadable) - shown:,} more" if len(unreadable) > shown else ""
        raise NaviewerError(f"{len(unreadable):,} image file{'s' if len(unreadable) != 1 else ''} of the dataset "
                            f"cannot be read ({listed}{more}): move {'them' if len(unreadable) != 1 else 'it'} out of "
                            "the dataset, or repair, and create the workspace again", unreadable[0][0])
    if added != n:  # pragma: no cover - the generator yields one row per label
        raise NaviewerError(f"registered {added} of {n} samples")
    _warn_label_conflicts(store, dataset, description)
    description = {k: v for k, v in dict(dataset.describe()).items() if k not in _OWN_DATASET_KEYS}
    description.update({"content_hash": digest.hexdigest(), "samples": n})
    sections: dict[str, Any] = {"dataset": description}
    sections["classes"] = {"names": [str(name) for name in dataset.class_names]}
    return sections
