#!/bin/bash
# CIFAR cell (session 24: session 13's run again with the rules since, cluster reach + member floor): DIFT in the training loop
cd /work/exp/s24/cifar
nice -n 5 /work/main/.venv/bin/naviewer run ws --dift --run dift32 --method simclr --arch resnet10 --width 16 --epochs 110 \
  --batch-size 128 --warmup-epochs 10 --image-size 32 --threads 2 --seed 0 --dift-start 20 --knn-every 10 --checkpoint-every 10 --no-monitor > run_dift.log 2>&1
echo RUN_DONE >> run_dift.log
