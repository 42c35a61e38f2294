#!/bin/bash
# session 18: the oracle retrain (every poison out) beside DIFT's retrain, two draws each, on two NA-paper cells
# that missed the floor in session 17 with 96-100 % recall
exec nice -n 15 /work/main/.venv/bin/naviewer reproduce --matrix OUT2 --cells na-paper:simclr:1:1 --restarts retrain,oracle --retrains 2 --detector kdist
