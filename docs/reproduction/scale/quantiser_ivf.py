"""Coarse quantiser search for 25k / 39k centroids: HNSW (efSearch 64, the present) vs an IVF-Flat over the
centroids (sqrt(nlist) groups, nprobe p): per-query time (1 and 2 threads) and overlap with the exact top-32."""
import sys, time, json, numpy as np, faiss
from faiss.contrib.clustering import two_level_clustering
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
def timed(index, threads):
    faiss.omp_set_num_threads(threads); t = time.perf_counter(); _, I = index.search(q, 32)
    return 1e6 * (time.perf_counter() - t) / len(q), I
out = []
h = faiss.IndexHNSWFlat(d, 32); h.hnsw.efConstruction = 40; h.add(cent); h.hnsw.efSearch = 64
for th in (1, 2):
    us, I = timed(h, th); out.append({"quantiser": "hnsw ef64", "threads": th, "us_per_query": us, "top32_overlap": overlap(I)})
    print(json.dumps(out[-1]), flush=True)
groups = int(round(np.sqrt(nlist)))
ivf = faiss.IndexIVFFlat(faiss.IndexFlatL2(d), d, groups); ivf.train(cent); ivf.add(cent)
for p in (2, 4, 8, 16):
    ivf.nprobe = p
    for th in (1, 2):
        us, I = timed(ivf, th); out.append({"quantiser": f"ivf-flat {groups} groups nprobe {p}", "threads": th, "us_per_query": us, "top32_overlap": overlap(I)})
        print(json.dumps(out[-1]), flush=True)
json.dump(out, open(sys.argv[3], "w"), indent=1)
