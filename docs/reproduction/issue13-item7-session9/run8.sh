#!/bin/bash
# CIFAR cell: DIFT in the training loop on the CorruptEncoder 8 % workspace (trusted anchors from the clean subset),
# the same recipe as run_ce_w16 cut at 150 epochs (its ASR peak), detection from epoch 75; stops for review
cd /work/exp/s9
nice -n 5 /work/main/.venv/bin/naviewer run ws8 --dift --run dift150 --method simclr --arch resnet10 --width 16 --epochs 150 \
  --batch-size 256 --warmup-epochs 10 --image-size 16 --threads 1 --seed 0 --dift-start 75 --no-monitor > run8.log 2>&1
echo done >> run8.log
