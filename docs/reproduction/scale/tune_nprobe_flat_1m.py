"""Recall@10 of IVF-SQ8 (flat coarse quantiser) vs nprobe for several list sizes, on the bench's 1M x 128 data."""
import glob, json, sys, time
import numpy as np, faiss, torch
from naviewer.defense.knn import exact_knn, remove_self
faiss.omp_set_num_threads(1); torch.set_num_threads(1)
x = np.array(np.load(glob.glob("/tmp/nvscale/data/synth_1000000x128*/features.npy")[0], mmap_mode="r"))
x /= np.linalg.norm(x, axis=1, keepdims=True)
N, K = len(x), 10
rng = np.random.default_rng(0)
ids = np.sort(rng.choice(N, 256, replace=False))
gt, _ = exact_knn(x, x[ids], K, query_ids=ids)
for nlist in [int(v) for v in sys.argv[1].split(",")]:
    index = faiss.IndexIVFScalarQuantizer(faiss.IndexFlatL2(128), 128, nlist, faiss.ScalarQuantizer.QT_8bit)
    t0 = time.process_time(); index.train(x[np.sort(rng.choice(N, max(200000, 39 * nlist) if 39 * nlist < N else N, replace=False))]); tt = time.process_time() - t0
    t0 = time.process_time(); index.add(x); ta = time.process_time() - t0
    for nprobe in (2, 4, 8, 16, 32):
        index.nprobe = nprobe
        t0 = time.process_time(); _, lab = index.search(x[ids], K + 11); ts = time.process_time() - t0
        lab = lab.astype(np.int64); miss = lab < 0
        diff = x[np.where(miss, 0, lab)] - x[ids][:, None]; d = np.sqrt((diff ** 2).sum(-1)); d[miss] = np.inf
        o = np.argsort(d, 1); lab, d = np.take_along_axis(lab, o, 1), np.take_along_axis(d, o, 1)
        lab, _ = remove_self(lab, d, ids, K)
        rec = np.mean([np.intersect1d(a, b).size for a, b in zip(lab, gt)]) / K
        print(json.dumps(dict(n=N, nlist=nlist, list_size=N // nlist, nprobe=nprobe, scanned=nprobe * N // nlist,
                              recall=round(float(rec), 4), train_cpu_s=round(tt, 1), add_cpu_s=round(ta, 1),
                              search_cpu_us_per_query=round(ts / len(ids) * 1e6))), flush=True)
