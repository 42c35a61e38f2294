"""Render every analyst view to PNG (docs/screenshots/analyst-*.png).

Developer tool (renders the docs' pictures); no part of naviewer imports it (docs/developing.md, Developer tools).

Two sources:

* ``--workspace WS`` (what the docs use): an existing workspace with a real detection pass and saved
  embeddings, e.g. the one ``naviewer demo --no-gui --workspace WS`` leaves (Noisy Alignment on the
  digits, SimCLR with DIFT in the loop, ``embeddings/demo/review.npy``). The panel is opened as the
  main window's analyst dock opens it; if nobody has reviewed the pass yet, a few cluster-level
  decisions are recorded first (in evaluation mode, from the ground truth) so every review state
  shows. The fine-tune gate shows ``runs/<run>/finetune_result.json`` (or ``--finetune-result``)
  when a real fine-tune has run, else the gate as it stands before fine-tuning.
* otherwise (no training needed): real CIFAR-10 with real Noisy Alignment composites, but a
  *planted* embedding and DIFT-like scores (``naviewer.analysis.demo``).

Usage::

    xvfb-run -s "-screen 0 1920x1200x24" python -m naviewer.gui.analyst.screenshots OUT_DIR --workspace WS \
        [--pass ID] [--run demo --tag review] [--finetune-result JSON]
    xvfb-run -s "-screen 0 1920x1200x24" python -m naviewer.gui.analyst.screenshots OUT_DIR [CIFAR_ROOT]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from typing import Optional

import numpy as np


def build_workspace(root: Path, cifar: str, n_poisons: int = 80, seed: int = 0):
    from naviewer.analysis.demo import dift_like_scores, planted_embeddings
    from naviewer.attacks import make_attack
    from naviewer.data import open_dataset
    from naviewer.data.store import ImageStore
    from naviewer.workspace import Workspace

    rng = np.random.default_rng(seed)
    clean = open_dataset(cifar)
    result = make_attack("na", num_poisons=n_poisons, target=0).craft(clean, rng)
    data = result.dataset
    store = ImageStore.from_dataset(data)
    labels = np.asarray(data.labels)
    poison = np.asarray(result.poison_mask)
    emb = planted_embeddings(labels, poison, rng, dim=32)
    scores = dift_like_scores(emb, labels, rng, n_candidates=int(1.6 * poison.sum()))
    ws = Workspace.create(root / "ws", data)
    ws.write_ground_truth(result.ground_truth)
    flagged = np.flatnonzero(scores["flagged"])
    for epoch in range(10):
        frac = min(1.0, 0.15 + epoch / 7)
        keep = np.zeros(len(labels), bool)
        keep[flagged[rng.random(len(flagged)) < frac]] = True
        ws.store.add_detection_pass("dift", dict(scores, flagged=keep), {"k": 10, "q": 0.01}, run="simclr", epoch=epoch)
    ws.store.add_detection_pass("dift", scores, {"k": 10, "q": 0.01}, run="simclr", epoch=10)
    return ws, store, emb


PLANTED_FINETUNE = {"before": {"confirmed_density": 6.43, "knn_acc": 0.812, "asr": 0.64},
                    "after": {"confirmed_density": 1.21, "knn_acc": 0.818, "asr": 0.07},
                    "protocol": "uniform", "floor": {"asr": 0.052, "asr_all": 0.061, "knn_acc": 0.821,
                                                     "protocol": "uniform"}}


def review_as_analyst(session, fraction: float = 0.55, n_later: int = 6) -> None:
    """A review half done, as an analyst in evaluation mode leaves it, so every review state shows.

    The first ``fraction`` of the review queue is decided (crafted poisons confirmed, other flags
    rejected, from the ground truth), so is every other non-poison flag (rejected), the next
    ``n_later`` flags are put off for later, the rest stay unreviewed. Without ground truth the decided part is all confirmed.
    """
    queue = np.asarray(session.review_queue(), dtype=np.int64)
    truth = session.truth_poison_mask()
    cut = int(round(len(queue) * fraction))
    decided = queue[:cut]
    poison = np.ones(len(decided), bool) if truth is None else truth[decided]
    if poison.any():
        session.confirm(decided[poison])
    if (~poison).any():
        session.reject(decided[~poison])
    rest = queue[cut:]
    if truth is not None and (~truth[rest]).any():  # a flag with no trigger stands out in the gallery
        session.reject(rest[~truth[rest]])
        rest = rest[truth[rest]]
    if n_later and len(rest):
        session.later(rest[:n_later])


def finish_review(session) -> None:
    """Decide every flag still pending (later or unreviewed) from the ground truth, as before fine-tuning."""
    truth = session.truth_poison_mask()
    flags = np.asarray(session.flagged_ids(), dtype=np.int64)
    pending = np.array([i for i in flags if session.state_of(int(i)) in ("unreviewed", "later")], dtype=np.int64)
    if pending.size == 0:
        return
    poison = np.ones(len(pending), bool) if truth is None else truth[pending]
    if poison.any():
        session.confirm(pending[poison])
    if (~poison).any():
        session.reject(pending[~poison])


def _crafted_poison(session, prefer: np.ndarray) -> Optional[int]:
    """A crafted poison with a recorded layout, preferring the ids in ``prefer`` (e.g. the top cluster)."""
    from naviewer.analysis.crop_event import layout_of_record

    truth = session.truth_poison_mask()
    candidates = list(prefer) + ([] if truth is None else list(np.flatnonzero(truth)))
    for sid in candidates:
        if truth is not None and not truth[int(sid)]:
            continue
        image = session.image(int(sid))
        if image is not None and layout_of_record(session.truth_for(int(sid)), image.shape[0], image.shape[1]) is not None:
            return int(sid)
    return None


def render(out: Path, cifar: str, workspace: Optional[Path] = None, pass_id: Optional[int] = None,
           run: Optional[str] = None, tag: Optional[str] = None, finetune_result: Optional[Path] = None,
           in_place: bool = False) -> list[Path]:
    """Write analyst-*.png to ``out``; with ``workspace``, over that workspace (a temporary copy of it
    unless ``in_place``: the review decisions this records then stay in the workspace)."""
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication(sys.argv[:1])
    import naviewer.gui.analyst  # noqa: F401
    from naviewer.analysis.session import AnalysisSession
    from naviewer.gui.analyst.crop_layout import CropLayoutWidget
    from naviewer.gui.analyst.export_dialog import ExportDialog
    from naviewer.gui.analyst.panel import AnalystPanel

    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []

    def save(widget, name: str) -> None:
        app.processEvents()
        path = out / f"analyst-{name}.png"
        widget.grab().save(str(path))
        written.append(path)

    with tempfile.TemporaryDirectory() as tmp:
        export_dir = Path(tmp) / "export"
        if workspace is not None:
            workspace = Path(workspace)
            export_dir = workspace.absolute() / "exports" / time.strftime("%Y%m%d-%H%M%S", time.gmtime())  # shown only
            if not in_place:
                import shutil

                copy = Path(tmp) / "ws"
                shutil.copytree(workspace, copy, ignore=shutil.ignore_patterns("exports", "checkpoints"))
                if finetune_result is None and (workspace / "runs").is_dir():
                    finetune_result = _finetune_result_of(workspace, pass_id)
                workspace = copy
            ws, session, run, tag, gate_result = _open_workspace(workspace, pass_id, run, tag, finetune_result)
        else:
            ws, store, emb = build_workspace(Path(tmp), cifar)
            session = AnalysisSession.from_workspace(ws, images=store, embeddings=emb, reviewer="analyst")
            run, tag, gate_result = "simclr", "epoch10", PLANTED_FINETUNE
        panel = AnalystPanel(session, workspace=ws, run=run, tag=tag)
        panel.resize(1680, 1050)
        panel.show()
        app.processEvents()
        clusters = session.clusters()
        top = clusters[0].members
        if workspace is not None:
            if sum(v for k, v in session.review_counts().items() if k != "unreviewed") == 0:
                review_as_analyst(session)
        else:
            session.confirm(top[: len(top) * 2 // 3])
            for cl in clusters[1:4]:
                session.reject(cl.members)
            if len(clusters) > 4:
                session.later(clusters[4].members)
        panel.clusters.select_cluster(0)
        session.set_current(int(top[-1]))
        if workspace is not None:  # give the inspector the room its labels need
            sizes = panel._upper.sizes()
            grow = max(0, 400 - sizes[2])
            panel._upper.setSizes([sizes[0] - grow, sizes[1], sizes[2] + grow])
            app.processEvents()
        panel.map.show_hover(int(top[-1]), panel.map.plot.rect().center())
        save(panel, "panel")
        panel.map.hide_hover()
        from naviewer.gui.analyst.clusters import ClusterListWidget
        from naviewer.gui.analyst.density_map import DensityMapWidget
        from naviewer.gui.analyst.finetune_gate import FineTuneGate
        from naviewer.gui.analyst.gallery import GalleryWidget
        from naviewer.gui.analyst.inspector import SampleInspector
        from naviewer.gui.analyst.why import WhyFlaggedWidget

        def alone(widget, w: int, h: int):
            widget.resize(w, h)
            widget.show()
            app.processEvents()
            return widget

        view_map = alone(DensityMapWidget(session), 1000, 720)
        view_map.set_colour_mode("class")
        view_map.show_hover(int(top[min(3, len(top) - 1)]), view_map.plot.rect().center())
        save(view_map, "map")
        if workspace is not None:
            session.clear_selection()  # the gallery's own look, not the whole cluster highlighted
        gallery = alone(GalleryWidget(session), 900, 640)
        gallery.view.scrollToTop()
        save(gallery, "gallery")
        cluster_view = alone(ClusterListWidget(session), 1100, 330)
        if workspace is None:  # (a selected row tints the thumbnails blue)
            cluster_view.select_cluster(0)
        save(cluster_view, "clusters")
        if workspace is not None:  # the evidence behind the flags put off for later, marked on every plot
            later = [int(i) for i in session.flagged_ids() if session.state_of(int(i)) == "later"]
            session.set_selection(later or top)
        why = alone(WhyFlaggedWidget(session), 1500, 420)
        save(why, "why")
        if workspace is not None:
            session.clear_selection()
        inspector = alone(SampleInspector(session), 380, 820)
        inspector.set_evaluation_mode(True)
        session.set_current(int(top[0]))
        save(inspector, "inspector")
        if workspace is not None:
            finish_review(session)  # the gate, the crop layout and the export come after the review
        gate = alone(FineTuneGate(session), 720, 300)
        if gate_result:
            gate.set_result(gate_result)
            if workspace is not None:  # what the main window's analyst dock shows once the job is done
                gate.show_done(int(gate_result.get("confirmed", 0)))
        save(gate, "finetune")
        for widget in (view_map, gallery, cluster_view, why, inspector, gate):
            widget.close()

        crop = CropLayoutWidget(n_pairs=20_000)
        poison = _crafted_poison(session, top) if workspace is not None else int(top[0])
        panel.inspector.set_evaluation_mode(True)  # the recorded layout is ground truth: evaluation mode only
        panel.show_crop_layout(int(top[0]) if poison is None else poison)
        recorded = panel.crop_layout.image_layout
        crop.set_sample(panel.crop_layout.image, recorded)
        crop.pin()
        crop.set_layout(crop.crop_layout.with_(gap=8))
        crop.pin()
        crop.set_layout(crop.crop_layout.with_(gap=0, trigger_x=0.2, trigger_y=0.25))
        crop.pin()
        crop.set_sample(panel.crop_layout.image, recorded)
        n_pairs = 150 if workspace is None else 60  # fewer on a 16 px digit: 150 pairs hide its pixels
        crop.pairs_box.setValue(n_pairs)
        crop.sample(n_pairs)
        if workspace is not None:
            crop.compare.setMaximumHeight(330)  # every row of the comparison
            crop.compare.setMinimumHeight(310)
        crop.resize(1300, 700 if workspace is None else 860)
        crop.show()
        save(crop, "crop-layout")

        dialog = ExportDialog(session, ws, panel, out_dir=export_dir)
        dialog.resize(620, 200)
        dialog.show()
        save(dialog, "export")
        dialog.close()
        panel.close()
        crop.close()
        if workspace is not None:
            ws.close()
    return written


def _open_workspace(path: Path, pass_id: Optional[int], run: Optional[str], tag: Optional[str],
                    finetune_result: Optional[Path]):
    """(ws, session, run, tag, gate result) as the main window's analyst dock opens a workspace."""
    import json

    from naviewer.analysis.session import AnalysisSession
    from naviewer.errors import NaviewerError
    from naviewer.gui.analyst_dock import find_embeddings, pass_record
    from naviewer.workspace import Workspace

    ws = Workspace.open(path)
    if pass_id is None:
        pass_id = ws.store.latest_pass_id()
    if pass_id is None:
        ws.close()
        raise NaviewerError("the workspace has no detection pass to show", path)
    pass_run = pass_record(ws, int(pass_id)).get("run")
    n = ws.store.sample_count()
    if tag is not None:
        embeddings = np.asarray(ws.load_embeddings(run or pass_run, tag, mmap=False), dtype=np.float32)
        run = run or pass_run
    else:
        embeddings, run, tag = find_embeddings(ws, run or pass_run, n)
    if embeddings is None:
        ws.close()
        raise NaviewerError("the workspace has no saved embeddings of its samples (run 'naviewer embed' first)", path)
    session = AnalysisSession.from_workspace(ws, int(pass_id), images=ws.dataset(), embeddings=embeddings,
                                             reviewer="analyst")
    result_path = finetune_result or _finetune_result_of(path, pass_id, pass_run)
    gate_result = None
    if result_path is not None and Path(result_path).is_file():
        gate_result = json.loads(Path(result_path).read_text(encoding="utf-8"))
    return ws, session, run, tag, gate_result


def _finetune_result_of(path: Path, pass_id: Optional[int], run: Optional[str] = None) -> Optional[Path]:
    """``<ws>/runs/<run>/finetune_result.json`` of the pass's run (the latest pass by default), if any."""
    if run is None:
        from naviewer.gui.analyst_dock import latest_pass, pass_record
        from naviewer.workspace import Workspace

        pid = pass_id if pass_id is not None else latest_pass(path)
        if pid is None:
            return None
        with Workspace.open(path) as ws:
            run = pass_record(ws, int(pid)).get("run")
    if not run:
        return None
    found = Path(path) / "runs" / run / "finetune_result.json"
    return found if found.is_file() else None


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m naviewer.gui.analyst.screenshots", description=__doc__.split("\n")[0])
    parser.add_argument("out", nargs="?", default="docs/screenshots", help="folder for analyst-*.png")
    parser.add_argument("cifar", nargs="?", default=None, help="CIFAR-10 root for the planted scene (no --workspace)")
    parser.add_argument("--workspace", type=Path, help="an existing workspace with a detection pass and saved embeddings")
    parser.add_argument("--pass", dest="pass_id", type=int, help="detection pass id (default: the latest)")
    parser.add_argument("--run", help="embeddings run (default: the pass's run)")
    parser.add_argument("--tag", help="embeddings tag (default: 'review' or any array of the right length)")
    parser.add_argument("--finetune-result", type=Path, help="a finetune_result.json for the fine-tune gate's table "
                        "(default: the one in the workspace's run folder, if fine-tuning has run)")
    parser.add_argument("--in-place", action="store_true", help="record the review decisions in the workspace itself "
                        "(default: work on a temporary copy)")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    cifar = args.cifar or str(Path(__file__).resolve().parents[4] / "shared" / "data" / "cifar10-subset")
    for path in render(Path(args.out), cifar, args.workspace, args.pass_id, args.run, args.tag, args.finetune_result,
                       args.in_place):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
