#!/bin/bash
# session 33: session 31's six demo runs (matrix/session31/demo6.sh), each kept set retrained 6 times and the floor
# drawn 6 times (it had 2 and 3): two draws a run cannot tell a 10-point gap, the retrain's own draw moves the ASR by up
# to 30 points. Trains only the added draws (--retrains/--floors on a finished matrix); resumable. The miss
# (seed 1 / 2 threads) first.
OUT=${1:-/work/exp/s33}
CODE=${2:-/work/main}
cd "$CODE" && PYTHONPATH="$CODE" exec nice -n 15 /work/main/.venv/bin/python -c "import sys; from naviewer.cli import main; sys.argv[0] = 'naviewer'; sys.exit(main())" reproduce --matrix "$OUT/demo6" \
  --cells na-paper:simclr:1:2,na-paper:simclr:0:1,na-paper:simclr:0:2,na-paper:simclr:1:1,na-paper:simclr:2:1,na-paper:simclr:2:2 \
  --set na_references=36 --retrains 6 --floors 6 --detector kdist --detector patchsearch
