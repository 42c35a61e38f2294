"""Same run: ivffs with an HNSW quantiser, add-time efSearch 64 (the old) vs 16, on 1M x 128 of the cached data."""
import json, resource, sys, time, numpy as np
from naviewer.defense.config import DiftConfig
from naviewer.defense.knn import KnnIndex, as_float32
def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF); return r.ru_utime + r.ru_stime
X = np.load("/tmp/nvscale/data/synth_1000000x128_float32_s0_ba37bd4381/features.npy", mmap_mode="r")
z = as_float32(X, True, memory_mb=512)
rows = []
for add_ef in (64, 16):
    cfg = DiftConfig(knn_backend="ivffs", ivf_quantizer="hnsw", ivf_nlist=25000, ivf_add_ef=add_ef, num_threads=2,
                     recall_sample=1000, knn_memory_mb=512, k=10)
    c0, w0 = cpu(), time.perf_counter()
    index = KnnIndex(z, cfg)
    c1, w1 = cpu(), time.perf_counter()
    res = index.all_neighbors(10)
    c2, w2 = cpu(), time.perf_counter()
    row = {"add_ef": add_ef, "build_cpu_s": c1 - c0, "build_wall_s": w1 - w0, "query_cpu_s": c2 - c1,
           "query_wall_s": w2 - w1, "recall_at_10": res.recall, "ivf": index.ivf, "timings": res.timings}
    print(json.dumps(row), flush=True); rows.append(row)
json.dump(rows, open("add_ef_1m.json", "w"), indent=1)
