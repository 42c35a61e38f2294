#!/bin/bash
# the no-poison floor of the session-11 recipe: the clean CIFAR subset, SimCLR, ResNet-10 width 16, 32 px, batch 128,
# 110 epochs on 2 threads, checkpoints every 10 (the same schedule, so epoch k compares with the poisoned run's epoch k)
cd /work/exp/s11/cifar32
exec nice -n 5 /work/main/.venv/bin/naviewer train --dataset /work/shared/data/cifar10-subset --out run_floor32b128 --method simclr --arch resnet10 --width 16 \
  --epochs 110 --batch-size 128 --warmup-epochs 10 --image-size 32 --threads 2 --seed 0 --checkpoint-every 10
