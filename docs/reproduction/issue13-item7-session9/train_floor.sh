#!/bin/bash
# CIFAR cell: the no-poison floor of the same recipe (clean subset), checkpoints every 25 epochs
cd /work/exp/s9
exec nice -n 5 /work/main/.venv/bin/naviewer train --dataset /work/shared/data/cifar10-subset --out run_floor_w16 --method simclr --arch resnet10 --width 16 \
  --epochs 300 --batch-size 256 --warmup-epochs 10 --image-size 16 --threads 1 --seed 0 --checkpoint-every 25
