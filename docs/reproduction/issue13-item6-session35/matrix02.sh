#!/bin/bash
# session 35: the two runs whose kept sets a trigger-check limit of 0.2 (not 0.5) would change (replay_reach.txt),
# as matrix cells with that limit; floors shared with matrix6.sh's (same recipe, seed, threads: the floor never
# reads the limit). usage: matrix02.sh CELLS N
exec nice -n 5 /work/main/.venv/bin/naviewer reproduce --matrix /work/exp/s35/m02 --cells "$1" --set na_references=36 \
  --set 'dift_settings={"trigger_check_reach": 0.2}' --retrains $2 --floors $2 --detector kdist
