"""Fine-tune gate, export dialog, inspector, evidence plots."""

from __future__ import annotations

import numpy as np

from naviewer.gui.analyst.export_dialog import ExportDialog
from naviewer.gui.analyst.finetune_gate import FineTuneGate
from naviewer.gui.analyst.inspector import SampleInspector
from naviewer.gui.analyst.why import WhyFlaggedWidget


def test_finetune_gate_follows_review_state(qtbot, demo_session) -> None:
    gate = FineTuneGate(demo_session)
    qtbot.addWidget(gate)
    assert not gate.button.isEnabled()
    queue = demo_session.review_queue()
    demo_session.confirm(queue[:10])
    assert not gate.button.isEnabled() and "await a decision" in gate.reason.text()
    demo_session.reject(queue[10:])
    assert gate.button.isEnabled()
    if not gate.retrains:  # a fine-tune's other way out, said before the click (a newcomer, session 27)
        assert "Run ▸ Train… with \"Leave out" in gate.reason.text()
    with qtbot.waitSignal(gate.finetune_requested) as blocker:
        gate.button.click()
    assert np.array_equal(blocker.args[0], np.sort(queue[:10]))
    demo_session.undo()  # the rejections come back as pending
    assert not gate.button.isEnabled()
    gate.override.setChecked(True)
    assert gate.button.isEnabled()
    gate.set_running(True)
    assert not gate.button.isEnabled()
    assert gate.reason.text() == ("Retraining from scratch on the kept samples is running (see the training monitor)."
                                  if gate.retrains else "Fine-tuning is running.")
    gate.set_result({"before": {"knn_acc": 0.80, "confirmed_density": 6.0}, "after": {"knn_acc": 0.82, "confirmed_density": 1.5}})
    assert gate.result.rowCount() == 2 and gate.result.item(0, 3).text() == "+2.0 pp"  # the ASR's rows come first
    assert gate.result.item(0, 1).text() == "80.0 %" and gate.result.item(1, 3).text() == "-4.5"
    assert gate.floor_line.isHidden()  # no ASR: nothing to compare with a floor
    assert gate.verdict.isHidden()  # the pile dissolved: nothing to warn about
    # denser after: said (a newcomer's post-hoc fine-tune left them 55 % denser under "lower: the pile dissolved")
    gate.set_result({"before": {"confirmed_density": 2.366}, "after": {"confirmed_density": 3.665}})
    assert not gate.verdict.isHidden() and "55 % denser" in gate.verdict.text() and "leaving out the confirmed" in gate.verdict.text()


def test_the_gate_says_the_confirmed_samples_beyond_its_flags(qtbot, demo_session) -> None:
    """"Flags: confirmed 5" above "fine-tune ... the 80 confirmed poisons" read as two counts of one thing (a
    newcomer, session 32): the confirmed samples outside the pass's flags are said, and that the step takes them."""
    import numpy as np

    s = demo_session
    flags = s.flagged_ids()
    outside = np.setdiff1d(np.arange(s.n), flags)[:3]
    s.confirm(np.concatenate([flags[:2], outside]))
    gate = FineTuneGate(s)
    qtbot.addWidget(gate)
    gate.update_gate()
    text = gate.counts.text()
    assert text.startswith("This pass's flags: ") and "and 3 more confirmed outside its flags" in text
    assert "5 confirmed poisons" in gate.button.text()


def test_the_done_gate_says_when_decisions_changed_since(qtbot, demo_session) -> None:
    """After the fine-tune / retrain, a decision changed (or a reopened workspace whose decisions differ from the
    count the step used) is said under "Done": the encoder and its table did not see it."""
    gate = FineTuneGate(demo_session)
    qtbot.addWidget(gate)
    queue = demo_session.review_queue()
    demo_session.confirm(queue[:5])
    gate.show_done(5)
    assert gate.reason.text().startswith("Done:") and "changed since" not in gate.reason.text()
    demo_session.reject(queue[:1])
    assert "The decisions changed since: 4 confirmed now, 5 when it ran" in gate.reason.text()
    assert not gate.button.isEnabled()
    demo_session.undo()
    assert "changed since" not in gate.reason.text()
    gate.mark_done("Done earlier: fine-tuned.", 7)  # reopened: the step used 7, the workspace holds 5
    assert "5 confirmed now, 7 when it ran" in gate.reason.text()
    # as many, other samples: "110 confirmed now, 110 when it ran" read as no change (a newcomer, session 30)
    gate.mark_done("Done: fine-tuned.", 5)
    demo_session.reject(queue[:1])
    demo_session.confirm(queue[5:6])
    assert "5 confirmed now, 5 when it ran: as many, but 1 sample confirmed now that was not then" in gate.reason.text()


def test_a_retrain_is_offered_again_when_the_decisions_changed_after_it(qtbot, demo_session, monkeypatch) -> None:
    """After the remove-and-retrain the tab said the decisions changed and only "export, then train" (a newcomer,
    session 18): Retrain again trains the recipe on the decisions as they are now (a new run)."""
    monkeypatch.setattr(FineTuneGate, "retrains", property(lambda self: True))
    gate = FineTuneGate(demo_session)
    qtbot.addWidget(gate)
    queue = demo_session.review_queue()
    demo_session.confirm(queue[:5])
    demo_session.reject(queue[5:])
    gate.show_done(5)
    assert gate.again_button.isHidden()  # nothing changed since: nothing to train again
    demo_session.reject(queue[:1])
    assert gate.again_button.isVisibleTo(gate) and gate.again_button.isEnabled()
    assert gate.again_button.text() == "Retrain again without 4 confirmed poisons (a new run)"
    assert "Retrain again (the button below)" in gate.reason.text()
    with qtbot.waitSignal(gate.again_requested) as blocker:
        gate.again_button.click()
    assert np.array_equal(blocker.args[0], np.sort(queue[1:5]))
    gate.set_running(True)
    assert not gate.again_button.isEnabled()
    gate.set_running(False)
    demo_session.review(queue[5:6], "later")  # a flag awaits a decision again: the override decides, as for the first
    assert not gate.again_button.isEnabled()
    gate.override.setChecked(True)
    assert gate.again_button.isEnabled()
    gate.mark_done("Done: retrained again without 4 confirmed poisons.", 4)  # the second retrain ended
    assert gate.again_button.isHidden()


def test_finetune_table_names_the_protocol_and_the_floor(qtbot, demo_session) -> None:
    """Issue 12: the ASR says how the trigger was pasted, and the no-poison floor sits beside it."""
    gate = FineTuneGate(demo_session)
    qtbot.addWidget(gate)
    floor = {"asr": 0.213, "asr_all": 0.25, "knn_acc": 0.931, "protocol": "code"}
    gate.set_result({"before": {"knn_acc": 0.947, "asr": 1.0, "asr_all": 1.0, "confirmed_density": 6.37},
                     "after": {"knn_acc": 0.919, "asr": 0.225, "asr_all": 0.3, "confirmed_density": 3.29},
                     "confirmed": 102, "protocol": "code", "floor": floor})
    rows = {gate.result.item(r, 0).text(): [gate.result.item(r, c).text() for c in range(1, 5)]
            for r in range(gate.result.rowCount())}
    asr = next(k for k in rows if k.startswith("attack success rate, test-time protocol code"))
    assert gate.result.item(0, 0).text() == asr  # first: at 1280x720 the third row was below the fold (session 31)
    assert rows[asr] == ["100.0 %", "22.5 %", "-77.5 pp", "21.3 %"]
    knn = next(k for k in rows if k.startswith("kNN accuracy"))
    assert rows[knn] == ["94.7 %", "91.9 %", "-2.8 pp", "93.1 %"]
    assert [gate.result.horizontalHeaderItem(c).text() for c in range(5)][-1] == "no-poison floor"
    assert not gate.floor_line.isHidden() and "floor 21.3 % (code)" in gate.floor_line.text()
    # one line a row (a wrapped name stood two lines tall at 1280x720 and pushed the ASR out of the tab); the
    # name's explanation is its tooltip
    assert not gate.result.wordWrap()
    density = next(r for r in range(gate.result.rowCount()) if gate.result.item(r, 0).text().startswith("the removed"))
    assert "mean kNN density of the confirmed samples" in gate.result.item(density, 0).toolTip()

    # never measured: the column says so and the line says how to measure it
    gate.set_result({"before": {"asr": 1.0}, "after": {"asr": 0.4}, "protocol": "paper"})
    assert gate.result.item(0, 0).text().startswith("attack success rate, test-time protocol paper")
    assert gate.result.item(0, 4).text() == "not measured"
    assert "floor not measured (naviewer run WORKSPACE --floor)" in gate.floor_line.text()



def test_finetune_gate_names_a_retrain_restart(qtbot, demo_session) -> None:
    """A run recorded with restart_mode=retrain does no Eq. 7 step: the gate must not promise one."""
    assert demo_session.restart_mode == "continue"
    demo_session.settings = {"config": {"restart_mode": "retrain"}}
    gate = FineTuneGate(demo_session)
    qtbot.addWidget(gate)
    gate.override.setChecked(True)
    demo_session.confirm(demo_session.review_queue()[:3])
    assert gate.button.text() == "Remove and retrain without 3 confirmed poisons"
    assert "retrain the encoder from scratch" in gate.reason.text() and "not a fine-tune" in gate.reason.text()
    assert "as long as the original training" in gate.reason.text()  # not the seconds "Fine-tune" suggested
    from naviewer.gui.analyst.panel import AnalystPanel

    panel = AnalystPanel(demo_session)
    qtbot.addWidget(panel)
    assert panel.tabs.tabText(panel.tabs.indexOf(panel.finetune_gate)) == "Fine-tune / retrain"
    # a post-hoc pass (no epoch) fine-tunes its finished encoder whatever its [dift] says: the tab read
    # "Remove and retrain" and ran Eq. 7 (newcomer session 13)
    demo_session.post_hoc = True
    posthoc_gate = FineTuneGate(demo_session)
    qtbot.addWidget(posthoc_gate)
    posthoc_gate.override.setChecked(True)
    assert posthoc_gate.button.text() == "Fine-tune on 3 confirmed poisons"


def test_export_writes_manifests_and_report(qtbot, workspace_session, tmp_path) -> None:
    _path, ws, session = workspace_session
    top = session.clusters()[0].members
    session.confirm(top)
    why = WhyFlaggedWidget(session)
    qtbot.addWidget(why)
    dialog = ExportDialog(session, ws, out_dir=tmp_path / "out", plots=why.plots())
    qtbot.addWidget(dialog)
    assert f"<b>{len(top):,}</b> removed" in dialog.summary.text()
    out = dialog.export()
    for name in ("kept.txt", "samples.csv", "provenance.json", "review-report.html"):
        assert (out / name).is_file(), name
    kept = (out / "kept.txt").read_text().splitlines()
    assert len(kept) == session.n - len(top)
    assert dialog.result_record.removed == len(top)
    report = (out / "review-report.html").read_text()
    assert "MinDist and GMM" in report and report.count("data:image/png;base64,") >= 3
    # the export's rows say what they count: "removed" stood twice and "unreviewed flags 1" read against "unreviewed
    # 0 of the 110 flags" (a newcomer, session 30)
    assert report.count("<th>removed") == 1 and "<th>unreviewed flags</th>" not in report
    assert "undecided flags (unreviewed or later) the export keeps" in report and "<th>kept by the export</th>" in report
    assert report.count("<th>kept") == 1


def test_inspector_neighbours_follow_a_bulk_decision_made_elsewhere(qtbot, demo_session) -> None:
    # a neighbour confirmed from the cluster table kept its unreviewed look (a newcomer, session 17)
    inspector = SampleInspector(demo_session)
    qtbot.addWidget(inspector)
    shown = int(np.flatnonzero(demo_session.truth_poison_mask())[0])
    demo_session.set_current(shown)
    neighbour = int(demo_session.neighbours(shown, 8)[1])
    assert "border" not in inspector.neighbour_buttons[1].styleSheet()
    demo_session.confirm(np.array([neighbour]))  # the shown sample itself is not in the batch
    button = next(b for b in inspector.neighbour_buttons if b.text() == f"#{neighbour}")
    assert "border" in button.styleSheet() and "confirmed" in button.toolTip()


def test_export_without_workspace_writes_only_the_report(qtbot, demo_session, tmp_path) -> None:
    dialog = ExportDialog(demo_session, None, out_dir=tmp_path / "r")
    qtbot.addWidget(dialog)
    out = dialog.export()
    assert sorted(p.name for p in out.iterdir()) == ["review-report.html"]


def test_export_to_a_name_no_file_system_takes_says_so(qtbot, demo_session, tmp_path, monkeypatch) -> None:
    """A 300-character folder name or a NUL in it raised out of Export's click: a traceback, nothing said, nothing
    written (a GUI bad-input sweep). Now a box names it."""
    from PySide6.QtWidgets import QMessageBox

    boxes = []
    monkeypatch.setattr(QMessageBox, "warning", lambda _parent, title, text, *a, **k: boxes.append((title, text)))
    dialog = ExportDialog(demo_session, None, out_dir=tmp_path / "r")
    qtbot.addWidget(dialog)
    for name, words in ((str(tmp_path / ("x" * 300)), "too long"), (str(tmp_path / "a\x00b"), "NUL"),
                        ("~nosuchuserhere/out", "no user")):
        boxes.clear()
        dialog.path_edit.setText(name)
        dialog._on_export()
        assert boxes and boxes[-1][0] == "Export failed" and words in boxes[-1][1], boxes
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_inspector_neighbours_and_evaluation_mode(qtbot, demo_session) -> None:
    inspector = SampleInspector(demo_session)
    qtbot.addWidget(inspector)
    poison = int(np.flatnonzero(demo_session.truth_poison_mask())[0])
    demo_session.set_current(poison)
    assert f"#{poison}" in inspector.title.text()
    # the density rank counts from 1, as the detectors' ranks do ("0 of N (0 = densest)" beside "rank 1 = ...")
    rank = int(np.asarray(demo_session.scores["rank"])[poison])
    assert inspector.values["rank"].text() == f"{rank + 1:,} of {demo_session.n:,} (1 = densest)"
    assert len(inspector.neighbour_buttons) == 8
    inspector.resize(340, 420)
    inspector.show()
    qtbot.waitExposed(inspector)
    # under the decisions, above the scores: at the scroll area's bottom a newcomer never found it (session 19)
    assert inspector.evaluation.y() < inspector.values["rank"].y() < inspector.neighbour_box.y()
    assert not inspector.truth.isVisibleTo(inspector)
    inspector.set_evaluation_mode(True)
    assert inspector.truth.isVisibleTo(inspector) and "poison" in inspector.truth.text()
    target = int(demo_session.neighbours(poison, 8)[2])
    inspector.neighbour_buttons[2].click()
    assert demo_session.current == target and inspector.sample == target
    inspector.buttons["rejected"].click()
    assert demo_session.state_of(target) == "rejected"


def test_why_flagged_plots_with_and_without_scores(qtbot, demo_session) -> None:
    from naviewer.analysis import AnalysisSession

    why = WhyFlaggedWidget(demo_session)
    qtbot.addWidget(why)
    demo_session.select_cluster(0)
    assert "selected" in why.note.text()
    bare = AnalysisSession({"density": np.random.default_rng(0).random(30)}, np.zeros(30, np.int64), ["a"])
    empty = WhyFlaggedWidget(bare)
    qtbot.addWidget(empty)
    assert "one pass only" in empty.epoch_plot.getPlotItem().titleLabel.text
    # one detection epoch (a post-hoc pass of a run): said in words, not one point on an axis 33.6-34.4
    from naviewer.analysis.session import EpochFlags

    bare.history = [EpochFlags(33, np.arange(4))]
    single = WhyFlaggedWidget(bare)
    qtbot.addWidget(single)
    assert "epoch 34 only" in single.epoch_plot.getPlotItem().titleLabel.text and "detected 4" in single.note.text()


def test_inspector_shows_the_spreading_rules_only_for_passes_that_ran_them(qtbot, demo_session) -> None:
    plain = SampleInspector(demo_session)
    qtbot.addWidget(plain)
    assert "closure" not in plain.values and "poison_probability" not in plain.values
    n = demo_session.n
    flagged = np.asarray(demo_session.scores["flagged"], bool)
    sid = int(np.flatnonzero(flagged)[0])
    probability = np.zeros(n, np.float32)
    probability[sid] = 0.31
    closure = np.zeros(n, bool)
    closure[sid] = True
    demo_session.scores["poison_probability"] = probability
    demo_session.scores["closure"] = closure
    inspector = SampleInspector(demo_session)
    qtbot.addWidget(inspector)
    demo_session.set_current(sid)
    assert inspector.values["poison_probability"].text().startswith("0.31")
    assert inspector.values["closure"].text() in ("True", "yes", "1")
    assert "soft" not in inspector.values and "crop" not in inspector.values  # the pass did not store them
    crop = np.zeros(n, bool)
    crop[sid] = True
    demo_session.scores["crop"] = crop  # flagged by crop agreement (docs/dift.md)
    with_crop = SampleInspector(demo_session)
    qtbot.addWidget(with_crop)
    demo_session.set_current(sid)
    assert with_crop.values["crop"].text() in ("True", "yes", "1")
    assert "anchor_reach" not in with_crop.values  # no guard ran on this pass
    reach = np.ones(n, np.float32)
    reach[sid] = 1.8
    guarded = np.zeros(n, bool)
    guarded[sid] = True
    demo_session.scores["anchor_reach"] = reach  # the anchor-reach guard's input and whom it kept out
    demo_session.scores["guarded"] = guarded
    with_guard = SampleInspector(demo_session)
    qtbot.addWidget(with_guard)
    demo_session.set_current(sid)
    assert with_guard.values["anchor_reach"].text().startswith("1.8")
    assert with_guard.values["guarded"].text() in ("True", "yes", "1")
    for key in ("poison_probability", "closure", "crop", "anchor_reach", "guarded"):
        del demo_session.scores[key]


def test_the_export_dialog_says_what_other_passes_left_undecided(qtbot, workspace_session, tmp_path) -> None:
    """"Also remove flags nobody has decided on" and "0 undecided flags kept" covered the open pass only, and a
    newcomer's poisons undecided on other passes stayed in the cleaned set unnoticed (session 28): the option says
    its scope, and the summary counts the others' undecided flags with their passes."""
    _path, ws, session = workspace_session
    flags = np.zeros(session.n, dtype=bool)
    outside = np.flatnonzero(~session.flagged_mask)[:4]
    flags[outside] = True
    other = ws.store.add_detection_pass("lid", {"score": np.zeros(session.n), "flagged": flags}, {})
    dialog = ExportDialog(session, ws, out_dir=tmp_path / "out")
    qtbot.addWidget(dialog)
    assert "this pass's flags" in dialog.drop_flags.text()
    assert f"4 more samples flagged by other passes are undecided and kept (per pass, its undecided flags this pass did not flag: pass {other} lid: 4)" in dialog.summary.text()
    dialog.export()
    assert "4 more samples flagged by other passes" in dialog.describe(tmp_path / "out")


def test_the_keys_stay_in_the_gate_while_its_job_runs(qtbot, demo_session) -> None:
    """After Remove and retrain the button greyed out and Qt handed the keys to the next widget, the inspector, where
    a C confirmed the sample it shows (a newcomer, session 29): the gate keeps them, and no key decides there."""
    from naviewer.gui.analyst.panel import AnalystPanel

    panel = AnalystPanel(demo_session)
    qtbot.addWidget(panel)
    panel.resize(1400, 900)
    panel.show()
    gate = panel.finetune_gate
    demo_session.confirm(demo_session.flagged_ids())
    panel.focus_view("finetune")
    gate.button.setFocus()
    qtbot.waitUntil(gate.button.hasFocus, timeout=3000)
    gate.set_running(True)
    from PySide6.QtWidgets import QApplication

    focus = QApplication.focusWidget()
    assert focus is gate, focus


def test_a_review_key_pressed_while_the_gate_holds_the_keys_says_why(qtbot, demo_session) -> None:
    """C, R, L, U in the Fine-tune tab while Remove and retrain ran did nothing, without a word (a newcomer,
    session 29): the status bar says the tab's keys do not decide, and where the gallery is; nothing is decided."""
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QMainWindow

    from naviewer.gui.analyst.panel import AnalystPanel

    window = QMainWindow()
    qtbot.addWidget(window)
    panel = AnalystPanel(demo_session)
    window.setCentralWidget(panel)
    window.resize(1400, 900)
    window.show()
    gate = panel.finetune_gate
    demo_session.confirm(demo_session.flagged_ids()[:3])
    before = demo_session.review_counts()
    panel.focus_view("finetune")
    gate.setFocus()
    qtbot.waitUntil(gate.hasFocus, timeout=3000)
    gate.set_running(True)
    qtbot.keyClick(gate, Qt.Key.Key_U)
    said = window.statusBar().currentMessage()
    assert said.startswith("U: no decision here while the") and "Ctrl+2" in said, said
    assert demo_session.review_counts() == before
    window.statusBar().clearMessage()
    gate.set_running(False)
    qtbot.keyClick(gate, Qt.Key.Key_C)  # not running: no notice (nothing claims the keys)
    assert window.statusBar().currentMessage() == ""


def test_a_report_plot_of_a_tab_never_shown_is_rendered_whole(qtbot, demo_session) -> None:
    """The HTML report's Why-flagged plots came out 208 px wide, titles and axes cut, when their tab had never been
    shown (a newcomer at 1280x720, session 30): each is rendered at least REPORT_PLOT_SIZE, the widget put back."""
    from PySide6.QtGui import QImage

    from naviewer.gui.analyst.export_dialog import REPORT_PLOT_SIZE, widget_png
    from naviewer.gui.analyst.panel import AnalystPanel

    panel = AnalystPanel(demo_session)
    qtbot.addWidget(panel)
    panel.resize(1280, 700)
    panel.show()
    plot = next(iter(panel.why.plots().values()))
    image = QImage.fromData(widget_png(plot))
    assert image.width() >= REPORT_PLOT_SIZE[0] and image.height() >= REPORT_PLOT_SIZE[1]
    laid_out = plot.size()  # the size its tab gives it, put back after the picture
    assert laid_out.width() < REPORT_PLOT_SIZE[0]
    QImage.fromData(widget_png(plot))
    assert plot.size() == laid_out


def test_the_reports_plots_are_drawn_light_under_the_dark_theme_and_put_back(qtbot, demo_session) -> None:
    """A report made under the dark theme had dark plots on its white page (seen, session 30): the panel renders them
    in the light theme for the picture, then in the window's theme again."""
    from PySide6.QtGui import QColor, QImage

    from naviewer.gui.analyst.export_dialog import widget_png
    from naviewer.gui.analyst.panel import AnalystPanel
    from naviewer.gui.resources import load_theme

    panel = AnalystPanel(demo_session)
    qtbot.addWidget(panel)
    panel.resize(1280, 700)
    panel.show()
    dark = load_theme("dark")
    panel.set_theme(dark)

    def corner(widget) -> int:
        return QColor(QImage.fromData(widget_png(widget)).pixel(3, 3)).lightness()

    assert corner(panel.map.plot) < 128
    with panel.light_plots():
        assert corner(panel.map.plot) > 200
        assert all(corner(plot) > 200 for plot in panel.why.plots().values())
    assert corner(panel.map.plot) < 128 and panel.theme is dark
    dialog = panel.open_export_dialog()
    assert dialog.plot_look == panel.light_plots  # the export renders its plots in it
    dialog.reject()


def test_a_retrain_agains_table_says_what_the_earlier_retrains_read(qtbot, demo_session) -> None:
    """Retrain again replaced the first retrain's table: a newcomer had 40.4 % before them and nothing to compare it
    with (the first had read 21.3 %; session 30). The earlier retrains' figures stand under the table."""
    gate = FineTuneGate(demo_session)
    qtbot.addWidget(gate)
    earlier = [{"run": "demo", "after": {"asr": 0.213, "knn_acc": 0.931}, "confirmed": 117, "first": True},
               {"run": "demo-again-1", "after": {"confirmed_density": 2.0}, "confirmed": 116, "first": False},
               {"run": "demo-again-2", "after": {"asr": 0.30}, "confirmed": 115, "first": False}]
    gate.set_result({"before": {"asr": 1.0}, "after": {"asr": 0.404}, "earlier": earlier})
    text = gate.earlier_line.text()
    assert not gate.earlier_line.isHidden()
    assert ("Before this one, the first retrain (run demo, 117 removed) read ASR 21.3 %, kNN accuracy 93.1 %; the retrain again (run "
            "demo-again-2, 115 removed) read ASR 30.0 %") in text and "demo-again-1" not in text  # no figure: left out
    gate.set_result({"before": {"asr": 1.0}, "after": {"asr": 0.2}})  # a first retrain's own table: nothing before it
    assert gate.earlier_line.isHidden()
