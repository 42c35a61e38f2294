#!/bin/bash
# ASR after removal (session 13): the same recipe (SimCLR, ResNet-10 w16, 32 px, batch 128, 110-epoch schedule) retrained on
# the crafted set minus the fresh in-training run's 371 flags at its epoch-44 stop; measured at the epoch-40 checkpoint
cd /work/exp/s13/cifar
exec nice -n 5 /work/main/.venv/bin/naviewer train --dataset ce8/kept_dift_e44_s13.txt --out run_after_dift --method simclr --arch resnet10 --width 16 \
  --epochs 110 --batch-size 128 --warmup-epochs 10 --image-size 32 --threads 2 --seed 0 --checkpoint-every 10
