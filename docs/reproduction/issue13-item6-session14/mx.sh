#!/bin/bash
# session 14: does the demo's NA with fewer references (36 of class 0 removed instead of 107) let the
# oracle retrain reach the clean-digits floor? one cell first.
cd /work/exp/s14/refs
exec nice -n 5 /work/main/.venv/bin/naviewer reproduce --matrix /work/exp/s14/refs/out --cells "$@" \
  --set 'attack_extra={"num_poisons":107,"num_references":36}' --restarts retrain,oracle --retrains 2 --detector kdist
