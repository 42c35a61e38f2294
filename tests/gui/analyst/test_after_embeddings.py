"""Issue 14 item 6: after a fine-tune / remove-and-retrain the map shows the samples re-embedded by the
new encoder beside the detection's, with the removed samples' neighbourhood density before and after;
a reopened workspace shows it too."""

from __future__ import annotations

import json

import numpy as np
import pytest
from analyst_kit import folder_workspace

from naviewer.gui.analyst.panel import AFTER_PREFIX, AnalystPanel, density_change

RESULT = {"before": {"confirmed_density": 6.0, "knn_acc": 0.9}, "after": {"confirmed_density": 3.0, "knn_acc": 0.91},
          "confirmed": 5, "finetune": {"restart_mode": "retrain"}}


def _choose(qtbot, panel, key):
    box = panel.map.projection_box
    box.setCurrentIndex(box.findData(key))
    box.activated.emit(box.currentIndex())
    qtbot.waitUntil(lambda: panel.map.projection_method == key, timeout=20000)


def test_density_change_reads_the_recorded_densities():
    assert density_change(RESULT) == ("The removed samples' neighbourhood density (mean kNN density): 6 before, "
                                      "3 after (-50 %: the pile thinned out).")
    assert "not recorded before" in density_change({"after": {"confirmed_density": 2.0}})
    assert density_change({"before": {"knn_acc": 0.9}}) == ""


def test_the_map_offers_the_samples_after_retraining(qtbot, demo_session):
    panel = AnalystPanel(demo_session)
    qtbot.addWidget(panel)
    box = panel.map.projection_box
    assert box.findData(AFTER_PREFIX + "pca") < 0  # nothing re-embedded yet
    before = panel.session.projection("pca").copy()
    rng = np.random.default_rng(3)
    after = rng.normal(size=demo_session.embeddings.shape).astype(np.float32)
    with pytest.raises(Exception, match="one row for each"):
        panel.set_after_embeddings(after[:-1], "after retraining")
    panel.set_after_embeddings(after, "after retraining", run="r", tag="final", result=RESULT)
    assert box.itemText(box.findData(AFTER_PREFIX + "pca")) == "PCA, after retraining"
    assert box.findData(AFTER_PREFIX + "tsne") >= 0
    note = panel.map.embedding_note
    assert not note.isHidden() and "detection encoder's space" in note.text() and "-50 %" in note.text()
    _choose(qtbot, panel, AFTER_PREFIX + "pca")  # computed in a job, never on the GUI thread
    shown = panel.session.projection()
    assert shown.shape == before.shape and not np.allclose(shown, before)
    assert "embedded by the encoder <b>after retraining</b> (embeddings r/final)" in note.text()
    assert "6 before, 3 after" in note.text()
    _choose(qtbot, panel, "pca")  # back to the detection's space
    assert np.allclose(panel.session.projection(), before) and "detection encoder's space" in note.text()


def test_a_reopened_workspace_shows_the_map_after_retraining(qtbot, window, tmp_path):
    from naviewer.gui.analyst_dock import AnalystDock
    from naviewer.workspace import Workspace

    path = folder_workspace(tmp_path, n=40, n_poison=5)
    rng = np.random.default_rng(0)
    with Workspace.open(path) as ws:
        n = ws.store.sample_count()
        detection = rng.normal(size=(n, 8)).astype(np.float32)
        final = rng.normal(size=(n, 8)).astype(np.float32)
        ws.save_embeddings("r", "emb", detection)
        ws.save_embeddings("r", "final", final)  # the retrained encoder's, saved by finetune_and_finish
        (ws.run_dir("r") / "finetune_result.json").write_text(json.dumps(
            {**RESULT, "embeddings": {"run": "r", "before": "review", "after": "final"}}), encoding="utf-8")
    dock = AnalystDock(window, path)
    try:
        panel = dock.panel
        # the pass's own space stays the detection's: "final" is never taken for the pass's embeddings
        assert np.allclose(panel.session.embeddings, detection)
        assert panel.finetune_gate.reason.text().startswith("Done earlier")
        box = panel.map.projection_box
        assert box.itemText(box.findData(AFTER_PREFIX + "pca")) == "PCA, after retraining"
        _choose(qtbot, panel, AFTER_PREFIX + "pca")
        assert "6 before, 3 after (-50 %" in panel.map.embedding_note.text()
        rows = [panel.finetune_gate.result.item(r, 0).text() for r in range(panel.finetune_gate.result.rowCount())]
        assert any(r.startswith("the removed samples' neighbourhood density") for r in rows)
    finally:
        dock.close()


def test_the_projection_box_is_wide_enough_for_the_after_choice(qtbot, demo_session):
    panel = AnalystPanel(demo_session)
    qtbot.addWidget(panel)
    panel.resize(1280, 700)
    panel.show()
    qtbot.waitExposed(panel)
    panel.set_after_embeddings(np.asarray(demo_session.embeddings), "after retraining")
    box = panel.map.projection_box
    box.setCurrentIndex(box.findData(AFTER_PREFIX + "pca"))
    qtbot.wait(50)
    text_width = box.fontMetrics().horizontalAdvance("PCA, after retraining")
    assert box.width() >= text_width  # the combo grew with its new choice: no "PCA, a…"
