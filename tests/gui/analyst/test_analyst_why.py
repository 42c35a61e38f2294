"""Why flagged: legends and line labels stay inside their plots and apart, wide or narrow."""

from __future__ import annotations

import pytest

from naviewer.gui.analyst.why import WhyFlaggedWidget


def _scene_rect(item):
    return item.mapRectToScene(item.boundingRect())


@pytest.mark.parametrize("size", [(1500, 420), (900, 240), (760, 180)])
def test_legend_and_line_label_fit_inside_the_plot(qtbot, demo_session, size) -> None:
    why = WhyFlaggedWidget(demo_session)
    qtbot.addWidget(why)
    demo_session.select_cluster(0)
    why.resize(*size)
    why.show()
    qtbot.waitExposed(why)
    qtbot.wait(50)
    for name, layout in why._layouts.items():
        item = layout.plot.getPlotItem()
        view = _scene_rect(item.vb).adjusted(-1, -1, 1, 1)
        label = _scene_rect(layout.line.label)
        assert view.contains(label), (name, size, "line label leaves the plot")
        legend = item.legend
        if legend.isVisible():
            box = _scene_rect(legend)
            assert view.contains(box), (name, size, "legend clipped")
            assert not box.adjusted(1, 1, -1, -1).intersects(label), (name, size, "label under the legend")
        else:  # no room inside: the keys are listed under the title instead
            assert "selected" in item.titleLabel.text and "\u25a0" in item.titleLabel.text
    # the candidates' count, as the legend gives it ("33 flags above the split" beside "candidates (46)" and 26
    # detected in the last epoch added up to nothing for a newcomer, session 22)
    values = demo_session.gmm()["values"]
    title = why.mindist_plot.getPlotItem().titleLabel.text
    assert f"of {len(values)} above the split" in title, title
    assert f"candidates ({len(values)})" in [label.text for _sample, label in
                                              why.mindist_plot.getPlotItem().legend.items]
    assert len("MinDist: 60 of 460 above the split") < 40  # short enough for a third of a docked panel


def test_a_title_holding_the_legend_keys_follows_the_theme(qtbot, demo_session) -> None:
    """Too short for its legend, a plot lists the keys under its title: drawn "#222" whatever the theme, dark on the
    dark theme's plots (newcomer session 16). It takes the theme's text colour, also after a switch."""
    from naviewer.gui.resources import load_theme

    why = WhyFlaggedWidget(demo_session)
    qtbot.addWidget(why)
    demo_session.select_cluster(0)
    why.resize(760, 180)
    why.show()
    qtbot.waitExposed(why)
    for name in ("dark", "light", "dark"):
        theme = load_theme(name)
        why.set_theme(theme)
        qtbot.wait(20)
        packed = [layout for layout in why._layouts.values() if not layout.plot.getPlotItem().legend.isVisible()]
        assert packed  # the size above is too short for the legends inside
        for layout in packed:
            html = layout.plot.getPlotItem().titleLabel.item.toHtml().lower()
            assert "\u25a0" in layout.plot.getPlotItem().titleLabel.text and theme.plot_foreground.lower() in html


@pytest.mark.parametrize("size", [(1500, 420), (1280, 200), (900, 240), (1000, 150)])
def test_the_epochs_legend_sits_above_every_point(qtbot, demo_session, size) -> None:
    """The detections' curve and the selected samples' took both corners at 1280x720 and the legend sat on them (a
    newcomer, session 18): the y range keeps room above the curves for it."""
    import numpy as np
    from PySide6.QtCore import QPointF

    why = WhyFlaggedWidget(demo_session)
    qtbot.addWidget(why)
    epochs, _counts, _sel = demo_session.detections_per_epoch()
    if len(epochs) < 2:
        pytest.skip("the demo session has one detection epoch")
    demo_session.set_selection(np.flatnonzero(demo_session.flagged_mask)[:5])
    why.resize(*size)
    why.show()
    qtbot.waitExposed(why)
    qtbot.wait(50)
    item = why.epoch_plot.getPlotItem()
    if not item.legend.isVisible():  # too short for it: the curves' names went into the title (session 21)
        assert item.vb.height() < 2.5 * item.legend.height(), size
        assert "detected</span>" in item.titleLabel.text and "selected</span>" in item.titleLabel.text
        return
    box = _scene_rect(item.legend)
    points = [item.vb.mapViewToScene(QPointF(float(x), float(y)))
              for curve in item.listDataItems() for x, y in zip(*curve.getData())]
    assert points and not any(box.contains(p) for p in points), (size, "a point under the legend")


def test_no_flag_above_the_split_says_the_guard_judged_it(qtbot, demo_session) -> None:
    """"MinDist: 0 flags above the split" over bars above it read as a contradiction (a newcomer, session 19)."""
    import numpy as np

    demo_session.scores["flagged"] = np.zeros(demo_session.n, bool)
    if hasattr(demo_session, "_flagged_mask"):
        del demo_session._flagged_mask
    why = WhyFlaggedWidget(demo_session)
    qtbot.addWidget(why)
    why.resize(1500, 420)
    why.show()
    qtbot.waitExposed(why)
    assert not demo_session.flagged_mask.any()
    title = why.mindist_plot.getPlotItem().titleLabel.text
    assert "above the split, none flagged (the guard)" in title, title


def test_a_plot_with_nothing_to_show_has_no_empty_axes_or_legend(qtbot, demo_session, monkeypatch) -> None:
    """"density: not available" and "one pass only" stood over empty axes and an empty legend box, read as a drawing
    fault; the note under them told a workspace that had run DIFT in training to run it (a newcomer, session 27)."""
    import numpy as np

    score = demo_session.score
    monkeypatch.setattr(demo_session, "score", lambda name: None if name == "density" else score(name))
    monkeypatch.setattr(demo_session, "detections_per_epoch", lambda: (np.empty(0), np.empty(0), np.empty(0)))
    why = WhyFlaggedWidget(demo_session)
    qtbot.addWidget(why)
    why._draw_density()
    why._draw_epochs()
    for plot in (why.density_plot, why.epoch_plot):
        item = plot.getPlotItem()
        assert not item.getAxis("left").isVisible() and not item.getAxis("bottom").isVisible()
        assert item.legend is None or not item.legend.isVisible()
    assert why.note.text().startswith("This pass ranked the samples once") and "Run ▸ Train…" in why.note.text()


def test_the_reports_plots_are_titled_by_what_they_show(qtbot, demo_session) -> None:
    """A patchsearch pass's report put its score histogram under "MinDist and GMM" beside two blank images (a
    newcomer, session 30): a detector's pass gives its score plot alone, named after it."""
    import numpy as np

    s = demo_session
    s.scores["score"] = np.linspace(1, 0, s.n).astype(np.float32)
    for key in ("mindist", "density", "rank"):
        s.scores.pop(key, None)
    s.method = "patchsearch"
    why = WhyFlaggedWidget(s)
    qtbot.addWidget(why)
    assert list(why.plots()) == ["patchsearch score"]


def test_a_pass_of_a_few_epochs_has_whole_epoch_ticks(qtbot, demo_session) -> None:
    """"Detected per epoch" read 30.5, 31.5 on a pass of five epochs (a newcomer, session 30)."""
    why = WhyFlaggedWidget(demo_session)
    qtbot.addWidget(why)
    epochs = demo_session.detections_per_epoch()[0]
    assert 1 < len(epochs) and float(epochs.max() - epochs.min()) <= 12  # the demo's pass: a few epochs
    axis = why.epoch_plot.getPlotItem().getAxis("bottom")
    assert axis._tickSpacing == [(1, 0), (1, 0)]  # whole epochs, major and minor
