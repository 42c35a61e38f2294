"""PROTOTYPE RECORD (session 8): ran against an `ivf_list_probe` setting that was removed after this measurement;
Same index, same run: an indexed sample's nprobe lists from the HNSW quantiser (the old) vs chosen among
the P lists nearest its own list (ivf_list_probe); 1M x 128 of the cached synthetic data, 25k lists."""
import json, resource, sys, time, numpy as np
from naviewer.defense.config import DiftConfig
from naviewer.defense.knn import KnnIndex, as_float32
def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF); return r.ru_utime + r.ru_stime
X = np.load(sys.argv[1], mmap_mode="r")
z = as_float32(X, True, memory_mb=512)
cfg = DiftConfig(knn_backend="ivffs", ivf_quantizer="hnsw", ivf_nlist=int(sys.argv[2]), ivf_list_probe=3.0,
                 num_threads=2, recall_sample=0, knn_memory_mb=512, k=10)
c0, w0 = cpu(), time.perf_counter(); index = KnnIndex(z, cfg); c1, w1 = cpu(), time.perf_counter()
print(json.dumps({"build_cpu_s": c1 - c0, "build_wall_s": w1 - w0, "ivf": index.ivf}), flush=True)
rng = np.random.default_rng(1)
ids = np.sort(rng.choice(index.n, size=int(sys.argv[3]), replace=False))
check = np.sort(rng.choice(ids, size=1000, replace=False))
exact = index.exact_neighbors_of(check, 10)
pos = np.searchsorted(ids, check)
table, rows = index._list_nearby, index._row_list
out = []
for mode in ("hnsw", 1.0, 1.5, 2.0, 3.0, "hnsw"):
    if mode == "hnsw":
        index._row_list = None
    else:
        index._row_list = rows; index._list_nearby = np.ascontiguousarray(table[:, :int(round(mode * 32))])
    c0, w0 = cpu(), time.perf_counter(); lab, _ = index.neighbors_of(ids, 10); c1, w1 = cpu(), time.perf_counter()
    rec = np.mean([len(set(lab[p]) & set(e)) / 10 for p, e in zip(pos, exact)])
    row = {"mode": mode, "queries": int(ids.size), "cpu_us_per_query": 1e6 * (c1 - c0) / ids.size,
           "wall_us_per_query": 1e6 * (w1 - w0) / ids.size, "recall_at_10": rec}
    print(json.dumps(row), flush=True); out.append(row)
json.dump(out, open(sys.argv[4], "w"), indent=1)
