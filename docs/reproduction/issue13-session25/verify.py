"""Session 25: does a flip test of the classifier's top candidates part poisons from the clean images the poison
classifier also scores high? (CIFAR patch cell, seed 1, epoch-70 encoder, PatchSearch pass 4.)"""
import sys, json, time
import numpy as np, torch
from naviewer.workflows.workspace_setup import ground_truth_mask
from naviewer.workspace import Workspace
from naviewer.data.store import ImageStore
from naviewer.ssl.checkpoints import load_encoder
from naviewer.defense.detectors import make_detector
from naviewer.defense.detectors.patchsearch import (_kmeans, test_image_ids, eval_tensor, cam_module, auto_window)
from naviewer.jobs import JobContext
torch.set_num_threads(2)
ws_path, pid, emb, ckpt, M = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5])
with Workspace.open(ws_path, read_only=True) as ws:
    truth = np.asarray(ground_truth_mask(ws), bool)
    p = np.asarray(ws.store.pass_scores(pid)["score"], float)
    store = ImageStore.from_dataset(ws.checked_dataset(), JobContext())
enc = load_encoder(ckpt)
backbone = enc.backbone.eval()
size = int(enc.image_size)
n = len(p)
z = np.load(emb).astype(np.float32)[:n]
z /= np.linalg.norm(z, axis=1, keepdims=True)
det = make_detector("patchsearch")
k, t = max(10, min(1000, n // 100)), max(50, min(1000, n // 10))
labels, centroids, distance = _kmeans(z, k, 0)
rng = np.random.default_rng(0)
test_ids = test_image_ids(labels, distance, k, t, rng)
dev = torch.device("cpu")
test_x = eval_tensor(store, test_ids, size, dev)
layer_name, layer = cam_module(backbone, "auto", size, dev)
cent_t = torch.as_tensor(centroids / np.linalg.norm(centroids, axis=1, keepdims=True))
from naviewer.defense.detectors.patchsearch import nearest_centroid
baseline = np.bincount(nearest_centroid(z[test_ids], centroids), minlength=k)
window = auto_window(size)
order = np.argsort(-p)[:M]
flips = np.full(n, np.nan)
t0 = time.time()
per = max(1, 256 // len(test_ids))
for b in range(0, M, per):
    ids = order[b:b + per]
    f, _ = det._score_batch(backbone, layer, store, ids, labels, cent_t, centroids, test_x, baseline, size, window, rng)
    flips[ids] = f
print("seconds", round(time.time() - t0, 1), "window", window, "k", k, "t", len(test_ids), "layer", layer_name)
np.save("flips.npy", flips)
sel = order
print("top-M poisons", truth[sel].sum(), "clean", (~truth[sel]).sum())
print("flips poisons pct", np.percentile(flips[sel][truth[sel]], [10, 25, 50, 75, 90]))
print("flips clean   pct", np.percentile(flips[sel][~truth[sel]], [10, 25, 50, 75, 90]))
