#!/bin/bash
# issue 17 item 3, session 6: IVF-PQ4 fast scan (ivffs) against IVF-SQ8 at 1M x 128 in one run, then ivffs at
# 10M x 128, on the cached data of run_scale.sh. Resumable (--resume keeps the rows already in the JSON).
cd /work/main && source .venv/bin/activate
COMMON="--dim 128 --k 10 --threads 2 --mmap-dir /tmp/nvscale/data --memory-mb 512 --knn-dims 0 --resume"
nice -n 5 naviewer bench detect --scale 1000000 --backends ivffs,ivfsq $COMMON --json fs_1m.json
nice -n 5 naviewer bench detect --scale 10000000 --backends ivffs $COMMON --json fs_10m.json
# fastscan.json = the rows of fs_1m.json and fs_10m.json
