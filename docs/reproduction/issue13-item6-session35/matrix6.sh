#!/bin/bash
# session 35: the demo's recipe with accept-all's check after the retrain on seeds 0-2 x 1, 2 threads, as matrix cells
# (na-paper row, 36 references = the demo): per cell the first removal, the check's additions, the second removal,
# each drawn N times, and N no-poison floors. First 3 draws everywhere, then topped up to 6. Resumable.
# usage: matrix6.sh CELLS N   (CELLS: na-paper:simclr:S:T,...)
OUT=/work/exp/s35/m
exec nice -n 5 /work/main/.venv/bin/naviewer reproduce --matrix $OUT --cells "$1" --set na_references=36 \
  --retrains $2 --floors $2 --detector kdist
