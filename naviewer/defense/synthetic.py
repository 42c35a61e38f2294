"""Synthetic embeddings with the structure of real ones, for tests and benchmarks.

Real backbone embeddings are not isotropic Gaussians (the worst case for HNSW): classes form
clusters on a low-dimensional manifold, embedded in 512-d with some noise, post-ReLU, and a
backdoor's poisons form one extra *tight* cluster far from every class (the premise of DIFT, docs/dift.md). A few benign
near-duplicate groups make the density ranking non-trivial (benign intruders among the candidates).
"""

from __future__ import annotations

from dataclasses import dataclass
import numpy as np


@dataclass
class SyntheticEmbeddings:
    features: np.ndarray        # (N, D) float32, raw (not normalised)
    labels: np.ndarray          # (N,) int64 true class of every sample (poisons: the target class)
    poison: np.ndarray          # (N,) bool ground truth
    clean_labels: np.ndarray    # (N,) int64 labels before poisoning


def make_embeddings(n: int = 50000, dim: int = 512, n_classes: int = 10, intrinsic_dim: int = 16,
                    poison_fraction: float = 0.01, poison_spread: float = 0.08, class_spread: float = 0.45,
                    noise: float = 0.05, duplicate_groups: int = 0, duplicate_size: int = 5,
                    seed: int = 0, relu: bool = True, target_class: int = 0,
                    dtype=np.float32) -> SyntheticEmbeddings:
    """Clustered mixture: ``n_classes`` latent Gaussian classes in ``intrinsic_dim`` dims, projected
    linearly to ``dim`` dims, plus isotropic noise; a ``poison_fraction`` share of samples sits in one
    tight cluster (``poison_spread`` relative to class spread) at a fresh latent location."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(n_classes + 1, intrinsic_dim)).astype(np.float64)
    centers *= 2.0 / np.sqrt(2.0)  # class centers ~2 units apart in latent space
    labels = rng.integers(0, n_classes, size=n).astype(np.int64)
    latent = centers[labels] + rng.normal(size=(n, intrinsic_dim)) * class_spread
    n_poison = int(round(poison_fraction * n))
    poison = np.zeros(n, dtype=bool)
    if n_poison:
        ids = rng.choice(n, size=n_poison, replace=False)
        poison[ids] = True
        latent[ids] = centers[n_classes] + rng.normal(size=(n_poison, intrinsic_dim)) * class_spread * poison_spread
    clean_labels = labels.copy()
    labels[poison] = target_class
    if duplicate_groups:
        benign = np.flatnonzero(~poison)
        heads = rng.choice(benign, size=duplicate_groups, replace=False)
        free = np.setdiff1d(benign, heads)
        members = rng.choice(free, size=(duplicate_groups, duplicate_size - 1), replace=False)
        for head, group in zip(heads, members):
            latent[group] = latent[head] + rng.normal(size=(group.size, intrinsic_dim)) * class_spread * 0.02
            labels[group] = labels[head]
            clean_labels[group] = clean_labels[head]
    mix = rng.normal(size=(intrinsic_dim, dim)) / np.sqrt(intrinsic_dim)
    out = np.empty((n, dim), dtype=dtype)
    step = 65536
    for start in range(0, n, step):
        block = latent[start:start + step] @ mix + rng.normal(size=(min(step, n - start), dim)) * noise
        block += 0.5  # shift so the ReLU keeps most of the signal, like post-ReLU avg-pool features
        out[start:start + step] = np.maximum(block, 0.0) if relu else block
    return SyntheticEmbeddings(out, labels, poison, clean_labels)


def planted_cluster(n: int = 2000, dim: int = 32, cluster: int = 40, seed: int = 0,
                    spread: float = 0.01) -> tuple[np.ndarray, np.ndarray]:
    """Small uniform-ish cloud with one very tight cluster: (features, cluster mask)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, dim)).astype(np.float32)
    mask = np.zeros(n, dtype=bool)
    ids = rng.choice(n, size=cluster, replace=False)
    mask[ids] = True
    x[ids] = rng.normal(size=dim).astype(np.float32) * 2 + rng.normal(size=(cluster, dim)).astype(np.float32) * spread
    return x, mask


def default_anchors_mask(poison: np.ndarray) -> np.ndarray:
    """Samples an anchor may be drawn from: everything that is not a poison."""
    return np.flatnonzero(~np.asarray(poison, dtype=bool))

