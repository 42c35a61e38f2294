"""Session 25: neighbour-smoothed PatchSearch on every stored pass with a PatchSearch score and saved embeddings."""
import sys, glob, os, numpy as np
from naviewer.workflows.workspace_setup import ground_truth_mask
from naviewer.workspace import Workspace
from sklearn.metrics import roc_auc_score

def best(truth, s, P):
    order = np.argsort(-s); tp = np.cumsum(truth[order]); n = np.arange(1, len(s) + 1)
    ok = tp / n >= 0.8
    return float((tp[ok] / P).max()) if ok.any() else 0.0

def smooth(p, z, k):
    z = z / np.linalg.norm(z, axis=1, keepdims=True)
    lo = np.log(np.clip(p, 1e-6, 1 - 1e-6) / (1 - np.clip(p, 1e-6, 1 - 1e-6)))
    out = np.empty_like(lo)
    for b in range(0, len(z), 2048):
        sim = z[b:b + 2048] @ z.T
        for r in range(sim.shape[0]):
            sim[r, b + r] = -np.inf
        nn = np.argpartition(-sim, k, axis=1)[:, :k]
        out[b:b + 2048] = lo[b:b + 2048] + lo[nn].mean(1)
    return out

if __name__ == "__main__":
  for ws_path in sys.argv[1:]:
        try:
            with Workspace.open(ws_path, read_only=True) as ws:
                truth = np.asarray(ground_truth_mask(ws), bool)
                passes = [p for p in ws.store.passes() if p["method"] == "patchsearch"]
                if not passes:
                    continue
                pid = passes[-1]["id"]
                p = np.asarray(ws.store.pass_scores(pid)["score"], float)
                emb = None
                for cand in sorted(glob.glob(os.path.join(ws_path, "embeddings", "**", "*.npy"), recursive=True)):
                    a = np.load(cand, mmap_mode="r")
                    if a.ndim == 2 and a.shape[0] >= len(p):
                        emb = np.asarray(a[:len(p)], np.float32); src = cand
                if emb is None:
                    print(ws_path, "no embeddings"); continue
        except Exception as exc:
            print(ws_path, "skip", exc); continue
        P = truth.sum()
        row = [os.path.basename(os.path.dirname(ws_path.rstrip('/'))) or ws_path, f"n={len(p)} P={P}",
               f"own auroc {roc_auc_score(truth, p):.3f} best {best(truth, p, P):.2f}"]
        for k in (10, 20):
            s = smooth(p, emb, k)
            row.append(f"k{k} auroc {roc_auc_score(truth, s):.3f} best {best(truth, s, P):.2f}")
        print(" | ".join(row), "| emb", os.path.relpath(src, ws_path), flush=True)
