#!/bin/bash
# session 24, after queue2.sh: post-hoc DIFT (naviewer's preset, crop outliers on and off) on a clean training of the
# subset (the floor run's epoch-40 encoder) over the clean subset: what the rules flag where there is no poison
cd /work/exp/s24/cifar
NV=/work/main/.venv/bin/naviewer
while ! grep -q QUEUE2_DONE posthoc2.log 2>/dev/null; do sleep 20; done
rm -rf wsclean && $NV new wsclean --dataset /work/shared/data/cifar10-subset --anchors /work/shared/data/cifar10-subset > new_wsclean.log 2>&1
nice -n 5 $NV detect wsclean --checkpoint run_floor/checkpoints/epoch_0039.pt --tag clean-z6 > posthoc_clean.log 2>&1
nice -n 5 $NV detect wsclean --checkpoint run_floor/checkpoints/epoch_0039.pt --tag clean-z0 --dift-set crop_outlier_z=0 >> posthoc_clean.log 2>&1
echo QUEUE3_DONE >> posthoc_clean.log
