"""The one dataset interface every source returns.

A dataset is an indexable collection of RGB images (uint8, HxWx3) with optional integer labels.
Each sample also has a *source key* (where it came from: a path relative to the source root, or
``batch/index`` for pickled batches) and a *content hash* (of its decoded pixels), which together
with the workspace's integer id give the stable sample identity that flags, reviews and manifests
refer to.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from typing import Any, Optional, Sequence

import numpy as np

UNLABELED = -1


def pixel_hash(image: np.ndarray) -> str:
    """Content hash of decoded pixels: stable across runs, formats and file names.

    Hashes the shape and the raw uint8 bytes with BLAKE2b-128, so the same picture saved as PNG or
    read from a CIFAR pickle gets the same hash.
    """
    image = np.ascontiguousarray(image, dtype=np.uint8)
    digest = hashlib.blake2b(digest_size=16)
    digest.update(("%dx%dx%d;" % (image.shape[0], image.shape[1], image.shape[2] if image.ndim == 3 else 1)).encode())
    digest.update(image.tobytes())
    return digest.hexdigest()


class ImageDataset(ABC):
    """Indexable images with labels, class names, source keys and content hashes."""

    #: short human-readable name of the source kind ("cifar10", "image-folder", ...)
    kind: str = "dataset"

    @abstractmethod
    def __len__(self) -> int: ...

    @abstractmethod
    def image(self, index: int) -> np.ndarray:
        """The decoded image, uint8 array of shape (H, W, 3)."""

    @property
    @abstractmethod
    def labels(self) -> np.ndarray:
        """int64 array of length N; ``UNLABELED`` (-1) where a sample has no label."""

    @property
    @abstractmethod
    def class_names(self) -> list[str]: ...

    @abstractmethod
    def source_key(self, index: int) -> str:
        """Where sample ``index`` came from (relative path, or ``batch/index``)."""

    def label(self, index: int) -> Optional[int]:
        value = int(self.labels[index])
        return None if value == UNLABELED else value

    def content_hash(self, index: int) -> str:
        return pixel_hash(self.image(index))

    def image_size(self, index: int) -> tuple[int, int]:
        """(height, width) of sample ``index``; sources override this when they can avoid decoding."""
        height, width = self.image(index).shape[:2]
        return int(height), int(width)

    def describe(self) -> dict[str, Any]:
        """What this dataset is, as plain data for ``workspace.toml`` and provenance records."""
        return {"kind": self.kind, "size": len(self)}

    def as_array(self) -> Optional[np.ndarray]:
        """All images as one uint8 (N, H, W, 3) array when the source holds them that way, else None.

        Lets ``ImageStore.from_dataset`` take a whole CIFAR set without a Python loop per image.
        The array may be shared with the dataset: treat it as read-only.
        """
        return None

    def __iter__(self):
        for index in range(len(self)):
            yield self.image(index)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.kind} n={len(self)} classes={len(self.class_names)}>"


class HeldLabelsDataset(ImageDataset):
    """An ImageDataset whose labels and class names are held in ``_labels`` / ``_class_names``.

    The sources that read labels up front (in-memory arrays, file lists, CIFAR pickles) share these
    two accessors instead of each writing them out.
    """

    _labels: np.ndarray
    _class_names: list[str]

    @property
    def labels(self) -> np.ndarray:
        return self._labels

    @property
    def class_names(self) -> list[str]:
        return self._class_names


class ArrayDataset(HeldLabelsDataset):
    """Images already in memory: a (N, H, W, 3) array or a list of (H, W, 3) arrays.

    Used for crafted datasets, generated test data and subsets; ``source_keys`` default to
    ``memory/<index>``.
    """

    kind = "memory"

    def __init__(
        self,
        images: "np.ndarray | Sequence[np.ndarray]",
        labels: "np.ndarray | Sequence[int] | None",
        class_names: Sequence[str],
        source_keys: Optional[Sequence[str]] = None,
        kind: Optional[str] = None,
    ) -> None:
        self._images = images
        n = len(images)
        if labels is None:
            self._labels = np.full(n, UNLABELED, dtype=np.int64)
        else:
            self._labels = np.asarray(labels, dtype=np.int64).reshape(-1)
        if len(self._labels) != n:
            raise ValueError(f"{n} images but {len(self._labels)} labels")
        self._class_names = list(class_names)
        self._keys = list(source_keys) if source_keys is not None else [f"memory/{i}" for i in range(n)]
        if kind is not None:
            self.kind = kind

    def __len__(self) -> int:
        return len(self._images)

    def image(self, index: int) -> np.ndarray:
        return np.asarray(self._images[index], dtype=np.uint8)

    def source_key(self, index: int) -> str:
        return self._keys[index]

    def as_array(self) -> Optional[np.ndarray]:
        images = self._images
        if isinstance(images, np.ndarray) and images.dtype == np.uint8 and images.ndim == 4 and images.shape[3] == 3:
            return images
        return None


class DatasetWarning(UserWarning):
    """Something about a dataset is odd but usable (e.g. an empty class folder)."""


class SubsetDataset(ImageDataset):
    """A view of ``base`` restricted to ``indices`` (in that order), renumbered 0..len-1.

    Keeps the base's class names, source keys and hashes, so a subset's samples keep their
    identity; ``base_index(i)`` maps back. Used by attacks (clean pools, shadow images) and DIFT
    (the data left after removing flagged samples).
    """

    def __init__(self, base: ImageDataset, indices: "Sequence[int] | np.ndarray") -> None:
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        n = len(base)
        if idx.size and (idx.min() < -n or idx.max() >= n):
            raise IndexError(f"subset indices out of range for a dataset of {n} samples")
        self.base = base
        self.indices = np.where(idx < 0, idx + n, idx)
        self.kind = base.kind

    def __len__(self) -> int:
        return len(self.indices)

    def base_index(self, index: int) -> int:
        return int(self.indices[index])

    def image(self, index: int) -> np.ndarray:
        return self.base.image(int(self.indices[index]))

    @property
    def labels(self) -> np.ndarray:
        return self.base.labels[self.indices]

    @property
    def class_names(self) -> list[str]:
        return self.base.class_names

    def source_key(self, index: int) -> str:
        return self.base.source_key(int(self.indices[index]))

    def content_hash(self, index: int) -> str:
        return self.base.content_hash(int(self.indices[index]))

    def image_size(self, index: int) -> tuple[int, int]:
        return self.base.image_size(int(self.indices[index]))

    def as_array(self) -> Optional[np.ndarray]:
        whole = self.base.as_array()
        return None if whole is None else whole[self.indices]

    def describe(self) -> dict[str, Any]:
        return {"kind": "subset", "size": len(self), "base": self.base.describe(), "indices": self.indices.tolist()}
