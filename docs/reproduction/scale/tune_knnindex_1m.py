"""KnnIndex ivfsq at 1M from the memmap: flat vs HNSW coarse quantiser, nlist ~ N/256, recall and CPU per query."""
import glob, json, sys, time, resource
import numpy as np
from naviewer.defense.config import DiftConfig
from naviewer.defense.knn import KnnIndex, as_float32
src = np.load(glob.glob("/tmp/nvscale/data/synth_1000000x128*/features.npy")[0], mmap_mode="r")
quant, nlist = sys.argv[1], int(sys.argv[2])
t0 = time.process_time(); z = as_float32(src, True); tn = time.process_time() - t0
for nprobe in [int(v) for v in sys.argv[3].split(",")]:
    cfg = DiftConfig(k=10, knn_backend="ivfsq", ivf_quantizer=quant, ivf_nlist=nlist, ivf_nprobe=nprobe, num_threads=1,
                     recall_sample=256)
    t0 = time.process_time(); index = KnnIndex(z, cfg); tb = time.process_time() - t0
    ids = np.sort(np.random.default_rng(1).choice(len(z), 20000, replace=False))
    t0 = time.process_time(); lab, _ = index.neighbors_of(ids, 10); tq = time.process_time() - t0
    full = np.zeros((len(z), 10), dtype=np.int64)
    r_ids = np.sort(np.random.default_rng(0).choice(len(z), 256, replace=False))
    full[r_ids] = index.neighbors_of(r_ids, 10)[0]
    rec = index.recall_at_k(10, full, 256)
    print(json.dumps(dict(quantizer=quant, nlist=nlist, nprobe=nprobe, recall=round(rec, 4), normalise_cpu_s=round(tn, 1),
                          build_cpu_s=round(tb, 1), query_cpu_us=round(tq / 20000 * 1e6), ivf=index.ivf,
                          maxrss_gb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2))), flush=True)
