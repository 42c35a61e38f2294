#!/bin/bash
# session 24, after after.sh: the in-training run again from scratch with the crop-outlier rule in naviewer's preset
# (a new workspace over the same crafted set and anchors), its kept set retrained to epoch 40, and post-hoc DIFT
# with the preset on its stop's encoder
cd /work/exp/s24/cifar
PY=/work/main/.venv/bin/python; NV=/work/main/.venv/bin/naviewer; EVAL=/work/main/docs/reproduction/issue13-item7-session9/evalckpt.py
while ! grep -q AFTER_DONE eval_run_floor.log 2>/dev/null; do sleep 20; done
rm -rf ws2 && $NV new ws2 --dataset ce8 --anchors /work/shared/data/cifar10-subset --test-dataset /work/shared/data/cifar10-subset > new_ws2.log 2>&1
cp ce8/ground_truth.json ws2/
nice -n 5 $NV run ws2 --dift --run dift32 --method simclr --arch resnet10 --width 16 --epochs 110 \
  --batch-size 128 --warmup-epochs 10 --image-size 32 --threads 2 --seed 0 --dift-start 20 --knn-every 10 --checkpoint-every 10 --no-monitor > run_dift2.log 2>&1
$PY pr.py ws2 > pr_ws2.txt 2>&1
rm -rf ws2r kept2_export && cp -r ws2 ws2r && $NV review ws2r --confirm-cluster 1 > review_ws2r.log 2>&1
# every cluster confirmed (the listing may hold more than one)
for i in 2 3 4 5 6 7 8 9; do $NV review ws2r --confirm-cluster $i >> review_ws2r.log 2>&1 || true; done
$NV export ws2r --out kept2_export > export_ws2r.log 2>&1
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
train40 kept2_export/kept.txt run_after_dift2
rm -rf ws2p && cp -r ws2 ws2p && nice -n 5 $NV detect ws2p --checkpoint ws2/checkpoints/dift32/last.pt --tag posthoc > posthoc2.log 2>&1
$PY pr.py ws2p > pr_ws2p.txt 2>&1
echo QUEUE2_DONE >> posthoc2.log
