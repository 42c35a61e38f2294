"""Files nested too deeply for Python's recursion (a mutation fuzz, session 22): a JSON or TOML document of a
thousand ``[`` raised a RecursionError and a traceback from every reader; a count of 1e999 overflowed int()."""

from __future__ import annotations

import json

import pytest

from naviewer.errors import NaviewerError

DEEP_JSON = "[" * 5000 + "]" * 5000


@pytest.fixture(autouse=True)
def _default_recursion_limit():
    """Python's default limit: a module imported earlier in the session (the import-cycle tool) raises it, and the
    deep documents then parse."""
    import sys

    before = sys.getrecursionlimit()
    sys.setrecursionlimit(1000)
    yield
    sys.setrecursionlimit(before)


def test_json_loads_says_too_deep_as_a_decode_error() -> None:
    from naviewer.io import json_loads

    with pytest.raises(json.JSONDecodeError, match="nested too deeply"):
        json_loads(DEEP_JSON)
    with pytest.raises(ValueError):
        json_loads(DEEP_JSON.encode())
    assert json_loads('{"a": [1, 2]}') == {"a": [1, 2]}


def test_a_deep_ground_truth_file_is_named(tmp_path) -> None:
    from naviewer.attacks.export import read_ground_truth

    path = tmp_path / "ground_truth.json"
    path.write_text(DEEP_JSON)
    with pytest.raises(NaviewerError, match="ground_truth.json"):
        read_ground_truth(path)


def test_a_deep_workspace_configuration_is_named(tmp_path) -> None:
    from naviewer.workspace.config import read_config

    (tmp_path / "workspace.toml").write_text("a = " + "[" * 3000 + "]" * 3000 + "\n")
    with pytest.raises(NaviewerError, match="nested too deeply"):
        read_config(tmp_path / "workspace.toml")


def test_a_deep_metrics_line_is_skipped(tmp_path) -> None:
    from naviewer.workspace.metrics import read_metrics

    path = tmp_path / "metrics.jsonl"
    path.write_text(DEEP_JSON + '\n{"kind": "step", "loss": 1.0}\n')
    records, _offset = read_metrics(path)
    assert records == [{"kind": "step", "loss": 1.0}]


def test_a_deep_run_record_on_resume_is_not_a_traceback(tmp_path) -> None:
    from naviewer.workspace.runs import read_state

    class _Ws:  # what read_state needs of a workspace
        path = tmp_path

    (tmp_path / "runs" / "r").mkdir(parents=True)
    (tmp_path / "runs" / "r" / "dift_state.json").write_text(DEEP_JSON)
    try:
        read_state(_Ws(), "r")
    except NaviewerError as exc:
        assert "dift_state.json" in str(exc)


def test_anchor_indices_that_are_not_a_list_are_named(tmp_path) -> None:
    """``[anchors] indices = 7`` raised a TypeError in detect and run --dift (a mutation fuzz, session 22)."""
    from types import SimpleNamespace

    from naviewer.workflows.posthoc import check_dift_size

    ws = SimpleNamespace(store=SimpleNamespace(sample_count=lambda: 100), config={"anchors": {"indices": 7}},
                         config_path=tmp_path / "workspace.toml")
    with pytest.raises(NaviewerError, match="indices must be a list"):
        check_dift_size(ws, SimpleNamespace(k=5))


def test_a_corrupted_database_is_said_in_one_line(tmp_path) -> None:
    """SQLite's integrity report went out whole, a line a problem (a mutation fuzz, session 22)."""
    import numpy as np

    from naviewer.data.base import ArrayDataset
    from naviewer.workspace import Workspace

    images = np.zeros((60, 8, 8, 3), np.uint8)
    with Workspace.create(tmp_path / "ws", ArrayDataset(images, np.arange(60) % 3, ["a", "b", "c"])):
        pass
    db = tmp_path / "ws" / "naviewer.sqlite"
    data = bytearray(db.read_bytes())
    data[5007:5007 + 4096] = bytes(min(4096, len(data) - 5007))
    db.write_bytes(bytes(data))
    with pytest.raises(NaviewerError) as caught:
        with Workspace.open(tmp_path / "ws") as ws:
            ws.store.sample_count()
    assert "naviewer.sqlite" in str(caught.value) and "\n" not in str(caught.value)
