#!/bin/bash
# session 24: the patch cell's in-training run was stopped at epoch 75 for time (DIFT had found 4 of 325, no stop);
# post-hoc DIFT with the preset on its epoch-70 checkpoint instead, with crop outliers on and off
cd /work/exp/s24/cifar
NV=/work/main/.venv/bin/naviewer; PY=/work/main/.venv/bin/python
while ! grep -q QUEUE4_DONE replay_ce8s1.txt 2>/dev/null; do sleep 20; done
rm -rf ws_patch8s1_p && cp -r ws_patch8s1 ws_patch8s1_p
nice -n 5 $NV detect ws_patch8s1_p --checkpoint ws_patch8s1/checkpoints/dift32/epoch_0069.pt --tag e70-z6 > posthoc_patch.log 2>&1
nice -n 5 $NV detect ws_patch8s1_p --checkpoint ws_patch8s1/checkpoints/dift32/epoch_0069.pt --tag e70-z0 --dift-set crop_outlier_z=0 >> posthoc_patch.log 2>&1
$PY pr.py ws_patch8s1_p > pr_patch8s1_p.txt 2>&1
echo QUEUE5_DONE >> posthoc_patch.log
