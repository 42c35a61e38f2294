#!/bin/bash
# session 20: the demo's recipe with the cluster-reach rule (naviewer preset cluster_reach_limit 0.5) in training,
# on the two runs whose clean clusters were largest in session 19 (seed 1 / 2 threads: 61 clean, seed 2 / 2: 70);
# the floors are session 19's draws (deterministic per seed and thread count), copied in
exec nice -n 15 /work/main/.venv/bin/naviewer reproduce --matrix /work/exp/s20/demo2 \
  --cells na-paper:simclr:1:2,na-paper:simclr:2:2,na-paper:simclr:1:1 \
  --set na_references=36 --retrains 2 --floors 3 --detector kdist
