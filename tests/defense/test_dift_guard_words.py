"""Why DIFT flagged nothing, recorded with its pass and said in words (a newcomer on their own patch poisons,
session 32: "no crowded group away from the anchors" was said of a split the guard rejected)."""

from __future__ import annotations

from types import SimpleNamespace

from naviewer.defense.dift import guard_record, nothing_words


def test_the_guards_reason_is_recorded_and_said() -> None:
    split = SimpleNamespace(guard_fired=True, guard_decision="rejected", separation=2.64)
    record = guard_record(split)
    assert record == {"decision": "rejected", "separation": 2.64}
    words = nothing_words({"noop": True, "guard": record})
    assert words.startswith("the candidates split in two (separation 2.6), but the side farther from the trusted "
                            "anchors (larger MinDist) lay within the clean samples' MinDist range")
    assert words.endswith("which is not a clean bill")
    assert "one population" in nothing_words({"guard": {"decision": "none", "separation": 1.2}})
    assert nothing_words({"noop": True}).startswith("no crowded group away from the anchors")
    assert guard_record(SimpleNamespace(guard_fired=False)) is None and guard_record(None) is None


def test_detector_rules_are_said_as_they_acted() -> None:
    """A gmm2 rule whose split failed fell back to its top 1 % and was still said as "the upper of two Gaussians"
    (a review, session 32); a refused pass says no verdict."""
    from naviewer.defense.detectors.base import rule_words

    failed = {"rule": "gmm2", "value": None, "fallback": {"rule": "top_fraction", "fraction": 0.01}, "outliers_added": 3}
    assert rule_words(failed).startswith("no two populations in the scores (no split); instead its top 1 %")
    assert rule_words(failed).endswith("and 3 robust outliers above it")
    assert rule_words({"rule": "gmm2", "value": 0.4}) == "the upper of two Gaussians fitted to the scores, where they part"
    assert rule_words({"rule": "robust_z", "z": 3.5}).startswith("scores 3.5 robust deviations")
    assert rule_words({"rule": "robust_z", "refused": "97% flagged"}) == "no verdict: 97% flagged"
