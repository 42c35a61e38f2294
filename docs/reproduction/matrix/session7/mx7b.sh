#!/bin/bash
# session 7: the rules (incl. crop agreement) on the other cells where session 4's backdoor formed, one retrain each
. /work/main/.venv/bin/activate
cd /work/frozen
export PYTHONPATH=/work/frozen
exec nice -n 5 python -m naviewer reproduce --matrix "$1" --cells "$2" --no-floor --restarts retrain
