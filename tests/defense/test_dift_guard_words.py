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
    assert words.startswith("the candidates split in two (separation 2.6), but the denser side sat as close")
    assert words.endswith("which is not a clean bill")
    assert "one population" in nothing_words({"guard": {"decision": "none", "separation": 1.2}})
    assert nothing_words({"noop": True}).startswith("no crowded group away from the anchors")
    assert guard_record(SimpleNamespace(guard_fired=False)) is None and guard_record(None) is None
