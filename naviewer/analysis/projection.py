"""2-D projections of the embedding for the density map: PCA at once, t-SNE as a cached job."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np

from naviewer.errors import NaviewerError
from naviewer.jobs import JobContext, ensure_context

METHODS = ("pca", "tsne")


def _normalise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def pca(embeddings: np.ndarray, dims: int = 2) -> np.ndarray:
    """Top principal components of the L2-normalised embedding (eigh of the D x D covariance: fast for any N)."""
    x = _normalise(embeddings)
    if len(x) == 0:
        return np.zeros((0, dims), np.float32)
    x = x - x.mean(axis=0, keepdims=True)
    cov = (x.T @ x).astype(np.float64) / max(len(x) - 1, 1)
    values, vectors = np.linalg.eigh(cov)
    top = vectors[:, np.argsort(values)[::-1][:dims]]
    out = (x @ top.astype(np.float32)).astype(np.float32)
    if out.shape[1] < dims:
        out = np.pad(out, ((0, 0), (0, dims - out.shape[1])))
    # fix the sign so the picture does not flip between runs
    flip = np.sign(out[np.argmax(np.abs(out), axis=0), np.arange(dims)])
    return out * np.where(flip == 0, 1, flip)


# -- t-SNE, cancellable part-way ----------------------------------------------------------------
# scikit-learn's TSNE has no callback (its estimator callback API does not cover it in 1.9) and runs
# for tens of seconds to minutes, so a cancelled job would keep a core busy until the end. Its two
# long phases are therefore opened up: the nearest-neighbour search is done here in chunks (with
# ctx.check() between them) and handed over as a precomputed sparse graph, which TSNE accepts; and
# the gradient descent calls the KL objective once per iteration, looked up as a module attribute of
# sklearn.manifold._t_sne, where a thin wrapper runs the calling thread's hook (ctx.check() and
# progress). With the same PCA initialisation the result equals TSNE(init="pca") on the same input.
_HOOK = threading.local()
_HOOK_LOCK = threading.Lock()
_OBJECTIVES = ("_kl_divergence_bh", "_kl_divergence")
_TSNE_STEPS = 100  # progress scale: PCA 0-2, neighbours 2-10, iterations 10-100


def _install_iteration_hook() -> bool:
    """Wrap sklearn's t-SNE objectives once (per process); False if this sklearn has none to wrap."""
    from sklearn.manifold import _t_sne

    with _HOOK_LOCK:
        if getattr(_t_sne, "_naviewer_hooked", False):
            return True
        if not all(callable(getattr(_t_sne, name, None)) for name in _OBJECTIVES):
            return False
        for name in _OBJECTIVES:
            original = getattr(_t_sne, name)

            def wrapped(*args: Any, _original: Callable = original, **kwargs: Any) -> Any:
                hook = getattr(_HOOK, "hook", None)
                if hook is not None:
                    hook()
                return _original(*args, **kwargs)

            setattr(_t_sne, name, wrapped)
        _t_sne._naviewer_hooked = True
        return True


def _knn_graph(x: np.ndarray, k: int, ctx: JobContext, chunk: int = 2048) -> Any:
    """Sparse (n, n) graph of each point's k+1 nearest neighbours (itself included, as TSNE's own
    search returns them before dropping self), Euclidean distances, queried in cancellable chunks."""
    from scipy.sparse import csr_matrix
    from sklearn.neighbors import NearestNeighbors

    n = len(x)
    index = NearestNeighbors(n_neighbors=k + 1).fit(x)
    distances = np.empty((n, k + 1), np.float64)
    neighbours = np.empty((n, k + 1), np.int64)
    for start in range(0, n, chunk):
        ctx.check()
        stop = min(start + chunk, n)
        distances[start:stop], neighbours[start:stop] = index.kneighbors(x[start:stop])
        ctx.progress(2 + 8 * stop / n, _TSNE_STEPS, f"t-SNE: nearest neighbours {stop:,}/{n:,}")
    indptr = np.arange(0, n * (k + 1) + 1, k + 1)
    return csr_matrix((distances.ravel(), neighbours.ravel(), indptr), shape=(n, n))


def _pca_init(x: np.ndarray, seed: int) -> np.ndarray:
    """TSNE's init="pca": the first two components, scaled so PC1 has standard deviation 1e-4."""
    from sklearn.decomposition import PCA
    from sklearn.utils import check_random_state

    init = PCA(n_components=2, random_state=check_random_state(seed)).fit_transform(x).astype(np.float32, copy=False)
    return init / np.std(init[:, 0]) * 1e-4


def tsne(embeddings: np.ndarray, ctx: Optional[JobContext] = None, seed: int = 0, perplexity: float = 30.0,
         max_iter: int = 1000) -> np.ndarray:
    """t-SNE (scikit-learn, Barnes-Hut) after a 50-D PCA; slow, so run it as a job and cache the result.

    ``ctx.check()`` runs between neighbour-search chunks and before every gradient-descent iteration,
    so a cancel stops it within one iteration (JobCancelled) and nothing is returned or cached.
    """
    from sklearn.manifold import TSNE

    ctx = ensure_context(ctx)
    n = len(embeddings)
    if n < 5:
        raise NaviewerError(f"t-SNE needs at least 5 samples, got {n}")
    ctx.check()
    ctx.progress(0, _TSNE_STEPS, "t-SNE: PCA to 50 dimensions")
    reduced = pca(embeddings, dims=min(50, np.asarray(embeddings).shape[1]))
    perplexity = min(perplexity, (n - 1) / 3)
    graph = _knn_graph(reduced, min(n - 1, int(3.0 * perplexity + 1)), ctx)
    init = _pca_init(reduced, seed)
    ctx.check()
    hooked = _install_iteration_hook()
    calls = 0

    def on_iteration() -> None:
        nonlocal calls
        ctx.check()
        calls += 1
        if calls % 10 == 0:
            ctx.progress(10 + 90 * min(calls / max_iter, 1.0), _TSNE_STEPS, f"t-SNE on {n:,} points: iteration {calls}")

    model = TSNE(2, perplexity=perplexity, metric="precomputed", init=init, random_state=seed, max_iter=max_iter)
    _HOOK.hook = on_iteration if hooked else None
    try:
        result = model.fit_transform(graph)
    finally:
        _HOOK.hook = None
    ctx.check()
    ctx.progress(_TSNE_STEPS, _TSNE_STEPS, "t-SNE done")
    return np.asarray(result, dtype=np.float32)


def project(embeddings: np.ndarray, method: str = "pca", ctx: Optional[JobContext] = None, seed: int = 0) -> np.ndarray:
    if method == "pca":
        return pca(embeddings)
    if method == "tsne":
        return tsne(embeddings, ctx=ctx, seed=seed)
    raise NaviewerError(f"unknown projection {method!r}; expected one of {', '.join(METHODS)}")


def cached_projection(
    embeddings: np.ndarray,
    method: str,
    *,
    workspace: Any = None,
    run: Optional[str] = None,
    tag: Optional[str] = None,
    path: Optional[Path] = None,
    ctx: Optional[JobContext] = None,
    seed: int = 0,
) -> np.ndarray:
    """Load ``<tag>-<method>2d`` from the workspace's embeddings (or ``path``) or compute and save it."""
    if workspace is not None and run is not None and tag is not None:
        name = f"{tag}-{method}2d"
        target = Path(workspace.embeddings_path(run, name))
        if target.exists():
            cached = _cached(target)
            if cached is not None and cached.shape == (len(embeddings), 2):
                return cached
        result = project(embeddings, method, ctx=ctx, seed=seed)
        workspace.save_embeddings(run, name, result)
        return result
    if path is not None:
        path = Path(path)
        if path.exists():
            cached = _cached(path)
            if cached is not None and cached.shape == (len(embeddings), 2):
                return cached
        result = project(embeddings, method, ctx=ctx, seed=seed)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp.npy")
        np.save(tmp, result)
        tmp.replace(path)
        return result
    return project(embeddings, method, ctx=ctx, seed=seed)


def _cached(path: Path) -> "Optional[np.ndarray]":
    """A saved 2-D projection, or None when the file is damaged (it is computed again and written over)."""
    from naviewer.io import NPY_READ_ERRORS

    try:
        cached = np.load(path, allow_pickle=False)
    except NPY_READ_ERRORS:
        return None
    return cached if isinstance(cached, np.ndarray) and np.issubdtype(cached.dtype, np.number) else None
