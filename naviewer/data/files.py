"""The common part of file-backed sources (image folders, file lists, CSV manifests).

Holds one path, source key and label per sample and decodes lazily through
:mod:`naviewer.data.imageio` (size check before decoding, ``NaviewerError`` naming a bad file).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from naviewer.data.base import HeldLabelsDataset
from naviewer.data.imageio import DEFAULT_MAX_PIXELS, load_image, read_image_size
from naviewer.errors import NaviewerError
from naviewer.jobs import JobContext, ensure_context


class FileBackedDataset(HeldLabelsDataset):
    """Samples that are image files under ``root``; subclasses find the files and labels."""

    def __init__(
        self,
        root: Path,
        paths: Sequence[Path],
        keys: Sequence[str],
        labels: "np.ndarray | Sequence[int]",
        class_names: Sequence[str],
        max_pixels: int = DEFAULT_MAX_PIXELS,
    ) -> None:
        self.root = root
        self.max_pixels = int(max_pixels)
        self._paths = list(paths)
        self._keys = list(keys)
        self._labels = np.asarray(labels, dtype=np.int64).reshape(-1)
        self._class_names = list(class_names)
        self._sizes: dict[int, tuple[int, int]] = {}

    def __len__(self) -> int:
        return len(self._paths)

    def path(self, index: int) -> Path:
        """Absolute path of sample ``index``."""
        return self._paths[index]

    def image(self, index: int) -> np.ndarray:
        image = load_image(self._paths[index], self.max_pixels)
        self._sizes[int(index)] = (int(image.shape[0]), int(image.shape[1]))
        return image

    def source_key(self, index: int) -> str:
        return self._keys[index]

    def image_size(self, index: int) -> tuple[int, int]:
        """From the file header (cached); no pixel is decoded."""
        index = int(index)
        if index not in self._sizes:
            self._sizes[index] = read_image_size(self._paths[index], self.max_pixels)
        return self._sizes[index]

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
