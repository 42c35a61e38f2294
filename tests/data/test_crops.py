"""The one RandomResizedCrop sampler (``naviewer.data.crops``) and the box tests beside it."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from naviewer.data.crops import Box, CropBoxes, contains, disjoint, inside, sample_crop_boxes

CASES = [
    # (height, width, scale, ratio)
    (32, 32, (0.2, 1.0), (3 / 4, 4 / 3)),
    (32, 64, (0.2, 1.0), (3 / 4, 4 / 3)),  # a 2:1 Noisy Alignment canvas
    (32, 32, (0.9, 1.0), (3.0, 4.0)),  # always the fall-back
    (32, 32, (0.6, 1.0), (1.5, 2.5)),  # a mix of accepted tries and fall-backs
]


def _torchvision_draws(height: int, width: int, scale, ratio, n: int) -> np.ndarray:
    import torch
    from torchvision.transforms import RandomResizedCrop

    torch.manual_seed(0)
    img = torch.empty(3, height, width)
    return np.array([RandomResizedCrop.get_params(img, list(scale), list(ratio)) for _ in range(n)])


@pytest.mark.parametrize("height,width,scale,ratio", CASES)
def test_sampler_matches_torchvision(height, width, scale, ratio):
    ours = sample_crop_boxes(height, width, np.random.default_rng(1), n=100_000, scale=scale, ratio=ratio).as_array()
    theirs = _torchvision_draws(height, width, scale, ratio, 20_000)
    assert ((ours[:, 0] >= 0) & (ours[:, 0] + ours[:, 2] <= height) & (ours[:, 1] + ours[:, 3] <= width)).all()
    features = {
        "scale": lambda b: b[:, 2] * b[:, 3] / (height * width),
        "ratio": lambda b: b[:, 3] / b[:, 2],
        "top": lambda b: b[:, 0],
        "left": lambda b: b[:, 1],
    }
    for name, f in features.items():
        a, b = f(ours), f(theirs)
        if np.ptp(a) == 0 and np.ptp(b) == 0:
            assert a[0] == b[0], name
            continue
        p = stats.ks_2samp(a, b).pvalue
        assert p > 1e-3, f"{name}: KS p={p:.2g}"


def test_box_tests_and_split():
    crops = CropBoxes(np.array([0, 2, 10]), np.array([0, 2, 10]), np.array([8, 4, 4]), np.array([8, 4, 4]))
    box = Box(1, 1, 6, 6)
    assert inside(crops, box).tolist() == [False, True, False]
    assert contains(crops, box).tolist() == [True, False, False]
    first, rest = crops.split(1)
    assert len(first) == 1 and len(rest) == 2
    assert disjoint(CropBoxes(*(np.repeat(v, 2) for v in first.as_array().T)), rest).tolist() == [False, True]
