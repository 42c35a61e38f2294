"""The session over a real DIFT pass stored in a real workspace (defense -> store -> analysis)."""

from __future__ import annotations

import numpy as np

from naviewer.analysis import AnalysisSession


def test_session_reads_a_real_dift_pass(tmp_path) -> None:
    from naviewer.data.base import ArrayDataset
    from naviewer.defense.anchors import draw_anchors
    from naviewer.defense.pipeline import PosthocDetector
    from naviewer.defense.synthetic import default_anchors_mask, make_embeddings
    from naviewer.workspace import Workspace

    emb = make_embeddings(n=3000, dim=64, seed=1, poison_fraction=0.02)
    anchors = draw_anchors(emb.clean_labels, 10, seed=0, candidates=default_anchors_mask(emb.poison))
    result = PosthocDetector().run(emb.features, anchors)
    images = np.zeros((3000, 2, 2, 3), np.uint8)
    ws = Workspace.create(tmp_path / "ws", ArrayDataset(images, emb.labels, [f"c{i}" for i in range(10)]))
    settings = {**result.settings, "detection": result.detection.summary()}
    ws.store.add_detection_pass("dift", result.scores(), settings, run="r", epoch=0)

    s = AnalysisSession.from_workspace(ws, embeddings=emb.features, reviewer="tester")
    top = s.clusters()[0]
    assert top.size >= 0.8 * emb.poison.sum() and emb.poison[top.members].all()
    assert np.array_equal(np.sort(top.members), np.flatnonzero(result.scores()["cluster"] == 0))
    gmm = s.gmm()
    assert gmm is not None and gmm["means"][0] < gmm["split"] < gmm["means"][1]
    recorded = sorted(result.detection.summary()["gmm_means"])
    assert np.allclose(gmm["means"], recorded)
    s.confirm(top.members)
    assert s.review_counts()["confirmed"] == top.size


def test_figure3_history_comes_from_the_single_in_training_pass(tmp_path) -> None:
    """In-training DIFT saves one pass at the stop; the per-epoch buffers in its settings feed Figure 3."""
    import numpy as np

    from naviewer.analysis.session import AnalysisSession
    from naviewer.data.base import ArrayDataset
    from naviewer.workspace import Workspace

    n = 50
    ws = Workspace.create(tmp_path / "ws", ArrayDataset(np.zeros((n, 4, 4, 3), np.uint8), np.zeros(n, int), ["a"]))
    flagged = np.zeros(n, bool)
    flagged[:8] = True
    history = [{"epoch": 3, "detected": 12, "buffer_ids": list(range(12))},
               {"epoch": 4, "detected": 8, "buffer_ids": list(range(8))}]
    ws.store.add_detection_pass("dift", {"flagged": flagged, "density": np.ones(n)}, {"history": history},
                                run="r", epoch=4)
    session = AnalysisSession.from_workspace(ws, reviewer="tester")
    epochs, counts, _ = session.detections_per_epoch()
    assert epochs.tolist() == [3, 4] and counts.tolist() == [12, 8]
    ws.close()
