#!/bin/bash
# session 25: does the CIFAR patch cell (session 24, seed 1, 8 %) form a backdoor? ASR of its epoch-40/70 encoders
# and of the clean floor's epoch-40 encoder, under the patch trigger (uniform and paper protocols)
cd /work/exp/s25/patch
PY=/work/main/.venv/bin/python; EVAL=/work/main/docs/reproduction/issue13-item7-session9/evalckpt.py
nice -n 5 $PY $EVAL patchrun patch 2 > eval_patchrun.log 2>&1
nice -n 5 $PY $EVAL floorrun patch 2 > eval_floorrun.log 2>&1
echo EVAL_DONE >> eval_floorrun.log
