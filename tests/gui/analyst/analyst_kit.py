"""Helpers for the analyst tests (a uniquely named module: this folder is not a package)."""

from __future__ import annotations

import numpy as np

from naviewer.analysis.demo import make_demo_session


def folder_workspace(root, n: int = 40, n_poison: int = 5, seed: int = 1):
    """A workspace on a folder of ``n`` PNGs (re-openable, as the dock needs) with the demo's pass."""
    from PIL import Image

    from naviewer.data.sources import open_dataset
    from naviewer.workspace import Workspace

    demo = make_demo_session(n, n_poison, seed=seed)
    for i, (image, label) in enumerate(zip(np.asarray(demo.images), demo.labels)):
        folder = root / "images" / f"c{label}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(folder / f"{i:03d}.png")
    with Workspace.create(root / "ws", open_dataset(root / "images")) as ws:
        ws.store.add_detection_pass("dift", dict(demo.scores), {"k": 10}, run="r", epoch=0)
    return root / "ws"


def open_folder_workspace(window, root, **kwargs):
    """(path, samples) of a :func:`folder_workspace` opened in ``window`` on its pass 1, as File ▸ Open does."""
    from naviewer.workspace import Workspace

    path = folder_workspace(root, **kwargs)
    with Workspace.open(path) as ws:
        n = ws.store.sample_count()
    window.state.set_workspace(path, {"samples": n, "pass_id": 1, "runs": []})
    return path, n
