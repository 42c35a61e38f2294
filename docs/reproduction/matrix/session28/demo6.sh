#!/bin/bash
# session 28: the demo's recipe (NA paper layout, 36 references, 8 %) on seeds 0-2 x 1-2 threads with every rule of
# sessions 20-27 (cluster reach with its member floor among them): is accept-all still within 10 points of the
# floor's mean on 4 of 6 (session 20)? Each kept set retrained twice, the floor drawn three times. Resumable.
OUT=${1:-/work/exp/s28}
exec nice -n 15 /work/main/.venv/bin/naviewer reproduce --matrix "$OUT/demo6" \
  --cells na-paper:simclr:0:1,na-paper:simclr:0:2,na-paper:simclr:1:1,na-paper:simclr:1:2,na-paper:simclr:2:1,na-paper:simclr:2:2 \
  --set na_references=36 --retrains 2 --floors 3 --detector kdist --detector patchsearch
