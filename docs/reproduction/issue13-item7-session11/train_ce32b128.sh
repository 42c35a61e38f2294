#!/bin/bash
# CIFAR cell try (session 11): the session-10 recipe (CorruptEncoder 8 %, SimCLR, ResNet-10 width 16, 32 px) with
# batch 128 (twice the updates per epoch at the same cost per epoch), 110 epochs on 2 threads, checkpoints every 10
cd /work/exp/s11/cifar32
exec nice -n 5 /work/main/.venv/bin/naviewer train --dataset /work/exp/s9/ce8 --out run_ce32b128 --method simclr --arch resnet10 --width 16 \
  --epochs 110 --batch-size 128 --warmup-epochs 10 --image-size 32 --threads 2 --seed 0 --checkpoint-every 10
