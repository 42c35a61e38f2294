"""Screenshots of the main window for the docs: ``python -m naviewer.gui.screenshots OUT_DIR``.

Run it under a display (``xvfb-run -s "-screen 0 1600x1000x24" python -m naviewer.gui.screenshots
docs/screenshots``) or offscreen. The monitor follows a *synthetic* ``metrics.jsonl`` written
here (a plausible 30-epoch SimCLR run with kNN, ASR and DIFT records, as docs/workspace-format.md describes
metrics.jsonl) and a fake job
shows the status-bar progress: the pictures show the interface, not experimental results.

Developer tool (renders the docs' pictures); no part of naviewer imports it (docs/developing.md, Developer tools).
"""

from __future__ import annotations

import json
import math
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator, Optional


def sample_records(epochs: int = 30, steps_per_epoch: int = 40, every: int = 4, seed: int = 0) -> Iterator[dict[str, Any]]:
    """Synthetic metrics.jsonl records shaped like a SimCLR run with DIFT (for pictures and demos)."""
    rng = random.Random(seed)
    t = time.time() - epochs * 30.0
    yield {"kind": "run_start", "time": t, "config": {"method": "simclr", "batch_size": 256}, "total_epochs": epochs,
           "steps_per_epoch": steps_per_epoch, "method": "simclr"}
    total = epochs * steps_per_epoch
    lr = 0.0
    for epoch in range(epochs):
        losses = []
        for s in range(every, steps_per_epoch + 1, every):  # like the trainer: the counter after the step
            step = epoch * steps_per_epoch + s
            frac = step / total
            loss = 5.2 * math.exp(-2.2 * frac) + 0.9 + rng.gauss(0, 0.06)
            lr = 0.5 * step / steps_per_epoch if step < steps_per_epoch else 0.25 * (1 + math.cos(math.pi * frac))
            losses.append(loss)
            t += 30.0 / (steps_per_epoch / every)
            yield {"kind": "step", "time": t, "epoch": epoch, "step": step, "loss": loss, "lr": lr,
                   "images_per_s": 1800 + rng.gauss(0, 60)}
        record = {"kind": "epoch", "time": t, "epoch": epoch, "loss": sum(losses) / len(losses), "lr": lr,
                  "images_per_s": 1800 + rng.gauss(0, 30), "epoch_time_s": 28.5,
                  "knn_acc": min(0.82, 0.18 + 0.64 * (1 - math.exp(-epoch / 8))) + rng.gauss(0, 0.005),
                  "asr": min(0.95, 0.1 + 0.85 * (1 - math.exp(-epoch / 6)))}
        if epoch >= 4:
            detected = max(0, int(480 * (1 - math.exp(-(epoch - 4) / 4))) + rng.randint(-8, 8))
            record.update(dift_detected=detected, dift_precision=min(0.98, 0.55 + 0.4 * (1 - math.exp(-(epoch - 4) / 3))),
                          dift_recall=min(0.96, detected / 500), dift_candidates=detected + 60, dift_stable=epoch > 20)
        yield record
        if epoch == 22:
            yield {"kind": "event", "time": t, "event": "dift_stop", "epoch": epoch}


def write_sample_run(run_dir: Path) -> Path:
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / "metrics.jsonl"
    with open(path, "w", encoding="utf-8") as handle:
        for record in sample_records():
            handle.write(json.dumps(record) + "\n")
    return path


def take(out_dir: Path, themes: tuple[str, ...] = ("light", "dark"), size: tuple[int, int] = (1440, 900)) -> list[Path]:
    """Grab the main window (monitor following the sample run, a job in progress) in each theme."""
    import os

    from PySide6.QtWidgets import QApplication

    settings_dir = tempfile.mkdtemp(prefix="naviewer-shots-")
    os.environ["NAVIEWER_SETTINGS_DIR"] = settings_dir  # never touch the user's layout
    app = QApplication.instance() or QApplication([])
    from naviewer.gui.main_window import MainWindow
    from naviewer.gui.theme import ThemeManager

    run_dir = Path(tempfile.mkdtemp(prefix="naviewer-sample-run-")) / "simclr-sample"
    write_sample_run(run_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name in themes:
        themes_manager = ThemeManager(app, name)
        themes_manager.apply()
        window = MainWindow(themes_manager)
        window.resize(*size)
        window.show()
        _settle(app, 0.3)
        window.ensure_monitor()
        window.follow_run(run_dir)
        window.overview.workspace.setText("~/cases/cifar10-na<br>4,068 samples")
        window.overview.dataset.setText("cifar-10-batches-py (train)<br>4,068 images, 10 classes")
        window.overview.encoder.setText("runs/simclr-sample/checkpoints/last.pt")
        window.overview.run.setText("runs/simclr-sample (synthetic sample)")
        window.monitor.source_label.setText("following: runs/simclr-sample/metrics.jsonl")

        def fake_embedding(ctx):
            for i in range(400):
                ctx.check()
                ctx.progress(i, 1000, "extracting embeddings")
                time.sleep(0.005)
            while True:  # hold at 40 % for the picture
                ctx.check()
                time.sleep(0.01)

        job = window.start_job(fake_embedding, "Embed epoch 30", resources=["embed"])
        _settle(app, 2.5)
        window.monitor.redraw()
        _settle(app, 0.3)
        target = out_dir / f"main-{name}.png"
        window.grab().save(str(target))
        written.append(target)
        job.cancel()
        window.jobs.wait_all(5)
        window.close()
        window.deleteLater()
        _settle(app, 0.1)
    return written


def _shot_app():
    """The QApplication of a screenshot run, its settings in a fresh temporary folder (never the user's)."""
    import os

    from PySide6.QtWidgets import QApplication

    os.environ["NAVIEWER_SETTINGS_DIR"] = tempfile.mkdtemp(prefix="naviewer-shots-")
    return QApplication.instance() or QApplication([])


def _shot_window(app, theme: str, size: tuple[int, int], monitor: bool = True):
    """A main window in ``theme`` of ``size`` at the screen's corner, shown and settled, the monitor docked."""
    from naviewer.gui.main_window import MainWindow
    from naviewer.gui.theme import ThemeManager

    manager = ThemeManager(app, theme)
    manager.apply()
    window = MainWindow(manager)
    window.resize(*size)
    window.move(0, 0)
    window.show()
    _settle(app, 0.5)
    if monitor:
        window.ensure_monitor()
    return window


def _settle(app, seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.processEvents()
        time.sleep(0.01)


if __name__ == "__main__":  # pragma: no cover - developer tool
    for path in take(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/screenshots")):
        print(path)


# -- the review window at given screen sizes (issue 14: lay out for 1280x720 upward) ------------------
REVIEW_SIZES = ((1280, 720), (1920, 1080))


def review_workspace(root: Path, n: int = 2000, n_poison: int = 60, seed: int = 11, trusted_anchors: bool = True) -> Path:
    """A workspace over the planted-cluster demo session (synthetic images and scores, one detection pass);
    ``trusted_anchors``: DIFT's anchors are ten known-clean samples a class named by id (else none are
    recorded, and the analyst's notice says they would be drawn from the labels)."""
    import numpy as np

    from naviewer.analysis.demo import make_demo_session
    from naviewer.workspace import Workspace

    from PIL import Image

    from naviewer.data.sources import open_dataset

    demo = make_demo_session(n, n_poison, seed=seed)
    images = root / "images"
    for i, (image, label) in enumerate(zip(np.asarray(demo.images), demo.labels)):
        folder = images / demo.class_names[int(label)]
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(folder / f"{i:05d}.png")
    path = root / "review-ws"
    dataset = open_dataset(images)
    # the folder reader orders samples by class folder: carry the scores over to that order
    order = np.array([int(Path(dataset.source_key(i)).stem) for i in range(len(dataset))], np.int64)
    with Workspace.create(path, dataset) as ws:
        ws.store.add_detection_pass("dift", {k: np.asarray(v)[order] for k, v in demo.scores.items()}, {"k": 10},
                                    run="demo", epoch=0)
        ws.save_embeddings("demo", "review", np.asarray(demo.embeddings)[order])
        if trusted_anchors:  # ten known-clean samples a class, named by id (an analyst's trusted set)
            from naviewer.workflows.anchor_sources import set_workspace_anchors

            poison = set(np.asarray(demo.ground_truth["poison_ids"]).tolist())
            labels = np.asarray(demo.labels)[order]
            clean = [i for i in range(len(order)) if int(order[i]) not in poison]
            ids = [i for c in np.unique(labels) for i in [j for j in clean if labels[j] == c][:10]]
            set_workspace_anchors(ws, "ids:" + ",".join(map(str, ids)))
    return path


def take_review(out_dir: Path, sizes=REVIEW_SIZES, theme: str = "light", extras: bool = True) -> list[Path]:
    """The main window with the analyst docked on a workspace, at each size (``review-WxH.png``); with
    ``extras`` also F1's list and the Crop layout tab at the smallest size (the large sample view, the
    filter sidebar and the export dialog at every size: :func:`take_review_loop`)."""

    import numpy as np

    app = _shot_app()

    root = Path(tempfile.mkdtemp(prefix="naviewer-review-shots-"))
    path = review_workspace(root)
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for k, (w, h) in enumerate(sizes):
        window = _shot_window(app, theme, (w, h))
        window.state.set_workspace(path, {"samples": 2000, "pass_id": 1, "runs": []})
        _settle(app, 1.0)
        panel = window.analyst_dock.panel
        s = panel.session
        q = s.review_queue()
        s.reject(q[60:63])
        panel.clusters.select_cluster(0)
        s.set_current(int(q[0]))
        _settle(app, 0.5)
        target = out_dir / f"review-{w}x{h}.png"
        window.grab().save(str(target))
        written.append(target)
        if extras and k == 0:
            window.show_shortcuts(toggle=False)
            _settle(app, 0.5)
            written.append(out_dir / f"review-{w}x{h}-keys.png")
            window.grab().save(str(written[-1]))
            window.docks["shortcutsDock"].hide()
            composite = np.concatenate([s.image(int(q[0])), s.image(int(q[1]))], axis=1)
            panel.crop_layout.set_sample(composite, None)
            panel.tabs.setCurrentWidget(panel._crop_tab)
            _settle(app, 0.8)
            written.append(out_dir / f"review-{w}x{h}-crop-layout.png")
            window.grab().save(str(written[-1]))
        window.jobs.cancel_all()
        window.jobs.wait_all(5)
        window.analyst_dock.close()
        window.close()
        window.deleteLater()
        _settle(app, 0.2)
    return written


# -- trusted anchors (issue 12): the notice, the Anchors view, choosing a trusted set ------------------

def _grab_screen(app, target: Path) -> Path:
    """The whole screen (the window, its dialogs and menus), as a person sees it under Xvfb; the
    window alone where there is no screen to grab (offscreen)."""
    screen = app.primaryScreen()
    pixmap = screen.grabWindow(0) if screen is not None else None
    if pixmap is None or pixmap.isNull() or app.platformName() == "offscreen":
        window = app.activeWindow() or next(w for w in app.topLevelWidgets() if w.objectName() == "mainWindow")
        pixmap = window.grab()
    pixmap.save(str(target))
    return target


def anchors_workspace(root: Path) -> tuple[Path, Path]:
    """(workspace, trusted folder): :func:`review_workspace` with a DIFT pass that ran on anchors drawn
    from the labels (the screen dropped three) and a labelled folder of known-clean images beside it."""
    import numpy as np
    from PIL import Image

    from naviewer.workflows.anchor_sources import set_workspace_anchors
    from naviewer.workspace import Workspace

    path = review_workspace(root, trusted_anchors=False)
    with Workspace.open(path) as ws:
        set_workspace_anchors(ws, "labels", 10, 0)
        section = ws.config["anchors"]
        scores = ws.store.pass_scores(1)
        flagged = np.flatnonzero(np.asarray(scores["flagged"], bool))
        anchors = np.asarray(section["indices"])
        labels = np.asarray(section["labels"])
        near = [int(a) for a in anchors if int(a) in set(flagged.tolist())][:3] or anchors[:3].tolist()
        notes = [f"anchor {a} (class {int(labels[list(anchors).index(a)])}) dropped: the densest samples' label "
                 "spreading reaches it" for a in near]
        settings = {"k": 10, "summary": {"anchors": len(anchors) - len(notes), "anchors_trusted": False,
                                         "anchors_dropped": len(notes), "flagged": int(flagged.size)},
                    "anchor_notes": notes, "warnings": []}
        ws.store.add_detection_pass("dift", scores, settings, run="demo", epoch=1)
        names = ws.class_names
        dataset = ws.dataset()
        labels_all = np.asarray(ws.store.samples()["label"])
        colours = {}
        for c in range(len(names)):  # each class's colour, from clean (unflagged) samples of it
            members = [i for i in np.flatnonzero(labels_all == c)[:40].tolist() if i not in set(flagged.tolist())][:10]
            colours[c] = np.median(np.stack([dataset.image(i).reshape(-1, 3).mean(axis=0) for i in members]), axis=0)
    rng = np.random.default_rng(23)
    trusted = root / "trusted-clean"
    for c, colour in colours.items():  # new images of the same classes: known clean, outside the training set
        folder = trusted / names[c]
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(30):
            noise = rng.integers(-30, 30, size=(32, 32, 1))
            Image.fromarray(np.clip(colour[None, None, :] + noise, 0, 255).astype(np.uint8)).save(folder / f"clean{i:02d}.png")
    return path, trusted


def take_anchors(out_dir: Path, sizes=REVIEW_SIZES, theme: str = "light") -> list[Path]:
    """At each screen size: ``anchors-notice-WxH.png`` (the analyst on a pass that ran on untrusted
    anchors), ``anchors-view-WxH.png`` (Choose trusted anchors… opened the Anchors view: labels, not
    trusted), ``anchors-choose-WxH.png`` (its Replace menu) and ``anchors-trusted-WxH.png`` (after
    choosing a trusted image folder: the trusted images a class) and ``anchors-after-WxH.png`` (the
    analyst's notice then: the pass still rests on the old anchors, detect again). Run under
    ``xvfb-run -s '-screen 0 WxHx24'`` once per size so that dialogs and menus are on the picture."""

    from PySide6.QtCore import QPoint

    app = _shot_app()
    from naviewer.gui import anchors_view

    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for w, h in sizes:
        root = Path(tempfile.mkdtemp(prefix="naviewer-anchor-shots-"))
        path, trusted = anchors_workspace(root)
        window = _shot_window(app, theme, (w, h))
        window.state.set_workspace(path, {"samples": 2000, "pass_id": 2, "runs": []})
        _settle(app, 1.0)
        panel = window.analyst_dock.panel
        s = panel.session
        panel.clusters.select_cluster(0)
        s.set_current(int(s.review_queue()[0]))
        _settle(app, 0.5)
        written.append(_grab_screen(app, out_dir / f"anchors-notice-{w}x{h}.png"))
        panel.trust.choose.click()
        dialog = window.anchors_dialog
        dialog.resize(min(900, w - 80), min(640, h - 80))
        dialog.move(40, 40)
        end = time.monotonic() + 30
        while dialog.view.busy and time.monotonic() < end:
            _settle(app, 0.1)
        _settle(app, 0.5)
        written.append(_grab_screen(app, out_dir / f"anchors-view-{w}x{h}.png"))
        view = dialog.view
        button = view.replace_button
        view.replace_menu.popup(button.mapToGlobal(QPoint(0, button.height())))
        _settle(app, 0.5)
        written.append(_grab_screen(app, out_dir / f"anchors-choose-{w}x{h}.png"))
        view.replace_menu.hide()
        original = anchors_view.QFileDialog.getExistingDirectory
        anchors_view.QFileDialog.getExistingDirectory = staticmethod(lambda *a, **k: str(trusted))
        try:
            view.choose("folder")
        finally:
            anchors_view.QFileDialog.getExistingDirectory = original
        end = time.monotonic() + 60
        while view.busy and time.monotonic() < end:
            _settle(app, 0.1)
        _settle(app, 0.8)
        written.append(_grab_screen(app, out_dir / f"anchors-trusted-{w}x{h}.png"))
        dialog.close()
        _settle(app, 0.5)
        written.append(_grab_screen(app, out_dir / f"anchors-after-{w}x{h}.png"))
        window.jobs.cancel_all()
        window.jobs.wait_all(5)
        window.analyst_dock.close()
        window.close()
        window.deleteLater()
        _settle(app, 0.2)
    return written


def take_new_workspace(out_dir: Path, size: tuple[int, int] = (1280, 720), theme: str = "light") -> list[Path]:
    """File ▸ New workspace… at ``size``: ``new-workspace-WxH.png`` (the default: anchors from the
    labels, NOT trusted, the warning in view) and ``new-workspace-attack-WxH.png`` (an attack with its
    test-time protocols, the anchors a trusted image folder)."""
    app = _shot_app()

    root = Path(tempfile.mkdtemp(prefix="naviewer-new-shots-"))
    data, trusted = root / "suspect-images", root / "trusted-clean"
    for folder in (data / "cat", data / "dog", trusted / "cat", trusted / "dog"):
        folder.mkdir(parents=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    window = _shot_window(app, theme, size)
    dialog = window.new_workspace_dialog()
    dialog.dataset.setText(str(data))
    dialog.folder.setText(str(root / "suspect-ws"))
    _settle(app, 0.3)
    dialog.move(max(0, (size[0] - dialog.width()) // 2), 30)
    _settle(app, 0.5)
    w, h = size
    written = [_grab_screen(app, out_dir / f"new-workspace-{w}x{h}.png")]
    dialog.attack.setCurrentIndex(dialog.attack.findData("na"))
    dialog.protocol.setCurrentIndex(dialog.protocol.findData("code"))
    dialog.set_anchor_choice("dataset", trusted)
    _settle(app, 0.3)
    dialog.move(max(0, (size[0] - dialog.width()) // 2), 30)
    _settle(app, 0.5)
    written.append(_grab_screen(app, out_dir / f"new-workspace-attack-{w}x{h}.png"))
    dialog.reject()
    window.close()
    window.deleteLater()
    _settle(app, 0.2)
    return written


def take_finetune(out_dir: Path, size: tuple[int, int] = (1280, 720), theme: str = "light") -> Path:
    """The Fine-tune tab's before/after table with the ASR's test-time protocol and the no-poison floor
    (``finetune-floor-WxH.png``; synthetic numbers: :data:`naviewer.gui.analyst.screenshots.PLANTED_FINETUNE`)."""
    app = _shot_app()
    from naviewer.gui.analyst.screenshots import PLANTED_FINETUNE

    root = Path(tempfile.mkdtemp(prefix="naviewer-ft-shots-"))
    path = review_workspace(root)
    window = _shot_window(app, theme, size)
    window.state.set_workspace(path, {"samples": 2000, "pass_id": 1, "runs": []})
    _settle(app, 1.0)
    panel = window.analyst_dock.panel
    s = panel.session
    s.confirm(s.review_queue())
    panel.set_finetune_result(dict(PLANTED_FINETUNE, confirmed=int(s.flagged_mask.sum())))
    panel.finetune_gate.show_done(int(s.flagged_mask.sum()))
    panel.tabs.setCurrentWidget(panel.finetune_gate)
    _settle(app, 0.8)
    out_dir.mkdir(parents=True, exist_ok=True)
    w, h = size
    target = _grab_screen(app, out_dir / f"finetune-floor-{w}x{h}.png")
    window.analyst_dock.close()
    window.close()
    window.deleteLater()
    _settle(app, 0.2)
    return target


def take_detectors(out_dir: Path, sizes=REVIEW_SIZES, theme: str = "light") -> list[Path]:
    """Every detector side by side (issue 13), ``detectors-WxH.png``: the review workspace with k-distance
    and LID passes (naviewer's own detectors run over its embeddings, as ``naviewer detect --detector``
    saves them), the map coloured by the k-distance score, the gallery sorted by it, the inspector
    listing each detector's score of the current sample."""

    import numpy as np

    app = _shot_app()
    from naviewer.workflows.detector_passes import run_detectors
    from naviewer.workspace import Workspace

    root = Path(tempfile.mkdtemp(prefix="naviewer-detector-shots-"))
    path = review_workspace(root)
    with Workspace.open(path) as ws:
        features = np.asarray(ws.load_embeddings("demo", "review", mmap=False))
        passes, _metrics = run_detectors(ws, features, ["kdist", "lid"], run="demo")
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for w, h in sizes:
        window = _shot_window(app, theme, (w, h))
        window.state.set_workspace(path, {"samples": 2000, "pass_id": 1, "runs": []})
        _settle(app, 1.0)
        panel = window.analyst_dock.panel
        key = f"detector:kdist#{passes['kdist']}"
        panel.map.set_colour_mode(key)
        panel.gallery.set_filter("all")
        panel.gallery.filters.set_sort(key)
        first = int(panel.gallery.shown_ids()[0])
        panel.session.set_current(first)
        _settle(app, 0.5)
        panel.inspector.scroll_to_detectors()
        _settle(app, 0.5)
        written.append(_grab_screen(app, out_dir / f"detectors-{w}x{h}.png"))
        window.analyst_dock.close()
        window.close()
        window.deleteLater()
        _settle(app, 0.2)
    return written


# -- issue 14's review loop at 1280x720 and 1920x1080: the filter sidebar, the large view, the export
# -- dialog, the map after retraining; the Train dialog's speed estimate ----------------------------------

def _dissolved(embeddings, labels, moved, seed: int = 0):
    """*Synthetic* embeddings after a retrain: each of ``moved`` (the removed pile) lands beside a random
    other sample of its class, with a little noise; the rest stay. For pictures of the interface only."""
    import numpy as np

    rng = np.random.default_rng(seed)
    out = np.array(embeddings, dtype=np.float32, copy=True)
    others = np.setdiff1d(np.arange(len(out)), moved)
    for i in moved:
        same = others[labels[others] == labels[i]]
        j = int(rng.choice(same if same.size else others))
        out[i] = out[j] + rng.normal(scale=0.05 * float(np.std(out)), size=out.shape[1])
    return out


def take_review_loop(out_dir: Path, sizes=REVIEW_SIZES, theme: str = "light") -> list[Path]:
    """At each size, under a display (screen grabs, so dialogs and the large view show over the window):
    ``review-WxH-filters.png`` (the gallery's filter sidebar, mid-review), ``review-WxH-large-view.png``,
    ``review-WxH-export.png`` (the export dialog) and ``review-WxH-after-retraining.png`` (the map of the
    samples re-embedded after a remove-and-retrain, with the Fine-tune tab; *synthetic* after-embeddings
    and numbers: :func:`_dissolved`, ``PLANTED_FINETUNE``)."""

    import numpy as np

    app = _shot_app()
    from naviewer.gui.analyst.panel import AFTER_PREFIX
    from naviewer.gui.analyst.screenshots import PLANTED_FINETUNE

    root = Path(tempfile.mkdtemp(prefix="naviewer-loop-shots-"))
    path = review_workspace(root)
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for w, h in sizes:
        window = _shot_window(app, theme, (w, h))
        window.state.set_workspace(path, {"samples": 2000, "pass_id": 1, "runs": []})
        _settle(app, 1.0)
        panel = window.analyst_dock.panel
        s = panel.session
        queue = s.review_queue()
        s.confirm(queue[:30])
        s.reject(queue[30:34])
        s.later(queue[34:36])
        # the filter sidebar: unreviewed and later flags of the first cluster, by density
        panel.gallery.show_filters(True)
        panel.gallery.filters.set_states(["unreviewed", "later"])
        _settle(app, 0.6)
        s.set_current(int(panel.gallery.shown_ids()[0]) if len(panel.gallery.shown_ids()) else int(queue[36]))
        _settle(app, 0.4)
        written.append(_grab_screen(app, out_dir / f"review-{w}x{h}-filters.png"))
        panel.gallery.show_filters(False)
        # the large sample view over the window
        panel.gallery.open_viewer(int(queue[36]))
        _settle(app, 0.6)
        written.append(_grab_screen(app, out_dir / f"review-{w}x{h}-large-view.png"))
        panel.gallery.viewer.close()
        _settle(app, 0.2)
        # the export dialog
        dialog = panel.open_export_dialog()
        _settle(app, 0.6)
        written.append(_grab_screen(app, out_dir / f"review-{w}x{h}-export.png"))
        dialog.reject()
        _settle(app, 0.2)
        # after a remove-and-retrain: the map of the re-embedded samples, the Fine-tune tab's table
        panel.gallery.filters.reset()
        s.confirm(s.review_queue())
        s.settings = {**(s.settings or {}), "config": {"restart_mode": "retrain"}}  # the run's recipe retrains
        panel.finetune_gate.update_gate()
        confirmed = np.flatnonzero(s.state_codes == 1)
        after = _dissolved(s.embeddings, np.asarray(s.labels), confirmed)
        result = {**PLANTED_FINETUNE, "confirmed": int(confirmed.size), "finetune": {"restart_mode": "retrain"}}
        panel.set_finetune_result(result)
        panel.finetune_gate.show_done(int(confirmed.size))
        panel.set_after_embeddings(after, "after retraining", run="demo", tag="final", result=result)
        panel.tabs.setCurrentWidget(panel.finetune_gate)
        box = panel.map.projection_box
        box.setCurrentIndex(box.findData(AFTER_PREFIX + "pca"))
        box.activated.emit(box.currentIndex())
        deadline = time.time() + 30
        while panel.map.projection_method != AFTER_PREFIX + "pca" and time.time() < deadline:
            _settle(app, 0.2)
        panel.map.set_colour_mode("review")
        _settle(app, 0.6)
        written.append(_grab_screen(app, out_dir / f"review-{w}x{h}-after-retraining.png"))
        window.jobs.cancel_all()
        window.jobs.wait_all(5)
        window.analyst_dock.close()
        window.close()
        window.deleteLater()
        _settle(app, 0.2)
    return written


def take_train_dialog(out_dir: Path, size: tuple[int, int] = (1280, 720), theme: str = "light",
                      measured_batch: int = 32) -> list[Path]:
    """The Train dialog over the window on a CPU (``train-WxH-*.png``): ResNet-18 at batch 256 warned
    about while its steps are measured, then a smaller batch measured for real (``estimate_training_time``
    on the review workspace's images: a real measurement on the machine that takes the picture)."""
    app = _shot_app()

    root = Path(tempfile.mkdtemp(prefix="naviewer-train-shots-"))
    path = review_workspace(root)
    window = _shot_window(app, theme, size, monitor=False)
    window.state.set_workspace(path, {"samples": 2000})
    dialog = window.train_dialog()
    dialog.set_available_devices(["cpu"])
    dialog.device.setCurrentIndex(dialog.device.findData("cpu"))
    dialog.start_estimate()
    deadline = time.time() + 60
    while "%" not in dialog.estimate_label.text() and time.time() < deadline:
        _settle(app, 0.3)
    w, h = size
    out_dir.mkdir(parents=True, exist_ok=True)
    written = [_grab_screen(app, out_dir / f"train-{w}x{h}-measuring.png")]
    dialog.batch_size.setText(str(measured_batch))
    dialog.start_estimate()  # (starts once the batch-256 measurement has stopped)
    deadline = time.time() + 600
    while (dialog.estimate is None or dialog.estimate.get("batch_size") != measured_batch) and time.time() < deadline:
        _settle(app, 0.5)
    _settle(app, 0.5)
    written.append(_grab_screen(app, out_dir / f"train-{w}x{h}-measured.png"))
    dialog.reject()
    window.jobs.cancel_all()
    window.jobs.wait_all(30)
    window.close()
    window.deleteLater()
    _settle(app, 0.2)
    return written


# -- the review walk-through from a real run (docs/workflow-review-export.md) -------------------------------

def _wait(app, condition, timeout_s: float, step: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition() and time.monotonic() < deadline:
        _settle(app, step)
    return bool(condition())


def take_review_from_run(workspace: Path, out_dir: Path, size: tuple[int, int] = (1280, 720), *,
                         decided: int = 40, retrain: bool = False, after_workspace: Optional[Path] = None,
                         theme: str = "light", retrain_timeout_s: float = 3600.0, by_truth: bool = True) -> list[Path]:
    """The review loop on a *real* run's workspace (``naviewer demo --no-gui``, which stops at the review),
    opened as File > Open workspace does, under a display: ``review-WxH-filters.png`` after deciding the
    first ``decided`` flags of the queue as the ground truth says (poisons confirmed, clean samples
    rejected; two more marked *later*), ``-large-view``, ``-export``; with ``retrain`` every remaining flag
    is decided the same way and the Fine-tune tab's *Remove and retrain* runs for real (minutes on a CPU),
    then ``-after-retraining.png`` (the map of the samples the new encoder embedded, the table) and
    ``-monitor.png`` (the run retrained, the no-poison floor on the ASR plot when ``[floor]`` is measured).
    ``after_workspace``: a workspace already retrained (reopened: the panel shows the earlier result) for
    the after-retraining picture. The workspace is changed (decisions, the retrain): pass a copy.
    ``by_truth=False`` confirms every flag decided instead (a tiny run whose flags are all clean)."""

    import numpy as np

    app = _shot_app()
    from naviewer.gui.analyst.panel import AFTER_PREFIX
    from naviewer.workflows.workspace_setup import ground_truth_mask

    w, h = size
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    window = _shot_window(app, theme, (w, h))

    def open_panel(path: Path):
        window.open_workspace(path)
        if not _wait(app, lambda: window.analyst_dock is not None and window.state.workspace == Path(path).absolute(), 120):
            raise RuntimeError(f"{path}: the analyst did not dock")
        _settle(app, 1.0)
        return window.analyst_dock.panel

    panel = open_panel(workspace)
    s = panel.session
    truth = ground_truth_mask(window.analyst_dock.ws) if by_truth else None

    def decide(ids) -> None:
        ids = np.asarray(ids, dtype=np.int64)
        if truth is None:
            s.confirm(ids)
            return
        if truth[ids].any():
            s.confirm(ids[truth[ids]])
        if (~truth[ids]).any():
            s.reject(ids[~truth[ids]])

    queue = s.review_queue()
    decide(queue[:decided])
    s.later(queue[decided:decided + 2])
    panel.gallery.show_filters(True)
    panel.gallery.filters.set_states(["unreviewed", "later"])
    _settle(app, 0.6)
    shown = panel.gallery.shown_ids()
    current = int(shown[0]) if len(shown) else int(queue[min(decided + 2, len(queue) - 1)])
    s.set_current(current)
    _settle(app, 0.4)
    written.append(_grab_screen(app, out_dir / f"review-{w}x{h}-filters.png"))
    panel.gallery.show_filters(False)
    panel.gallery.open_viewer(current)
    _settle(app, 0.6)
    written.append(_grab_screen(app, out_dir / f"review-{w}x{h}-large-view.png"))
    panel.gallery.viewer.close()
    _settle(app, 0.2)
    dialog = panel.open_export_dialog()
    _settle(app, 0.6)
    written.append(_grab_screen(app, out_dir / f"review-{w}x{h}-export.png"))
    dialog.reject()
    _settle(app, 0.2)

    if retrain:
        panel.gallery.filters.reset()
        decide(s.review_queue())
        panel.finetune_gate.update_gate()
        panel.finetune_gate.button.click()
        job = window.analyst_dock.finetune_job
        if job is None:
            raise RuntimeError(f"the Fine-tune tab did not start: {panel.finetune_gate.reason.text()}")
        if not _wait(app, lambda: not job.running, retrain_timeout_s, 1.0):
            raise RuntimeError("the remove-and-retrain job did not finish")
        _settle(app, 2.0)
    elif after_workspace is not None:
        panel = open_panel(after_workspace)
    if retrain or after_workspace is not None:
        panel = window.analyst_dock.panel
        panel.tabs.setCurrentWidget(panel.finetune_gate)
        box = panel.map.projection_box
        index = box.findData(AFTER_PREFIX + "pca")
        if index >= 0:
            box.setCurrentIndex(index)
            box.activated.emit(index)
            _wait(app, lambda: panel.map.projection_method == AFTER_PREFIX + "pca", 120)
        panel.map.set_colour_mode("review")
        _settle(app, 0.8)
        written.append(_grab_screen(app, out_dir / f"review-{w}x{h}-after-retraining.png"))
        dock = window.docks["monitorDock"]
        dock.show()
        dock.raise_()
        _settle(app, 1.5)
        window.monitor.redraw()
        _settle(app, 0.5)
        written.append(_grab_screen(app, out_dir / f"review-{w}x{h}-monitor.png"))
    window.jobs.cancel_all()
    window.jobs.wait_all(30)
    if window.analyst_dock is not None:
        window.analyst_dock.close()
    window.close()
    window.deleteLater()
    _settle(app, 0.2)
    return written


def take_crop_density(workspace: Path, out_dir: Path, size: tuple[int, int] = (1280, 720), theme: str = "light",
                      sample: Optional[int] = None) -> list[Path]:
    """A workspace with a ``crop_density`` pass (``naviewer detect WS --checkpoint CKPT --detector crop_density``),
    opened as File > Open workspace does, under a display: ``crop-density-WxH.png``, the sample ``sample``
    (default: the composite crop_density ranks most suspicious) in the inspector with its densest crop
    outlined, and the Crop layout tab on it."""

    import numpy as np

    app = _shot_app()
    from naviewer.gui.analyst.detector_scores import detector_table

    w, h = size
    window = _shot_window(app, theme, (w, h))
    window.open_workspace(workspace)
    if not _wait(app, lambda: window.analyst_dock is not None, 120):
        raise RuntimeError(f"{workspace}: the analyst did not dock")
    _settle(app, 1.0)
    panel = window.analyst_dock.panel
    s = panel.session
    table = detector_table(s)
    item = next((i for i in reversed(table.items) if i.best_box is not None), None)
    if item is None:
        raise RuntimeError(f"{workspace}: no crop_density pass with densest crops")
    if sample is None:
        wide = np.array([(lambda im: im is not None and im.shape[0] != im.shape[1])(s.image(int(i)))
                         for i in range(s.n)])
        order = np.argsort(-np.where(np.isfinite(item.score) & wide, item.score, -np.inf))
        sample = int(order[0])
    s.set_selection([sample])
    s.set_current(sample)
    _settle(app, 0.5)
    panel.show_crop_layout(sample)
    _settle(app, 0.8)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = [_grab_screen(app, out_dir / f"crop-density-{w}x{h}.png")]
    window.analyst_dock.close()
    window.close()
    window.deleteLater()
    _settle(app, 0.2)
    return written
