"""File dialogs open where the analyst works: the folder last chosen for that kind, else the folder
naviewer was started in (issue 14 item 10: they always opened in the home folder)."""

from __future__ import annotations

import os


def test_dialogs_start_in_the_working_folder_then_remember(window, tmp_path, monkeypatch):
    from naviewer.gui import main_window

    data = tmp_path / "data"
    (data / "models").mkdir(parents=True)
    monkeypatch.chdir(data)
    starts: list[str] = []

    def pick(folder):
        def dialog(parent, title, start, *rest):
            starts.append(start)
            return (str(folder / "enc.pt"), "") if rest else str(folder)
        return dialog

    opened = []
    monkeypatch.setattr(window, "open_encoder", lambda path: opened.append(path))
    monkeypatch.setattr(main_window.QFileDialog, "getOpenFileName", staticmethod(pick(data / "models")))
    window.open_encoder_dialog()
    window.open_encoder_dialog()
    assert starts == [os.getcwd(), str((data / "models").resolve())]
    assert opened and opened[0].endswith("enc.pt")
    monkeypatch.setattr(main_window.QFileDialog, "getExistingDirectory", staticmethod(pick(data)))
    monkeypatch.setattr(window, "open_workspace", lambda path, **_kw: None)
    window.open_workspace_dialog()
    assert starts[-1] == os.getcwd()   # another kind starts from the working folder, not the encoder's



def test_a_folder_refused_as_a_workspace_is_not_remembered(window, qtbot, tmp_path, monkeypatch):
    """A folder Open workspace refused became the default home of the next demo's workspace (a newcomer, session
    29): the workspace dialogs remember a folder once it has opened."""
    from naviewer.gui import main_window
    from naviewer.gui.settings import start_folder

    from .fakes import finish, image_folder

    before = start_folder(window.settings, "workspace")
    shots = tmp_path / "shots"
    shots.mkdir()
    monkeypatch.setattr(main_window.QFileDialog, "getExistingDirectory", staticmethod(lambda *a: str(shots)))
    started = []
    window.jobs.job_started.connect(started.append)
    window.open_workspace_dialog()
    qtbot.waitUntil(lambda: started and not started[-1].running, timeout=20000)
    assert started[-1].error is not None and start_folder(window.settings, "workspace") == before
    finish(qtbot, window.new_workspace(tmp_path / "ws", image_folder(tmp_path / "images", 4, 16)))
    monkeypatch.setattr(main_window.QFileDialog, "getExistingDirectory", staticmethod(lambda *a: str(tmp_path / "ws")))
    window.open_workspace_dialog()
    qtbot.waitUntil(lambda: len(started) >= 3 and not started[-1].running, timeout=20000)
    assert start_folder(window.settings, "workspace") == str((tmp_path / "ws").resolve())


def test_dark_theme_reaches_the_analyst_plots(qtbot):
    import pyqtgraph as pg

    from naviewer.analysis.demo import make_demo_session
    from naviewer.gui.analyst.panel import AnalystPanel
    from naviewer.gui.theme import load_theme

    panel = AnalystPanel(make_demo_session(300, 10, seed=0))
    qtbot.addWidget(panel)
    dark = load_theme("dark")
    panel.set_theme(dark)
    want = pg.mkColor(dark.plot_background).name()
    assert panel.map.plot.backgroundBrush().color().name() == want
    for plot in (panel.why.mindist_plot, panel.why.density_plot, panel.why.epoch_plot):
        assert plot.backgroundBrush().color().name() == want


def test_a_theme_applied_before_pyqtgraph_was_imported_reaches_the_first_map(qtbot):
    """The window applies its theme before pyqtgraph is imported (it is slow to import); the first analyst panel of
    a new user then drew its map on pyqtgraph's own black, until the theme was toggled twice (newcomer session 17)."""
    import pyqtgraph as pg

    from naviewer.analysis.demo import make_demo_session
    from naviewer.gui.analyst.panel import AnalystPanel
    from naviewer.gui.theme import configure_pyqtgraph, load_theme

    light = load_theme("light")
    configure_pyqtgraph(light)  # the window's theme, remembered
    pg.setConfigOptions(background="k", foreground="d")  # what pyqtgraph's own import sets, after it
    panel = AnalystPanel(make_demo_session(300, 10, seed=0))
    qtbot.addWidget(panel)
    want = pg.mkColor(light.plot_background).name()
    assert panel.map.plot.backgroundBrush().color().name() == want and not panel.map.dark
    assert panel.why.mindist_plot.backgroundBrush().color().name() == want


def test_dark_theme_keeps_every_rank_band_readable(qtbot):
    """In the dark theme the 50-100 % band (viridis' purple end, half of the samples) all but vanished on the
    background; every band now reads at a contrast of at least 3:1, and the light theme keeps viridis as it is."""
    import pyqtgraph as pg

    from naviewer.analysis.demo import make_demo_session
    from naviewer.gui.analyst.density_map import DENSITY_COLOURS, _luminance
    from naviewer.gui.analyst.panel import AnalystPanel
    from naviewer.gui.theme import load_theme

    panel = AnalystPanel(make_demo_session(300, 10, seed=0))
    qtbot.addWidget(panel)
    panel.set_theme(load_theme("light"))  # (pyqtgraph's own default background is black)
    qtbot.waitUntil(lambda: not panel.map.dark)
    light = [c.getRgb()[:3] for c, _name, _ids in panel.map._class_counts]
    assert light == [tuple(c) for c in DENSITY_COLOURS]
    dark = load_theme("dark")
    panel.set_theme(dark)
    qtbot.waitUntil(lambda: panel.map._class_counts and panel.map.dark)
    background = _luminance(pg.mkColor(dark.plot_background).getRgb())
    for colour, name, _ids in panel.map._class_counts:
        contrast = (_luminance(colour.getRgb()) + 0.05) / (background + 0.05)
        assert contrast >= 3.0, (name, colour.name(), contrast)
    panel.set_theme(load_theme("light"))
    qtbot.waitUntil(lambda: not panel.map.dark)
    assert [c.getRgb()[:3] for c, _n, _i in panel.map._class_counts] == light
