#!/bin/bash
# issue 17, session 10: the HNSW row at 3M x 128 that session 5 queued, beside the default large-N backend
# (IVF-PQ4 fast scan) in the same run, on the cached data of run_scale.sh. Resumable.
cd /work/main && source .venv/bin/activate
COMMON="--dim 128 --k 10 --threads 2 --mmap-dir /tmp/nvscale/data --memory-mb 512 --resume"
# HNSW with DiftConfig.fast()'s settings (M 8, ef 64, 64-d PCA + exact re-rank), as the 1M baseline row
nice -n 5 naviewer bench detect --scale 3000000 --backends hnsw --knn-dims 64 $COMMON --json hnsw_3m.json
nice -n 5 naviewer bench detect --scale 3000000 --backends ivffs --knn-dims 0 $COMMON --json hnsw_3m.json
