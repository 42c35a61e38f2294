#!/bin/bash
# CIFAR cell (session 13: a fresh run with the preset that now includes crop agreement): DIFT in the training loop on the 32 px batch-128 recipe, CorruptEncoder 8 % crafted
# by `naviewer craft --attack corruptencoder --rate 0.08 --seed 0`, workspace by `naviewer new ws --dataset ce8
# --anchors cifar10-subset` (naviewer's DIFT preset), detection from epoch 20, stops for review when the buffer is stable
cd /work/exp/s13/cifar
nice -n 5 /work/main/.venv/bin/naviewer run ws --dift --run dift32 --method simclr --arch resnet10 --width 16 --epochs 110 \
  --batch-size 128 --warmup-epochs 10 --image-size 32 --threads 2 --seed 0 --dift-start 20 --knn-every 10 --checkpoint-every 10 > run_dift.log 2>&1
echo RUN_DONE >> run_dift.log
