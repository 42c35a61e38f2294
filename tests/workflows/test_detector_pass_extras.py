"""A detector's per-sample extras saved with its pass: crop_density's densest crop (best_box) and support."""

from __future__ import annotations

import numpy as np
import torch
from workflow_kit import write_folder

from naviewer.data.sources import open_dataset
from naviewer.data.store import ImageStore
from naviewer.defense.detectors import DetectorInputs, make_detector
from naviewer.workflows.detector_passes import BOX_FIELDS, pass_extras, run_detectors
from naviewer.workspace import Workspace


def test_pass_extras_splits_boxes_and_leaves_out_other_shapes():
    boxes = np.array([[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11]])
    out = pass_extras({"best_box": boxes, "support": np.array([1, 2, 3]), "best_crop": np.array([0, 1, 0]),
                       "crops_per_image": 8}, 3)
    assert sorted(out) == sorted([f"best_box_{f}" for f in BOX_FIELDS] + ["support"])
    assert [out[f"best_box_{f}"][1] for f in BOX_FIELDS] == [4, 5, 6, 7]
    assert pass_extras({"best_box": boxes[:2], "support": np.array([1, 2])}, 3) == {}  # not one per sample


def test_crop_density_pass_keeps_each_samples_densest_crop(tmp_path):
    folder = write_folder(tmp_path / "images", per_class=8, classes=3, size=16)
    encoder = torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(2), torch.nn.Flatten())  # 12 features of a crop
    settings = {"k": 3, "crops": 2, "backend": "exact"}
    with Workspace.create(tmp_path / "ws", open_dataset(folder)) as ws:
        store = ImageStore.from_dataset(ws.dataset())
        n = len(store)
        passes, _ = run_detectors(ws, np.zeros((n, 2)), ["crop_density"], run="t", encoder=encoder, images=store,
                                  image_size=16, settings={"crop_density": settings})
        arrays = ws.store.pass_scores(passes["crop_density"])
    direct = make_detector("crop_density", **settings).run(
        DetectorInputs(np.zeros((n, 2)), encoder=encoder, images=store, image_size=16))
    saved = np.stack([arrays[f"best_box_{f}"] for f in BOX_FIELDS], axis=1)
    assert np.array_equal(saved, direct.extras["best_box"]) and saved.dtype == np.int64
    assert np.array_equal(arrays["support"], direct.extras["support"])
    assert np.allclose(arrays["score"], direct.score.astype(np.float32))


def test_detectors_of_one_pass_are_saved_all_or_none(tmp_path):
    """A detector that fails after another has run leaves no pass behind (the first used to be saved and become
    the latest), and the error names the detector."""
    import pytest

    from naviewer.errors import NaviewerError

    folder = write_folder(tmp_path / "images", per_class=8, classes=3, size=16)
    with Workspace.create(tmp_path / "ws", open_dataset(folder)) as ws:
        n = ws.store.sample_count()
        features = np.random.default_rng(0).normal(size=(n, 4))
        before = len(ws.store.passes())
        with pytest.raises(NaviewerError, match="detector crop_density: .*no detector's pass was saved"):
            run_detectors(ws, features, ["kdist", "crop_density"], run="t")  # crop_density needs the images
        assert len(ws.store.passes()) == before


def test_a_pass_flagging_an_implausible_share_says_so(tmp_path):
    """crop_density flagged 166 of a newcomer's 300 clean images (55 %) with no word, one cluster a single "Confirm
    cluster" would have dropped (session 27): a pass flagging more than a fifth of the samples carries a warning (the
    Analyst's yellow box and the report read it) and says it while it runs; a plausible share carries none."""
    from naviewer.defense.sanity import FLAG_RATE_LIMIT
    from naviewer.jobs import JobContext, RecordingReporter

    folder = write_folder(tmp_path / "images", per_class=10, classes=3, size=16)
    features = np.random.default_rng(0).normal(size=(30, 4))
    reporter = RecordingReporter()
    ctx = JobContext(reporter)
    with Workspace.create(tmp_path / "ws", open_dataset(folder)) as ws:
        passes, _ = run_detectors(ws, features, ["kdist"], run="t", ctx=ctx,
                                  settings={"kdist": {"k": 3, "fraction": 0.5, "backend": "exact"}})
        record = ws.store.pass_info(passes["kdist"])["settings"]
        assert FLAG_RATE_LIMIT < 0.5
        assert "kdist flagged 15 of 30 samples (50%)" in record["warnings"][0]
        assert any(kind == "warning" and "kdist flagged 15 of 30" in data["message"] for kind, data in reporter.events)
        passes, _ = run_detectors(ws, features, ["kdist"], run="t", settings={"kdist": {"k": 3, "backend": "exact"}})
        assert "warnings" not in ws.store.pass_info(passes["kdist"])["settings"]


def test_every_detector_pass_of_a_detect_carries_what_was_wrong_with_the_encoder(tmp_path):
    """Only the DIFT pass warned that the anchors do not separate their classes; a patchsearch pass of the same weak
    encoder, at chance, read as a plain verdict (a newcomer, session 28). The encoder's warnings go on every pass of
    the same Detect; DIFT's own (its flag share, its "nothing flagged" advice) stay on DIFT's."""
    from types import SimpleNamespace

    from naviewer.defense.anchors import NOTHING_FLAGGED_ADVICE
    from naviewer.workflows.posthoc import _encoder_warnings

    separation = "the anchors do not separate their classes (43 %; chance 20 %)"
    dift = SimpleNamespace(warnings=[separation, "DIFT flagged 900 of 1,000 samples (90%): far more ..."],
                           advice=["The anchors separate their classes only partly (60 %)", NOTHING_FLAGGED_ADVICE])
    notes = _encoder_warnings(dift)
    assert notes == [separation, "The anchors separate their classes only partly (60 %)"]
    folder = write_folder(tmp_path / "images", per_class=10, classes=3, size=16)
    features = np.random.default_rng(0).normal(size=(30, 4))
    with Workspace.create(tmp_path / "ws", open_dataset(folder)) as ws:
        passes, _ = run_detectors(ws, features, ["kdist"], run="t", settings={"kdist": {"k": 3, "backend": "exact"}},
                                  encoder_warnings=notes)
        assert ws.store.pass_info(passes["kdist"])["settings"]["warnings"] == notes
