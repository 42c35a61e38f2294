"""The Log's lines are words, not the trainer's record names (a newcomer read "train: dift_review" in session 17)."""

from __future__ import annotations

import pytest

from naviewer.gui.format import before_after_text, event_text


@pytest.mark.parametrize("kind, data, words", [
    # the event carries the 0-based index (epoch 33 = the 34th, as the demo and the panel title count it)
    ("dift_review", {"epoch": 33, "flagged": 121, "run": "r"}, "DIFT flagged 121 samples at epoch 34"),
    ("dift_stop", {"epoch": 33, "flagged": 110}, "settled at epoch 34: 110 flagged"),
    ("checkpoint", {"epoch": 5, "path": "x/last.pt"}, "checkpoint saved at epoch 5"),
    ("checkpoint", {"epoch": 30, "tag": "epoch_0029"}, "checkpoint saved at epoch 30"),  # not "(epoch_0029)": one off
    ("checkpoint", {"epoch": 30, "tag": "review"}, "checkpoint saved at epoch 30 (review)"),
    ("epoch_end_resumed", {"epoch": 7}, "epoch 7 finished after the resume"),
    ("finetune", {"skipped": True, "reason": "fewer than 2 confirmed samples"},
     "fine-tuning skipped: fewer than 2 confirmed samples"),
    ("finetune", {"n": 98, "steps": 40}, "fine-tuned on 98 confirmed samples"),
    ("dift_decision", {"decision": "accepted", "accepted": 90, "flagged": 98}, "review: accepted, 90 of 98"),
    ("restart", {"n_samples": 1500, "remaining_epochs": 30}, "1,500 samples for 30 more epochs"),
    ("some_new_event", {}, "some new event"),
    ("warning", {"message": "slow disk"}, "warning — slow disk"),
    ("log", {"message": "plain line"}, "plain line"),
])
def test_every_event_reads_as_words(kind: str, data: dict, words: str) -> None:
    text = event_text(kind, data)
    assert words in text and "_" not in text.replace(data.get("message", ""), "")


def test_before_and_after_are_figures_not_python_dicts() -> None:
    text = before_after_text({"knn_acc": 0.921, "asr": 0.804, "asr_all": 0.7}, {"knn_acc": 0.918, "asr": 0.21})
    assert text == "kNN accuracy 92.1 → 91.8 %, ASR 80.4 → 21.0 %"
    assert before_after_text(None, {}) == "nothing measured before and after"


def test_short_path_fits_a_narrow_column_and_keeps_its_note():
    from naviewer.gui.format import short_path

    ws = "/work/exp/s18/newcomer/demo"
    assert short_path(f"{ws}/dataset/train.txt (filelist)", ws) == "dataset/train.txt (filelist)"
    assert short_path(f"{ws}/checkpoints/demo/at-review.pt (the encoder)", ws) == "checkpoints/demo/at-review.pt (the encoder)"
    assert short_path("/data/x (y)") == "/data/x (y)"  # short: as it is
    long = "/home/analyst/projects/2026/suspect-sets/imagenet-subset/train.txt"
    shown = short_path(long)
    assert shown.startswith("…/") and shown.endswith("imagenet-subset/train.txt") and len(shown) <= 34
    assert short_path("/" + "x" * 60 + ".pt") == "/" + "x" * 60 + ".pt"  # one long name: kept whole
