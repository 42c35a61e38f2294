#!/bin/bash
# session 7: the na cells with crop agreement, 2 retrains + 2 oracle retrains each, from the frozen worktree
. /work/main/.venv/bin/activate
cd /work/frozen
export PYTHONPATH=/work/frozen
exec nice -n 5 python -m naviewer reproduce --matrix "$1" --cells "$2" --no-floor --restarts retrain,oracle --retrains 2
