"""HNSW coarse quantiser over 39k centroids: efSearch 32-64 for a query's 32 lists, per-query time (1 thread)
and overlap with the exact top-32, 20,000 rows of the 10M synthetic data."""
import sys, time, json, numpy as np, faiss
from faiss.contrib.clustering import two_level_clustering
X = np.load(sys.argv[1], mmap_mode="r"); nlist = int(sys.argv[2]); rng = np.random.default_rng(0)
train = np.ascontiguousarray(X[np.sort(rng.choice(len(X), 16 * nlist, replace=False))], dtype=np.float32)
train /= np.linalg.norm(train, axis=1, keepdims=True)
cent, _ = two_level_clustering(train, int(round(np.sqrt(nlist))), nlist, seed=0)
cent = np.ascontiguousarray(cent, dtype=np.float32); d = cent.shape[1]
q = np.ascontiguousarray(X[np.sort(rng.choice(len(X), 20000, replace=False))], dtype=np.float32)
q /= np.linalg.norm(q, axis=1, keepdims=True)
flat = faiss.IndexFlatL2(d); flat.add(cent); _, exact = flat.search(q, 32)
h = faiss.IndexHNSWFlat(d, 32); h.hnsw.efConstruction = 40; h.add(cent); faiss.omp_set_num_threads(1)
out = []
for ef in (64, 48, 40, 32, 64):
    h.hnsw.efSearch = ef; t = time.perf_counter(); _, I = h.search(q, 32)
    out.append({"efSearch": ef, "us_per_query": 1e6 * (time.perf_counter() - t) / len(q),
                "top32_overlap": float(np.mean([len(set(a) & set(b)) / 32 for a, b in zip(I, exact)]))})
    print(json.dumps(out[-1]), flush=True)
json.dump(out, open(sys.argv[3], "w"), indent=1)
