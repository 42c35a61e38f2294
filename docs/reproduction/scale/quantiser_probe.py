"""Where an HNSW-quantised IVF fast-scan pass spends its time at 10M-like list counts (1M rows, 39,062 lists)."""
import time, resource, numpy as np, faiss, sys
faiss.omp_set_num_threads(1)
X = np.load("/tmp/nvscale/data/synth_10000000x128_float32_s0_f274718ee5/features.npy", mmap_mode="r")
n = int(sys.argv[1]) if len(sys.argv) > 1 else 300_000
nlist = 39062
rng = np.random.default_rng(0)
x = np.array(X[:n], dtype=np.float32); x /= np.linalg.norm(x, axis=1, keepdims=True)
cent = np.array(X[np.sort(rng.choice(10_000_000, nlist, replace=False))], dtype=np.float32); cent /= np.linalg.norm(cent, axis=1, keepdims=True)
def cpu(): r = resource.getrusage(resource.RUSAGE_SELF); return r.ru_utime + r.ru_stime
q = faiss.IndexHNSWFlat(128, 32); q.hnsw.efConstruction = 40
c0 = cpu(); q.add(cent); print(f"quantiser build {cpu()-c0:.1f} s CPU")
res = {}
for ef, k in [(64, 1), (16, 1), (32, 1), (64, 32)]:
    q.hnsw.efSearch = ef
    c0 = cpu(); D, I = q.search(x, k); res[(ef, k)] = I; print(f"quantiser search ef={ef} k={k}: {(cpu()-c0)/n*1e6:.1f} us CPU a row")
top = res[(64, 32)][:, 0]
for ef in (16, 32):
    print(f"  ef={ef} k=1 agrees with ef=64 top-1: {(res[(ef,1)][:,0] == top).mean():.4f}; in ef=64 top-4: {np.mean([(res[(ef,1)][i,0] in res[(64,32)][i,:4]) for i in range(0, n, 10)]):.4f}")
idx = faiss.IndexIVFPQFastScan(q, 128, nlist, 128, 4)
q.hnsw.efSearch = 64
c0 = cpu(); idx.train(x[:min(n, 200_000)]); print(f"PQ train {cpu()-c0:.1f} s CPU")
c0 = cpu(); idx.add(x); print(f"add (assign ef=64 + encode) {(cpu()-c0)/n*1e6:.1f} us CPU a row")
idx.nprobe = 32
m = min(n, 50_000)
D0, I0 = q.search(x[:m], 32)
c0 = cpu(); idx.search_preassigned(x[:m], 41, I0, D0); print(f"scan only (preassigned, nprobe 32, 41 fetched): {(cpu()-c0)/m*1e6:.1f} us CPU a query")
c0 = cpu(); idx.search(x[:m], 41); print(f"full search: {(cpu()-c0)/m*1e6:.1f} us CPU a query")
