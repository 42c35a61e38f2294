#!/bin/bash
# the demo's recipe post-hoc on no-poison encoders: does it flag clean samples?
cd /work/exp/s11/cifarrecipe
S=""
for kv in mindist_scale=anchor_spread ls_alpha=0.7 ls_soft_threshold=0.1 ls_soft_votes=0.9 closure_votes=0.7 crop_agreement=2.0 crop_agreement_threshold=0.05 anchor_reach_limit=0.75 candidate_fraction=0.03; do S="$S --dift-set $kv"; done
NV="nice -n 19 /work/main/.venv/bin/naviewer"
$NV detect /work/exp/s11/cropclean/cifarclean --checkpoint /work/exp/s9/run_floor_w16/checkpoints/epoch_0149.pt --run floor-recipe $S > clean-cifar.log 2>&1
for f in simclr-s0-t1 simclr-s1-t1 simclr-s2-t1; do
  $NV detect /work/exp/s9/cleanws --checkpoint /work/exp/mxA/floors/$f.pt --run recipe-$f $S > clean-digits-$f.log 2>&1
done
echo CLEAN_DONE >> clean-digits-simclr-s2-t1.log
