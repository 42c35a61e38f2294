"""Issue 14 item 4: a new or another workspace never leaves the previous one's views docked under its title."""

from __future__ import annotations

from .analyst.analyst_kit import folder_workspace as _folder_workspace


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
