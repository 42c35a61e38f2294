from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from naviewer.attacks.triggers import builtin_trigger, load_trigger, paste_trigger, random_corners, resolve_trigger
from naviewer.errors import NaviewerError


def test_builtin_blocks_are_deterministic_and_high_contrast():
    a, b = builtin_trigger("blocks-14", 8), builtin_trigger("blocks-14", 8)
    assert a.pixels.dtype == np.uint8 and a.pixels.shape == (8, 8, 3)
    assert np.array_equal(a.pixels, b.pixels)
    assert not np.array_equal(a.pixels, builtin_trigger("blocks-3", 8).pixels)
    assert set(np.unique(a.pixels)) <= {0, 255}
    cells = builtin_trigger("blocks-14", 4).pixels  # one pixel per cell
    assert (np.abs(np.diff(cells.astype(int), axis=0)).sum(-1) > 0).all()
    assert (np.abs(np.diff(cells.astype(int), axis=1)).sum(-1) > 0).all()
    assert builtin_trigger("blocks-14", 50).pixels.shape == (50, 50, 3)
    assert (builtin_trigger("white", 5).pixels == 255).all()


def test_unknown_builtin_and_bad_files(tmp_path):
    with pytest.raises(NaviewerError):
        builtin_trigger("sparkles", 8)
    with pytest.raises(NaviewerError):
        load_trigger(tmp_path / "missing.png")
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image at all")
    with pytest.raises(NaviewerError) as info:
        resolve_trigger(str(bad), 8)
    assert "bad.png" in str(info.value)


def test_load_trigger_from_file_keeps_alpha_as_mask(tmp_path):
    rgba = np.zeros((10, 20, 4), dtype=np.uint8)
    rgba[..., 0] = 200
    rgba[..., 3] = 255
    rgba[:, :10, 3] = 0
    path = tmp_path / "t.png"
    Image.fromarray(rgba, "RGBA").save(path)
    trig = load_trigger(path)
    assert trig.size == (10, 20)
    assert trig.mask[:, :10].max() == 0 and trig.mask[:, 10:].min() == 1
    assert resolve_trigger(str(path), 8).size == (4, 8)  # aspect kept


def test_paste_opacity_means_trigger_fraction():
    base = np.full((3, 16, 16, 3), 100, dtype=np.uint8)
    trig = builtin_trigger("checker", 4)
    tops, lefts = np.array([0, 5, 12]), np.array([12, 3, 0])
    out = paste_trigger(base, trig, tops, lefts, opacity=1.0)
    assert out.dtype == np.uint8 and np.array_equal(base, np.full_like(base, 100))  # input untouched
    for k in range(3):
        t, l = tops[k], lefts[k]
        assert np.array_equal(out[k, t : t + 4, l : l + 4], trig.pixels)
        outside = np.ones((16, 16), bool)
        outside[t : t + 4, l : l + 4] = False
        assert (out[k][outside] == 100).all()
    assert np.array_equal(paste_trigger(base, trig, 2, 2, opacity=0.0), base)
    mixed = paste_trigger(base, trig, 2, 2, opacity=0.8)[0, 2:6, 2:6].astype(float)
    expected = np.rint(0.8 * trig.pixels + 0.2 * 100)
    assert np.array_equal(mixed, expected)
    with pytest.raises(ValueError):
        paste_trigger(base, trig, 13, 0)
    with pytest.raises(NaviewerError):
        paste_trigger(base, trig, 0, 0, opacity=1.5)


def test_random_corners_band():
    rng = np.random.default_rng(0)
    xs = random_corners(rng, 5000, 32, 8, 0.15, 0.85)
    assert xs.min() == 4 and xs.max() == 19  # [int(0.15*32), int(0.85*32) - 8]
    assert set(random_corners(rng, 100, 32, 8, 0.45, 0.55)) == {14}  # NA code layout on CIFAR


def test_a_trigger_too_large_for_any_image_is_refused_before_it_is_made():
    """trigger_size=100000 through `new --attack-setting` allocated 28 GiB first and then read "out of memory, try a
    smaller --batch-size" (a bad-input corpus, session 23): refused by its size, before any pixel is made."""
    from naviewer.attacks.triggers import builtin_trigger
    from naviewer.errors import NaviewerError

    with pytest.raises(NaviewerError, match="100000 px trigger .* larger than naviewer makes a trigger"):
        builtin_trigger("checker", 100000)
    assert builtin_trigger("checker", 64).size == (64, 64)


def test_an_unreadable_trigger_file_is_said_without_pillows_class_names(tmp_path):
    """"cannot read trigger image (UnidentifiedImageError: cannot identify image file '<path>')" named the path twice
    and a Python class (a bad-input corpus, session 23)."""
    from naviewer.attacks.triggers import load_trigger
    from naviewer.errors import NaviewerError

    bad = tmp_path / "t.png"
    bad.write_bytes(b"not an image at all")
    with pytest.raises(NaviewerError) as caught:
        load_trigger(bad)
    assert "not an image format" in caught.value.message and "Error" not in caught.value.message
    assert caught.value.message.count(str(bad)) == 0


def test_a_fully_transparent_trigger_is_refused(tmp_path):
    """A fully transparent trigger made "poisons" identical to their clean images, and eval measured an ASR for a
    trigger that changes nothing, exit 0 (a bad-input probe, session 30)."""
    path = tmp_path / "transparent.png"
    Image.fromarray(np.zeros((8, 8, 4), np.uint8)).save(path)
    with pytest.raises(NaviewerError, match="transparent.png: the trigger image is fully transparent"):
        load_trigger(path)
    almost = np.zeros((8, 8, 4), np.uint8)
    almost[0, 0, 3] = 255  # one opaque pixel: a (tiny) trigger
    Image.fromarray(almost).save(path)
    assert load_trigger(path).mask.max() == 1.0
