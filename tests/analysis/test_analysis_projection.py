"""t-SNE: same result as scikit-learn's TSNE(init="pca"), progress per iteration, cancellable part-way."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from naviewer.analysis.projection import cached_projection, pca, tsne
from naviewer.errors import JobCancelled
from naviewer.jobs import JobContext, RecordingReporter


def _blobs(per: int, dim: int = 32, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.normal(4.0 * c, 1.0, (per, dim)) for c in range(3)]).astype(np.float32)


def test_tsne_equals_sklearn_with_pca_init_and_reports_iterations() -> None:
    from sklearn.manifold import TSNE

    x = _blobs(20)
    reporter = RecordingReporter()
    ours = tsne(x, JobContext(reporter), seed=3, perplexity=10, max_iter=250)
    theirs = TSNE(2, perplexity=10, init="pca", random_state=3, max_iter=250).fit_transform(pca(x, dims=32))
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-5)
    messages = [m for _, _, m in reporter.progresses]
    assert any("nearest neighbours" in m for m in messages) and any("iteration 100" in m for m in messages)
    done = [d for d, _, _ in reporter.progresses]
    assert done == sorted(done) and reporter.progresses[-1][:2] == (100, 100)


def test_cancel_mid_run_returns_quickly_and_caches_nothing(tmp_path) -> None:
    x = _blobs(150)
    path = tmp_path / "cache" / "final-tsne2d.npy"
    started = threading.Event()

    class Watch(RecordingReporter):
        def progress(self, done, total, message):  # noqa: ANN001
            super().progress(done, total, message)
            if "iteration 20" in message:
                started.set()

    ctx = JobContext(Watch())
    outcome: dict[str, object] = {}

    def work() -> None:
        try:
            outcome["result"] = cached_projection(x, "tsne", path=path, ctx=ctx)
        except BaseException as exc:  # noqa: BLE001 - the test inspects it
            outcome["error"] = exc
        outcome["ended"] = time.perf_counter()

    worker = threading.Thread(target=work, daemon=True)
    worker.start()
    assert started.wait(120), "t-SNE never reached its gradient descent"
    cancelled_at = time.perf_counter()
    ctx.cancel()
    worker.join(30)
    assert not worker.is_alive()
    assert isinstance(outcome.get("error"), JobCancelled) and "result" not in outcome
    assert outcome["ended"] - cancelled_at < 2.0
    assert not path.exists() and not (path.parent.exists() and any(path.parent.iterdir()))
    # the hook is per thread and cleared: a later run in this thread is unaffected
    assert tsne(_blobs(10), seed=0, perplexity=5, max_iter=250).shape == (30, 2)


def test_cancel_during_neighbour_search() -> None:
    ctx = JobContext()

    class CancelAtNeighbours(RecordingReporter):
        def progress(self, done, total, message):  # noqa: ANN001
            super().progress(done, total, message)
            if "nearest neighbours" in message:
                ctx.cancel()

    ctx.reporter = CancelAtNeighbours()
    with pytest.raises(JobCancelled):
        tsne(_blobs(40), ctx, perplexity=5)
    assert not any("iteration" in m for _, _, m in ctx.reporter.progresses)
