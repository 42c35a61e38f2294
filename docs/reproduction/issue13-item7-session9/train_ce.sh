#!/bin/bash
# CIFAR cell try: CorruptEncoder 8 %, SimCLR, ResNet-10 width 16, 16 px, long run with checkpoints every 25 epochs
cd /work/exp/s9
exec nice -n 5 /work/main/.venv/bin/naviewer train --dataset ce8 --out run_ce_w16 --method simclr --arch resnet10 --width 16 \
  --epochs 300 --batch-size 256 --warmup-epochs 10 --image-size 16 --threads 1 --seed 0 --checkpoint-every 25 \
  --knn-dataset /work/shared/data/cifar10-subset --knn-test-dataset /work/shared/data/cifar10-subset --knn-every 25
