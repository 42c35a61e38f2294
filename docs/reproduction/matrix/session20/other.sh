#!/bin/bash
# session 20: does the cluster-reach rule (naviewer preset 0.6) take back poisons on other matrix cells?
# Session 17's records: corruptencoder-simclr-s0-t2 119 flags (97 / 100), na-code-simclr-s2-t2 101 (99 / 93)
exec nice -n 15 /work/main/.venv/bin/naviewer reproduce --matrix /work/exp/s20/mx \
  --cells corruptencoder:simclr:0:2,na-code:simclr:2:2 --detector kdist
