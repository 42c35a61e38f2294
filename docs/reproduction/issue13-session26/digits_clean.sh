#!/bin/bash
# session 26: a clean digits encoder (the demo's backbone recipe, 40 epochs, no poison) and post-hoc DIFT over the
# clean digits with it: the anchor-density null where there is no poison
cd /work/exp/s26/digits
NV=/work/main/.venv/bin/naviewer
rm -rf clean_run wsc
$NV train --dataset demo --out clean_run --method simclr --arch resnet10 --width 16 --epochs 40 --batch-size 128 \
  --image-size 16 --threads 2 --seed 0 > clean_train.log 2>&1
$NV new wsc --dataset demo > new_wsc.log 2>&1
$NV detect wsc --checkpoint clean_run/checkpoints/last.pt --tag clean > clean_detect.log 2>&1
echo CLEAN_DONE >> clean_detect.log
