"""The Qt-free analysis session: selection, review through the store, clusters, projections."""

from __future__ import annotations

import numpy as np
import pytest

from naviewer.analysis import AnalysisSession, MemoryReviewStore
from naviewer.analysis.demo import make_demo_session
from naviewer.errors import NaviewerError


@pytest.fixture(scope="module")
def demo() -> AnalysisSession:
    return make_demo_session(1500, 50, seed=1)


def test_planted_cluster_ranks_first(demo: AnalysisSession) -> None:
    clusters = demo.clusters()
    poison = demo.truth_poison_mask()
    top = clusters[0]
    assert top.size >= 40
    assert poison[top.members].mean() > 0.95
    assert sum(c.size for c in clusters) == int(demo.flagged_mask.sum())
    assert top.composition and sum(n for _, n in top.composition) == top.size
    assert set(top.representatives) <= set(top.members)


def test_suspicion_order_puts_flags_first(demo: AnalysisSession) -> None:
    order = demo.suspicion_order()
    n_flag = int(demo.flagged_mask.sum())
    assert sorted(order.tolist()) == list(range(demo.n))
    assert demo.flagged_mask[order[:n_flag]].all()
    assert not demo.flagged_mask[order[n_flag:]].any()


def test_selection_events_and_validation() -> None:
    s = make_demo_session(300, 10, seed=2)
    seen = []
    s.selection_changed.connect(lambda ids, src: seen.append((ids.tolist(), src)))
    s.set_selection([5, 3, 3], source="map")
    s.set_selection([3, 5], source="again")  # unchanged: no event
    assert seen == [([3, 5], "map")]
    with pytest.raises(NaviewerError):
        s.set_selection([10_000])


def test_review_undo_and_next_unreviewed() -> None:
    s = make_demo_session(300, 10, seed=3)
    changes = []
    s.review_changed.connect(lambda ids: changes.append(ids.tolist()))
    first = s.next_unreviewed()
    assert first == int(s.review_queue()[0])
    assert not s.can_undo()
    s.confirm([first])
    assert s.can_undo()
    assert s.state_of(first) == "confirmed"
    assert s.next_unreviewed(after=first) != first
    s.reject(s.review_queue()[1:4])
    assert s.review_counts()["rejected"] == 3
    assert s.undo().tolist() == sorted(s.review_queue()[1:4].tolist())
    assert s.review_counts()["rejected"] == 0 and s.state_of(first) == "confirmed"
    assert len(changes) == 3
    log = s.store.audit_log()
    assert [row["new"] for row in log][:1] == ["confirmed"]


def test_next_unreviewed_wraps_and_ends() -> None:
    s = make_demo_session(200, 8, seed=4)
    queue = s.review_queue()
    s.later(queue[:-1])
    assert s.next_unreviewed(after=int(queue[-1])) == int(queue[-1])
    s.confirm(queue[-1:])
    assert s.next_unreviewed() is None


def test_projection_pca_and_gmm(demo: AnalysisSession) -> None:
    points = demo.projection()
    assert points.shape == (demo.n, 2) and np.isfinite(points).all()
    gmm = demo.gmm()
    assert gmm is not None and gmm["means"][0] < gmm["split"] < gmm["means"][1]
    epochs, counts, sel = demo.detections_per_epoch()
    assert len(epochs) == len(counts) == len(sel) > 0


def test_session_without_embeddings_or_images() -> None:
    n = 50
    scores = {"density": np.linspace(1, 0, n), "flagged": np.arange(n) < 5}
    s = AnalysisSession(scores, np.zeros(n, np.int64), ["a"], store=MemoryReviewStore(n))
    assert s.density_rank()[0] == 0
    assert s.projection().shape == (n, 2)
    assert len(s.clusters()) == 1 and s.clusters()[0].size == 5
    assert s.neighbours(0).size == 0 and s.image(0) is None
    with pytest.raises(NaviewerError):
        AnalysisSession({"density": np.zeros(3)}, np.zeros(4, np.int64))


def test_session_from_real_workspace(tmp_path) -> None:
    from naviewer.data.base import ArrayDataset
    from naviewer.workspace import Workspace

    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, size=(40, 8, 8, 3), dtype=np.uint8)
    ws = Workspace.create(tmp_path / "ws", ArrayDataset(images, rng.integers(0, 3, 40), ["a", "b", "c"]))
    flagged = np.zeros(40, bool)
    flagged[:6] = True
    for epoch in range(3):
        ws.store.add_detection_pass("dift", {"density": rng.random(40), "flagged": flagged}, {"k": 5}, run="r", epoch=epoch)
    s = AnalysisSession.from_workspace(ws, images=images, reviewer="alice")
    assert s.class_names == ["a", "b", "c"] and len(s.history) == 3
    s.confirm([0, 1])
    s.reject([2])
    reopened = AnalysisSession.from_workspace(Workspace.open(tmp_path / "ws"))
    assert reopened.state_of(0) == "confirmed" and reopened.state_of(2) == "rejected"
    s.undo()
    assert AnalysisSession.from_workspace(Workspace.open(tmp_path / "ws")).state_of(2) == "unreviewed"


def test_given_projection_is_used() -> None:
    pts = np.arange(20, dtype=np.float32).reshape(10, 2)
    s = AnalysisSession({"density": np.ones(10)}, np.zeros(10, np.int64), ["a"], projection=pts)
    assert np.array_equal(s.projection(), pts)
    with pytest.raises(NaviewerError):
        s.set_projection(np.zeros((3, 2)))


def test_cached_projection_writes_and_reuses(tmp_path) -> None:
    from naviewer.analysis.projection import cached_projection

    emb = np.random.default_rng(0).normal(size=(40, 8)).astype(np.float32)
    path = tmp_path / "p" / "pca.npy"
    first = cached_projection(emb, "pca", path=path)
    assert path.exists()
    np.save(path, first * 0 + 7)
    assert (cached_projection(emb, "pca", path=path) == 7).all()  # read from the cache
    path.write_bytes(b"\x93NUMPY\x01\x00" + b"garbage")  # damaged: computed again, not a traceback (session 34)
    assert np.allclose(cached_projection(emb, "pca", path=path), first)
    with pytest.raises(NaviewerError):
        cached_projection(emb, "umap")


def test_gmm_recorded_by_dift_is_used() -> None:
    n = 200
    rng = np.random.default_rng(0)
    cand = np.zeros(n, bool)
    cand[:40] = True
    md = np.full(n, np.nan)
    md[:40] = np.r_[rng.normal(0.5, 0.02, 30), rng.normal(0.9, 0.02, 10)]
    post = np.full(n, np.nan)
    post[:40] = np.r_[np.zeros(30), np.ones(10)]
    settings = {"k": 10, "summary": {"gmm_means": [0.9, 0.5], "gmm_stds": [0.02, 0.02]}}
    s = AnalysisSession({"candidate": cand, "mindist": md, "posterior": post}, np.zeros(n, np.int64), ["a"], settings=settings)
    gmm = s.gmm()
    assert gmm["means"].tolist() == [0.5, 0.9] and gmm["weights"].tolist() == pytest.approx([0.75, 0.25])
    assert 0.5 < gmm["split"] < 0.9


def test_a_decision_that_changes_nothing_records_nothing() -> None:
    """Rejecting 57 already-rejected samples added an empty batch, which Undo then reverted with no visible effect."""
    s = make_demo_session(200, 8, seed=5)
    queue = s.review_queue()
    s.reject(queue[:3])
    before = len(s.store.audit_log())
    changes = []
    s.review_changed.connect(lambda ids: changes.append(ids.tolist()))
    assert s.reject(queue[:3]).tolist() == sorted(queue[:3].tolist())  # every id asked for comes back
    assert len(s.store.audit_log()) == before and changes == []
    s.reject(queue[:4])  # one new: one row, one event
    assert len(s.store.audit_log()) == before + 1 and changes == [[int(queue[3])]]


def test_another_detectors_flags_come_highest_score_first() -> None:
    """A patchsearch pass (score and flags, no density) listed its flags in id order under "suspicion" (a newcomer,
    session 22): they come highest score first, NaN (never scored) last."""
    from naviewer.analysis.session import AnalysisSession

    score = np.array([0.1, 0.9, np.nan, 0.5, 0.7, 0.2])
    flagged = np.array([True, True, False, True, False, False])
    s = AnalysisSession({"score": score, "flagged": flagged}, labels=np.zeros(6, np.int64))
    assert s.suspicion_order().tolist() == [1, 3, 0, 4, 5, 2]
