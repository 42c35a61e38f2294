#!/bin/bash
# session 13: review stops for the anchor-reach guard's class-size replay (corruptencoder + na-paper, SimCLR, seed 0, 1 thread)
cd /work/exp/s13/mx
exec nice -n 10 /work/main/.venv/bin/naviewer reproduce --matrix /work/exp/s13/mx/out --cells corruptencoder:simclr:0:1,na-paper:simclr:0:1 --no-floor --restarts retrain --retrains 1
