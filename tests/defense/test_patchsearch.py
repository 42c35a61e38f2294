"""patchsearch on tiny generated data with a hand-built "backdoored" encoder (no training): a planted
checkerboard is found by its window, its samples rank first, and the classifier flags them."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from naviewer.data.store import ImageStore
from naviewer.defense.detectors import DetectorInputs, make_detector
from naviewer.defense.detectors.patchsearch import best_windows, grad_cam, nearest_centroid, paste
from naviewer.errors import NaviewerError
from naviewer.evaluation.detection import auroc

SIZE = 16
TRIGGER = 4
CHECKER = (np.indices((TRIGGER, TRIGGER)).sum(axis=0) % 2).astype(np.float32)  # 4 x 4 checkerboard of 0 / 1


class ToyEncoder(torch.nn.Module):
    """``layer4``: a conv filter matched to the checkerboard; its global max (large weight) is one feature,
    next to a random projection of the 4x4-downsampled image. The trigger feature dominates, so the
    checkerboard samples form one cluster wherever the patch sits, as a backdoored encoder's would."""

    def __init__(self) -> None:
        super().__init__()
        self.layer4 = torch.nn.Conv2d(3, 1, TRIGGER, bias=False)
        signed = torch.from_numpy(2.0 * CHECKER - 1.0)
        with torch.no_grad():
            self.layer4.weight.copy_(signed.expand(1, 3, TRIGGER, TRIGGER) / (3 * TRIGGER * TRIGGER))
        g = torch.Generator().manual_seed(0)
        self.proj = torch.nn.Parameter(torch.randn(3 * 16, 8, generator=g) / 10.0, requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        response = self.layer4(x)  # ~1.7 on the normalised checkerboard, small on smooth content
        trigger = torch.relu(response.amax(dim=(2, 3)) - 0.8)
        small = torch.nn.functional.adaptive_avg_pool2d(x, 4).flatten(1)
        return torch.cat([20.0 * trigger, small @ self.proj], dim=1)


def _data(clean: int = 400, poisons: int = 30, seed: int = 0) -> tuple[ImageStore, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    images, corners = [], np.full((clean + poisons, 2), -1)
    for i in range(clean + poisons):
        base = rng.integers(40, 216, size=(4, 4, 3)).astype(np.float64)
        img = np.kron(base, np.ones((4, 4, 1))) + rng.normal(0, 6, size=(SIZE, SIZE, 3))
        if i >= clean:
            y, x = rng.integers(0, SIZE - TRIGGER + 1, size=2)
            img[y:y + TRIGGER, x:x + TRIGGER] = 255.0 * CHECKER[..., None]
            corners[i] = (y, x)
        images.append(np.clip(img, 0, 255).astype(np.uint8))
    truth = np.zeros(clean + poisons, dtype=bool)
    truth[clean:] = True
    return ImageStore.from_images(images, np.zeros(len(images), np.int64), ["x"]), truth, corners


def _run(**settings):
    store, truth, corners = _data()
    encoder = ToyEncoder()
    inputs = DetectorInputs(np.zeros((len(store), 0), np.float32), encoder=encoder, images=store, image_size=SIZE)
    defaults = dict(clusters=10, test_images=100, window=TRIGGER, per_round=2, prune=0.25, seed=0)
    return make_detector("patchsearch", **{**defaults, **settings}).run(inputs), truth, corners


def _iou(a, b) -> float:
    (ay, ax, ah, aw), (by, bx, bh, bw) = a, b
    iy = max(0, min(ay + ah, by + bh) - max(ay, by))
    ix = max(0, min(ax + aw, bx + bw) - max(ax, bx))
    inter = iy * ix
    return inter / float(ah * aw + bh * bw - inter)


def test_search_ranks_the_checkerboards_first_and_its_window_covers_them():
    result, truth, corners = _run(classifier=False)
    search = result.extras["search_score"]
    searched = np.isfinite(search)
    assert truth[searched].sum() >= 20  # the poison cluster survives the pruning and is searched
    top = np.argsort(-np.where(searched, search, -np.inf))[:20]
    assert truth[top].mean() >= 0.8
    boxes = result.extras["best_box"]
    best = top[0]
    assert truth[best]
    assert _iou(tuple(boxes[best]), (*corners[best], TRIGGER, TRIGGER)) >= 0.5
    assert np.all(boxes[~searched] == -1)  # never searched: no window, NaN score
    assert np.isnan(result.score[~searched]).all()


@pytest.mark.parametrize("settings, rules", [
    ({}, ("robust_z", "own")),  # naviewer's default: the neighbour-averaged log-odds' robust outliers
    (dict(neighbours=0, rule="gmm2"), ("gmm2", "own")),  # the session-11 rule: the log-odds split, or p > 0.5
])
def test_classifier_flags_the_poisons_everywhere(settings, rules):
    result, truth, _ = _run(classifier=True, ensemble=3, iterations=200, classifier_width=8, **settings)
    assert np.isfinite(result.score).all()  # the classifier scores every sample, searched or not
    flags = result.flags
    assert flags[truth].mean() >= 0.8
    assert flags[~truth].mean() <= 0.02
    assert auroc(result.score, truth) >= 0.95
    assert result.threshold["rule"] in rules
    assert result.extras["patches"].shape[1:] == (3, TRIGGER, TRIGGER)
    assert ("classifier_p" in result.extras) == (settings.get("neighbours", 10) > 0)
    if "trigger_found" in result.extras:  # the classifier's word on each image alone, for the reach pointer
        assert result.extras["trigger_found"].astype(bool)[truth].mean() >= 0.8


def test_neighbours_lift_a_crowd_and_lower_a_lone_high_score():
    """A poison among fellow poisons keeps its high p; a clean image the classifier alone scores high (among clean
    neighbours) falls back towards the clean mass: what lets the outliers part them (results.md, session 25)."""
    from naviewer.defense.detectors.patchsearch import neighbour_averaged

    prob = np.full(40, 0.01)
    prob[:10] = 0.6  # ten poisons, each the others' neighbours
    prob[20] = 0.6  # one clean image with a trigger-like block, among clean neighbours
    neighbours = np.array([[j for j in range(10) if j != i][:5] if i < 10 else [10 + (i - 10 + d) % 30 for d in range(1, 6)]
                           for i in range(40)])
    out = neighbour_averaged(prob, neighbours)
    assert np.allclose(out[:10], 0.6) and out[20] < 0.2 and np.allclose(out[30:], 0.01)


def test_grad_cam_peaks_at_the_planted_pixel():
    conv = torch.nn.Conv2d(1, 1, 1, bias=False)
    with torch.no_grad():
        conv.weight.fill_(1.0)

    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.layer4 = conv

        def forward(self, x):
            return torch.cat([self.layer4(x[:, :1]).amax(dim=(2, 3)), torch.ones(x.shape[0], 1)], dim=1)

    x = torch.zeros(1, 3, 8, 8)
    x[0, 0, 5, 2] = 3.0
    cam = grad_cam(Net(), conv, x, torch.tensor([[1.0, 0.0]]), torch.tensor([0]))
    assert tuple(np.unravel_index(int(cam[0].argmax()), (8, 8))) == (5, 2)
    assert best_windows(cam, 1).tolist() == [[5, 2]]


def test_paste_and_assignment_helpers():
    images = torch.zeros(2, 3, 6, 6)
    patches = torch.ones(2, 3, 2, 2)
    out = paste(images, patches, np.array([[0, 0], [4, 3]]))
    assert out[0, :, :2, :2].eq(1).all() and out[1, :, 4:6, 3:5].eq(1).all()
    assert float(out.sum()) == 2 * 3 * 4 and float(images.sum()) == 0  # a copy; the input is untouched
    centroids = np.array([[1.0, 0.0], [0.0, 2.0]], np.float32)
    z = np.array([[1.0, 0.0], [0.0, 1.0]], np.float32)
    assert nearest_centroid(z, centroids).tolist() == [0, 1]


@pytest.mark.parametrize("settings", [dict(window=-1), dict(prune=1.0), dict(per_round=0), dict(cam_layer="nope"),
                                      dict(max_fraction=0.0), dict(neighbours=-1), dict(search_rule="nope")])
def test_bad_settings_are_named(settings):
    store, _, _ = _data(clean=40, poisons=2)
    inputs = DetectorInputs(np.zeros((len(store), 0), np.float32), encoder=ToyEncoder(), images=store, image_size=SIZE)
    with pytest.raises(NaviewerError, match="patchsearch"):
        make_detector("patchsearch", classifier=False, clusters=4, test_images=10, **settings).run(inputs)


def test_needs_the_encoder_and_images():
    with pytest.raises(NaviewerError, match="needs encoder"):
        make_detector("patchsearch").run(DetectorInputs(np.zeros((5, 3), np.float32)))


def test_classifier_flags_split_the_log_odds_and_fall_back_to_one_half():
    from naviewer.defense.detectors.patchsearch import auto_window, classifier_flags

    rng = np.random.default_rng(0)
    clean = rng.uniform(0.0005, 0.002, 400)
    poisons = rng.uniform(0.05, 0.6, 30)  # below 0.5 mostly, yet far above every clean sample
    prob = np.concatenate([clean, poisons])
    split = classifier_flags(prob, "gmm2", 0.01, 3.5, 0)
    assert split["flags"][400:].all() and not split["flags"][:400].any()
    assert split["threshold"]["on"] == "log-odds of p"
    own = classifier_flags(prob, "own", 0.01, 3.5, 0)
    assert own["flags"].sum() == (poisons > 0.5).sum()
    flat = classifier_flags(np.full(50, 0.01), "gmm2", 0.01, 3.5, 0)  # nothing to split, no outlier: no flags
    assert not flat["flags"].any() and flat["threshold"]["fallback"] == "p > 0.5 or robust_z"
    # two far samples above a tight clean mass, one below 0.5: both flagged, by the split or its fallback
    tail = np.concatenate([rng.uniform(0.003, 0.006, 400), [0.3, 0.6]])
    spread = classifier_flags(tail, "gmm2", 0.01, 3.5, 0)
    assert spread["flags"][-2:].all() and spread["flags"][:400].sum() <= 4
    # the fallback itself: a split that flags nothing leaves p > 0.5 and the robust outliers of the log-odds
    fallback = classifier_flags(tail, "robust_z", 0.01, 1e6, 0)
    assert fallback["threshold"]["fallback"] == "p > 0.5 or robust_z" and fallback["flags"].sum() == 1
    assert (auto_window(16), auto_window(32), auto_window(224), auto_window(6)) == (8, 8, 56, 6)


def test_the_split_is_joined_by_the_robust_outliers_when_some_poisons_saturate():
    """Half the poisons at p ~ 1 and half far above the clean mass but well under 0.5: the split takes the
    saturated half only (a held-out NA cell: 57 of 107), the robust outliers add the rest."""
    from naviewer.defense.detectors.patchsearch import classifier_flags

    rng = np.random.default_rng(1)
    logit = np.concatenate([rng.normal(-7.5, 0.5, 1300), np.full(50, 16.0), rng.normal(-3.0, 0.5, 50)])
    prob = 1 / (1 + np.exp(-logit))
    out = classifier_flags(prob, "gmm2", 0.01, 3.5, 0)
    assert out["flags"][1300:].all() and out["flags"][:1300].sum() <= 3
    assert out["threshold"]["or"] == "robust_z" and out["threshold"]["outliers_added"] >= 50


def test_a_classifier_that_calls_most_samples_poisoned_flags_none():
    """p > 0.5 for a third of the samples is not a poison population: no flags, and the record says why."""
    from naviewer.defense.detectors.patchsearch import classifier_flags

    prob = np.concatenate([np.full(600, 0.2), np.full(300, 0.8)])
    out = classifier_flags(prob, "own", 0.01, 3.5, 0, max_fraction=0.2)
    assert not out["flags"].any() and "33% of the samples" in out["threshold"]["refused"]
    assert classifier_flags(prob, "own", 0.01, 3.5, 0, max_fraction=0.5)["flags"].sum() == 300


def test_a_window_larger_than_the_image_is_refused_before_any_work():
    make_detector("patchsearch", window=16).check_inputs(16)
    with pytest.raises(NaviewerError, match="window 40 is larger than the image size 16"):
        make_detector("patchsearch", window=40).check_inputs(16)


def test_a_large_image_is_shrunk_once_for_the_evaluation_view():
    """One file claiming 8000x8000 px was resized again at every step of the search (300 s against 75 s; a fuzz,
    session 34): a bucket of large images is shrunk once a store and size, the same pixels as before."""
    import torch

    from naviewer.defense.detectors.patchsearch import eval_tensor
    from naviewer.ssl.augment import EvalTransform

    rng = np.random.default_rng(0)
    small = [rng.integers(0, 255, (16, 16, 3), dtype=np.uint8) for _ in range(3)]
    large = rng.integers(0, 255, (256, 256, 3), dtype=np.uint8)
    store = ImageStore.from_images([*small, large], np.zeros(4, np.int64), ["x"])
    x = eval_tensor(store, np.array([3, 0, 3]), 16)
    expected = EvalTransform(image_size=16)(torch.from_numpy(large[None]))
    assert torch.allclose(x[0], expected[0]) and torch.allclose(x[2], expected[0])
    assert list(store._shrunk_views) == [(int(store.bucket_of[3]), 16)]  # the large bucket alone, kept
    assert torch.allclose(eval_tensor(store, np.array([3]), 16)[0], expected[0])
