"""crop_density on tiny generated data with a stub encoder (no training): the plan, the guard, the score."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from naviewer.data.store import ImageStore
from naviewer.defense.detectors import DetectorInputs, make_detector
from naviewer.defense.detectors.crops import crop_plan
from naviewer.errors import NaviewerError
from naviewer.evaluation.detection import auroc
from naviewer.ssl.augment import CIFAR_MEAN, CIFAR_STD

TRIGGER = np.array([255, 0, 255], dtype=np.uint8)  # magenta: smooth grey noise never makes it


class StubEncoder(torch.nn.Module):
    """Features = 10 x (fraction of trigger pixels in the crop) and a small fixed random projection of
    the 4x4-downsampled crop: crops covering the trigger share a direction, the rest is content."""

    def __init__(self, dim: int = 16) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.proj = torch.nn.Parameter(torch.randn(3 * 16, dim, generator=g) / 30.0, requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = torch.tensor(CIFAR_MEAN).view(1, 3, 1, 1)
        std = torch.tensor(CIFAR_STD).view(1, 3, 1, 1)
        rgb = x * std + mean
        magenta = ((rgb[:, 0] > 0.8) & (rgb[:, 1] < 0.2) & (rgb[:, 2] > 0.8)).float().mean(dim=(1, 2))
        small = torch.nn.functional.adaptive_avg_pool2d(rgb, 4).flatten(1) - 0.5  # centred: content spreads
        return torch.cat([10.0 * magenta[:, None], small @ self.proj], dim=1)


def _data(clean: int = 300, poisons: int = 15, seed: int = 0) -> tuple[ImageStore, np.ndarray]:
    rng = np.random.default_rng(seed)

    def smooth() -> np.ndarray:
        # 2 px grey blocks: every crop covers several, so no two images' crops are alike by accident
        base = rng.integers(0, 256, size=(8, 8, 1)).astype(np.float64)
        img = np.kron(base, np.ones((2, 2, 1))) + rng.normal(0, 8, size=(16, 16, 1))
        return np.clip(np.repeat(img, 3, axis=2), 0, 255).astype(np.uint8)

    images = [smooth() for _ in range(clean)]
    for i in range(poisons):
        shadow = smooth()
        shadow[5:11, 5:11] = TRIGGER  # the trigger at the shadow's centre
        pair = [smooth(), shadow] if i % 2 else [shadow, smooth()]
        images.append(np.concatenate(pair, axis=1 if i % 3 else 0))  # side by side or stacked
    truth = np.zeros(len(images), dtype=bool)
    truth[clean:] = True
    return ImageStore.from_images(images, np.zeros(len(images), dtype=np.int64), ["x"]), truth


def test_plan_halves_are_exact_and_boxes_reproducible():
    plan = crop_plan(np.array([16, 32, 16]), np.array([32, 16, 16]), crops=6, halves=True, seed=3)
    assert plan.shape == (3, 8, 4)
    assert plan[0, 0].tolist() == [0, 0, 16, 16] and plan[0, 1].tolist() == [0, 16, 16, 16]  # left / right
    assert plan[1, 0].tolist() == [0, 0, 16, 16] and plan[1, 1].tolist() == [16, 0, 16, 16]  # top / bottom
    assert plan[2, 0].tolist() == [0, 0, 16, 8] and plan[2, 1].tolist() == [0, 8, 16, 8]     # square: halved too
    h, w = np.array([16, 32, 16]), np.array([32, 16, 16])
    top, left, bh, bw = (plan[..., i] for i in range(4))
    assert (top >= 0).all() and (left >= 0).all()
    assert (top + bh <= h[:, None]).all() and (left + bw <= w[:, None]).all()
    # one sample's boxes depend on (seed, id) only, not on the other samples
    alone = crop_plan(np.array([16]), np.array([16]), crops=6, halves=True, seed=3, ids=np.array([2]))
    assert np.array_equal(alone[0], plan[2])
    assert not np.array_equal(crop_plan(h, w, 6, True, seed=4), plan)


def test_composites_rank_first_and_same_image_exclusion_is_the_guard():
    store, truth = _data()
    encoder = StubEncoder()
    inputs = dict(encoder=encoder, images=store, image_size=16)
    result = make_detector("crop_density", k=8).run(DetectorInputs(np.zeros((len(store), 2)), **inputs))
    score = result.score
    assert auroc(score, truth) >= 0.99
    top = np.argsort(-score)[:20]
    assert truth[top].sum() == truth.sum()  # all 15 composites in the top 20
    assert result.extras["best_box"].shape == (len(store), 4)
    assert (result.extras["support"][truth] >= 2).all()  # a composite's best crop sits with other composites


def test_same_image_exclusion_is_the_guard():
    """A flat image's crops all coincide: counted as neighbours (exclusion off) it looks densest of all."""
    store, truth = _data(clean=120, poisons=10)
    flat = np.full((16, 16, 3), 77, dtype=np.uint8)
    images = [store.image(i) for i in range(len(store))] + [flat]
    store = ImageStore.from_images(images, np.zeros(len(images), dtype=np.int64), ["x"])
    inputs = DetectorInputs(np.zeros((len(store), 2)), encoder=StubEncoder(), images=store, image_size=16)
    guarded = make_detector("crop_density", k=5).run(inputs).score
    blind = make_detector("crop_density", k=5, exclude_same_image=False).run(inputs).score
    assert np.argmax(blind) == len(store) - 1
    assert len(store) - 1 not in np.argsort(-guarded)[:20]


def test_needs_the_encoder_and_images_and_checks_settings():
    store, _ = _data(30, 2)
    with pytest.raises(NaviewerError, match="needs encoder"):
        make_detector("crop_density").run(DetectorInputs(np.zeros((len(store), 2)), images=store))
    with pytest.raises(NaviewerError, match="scale"):
        make_detector("crop_density", scale=(0.5, 0.2))
    with pytest.raises(NaviewerError, match="leaves no crop to score"):  # as it is made, before any embedding
        make_detector("crop_density", crops=0, halves=False)
