"""Tuning the large-N kNN backend: recall@10 (vs exact, 256 rows) and time per query, extrapolated to N."""
import json, os, sys, time
import numpy as np, faiss
from naviewer.defense.synthetic import make_embeddings
from naviewer.defense.knn import exact_knn, pca_project, project, remove_self

N = int(sys.argv[1]); D = 128; K = 10; THREADS = 2
faiss.omp_set_num_threads(THREADS)
import torch; torch.set_num_threads(THREADS)
path = f"/tmp/nvscale/tune_{N}.npy"
if not os.path.exists(path):
    s = make_embeddings(N, D, n_classes=20, intrinsic_dim=16, poison_fraction=0.01, poison_spread=0.15,
                        duplicate_groups=max(1, N // 250), seed=0)
    x = s.features; x /= np.linalg.norm(x, axis=1, keepdims=True); np.save(path, x)
x = np.load(path)
rng = np.random.default_rng(0)
gt_ids = np.sort(rng.choice(N, 256, replace=False))
gt, _ = exact_knn(x, x[gt_ids], K, query_ids=gt_ids)
qsub = np.union1d(gt_ids, rng.choice(N, 20000 - 256, replace=False))
pos = np.searchsorted(qsub, gt_ids)
out = []

def rerank(q, lab, k):
    miss = lab < 0
    diff = x[np.where(miss, 0, lab)] - q[:, None, :]
    d = np.sqrt(np.einsum("ijk,ijk->ij", diff, diff)); d[miss] = np.inf
    o = np.argsort(d, axis=1, kind="stable")
    return np.take_along_axis(lab, o, 1), np.take_along_axis(d, o, 1)

def run(name, index, space_fn, nprobes, reranks, train_s, add_s):
    for npb in nprobes:
        index.nprobe = npb
        for rr in reranks:
            q = x[qsub]; t0 = time.perf_counter()
            _, lab = index.search(space_fn(q), K + 1 + rr)
            ts = time.perf_counter() - t0; t0 = time.perf_counter()
            lab, d = rerank(q, lab.astype(np.int64), K + 1 + rr)
            tr = time.perf_counter() - t0
            lab, _ = remove_self(lab, d, qsub, K)
            rec = np.mean([np.intersect1d(lab[p], gt[i]).size for i, p in enumerate(pos)]) / K
            row = dict(n=N, variant=name, nprobe=npb, rerank=rr, recall=round(float(rec), 4), train_s=round(train_s, 1),
                       add_s=round(add_s, 1), search_s_at_N=round(ts * N / len(qsub), 1), rerank_s_at_N=round(tr * N / len(qsub), 1))
            out.append(row); print(json.dumps(row), flush=True)

def build(name, d_in, factory_fn, space_fn, nprobes, reranks):
    index = factory_fn()
    train = x[np.sort(rng.choice(N, min(N, 200000), replace=False))]
    t0 = time.perf_counter(); index.train(space_fn(train)); tt = time.perf_counter() - t0
    t0 = time.perf_counter()
    for b in range(0, N, 100000): index.add(space_fn(x[b:b + 100000]))
    ta = time.perf_counter() - t0
    run(name, index, space_fn, nprobes, reranks, tt, ta)

ident = lambda v: np.ascontiguousarray(v, dtype=np.float32)
_, mean, axes = pca_project(x[:200000], 64)
pca = lambda v: project(np.ascontiguousarray(v, dtype=np.float32), mean, axes)
which = sys.argv[2:] or ["sq8flat", "sq8hnsw", "sq8hnsw64", "pq"]
n4 = int(4 * np.sqrt(N)); n16 = int(16 * np.sqrt(N))
def hnswq(d, nl):
    q = faiss.IndexHNSWFlat(d, 32); q.hnsw.efSearch = 64; q.hnsw.efConstruction = 64
    return q
if "sq8flat" in which:
    build(f"SQ8 128d flatQ nlist={n4}", 128, lambda: faiss.IndexIVFScalarQuantizer(faiss.IndexFlatL2(128), 128, n4, faiss.ScalarQuantizer.QT_8bit), ident, [8, 16, 32], [10])
if "sq8hnsw" in which:
    qz = hnswq(128, n16)
    build(f"SQ8 128d hnswQ nlist={n16}", 128, lambda: faiss.IndexIVFScalarQuantizer(qz, 128, n16, faiss.ScalarQuantizer.QT_8bit), ident, [8, 16, 32], [0, 10])
if "sq8hnsw64" in which:
    qz2 = hnswq(64, n16)
    build(f"SQ8 pca64 hnswQ nlist={n16}", 64, lambda: faiss.IndexIVFScalarQuantizer(qz2, 64, n16, faiss.ScalarQuantizer.QT_8bit), pca, [8, 16, 32], [10])
if "pq" in which:
    build(f"PQ16 pca64 flatQ nlist={n4}", 64, lambda: faiss.IndexIVFPQ(faiss.IndexFlatL2(64), 64, n4, 16, 8), pca, [32, 64], [10, 30])
json.dump(out, open(f"/tmp/nvscale/tune_{N}_{'_'.join(which)}.json", "w"), indent=1)
