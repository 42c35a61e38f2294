#!/bin/bash
# ASR after removal: the same recipe retrained on the CIFAR cell minus crop_density's 348 flags on the epoch-40 encoder
# (344 of the 354 poisons), stopped after the epoch-40 checkpoint (the 110-epoch schedule, as the poisoned run)
cd /work/exp/s11/cifar32
exec nice -n 5 /work/main/.venv/bin/naviewer train --dataset /work/exp/s9/ce8/kept_crop_e40.txt --out run_after32b128 --method simclr --arch resnet10 --width 16 \
  --epochs 110 --batch-size 128 --warmup-epochs 10 --image-size 32 --threads 2 --seed 0 --checkpoint-every 10
