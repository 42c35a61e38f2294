"""The common part of file-backed sources (image folders, file lists, CSV manifests).

Holds one source key and label per sample and decodes lazily through
:mod:`naviewer.data.imageio` (size check before decoding, ``NaviewerError`` naming a bad file).

Nothing is kept as a Python object per sample, so ten million samples fit in a few hundred MB:
the keys (posix paths relative to the root) are one UTF-8 byte buffer with int64 offsets
(:class:`PathKeys`), the labels an int64 array, the image sizes read so far two int32 arrays. The
absolute path of a sample is made when it is asked for: ``root / key``, or ``root / real key`` for
the few samples whose key reaches its file through a symlink (a file list keeps the resolved
path, as it checked it, in a second compact buffer).
"""

from __future__ import annotations

import os
from array import array
from pathlib import Path
from typing import Iterable, Optional, Sequence, Union

import numpy as np

from naviewer.data.base import HeldLabelsDataset
from naviewer.data.imageio import DEFAULT_MAX_PIXELS, load_image, read_image_size
from naviewer.errors import NaviewerError
from naviewer.jobs import JobContext, ensure_context


class PathKeys:
    """``n`` strings in one UTF-8 byte buffer (uint8) with ``n + 1`` int64 offsets; ``keys[i]`` decodes one."""

    __slots__ = ("data", "offsets")

    def __init__(self, data: np.ndarray, offsets: np.ndarray) -> None:
        self.data = np.asarray(data, dtype=np.uint8).reshape(-1)
        self.offsets = np.asarray(offsets, dtype=np.int64).reshape(-1)
        if len(self.offsets) == 0 or self.offsets[0] != 0 or self.offsets[-1] != len(self.data):
            raise ValueError("offsets must run from 0 to the buffer's length")

    @classmethod
    def from_strings(cls, keys: Iterable[str]) -> "PathKeys":
        builder = KeyBuilder()
        for key in keys:
            builder.append(key)
        return builder.build()

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, index: int) -> str:
        index = int(index)
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(f"key index {index} out of range (0..{len(self) - 1})")
        start, end = int(self.offsets[index]), int(self.offsets[index + 1])
        return self.data[start:end].tobytes().decode("utf-8")

    def __iter__(self):
        for index in range(len(self)):
            yield self[index]

    def take(self, indices: "np.ndarray | Sequence[int]") -> "PathKeys":
        """The keys at ``indices`` (in that order), as a new compact buffer (vectorised, no string made)."""
        indices = np.asarray(indices, dtype=np.int64).reshape(-1)
        starts = self.offsets[indices]
        lengths = self.offsets[indices + 1] - starts
        offsets = np.zeros(len(indices) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        if len(indices) == 0 or offsets[-1] == 0:
            return PathKeys(np.zeros(0, np.uint8), offsets)
        # byte j of the new buffer comes from starts[k] + (j - offsets[k]) for the k whose slice holds j
        shift = np.repeat(starts - offsets[:-1], lengths)
        shift += np.arange(int(offsets[-1]), dtype=np.int64)
        return PathKeys(self.data[shift], offsets)

    @property
    def nbytes(self) -> int:
        return int(self.data.nbytes + self.offsets.nbytes)


class KeyBuilder:
    """Appends strings into a growing byte buffer (no object kept per string); :meth:`build` freezes it."""

    __slots__ = ("_data", "_offsets")

    def __init__(self) -> None:
        self._data = bytearray()
        self._offsets = array("q", [0])

    def __len__(self) -> int:
        return len(self._offsets) - 1

    def append(self, key: str) -> None:
        self._data += key.encode("utf-8")
        self._offsets.append(len(self._data))

    def get(self, index: int) -> str:
        """String ``index`` (while building, too)."""
        return self._data[self._offsets[index]:self._offsets[index + 1]].decode("utf-8")

    def build(self) -> PathKeys:
        """The keys as :class:`PathKeys` (sharing this builder's memory: append no more)."""
        data = np.frombuffer(self._data, dtype=np.uint8) if self._data else np.zeros(0, np.uint8)
        return PathKeys(data, np.frombuffer(self._offsets, dtype=np.int64))


class RealKeys:
    """The real key (path relative to the root, symlinks resolved) of the few samples whose key differs."""

    __slots__ = ("indices", "keys")

    def __init__(self, indices: np.ndarray, keys: PathKeys) -> None:
        self.indices = np.asarray(indices, dtype=np.int64).reshape(-1)  # sorted
        self.keys = keys

    def get(self, index: int) -> Optional[str]:
        if not len(self.indices):
            return None
        where = int(np.searchsorted(self.indices, index))
        if where < len(self.indices) and self.indices[where] == index:
            return self.keys[where]
        return None


class FileBackedDataset(HeldLabelsDataset):
    """Samples that are image files under ``root``; subclasses find the files and labels.

    ``keys``: posix paths relative to ``root`` (strings or :class:`PathKeys`); sample ``i`` is read
    from ``root / keys[i]``, or from ``root / real_keys.get(i)`` where that is given.
    """

    def __init__(
        self,
        root: Path,
        keys: Union[PathKeys, Sequence[str]],
        labels: "np.ndarray | Sequence[int]",
        class_names: Sequence[str],
        max_pixels: int = DEFAULT_MAX_PIXELS,
        real_keys: Optional[RealKeys] = None,
    ) -> None:
        self.root = root
        self.max_pixels = int(max_pixels)
        self._keys = keys if isinstance(keys, PathKeys) else PathKeys.from_strings(keys)
        self._real_keys = real_keys
        self._prefix = os.path.join(str(root), "")
        self._labels = np.asarray(labels, dtype=np.int64).reshape(-1)
        if len(self._labels) != len(self._keys):
            raise ValueError(f"{len(self._keys)} keys but {len(self._labels)} labels")
        self._class_names = list(class_names)
        self._heights: Optional[np.ndarray] = None  # image sizes read so far (-1: not yet), made on first use
        self._widths: Optional[np.ndarray] = None

    def __len__(self) -> int:
        return len(self._keys)

    def path(self, index: int) -> Path:
        """Absolute path of sample ``index``."""
        real = self._real_keys.get(int(index)) if self._real_keys is not None else None
        return Path(self._prefix + (real if real is not None else self._keys[index]))

    def image(self, index: int) -> np.ndarray:
        image = load_image(self.path(index), self.max_pixels)
        self._remember_size(int(index), int(image.shape[0]), int(image.shape[1]))
        return image

    def source_key(self, index: int) -> str:
        return self._keys[index]

    def _remember_size(self, index: int, height: int, width: int) -> None:
        if max(height, width) >= 2**31:  # not cached (read again from the header when asked)
            return
        if self._heights is None or self._widths is None:
            self._heights = np.full(len(self), -1, dtype=np.int32)
            self._widths = np.full(len(self), -1, dtype=np.int32)
        self._heights[index] = height
        self._widths[index] = width

    def image_size(self, index: int) -> tuple[int, int]:
        """From the file header (cached); no pixel is decoded."""
        index = int(index)
        if self._heights is not None and self._widths is not None and self._heights[index] >= 0:
            return int(self._heights[index]), int(self._widths[index])
        height, width = read_image_size(self.path(index), self.max_pixels)
        self._remember_size(index, int(height), int(width))
        return int(height), int(width)

    def verify(self, ctx: Optional[JobContext] = None, raise_first: bool = True) -> list[NaviewerError]:
        """Decode every image once (progress + cancel): raise on the first bad file, or return all problems."""
        ctx = ensure_context(ctx)
        problems: list[NaviewerError] = []
        n = len(self)
        for index in range(n):
            if index % 64 == 0:
                ctx.check()
                ctx.progress(index, n, "checking images")
            try:
                self.image(index)
            except NaviewerError as exc:
                if raise_first:
                    raise
                problems.append(exc)
        ctx.progress(n, n, "checking images")
        return problems
