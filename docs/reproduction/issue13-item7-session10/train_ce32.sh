#!/bin/bash
# CIFAR cell try (session 10): CorruptEncoder 8 % (the session-9 crafted set), SimCLR, ResNet-10 width 16, 32 px
# (the paper's resolution: the 8 px trigger keeps its size), 100 epochs on 2 threads, checkpoints every 20
cd /work/exp/s10/cifar32
exec nice -n 5 /work/main/.venv/bin/naviewer train --dataset /work/exp/s9/ce8 --out run_ce32 --method simclr --arch resnet10 --width 16 \
  --epochs 100 --batch-size 256 --warmup-epochs 10 --image-size 32 --threads 2 --seed 0 --checkpoint-every 20
