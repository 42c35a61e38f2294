"""ASR with my own kNN on naviewer-embedded features.
usage: python asr.py CKPT OUTDIR [ATTACKS...]   (attacks: A B)
Embeds (via `naviewer embed` CLI) clean train (bank), clean test, trigX/test; labels are
recovered from the folder layout (sorted class dirs, sorted files) and the row order is
checked by clean accuracy.
"""
import os, subprocess, sys, json
import numpy as np

D = "/work/exp/s29/indep/data"

def listing(root):
    rows = []
    for c in sorted(os.listdir(root)):
        for f in sorted(os.listdir(os.path.join(root, c))):
            rows.append((c, f))
    return rows

def embed(ckpt, root, out):
    if not os.path.exists(out):
        subprocess.run(["nice", "-n", "10", "naviewer", "embed", "--checkpoint", ckpt, "--dataset", root,
                        "--out", out], check=True, stdout=subprocess.DEVNULL)
    return np.load(out)

def knn(bank, bl, q, k=20, T=0.1, C=10):
    b = bank / np.linalg.norm(bank, axis=1, keepdims=True)
    qq = q / np.linalg.norm(q, axis=1, keepdims=True)
    s = qq @ b.T
    idx = np.argsort(-s, axis=1)[:, :k]
    w = np.exp(np.take_along_axis(s, idx, 1) / T)
    votes = np.zeros((len(q), C))
    for j in range(k):
        np.add.at(votes, (np.arange(len(q)), bl[idx[:, j]]), w[:, j])
    return votes.argmax(1)

def main():
    ckpt, out = sys.argv[1], sys.argv[2]
    atks = sys.argv[3:] or ["A", "B"]
    os.makedirs(out, exist_ok=True)
    res = {}
    bank = embed(ckpt, f"{D}/clean/train", f"{out}/bank.npy")
    bl = np.array([int(c) for c, _ in listing(f"{D}/clean/train")])
    te = embed(ckpt, f"{D}/clean/test", f"{out}/test.npy")
    tl = np.array([int(c) for c, _ in listing(f"{D}/clean/test")])
    for k in (20, 200):
        p = knn(bank, bl, te, k=k)
        res[f"clean_acc_k{k}"] = float((p == tl).mean())
        res[f"clean_nontarget_as_0_k{k}"] = float((p[tl != 0] == 0).mean())
    for a in atks:
        tr = embed(ckpt, f"{D}/trig{a}/test", f"{out}/trig{a}.npy")
        lab = np.array([int(c) for c, _ in listing(f"{D}/trig{a}/test")])
        for k in (20, 200):
            p = knn(bank, bl, tr, k=k)
            res[f"ASR_{a}_k{k}"] = float((p == 0).mean())
            res[f"acc_trig{a}_k{k}"] = float((p == lab).mean())
    json.dump(res, open(f"{out}/asr.json", "w"), indent=1)
    print(json.dumps(res, indent=1))

if __name__ == "__main__":
    main()
