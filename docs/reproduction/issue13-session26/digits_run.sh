#!/bin/bash
# session 26: the anchor-density null on the digits: the demo's DIFT pass (poisoned) and post-hoc DIFT on the
# demo's no-poison floor encoder over the clean digits
cd /work/exp/s26/digits
NV=/work/main/.venv/bin/naviewer
rm -rf ws && $NV demo --no-gui --workspace ws > demo.log 2>&1
echo DEMO_DONE >> demo.log
$NV run ws --floor > floor.log 2>&1
echo FLOOR_DONE >> floor.log
