"""The trigger check's rule (naviewer.analysis.reach.trigger_check_clears): the anchors' reach and PatchSearch's
flags together clear a flag, and only where PatchSearch finds a trigger in most of the flags."""

from __future__ import annotations

import numpy as np

from naviewer.analysis.reach import trigger_check_clears


def _case():
    n = 20
    flagged = np.zeros(n, bool)
    flagged[:10] = True                     # ten flags: 0-5 poisons, 6-9 clean
    reach = np.zeros(n)
    reach[[4, 6, 7, 8]] = 0.9               # reached as clean: one poison (4) and three clean flags (6-8)
    reach[9] = 0.3                          # a clean flag the anchors barely reach
    reach[15] = 2.0                         # reached, but not a flag
    patch = np.zeros(n, bool)
    patch[:6] = True                        # PatchSearch finds the poisons' trigger, in 4 too
    return flagged, reach, patch


def test_a_reached_flag_with_no_trigger_is_cleared_and_a_reached_poison_is_not() -> None:
    flagged, reach, patch = _case()
    cleared, share = trigger_check_clears(flagged, reach, patch, reach_limit=0.5, coverage=0.5)
    assert cleared.tolist() == [6, 7, 8] and share == 0.6  # not 4 (a trigger), 9 (not reached), 15 (no flag)


def test_nothing_is_cleared_where_patchsearch_finds_a_trigger_in_few_of_the_flags() -> None:
    """A blended or frequency trigger: PatchSearch finds none in most poisons, so "none in this flag" says nothing."""
    flagged, reach, patch = _case()
    patch[:4] = False
    cleared, share = trigger_check_clears(flagged, reach, patch, reach_limit=0.5, coverage=0.5)
    assert cleared.size == 0 and share == 0.2


def test_no_flags_no_reach_or_mismatched_arrays_clear_nothing() -> None:
    flagged, reach, patch = _case()
    assert trigger_check_clears(np.zeros(20, bool), reach, patch)[0].size == 0
    nan = np.full(20, np.nan)
    assert trigger_check_clears(flagged, nan, patch)[0].size == 0
    assert trigger_check_clears(flagged, reach[:10], patch)[0].size == 0
