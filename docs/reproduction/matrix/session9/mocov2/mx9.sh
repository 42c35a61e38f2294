#!/bin/bash
# session 9: CorruptEncoder under MoCo v2 with the session-8 rules (and patchsearch), from the frozen worktree,
# after the CIFAR floor training has finished
while pgrep -f "run_floor_w16" > /dev/null; do sleep 20; done
. /work/main/.venv/bin/activate
cd /work/frozen
export PYTHONPATH=/work/frozen
echo $$ > /work/exp/s9/mx9.pid
nice -n 5 python -m naviewer reproduce --matrix /work/exp/s9/mx9 --cells corruptencoder:mocov2:0:1 --restarts retrain,oracle --retrains 1 > /work/exp/s9/mx9.log 2>&1
echo done >> /work/exp/s9/mx9.log
