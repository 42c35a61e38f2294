#!/bin/bash
# Session 23: anchor separation and DIFT post-hoc along one training of the demo's recipe (seed 1, NA paper layout)
set -e
cd /work/exp/s23/cal
. /work/main/.venv/bin/activate
[ -d ws ] || naviewer new ws --dataset digits --attack na --rate 0.08 --attack-setting num_references=36 --seed 1
[ -f ws/checkpoints/cal/last.pt ] || naviewer run ws --run cal --epochs 40 --arch resnet10 --width 16 --image-size 16 \
   --augment-recipe aug+ --batch-size 128 --threads 1 --seed 1 --checkpoint-every 4 --knn-every 4 --no-monitor
for c in ws/checkpoints/cal/epoch_*.pt ws/checkpoints/cal/last.pt; do
  echo "=== $c"
  naviewer detect ws --checkpoint "$c" 2>&1 | grep -v "\[#" | tail -25
done
