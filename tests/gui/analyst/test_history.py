"""Issue 14 item 15: the audit log as a list of batches (who, when, what), undo of any batch."""

from __future__ import annotations

import numpy as np

from naviewer.gui.analyst.history import ReviewHistory
from naviewer.gui.analyst.panel import AnalystPanel


def test_history_lists_batches_and_reverts_any_of_them(qtbot, workspace_session, bulk_answers) -> None:
    _path, ws, s = workspace_session
    panel = AnalystPanel(s, workspace=ws)
    qtbot.addWidget(panel)
    history = panel.history
    assert isinstance(history, ReviewHistory) and panel.tabs.indexOf(history) >= 0
    q = s.review_queue()
    s.confirm(q[:3])
    s.reject(q[3:5])
    s.review(q[:1], "rejected")  # sample q[0] decided again since batch 1
    assert history.table.rowCount() == 3
    newest = [history.table.item(r, 0).text() for r in range(3)]
    assert newest == sorted(newest, key=int, reverse=True)
    assert history.table.item(2, 2).text() == "tester" and history.table.item(2, 3).text() == "→ confirmed"
    assert history.table.item(2, 4).text().startswith("3: ") and history.table.item(2, 5).text() == "3 unreviewed"

    first = int(history.table.item(2, 0).text())
    history.select_batch(first)
    shown = history.show_samples()
    assert np.array_equal(shown, np.sort(q[:3])) and np.array_equal(s.selection, np.sort(q[:3]))
    reverted = history.revert_selected()
    assert sorted(reverted.tolist()) == sorted(q[1:3].tolist())
    assert bulk_answers.asked[-1].startswith(f"Revert batch {first}: put 2 samples back to 2 unreviewed?")
    assert "1 sample decided again since" in bulk_answers.asked[-1]
    assert s.state_of(int(q[0])) == "rejected" and all(s.state_of(int(i)) == "unreviewed" for i in q[1:3])
    assert all(s.state_of(int(i)) == "rejected" for i in q[3:5])  # the later batch is untouched
    assert history.table.rowCount() == 4 and history.table.item(0, 6).text() == f"revert of batch {first}"
    rows = ws.store.audit_log()
    assert rows[-1]["note"] == f"revert of batch {first}" and len(rows) == 3 + 2 + 1 + 2

    history.undo_last()  # the store's own undo of this reviewer's latest batch: the revert
    assert all(s.state_of(int(i)) == "confirmed" for i in q[1:3])
    assert history.table.rowCount() == 5 and history.table.item(0, 3).text().startswith("undo:")


def test_reverting_an_undo_puts_every_sample_back_in_one_batch(qtbot, workspace_session, bulk_answers) -> None:
    """An undo's samples went back to different states; reverting it asked "put 2 samples back to 1 confirmed?" and
    wrote two batches, so a later U undid half of it (a review, session 25)."""
    _path, ws, s = workspace_session
    panel = AnalystPanel(s, workspace=ws)
    qtbot.addWidget(panel)
    q = [int(i) for i in s.review_queue()[:2]]
    s.review([q[1]], "later")
    s.confirm(q)  # q0 unreviewed -> confirmed, q1 later -> confirmed
    s.undo()  # q0 -> unreviewed, q1 -> later
    history = panel.history
    history.refresh()
    undo_batch = max(b["batch"] for b in history._batches)
    done = history.revert(undo_batch)
    assert sorted(done.tolist()) == sorted(q) and [s.state_of(i) for i in q] == ["confirmed", "confirmed"]
    assert "put 2 samples back to 2 confirmed" in bulk_answers.asked[-1]
    s.undo()  # the revert was one batch: one undo takes all of it back
    assert [s.state_of(i) for i in q] == ["unreviewed", "later"]


def test_decisions_of_another_window_are_taken_in(qtbot, workspace_session) -> None:
    """A window open beside a second one on the same workspace kept its own counts, its History lacked the other's
    batches, and its export dialog stated 110 removed while the export wrote 109 (newcomer session 18)."""
    from naviewer.gui.analyst.export_dialog import ExportDialog
    from naviewer.workspace import Workspace

    path, _ws, s = workspace_session
    panel = AnalystPanel(s, workspace=_ws)
    qtbot.addWidget(panel)
    panel.show()
    q = s.review_queue()
    s.confirm(q[:3])
    assert panel.session.sync_with_store().size == 0  # its own decisions are not news
    with Workspace.open(path) as other:  # the second window (another connection, as another process has)
        other.store.set_review([int(q[0])], "rejected", "someone-else")
    rows = panel.history.table.rowCount()
    with qtbot.waitSignal(panel.bridge.review_changed, timeout=5000):
        pass  # the panel's poll takes it in
    assert s.state_of(int(q[0])) == "rejected" and s.review_counts()["confirmed"] == 2
    assert panel.history.table.rowCount() == rows + 1
    with Workspace.open(path) as other:
        other.store.set_review([int(q[1])], "rejected", "someone-else")
    dialog = ExportDialog(s, _ws)  # the counts it states are the store's at once, not at the next poll
    qtbot.addWidget(dialog)
    assert s.state_of(int(q[1])) == "rejected"


def _history_shown(qtbot, ws, session) -> ReviewHistory:
    """The panel on screen with its History tab in front (its keys act only while it can be seen)."""
    panel = AnalystPanel(session, workspace=ws)
    qtbot.addWidget(panel)
    panel.resize(900, 500)
    panel.show()
    panel.tabs.setCurrentWidget(panel.history)
    return panel.history


def test_a_new_batch_scrolls_the_newest_first_table_to_the_top(qtbot, workspace_session) -> None:
    """The selected row kept the table scrolled to it: batches 12-16 were out of sight above batch 11 (a newcomer,
    session 21). A new batch brings the top, the newest, into view; the selection stays."""
    _path, ws, s = workspace_session
    history = _history_shown(qtbot, ws, s)
    q = s.review_queue()
    for i in range(12):
        s.confirm(q[i:i + 1])
    oldest = int(history.table.item(history.table.rowCount() - 1, 0).text())
    history.select_batch(oldest)
    history.table.scrollToBottom()
    s.reject(q[12:13])
    assert history.table.verticalScrollBar().value() == 0
    assert history.selected_batch() == oldest


def test_c_in_the_history_says_where_decisions_are_made(qtbot, workspace_session) -> None:
    """C pressed in History did nothing and said nothing (a newcomer, session 21)."""
    _path, ws, s = workspace_session
    history = _history_shown(qtbot, ws, s)
    said = []
    history.status_message.connect(said.append)
    next(k for k in history.shortcuts if k.key().toString() == "C").activated.emit()
    assert s.review_counts()["confirmed"] == 0
    assert said and "C · R · L decide in the gallery (Ctrl+2)" in said[-1]


def test_the_undo_button_names_the_batch_it_would_undo(qtbot, workspace_session) -> None:
    """After U had undone the newest decision, "Undo my last" undid a batch of an earlier sitting on a sample out of
    view, and only the status bar said which (a newcomer, session 26): the button names its batch first."""
    _path, ws, s = workspace_session
    panel = AnalystPanel(s, workspace=ws)
    qtbot.addWidget(panel)
    history = panel.history
    button = history.buttons["undo"]
    assert not button.isEnabled() and button.text() == "Undo my last"
    q = s.review_queue()
    s.confirm(q[:2])
    first = s.undo_target()
    s.reject(q[2:3])
    second = s.undo_target()
    assert second != first and button.text() == f"Undo batch {second}" and "1 → rejected" in button.toolTip()
    s.undo()
    history.refresh()
    assert button.text() == f"Undo batch {first}" and "2 → confirmed" in button.toolTip()
    history.undo_last()
    assert not button.isEnabled() and button.text() == "Undo my last"


def test_every_undo_renames_the_history_button_even_one_that_reverted_nothing(qtbot, workspace_session,
                                                                               monkeypatch) -> None:
    """An undo whose samples were decided again elsewhere changes no state, so no review signal came, and History kept
    naming the batch just undone (the next click undid an older one; a read-through, session 26)."""
    _path, ws, s = workspace_session
    called = []
    monkeypatch.setattr(ReviewHistory, "_name_undo_target", lambda self: called.append(1))
    panel = AnalystPanel(s, workspace=ws)
    qtbot.addWidget(panel)
    s.confirm(s.review_queue()[:1])
    monkeypatch.setattr(s, "undo", lambda: np.zeros(0, np.int64))  # reverted nothing: no review signal
    before = len(called)
    panel.gallery.undo()
    assert len(called) > before
