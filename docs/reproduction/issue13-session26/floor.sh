#!/bin/bash
# session 26: after ce10.sh, the floor of the same recipe (the clean subset) to epoch 40, today's code
cd /work/exp/s26/cifar
# (started at once, beside ce10.sh)
PY=/work/main/.venv/bin/python; NV=/work/main/.venv/bin/naviewer; EVAL=/work/main/docs/reproduction/issue13-item7-session9/evalckpt.py
nice -n 5 $NV train --dataset /work/shared/data/cifar10-subset --out run_floor --method simclr --arch resnet10 --width 16 --epochs 110 --batch-size 128 \
    --warmup-epochs 10 --image-size 32 --threads 2 --seed 0 --checkpoint-every 10 > run_floor.log 2>&1 &
PID=$!
while kill -0 $PID 2>/dev/null; do
  if ls run_floor/checkpoints/epoch_0039.pt >/dev/null 2>&1; then sleep 5; kill $PID; echo "stopped after epoch 40" >> run_floor.log; break; fi
  sleep 10
done
rm -f run_floor/checkpoints/last.pt
nice -n 5 $PY $EVAL run_floor corruptencoder 2 > eval_run_floor.log 2>&1
echo FLOOR_DONE >> eval_run_floor.log
