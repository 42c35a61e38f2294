

def test_spread_reads_as_spreadings_own_argmax_for_passes_stored_either_way():
    """Passes stored before session 24 marked the later rules' additions as "added by label spreading" too."""
    import numpy as np

    from naviewer.analysis.session import AnalysisSession

    flagged = np.array([1, 1, 1, 1, 0], bool)
    old_spread = np.array([0, 1, 1, 1, 0], bool)  # flagged and not in the buffer (sample 0)
    closure = np.array([0, 0, 1, 0, 0], bool)
    outliers = np.array([0, 0, 0, 1, 0], bool)
    session = AnalysisSession({"flagged": flagged, "spread": old_spread, "closure": closure,
                               "crop_outliers": outliers}, np.zeros(5, np.int64))
    assert session.scores["spread"].tolist() == [False, True, False, False, False]
