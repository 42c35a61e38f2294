from __future__ import annotations

import math

import numpy as np

from naviewer.attacks.layout import (
    ORIENTATIONS,
    corruptencoder_event_probability,
    corruptencoder_layout,
    na_event_probability,
    na_layout,
    na_layout_probability,
    view_roles,
)
from naviewer.data.crops import sample_crop_boxes


def test_na_layout_regions_all_orientations():
    for orientation in ORIENTATIONS:
        lay = na_layout(32, 8, gap=8, orientation=orientation)
        assert (lay.height, lay.width) in ((32, 72), (72, 32))
        ref, shadow, trig, gap = (lay.regions[k] for k in ("reference", "shadow", "trigger", "gap"))
        assert ref.height == ref.width == shadow.height == shadow.width == 32
        assert shadow.top <= trig.top and trig.bottom <= shadow.bottom
        assert shadow.left <= trig.left and trig.right <= shadow.right
        assert trig.top - shadow.top == 12 and trig.left - shadow.left == 12  # centred
        assert gap.height * gap.width == 8 * 32
    roundtrip = type(lay).from_json(lay.to_json())
    assert roundtrip == lay


def test_na_event_probability_cifar_and_imagenet():
    cifar = na_layout_probability(32, 8, pairs=1_000_000, seed=1)
    assert abs(cifar.event.value - 0.036) < 0.003, cifar
    assert cifar.event.se < 0.0005
    imagenet = na_layout_probability(224, 50, pairs=1_000_000, seed=2)
    assert abs(imagenet.event.value - 0.031) < 0.003, imagenet
    parts = imagenet.parts
    assert abs(parts["view_in_reference"].value - 0.124) < 0.005
    assert abs(parts["view_in_shadow_with_trigger"].value - 0.123) < 0.005
    # the two views are independent and the roles exclusive: P = 2 P(ref) P(shadow+trigger)
    product = 2 * parts["view_in_reference"].value * parts["view_in_shadow_with_trigger"].value
    assert abs(imagenet.event.value - product) < 4 * imagenet.event.se


def test_gap_lowers_the_event_probability_monotonically():
    r = 32
    values = [na_layout_probability(r, 8, gap=int(g * r), pairs=300_000, seed=3).event.value for g in (0, 0.25, 0.5, 1.0)]
    assert all(a > b for a, b in zip(values, values[1:])), values
    assert values[-1] < 0.01


def test_extra_height_and_orientation_symmetry():
    base = na_layout_probability(32, 8, pairs=200_000, seed=4).event
    taller = na_layout_probability(32, 8, extra_height=8, pairs=200_000, seed=4).event
    assert taller.value < base.value / 5
    top = na_event_probability(na_layout(32, 8, orientation="ref-top"), pairs=200_000, rng=5).event
    assert abs(top.value - base.value) < 4 * math.hypot(top.se, base.se)


def test_corner_trigger_and_scale_range_change_the_estimate():
    centred = na_layout_probability(32, 8, pairs=200_000, seed=6).event.value
    corner = na_layout_probability(32, 8, trigger_position=(0, 24), pairs=200_000, seed=6).event.value
    assert corner < centred
    wide = na_layout_probability(32, 8, scale=(0.08, 1.0), pairs=200_000, seed=6).event.value
    assert wide > centred


def test_corruptencoder_event():
    lay = corruptencoder_layout(32, 32, 8)
    assert (lay.height, lay.width) == (32, 64)
    obj, trig = lay.regions["object"], lay.regions["trigger"]
    assert obj.right <= trig.left
    est = corruptencoder_event_probability(lay, pairs=200_000, rng=0)
    parts = est.parts
    assert 0 < parts["view_contains_object"].value < parts["view_contains_trigger"].value < 1
    assert 0 < est.event.value < 2 * parts["view_contains_object"].value
    assert 0 < parts["event_inside_object"].value
    right = corruptencoder_layout(32, 32, 8, side="right")
    assert right.regions["object"].left == 32 and right.regions["trigger"].right <= 32


def test_view_roles_agree_with_the_event():
    lay = na_layout(32, 8)
    crops = sample_crop_boxes(lay.height, lay.width, np.random.default_rng(0), n=50_000)
    roles = view_roles(lay, crops)
    assert not (roles["in_reference"] & roles["in_shadow"]).any()
    p_ref = roles["in_reference"].mean()
    est = na_event_probability(lay, pairs=100_000, rng=1)
    assert abs(p_ref - est.parts["view_in_reference"].value) < 0.01
