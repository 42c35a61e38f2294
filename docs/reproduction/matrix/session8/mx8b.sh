#!/bin/bash
# session 8 batch 2: wait for batch 1, then two more na-paper runs with the guard (s0-t2 with the paper restart too)
while pgrep -f "reproduce --matrix /work/exp/mx8 " > /dev/null; do sleep 30; done
/work/exp/mx8.sh /work/exp/mx8b na-paper:simclr:0:2 retrain,continue,oracle 2
exec /work/exp/mx8.sh /work/exp/mx8c na-paper:simclr:1:1 retrain,oracle 2
