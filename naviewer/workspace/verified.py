"""A workspace's dataset whose every image is checked against the content hash it was registered with.

Opening a workspace checks its source cheaply (the count, the labels, 256 keys, 16 images' pixels), so
two images swapped in place, or one replaced, passed it, and a detection pass then scored the new pixels
under the old sample ids (a sweep, session 17). A one-visit pass (embedding the workspace for detection)
decodes every image anyway; hashing what it decoded costs a few per cent of the decode, and a mismatch
stops the pass with the sample named instead of attributing one image's score to another.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from naviewer.data.base import ImageDataset, pixel_hash
from naviewer.errors import NaviewerError


class VerifiedDataset(ImageDataset):
    """``base`` (the workspace's re-opened source) with ``image(i)`` checked against ``hashes[i]``.

    ``hashes`` is any sequence of the registered hashes (the store's windowed column: nothing is read up
    front); an empty registered hash (a store written before hashes) is not checked. ``as_array`` of an
    in-memory source checks every row once, then hands the array out as the source does."""

    def __init__(self, base: ImageDataset, hashes: Sequence[Optional[str]], where: "Path | str | None") -> None:
        self.base = base
        self.hashes = hashes
        self.where = where
        self.kind = base.kind
        self._array_checked = False

    def __len__(self) -> int:
        return len(self.base)

    def _check(self, index: int, image: np.ndarray) -> None:
        expected = self.hashes[index]
        if expected and pixel_hash(image) != expected:
            raise NaviewerError(
                f"the dataset source no longer matches the workspace: sample {index} ({self.base.source_key(index)}) "
                "has other pixels than when it was registered (the image was replaced, or two images were "
                "swapped); nothing was scored. Restore the images, or create a new workspace from them",
                self.where)

    def image(self, index: int) -> np.ndarray:
        image = self.base.image(index)
        self._check(int(index), np.asarray(image, dtype=np.uint8))
        return image

    @property
    def labels(self) -> np.ndarray:
        return self.base.labels

    @property
    def class_names(self) -> list[str]:
        return self.base.class_names

    def source_key(self, index: int) -> str:
        return self.base.source_key(index)

    def content_hash(self, index: int) -> str:
        return self.base.content_hash(index)

    def image_size(self, index: int) -> tuple[int, int]:
        return self.base.image_size(index)

    def describe(self) -> dict[str, Any]:
        return self.base.describe()

    def as_array(self) -> Optional[np.ndarray]:
        whole = self.base.as_array()
        if whole is not None and not self._array_checked:
            for index in range(len(whole)):
                self._check(index, whole[index])
            self._array_checked = True
        return whole
