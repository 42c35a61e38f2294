"""2-D projections of the embedding for the density map: PCA at once, t-SNE as a cached job."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

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


def tsne(embeddings: np.ndarray, ctx: Optional[JobContext] = None, seed: int = 0, perplexity: float = 30.0) -> np.ndarray:
    """t-SNE (scikit-learn) after a 50-D PCA; slow, so run it as a job and cache the result."""
    from sklearn.manifold import TSNE

    ctx = ensure_context(ctx)
    n = len(embeddings)
    if n < 5:
        raise NaviewerError(f"t-SNE needs at least 5 samples, got {n}")
    ctx.check()
    ctx.progress(0, 3, "t-SNE: PCA to 50 dimensions")
    reduced = pca(embeddings, dims=min(50, np.asarray(embeddings).shape[1]))
    ctx.check()
    ctx.progress(1, 3, f"t-SNE on {n:,} points")
    result = TSNE(2, perplexity=min(perplexity, (n - 1) / 3), init="pca", random_state=seed).fit_transform(reduced)
    ctx.check()
    ctx.progress(3, 3, "t-SNE done")
    return result.astype(np.float32)


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
            cached = np.load(target)
            if cached.shape == (len(embeddings), 2):
                return cached
        result = project(embeddings, method, ctx=ctx, seed=seed)
        workspace.save_embeddings(run, name, result)
        return result
    if path is not None:
        path = Path(path)
        if path.exists():
            cached = np.load(path)
            if cached.shape == (len(embeddings), 2):
                return cached
        result = project(embeddings, method, ctx=ctx, seed=seed)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp.npy")
        np.save(tmp, result)
        tmp.replace(path)
        return result
    return project(embeddings, method, ctx=ctx, seed=seed)
