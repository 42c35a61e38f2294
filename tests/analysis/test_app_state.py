"""The application's Qt-free state: what is open, the run, the training job, the log, and its events."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from naviewer.analysis.app_state import LOG_LINES, AppState


def _recorder(state: AppState) -> list:
    seen: list = []
    for name in ("workspace", "dataset", "encoder", "run", "training", "message"):
        getattr(state.events, name).connect(lambda *args, name=name: seen.append((name, *args)))
    return seen


def test_workspace_event_says_what_was_open_before(tmp_path):
    state = AppState()
    seen = _recorder(state)
    state.set_workspace(tmp_path / "a", {"samples": 40, "runs": []})
    assert state.workspace == tmp_path / "a" and state.workspace_summary == {"samples": 40, "runs": []}
    assert seen == [("workspace", None)] and state.workspace_switched(None)
    assert state.title() == "a — naviewer" and state.samples == 40

    state.set_workspace(str(tmp_path / "a"), {"samples": 41})  # opened again: still an event, not a switch
    assert seen[-1] == ("workspace", tmp_path / "a") and not state.workspace_switched(tmp_path / "a")
    assert isinstance(state.workspace, Path) and state.samples == 41

    state.set_workspace(tmp_path / "b")
    assert seen[-1] == ("workspace", tmp_path / "a") and state.workspace_switched(tmp_path / "a")
    state.set_workspace(None)
    assert state.title() == "naviewer" and state.workspace_summary == {} and state.workspace_switched(tmp_path / "b")


def test_other_events_fire_only_on_a_change(tmp_path):
    state = AppState()
    seen = _recorder(state)
    state.set_dataset(tmp_path / "images", {"samples": 12, "kind": "folder"})
    state.set_dataset(tmp_path / "images", {"samples": 12, "kind": "folder"})
    state.set_encoder(tmp_path / "last.pt")
    state.set_encoder(tmp_path / "last.pt")
    state.set_run("starting…")
    state.set_run(tmp_path / "runs" / "r")
    state.set_run(str(tmp_path / "runs" / "r"))
    job = object()
    state.set_training(job)
    state.set_training(job)
    state.set_training(None)
    assert [name for name, *_ in seen] == ["dataset", "encoder", "run", "run", "training", "training"]
    assert state.dataset_summary["samples"] == 12 and state.samples == 12  # no workspace: the dataset's count
    assert state.run == str(tmp_path / "runs" / "r") and state.training is None


def test_training_source_prefers_the_workspace(tmp_path):
    state = AppState()
    assert state.training_source() == "" and state.samples is None
    state.set_dataset(tmp_path / "images", {"samples": 12})
    assert state.training_source() == f"Dataset: {tmp_path / 'images'}"
    state.set_workspace(tmp_path / "ws", {"samples": 30})
    assert state.training_source() == f"Workspace: {tmp_path / 'ws'}" and state.samples == 30


def test_log_stamps_keeps_the_latest_lines_and_emits_each():
    state = AppState(clock=lambda: "12:00:00")
    seen = _recorder(state)
    assert state.log("started: count") == "12:00:00  started: count"
    assert seen == [("message", "12:00:00  started: count")]
    for i in range(LOG_LINES + 5):
        state.log(f"line {i}")
    assert len(state.messages) == LOG_LINES and state.messages[-1].endswith(f"line {LOG_LINES + 4}")


def test_a_view_that_disconnects_hears_nothing_more(tmp_path):
    state = AppState()
    heard: list = []
    state.events.run.connect(heard.append)  # the event carries no argument: the callback gets none
    state.events.run.disconnect(heard.append)
    state.set_run("r")
    assert heard == []


def test_importing_the_state_imports_neither_qt_nor_numpy():
    """The main window builds its state before the first paint: no numpy (nor Qt) on that path."""
    code = ("import sys, naviewer.analysis.app_state\n"
            "print(sorted(m for m in ('numpy', 'PySide6', 'torch') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "[]"
