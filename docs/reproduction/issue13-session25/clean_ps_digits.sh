#!/bin/bash
cd /work/exp/s25/clean
NV=/work/main/.venv/bin/naviewer
while ! grep -q PS_CLEAN_DONE ps_clean.log 2>/dev/null; do sleep 15; done
rm -rf wsdig && $NV new wsdig --dataset digits > new_wsdig.log 2>&1
for f in simclr-s0-t2 simclr-s1-t1; do
  nice -n 5 $NV detect wsdig --checkpoint /work/exp/s23/matrix/out/floors/$f.pt --tag ps-$f --detector patchsearch > ps_$f.log 2>&1
done
echo PS_DIG_DONE >> ps_simclr-s1-t1.log
