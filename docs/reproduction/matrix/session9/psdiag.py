"""PatchSearch diagnostics on a matrix cell: search scores of poisons vs clean, the classifier, timings."""
import sys, time, json, numpy as np, torch
from naviewer.workspace import Workspace
from naviewer.data.store import ImageStore
from naviewer.ssl.checkpoints import load_encoder
from naviewer.ssl.embed import extract_embeddings
from naviewer.defense.detectors import DetectorInputs, make_detector
from naviewer.workflows.workspace_setup import ground_truth_mask
from naviewer.evaluation.detection import auroc
cell = sys.argv[1]; settings = json.loads(sys.argv[2]) if len(sys.argv) > 2 else {}
torch.set_num_threads(1)
ws = Workspace.open(cell + "/workspace")
truth = ground_truth_mask(ws)
enc = load_encoder(cell + "/detection-epoch.pt")
store = ImageStore.from_dataset(ws.dataset())
feats = extract_embeddings(enc.backbone, store, image_size=enc.image_size)
t = time.time()
r = make_detector("patchsearch", **settings).run(DetectorInputs(feats, encoder=enc.backbone, images=store, image_size=enc.image_size))
print("seconds", round(time.time() - t, 1), {k: v for k, v in r.extras.items() if np.ndim(v) == 0})
s = r.extras["search_score"]; done = np.isfinite(s)
print("searched", done.sum(), "poisons searched", (done & truth).sum(), "of", truth.sum())
print("search score poisons: median", np.median(s[done & truth]) if (done & truth).any() else None, "clean median", np.median(s[done & ~truth]), "clean max", s[done & ~truth].max())
top = r.extras["top_ids"]; print("top20 poisons", truth[top].sum(), "of", len(top))
print("search AUROC (searched only)", auroc(s[done], truth[done]))
print("score AUROC", auroc(r.score, truth), "flags", r.flags.sum(), "tp", (r.flags & truth).sum(), r.extras.get("validation"))
if np.isfinite(r.score).all():
    print("p poisons quantiles", np.quantile(r.score[truth], [0.1, 0.5, 0.9]).round(3), "clean", np.quantile(r.score[~truth], [0.5, 0.9, 0.99]).round(3))
np.save(cell.rstrip('/').split('/')[-1] + "-patches.npy", r.extras.get("patches"))
