"""Makers of tiny datasets in every supported format (CIFAR pickles, PNG trees)."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image


def cifar_rows(images: np.ndarray) -> np.ndarray:
    """(N, 32, 32, 3) -> the channel-major (N, 3072) rows of the CIFAR files."""
    return np.ascontiguousarray(images.transpose(0, 3, 1, 2).reshape(len(images), -1))


def write_pickle(path: Path, obj: object) -> Path:
    with open(path, "wb") as handle:
        pickle.dump(obj, handle, protocol=2)
    return path


def make_cifar10(
    root: Path, per_batch: int = 6, batches: Sequence[int] = (1, 2), seed: int = 0, num_classes: int = 10
) -> tuple[Path, dict[str, tuple[np.ndarray, np.ndarray]]]:
    """A small ``cifar-10-batches-py`` under ``root``; returns (folder, {file: (images, labels)})."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    names = [b"airplane", b"automobile", b"bird", b"cat", b"deer", b"dog", b"frog", b"horse", b"ship", b"truck"]
    write_pickle(folder / "batches.meta", {b"label_names": names[:num_classes], b"num_cases_per_batch": per_batch})
    content = {}
    for name in [f"data_batch_{b}" for b in batches] + ["test_batch"]:
        images = rng.integers(0, 256, size=(per_batch, 32, 32, 3), dtype=np.uint8)
        labels = rng.integers(0, num_classes, size=per_batch)
        write_pickle(
            folder / name,
            {
                b"batch_label": name.encode(),
                b"labels": [int(v) for v in labels],
                b"data": cifar_rows(images),
                b"filenames": [f"img_{i}.png".encode() for i in range(per_batch)],
            },
        )
        content[name] = (images, labels)
    return folder, content


def make_cifar100(root: Path, n: int = 8, seed: int = 1) -> tuple[Path, dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]]:
    rng = np.random.default_rng(seed)
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    write_pickle(
        folder / "meta",
        {
            b"fine_label_names": [f"fine{i}".encode() for i in range(100)],
            b"coarse_label_names": [f"coarse{i}".encode() for i in range(20)],
        },
    )
    content = {}
    for split in ("train", "test"):
        images = rng.integers(0, 256, size=(n, 32, 32, 3), dtype=np.uint8)
        fine = rng.integers(0, 100, size=n)
        coarse = fine // 5
        write_pickle(
            folder / split,
            {
                b"filenames": [f"{i}.png".encode() for i in range(n)],
                b"batch_label": split.encode(),
                b"fine_labels": [int(v) for v in fine],
                b"coarse_labels": [int(v) for v in coarse],
                b"data": cifar_rows(images),
            },
        )
        content[split] = (images, fine, coarse)
    return folder, content


def write_png(path: Path, image: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(image, dtype=np.uint8)).save(path)
    return path
