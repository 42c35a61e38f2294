"""PROTOTYPE RECORD (session 8): imports a `CentroidGroups` prototype that was not kept (see README, session 8).
Coarse quantiser search for 39k centroids: HNSW (efSearch 64, the present) vs CentroidGroups (batched
matrix products over sqrt(nlist) k-means groups of the centroids, probe p): per-query time and overlap with
the exact top-32, on 20,000 rows of the 10M synthetic data."""
import sys, time, json, numpy as np, faiss
from threadpoolctl import threadpool_limits
from faiss.contrib.clustering import two_level_clustering
from naviewer.defense.centroid_groups import CentroidGroups
X = np.load(sys.argv[1], mmap_mode="r")
nlist = int(sys.argv[2]); rng = np.random.default_rng(0)
train = np.ascontiguousarray(X[np.sort(rng.choice(len(X), 16 * nlist, replace=False))], dtype=np.float32)
train /= np.linalg.norm(train, axis=1, keepdims=True)
cent, _ = two_level_clustering(train, int(round(np.sqrt(nlist))), nlist, seed=0)
cent = np.ascontiguousarray(cent, dtype=np.float32); d = cent.shape[1]
q = np.ascontiguousarray(X[np.sort(rng.choice(len(X), 20000, replace=False))], dtype=np.float32)
q /= np.linalg.norm(q, axis=1, keepdims=True)
flat = faiss.IndexFlatL2(d); flat.add(cent); _, exact = flat.search(q, 32)
def overlap(I): return float(np.mean([len(set(a) & set(b)) / 32 for a, b in zip(I, exact)]))
out = []
h = faiss.IndexHNSWFlat(d, 32); h.hnsw.efConstruction = 40; h.add(cent); h.hnsw.efSearch = 64
for th in (1, 2):
    faiss.omp_set_num_threads(th); t = time.perf_counter(); _, I = h.search(q, 32)
    out.append({"quantiser": "hnsw ef64", "threads": th, "us_per_query": 1e6 * (time.perf_counter() - t) / len(q), "top32_overlap": overlap(I)})
    print(json.dumps(out[-1]), flush=True)
t = time.perf_counter(); g = CentroidGroups(cent, seed=0); print("grouping", g.groups, "groups, width", g.width, f"{time.perf_counter() - t:.1f} s", flush=True)
for p in (4, 8, 12):
    for th in (1, 2):
        with threadpool_limits(th):
            t = time.perf_counter(); I, D = g.search(q, 32, p)
        out.append({"quantiser": f"groups {g.groups} probe {p}", "threads": th, "us_per_query": 1e6 * (time.perf_counter() - t) / len(q), "top32_overlap": overlap(I)})
        print(json.dumps(out[-1]), flush=True)
json.dump(out, open(sys.argv[3], "w"), indent=1)
