#!/bin/bash
# session 25: PatchSearch (session-24 defaults) on no-poison encoders, to replay the neighbour rule on its p
cd /work/exp/s25/clean
NV=/work/main/.venv/bin/naviewer
nice -n 5 $NV detect wsclean --checkpoint /work/exp/s24/cifar/run_floor/checkpoints/epoch_0039.pt --tag ps-clean --detector patchsearch > ps_clean.log 2>&1
echo PS_CLEAN_DONE >> ps_clean.log
