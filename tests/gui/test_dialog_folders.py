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
    monkeypatch.setattr(window, "open_workspace", lambda path: None)
    window.open_workspace_dialog()
    assert starts[-1] == os.getcwd()   # another kind starts from the working folder, not the encoder's


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
