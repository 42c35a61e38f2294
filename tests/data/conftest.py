"""Fixtures for the data tests: small generated image trees."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from .makers import write_png


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


@pytest.fixture
def image_tree(tmp_path: Path, rng: np.random.Generator) -> tuple[Path, dict[str, np.ndarray]]:
    """root/<class>/<image>.png with 3 classes (b has a nested folder); returns (root, {key: pixels})."""
    root = tmp_path / "tree"
    pixels = {}
    layout = {"cat": ["1.png", "0.png"], "ant": ["x.png"], "bee": ["sub/y.png", "a.png"]}
    for cls, files in layout.items():
        for name in files:
            h, w = int(rng.integers(5, 20)), int(rng.integers(5, 20))
            image = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
            write_png(root / cls / name, image)
            pixels[f"{cls}/{name}"] = image
    return root, pixels
