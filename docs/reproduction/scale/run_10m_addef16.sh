#!/bin/bash
# issue 17, session 8: the 10M x 128 fast-scan pass again, now with ivf_add_ef 16 (session 7), same data and flags as session 6
cd /work/main && source .venv/bin/activate
COMMON="--dim 128 --k 10 --threads 2 --mmap-dir /tmp/nvscale/data --memory-mb 512 --knn-dims 0 --resume"
naviewer bench detect --scale 10000000 --backends ivffs $COMMON --json /work/exp/s8/scale10m/fs_10m_addef16.json
