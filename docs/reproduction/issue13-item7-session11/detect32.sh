#!/bin/bash
# every detector on the CIFAR 32 px cell's epoch-40 encoder (ASR 51 % paper protocol); DIFT with naviewer's recipe
cd /work/exp/s11/cifar32
R="--dift-set ls_alpha=0.7 --dift-set mindist_scale=anchor_spread --dift-set candidate_fraction=0.03 --dift-set closure_votes=0.7 --dift-set crop_agreement=0 --dift-set anchor_reach_limit=0.75 --dift-set ls_soft_threshold=0.1 --dift-set ls_soft_votes=0.9"
nice -n 5 /work/main/.venv/bin/naviewer detect /work/exp/s9/ws8 --checkpoint run_ce32b128/checkpoints/epoch_0039.pt --run cifar32-e40 $R \
  --baselines dbscan --detector kdist --detector lid --detector slof --detector dao --detector crop_density --detector patchsearch > detect32.log 2>&1
echo DETECT32_DONE >> detect32.log
