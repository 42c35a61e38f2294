"""Tiny data and models shared by the SSL tests (a ResNet-10 at width 8 on 16 px images runs in ms)."""

from __future__ import annotations

import numpy as np
import torch

from naviewer.data.store import ImageStore

TINY = {"arch": "resnet10", "cifar_stem": True, "width": 8}


def make_store(n: int = 48, size: int = 16, classes: int = 3, seed: int = 0, wide: int = 0) -> ImageStore:
    """Random images with class-dependent colour (so kNN has something to find) plus ``wide``
    size x 2*size composites."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, n + wide)
    images = []
    for i in range(n + wide):
        shape = (size, 2 * size, 3) if i >= n else (size, size, 3)
        base = rng.integers(0, 120, shape)
        base[..., labels[i] % 3] += 120
        images.append(base.astype(np.uint8))
    return ImageStore.from_images(images, labels, [f"c{c}" for c in range(classes)])
