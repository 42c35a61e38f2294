"""The crop-layout estimate: agrees with the paper's sanity values and the attacks module."""

from __future__ import annotations

import numpy as np
import pytest

from naviewer.analysis.crop_event import CropLayout, estimate_event_probability, layout_of_record, sample_pairs
from naviewer.attacks.layout import na_layout
from naviewer.errors import NaviewerError


def test_cifar_sanity_value() -> None:
    est = estimate_event_probability(CropLayout(size=32, trigger=8), n_pairs=100_000)
    assert abs(est.probability - 0.036) < 0.004  # attacks.md section 1.2 (MC): 3.6%
    assert 0.11 < est.p_reference < 0.16 and 0.11 < est.p_shadow_trigger < 0.16


def test_gap_lowers_probability() -> None:
    base = estimate_event_probability(CropLayout(gap=0), n_pairs=30_000).probability
    gapped = estimate_event_probability(CropLayout(gap=16), n_pairs=30_000).probability
    assert gapped < base / 2


def test_drawn_pairs_match_the_estimate_with_the_same_seed() -> None:
    layout = CropLayout(size=32, trigger=6, trigger_x=0.3, orientation="ref-top")
    pairs = sample_pairs(layout, 5000, rng=7)
    est = estimate_event_probability(layout, n_pairs=5000, seed=7)
    assert pairs.event.mean() == pytest.approx(est.probability)


def test_round_trip_from_recorded_layout() -> None:
    recorded = na_layout(32, 8, (3, 20), gap=4, orientation="ref-right")
    layout = CropLayout.from_layout(recorded)
    assert layout.to_layout() == recorded
    record = {"kind": "poison", "layout": recorded.to_json()}
    assert layout_of_record(record, recorded.height, recorded.width) == recorded
    assert layout_of_record(record, 32, 32) is None and layout_of_record(None, 32, 64) is None


def test_bad_layouts_are_user_errors() -> None:
    with pytest.raises(NaviewerError):
        CropLayout(trigger=40)
    with pytest.raises(NaviewerError):
        CropLayout(scale=(0.9, 0.2))
    with pytest.raises(NaviewerError):
        CropLayout(orientation="diagonal")
    assert np.isfinite(estimate_event_probability(CropLayout(), n_pairs=10).probability)


def test_the_trigger_half_is_guessed_from_the_image():
    import numpy as np

    from naviewer.analysis.crop_event import guess_orientation

    rng = np.random.default_rng(0)
    smooth = np.full((16, 16, 3), 120, np.uint8)
    trigger_half = smooth.copy()
    trigger_half[4:12, 4:12] = (rng.integers(0, 2, (8, 8, 1)) * 255).astype(np.uint8)
    wide = np.concatenate([trigger_half, smooth], axis=1)      # trigger on the left: reference on the right
    assert guess_orientation(wide)[0] == "ref-right" and guess_orientation(wide)[1] > 0.5
    tall = np.concatenate([smooth, trigger_half], axis=0)      # trigger below: reference on top
    assert guess_orientation(tall)[0] == "ref-top"
    assert guess_orientation(np.concatenate([smooth, smooth], axis=1))[1] == 0.0


def test_the_trigger_square_is_guessed_where_the_edges_stand_out():
    """The template drew the paper's quarter-size square in the middle: on the demo's 8 px triggers in 16 px digits it
    boxed the middle 4 px (a newcomer, session 26). Side and place come from the image: a planted checker of each side
    at each place is found to the pixel, in noise; a half with nothing in it says so by a low confidence."""
    import numpy as np

    from naviewer.analysis.crop_event import guess_trigger

    rng = np.random.default_rng(1)
    for r, side, (y, x), orientation in ((16, 8, (4, 4), "ref-left"), (32, 8, (20, 3), "ref-left"),
                                         (32, 4, (14, 14), "ref-top"), (16, 4, (0, 12), "ref-right")):
        halves = [(rng.random((r, r, 3)) * 60 + 100).astype(np.uint8) for _ in range(2)]
        checker = ((np.indices((side, side)).sum(0) % 2) * 255).astype(np.uint8)[..., None]
        shadow = 1 if orientation in ("ref-left", "ref-top") else 0
        halves[shadow][y:y + side, x:x + side] = checker
        image = np.concatenate(halves, axis=1 if orientation in ("ref-left", "ref-right") else 0)
        t, fx, fy, sure = guess_trigger(image, orientation, r)
        assert (t, round(fx * r - t / 2), round(fy * r - t / 2)) == (side, x, y), (r, side, orientation)
        assert sure > 0.5
    plain = np.full((16, 32, 3), 120, np.uint8)
    assert guess_trigger(plain, "ref-left", 16)[3] == 0.0


def test_the_demos_own_composites_are_guessed_right():
    """The demo's composites (a colour block trigger on a grey digit, beside a grey "0") were guessed wrong 97 times
    in 113: the grey average flattened the trigger's colours under the "0"'s edges (newcomer session 17)."""
    import numpy as np

    from naviewer.analysis.crop_event import guess_orientation
    from naviewer.attacks import make_attack
    from naviewer.data import open_dataset
    from naviewer.workflows.demo import DemoConfig

    demo = DemoConfig()
    result = make_attack("na", **demo.attack_settings()).craft(open_dataset(demo.dataset_spec()),
                                                              np.random.default_rng(0))
    samples = result.ground_truth["samples"]
    poisons = [i for i, sample in enumerate(samples) if sample["kind"] == "poison"]
    right = sum(guess_orientation(result.dataset.image(i))[0] == samples[i]["layout"]["orientation"] for i in poisons)
    assert len(poisons) > 100 and right >= 0.9 * len(poisons)
