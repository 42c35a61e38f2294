#!/bin/bash
# session 24, after queue3.sh: two more crafted sets on the CIFAR subset with the same recipe and DIFT in the loop
# (naviewer's preset, crop outliers on), then the stop replayed with crop outliers off: does the rule add clean
# images on another attack (SSL-Backdoor patch, 8 %) and on other CorruptEncoder poisons (seed 1)?
cd /work/exp/s24/cifar
PY=/work/main/.venv/bin/python; NV=/work/main/.venv/bin/naviewer
while ! grep -q QUEUE3_DONE posthoc_clean.log 2>/dev/null; do sleep 20; done
cell () {  # $1 attack, $2 seed, $3 name
  rm -rf $3 ws_$3
  $NV craft --attack $1 --dataset /work/shared/data/cifar10-subset --out $3 --rate 0.08 --seed $2 > craft_$3.log 2>&1
  $NV new ws_$3 --dataset $3 --anchors /work/shared/data/cifar10-subset --test-dataset /work/shared/data/cifar10-subset > new_$3.log 2>&1
  cp $3/ground_truth.json ws_$3/
  nice -n 5 $NV run ws_$3 --dift --run dift32 --method simclr --arch resnet10 --width 16 --epochs 110 \
    --batch-size 128 --warmup-epochs 10 --image-size 32 --threads 2 --seed 0 --dift-start 20 --knn-every 10 --checkpoint-every 10 --no-monitor > run_$3.log 2>&1
  $PY pr.py ws_$3 > pr_$3.txt 2>&1
  rm -rf ws_$3_replay && cp -r ws_$3 ws_$3_replay
  nice -n 5 $PY /work/main/docs/reproduction/issue13-session24/replay_stop.py ws_$3_replay ws_$3/checkpoints/dift32/last.pt > replay_$3.txt 2>&1
}
cell patch 1 patch8s1
cell corruptencoder 1 ce8s1
echo QUEUE4_DONE >> replay_ce8s1.txt
