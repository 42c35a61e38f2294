"""The guard's log line says what it decided in words that fit the decision."""

from __future__ import annotations

import numpy as np

from naviewer.defense.dift import GmmSplit, guard_message


def _split(separation: float, decision: str) -> GmmSplit:
    return GmmSplit(selected=np.zeros(3, bool), posterior=np.zeros(3), separation=separation, guard_fired=True,
                    guard_decision=decision)


def test_a_rejected_split_is_not_called_one_population() -> None:
    """A CIFAR run logged "candidates form one population (sep=4.08); decision: rejected": a separated split."""
    said = guard_message(_split(4.08, "rejected"), 2.0)
    assert "split in two (sep=4.08)" in said and "within the benign range" in said and "one population" not in said


def test_one_population_and_both_modes_above() -> None:
    assert guard_message(_split(1.2, "none"), 2.0) == "DIFT guard: candidates form one population (sep=1.20); decision: none"
    assert "one population" in guard_message(_split(1.2, "all"), 2.0)
    assert "both modes of the split (sep=3.00) lie above the benign range" in guard_message(_split(3.0, "all"), 2.0)
