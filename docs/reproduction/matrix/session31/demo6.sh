#!/bin/bash
# session 31: the demo's recipe (NA paper layout, 36 references, 8 %) on seeds 0-2 x 1-2 threads with the trigger check
# (DEMO_DIFT_SETTINGS trigger_check_reach=0.5): accept-all leaves the reached flags PatchSearch finds no trigger in.
# Each kept set retrained twice, the floor drawn three times (as session 28's demo6.sh). Resumable.
OUT=${1:-/work/exp/s31}
CODE=${2:-/work/main}
cd "$CODE" && PYTHONPATH="$CODE" exec nice -n 15 /work/main/.venv/bin/python -c "import sys; from naviewer.cli import main; sys.argv[0] = 'naviewer'; sys.exit(main())" reproduce --matrix "$OUT/demo6" \
  --cells na-paper:simclr:0:1,na-paper:simclr:0:2,na-paper:simclr:1:1,na-paper:simclr:1:2,na-paper:simclr:2:1,na-paper:simclr:2:2 \
  --set na_references=36 --retrains 2 --floors 3 --detector kdist --detector patchsearch
