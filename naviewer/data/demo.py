"""The built-in demo dataset: scikit-learn's handwritten digits as small colour images.

Needs no download: ``sklearn.datasets.load_digits`` ships 1,797 real 8x8 digits (16 grey levels).
Each is scaled to 0..255, upscaled to 32x32 with Pillow's bicubic filter (the size of CIFAR, so
every model and attack setting made for CIFAR runs on it unchanged), and coloured.

Colour choice: every image gets its *own* random background and ink colour (dark background,
light ink, drawn from a generator seeded with 0, by original index). The colours are independent
of the class on purpose: a per-class tint would let an encoder separate classes by colour alone,
while random per-sample colours are a nuisance that colour jitter and random grayscale must teach
it to ignore, as in contrastive learning on natural images. ``tint=False`` gives grey images.

Split: a deterministic stratified 80/20 split (``sklearn.model_selection.train_test_split``,
``random_state=0``): 1,437 training and 360 test images, each kept in original order.
Source keys are ``digits/<original index>``. Everything is deterministic across runs.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np

from naviewer.data.base import ArrayDataset
from naviewer.errors import NaviewerError

DEMO_SIZE = 32
DEMO_SEED = 0
TEST_FRACTION = 0.2
CLASS_NAMES = [str(d) for d in range(10)]


@lru_cache(maxsize=4)
def _all_images(size: int, tint: bool) -> tuple[np.ndarray, np.ndarray]:
    """(images (1797, size, size, 3) uint8, labels) for every digit, in scikit-learn's order."""
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    grey = np.clip(np.rint(digits.images * (255.0 / 16.0)), 0, 255).astype(np.uint8)
    big = np.stack(
        [np.asarray(Image.fromarray(g).resize((size, size), Image.Resampling.BICUBIC)) for g in grey]
    )
    ink = big.astype(np.float32)[..., None] / 255.0
    if tint:
        rng = np.random.default_rng(DEMO_SEED)
        background = rng.uniform(0.0, 0.45, size=(len(big), 1, 1, 3)).astype(np.float32)
        foreground = rng.uniform(0.55, 1.0, size=(len(big), 1, 1, 3)).astype(np.float32)
        rgb = background + (foreground - background) * ink
    else:
        rgb = np.repeat(ink, 3, axis=3)
    images = np.clip(np.rint(rgb * 255.0), 0, 255).astype(np.uint8)
    return images, np.asarray(digits.target, dtype=np.int64)


@lru_cache(maxsize=2)
def _split_indices() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.model_selection import train_test_split

    _, labels = _all_images(DEMO_SIZE, True)
    train, test = train_test_split(
        np.arange(len(labels)), test_size=TEST_FRACTION, random_state=DEMO_SEED, stratify=labels
    )
    return np.sort(train), np.sort(test)


class DigitsDemoDataset(ArrayDataset):
    """One split ("train", "test" or "all") of the built-in digits demo set."""

    def __init__(self, split: str = "train", tint: bool = True, size: int = DEMO_SIZE) -> None:
        if split not in ("train", "test", "all"):
            raise NaviewerError(f"unknown demo split {split!r}; use train, test or all")
        if not 8 <= int(size) <= 256:
            raise NaviewerError(f"demo image size {size} must be between 8 and 256")
        images, labels = _all_images(int(size), bool(tint))
        if split == "all":
            indices = np.arange(len(labels))
        else:
            indices = _split_indices()[0 if split == "train" else 1]
        self.split, self.tint, self.size = split, bool(tint), int(size)
        self.original_indices = indices
        super().__init__(
            images[indices], labels[indices], CLASS_NAMES, [f"digits/{i}" for i in indices], kind="demo"
        )

    def image(self, index: int) -> np.ndarray:
        """A copy, so editing it in place cannot alter the dataset."""
        return self._images[index].copy()

    def image_size(self, index: int) -> tuple[int, int]:
        return self.size, self.size

    def describe(self) -> dict[str, Any]:
        info: dict[str, Any] = {"kind": "demo", "split": self.split, "size": len(self)}
        if not self.tint:
            info["tint"] = False
        if self.size != DEMO_SIZE:
            info["image_size"] = self.size
        return info
