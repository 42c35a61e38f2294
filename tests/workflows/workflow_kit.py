"""Shared helpers of the workflow tests (a module with its own name: `from conftest import` picked up
another folder's conftest in a full run)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

TINY_BACKBONE = {"arch": "resnet10", "cifar_stem": True, "width": 8}
#: patch poisons that are near-duplicates (a 12 px white block at a fixed corner of a 16 px image),
#: so that even a barely trained encoder puts them in one dense cluster
PATCH = {"rate": 0.1, "target": 0, "trigger": "white", "trigger_size": 12, "loc_min": 0.0, "loc_max": 0.75}


def write_folder(root: Path, per_class: int, classes: int = 4, size: int = 16, seed: int = 0) -> Path:
    """class folders of PNGs: noise tinted by class, so classes differ and no clean image is dense."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for c in range(classes):
        folder = root / f"c{c}"
        folder.mkdir(parents=True)
        for i in range(per_class):
            image = rng.integers(0, 150, (size, size, 3))
            image[..., c % 3] += 100 if c < 3 else 0
            if c == 3:
                image += 50
            Image.fromarray(image.astype(np.uint8)).save(folder / f"{i:04d}.png")
    return root


def train_config(epochs: int = 3, **overrides):
    from naviewer.ssl.trainer import TrainConfig

    # aug+: the recipe these tiny runs were tuned with (SimCLR's own crops at 0.08-1 scatter 16 px near-duplicates)
    values = dict(method="simclr", backbone=dict(TINY_BACKBONE), epochs=epochs, batch_size=64, image_size=16,
                  augment_recipe="aug+",
                  warmup_epochs=0, knn_every=1, knn_k=20, checkpoint_every=0, seed=0)
    values.update(overrides)
    return TrainConfig(**values)


def dift_config(**overrides):
    from naviewer.defense.config import DiftConfig

    values = dict(start_epoch=0, patience=1, k=5, n_min=5, candidate_fraction=0.1, pool_random=50,
                  guard_reference_size=100, ft_max_steps=5, ft_check_every=5, ft_cluster_k=5)
    # base_lr: the spec's 0.06 (fine-tune lr 0.006), at which fine-tuning these near-duplicates used to diverge
    values.update(overrides)
    return DiftConfig(**values)


def attacked_workspace(path: Path, data: tuple[Path, Path]):
    """A workspace over the tiny train folder with near-duplicate patch poisons (20 of 240)."""
    from naviewer.workflows.workspace_setup import create_attacked_workspace

    return create_attacked_workspace(path, str(data[0]), "patch", PATCH, test_dataset=str(data[1]))
