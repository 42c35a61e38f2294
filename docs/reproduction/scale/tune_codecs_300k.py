"""Which IVF codec scans fastest at a given recall@10, on the bench's hard synthetic data (subset)."""
import sys, time, numpy as np, faiss
faiss.omp_set_num_threads(1)
X = np.load("/tmp/nvscale/data/synth_1000000x128_float32_s0_ba37bd4381/features.npy", mmap_mode="r")
n = int(sys.argv[1]) if len(sys.argv) > 1 else 300_000
x = np.array(X[:n], dtype=np.float32); x /= np.linalg.norm(x, axis=1, keepdims=True)
d = x.shape[1]; rng = np.random.default_rng(0); qi = rng.choice(n, 400, replace=False); q = x[qi]
# exact 11-NN (self included)
G = q @ x.T; dd = 2 - 2 * G; true = np.argsort(dd, axis=1)[:, 1:11]
nlist = n // 256
quant = faiss.IndexFlatL2(d); tr = x[rng.choice(n, 39 * nlist, replace=False)]
km = faiss.Kmeans(d, nlist, niter=10, seed=0); km.train(tr); quant.add(km.centroids)
def recall(lab):
    return np.mean([len(set(a) & set(b)) / 10 for a, b in zip(lab, true)])
def rerank(lab, kf):
    out = []
    for i, row in enumerate(lab):
        row = row[row >= 0]; row = row[row != qi[i]]
        dist = ((x[row] - q[i]) ** 2).sum(1); out.append(row[np.argsort(dist)[:10]])
    return out
def run(name, index, nprobes, kf):
    index.train(tr); index.add(x)
    for npb in nprobes:
        index.nprobe = npb; t = time.process_time(); D, L = index.search(q, kf); dt = (time.process_time() - t) / len(q)
        print(f"{name:28s} nprobe {npb:3d} fetch {kf:3d}: recall@10 {recall(rerank(L, kf)):.3f}  {dt*1e6:7.0f} us/query", flush=True)
run("SQ8", faiss.IndexIVFScalarQuantizer(quant, d, nlist, faiss.ScalarQuantizer.QT_8bit), (16, 32), 21)
run("SQ8 uniform", faiss.IndexIVFScalarQuantizer(quant, d, nlist, faiss.ScalarQuantizer.QT_8bit_uniform), (16, 32), 21)
run("SQ fp16", faiss.IndexIVFScalarQuantizer(quant, d, nlist, faiss.ScalarQuantizer.QT_fp16), (16, 32), 21)
run("IVFFlat", faiss.IndexIVFFlat(quant, d, nlist), (16, 32), 21)
run("PQ64x4 fastscan", faiss.IndexIVFPQFastScan(quant, d, nlist, 64, 4), (16, 32), 60)
run("PQ32x4 fastscan", faiss.IndexIVFPQFastScan(quant, d, nlist, 32, 4), (32,), 100)
run("PQ64x4 fastscan", faiss.IndexIVFPQFastScan(quant, d, nlist, 64, 4), (24, 32), 120)
run("PQ128x4 fastscan", faiss.IndexIVFPQFastScan(quant, d, nlist, 128, 4), (16, 24, 32), 40)
