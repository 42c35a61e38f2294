"""Issue 14 item 4: a new or another workspace never leaves the previous one's views docked under its title."""

from __future__ import annotations

from .analyst.analyst_kit import folder_workspace as _folder_workspace
from .analyst.analyst_kit import open_folder_workspace


def test_new_workspace_closes_the_previous_analyst_panel(qtbot, window, tmp_path):
    first = _folder_workspace(tmp_path / "a")
    window.state.set_workspace(first, {"samples": 40, "pass_id": 1, "runs": []})
    assert window.analyst_dock is not None and window.docks["analystDock"].isVisible()
    panel = window.analyst_dock.panel
    assert any(g.startswith("Analyst") for g in window.shortcuts_panel.groups())

    # what "New workspace" does when its job finishes: a workspace without a detection pass
    window.state.set_workspace(tmp_path / "fresh", {"samples": 12, "runs": []})
    assert window.windowTitle().startswith("fresh")
    assert window.analyst_dock is None
    dock = window.docks["analystDock"]
    assert not dock.isVisible() and dock.widget() is not panel
    assert "fresh" not in dock.windowTitle() and "pass" not in dock.windowTitle()
    assert not any(g.startswith("Analyst") for g in window.shortcuts_panel.groups())
    assert window.overview.run.text() == "none"

    # opening the first one again docks its analyst afresh
    window.state.set_workspace(first, {"samples": 40, "pass_id": 1, "runs": []})
    assert window.analyst_dock is not None and window.docks["analystDock"].isVisible()
    assert window.analyst_dock.panel is not panel


def test_following_the_old_workspace_run_stops(qtbot, window, tmp_path):
    qtbot.waitUntil(lambda: window.monitor is not None, timeout=10000)
    run = tmp_path / "a" / "runs" / "r"
    run.mkdir(parents=True)
    (run / "metrics.jsonl").write_text("")
    window.state.set_workspace(tmp_path / "a", {"samples": 3, "runs": [str(run)]})
    assert window.monitor.follower is not None
    window.state.set_workspace(tmp_path / "b", {"samples": 3, "runs": []})
    assert window.monitor.follower is None


def test_a_finished_training_of_the_old_workspace_leaves_the_monitor_too(qtbot, window, tmp_path):
    """The state keeps a finished training's handle: the monitor kept the old workspace's finished run under the new
    one's title (a newcomer, session 19)."""
    from naviewer.gui.jobs import JobState

    qtbot.waitUntil(lambda: window.monitor is not None, timeout=10000)
    run = tmp_path / "a" / "runs" / "r"
    run.mkdir(parents=True)
    (run / "metrics.jsonl").write_text("")
    window.state.set_workspace(tmp_path / "a", {"samples": 3, "runs": [str(run)]})
    job = window.start_job(lambda ctx: {"done": True}, "Train", kind="training")
    qtbot.waitSignal(job.finished, timeout=10000).wait()
    assert job.state is JobState.FINISHED
    window.state.set_training(job)  # what a finished training leaves on the state
    window.follow_run(run)
    window.state.set_workspace(tmp_path / "b", {"samples": 3, "runs": []})
    assert window.monitor.follower is None


def test_another_workspace_is_not_opened_or_created_under_a_running_training(qtbot, window, tmp_path, monkeypatch):
    """Opened anyway, the Overview showed the first workspace's run as the new one's and Pause / Cancel acted on it
    (a GUI probe, session 33): it is said, and nothing opens; the training's own workspace still reopens."""
    import threading

    a = _folder_workspace(tmp_path / "a")
    window.state.set_workspace(a, {"samples": 3, "runs": []})
    said = []
    monkeypatch.setattr(window, "inform", lambda title, text, *args, **kwargs: said.append((title, text)))
    release = threading.Event()
    job = window.start_job(lambda ctx: release.wait(10) and {}, "Train simclr", kind="training")
    window.state.set_training(job)
    try:
        assert window.open_workspace(tmp_path / "b") is None
        assert said and said[-1][0] == "A training is running" and f"'Train simclr' is running on {a.name}" in said[-1][1]
        assert window.new_workspace(tmp_path / "c", dataset=tmp_path) is None and not (tmp_path / "c").exists()
        said.clear()  # File ▸ Open workspace… and New workspace… say it before their chooser and form
        window.open_workspace_dialog()
        assert said and "then open another workspace" in said[-1][1]
        assert window.new_workspace_dialog() is None and "then create a new workspace" in said[-1][1]
        again = window.open_workspace(a)  # its own workspace: opened again as a job's end does
        assert again is not None
    finally:
        release.set()
    qtbot.waitUntil(lambda: not job.running, timeout=10000)
    assert window.workspace_path == a


def test_a_workspace_follows_the_run_of_the_pass_under_review_not_its_newest_run(qtbot, window, tmp_path):
    """A matrix cell's workspace: the training run "r" holds the reviewed DIFT pass, then post-hoc passes
    with no run, and an evaluation retrain ("oracle") is the newest run directory."""
    import numpy as np

    from naviewer.gui.tasks import run_of_passes
    from naviewer.workspace import Workspace

    path = _folder_workspace(tmp_path / "a")
    runs = []
    for name in ("r", "oracle"):
        run = path / "runs" / name
        run.mkdir(parents=True)
        (run / "metrics.jsonl").write_text("")
        runs.append(str(run))
    with Workspace.open(path) as ws:
        latest = ws.store.add_detection_pass("kdist", {"score": np.zeros(ws.store.sample_count())}, {},
                                             run="matrix-posthoc")
        store = ws.store
        assert run_of_passes(store, runs, latest) == runs[0]
        assert run_of_passes(store, runs, None) is None and run_of_passes(store, [], latest) is None
        assert run_of_passes(store, runs[1:], latest) is None   # no pass names a run directory: the newest then

    qtbot.waitUntil(lambda: window.monitor is not None, timeout=10000)
    window.state.set_workspace(path, {"samples": 40, "pass_id": latest, "runs": runs, "pass_run": runs[0]})
    assert window.overview.run.toolTip() == runs[0]
    window.state.set_workspace(tmp_path / "b", {"samples": 3, "runs": runs[1:]})
    assert window.overview.run.toolTip() == runs[1]
    window.open_workspace(path)   # File > Open workspace: the summary job finds the pass's run itself
    qtbot.waitUntil(lambda: window.state.workspace == path and window.overview.run.toolTip() == runs[0], timeout=20000)


def test_a_workspace_reopens_on_the_pass_the_analyst_had_open(qtbot, window, tmp_path):
    """A newcomer ran Detect (new passes 2-4, the last flagging nothing), went back to pass 1 with their decisions,
    quit, and reopened on pass 4: "no poison detected · reviewed 0 / 0". Reopened, the pass they had open comes
    back; a pass made since (naviewer detect on the command line) is the newest work, and opens instead."""
    import numpy as np

    from naviewer.workspace import Workspace

    path = _folder_workspace(tmp_path / "a")
    with Workspace.open(path) as ws:
        n = ws.store.sample_count()
        for _ in range(3):
            ws.store.add_detection_pass("kdist", {"score": np.zeros(n), "flagged": np.zeros(n, bool)}, {})
    window.state.set_workspace(path, {"samples": n, "pass_id": 4, "runs": []})
    assert window.analyst_dock.pass_id == 4
    window.show_analyst(path, 1)
    window.state.set_workspace(tmp_path / "other", {"samples": 3, "runs": []})
    window.state.set_workspace(path, {"samples": n, "pass_id": 4, "runs": []})
    assert window.analyst_dock.pass_id == 1
    assert "pass 1" in window.statusBar().currentMessage() and "pass 4" in window.statusBar().currentMessage()

    with Workspace.open(path) as ws:
        ws.store.add_detection_pass("kdist", {"score": np.zeros(n), "flagged": np.zeros(n, bool)}, {})
    window.state.set_workspace(tmp_path / "other", {"samples": 3, "runs": []})
    window.state.set_workspace(path, {"samples": n, "pass_id": 5, "runs": []})
    assert window.analyst_dock.pass_id == 5


def test_the_same_pass_opened_again_keeps_the_analysts_place(qtbot, window, tmp_path):
    """Every job's end re-reads the workspace: the panel came back on Ranked clusters with nothing selected
    (newcomer session 18). The same pass opened again keeps the tab, the gallery's view, the selection."""
    import numpy as np

    path, n = open_folder_workspace(window, tmp_path / "a")
    panel = window.analyst_dock.panel
    panel.tabs.setCurrentWidget(panel.history)
    panel.gallery.set_filter("all")
    panel.session.set_selection([1, 2], source=None)
    panel.session.set_current(2, source=None)
    window.state.set_workspace(path, {"samples": n, "pass_id": 1, "runs": []})  # what a job's end does
    again = window.analyst_dock.panel
    assert again is not panel and again.tabs.currentWidget() is again.history
    assert again.gallery._filter == "all" and again.session.selection.tolist() == [1, 2]
    assert again.session.current == 2
    assert np.array_equal(again.session.selection, [1, 2])


def test_a_garbled_run_state_does_not_keep_the_workspace_closed(qtbot, window, tmp_path):
    """One garbled runs/RUN/dift_state.json failed the whole open (a sweep, session 19): the run is said broken and
    the workspace and its pass open."""
    from naviewer.gui.jobs import JobState
    from naviewer.workspace import Workspace

    path = _folder_workspace(tmp_path / "a")
    with Workspace.open(path) as ws:
        ws.store.add_run("r", "dift-train", {"train": {}})
        (ws.checkpoint_dir("r") / "last.pt").write_bytes(b"x")
    (path / "runs" / "r").mkdir(parents=True, exist_ok=True)
    (path / "runs" / "r" / "dift_state.json").write_text("{oops")
    job = window.open_workspace(path)
    qtbot.waitSignal(job.finished, timeout=20000).wait()
    assert job.state is JobState.FINISHED, job.error_details
    assert any("garbled DIFT run state" in w for w in job.warnings)
    qtbot.waitUntil(lambda: window.analyst_dock is not None and window.analyst_dock.panel is not None, timeout=10000)
    gate = window.analyst_dock.panel.finetune_gate
    assert "run's state is damaged" in gate.blocked and not gate.button.isEnabled()


def test_evaluation_mode_and_the_maps_colouring_come_back_with_the_workspace(qtbot, window, tmp_path):
    """A newcomer turned evaluation mode on, coloured the map by the ground truth, closed the workspace and opened it
    again: evaluation mode was off and the map back on density rank (sessions 26-27); a job's end (the same pass
    opened again) turned evaluation mode off too. Both are kept per workspace now."""
    from naviewer.gui.analyst.density_map import TRUTH_MODE
    from naviewer.workspace import Workspace

    path = _folder_workspace(tmp_path / "a")
    with Workspace.open(path) as ws:
        n = ws.store.sample_count()
        ws.write_ground_truth({"poison_ids": [0, 1, 2]})
    window.state.set_workspace(path, {"samples": n, "pass_id": 1, "runs": []})
    panel = window.analyst_dock.panel
    assert not panel.inspector.evaluation_mode and panel.map.colour_mode == "density"
    panel.inspector.set_evaluation_mode(True)
    assert panel.map.colour_mode == TRUTH_MODE

    window.show_analyst(path, 1)  # a job's end re-reads the workspace: the same pass again
    assert window.analyst_dock.panel is not panel
    panel = window.analyst_dock.panel
    assert panel.inspector.evaluation_mode and panel.map.colour_mode == TRUTH_MODE

    window.state.set_workspace(tmp_path / "other", {"samples": 3, "runs": []})
    window.state.set_workspace(path, {"samples": n, "pass_id": 1, "runs": []})
    panel = window.analyst_dock.panel
    assert panel.inspector.evaluation_mode and panel.map.colour_mode == TRUTH_MODE
    panel.map.set_colour_mode("class")
    panel.inspector.set_evaluation_mode(False)

    window.state.set_workspace(tmp_path / "other", {"samples": 3, "runs": []})
    window.state.set_workspace(path, {"samples": n, "pass_id": 1, "runs": []})
    panel = window.analyst_dock.panel
    assert not panel.inspector.evaluation_mode and panel.map.colour_mode == "class"


def test_the_gallerys_view_the_tab_and_the_highlighted_sample_come_back_with_the_workspace(qtbot, window, tmp_path):
    """Reopened, the panel came back on Flagged, sorted by suspicion, without the class filter, on Ranked clusters and
    another highlighted sample (a newcomer, session 28). They come back; on another pass only what is not the pass's
    own (Show, the sort, the class) does."""
    import numpy as np

    from naviewer.workspace import Workspace

    path, n = open_folder_workspace(window, tmp_path / "a")
    panel = window.analyst_dock.panel
    gallery = panel.gallery
    gallery.set_filter("all")
    spec = gallery.filters.spec()
    from dataclasses import replace

    gallery.filters.set_spec(replace(spec, sort="review", label=1))
    panel.tabs.setCurrentIndex(2)
    panel.session.set_current(7, source=None)
    expected = (gallery._filter, gallery.filters.spec().sort, gallery.filters.spec().label)
    assert expected == ("all", "review", 1)

    window.state.set_workspace(tmp_path / "other", {"samples": 3, "runs": []})
    window.state.set_workspace(path, {"samples": n, "pass_id": 1, "runs": []})
    panel = window.analyst_dock.panel
    gallery = panel.gallery
    assert (gallery._filter, gallery.filters.spec().sort, gallery.filters.spec().label) == expected
    assert panel.tabs.currentIndex() == 2 and panel.session.current == 7
    assert panel.session.selection.tolist() == [7]  # the map's keys act on it, not on the pass's first flag

    with Workspace.open(path) as ws:  # a newer pass: it opens, with the pass-free part of the view
        ws.store.add_detection_pass("kdist", {"score": np.zeros(n), "flagged": np.zeros(n, bool)}, {})
    window.state.set_workspace(tmp_path / "other", {"samples": 3, "runs": []})
    window.state.set_workspace(path, {"samples": n, "pass_id": 2, "runs": []})
    panel = window.analyst_dock.panel
    assert panel.session.pass_id == 2 and panel.gallery._filter == "all"
    # the sort carries over; the class filter of the pass before does not (it emptied a new pass's gallery)
    assert panel.gallery.filters.spec().sort == "review" and panel.gallery.filters.spec().label is None
    assert panel.session.current != 7


def test_a_newer_pass_that_flagged_nothing_leaves_the_pass_under_review_open(qtbot, window, tmp_path):
    """A resumed training ended and its empty DIFT pass replaced the patchsearch pass under review, filters and all
    (a newcomer, session 30): the same workspace opened again keeps the pass under review when the newer one flagged
    nothing, and says so; a newer pass with flags opens as before."""
    import numpy as np

    from naviewer.workspace import Workspace

    path, n = open_folder_workspace(window, tmp_path / "a")
    assert window.analyst_dock.panel.session.pass_id == 1
    with Workspace.open(path) as ws:
        ws.store.add_detection_pass("dift", {"score": np.zeros(n), "flagged": np.zeros(n, bool)}, {})
    window.state.set_workspace(path, {"samples": n, "pass_id": 2, "runs": [], "pass_flagged": 0})
    assert window.analyst_dock.panel.session.pass_id == 1
    assert "pass 1, under review, stays open" in window.statusBar().currentMessage()
    # opened again with no new pass (a training that saved none): the older empty pass is not named again as the
    # newest (a newcomer, session 32)
    window.statusBar().clearMessage()
    window.state.set_workspace(path, {"samples": n, "pass_id": 2, "runs": [], "pass_flagged": 0})
    assert window.analyst_dock.panel.session.pass_id == 1 and "flagged nothing" not in window.statusBar().currentMessage()
    flagged = np.zeros(n, bool)
    flagged[:2] = True
    with Workspace.open(path) as ws:
        ws.store.add_detection_pass("kdist", {"score": np.zeros(n), "flagged": flagged}, {})
    window.state.set_workspace(path, {"samples": n, "pass_id": 3, "runs": [], "pass_flagged": 2})
    assert window.analyst_dock.panel.session.pass_id == 3
