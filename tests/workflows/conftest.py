"""Tiny on-disk datasets and settings for the workflow tests (a ResNet-10 at width 8 on 16 px)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

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


@pytest.fixture(autouse=True)
def _few_threads():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> tuple[Path, Path]:
    """(train folder with 4 x 60 images, test folder with 4 x 15 images)."""
    base = tmp_path_factory.mktemp("tinydata")
    return write_folder(base / "train", 60), write_folder(base / "test", 15, seed=1)


def train_config(epochs: int = 3, **overrides):
    from naviewer.ssl.trainer import TrainConfig

    values = dict(method="simclr", backbone=dict(TINY_BACKBONE), epochs=epochs, batch_size=64, image_size=16,
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


@pytest.fixture(scope="session")
def accepted_run(tmp_path_factory, tiny_data):
    """(workspace path, outcome) of a 4-epoch DIFT run with accept-all (shared: it is the slow part)."""
    from naviewer.workflows.dift_training import train_with_dift

    setup = attacked_workspace(tmp_path_factory.mktemp("accepted") / "ws", tiny_data)
    with setup.workspace as ws:
        outcome = train_with_dift(ws, train_config(4), dift_config(), accept_all=True)
    return setup.workspace.path, outcome
