"""Session 25: PatchSearch's rule, before and after (neighbours), on no-poison encoders: every flag is a false flag."""
import sys, glob, os, numpy as np
from naviewer.workspace import Workspace
from naviewer.defense.detectors.patchsearch import classifier_flags, neighbour_averaged
for ws_path, tag in zip(sys.argv[1::2], sys.argv[2::2]):
    with Workspace.open(ws_path, read_only=True) as ws:
        ps = [p for p in ws.store.passes() if p["method"] == "patchsearch"]
        for info in ps:
            p = np.asarray(ws.store.pass_scores(info["id"])["score"], float)
            emb = sorted(glob.glob(os.path.join(ws_path, "embeddings", "**", f"*{tag}*.npy"), recursive=True))
            z = np.load(emb[-1]).astype(np.float32)[:len(p)]
            z /= np.linalg.norm(z, axis=1, keepdims=True)
            sim = z @ z.T; np.fill_diagonal(sim, -np.inf)
            nn = np.argpartition(-sim, 10, axis=1)[:, :10]
            old = classifier_flags(p, "gmm2", 0.01, 3.5, 0, 0.2)
            new = classifier_flags(neighbour_averaged(p, nn), "robust_z", 0.01, 3.5, 0, 0.2)
            print(ws_path.split("/")[-1], "pass", info["id"], "n", len(p), "old flags", int(old["flags"].sum()),
                  old["threshold"].get("refused", ""), "| new flags", int(new["flags"].sum()), new["threshold"].get("refused", ""),
                  "| emb", os.path.basename(emb[-1]))
