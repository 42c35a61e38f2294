from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.fft import dctn

from naviewer.attacks import CraftedDataset, make_attack
from naviewer.attacks.ctrl import RGB_TO_YUV, dct_matrix
from naviewer.attacks.layout import Layout
from naviewer.data.base import ArrayDataset
from naviewer.data.crops import Box
from naviewer.errors import NaviewerError
from naviewer.jobs import JobContext, RecordingReporter

from .conftest import make_dataset

NAMES = ["na", "patch", "ctrl", "corruptencoder"]


def _craft(name, data, seed=0, **settings):
    return make_attack(name, **settings).craft(data, np.random.default_rng(seed))


@pytest.mark.parametrize("name", NAMES)
def test_deterministic_dtype_and_ground_truth(name, tiny):
    a, b = _craft(name, tiny, rate=0.1), _craft(name, tiny, rate=0.1)
    assert a.ground_truth == b.ground_truth
    assert len(a.dataset) == len(b.dataset) == len(a.ground_truth["samples"])
    for i in range(len(a.dataset)):
        img = a.dataset.image(i)
        assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3
        assert np.array_equal(img, b.dataset.image(i))
    mask = a.poison_mask
    assert mask.sum() == a.ground_truth["num_poisons"] > 0
    assert a.ground_truth["poison_rate"] == pytest.approx(mask.sum() / len(a.dataset))
    assert abs(a.ground_truth["poison_rate"] - 0.1) < 0.02
    json.dumps(a.ground_truth)  # JSON-able
    for i in np.flatnonzero(mask):
        rec = a.ground_truth["samples"][i]
        assert rec["attack"] == name and "trigger" in rec and "layout" in rec
    other = _craft(name, tiny, seed=1, rate=0.1)
    if name != "ctrl":  # CTRL poisons the first target images: no randomness
        assert other.ground_truth != a.ground_truth


def test_patch_changes_only_the_trigger_box(tiny):
    result = _craft("patch", tiny, rate=0.2, target=1)
    attack_trigger = make_attack("patch").trigger
    assert isinstance(result.dataset, CraftedDataset)
    for i in range(len(tiny)):
        rec = result.ground_truth["samples"][i]
        out, src = result.dataset.image(i), tiny.image(i)
        if rec["kind"] == "clean":
            assert np.array_equal(out, src)
            continue
        assert tiny.labels[i] == 1 and result.dataset.labels[i] == 1
        t, l, h, w = rec["trigger"]["box"]
        assert 8 <= t <= 16 and 8 <= l <= 16  # [int(0.25*32), int(0.75*32) - 8]
        assert np.array_equal(out[t : t + h, l : l + w], attack_trigger.pixels)
        outside = np.ones(out.shape[:2], bool)
        outside[t : t + h, l : l + w] = False
        assert np.array_equal(out[outside], src[outside])


def _yuv_dct(image: np.ndarray) -> np.ndarray:
    yuv = image.astype(np.float64) @ RGB_TO_YUV.T
    return dctn(yuv, axes=(0, 1), norm="ortho")


def test_ctrl_moves_the_chosen_dct_coefficients_by_the_magnitude():
    grey = np.full((4, 32, 32, 3), 128, dtype=np.uint8)
    attack = make_attack("ctrl")
    out = attack.apply_trigger(grey)
    assert out.dtype == np.uint8 and 0 < out.min() and out.max() < 255  # no clipping happened
    exact = _yuv_dct(attack.triggered_float(grey)[0]) - _yuv_dct(grey[0])
    rounded = _yuv_dct(out[0]) - _yuv_dct(grey[0])
    for delta, tol in ((exact, 0.05), (rounded, 2.5)):  # before rounding (matrices inverse to 1e-5); after uint8 rounding
        for ch in (1, 2):
            for k, l in ((15, 15), (31, 31)):
                assert delta[k, l, ch] == pytest.approx(100.0, abs=tol)
            rest = delta[..., ch].copy()
            rest[15, 15] = rest[31, 31] = 0
            assert np.abs(rest).max() < tol
        assert np.abs(delta[..., 0]).max() < tol  # luminance untouched
    assert np.array_equal(attack.apply_test_trigger(grey, np.random.default_rng(0)), out)
    # scipy's orthonormal DCT and ours agree
    x = np.random.default_rng(0).normal(size=(32, 32))
    c = dct_matrix(32)
    assert np.allclose(c @ x @ c.T, dctn(x, norm="ortho"))


def test_ctrl_windows_and_first_target_images():
    data = make_dataset(n=30, size=40)  # 40 px: one full 32 px window, an 8 px remainder
    result = _craft("ctrl", data, num_poisons=4, target=2)
    poisons = result.poison_indices
    assert list(poisons) == list(np.flatnonzero(data.labels == 2)[:4])
    for i in poisons:
        out, src = result.dataset.image(i), data.image(i)
        assert np.array_equal(out[32:], src[32:]) and np.array_equal(out[:, 32:], src[:, 32:])
        assert not np.array_equal(out[:32, :32], src[:32, :32])


def test_na_paper_layout(tiny):
    result = _craft("na", tiny, rate=0.25)
    gt = result.ground_truth
    removed = {r["id"] for r in gt["removed"]}
    assert len(removed) == gt["num_poisons"]  # one reference per poison, removed from the clean list
    assert len(result.dataset) == len(tiny)
    orientations = set()
    for i, rec in enumerate(gt["samples"]):
        if rec["kind"] == "clean":
            assert rec["source"] not in removed
            assert np.array_equal(result.dataset.image(i), tiny.image(rec["source"]))
            continue
        img = result.dataset.image(i)
        assert img.shape[:2] in ((32, 64), (64, 32))
        layout = Layout.from_json(rec["layout"])
        orientations.add(layout.orientation)
        ref, shadow, trig = (layout.regions[k] for k in ("reference", "shadow", "trigger"))
        assert shadow.top <= trig.top and trig.bottom <= shadow.bottom and shadow.left <= trig.left and trig.right <= shadow.right
        assert (trig.top - shadow.top, trig.left - shadow.left) == (12, 12)
        ref_src, shadow_src = rec["sources"]["reference"]["id"], rec["sources"]["shadow"]["id"]
        assert ref_src in removed and tiny.labels[ref_src] == 0 and tiny.labels[shadow_src] != 0
        assert np.array_equal(img[ref.top : ref.bottom, ref.left : ref.right], tiny.image(ref_src))
        shadow_pix = img[shadow.top : shadow.bottom, shadow.left : shadow.right]
        keep = np.ones((32, 32), bool)
        keep[12:20, 12:20] = False
        assert np.array_equal(shadow_pix[keep], tiny.image(shadow_src)[keep])
        assert result.dataset.labels[i] == 0
    assert orientations == {"ref-left", "ref-right", "ref-top", "ref-bottom"}


def test_na_gap_code_layout_and_shadow_pool(tiny):
    gapped = _craft("na", tiny, num_poisons=6, gap=0.5, orientation="ref-left", gap_color=(1, 2, 3))
    for i in gapped.poison_indices:
        img = gapped.dataset.image(i)
        assert img.shape[:2] == (32, 80)
        assert (img[:, 32:48] == np.array([1, 2, 3], np.uint8)).all()
    pooled = _craft("na", tiny, num_poisons=10, shadow_pool=3)
    assert pooled.ground_truth["distinct_shadows"] == 3
    code = _craft("na", tiny, num_poisons=8, layout="code")
    for i in code.poison_indices:
        rec = code.ground_truth["samples"][i]
        shadow = Box.from_list(rec["layout"]["regions"]["shadow"])
        t, l, _, _ = rec["trigger"]["box"]
        assert (t - shadow.top, l - shadow.left) == (14, 14)  # randint(int(0.45*32), ...) on CIFAR


def test_na_code_layout_resizes_unequal_images():
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (40, 60, 3), dtype=np.uint8) if k % 2 else rng.integers(0, 256, (20, 24, 3), dtype=np.uint8) for k in range(8)]
    data = ArrayDataset(images, [0, 1] * 4, ["t", "o"])  # references 20x24, shadows 40x60 (5x the area)
    result = _craft("na", data, num_poisons=4, layout="code")
    for i in result.poison_indices:
        rec = result.ground_truth["samples"][i]
        lay = Layout.from_json(rec["layout"])
        img = result.dataset.image(i)
        assert img.shape[:2] == (lay.height, lay.width)
        ref, shadow, trig = (lay.regions[k] for k in ("reference", "shadow", "trigger"))
        if lay.orientation in ("ref-left", "ref-right"):
            assert ref.height == shadow.height == lay.height and ref.width + shadow.width == lay.width
        else:
            assert ref.width == shadow.width == lay.width and ref.height + shadow.height == lay.height
        assert ref.height * ref.width > 20 * 24  # the smaller image was scaled up
        assert shadow.top <= trig.top and trig.bottom <= shadow.bottom and shadow.left <= trig.left and trig.right <= shadow.right


def test_corruptencoder_layout_and_added_poisons(tiny):
    result = _craft("corruptencoder", tiny, num_poisons=8)
    gt = result.ground_truth
    assert len(result.dataset) == len(tiny) + 8 and gt["removed"] == []
    refs = {r["id"] for r in gt["references"]}
    assert len(refs) == 3
    for i in result.poison_indices:
        rec = gt["samples"][i]
        img = result.dataset.image(i)
        assert img.shape[:2] == (32, 64)
        lay = Layout.from_json(rec["layout"])
        obj, trig = lay.regions["object"], lay.regions["trigger"]
        ref = rec["sources"]["reference"]["id"]
        assert ref in refs and tiny.labels[rec["sources"]["background"]["id"]] != 0
        assert np.array_equal(img[:, obj.left : obj.right], tiny.image(ref))
        assert trig.left >= obj.right or trig.right <= obj.left  # trigger in the free part
        assert 8 <= trig.top <= 16


@pytest.mark.parametrize("name", ["na", "patch", "corruptencoder"])
def test_test_time_trigger(name):
    attack = make_attack(name)
    images = np.zeros((200, 32, 32, 3), dtype=np.uint8)
    out = attack.apply_test_trigger(images, np.random.default_rng(0))
    assert out.dtype == np.uint8 and out.shape == images.shape and not images.any()
    trig = attack.trigger.pixels
    lefts = []
    for img in out:
        ys, xs = np.nonzero(img.any(-1))
        t, l = ys.min(), xs.min()
        # the black cells of the trigger may sit on its edge: locate by matching instead
        match = [(a, b) for a in range(0, 25) for b in range(0, 25) if np.array_equal(img[a : a + 8, b : b + 8], trig)]
        assert match, (t, l)
        a, b = match[0]
        assert 4 <= a <= 19 and 4 <= b <= 19
        lefts.append(b)
    assert min(lefts) == 4 and max(lefts) == 19


def test_errors_are_naviewer_errors(tiny):
    with pytest.raises(NaviewerError):
        make_attack("nope")
    with pytest.raises(NaviewerError):
        make_attack("na", colour="red")
    with pytest.raises(NaviewerError):
        make_attack("patch", rate=1.5)
    with pytest.raises(NaviewerError):
        make_attack("na", layout="diagonal")
    with pytest.raises(NaviewerError):
        _craft("patch", tiny, rate=0.5)  # more poisons than target images
    with pytest.raises(NaviewerError):
        _craft("na", tiny, target=7)
    unlabeled = ArrayDataset(np.zeros((5, 32, 32, 3), np.uint8), None, [])
    with pytest.raises(NaviewerError):
        _craft("ctrl", unlabeled)
    with pytest.raises(NaviewerError):
        make_attack("na", trigger="/no/such/trigger.png").trigger


def test_progress_and_target_class(tiny):
    reporter = RecordingReporter()
    attack = make_attack("na", target=2, rate=0.1)
    assert attack.target_class == 2
    attack.craft(tiny, np.random.default_rng(0), JobContext(reporter))
    assert reporter.progresses[-1][0] == reporter.progresses[-1][1] > 0


@pytest.mark.parametrize("name", NAMES)
def test_recorded_settings_reproduce_the_craft(name, tiny):
    first = _craft(name, tiny, seed=5, rate=0.1, target=1)
    again = make_attack(first.ground_truth["attack"], **json.loads(json.dumps(first.ground_truth["settings"])))
    assert again.craft(tiny, np.random.default_rng(5)).ground_truth == first.ground_truth


def test_crafted_dataset_as_array_for_equal_sizes():
    data = make_dataset(n=30)
    patched = _craft("patch", data, rate=0.1)
    whole = patched.dataset.as_array()
    assert whole is not None and whole.shape == (30, 32, 32, 3)
    assert all(np.array_equal(whole[i], patched.dataset.image(i)) for i in range(30))
    assert _craft("na", data, rate=0.1).dataset.as_array() is None  # composites are 32x64 / 64x32


def test_settings_go_through_the_one_strict_loader():
    """Attack settings are checked like every other settings dataclass (naviewer.settings): a wrong type or a
    non-finite number is a named error, an integral float for an int field becomes that int."""
    with pytest.raises(NaviewerError, match="trigger_size='abc': expected a whole number"):
        make_attack("patch", trigger_size="abc")
    with pytest.raises(NaviewerError, match="opacity=nan: expected a finite number"):
        make_attack("na", opacity=float("nan"))
    with pytest.raises(NaviewerError, match="unknown attack 'na' setting"):
        make_attack("na", colour="red")
    attack = make_attack("patch", trigger_size=8.0)
    assert attack.settings.trigger_size == 8 and isinstance(attack.settings.trigger_size, int)
    again = type(attack)(attack.settings, rate=0.02)  # settings plus overrides: checked the same way
    assert again.settings.rate == 0.02 and again.settings.trigger_size == 8


@pytest.mark.parametrize("settings, words", [({"rate": 0.0}, "it would craft no poison"),
                                             ({"num_poisons": 0}, "num_poisons must be at least 1"),
                                             ({"opacity": 0.0}, "the trigger would be invisible")])
def test_an_attack_that_would_do_nothing_is_refused(settings, words):
    """--rate 0, --num-poisons 0 and --opacity 0 crafted a "poisoned" set with no poison in it (a sweep, session 18)."""
    from naviewer.errors import NaviewerError

    name = "na" if "opacity" in settings else "patch"
    with pytest.raises(NaviewerError, match=words):
        make_attack(name, **settings)


def test_an_attack_on_a_dataset_of_only_the_target_class_is_refused():
    """``new --attack patch`` on a one-class dataset exited 0: an ASR with no image of another class to measure on (a
    sweep, session 21)."""
    import numpy as np
    import pytest

    from naviewer.attacks.base import target_indices
    from naviewer.data.base import ArrayDataset
    from naviewer.errors import NaviewerError

    one = ArrayDataset(np.zeros((6, 8, 8, 3), np.uint8), [0] * 6, ["cat"])
    with pytest.raises(NaviewerError, match="every labelled image is of the target class 0"):
        target_indices(one, 0)
    two = ArrayDataset(np.zeros((6, 8, 8, 3), np.uint8), [0, 1] * 3, ["cat", "dog"])
    assert len(target_indices(two, 0)) == 3


@pytest.mark.parametrize("option, words", [(["--rate", "-0.1"], "--rate must be > 0 and <= 1"),
                                           (["--opacity", "inf"], "--opacity must be a finite number"),
                                           (["--opacity", "-0.5"], "--opacity must be > 0 and <= 1"),
                                           (["--num-poisons", "0"], "--num-poisons must be >= 1")])
def test_attack_options_out_of_range_are_named(option, words, tmp_path, capsys):
    """The attack's own words named no option ("opacity must be in (0, 1]", "setting opacity=inf", a setting never
    typed), and --num-poisons -1 said ">= 0" before 0 was refused too (a bad-input probe, session 28)."""
    from naviewer.cli import main

    assert main(["craft", "--attack", "patch", "--dataset", "digits", "--out", str(tmp_path / "o"), *option]) == 2
    assert words in capsys.readouterr().err and not (tmp_path / "o").exists()

