#!/bin/bash
# session 34: PatchSearch after the first retrain on each of session 31's six runs, then six draws of the second removal
for c in s1-t2 s0-t1 s1-t1 s2-t2 s0-t2 s2-t1; do
  [ -f /work/exp/s34/second6-$c.json ] && continue
  d=/work/exp/s34/second-$c
  if [ ! -f $d.checked ]; then
    rm -rf $d && cp -r /work/exp/s33/demo6/cells/na-paper-simclr-$c/workspace $d
    OMP_NUM_THREADS=1 nice -n 5 /work/main/.venv/bin/naviewer detect $d --checkpoint $d/checkpoints/demo/last.pt --detector patchsearch --run after1 2>&1 | grep -v "\[#" | grep "patchsearch pass"
    touch $d.checked
  fi
  nice -n 5 /work/main/.venv/bin/python /work/exp/s34/second6.py $c
done
echo DONE
