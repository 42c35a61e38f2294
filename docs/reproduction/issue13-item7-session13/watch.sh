#!/bin/bash
# run train_after_dift.sh and stop it once the epoch-40 checkpoint is written
cd /work/exp/s13/cifar
./train_after_dift.sh > train_after_dift.log 2>&1 &
PID=$!
while kill -0 $PID 2>/dev/null; do
  if ls run_after_dift/checkpoints/epoch_0039.pt >/dev/null 2>&1; then sleep 5; kill $PID; echo "stopped at epoch 40" >> train_after_dift.log; break; fi
  sleep 10
done
