#!/bin/bash
# session 26: post-hoc DIFT (naviewer's preset) on the floor's epoch-40 encoder over the clean subset: the clean flags
cd /work/exp/s26/cifar
NV=/work/main/.venv/bin/naviewer
rm -rf wsclean && $NV new wsclean --dataset /work/shared/data/cifar10-subset --anchors /work/shared/data/cifar10-subset > new_wsclean.log 2>&1
nice -n 5 $NV detect wsclean --checkpoint run_floor/checkpoints/epoch_0039.pt --tag clean > posthoc_clean.log 2>&1
echo CLEAN_DONE >> posthoc_clean.log
