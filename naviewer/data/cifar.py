"""CIFAR-10 and CIFAR-100 in the official python-pickle format.

``cifar-10-batches-py/`` holds ``data_batch_1``..``data_batch_5``, ``test_batch`` and
``batches.meta``; ``cifar-100-python/`` holds ``train``, ``test`` and ``meta``. Each batch is a
dict with ``data`` (uint8, N x 3072, channel-major rows: 1024 red, 1024 green, 1024 blue values of
a 32x32 image), labels and file names. Files load through :mod:`naviewer.data.safe_pickle`, so a
tampered batch cannot run code. All images are decoded once into one (N, 32, 32, 3) array, which
``ImageStore.from_dataset`` takes without copying or looping.

Training batches are read from ``data_batch_1`` upward until the first missing number, so subsets
with fewer than five batches (like the test subset shipped with naviewer) load; a later batch after
a gap is an error rather than silently skipped.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import numpy as np

from naviewer.data.base import HeldLabelsDataset, pixel_hash
from naviewer.data.names import name_problem
from naviewer.data.safe_pickle import load_pickle
from naviewer.errors import NaviewerError

CIFAR10_DIR = "cifar-10-batches-py"
CIFAR100_DIR = "cifar-100-python"
SPLITS = ("train", "test")
_SIDE = 32
_ROW = 3 * _SIDE * _SIDE


def find_cifar_dir(path: "str | Path") -> Optional[tuple[str, Path]]:
    """``("cifar10" | "cifar100", batches_dir)`` if ``path`` is or contains a CIFAR folder, else None."""
    path = Path(path)
    for kind, name in (("cifar10", CIFAR10_DIR), ("cifar100", CIFAR100_DIR)):
        if path.name == name and path.is_dir():
            return kind, path
    found = [(kind, path / name) for kind, name in (("cifar10", CIFAR10_DIR), ("cifar100", CIFAR100_DIR))
             if (path / name).is_dir()]
    if len(found) > 1:  # CIFAR-10 was opened silently when both were there (a sweep)
        raise NaviewerError(f"this folder holds both {CIFAR10_DIR}/ and {CIFAR100_DIR}/: name the one to open "
                            f"({path / CIFAR10_DIR} or {path / CIFAR100_DIR})", path)
    for name in (CIFAR10_DIR, CIFAR100_DIR):
        if (path / name).exists() and not (path / name).is_dir():  # it read "no class folders here"
            raise NaviewerError(f"{name} is a file, not the folder of CIFAR batches it should be", path / name)
    if not found:  # the batches copied into a folder of another name read "no class folders here" (a sweep)
        if (path / "batches.meta").is_file() and (path / "data_batch_1").is_file():
            return "cifar10", path
        if (path / "meta").is_file() and (path / "train").is_file() and (path / "test").is_file():
            return "cifar100", path
    return found[0] if found else None


def _as_str(value: Any) -> str:
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else str(value)


def _read_dict(path: Path) -> dict[str, Any]:
    """Unpickle a CIFAR file and normalise its keys to ``str``."""
    obj = load_pickle(path)
    if not isinstance(obj, dict):
        raise NaviewerError(f"expected a dict in a CIFAR file, found {type(obj).__name__}", path)
    return {_as_str(key): value for key, value in obj.items()}


def _class_names(path: Path, key: str) -> list[str]:
    meta = _read_dict(path)
    names = meta.get(key)
    if not isinstance(names, (list, tuple)) or not names:
        raise NaviewerError(f"meta file has no '{key}' list of class names", path)
    result = [_as_str(name) for name in names]
    for index, name in enumerate(result):
        problem = name_problem(name)
        if problem:  # class names become the lines of classes.txt in every export
            raise NaviewerError(f"class {index}: {problem}", path)
    return result


def _batch_arrays(path: Path, label_key: str, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Validated (data (n, 3072) uint8, labels (n,) int64) of one batch file."""
    batch = _read_dict(path)
    data = batch.get("data")
    if not isinstance(data, np.ndarray):
        raise NaviewerError("batch has no 'data' array", path)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != _ROW:
        raise NaviewerError(f"'data' is {data.dtype} {data.shape}, expected uint8 (N, {_ROW})", path)
    raw = batch.get(label_key)
    if raw is None:
        raise NaviewerError(f"batch has no '{label_key}'", path)
    try:
        labels = np.asarray(raw)
    except (ValueError, TypeError):
        raise NaviewerError(f"'{label_key}' is not a list of integers", path) from None
    if labels.ndim != 1 or (labels.size and labels.dtype.kind not in "iu"):
        raise NaviewerError(f"'{label_key}' is not a flat list of integers", path)
    labels = labels.astype(np.int64)
    if len(labels) != len(data):
        raise NaviewerError(f"{len(data)} images but {len(labels)} labels", path)
    bad = np.flatnonzero((labels < 0) | (labels >= num_classes))
    if bad.size:
        meta = path.parent / ("batches.meta" if (path.parent / "batches.meta").is_file() else "meta")
        raise NaviewerError(  # the batch was blamed alone where the meta file had too few class names (a sweep)
            f"label {int(labels[bad[0]])} of image {int(bad[0])} is out of range 0..{num_classes - 1}: either this "
            f"batch is damaged, or {meta.name} names too few classes ({num_classes})", path
        )
    return data, labels


def cifar_class_names(kind: str, root: Path, coarse: bool = False) -> list[str]:
    """The class names in a CIFAR folder's meta file (``kind`` and ``root`` as :func:`find_cifar_dir` gives them)."""
    if kind == "cifar10":
        return _class_names(root / "batches.meta", "label_names")
    return _class_names(root / "meta", "coarse_label_names" if coarse else "fine_label_names")


class CifarDataset(HeldLabelsDataset):
    """One split of CIFAR-10 or CIFAR-100, fully decoded in memory.

    ``root`` is the ``cifar-10-batches-py`` / ``cifar-100-python`` folder or its parent. CIFAR-100
    uses its 100 fine labels unless ``coarse=True`` (20 superclasses).
    """

    def __init__(self, root: "str | Path", split: str = "train", coarse: bool = False) -> None:
        found = find_cifar_dir(root)
        if found is None:
            raise NaviewerError(f"no {CIFAR10_DIR}/ or {CIFAR100_DIR}/ folder here", root)
        if split not in SPLITS:
            raise NaviewerError(f"unknown CIFAR split {split!r}; use one of {', '.join(SPLITS)}", root)
        self.kind, self.root = found[0], found[1].resolve()
        self.split = split
        self.coarse = bool(coarse) and self.kind == "cifar100"
        files = self._files()
        self._class_names = cifar_class_names(self.kind, self.root, self.coarse)
        if self.kind == "cifar10":
            label_key = "labels"
        else:
            label_key = "coarse_labels" if self.coarse else "fine_labels"
        datas, labels = [], []
        for path in files:
            data, lab = _batch_arrays(path, label_key, len(self._class_names))
            datas.append(data)
            labels.append(lab)
        data = np.concatenate(datas) if len(datas) > 1 else datas[0]
        # channel-major rows -> (N, 32, 32, 3), decoded once
        self._images = np.ascontiguousarray(data.reshape(-1, 3, _SIDE, _SIDE).transpose(0, 2, 3, 1))
        self._labels = np.concatenate(labels)
        self._batch_names = [path.name for path in files]
        self._batch_starts = np.cumsum([0] + [len(d) for d in datas])[:-1]

    def _files(self) -> list[Path]:
        if self.kind == "cifar100":
            return [self.root / self.split]
        if self.split == "test":
            return [self.root / "test_batch"]
        files: list[Path] = []
        number = 1
        while (self.root / f"data_batch_{number}").exists():
            files.append(self.root / f"data_batch_{number}")
            number += 1
        if not files:
            raise NaviewerError("training batch not found", self.root / "data_batch_1")
        later = sorted(p.name for p in self.root.glob("data_batch_*") if p.name[len("data_batch_"):].isdigit()
                       and int(p.name[len("data_batch_"):]) > number)
        if later:
            raise NaviewerError(f"training batch missing (but {', '.join(later)} exist)", self.root / f"data_batch_{number}")
        return files

    # -- ImageDataset ---------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._images)

    def image(self, index: int) -> np.ndarray:
        """A copy (3 KB), so a caller that stamps a trigger in place cannot alter the clean set."""
        return self._images[index].copy()

    @property
    def images(self) -> np.ndarray:
        """All images, uint8 (N, 32, 32, 3), shared (not copied): treat as read-only.

        Left writable on purpose so ``torch.from_numpy`` takes it without a warning.
        """
        return self._images

    def as_array(self) -> np.ndarray:
        return self._images

    def source_key(self, index: int) -> str:
        index = int(index) % len(self) if index < 0 else int(index)
        batch = int(np.searchsorted(self._batch_starts, index, side="right")) - 1
        return f"{self._batch_names[batch]}/{index - int(self._batch_starts[batch])}"

    def content_hash(self, index: int) -> str:
        return pixel_hash(self._images[index])

    def image_size(self, index: int) -> tuple[int, int]:
        return _SIDE, _SIDE

    def describe(self) -> dict[str, Any]:
        info: dict[str, Any] = {"kind": self.kind, "root": str(self.root), "split": self.split, "size": len(self)}
        if self.kind == "cifar100":
            info["coarse"] = self.coarse
        return info
