from __future__ import annotations

import numpy as np
import pytest

from workflow_kit import attacked_workspace
from naviewer.attacks.base import poison_mask
from naviewer.errors import NaviewerError
from naviewer.workflows.workspace_setup import (
    create_workspace,
    evaluation_sets,
    ground_truth_mask,
    workspace_anchors,
)
from naviewer.workspace import Workspace


def test_attacked_workspace_keeps_truth_apart_and_anchors_clean(tmp_path, tiny_data):
    setup = attacked_workspace(tmp_path / "ws", tiny_data)
    with setup.workspace as ws:
        assert setup.num_poisons == 20 and setup.size == 240 == ws.store.sample_count()
        # the ground truth lives in the workspace root only, not next to the images
        assert ws.ground_truth_path.is_file() and not (ws.path / "dataset" / "ground_truth.json").exists()
        truth = ground_truth_mask(ws)
        assert truth.sum() == 20
        anchors = workspace_anchors(ws)
        assert len(anchors) == 40 and sorted(anchors.counts().values()) == [10] * 4
        assert not truth[anchors.indices].any()                     # anchors are never poisons
        gt = ws.read_ground_truth()
        clean_ids = np.asarray(ws.config["anchors"]["clean_ids"])
        poison_sources = [r["source"] for r in gt["samples"] if r["kind"] == "poison"]
        assert not set(poison_sources) & set(clean_ids.tolist())    # excluded from poisoning
        # the workspace re-opens the crafted set through the file list, same ids and pixels
        dataset = ws.dataset()
        assert dataset.kind == "filelist" and len(dataset) == 240
        from naviewer.data import open_dataset

        clean = open_dataset(str(tiny_data[0]))
        for wid, cid in zip(anchors.indices[:5], clean_ids[:5]):
            assert np.array_equal(dataset.image(int(wid)), clean.image(int(cid)))
        assert ws.config["attack"]["name"] == "patch" and ws.config["attack"]["num_poisons"] == 20
        sets = evaluation_sets(ws)
        assert len(sets.train) == 240 and len(sets.test) == 60 and sets.target == 0
        assert sets.trigger_fn is not None
        assert poison_mask(gt).sum() == 20


def test_plain_workspace_records_anchors_and_evaluation(tmp_path, tiny_data):
    with create_workspace(tmp_path / "plain", str(tiny_data[0]), test_dataset=str(tiny_data[1])) as ws:
        assert ws.store.sample_count() == 240
        assert len(ws.config["anchors"]["indices"]) == 40 and "NOT trusted" in ws.config["anchors"]["source"]
        assert ws.config["anchors"]["kind"] == "labels" and ws.config["anchors"]["trusted"] is False
        assert ws.config["evaluation"]["test"]["kind"] == "image-folder"
        assert ground_truth_mask(ws) is None


def test_existing_path_is_refused(tmp_path, tiny_data):
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "file").write_text("x")
    with pytest.raises(NaviewerError):
        attacked_workspace(tmp_path / "busy", tiny_data)


def test_an_unreadable_test_split_is_said_not_dropped_in_silence(tmp_path):
    """A truncated CIFAR test_batch gave "test set for evaluation: none" with no word why (a sweep, session 17)."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data"))
    from makers import make_cifar10

    from naviewer.data.base import DatasetWarning

    folder, _ = make_cifar10(tmp_path / "src", per_batch=12)
    (folder / "test_batch").write_bytes((folder / "test_batch").read_bytes()[:500])
    with pytest.warns(DatasetWarning, match="test_batch.*the dataset's test split cannot be read"):
        with create_workspace(tmp_path / "ws", str(folder), anchors_per_class=1) as ws:
            assert not (ws.config.get("evaluation") or {}).get("test")


@pytest.mark.parametrize("entry", [{}, {"kind": "weird"}, "poison", None])
def test_a_ground_truth_sample_without_its_kind_is_named(tmp_path, tiny_data, entry):
    """``detect`` on a workspace whose ground_truth.json lost a sample's "kind" ended in a KeyError traceback (a sweep)."""
    import json

    setup = attacked_workspace(tmp_path / "ws", tiny_data)
    with setup.workspace as ws:
        record = json.loads(ws.ground_truth_path.read_text())
        record["samples"][1] = entry
        ws.ground_truth_path.write_text(json.dumps(record))
        with pytest.raises(NaviewerError, match="sample 1 has kind") as caught:
            ground_truth_mask(ws)
        assert caught.value.path == str(ws.ground_truth_path)


def test_a_damaged_ground_truth_is_a_warning_where_only_evaluation_reads_it(tmp_path, tiny_data):
    """A garbled ground_truth.json stopped detect after its embedding and blocked the analyst's views, though
    detection never reads it (a sweep, session 19): the passes warn and leave the figures out."""
    import warnings

    from naviewer.analysis.session import AnalysisSession
    from naviewer.jobs import JobContext, RecordingReporter
    from naviewer.workflows.workspace_setup import evaluation_truth

    setup = attacked_workspace(tmp_path / "ws", tiny_data)
    with setup.workspace as ws:
        ws.ground_truth_path.write_text("{ not json")
        reporter = RecordingReporter()
        assert evaluation_truth(ws, JobContext(reporter)) is None
        said = [d["message"] for kind, d in reporter.events if kind == "warning"]
        assert said and "garbled ground truth" in said[0] and "left out" in said[0]
        with pytest.raises(NaviewerError):  # where the truth is the point (the matrix, the demo's figures)
            ground_truth_mask(ws)
        ws.store.add_detection_pass("dift", {"density": np.zeros(ws.store.sample_count(), np.float32)}, {}, run="r")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            session = AnalysisSession.from_workspace(ws)
        assert session.ground_truth is None and any("garbled ground truth" in str(w.message) for w in caught)
        record = {"samples": [{"kind": "clean"}] * (ws.store.sample_count() + 3)}  # another length: said, not read
        import json

        ws.ground_truth_path.write_text(json.dumps(record))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            session = AnalysisSession.from_workspace(ws)
        assert session.ground_truth is None and any("the ground truth lists" in str(w.message) for w in caught)
