"""Synthetic embeddings written block by block to a memory-mapped ``.npy`` (``bench detect --mmap-dir``).

The same structure as :func:`naviewer.defense.synthetic.make_embeddings` (classes on a
low-dimensional manifold projected to D dims + noise, post-ReLU, benign near-duplicate groups, a
planted tight poison cluster), but generated in blocks of rows, each from its own seeded generator,
so 10M x 128 (5.1 GB of float32) never sits in RAM: only the per-sample labels (N x 17 bytes) do.
The files are cached by their settings (``meta.json``) and written under a temporary name first, so
a killed run regenerates nothing that is complete and trusts nothing that is not.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

BLOCK = 1 << 18


@dataclass
class MappedEmbeddings:
    features: np.ndarray        # (N, D) np.memmap, read-only
    labels: np.ndarray
    poison: np.ndarray
    clean_labels: np.ndarray
    path: Path


def mapped_embeddings(directory, n: int, dim: int, n_classes: int = 20, intrinsic_dim: int = 16,
                      poison_fraction: float = 0.01, poison_spread: float = 0.15, class_spread: float = 0.45,
                      noise: float = 0.05, duplicate_groups: int = 0, duplicate_size: int = 5, seed: int = 0,
                      dtype: str = "float32", target_class: int = 0) -> MappedEmbeddings:
    """The cached data set with these settings under ``directory`` (generated when missing)."""
    settings = {"n": n, "dim": dim, "n_classes": n_classes, "intrinsic_dim": intrinsic_dim,
                "poison_fraction": poison_fraction, "poison_spread": poison_spread, "class_spread": class_spread,
                "noise": noise, "duplicate_groups": duplicate_groups, "duplicate_size": duplicate_size,
                "seed": seed, "dtype": dtype, "target_class": target_class, "version": 1}
    key = f"synth_{n}x{dim}_{dtype}_s{seed}_{abs(hash(json.dumps(settings, sort_keys=True))) % 10**8:08d}"
    # hash() of a str is salted per process: name by a stable digest instead
    import hashlib

    key = f"synth_{n}x{dim}_{dtype}_s{seed}_" + hashlib.sha1(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:10]
    out = Path(directory) / key
    if not (out / "meta.json").exists():
        _generate(out, settings)
    return MappedEmbeddings(features=np.load(out / "features.npy", mmap_mode="r"),
                            labels=np.load(out / "labels.npy"), poison=np.load(out / "poison.npy"),
                            clean_labels=np.load(out / "clean_labels.npy"), path=out)


def _generate(out: Path, s: dict) -> None:
    n, dim, idim = s["n"], s["dim"], s["intrinsic_dim"]
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(s["seed"])
    centers = rng.normal(size=(s["n_classes"] + 1, idim)) * (2.0 / np.sqrt(2.0))
    mix = rng.normal(size=(idim, dim)) / np.sqrt(idim)
    clean = rng.integers(0, s["n_classes"], size=n).astype(np.int64)
    poison = np.zeros(n, dtype=bool)
    n_poison = int(round(s["poison_fraction"] * n))
    if n_poison:
        poison[rng.choice(n, size=n_poison, replace=False)] = True
    labels = clean.copy()
    labels[poison] = s["target_class"]
    group = np.full(n, -1, dtype=np.int64)        # near-duplicate group of a row (-1: none)
    head_latent = np.empty((0, idim))
    if s["duplicate_groups"]:
        benign = np.flatnonzero(~poison)
        picked = rng.choice(benign, size=(s["duplicate_groups"], s["duplicate_size"]), replace=False)
        heads = picked[:, 0]
        head_latent = centers[clean[heads]] + rng.normal(size=(heads.size, idim)) * s["class_spread"]
        for column in range(1, picked.shape[1]):
            clean[picked[:, column]] = clean[heads]
            labels[picked[:, column]] = labels[heads]
        group[picked.ravel()] = np.repeat(np.arange(heads.size), picked.shape[1])
    tmp = out / "features.tmp.npy"
    features = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.dtype(s["dtype"]), shape=(n, dim))
    for block, start in enumerate(range(0, n, BLOCK)):
        stop = min(n, start + BLOCK)
        brng = np.random.default_rng([s["seed"], 1, block])
        rows = slice(start, stop)
        jitter = brng.normal(size=(stop - start, idim))
        latent = centers[clean[rows]] + jitter * s["class_spread"]
        p = poison[rows]
        latent[p] = centers[s["n_classes"]] + jitter[p] * s["class_spread"] * s["poison_spread"]
        g = group[rows]
        dup = g >= 0
        latent[dup] = head_latent[g[dup]] + jitter[dup] * s["class_spread"] * 0.02
        x = latent @ mix + brng.normal(size=(stop - start, dim)) * s["noise"] + 0.5
        features[rows] = np.maximum(x, 0.0)
    features.flush()
    del features
    for name, array in (("labels", labels), ("poison", poison), ("clean_labels", clean)):
        np.save(out / f"{name}.npy", array)
    os.replace(tmp, out / "features.npy")
    (out / "meta.json").write_text(json.dumps(s, indent=1))
