from __future__ import annotations

import numpy as np

from naviewer.defense.anchors import draw_anchors
from naviewer.defense.config import DiftConfig
from naviewer.defense.pipeline import SCORE_KEYS, DiftHook, PosthocDetector, flagged_clusters
from naviewer.defense.synthetic import make_embeddings
from naviewer.jobs import JobContext, RecordingReporter


def test_posthoc_pass_fills_the_scores_contract(poisoned, poisoned_anchors, small_config):
    result = PosthocDetector(small_config).run(poisoned.features, poisoned_anchors, poisoned.poison)
    scores = result.scores()
    assert set(scores) == set(SCORE_KEYS)
    assert all(v.shape == (3000,) for v in scores.values())
    assert scores["rank"].dtype == np.int64 and scores["candidate"].dtype == bool
    assert scores["flagged"][poisoned.poison].all() and not scores["flagged"][poisoned_anchors.indices].any()
    assert result.metrics["final_recall"] == 1.0 and result.metrics["final_precision"] >= 0.9
    assert (scores["cluster"][scores["flagged"]] >= 0).all() and (scores["cluster"][~scores["flagged"]] == -1).all()
    assert result.clusters[0]["cluster"] == 0 and sum(c["size"] for c in result.clusters) == scores["flagged"].sum()
    assert not result.noop and result.settings["k"] == small_config.k


def test_posthoc_on_clean_data_is_a_noop(small_config):
    clean = make_embeddings(3000, 64, n_classes=10, intrinsic_dim=12, poison_fraction=0.0, seed=4)
    anchors = draw_anchors(clean.clean_labels, 10, seed=0)
    result = PosthocDetector(small_config).run(clean.features, anchors, clean.poison)
    assert result.noop and result.final_ids.size == 0 and not result.scores()["flagged"].any()
    # what to try next is said with the pass (the analyst panel's notice shows a pass's advice)
    assert any("patchsearch" in a and "crop_density" in a for a in result.advice)


def test_a_weak_encoders_pass_of_nothing_says_its_verdict_is_weak(poisoned, poisoned_anchors, small_config,
                                                                   monkeypatch):
    """Anchors a weak encoder separates only partly (58 %: a newcomer's 54 % kNN encoder) make "nothing flagged"
    weak evidence: said with a pass of nothing, not with a pass that flagged (session 23)."""
    from naviewer.defense import pipeline
    from naviewer.defense.sanity import SanityReport

    monkeypatch.setattr(pipeline, "sanity_of", lambda *a, **k: SanityReport(
        figures={"anchor_separation": 0.58, "anchor_chance": 0.2}))
    clean = make_embeddings(3000, 64, n_classes=10, intrinsic_dim=12, poison_fraction=0.0, seed=4)
    anchors = draw_anchors(clean.clean_labels, 10, seed=0)
    nothing = PosthocDetector(small_config).run(clean.features, anchors, clean.poison)
    assert nothing.noop and any("only partly" in a and "58%" in a for a in nothing.advice)
    flagged = PosthocDetector(small_config).run(poisoned.features, poisoned_anchors, poisoned.poison)
    assert flagged.final_ids.size and not any("only partly" in a for a in flagged.advice)


def test_a_pass_that_flags_something_gives_no_nothing_flagged_advice(poisoned, poisoned_anchors, small_config):
    from naviewer.defense.anchors import NOTHING_FLAGGED_ADVICE

    result = PosthocDetector(small_config).run(poisoned.features, poisoned_anchors, poisoned.poison)
    assert result.final_ids.size and NOTHING_FLAGGED_ADVICE not in result.advice


def test_clusters_are_components_ranked_by_density():
    neighbors = np.array([[1], [0], [3], [2], [0]])
    density = np.array([1.0, 1.0, 5.0, 5.0, 0.1])
    cluster, summary = flagged_clusters(np.array([0, 1, 2, 3]), neighbors, density)
    assert cluster.tolist() == [1, 1, 0, 0, -1]
    assert [s["size"] for s in summary] == [2, 2]


class FakeTrainer:
    """What DiftHook needs from the SSL Trainer: add_epoch_metrics, log_event, total_epochs."""

    def __init__(self, features: np.ndarray) -> None:
        self.features = features
        self.total_epochs = 30
        self.epoch_metrics: dict[int, dict] = {}
        self.events: list[tuple[str, dict]] = []
        self._current: dict = {}

    def add_epoch_metrics(self, **values):
        self._current.update(values)

    def log_event(self, event, **data):
        self.events.append((event, data))


def _run(hook: DiftHook, trainer: FakeTrainer, epochs: int, jitter: float = 0.0) -> None:
    rng = np.random.default_rng(0)
    base = trainer.features
    for epoch in range(epochs):
        trainer.features = base + rng.normal(size=base.shape).astype(np.float32) * jitter
        trainer._current = {}
        hook.after_epoch(trainer, epoch)
        trainer.epoch_metrics[epoch] = dict(trainer._current)


def test_hook_detects_stabilises_and_calls_the_review_gate(poisoned, poisoned_anchors, small_config):
    config = DiftConfig(**{**small_config.to_dict(), "start_epoch": 2})
    seen = []
    hook = DiftHook(poisoned_anchors, config, embed_fn=lambda t: t.features, on_stable=seen.append,
                    ground_truth=poisoned.poison)
    trainer = FakeTrainer(poisoned.features.copy())
    _run(hook, trainer, 8, jitter=0.002)
    assert trainer.epoch_metrics[0] == {} and trainer.epoch_metrics[1] == {}
    m = trainer.epoch_metrics[2]
    assert m["dift_candidates"] == 30 and m["dift_detected"] == 30 and m["dift_precision"] == 1.0
    assert trainer.epoch_metrics[4]["dift_stable"] is True
    assert trainer.epoch_metrics[5] == {}  # detection stopped
    assert len(seen) == 1 and seen[0] is hook.result and not hook.result.noop
    assert set(hook.result.final_ids) >= set(np.flatnonzero(poisoned.poison))
    assert [e for e, _ in trainer.events] == ["dift_stop", "dift_decision"]
    assert trainer.events[0][1]["reason"] == "stable"
    # the pass's own figures after label spreading ride on the stop, for a monitor that only reads metrics.jsonl
    stop = trainer.events[0][1]
    assert stop["flagged"] == hook.result.final_ids.size and stop["final_recall"] == 1.0
    assert stop["final_precision"] == hook.result.summary()["final_precision"]
    assert [h["detected"] for h in hook.result.history] == [30, 30, 30]


def test_hook_without_trainer_metrics_api_reports_through_ctx(small_config):
    clean = make_embeddings(2000, 32, n_classes=8, intrinsic_dim=8, poison_fraction=0.0, seed=3)
    anchors = draw_anchors(clean.clean_labels, 10, seed=0)
    reporter = RecordingReporter()
    config = DiftConfig(**{**small_config.to_dict(), "start_epoch": 0, "max_detection_epochs": 2})
    hook = DiftHook(anchors, config, embed_fn=lambda t: clean.features, ctx=JobContext(reporter))

    class Bare:
        pass

    for epoch in range(4):
        hook.after_epoch(Bare(), epoch)
    assert [m["dift_detected"] for m in reporter.metrics] == [0, 0, 0]
    stops = [d for kind, d in reporter.events if kind == "dift_stop"]
    assert len(stops) == 1 and stops[0]["noop"] and stops[0]["reason"] == "cap"


def test_save_detection_writes_a_pass_to_a_store(poisoned, poisoned_anchors, small_config):
    from naviewer.defense.pipeline import save_detection

    class FakeStore:
        def add_detection_pass(self, method, scores, settings, run=None, epoch=None):
            self.args = (method, scores, settings, run, epoch)
            return 7

    result = PosthocDetector(small_config).run(poisoned.features, poisoned_anchors)
    store = FakeStore()
    assert save_detection(store, result, run="r1", epoch=3) == 7
    method, scores, settings, run, epoch = store.args
    assert method == "dift" and run == "r1" and epoch == 3
    assert set(SCORE_KEYS) <= set(scores) and scores["buffer"].sum() == result.buffer_ids.size
    assert settings["k"] == small_config.k and settings["summary"]["flagged"] == result.final_ids.size


def test_posthoc_reads_memory_mapped_float16_embeddings(poisoned, poisoned_anchors, small_config, tmp_path):
    path = tmp_path / "emb.npy"
    np.save(path, poisoned.features.astype(np.float16))
    mapped = np.load(path, mmap_mode="r")
    result = PosthocDetector(small_config).run(mapped, poisoned_anchors, poisoned.poison)
    assert result.metrics["final_recall"] == 1.0


def _finish_detection(hook, trainer, epochs=8):
    _run(hook, trainer, epochs, jitter=0.002)


def test_review_gate_auto_accepts_and_pause_waits_for_the_analyst(poisoned, poisoned_anchors, small_config):
    import threading

    from naviewer.defense.review import ReviewGate

    auto = DiftConfig(**{**small_config.to_dict(), "start_epoch": 2, "review": "auto"})
    hook = DiftHook(poisoned_anchors, auto, embed_fn=lambda t: t.features)
    trainer = FakeTrainer(poisoned.features.copy())
    _finish_detection(hook, trainer)
    assert hook.decision == "accepted" and np.array_equal(hook.accepted, hook.result.final_ids)
    assert [e for e, _ in trainer.events] == ["dift_stop", "dift_decision"]

    # pause: the job waits at THE review gate (no pausing of the job itself)
    pause = DiftConfig(**{**small_config.to_dict(), "start_epoch": 2, "review": "pause"})
    ctx = JobContext()
    gate = ReviewGate()
    hook = DiftHook(poisoned_anchors, pause, embed_fn=lambda t: t.features, ctx=ctx, gate=gate)
    trainer = FakeTrainer(poisoned.features.copy())

    def analyst():
        while not gate.waiting:
            threading.Event().wait(0.01)
        hook.accept(np.flatnonzero(poisoned.poison)[:5])  # the analyst keeps only five

    thread = threading.Thread(target=analyst)
    thread.start()
    _finish_detection(hook, trainer)
    thread.join(5)
    assert not ctx.paused
    assert [e for e, _ in trainer.events] == ["dift_stop", "dift_review", "dift_decision"]
    assert hook.decision == "accepted" and hook.accepted.size == 5
    assert trainer.events[-1][1]["decision"] == "accepted" and trainer.events[-1][1]["accepted"] == 5

    hook = DiftHook(poisoned_anchors, pause, embed_fn=lambda t: t.features)
    hook.reject()  # decided before the stop: no wait
    trainer = FakeTrainer(poisoned.features.copy())
    _finish_detection(hook, trainer)
    assert hook.decision == "rejected" and hook.accepted.size == 0


def test_pause_without_a_gate_stops_and_never_claims_acceptance(poisoned, poisoned_anchors, small_config):
    pause = DiftConfig(**{**small_config.to_dict(), "start_epoch": 2, "review": "pause"})
    hook = DiftHook(poisoned_anchors, pause, embed_fn=lambda t: t.features, mitigate=lambda t, ids: 1 / 0)
    trainer = FakeTrainer(poisoned.features.copy())
    stops = []
    trainer.request_stop = stops.append
    _finish_detection(hook, trainer)
    assert stops == ["dift_review"] and hook.decision == "awaiting_review" and hook.accepted.size == 0
    decisions = [d for e, d in trainer.events if e == "dift_decision"]
    assert [d["decision"] for d in decisions] == ["awaiting_review"]


def test_the_application_gate_decides_through_on_stable(poisoned, poisoned_anchors, small_config):
    from naviewer.defense.review import ReviewDecision

    config = DiftConfig(**{**small_config.to_dict(), "start_epoch": 2, "review": "auto"})
    acted = []
    hook = DiftHook(poisoned_anchors, config, embed_fn=lambda t: t.features,
                    on_stable=lambda result: ReviewDecision("rejected", reviewer="analyst"),
                    mitigate=lambda trainer, ids: acted.append(ids))
    trainer = FakeTrainer(poisoned.features.copy())
    _finish_detection(hook, trainer)
    # review "auto" in the config does not override what the application's gate said
    assert hook.decision == "rejected" and not acted
    assert [d["decision"] for e, d in trainer.events if e == "dift_decision"] == ["rejected"]
    hook = DiftHook(poisoned_anchors, config, embed_fn=lambda t: t.features,
                    on_stable=lambda result: ReviewDecision("accepted", [1, 2, 3], "analyst"),
                    mitigate=lambda trainer, ids: acted.append(ids) or "done")
    _finish_detection(hook, FakeTrainer(poisoned.features.copy()))
    assert hook.decision == "accepted" and acted[0].tolist() == [1, 2, 3] and hook.mitigation == "done"
