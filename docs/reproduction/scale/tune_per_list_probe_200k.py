"""Cluster-blocked all-kNN: k-means lists, each list's members against the members of the P lists nearest its centroid (GEMM)."""
import json, sys, time
import numpy as np, faiss, torch
from naviewer.defense.knn import exact_knn
N = int(sys.argv[1]); K = 10
torch.set_num_threads(2); faiss.omp_set_num_threads(2)
x = np.load(f"/tmp/nvscale/tune_{N}.npy")
rng = np.random.default_rng(0)
gt_ids = np.sort(rng.choice(N, 256, replace=False))
gt, _ = exact_knn(x, x[gt_ids], K, query_ids=gt_ids)
xt = torch.from_numpy(x)
for L in [int(a) for a in sys.argv[2].split(",")]:
    nlist = N // L
    t0 = time.perf_counter()
    km = faiss.Kmeans(128, nlist, niter=10, seed=0, max_points_per_centroid=64)
    km.train(x[np.sort(rng.choice(N, min(N, 64 * nlist), replace=False))])
    tk = time.perf_counter() - t0
    t0 = time.perf_counter()
    _, assign = km.index.search(x, 1); assign = assign[:, 0]
    ta = time.perf_counter() - t0
    order = np.argsort(assign, kind="stable"); counts = np.bincount(assign, minlength=nlist)
    starts = np.concatenate([[0], np.cumsum(counts)])
    xs = xt[order]; sq = (xs * xs).sum(1)
    for P in [int(a) for a in sys.argv[3].split(",")]:
        _, probe = km.index.search(km.centroids, P)
        t0 = time.perf_counter()
        nb = np.empty((N, K), dtype=np.int64)
        for c in range(nlist):
            a, b = starts[c], starts[c + 1]
            if a == b: continue
            rows = np.concatenate([np.arange(starts[p], starts[p + 1]) for p in (probe[c] if c in probe[c] else np.r_[c, probe[c][:-1]])])
            rt = torch.from_numpy(rows)
            cand = xs[rt]
            d2 = sq[a:b, None] + sq[rt][None, :] - 2 * xs[a:b] @ cand.T
            kk = min(K + 1, rows.size)
            _, idx = torch.topk(d2, kk, dim=1, largest=False)
            ids = order[rows[idx.numpy()]]
            me = order[a:b]
            # drop self
            keep = ids != me[:, None]
            sel = np.argsort(~keep, axis=1, kind="stable")[:, :K]
            nb[me] = np.take_along_axis(ids, sel, 1)
        ts = time.perf_counter() - t0
        rec = np.mean([np.intersect1d(nb[r], gt[i]).size for i, r in enumerate(gt_ids)]) / K
        row = dict(n=N, L=L, nlist=nlist, P=P, cand_per_query=int(P * L), recall=round(float(rec), 4),
                   kmeans_s=round(tk, 1), assign_s=round(ta, 1), search_s=round(ts, 1))
        print(json.dumps(row), flush=True)
