"""Render every analyst view to PNG over a realistic workspace (docs/screenshots/analyst-*.png).

Real CIFAR-10 images with real Noisy Alignment composites crafted by ``naviewer.attacks`` in a real
workspace; the embedding is *planted* (class blobs plus a tight pile of the poisons, what a trained
encoder shows DIFT) so no training is needed. Usage::

    xvfb-run -s "-screen 0 1920x1200x24" python -m naviewer.gui.analyst.screenshots OUT_DIR [CIFAR_ROOT]
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

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


def render(out: Path, cifar: str) -> list[Path]:
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
        ws, store, emb = build_workspace(Path(tmp), cifar)
        session = AnalysisSession.from_workspace(ws, images=store, embeddings=emb, reviewer="analyst")
        panel = AnalystPanel(session, workspace=ws, run="simclr", tag="epoch10")
        panel.resize(1680, 1050)
        panel.show()
        app.processEvents()
        clusters = session.clusters()
        top = clusters[0].members
        session.confirm(top[: len(top) * 2 // 3])
        for cl in clusters[1:4]:
            session.reject(cl.members)
        if len(clusters) > 4:
            session.later(clusters[4].members)
        panel.clusters.select_cluster(0)
        session.set_current(int(top[-1]))
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

        view_map = alone(DensityMapWidget(session), 900, 700)
        view_map.set_colour_mode("class")
        view_map.show_hover(int(top[3]), view_map.plot.rect().center())
        save(view_map, "map")
        gallery = alone(GalleryWidget(session), 900, 640)
        gallery.view.scrollToTop()
        save(gallery, "gallery")
        cluster_view = alone(ClusterListWidget(session), 1100, 330)
        cluster_view.select_cluster(0)
        save(cluster_view, "clusters")
        why = alone(WhyFlaggedWidget(session), 1500, 420)
        save(why, "why")
        inspector = alone(SampleInspector(session), 380, 820)
        inspector.set_evaluation_mode(True)
        session.set_current(int(top[0]))
        save(inspector, "inspector")
        gate = alone(FineTuneGate(session), 720, 300)
        gate.set_result(
            {"before": {"confirmed_density": 6.43, "knn_acc": 0.812, "asr": 0.64}, "after": {"confirmed_density": 1.21, "knn_acc": 0.818, "asr": 0.07}}
        )
        save(gate, "finetune")
        for widget in (view_map, gallery, cluster_view, why, inspector, gate):
            widget.close()

        crop = CropLayoutWidget(n_pairs=20_000)
        panel.show_crop_layout(int(top[0]))
        recorded = panel.crop_layout.image_layout
        crop.set_sample(panel.crop_layout.image, recorded)
        crop.pin()
        crop.set_layout(crop.crop_layout.with_(gap=8))
        crop.pin()
        crop.set_layout(crop.crop_layout.with_(gap=0, trigger_x=0.2, trigger_y=0.25))
        crop.pin()
        crop.set_sample(panel.crop_layout.image, recorded)
        crop.sample(150)
        crop.resize(1300, 700)
        crop.show()
        save(crop, "crop-layout")

        dialog = ExportDialog(session, ws, panel, out_dir=Path(tmp) / "export")
        dialog.resize(620, 200)
        dialog.show()
        save(dialog, "export")
        dialog.close()
        panel.close()
        crop.close()
    return written


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    out = Path(argv[0]) if argv else Path("docs/screenshots")
    cifar = argv[1] if len(argv) > 1 else str(Path(__file__).resolve().parents[4] / "shared" / "data" / "cifar10-subset")
    for path in render(out, cifar):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
