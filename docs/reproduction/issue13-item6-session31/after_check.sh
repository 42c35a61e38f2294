#!/bin/bash
# session 31: PatchSearch on each session-28 run's retrained encoder (the first retrain, every flag removed): does it
# flag kept samples, and are they poisons?
for c in s0-t1 s0-t2 s1-t1 s2-t1 s2-t2; do
  rm -rf /work/exp/s31/after-$c && cp -r /work/exp/s28/demo6/cells/na-paper-simclr-$c/workspace /work/exp/s31/after-$c
  OMP_NUM_THREADS=1 nice -n 5 /work/main/.venv/bin/naviewer detect /work/exp/s31/after-$c --checkpoint /work/exp/s31/after-$c/checkpoints/demo/last.pt --detector patchsearch --run after1 2>&1 | grep -v "\[#" | grep "patchsearch pass"
done
echo DONE
