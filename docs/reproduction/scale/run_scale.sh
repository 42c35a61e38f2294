#!/bin/bash
# issue 17 item 3, continued: after IVF-SQ8 at 1M and 3M, the HNSW baseline at 1M, then IVF-SQ8 at 10M, then HNSW
# at 3M. Resumable: rerun this script; rows already in the JSON are kept.
cd /work/main && source .venv/bin/activate
J=/tmp/nvscale/scale.json
COMMON="--dim 128 --k 10 --threads 2 --mmap-dir /tmp/nvscale/data --memory-mb 512 --json $J --resume"
while pgrep -f "bench detect --scale 1000000,3000000 --backends ivfsq" > /dev/null; do sleep 20; done
nice -n 10 naviewer bench detect --scale 1000000,3000000 --backends ivfsq --knn-dims 0 $COMMON
nice -n 10 naviewer bench detect --scale 1000000 --backends hnsw $COMMON
nice -n 10 naviewer bench detect --scale 1000000,3000000,10000000 --backends ivfsq --knn-dims 0 $COMMON
nice -n 10 naviewer bench detect --scale 1000000,3000000 --backends hnsw $COMMON
echo ALL DONE
