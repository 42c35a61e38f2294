"""Test-time protocols: each places the trigger exactly as its rule says (ASR depends on it)."""

from __future__ import annotations

import numpy as np
import pytest

from naviewer.attacks import make_attack
from naviewer.errors import NaviewerError


def _where(before: np.ndarray, after: np.ndarray) -> list[tuple[int, int, int, int]]:
    """Bounding box (top, left, bottom, right) of the changed pixels of each image."""
    boxes = []
    for a, b in zip(before, after):
        changed = np.argwhere((a != b).any(axis=2))
        boxes.append((*changed.min(0), *changed.max(0)))
    return boxes


def _grey(n=200, size=32):
    return np.full((n, size, size, 3), 128, dtype=np.uint8)


def test_na_code_protocol_is_the_released_watermark_rule():
    attack = make_attack("na", trigger_size=8, layout="code", opacity=0.8)
    images = _grey(300, 40)
    out = attack.apply_test_trigger(images, np.random.default_rng(0), "code")
    lo, hi = int(0.45 * 40), max(int(0.55 * 40 - 8), int(0.45 * 40))
    tops = {box[0] for box in _where(images, out)}
    lefts = {box[1] for box in _where(images, out)}
    assert tops <= set(range(lo, hi + 1)) and lefts <= set(range(lo, hi + 1))
    # 80 % trigger, 20 % base: a pixel of trigger value t reads 0.2 * 128 + 0.8 * t
    trig = attack.trigger.pixels.astype(np.float64)
    top, left = _where(images[:1], out[:1])[0][:2]
    patch = out[0, top:top + 8, left:left + 8].astype(np.float64)
    assert np.allclose(patch, 0.2 * 128 + 0.8 * trig, atol=1.0)


def test_na_paper_protocol_centres_the_trigger_and_uniform_spreads_it():
    attack = make_attack("na", trigger_size=8)
    images = _grey(200, 32)
    centred = _where(images, attack.apply_test_trigger(images, np.random.default_rng(0), "paper"))
    assert set(centred) == {(12, 12, 19, 19)}
    spread = _where(images, attack.apply_test_trigger(images, np.random.default_rng(0)))
    lefts = {box[1] for box in spread}
    assert min(lefts) >= int(0.15 * 32) and max(lefts) <= int(0.85 * 32) - 8 and len(lefts) > 5
    assert attack.test_trigger_fn("code").protocol == "code" and attack.test_trigger_fn().protocol == "uniform"


@pytest.mark.parametrize("name,low,high", [("patch", 0.10, 0.90), ("corruptencoder", 0.25, 0.75)])
def test_paper_bands_of_the_patch_attacks(name, low, high):
    attack = make_attack(name, trigger_size=4)
    images = _grey(400, 40)
    boxes = _where(images, attack.apply_test_trigger(images, np.random.default_rng(1), "paper"))
    lefts = [box[1] for box in boxes]
    assert min(lefts) == int(low * 40) and max(lefts) == int(high * 40) - 4


def test_unknown_protocol_is_refused_with_the_choices():
    with pytest.raises(NaviewerError, match="code"):
        make_attack("na").test_trigger_fn("nope")
    ctrl = make_attack("ctrl")
    assert ctrl.check_test_protocol(None) == "paper"
    with pytest.raises(NaviewerError):
        ctrl.check_test_protocol("uniform")
