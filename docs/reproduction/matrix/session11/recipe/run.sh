#!/bin/bash
# DIFT post-hoc, the paper's settings against naviewer's recipe without crop agreement, on the stored encoders of the
# twelve distinct digits cells (session 9's psA, psB copies) and the CIFAR cell; results in each detect log
cd /work/exp/s11/recipe
PAPER="--dift-set ls_alpha=0.2 --dift-set mindist_scale=none --dift-set candidate_fraction=0.01 --dift-set closure_votes=0 --dift-set crop_agreement=0 --dift-set anchor_reach_limit=0 --dift-set ls_soft_threshold=0"
RECIPE="--dift-set ls_alpha=0.7 --dift-set mindist_scale=anchor_spread --dift-set candidate_fraction=0.03 --dift-set closure_votes=0.7 --dift-set crop_agreement=0 --dift-set anchor_reach_limit=0.75 --dift-set ls_soft_threshold=0.1 --dift-set ls_soft_votes=0.9"
NV="nice -n 19 /work/main/.venv/bin/naviewer"
$NV detect /work/exp/s9/ws8 --checkpoint /work/exp/s9/run_ce_w16/checkpoints/epoch_0149.pt --run s11-recipe-nocrop $RECIPE > cifar-recipe.log 2>&1
for c in /work/exp/s9/psA/cells/* /work/exp/s9/psB/cells/na-code-simclr-s2-t1 /work/exp/s9/psB/cells/na-paper-simclr-s0-t2 /work/exp/s9/psB/cells/na-paper-simclr-s1-t1 /work/exp/s9/psB/cells/na-paper-simclr-s2-t1; do
  name=$(basename $(dirname $c/x))-$(basename $(dirname $(dirname $c)))
  $NV detect $c/workspace --checkpoint $c/detection-epoch.pt --run s11-paper $PAPER > $name-paper.log 2>&1
  $NV detect $c/workspace --checkpoint $c/detection-epoch.pt --run s11-recipe $RECIPE > $name-recipe.log 2>&1
done
echo RECIPE_ALL_DONE > done.txt
