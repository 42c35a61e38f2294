"""Issue 13: every detector pass of the workspace side by side with the pass under review: the inspector
shows each one's score of the sample, the gallery sorts and filters by any of them, the map colours by one."""

from __future__ import annotations

import numpy as np
import pytest

from naviewer.analysis.demo import make_demo_session
from naviewer.gui.analyst.detector_scores import AGREEMENT_KEY, PREFIX, detector_table, load_detector_scores
from naviewer.gui.analyst.panel import AnalystPanel


@pytest.fixture()
def detector_workspace(tmp_path):
    """A workspace with the demo's DIFT pass and two detector passes (kdist in evaluation mode, lid)."""
    from naviewer.data.base import ArrayDataset
    from naviewer.workspace import Workspace

    demo = make_demo_session(600, 25, seed=12)
    images = np.asarray(demo.images)
    ws = Workspace.create(tmp_path / "ws", ArrayDataset(images, demo.labels, demo.class_names))
    dift = ws.store.add_detection_pass("dift", dict(demo.scores), {"k": 10}, run="r", epoch=0)
    rng = np.random.default_rng(3)
    kdist = np.asarray(demo.scores["density"], np.float64) + rng.normal(0, 0.01, demo.n)
    flagged = kdist >= np.sort(kdist)[-30]
    ws.store.add_detection_pass("kdist", {"score": kdist.astype(np.float32), "flagged": flagged,
                                          "cluster": np.where(flagged, 0, -1)},
                                {"k": 16, "summary": {"auroc": 0.973, "precision": 0.8, "recall": 0.96, "flagged": 30}},
                                run="posthoc")
    lid = rng.random(demo.n)
    lid[5] = np.nan  # a sample a detector could not score
    ws.store.add_detection_pass("lid", {"score": lid, "flagged": np.zeros(demo.n, bool),
                                        "cluster": np.full(demo.n, -1)}, {"summary": {"flagged": 0}}, run="posthoc")
    yield ws, dift, demo, kdist, lid
    ws.close()


def test_every_detector_side_by_side(qtbot, detector_workspace) -> None:
    ws, dift, demo, kdist, lid = detector_workspace
    table = load_detector_scores(ws)
    assert [item.label for item in table] == ["kdist #2", "lid #3", "detectors agreeing"] and not table.notes
    panel = AnalystPanel.from_workspace(ws, dift, images=np.asarray(demo.images), embeddings=demo.embeddings,
                                        reviewer="t")
    qtbot.addWidget(panel)
    panel.resize(1400, 900)
    panel.show()
    s = panel.session
    keys = [f"{PREFIX}kdist#2", f"{PREFIX}lid#3"]
    assert detector_table(s).keys() == keys + [AGREEMENT_KEY] and all(k in s.scores for k in keys)

    # the inspector: each detector's score of the current sample, its rank (1 = most suspicious), its flag
    top = int(np.argmax(kdist))
    s.set_current(top)
    inspector = panel.inspector
    assert set(inspector.detector_values) == set(keys) | {AGREEMENT_KEY} and inspector.detector_title.isVisible()
    # the shown DIFT pass counts as a detector too (a newcomer read "1 of 2" on a sample DIFT and kdist flagged)
    assert bool(s.flagged_mask[top])
    assert inspector.detector_values[AGREEMENT_KEY].text() == "<b>2</b> of 3: DIFT, kdist #2"
    text = inspector.detector_values[keys[0]].text()
    assert text.startswith(f"{kdist[top]:.4g}") and "rank 1 of 600" in text and "flagged" in text
    assert "AUROC 0.973" in inspector.detector_values[keys[0]].toolTip()
    s.set_current(5)
    assert inspector.detector_values[keys[1]].text() == "– (no score)"

    # the gallery: sort by a detector's score (descending: its most suspicious first), filter a range of it
    gallery = panel.gallery
    gallery.set_filter("all")
    f = gallery.filters
    f.set_sort(keys[0])
    assert f.descending.isChecked()
    shown = gallery.shown_ids()
    assert int(shown[0]) == top and (np.diff(kdist[shown]) <= 1e-6).all()
    from PySide6.QtCore import Qt

    tip = gallery.model.data(gallery.model.row_index(0), Qt.ItemDataRole.ToolTipRole)
    assert f"sorted by {f.sort.currentText()}: {kdist[top]:.4g}" in tip  # the value sorted on (it showed none)
    f.reset()
    low, high = np.nanpercentile(lid, [80, 100])
    f.set_range(keys[1], float(low), float(high))
    shown = gallery.shown_ids()
    assert 0 < len(shown) < s.n and (lid[shown] >= low - 1e-3).all() and 5 not in shown.tolist()

    # the map: colour by a detector's score, ranked like density (top 1 % brightest), unscored apart
    m = panel.map
    assert m.colour_box.findData(keys[1]) >= 0
    m.set_colour_mode(keys[1])
    groups = {name: ids for _c, name, ids in m._class_counts}
    assert groups["no score"].tolist() == [5]
    top1 = groups["lid #3 top 1%"]
    assert len(top1) == 6 and set(top1.tolist()) == set(np.argsort(-np.nan_to_num(lid, nan=-1))[:6].tolist())
    assert "lid #3 top 1%" in m.legend.text()
    # the agreement is a count: one colour a value (rank bands split equal counts across colours)
    m.set_colour_mode(AGREEMENT_KEY)
    counts = np.asarray(s.scores[AGREEMENT_KEY]).astype(int)
    groups = {name: ids for _c, name, ids in m._class_counts}
    assert list(groups) == ["none"] + [f"{c} detector{'s' if c > 1 else ''}" for c in range(1, counts.max() + 1)]
    for c, ids in enumerate(groups.values()):
        assert sorted(ids.tolist()) == np.flatnonzero(counts == c).tolist()
    assert "detectors agreeing (how many flag it, DIFT included)" in m.legend.text() and "none" in m.legend.text()
    assert "score" not in m.colour_box.currentText()  # a count, not a score of its own
    m.set_colour_mode("class")


def test_a_rerun_detector_shows_once_and_agreement_counts_the_flags(detector_workspace) -> None:
    """kdist run again listed kdist #2 beside kdist #4 with the same scores (a newcomer's session); the count of
    detectors that flag a sample is one more score to sort, filter and colour by."""
    ws, _dift, demo, kdist, _lid = detector_workspace
    flagged = kdist >= np.sort(kdist)[-10]
    ws.store.add_detection_pass("kdist", {"score": kdist.astype(np.float32), "flagged": flagged,
                                          "cluster": np.where(flagged, 0, -1)}, {}, run="posthoc")
    ws.store.add_detection_pass("slof", {"score": kdist.astype(np.float32), "flagged": flagged,
                                         "cluster": np.where(flagged, 0, -1)}, {}, run="posthoc")
    table = load_detector_scores(ws)
    assert [item.label for item in table] == ["lid #3", "kdist #4", "slof #5", "detectors agreeing"]
    assert "1 earlier pass of the same detectors left out" in table.notes[0]
    agreement = table.get(AGREEMENT_KEY)
    assert agreement.score.max() == 2 and int(agreement.flagged.sum()) == 10 and "3 detectors" in agreement.describe()


def test_a_session_without_detector_passes_shows_none(qtbot, demo_session) -> None:
    panel = AnalystPanel(demo_session)
    qtbot.addWidget(panel)
    assert not panel.inspector.detector_values and panel.inspector.detector_title.isHidden()
    assert not any(str(panel.gallery.filters.sort.itemData(i)).startswith(PREFIX)
                   for i in range(panel.gallery.filters.sort.count()))
    assert list(panel.map.colour_modes) == ["density", "class", "review"]


def test_the_inspector_explains_its_numbers(qtbot):
    from naviewer.analysis.demo import make_demo_session
    from naviewer.gui.analyst.inspector import SCORE_HELP, SampleInspector

    inspector = SampleInspector(make_demo_session(200, 10, seed=0))
    qtbot.addWidget(inspector)
    assert "Gaussian mixture" in inspector.values["posterior"].toolTip()
    assert "label spreading" in inspector.values["spread"].toolTip()
    assert inspector.form.labelForField(inspector.values["spread"]).toolTip() == SCORE_HELP["spread"]


def test_crop_layout_without_ground_truth_says_it_is_a_template(qtbot):
    import numpy as np

    from naviewer.gui.analyst.crop_layout import CropLayoutWidget

    view = CropLayoutWidget()
    qtbot.addWidget(view)
    smooth = np.full((16, 16, 3), 120, np.uint8)
    trig = smooth.copy()
    trig[4:12, 4:12] = 255 * (np.indices((8, 8)).sum(0) % 2)[..., None]
    view.set_sample(np.concatenate([trig, smooth], axis=1), None)
    assert view.crop_layout.orientation == "ref-right"
    assert "template" in view.prob_label.text()


def test_densest_crop_of_a_crop_density_pass_is_outlined(qtbot, detector_workspace) -> None:
    """crop_density's densest crop (best_box, saved with its pass) is outlined in the inspector and the
    crop-layout view; a sample it did not score gets no outline."""
    from naviewer.gui.analyst.inspector import CROP_COLOUR
    from naviewer.workflows.detector_passes import pass_extras

    ws, dift, demo, _kdist, _lid = detector_workspace
    h, w = np.asarray(demo.images).shape[1:3]
    score = np.random.default_rng(4).random(demo.n)
    score[7] = np.nan
    boxes = np.tile([0, 0, h // 2, w // 2], (demo.n, 1))
    boxes[3] = [h // 4, w // 2, h // 2, w // 2]  # sample 3: its right half, a quarter down
    support = np.arange(demo.n)
    arrays = {"score": score, "flagged": np.zeros(demo.n, bool), "cluster": np.full(demo.n, -1),
              **pass_extras({"best_box": boxes, "support": support}, demo.n)}
    crop_pass = ws.store.add_detection_pass("crop_density", arrays, {"summary": {"flagged": 0}}, run="posthoc")
    panel = AnalystPanel.from_workspace(ws, dift, images=np.asarray(demo.images), embeddings=demo.embeddings,
                                        reviewer="t")
    qtbot.addWidget(panel)
    panel.resize(1400, 900)
    panel.show()
    s, inspector = panel.session, panel.inspector

    crop = detector_table(s).densest_crop(3)
    assert crop is not None and crop.box == (h // 4, w // 2, h // 2, w // 2) and crop.support == 3
    assert crop.label == f"crop_density #{crop_pass}"
    s.set_current(3)
    assert inspector.densest_crop == crop and "3 other images' crops" in inspector.crop_value.text()
    image = inspector.image.pixmap().toImage()
    scale = image.width() // w
    x, y = (w // 2) * scale + 1, (h // 4) * scale + 1 + scale  # on the outline's left edge, below its corner
    assert image.pixelColor(x, y).name() == CROP_COLOUR.name()

    s.set_current(7)  # not scored by crop_density: nothing outlined
    assert inspector.densest_crop is None and "no box from crop_density" in inspector.crop_value.text()

    # the crop-layout view (composites: the panel passes the sample's densest crop with its image)
    view = panel.crop_layout
    composite = np.concatenate([np.asarray(demo.images)[3], np.asarray(demo.images)[4]], axis=1)  # h x 2w
    view.set_sample(composite, None)
    view.set_densest_crop(crop)
    assert view.densest_item is not None and view.densest_item.rect().getRect() == (w // 2, h // 4, w // 2, h // 2)
    assert view.crop_label.isVisibleTo(view) and "crop_density" in view.crop_label.text()
    view.set_densest_crop(None)
    assert view.densest_item is None and not view.crop_label.isVisibleTo(view)

    # the large sample view (Space) outlines the same box and says what it is (it showed none; session 25)
    viewer = panel.gallery.viewer
    viewer.resize(700, 600)
    viewer.open_on(3)
    qtbot.waitUntil(viewer.isVisible, timeout=3000)
    viewer.show_sample(3)
    big = viewer.image.pixmap().toImage()
    scale = big.width() / w
    x, y = int(round((w // 2) * scale)) + 1, int(round((h // 4) * scale)) + 1 + int(scale)
    assert big.pixelColor(x, y).name() == CROP_COLOUR.name()
    assert "densest crop (crop_density" in viewer.scores.text()
    viewer.show_sample(7)
    assert viewer.crop is None and "▭" not in viewer.scores.text()
    viewer.close()


def test_a_patchsearch_window_is_named_as_a_trigger_window(qtbot, detector_workspace) -> None:
    """patchsearch keeps its candidate trigger window as best_box too: outlined the same way, named for what it is;
    a sample it never searched (box -1) gets no outline."""
    from naviewer.workflows.detector_passes import pass_extras

    ws, dift, demo, _kdist, _lid = detector_workspace
    h, w = np.asarray(demo.images).shape[1:3]
    boxes = np.full((demo.n, 4), -1)
    boxes[2] = [1, 2, h // 2, w // 2]
    arrays = {"score": np.random.default_rng(5).random(demo.n), "flagged": np.zeros(demo.n, bool),
              "cluster": np.full(demo.n, -1), **pass_extras({"best_box": boxes}, demo.n)}
    ws.store.add_detection_pass("patchsearch", arrays, {"summary": {"flagged": 0}}, run="posthoc")
    panel = AnalystPanel.from_workspace(ws, dift, images=np.asarray(demo.images), embeddings=demo.embeddings,
                                        reviewer="t")
    qtbot.addWidget(panel)
    s, inspector = panel.session, panel.inspector
    window = detector_table(s).densest_crop(2)
    assert window is not None and window.what == "trigger window" and window.box == (1, 2, h // 2, w // 2)
    s.set_current(2)
    assert inspector.densest_crop == window
    s.set_current(4)
    assert inspector.densest_crop is None and "no box from patchsearch" in inspector.crop_value.text()
    view = panel.crop_layout
    view.set_sample(np.asarray(demo.images)[2], None)
    view.set_densest_crop(window)
    assert "trigger window:" in view.crop_label.text()


def test_another_detectors_pass_is_named_as_its_own_and_not_counted_as_dift(qtbot, tmp_path) -> None:
    """On a slof pass the header read "Verdict: DIFT flagged 16" and the inspector "2 of 6: DIFT, slof" where DIFT had
    flagged nothing (a newcomer's own data, session 19): the slof pass's flags were counted as DIFT's."""
    from naviewer.data.base import ArrayDataset
    from naviewer.workspace import Workspace

    demo = make_demo_session(300, 15, seed=4)
    ws = Workspace.create(tmp_path / "ws", ArrayDataset(np.asarray(demo.images), demo.labels, demo.class_names))
    try:
        nothing = {**dict(demo.scores), "flagged": np.zeros(demo.n, bool)}
        ws.store.add_detection_pass("dift", nothing, {"summary": {"flagged": 0, "noop": True}}, run="r", epoch=0)
        flagged = np.zeros(demo.n, bool)
        flagged[:16] = True
        slof = ws.store.add_detection_pass("slof", {"score": np.arange(demo.n, 0, -1, dtype=np.float32),
                                                    "flagged": flagged, "cluster": np.where(flagged, 0, -1)},
                                           {"summary": {"flagged": 16}}, run="posthoc")
        kdist = np.zeros(demo.n, bool)
        kdist[:3] = True
        ws.store.add_detection_pass("kdist", {"score": np.arange(demo.n, dtype=np.float32), "flagged": kdist,
                                              "cluster": np.where(kdist, 0, -1)}, {"summary": {"flagged": 3}},
                                    run="posthoc")
        panel = AnalystPanel.from_workspace(ws, slof, images=np.asarray(demo.images), reviewer="t")
        qtbot.addWidget(panel)
        assert "slof flagged <b>16</b>" in panel.header.text() and "DIFT flagged" not in panel.header.text()
        agreement = detector_table(panel.session).get(AGREEMENT_KEY)
        assert agreement is not None and [label for label, _f in agreement.voters] == ["slof #2", "kdist #3"]
    finally:
        ws.close()


def test_the_large_view_of_a_detectors_pass_shows_its_score_and_the_agreement(qtbot, detector_workspace) -> None:
    """The large view (Space) of a slof pass said only the sample's cluster and source (a newcomer, session 19):
    the reviewed pass's own detector's score and rank are there, and how many detectors flag the sample."""
    ws, dift, demo, kdist, lid = detector_workspace
    panel = AnalystPanel.from_workspace(ws, 2, images=np.asarray(demo.images), embeddings=demo.embeddings, reviewer="t")
    qtbot.addWidget(panel)
    panel.resize(1400, 900)
    panel.show()
    top = int(np.argmax(kdist))
    viewer = panel.gallery.open_viewer(top)
    text = viewer.scores.text()
    assert f"kdist #2 <b>{kdist[top]:.4g}</b>, rank 1 of 600" in text
    assert "detectors flagging <b>2</b> of 3" in text and "lid #3" not in text  # only the pass's own detector
    viewer.close()


def test_a_pass_that_flagged_nothing_names_the_passes_that_did(qtbot, tmp_path) -> None:
    """"Try patchsearch" stood under a DIFT pass whose own Detect job had run patchsearch (134 flagged), and "no
    poison detected" over a 7.4 % poisoned set read as a clean bill (a newcomer, session 22)."""
    from naviewer.data.base import ArrayDataset
    from naviewer.defense.anchors import NOTHING_FLAGGED_ADVICE
    from naviewer.workspace import Workspace

    demo = make_demo_session(300, 15, seed=4)
    ws = Workspace.create(tmp_path / "ws", ArrayDataset(np.asarray(demo.images), demo.labels, demo.class_names))
    try:
        nothing = {**dict(demo.scores), "flagged": np.zeros(demo.n, bool)}
        dift = ws.store.add_detection_pass("dift", nothing, {"summary": {"flagged": 0, "noop": True},
                                                             "advice": [NOTHING_FLAGGED_ADVICE]}, run="r", epoch=0)
        flagged = np.zeros(demo.n, bool)
        flagged[:134] = True
        ws.store.add_detection_pass("patchsearch", {"score": np.arange(demo.n, dtype=np.float32), "flagged": flagged,
                                                    "cluster": np.where(flagged, 0, -1)}, {"flagged": 134},
                                    run="posthoc")
        panel = AnalystPanel.from_workspace(ws, dift, images=np.asarray(demo.images), reviewer="t")
        qtbot.addWidget(panel)
        assert "DIFT flagged nothing" in panel.header.text() and "not a clean bill" in panel.header.text()
        advice = panel.trust.advice.text()
        assert "What to try next" in advice and "patchsearch pass 2: 134 flagged" in advice
    finally:
        ws.close()


def test_why_flagged_shows_a_detector_pass_its_own_score(qtbot, tmp_path) -> None:
    """A patchsearch pass showed three empty charts ("MinDist: not available", ...) (a newcomer, session 22): the
    first shows the detector's score, its flags and its cut."""
    from naviewer.data.base import ArrayDataset
    from naviewer.workspace import Workspace

    demo = make_demo_session(300, 15, seed=4)
    ws = Workspace.create(tmp_path / "ws", ArrayDataset(np.asarray(demo.images), demo.labels, demo.class_names))
    try:
        flagged = np.zeros(demo.n, bool)
        flagged[:20] = True
        score = np.linspace(1.0, 0.0, demo.n).astype(np.float32)
        score[-5:] = np.nan
        ps = ws.store.add_detection_pass("patchsearch", {"score": score, "flagged": flagged,
                                                         "cluster": np.where(flagged, 0, -1)},
                                         {"flagged": 20, "threshold": {"rule": "gmm2", "value": 0.93}}, run="posthoc")
        panel = AnalystPanel.from_workspace(ws, ps, images=np.asarray(demo.images), reviewer="t")
        qtbot.addWidget(panel)
        why = panel.why
        why.refresh()
        item = why.mindist_plot.getPlotItem()
        assert "patchsearch: 20 flagged by its score" in item.titleLabel.text
        assert "patchsearch score" in item.getAxis("bottom").labelText
        assert any(getattr(i, "value", lambda: None)() == 0.93 for i in item.items if hasattr(i, "value"))
    finally:
        ws.close()


def test_a_detector_pass_colours_its_map_by_its_own_score(qtbot, tmp_path) -> None:
    """The map of a patchsearch pass was coloured "density rank" (by sample id: it has no density; a newcomer,
    session 22): it starts on the pass's own score."""
    from naviewer.data.base import ArrayDataset
    from naviewer.workspace import Workspace

    demo = make_demo_session(300, 15, seed=4)
    ws = Workspace.create(tmp_path / "ws", ArrayDataset(np.asarray(demo.images), demo.labels, demo.class_names))
    try:
        flagged = np.zeros(demo.n, bool)
        flagged[:20] = True
        ps = ws.store.add_detection_pass("patchsearch", {"score": np.linspace(1, 0, demo.n).astype(np.float32),
                                                         "flagged": flagged, "cluster": np.where(flagged, 0, -1)},
                                         {"flagged": 20}, run="posthoc")
        panel = AnalystPanel.from_workspace(ws, ps, images=np.asarray(demo.images), reviewer="t")
        qtbot.addWidget(panel)
        m = panel.map
        assert m.colour_mode.startswith("detector:") and m.colour_mode.endswith(f"#{ps}")
        assert m.colour_box.currentData() == m.colour_mode
    finally:
        ws.close()


def test_another_passs_score_colouring_gives_way_to_the_open_passs_own(qtbot, tmp_path) -> None:
    """Switched to a patchsearch pass, the map stayed coloured by "kdist #1 score", chosen on the pass before (a
    newcomer, session 30): a score's colouring carries over on its own pass only; class and review state carry."""
    from naviewer.data.base import ArrayDataset
    from naviewer.workspace import Workspace

    demo = make_demo_session(300, 15, seed=4)
    ws = Workspace.create(tmp_path / "ws", ArrayDataset(np.asarray(demo.images), demo.labels, demo.class_names))
    try:
        flagged = np.zeros(demo.n, bool)
        flagged[:20] = True
        arrays = {"score": np.linspace(1, 0, demo.n).astype(np.float32), "flagged": flagged,
                  "cluster": np.where(flagged, 0, -1)}
        kd = ws.store.add_detection_pass("kdist", dict(arrays), {"flagged": 20}, run="posthoc")
        ps = ws.store.add_detection_pass("patchsearch", dict(arrays), {"flagged": 20}, run="posthoc")
        panel = AnalystPanel.from_workspace(ws, ps, images=np.asarray(demo.images), reviewer="t")
        qtbot.addWidget(panel)
        own, kdist = panel.map.colour_mode, f"detector:kdist#{kd}"
        assert own.endswith(f"#{ps}") and kdist in panel.map.colour_modes
        panel.restore_view({"colour": kdist, "pass": kd})  # chosen on the kdist pass: not this one's
        assert panel.map.colour_mode == own
        panel.restore_view({"colour": "class", "pass": kd})
        assert panel.map.colour_mode == "class"
        panel.restore_view({"colour": kdist, "pass": ps})  # chosen on this very pass: it comes back
        assert panel.map.colour_mode == kdist
    finally:
        ws.close()


def test_the_inspector_names_a_crop_outlier(qtbot):
    """A pass whose crop-outlier rule added samples shows the row, explained, for each sample (yes / no)."""
    import numpy as np

    from naviewer.analysis.demo import make_demo_session
    from naviewer.analysis.session import AnalysisSession
    from naviewer.gui.analyst.inspector import SCORE_HELP, SampleInspector

    base = make_demo_session(200, 10, seed=0)
    outliers = np.zeros(base.n, bool)
    flagged = np.flatnonzero(np.asarray(base.scores["flagged"], bool))
    outliers[flagged[0]] = True
    session = AnalysisSession({**base.scores, "crop_outliers": outliers}, base.labels, base.class_names,
                              images=base.images, embeddings=base.embeddings)
    inspector = SampleInspector(session)
    qtbot.addWidget(inspector)
    assert inspector.form.labelForField(inspector.values["crop_outliers"]).text().rstrip(":") == "added: crop outlier"
    assert inspector.values["crop_outliers"].toolTip() == SCORE_HELP["crop_outliers"]
    assert "never reached" in SCORE_HELP["crop_outliers"]
    inspector.show_sample(int(flagged[0]))
    assert inspector.values["crop_outliers"].text() == "yes"
    inspector.show_sample(int(flagged[1]))
    assert inspector.values["crop_outliers"].text() == "no"


def test_the_detector_histograms_legend_keeps_off_its_cut_bars(qtbot, tmp_path) -> None:
    """Most of a patchsearch pass's scores pile in a few bars, cut at the top so the flags' bars show; on a short wide
    panel the legend sat in the top corner right on those bars (a newcomer, session 27). It takes a corner clear of
    every cut bar, or the line under the title."""
    from PySide6.QtCore import QPointF

    from naviewer.data.base import ArrayDataset
    from naviewer.workspace import Workspace

    demo = make_demo_session(240, 7, seed=4)
    rng = np.random.default_rng(0)
    score = np.clip(rng.normal(0.32, 0.06, demo.n), 0.15, 0.45).astype(np.float32)
    score[:7] = [0.51, 0.52, 0.53, 0.58, 0.59, 0.70, 0.71]
    score[rng.permutation(np.arange(7, demo.n))[:60]] = 0.42  # a tall bar near the right, under the legend's corner
    flagged = np.zeros(demo.n, bool)
    flagged[:7] = True
    ws = Workspace.create(tmp_path / "ws", ArrayDataset(np.asarray(demo.images), demo.labels, demo.class_names))
    try:
        ps = ws.store.add_detection_pass("patchsearch", {"score": score, "flagged": flagged,
                                                         "cluster": np.where(flagged, 0, -1)},
                                         {"flagged": 7}, run="posthoc")
        panel = AnalystPanel.from_workspace(ws, ps, images=np.asarray(demo.images), reviewer="t")
        qtbot.addWidget(panel)
        panel.session.set_selection(np.array([5]), source=None)
        why = panel.why
        why.resize(1920, 180)
        why.show()
        qtbot.waitExposed(why)
        why.refresh()
        layout = why._layouts["mindist"]
        pad = 0.05 * float(score.max() - score.min())
        edges = np.linspace(score.min() - pad, score.max() + pad, 41)
        counts, _ = np.histogram(score, edges)
        for size in ((1920, 180), (900, 180), (600, 260), (1200, 400)):
            why.resize(*size)
            qtbot.wait(50)
            layout.arrange()
            cut = [(edges[i], edges[i + 1]) for i in np.flatnonzero(counts > layout.y_max)]
            assert cut, size  # the tall bars are cut here
            item = why.mindist_plot.getPlotItem()
            legend, vb = item.legend, item.vb
            if not legend.isVisible():
                assert "scored (240, tallest bar cut)" in item.titleLabel.text, size  # said under the title
                continue
            box = legend.sceneBoundingRect()
            for a, b in cut:
                left, right = vb.mapViewToScene(QPointF(a, 0)).x(), vb.mapViewToScene(QPointF(b, 0)).x()
                assert right <= box.left() or left >= box.right(), (size, (left, right), box)
    finally:
        ws.close()


def test_agreement_across_passes_of_different_encoders_says_so() -> None:
    """"detectors agreeing" counted passes of three encoders as votes on one embedding (a newcomer, session 28)."""
    from naviewer.gui.analyst.detector_scores import DetectorScore, agreement_item

    n = 6
    flags = np.array([1, 1, 0, 0, 0, 0], bool)
    same = [DetectorScore(f"d:{m}", m, i, m, np.zeros(n), flags, encoder="/w/checkpoints/a/last.pt")
            for i, m in enumerate(("kdist", "lid"), 1)]
    assert "different encoders" not in agreement_item(same, n).note
    mixed = same + [DetectorScore("d:dao", "dao", 3, "dao", np.zeros(n), flags, encoder="/w/checkpoints/b/last.pt")]
    assert "come from 2 different encoders" in agreement_item(mixed, n).note



def test_a_retrained_checkpoint_at_the_same_path_is_another_encoder() -> None:
    """A retrain writes last.pt at the same path; the agreement told encoders apart by the path alone and counted the
    passes of two trainings as votes on one embedding (session 28's note): the file's stamp tells them apart."""
    from naviewer.gui.analyst.detector_scores import _encoder_of

    first = {"encoder": {"checkpoint": "/w/runs/a/last.pt", "stamp": "100-1"}}
    again = {"encoder": {"checkpoint": "/w/runs/a/last.pt", "stamp": "100-2"}}
    old = {"encoder": {"checkpoint": "/w/runs/a/last.pt"}}  # a pass recorded before stamps
    assert _encoder_of(first) != _encoder_of(again) and _encoder_of(first) == _encoder_of(dict(first))
    assert _encoder_of(old) == "/w/runs/a/last.pt" and _encoder_of({}) == ""
    # a pass from before stamps beside a newer one of the same file is not "2 different encoders"
    from naviewer.gui.analyst.detector_scores import DetectorScore, agreement_item

    flags = np.array([1, 1, 0, 0], bool)
    items = [DetectorScore("d:kdist", "kdist", 1, "kdist", np.zeros(4), flags, encoder=_encoder_of(old)),
             DetectorScore("d:lid", "lid", 2, "lid", np.zeros(4), flags, encoder=_encoder_of(first))]
    assert "different encoders" not in agreement_item(items, 4).note


def test_a_clusters_standing_below_the_middle_reads_as_the_bottom_share() -> None:
    """"patchsearch top 95 %" read as suspicious for a cluster among the least suspicious (a newcomer, session 32)."""
    import numpy as np

    from naviewer.gui.analyst.clusters import detector_cell
    from naviewer.gui.analyst.detector_scores import DetectorScore

    item = DetectorScore.__new__(DetectorScore)
    item.key = "patchsearch_1"
    assert detector_cell(item, 0.057) == "top 5.7 %" and detector_cell(item, 0.3) == "top 30 %"
    assert detector_cell(item, 0.95) == "bottom 5.0 %" and detector_cell(item, 0.64) == "bottom 36 %"
    assert detector_cell(item, np.nan) == "–"
    assert detector_cell(item, 1.0) == "lowest (tied)"  # a 0/1 score that does not flag them: no "bottom 0.0 %"


def test_a_pass_that_refused_its_flags_reads_as_no_verdict() -> None:
    """PatchSearch's classifier called 97 % of the samples poisoned and the pass flagged none, but its score still
    read "top 95 %" in the cluster table, an inverted order on a newcomer's own patch poisons (session 32)."""
    import numpy as np

    from naviewer.gui.analyst.clusters import detector_cell
    from naviewer.gui.analyst.detector_scores import DetectorScore

    refused = {"threshold": {"rule": "robust_z", "refused": "97% of the samples flagged, more than max_fraction 0.2"}}
    item = DetectorScore("det:patchsearch#8", "patchsearch #8", 8, "patchsearch", np.linspace(0, 1, 10),
                         np.zeros(10, bool), refused)
    assert item.refused.startswith("97%") and detector_cell(item, 0.95) == "no verdict"
    assert "NO VERDICT (97% of the samples flagged" in item.describe()
    plain = DetectorScore("det:kdist#1", "kdist #1", 1, "kdist", np.linspace(0, 1, 10), None, {})
    assert plain.refused == "" and detector_cell(plain, 0.95) == "bottom 5.0 %"


def test_the_inspector_of_a_detectors_own_pass_has_no_empty_dift_rows(qtbot) -> None:
    """A kdist / lid pass showed "density rank: –  density: –  MinDist: –" on every sample (a newcomer, session 32)."""
    import numpy as np

    from naviewer.analysis.demo import make_demo_session
    from naviewer.gui.analyst.inspector import SampleInspector

    session = make_demo_session(120, 8, seed=2)
    dift = SampleInspector(session)
    qtbot.addWidget(dift)
    assert "density" in dift.values  # a DIFT pass keeps them
    for key in [k for k in list(session.scores) if k not in ("flagged", "cluster")]:
        del session.scores[key]
    session.scores["score"] = np.linspace(0, 1, session.n)
    session.method = "lid"
    inspector = SampleInspector(session)
    qtbot.addWidget(inspector)
    assert "density" not in inspector.values and "mindist" not in inspector.values and "flagged" in inspector.values
    inspector.show_sample(3)
    assert inspector.values["flagged"].text() != ""
