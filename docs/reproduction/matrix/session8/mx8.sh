#!/bin/bash
# session 8: the cells with the anchor-reach guard, from the frozen worktree
. /work/main/.venv/bin/activate
cd /work/frozen
export PYTHONPATH=/work/frozen
exec nice -n 5 python -m naviewer reproduce --matrix "$1" --cells "$2" --no-floor --restarts "${3:-retrain,oracle}" --retrains "${4:-2}"
