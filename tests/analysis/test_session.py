

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


def test_a_session_beside_another_window_undoes_only_its_own_decisions(tmp_path):
    """A second window opened on a workspace another window had open: its U undid the first window's confirmation
    of 15 minutes before (a newcomer, session 29). Such a session undoes only what it decides itself."""
    import numpy as np

    from naviewer.analysis import AnalysisSession
    from naviewer.data.base import ArrayDataset
    from naviewer.workspace import Workspace

    images = np.zeros((6, 8, 8, 3), np.uint8)
    ws = Workspace.create(tmp_path / "ws", ArrayDataset(images, [0, 0, 0, 1, 1, 1], ["a", "b"]))
    ws.store.add_detection_pass("dift", {"flagged": np.ones(6, bool)}, {}, run="r", epoch=0)
    first = AnalysisSession.from_workspace(ws, reviewer="me")
    first.review([1], "confirmed")
    later_sitting = AnalysisSession.from_workspace(ws, reviewer="me")
    assert later_sitting.can_undo()  # alone: a later sitting undoes the earlier one's last decision
    beside = AnalysisSession.from_workspace(ws, reviewer="me")
    beside.undo_own_batches_only()
    assert not beside.can_undo() and len(beside.undo()) == 0 and first.state_of(1) == "confirmed"
    beside.review([2], "rejected")
    assert beside.undo().tolist() == [2] and not beside.can_undo()
    ws.close()
