#!/bin/bash
# session 18: the oracle retrain (every poison out) beside DIFT's retrain, two draws each, on an NA-paper cell
# that missed the floor in session 17 with 100 % recall (a second cell was dropped for time)
exec nice -n 15 /work/main/.venv/bin/naviewer reproduce --matrix OUT --cells na-paper:simclr:0:2 --restarts retrain,oracle --retrains 2 --detector kdist
