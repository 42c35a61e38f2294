from __future__ import annotations

import numpy as np
import pytest

from naviewer.attacks import make_attack
from naviewer.attacks.export import export_crafted, read_ground_truth
from naviewer.attacks.preview import craft_all, render_preview
from naviewer.cli import main
from naviewer.data import open_dataset
from naviewer.errors import NaviewerError

from .conftest import make_dataset


def test_na_on_cifar_round_trips_through_the_file_list(cifar10_root, tmp_path):
    clean = open_dataset(cifar10_root)
    result = make_attack("na", rate=0.05).craft(clean, np.random.default_rng(0))
    gt = result.ground_truth
    assert gt["num_poisons"] == round(0.05 * len(clean)) == len(gt["removed"])
    summary = export_crafted(result, tmp_path / "out")
    back = open_dataset(summary.list_path)
    assert len(back) == len(result.dataset) == len(clean)
    assert back.class_names == clean.class_names
    assert np.array_equal(back.labels, result.dataset.labels)
    for i in range(len(back)):
        assert np.array_equal(back.image(i), result.dataset.image(i)), i
    written = read_ground_truth(summary.ground_truth_path)
    poison_paths = {s["path"] for s in written["samples"] if s["kind"] == "poison"}
    listed = {back.source_key(i) for i in range(len(back)) if result.poison_mask[i]}
    assert poison_paths == listed and len(poison_paths) == gt["num_poisons"]
    # the file names give nothing away: poisons sit in their label's folder, named by position
    assert not any("poison" in key or gt["attack"] in key.split("/")[-1] for key in
                   (back.source_key(i) for i in range(len(back))))
    assert np.array_equal(np.array([s["kind"] == "poison" for s in written["samples"]]), result.poison_mask)
    for s in written["samples"]:
        if s["kind"] == "poison":
            assert {"shadow", "reference"} <= set(s["sources"]) and s["trigger"]["box"]
    with pytest.raises(NaviewerError):
        export_crafted(result, tmp_path / "out")  # not empty


def test_craft_command(tmp_path, capsys):
    out = tmp_path / "crafted"
    preview = tmp_path / "p.png"
    rc = main(["craft", "--attack", "patch", "--dataset", "demo", "--out", str(out), "--rate", "0.02",
               "--seed", "3", "--preview", str(preview)])
    assert rc == 0
    assert (out / "train.txt").is_file() and (out / "ground_truth.json").is_file() and preview.is_file()
    gt = read_ground_truth(out / "ground_truth.json")
    assert gt["attack"] == "patch" and gt["seed"] == 3 and gt["test_protocol"] == "uniform"
    assert main(["craft", "--attack", "na", "--dataset", "demo", "--out", str(tmp_path / "na"), "--layout", "code",
                 "--opacity", "0.8", "--test-protocol", "code", "--rate", "0.02"]) == 0
    assert read_ground_truth(tmp_path / "na" / "ground_truth.json")["test_protocol"] == "code"
    assert main(["craft", "--attack", "patch", "--dataset", "demo", "--out", str(tmp_path / "x"),
                 "--test-protocol", "code"]) == 2
    assert "no test-time protocol 'code'" in capsys.readouterr().err and not (tmp_path / "x").exists()
    assert main(["craft", "--attack", "ctrl", "--dataset", "demo", "--trigger-size", "4", "--preview", str(preview)]) == 2
    assert "does not apply" in capsys.readouterr().err


def test_preview_renders_every_attack():
    clean = make_dataset(n=90)
    image = render_preview(craft_all(clean, rate=0.1), clean, per_row=4, zoom=2)
    assert image.width > 300 and image.height > 300


def test_a_craft_that_fails_half_way_leaves_nothing_behind(tmp_path):
    """A broken image late in the set stopped the export after writing the earlier ones; the retry was then
    refused ("output folder is not empty")."""
    result = make_attack("patch", rate=0.1).craft(make_dataset(), np.random.default_rng(0))

    class Broken(type(result.dataset)):
        def image(self, index):
            if index == 5:
                raise NaviewerError("not a readable image", "broken.png")
            return super().image(index)

    broken = result.dataset
    broken.__class__ = Broken
    with pytest.raises(NaviewerError, match="not a readable image"):
        export_crafted(result, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    (tmp_path / "empty").mkdir()
    with pytest.raises(NaviewerError):
        export_crafted(result, tmp_path / "empty")
    assert (tmp_path / "empty").is_dir() and not any((tmp_path / "empty").iterdir())
    broken.__class__ = Broken.__mro__[1]
    assert export_crafted(result, tmp_path / "out").images == len(result.dataset)


def test_a_stopped_overwrite_leaves_the_earlier_crafted_set_whole(tmp_path):
    """`craft --overwrite` wrote the new images in place: stopped half-way, the folder held new images under the old
    ground_truth.json, which then named the wrong samples as poisons (a bad-input probe, session 28). The new set is
    written beside it and swapped in whole; a stop leaves the old one as it was and no staging folder."""
    import hashlib

    from naviewer.errors import JobCancelled

    first = make_attack("patch", rate=0.1).craft(make_dataset(), np.random.default_rng(0))
    second = make_attack("patch", rate=0.1, target=1).craft(make_dataset(), np.random.default_rng(1))
    out = tmp_path / "out"
    export_crafted(first, out)

    def digest() -> dict:
        return {p.relative_to(out).as_posix(): hashlib.md5(p.read_bytes()).hexdigest()
                for p in sorted(out.rglob("*")) if p.is_file()}

    before = digest()

    class Stop(type(second.dataset)):
        def image(self, index):
            if index == len(self) // 2:
                raise JobCancelled()
            return super().image(index)

    second.dataset.__class__ = Stop
    with pytest.raises(JobCancelled):
        export_crafted(second, out, overwrite=True)
    assert digest() == before and not list(tmp_path.glob(".out.*"))
    second.dataset.__class__ = Stop.__mro__[1]
    summary = export_crafted(second, out, overwrite=True)
    assert summary.out_dir == out and summary.ground_truth_path == out / "ground_truth.json"
    assert digest() != before and not list(tmp_path.glob(".out.*"))


def test_a_set_hidden_by_a_kill_between_the_swaps_renames_comes_back(tmp_path):
    """Killed between the two renames of --overwrite's swap, the old set stayed hidden in .OUT.replaced-PID and OUT was
    gone (a review, session 28): the next craft into OUT puts it back first, and the staging folder goes."""
    first = make_attack("patch", rate=0.1).craft(make_dataset(), np.random.default_rng(0))
    out = tmp_path / "out"
    export_crafted(first, out)
    hidden = tmp_path / ".out.replaced-999999999"
    out.rename(hidden)
    (tmp_path / ".out.crafting-999999999").mkdir()
    with pytest.raises(NaviewerError, match="not empty"):  # the old set is back, and a craft without --overwrite
        export_crafted(first, out)                          # still refuses to write over it
    assert (out / "ground_truth.json").is_file() and not list(tmp_path.glob(".out.*"))


def test_a_crafted_image_naviewer_would_not_read_back_is_refused_before_anything_is_written(tmp_path, monkeypatch):
    """A 1 x 10,000 px reference made a 20,000 x 10,000 px Noisy Alignment poison, exit 0, that new and train then
    refused as over the pixel limit (a bad-input probe, session 30): refused, naming its sources, nothing written."""
    import naviewer.data.imageio as imageio

    result = make_attack("na", num_poisons=3).craft(make_dataset(), np.random.default_rng(0))
    poison = int(np.flatnonzero([s["kind"] == "poison" for s in result.ground_truth["samples"]])[0])
    h, w = np.asarray(result.dataset.image(poison)).shape[:2]
    monkeypatch.setattr(imageio, "DEFAULT_MAX_PIXELS", h * w - 1)  # that poison is one pixel too many
    with pytest.raises(NaviewerError, match=r"out: a crafted image would be .* px from (shadow|reference) .*, over the"):
        export_crafted(result, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_trigger_that_does_not_fit_an_image_names_the_image():
    """"a 4 px trigger does not fit in a 1 px image" named no image (a bad-input probe, session 30)."""
    clean = make_dataset(n=30, size=16)

    class OneThin(type(clean)):
        def image(self, index):
            return np.zeros((16, 1, 3), np.uint8) if index == 3 else super().image(index)  # of the target class

    clean.__class__ = OneThin
    with pytest.raises(NaviewerError, match=r": a 4 px trigger does not fit in a 1 px image: the chosen image is "
                                            r"1x16 px; leave such images out"):
        make_attack("patch", num_poisons=10, trigger_size=4).craft(clean, np.random.default_rng(0))  # all 10 "0"s
