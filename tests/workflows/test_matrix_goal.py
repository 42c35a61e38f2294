"""The issue's goal per matrix cell: met, missed (and why), or not applicable when no backdoor formed."""

from __future__ import annotations

from naviewer.workflows.matrix import goal_verdict, matrix_markdown


def _record(before=1.0, floor=0.05, dift_recall=1.0, after=(0.08,), oracle=None, detector=(0.95, 0.95)):
    rec = {"key": "na-code-simclr-s0-t2", "row": {"protocol": "code"},
           "cell": {"row": "na-code", "method": "simclr", "seed": 0, "threads": 2},
           "before": {"asr": {"code": before}}, "floor": {"asr": {"code": floor}},
           "dift": {"pass_id": 1, "flagged": 100, "precision": 0.95, "recall": dift_recall},
           "detectors": {"kdist": {"auroc": 0.99, "flagged": 15, "precision": detector[0], "recall": detector[1]}},
           "after": {"retrain": {"asr": {"code": after[0]}},
                     "retrain_repeats": [{"asr": {"code": a}} for a in after[1:]]}}
    if oracle is not None:
        rec["after"]["oracle"] = {"asr": {"code": oracle}}
    return rec


def test_a_cell_that_holds_every_part_is_met():
    assert goal_verdict(_record()) == ("met", [])


def test_no_backdoor_means_the_goal_does_not_apply():
    verdict, (why,) = goal_verdict(_record(before=0.3))
    assert verdict == "n/a" and "no backdoor formed" in why
    # 60 % is a backdoor only at twice the floor
    assert goal_verdict(_record(before=0.6, floor=0.35))[0] == "n/a"
    assert goal_verdict(_record(before=None))[0] == "n/a"


def test_each_missed_part_is_named_with_its_figure():
    verdict, reasons = goal_verdict(_record(dift_recall=0.66, after=(0.40, 0.20), detector=(1.0, 0.14), oracle=0.30))
    assert verdict == "missed"
    text = "; ".join(reasons)
    assert "no post-hoc detector" in text and "best kdist: P 100 / R 14 %" in text
    assert "DIFT in training recall 66 %" in text
    # the mean of the retrain draws (30 %) against the floor (5 %), and the oracle that also missed
    assert "ASR after 30 % is 25 points above the floor" in text and "also scored 30 %" in text


def test_never_stable_dift_is_a_reason():
    rec = _record()
    rec["dift"] = {"pass_id": None}
    rec["after"] = {}
    verdict, reasons = goal_verdict(rec)
    assert verdict == "missed" and "DIFT in training never stable" in reasons and "no retrain after removal" in reasons


def test_the_table_carries_the_verdict():
    harmless = {**_record(before=0.1), "key": "na-code-simclr-s1-t2"}
    text = matrix_markdown([_record(), harmless])
    assert "| goal |" in text and "| met |" in text and "n/a: no backdoor formed (ASR 10 %, floor 5 %)" in text


def test_several_floor_draws_are_compared_by_their_mean():
    """One floor draw moves as much as one retrain (session 18): with --floors N the goal reads the draws' mean."""
    rec = _record(after=(0.30,), floor=0.05)
    assert goal_verdict(rec)[0] == "missed"  # 25 points above one low floor draw
    rec["floor_repeats"] = [{"asr": {"code": 0.30}}, {"asr": {"code": 0.25}}]  # the floor's mean is 20 %
    assert goal_verdict(rec) == ("met", [])
    assert "5 / 30 / 25 (mean 20)" in matrix_markdown([rec])


def test_with_the_check_after_the_retrain_the_second_removal_decides():
    """The demo's recipe looks again on the retrained encoder (accept-all's second round): where it added samples,
    the verdict reads its draws; where it added none, the first removal is the recipe's. The table shows both."""
    rec = _record(after=(0.30, 0.24))  # the first removal misses by 22 points
    rec["after"]["check"] = {"pass_id": 3, "flagged": 91, "added": [7, 8, 9], "added_poisons": 3}
    rec["after"]["second"] = {"asr": {"code": 0.10}}
    rec["after"]["second_repeats"] = [{"asr": {"code": 0.12}}]
    assert goal_verdict(rec) == ("met", [])
    row = matrix_markdown([rec]).splitlines()[2]
    assert "| 30 / 24 (mean 27) | 3 (3) | 10 / 12 (mean 11) |" in row
    rec["after"]["second_repeats"] = [{"asr": {"code": 0.40}}]
    assert "ASR after the check's second removal 25 % is 20 points above" in goal_verdict(rec)[1][0]
    nothing = _record(after=(0.30,))
    nothing["after"]["check"] = {"pass_id": 3, "flagged": 0, "added": []}
    assert goal_verdict(nothing)[0] == "missed" and "| 0 | = first |" in matrix_markdown([nothing]).splitlines()[2]
