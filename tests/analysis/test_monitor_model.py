"""The training monitor's Qt-free model: the metrics tail, step placement, the run's phase, the
after-spreading points, event labels. No display, no Qt."""

from __future__ import annotations

import json
import sys

from naviewer.analysis.monitor_model import (
    PLOTS,
    MetricsTail,
    RunPhase,
    StepPlacer,
    epoch_of,
    event_text,
    metrics_file,
    number,
    spread_points,
)


def _line(record: dict) -> str:
    return json.dumps(record) + "\n"


def test_tail_reads_only_what_was_appended_and_waits_for_a_whole_line(tmp_path):
    path = tmp_path / "metrics.jsonl"
    tail = MetricsTail(tmp_path)  # a run directory names its metrics.jsonl
    assert tail.path == path and tail.poll() == ([], False)  # no file yet
    path.write_text(_line({"kind": "step", "step": 1}) + '{"kind": "st', encoding="utf-8")
    records, restarted = tail.poll()
    assert [r["step"] for r in records] == [1] and not restarted
    with path.open("a", encoding="utf-8") as handle:
        handle.write('ep", "step": 2}\n')
    records, _ = tail.poll()
    assert [r["step"] for r in records] == [2]
    assert tail.poll() == ([], False)


def test_tail_restarts_when_the_file_is_rewritten_shorter(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text(_line({"kind": "step", "step": 1}) + _line({"kind": "step", "step": 2}), encoding="utf-8")
    tail = MetricsTail(path)
    assert len(tail.poll()[0]) == 2
    path.write_text(_line({"kind": "run_start"}), encoding="utf-8")
    records, restarted = tail.poll()
    assert restarted and records == [{"kind": "run_start"}]


def test_metrics_file_and_numbers(tmp_path):
    assert metrics_file(tmp_path) == tmp_path / "metrics.jsonl"
    assert metrics_file(tmp_path / "other.jsonl") == tmp_path / "other.jsonl"
    assert number("2.5") == 2.5 and number(True) is None and number(float("nan")) is None and number("x") is None
    assert epoch_of(3.0, 10) == "epoch 3 of 10" and epoch_of(2.4) == "epoch 3"


def test_steps_keep_their_place_when_a_restart_changes_the_steps_per_epoch():
    placer = StepPlacer()
    placer.run_start({"steps_per_epoch": 10})
    assert placer.place(0, 5) == 0.5
    placer.place(0, 10)
    assert placer.close(0) == (0.0, 10.0)
    placer.restart(new_samples=500, old_samples=1000)  # half the samples: about half the steps
    assert placer.steps_per_epoch == 5
    assert placer.place(1, 15) == 2.0
    assert placer.close(1) == (10.0, 15.0)


def test_the_phase_says_retraining_from_the_restart_until_the_run_ends():
    phase = RunPhase()
    assert phase.text() == "" and not phase.retraining
    phase.add({"kind": "event", "event": "finetune", "skipped": True, "restart_mode": "retrain", "removed": 120})
    assert phase.text() == ""  # the restart itself has not happened yet
    phase.add({"kind": "event", "event": "restart", "n_samples": 1380, "remaining_epochs": 50})
    assert phase.retraining
    assert phase.text() == "retraining from scratch on 1,380 kept samples (120 confirmed poisons removed)"
    phase.add({"kind": "epoch", "epoch": 3})
    assert phase.retraining
    phase.add({"kind": "event", "event": "finished"})
    assert not phase.retraining and phase.text() == ""


def test_a_retrain_cancelled_and_resumed_is_retraining_again():
    """After the "cancelled" event the header dropped "retraining ..." for the resumed rest (a newcomer, session 18)."""
    phase = RunPhase()
    phase.add({"kind": "event", "event": "finetune", "skipped": True, "restart_mode": "retrain", "removed": 110})
    phase.add({"kind": "event", "event": "restart", "n_samples": 1404, "remaining_epochs": 50})
    phase.add({"kind": "event", "event": "cancelled"})
    assert not phase.retraining
    phase.add({"kind": "run_start", "total_epochs": 84, "resumed_from_epoch": 56, "restart_epoch": 34})
    assert phase.retraining and phase.text().startswith("retraining from scratch on 1,404 kept samples")
    fresh = RunPhase()  # a plain run's start says nothing of a phase
    fresh.add({"kind": "run_start", "total_epochs": 50})
    assert fresh.text() == ""


def test_the_phase_after_a_fine_tune_is_not_called_retraining():
    phase = RunPhase()
    phase.add({"kind": "event", "event": "finetune", "steps": 40, "removed": 10})
    phase.add({"kind": "event", "event": "restart", "n_samples": 90})
    assert not phase.retraining and phase.text().startswith("training on after fine-tuning on 90 kept samples")


def test_precision_recall_are_labelled_before_and_after_label_spreading():
    spec = next(p for p in PLOTS if p.name == "dift_pr")
    labels = {s.key: s.label for s in spec.series}
    assert labels["dift_recall"] == "recall, before spreading"
    assert labels["final_recall"] == "recall, after spreading"
    summary = {"final_precision": 0.9, "final_recall": 0.95, "buffer_recall": 0.6}
    assert spread_points(summary, 29) == {"epoch": 29, "final_precision": 0.9, "final_recall": 0.95}
    assert spread_points({"noop": True}, 29) is None and spread_points(summary, None) is None
    assert spread_points({"flagged": 3}, 29) == {"epoch": 29, "final_flagged": 3.0}  # no ground truth: the count


def test_event_labels_name_the_restart_kind():
    assert event_text("restart", {"n_samples": 90, "remaining_epochs": 5}, "retrain") == \
        ("restart (retrain)", "restart (retrain): on 90 samples, 5 more epochs")
    assert event_text("dift_stop", {"reason": "stable", "flagged": 12}) == ("DIFT stop", "DIFT stop: stable, 12 flagged")
    # nothing flagged: the training goes on, so no "stop" (a newcomer read one on a run that went to its end)
    assert event_text("dift_stop", {"reason": "stable", "flagged": 0, "noop": True})[0] == "DIFT: none flagged"


def test_the_model_imports_no_qt():
    import subprocess

    code = ("import sys, naviewer.analysis.monitor_model; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('PySide6', 'pyqtgraph', 'shiboken6')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"


def test_a_record_of_the_wrong_types_is_not_readable() -> None:
    """The monitor counts and says these (it dropped them in silence and showed a blank header)."""
    from naviewer.analysis.monitor_model import readable_record

    assert readable_record({"kind": "step", "epoch": 0, "loss": 1.5})
    assert readable_record({"kind": "run_start", "config": {}}) and readable_record({"kind": "future_kind"})
    assert not readable_record({"kind": "step", "epoch": "x", "loss": "NaN?"})
    assert not readable_record({"kind": "epoch", "epoch": float("inf"), "time": 3.0})  # only the time is a number
    assert not readable_record({"loss": 1.0}) and not readable_record([1, 2]) and not readable_record(None)
