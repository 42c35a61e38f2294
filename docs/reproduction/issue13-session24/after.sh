#!/bin/bash
# session 24 CIFAR cell: ASR of the poisoned run's checkpoints, then the same recipe on the kept set (crafted set minus
# the 262 flags) and on the clean subset (the floor), each stopped once its epoch-40 checkpoint is written
cd /work/exp/s24/cifar
PY=/work/main/.venv/bin/python; NV=/work/main/.venv/bin/naviewer; EVAL=/work/main/docs/reproduction/issue13-item7-session9/evalckpt.py
mkdir -p poisoned && ln -sfn ../ws/checkpoints/dift32 poisoned/checkpoints
nice -n 5 $PY $EVAL poisoned corruptencoder 2 > eval_poisoned.log 2>&1
train40 () {  # $1 dataset, $2 out
  nice -n 5 $NV train --dataset $1 --out $2 --method simclr --arch resnet10 --width 16 --epochs 110 --batch-size 128 \
    --warmup-epochs 10 --image-size 32 --threads 2 --seed 0 --checkpoint-every 10 > $2.log 2>&1 &
  PID=$!
  while kill -0 $PID 2>/dev/null; do
    if ls $2/checkpoints/epoch_0039.pt >/dev/null 2>&1; then sleep 5; kill $PID; echo "stopped at epoch 40" >> $2.log; break; fi
    sleep 10
  done
  rm -f $2/checkpoints/last.pt
  nice -n 5 $PY $EVAL $2 corruptencoder 2 > eval_$2.log 2>&1
}
train40 kept_export/kept.txt run_after_dift
train40 /work/shared/data/cifar10-subset run_floor
echo AFTER_DONE >> eval_run_floor.log
