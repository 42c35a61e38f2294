#!/bin/bash
# session 8 batch 3: after batch 2, the last two na-paper runs (one thread) with the guard, into mx8c
while pgrep -f "mx8b.sh" > /dev/null; do sleep 30; done
exec /work/exp/mx8.sh /work/exp/mx8c na-paper:simclr:1:1,na-paper:simclr:0:1,na-paper:simclr:2:1 retrain,oracle 2
