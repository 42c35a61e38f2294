#!/bin/bash
# the cells where the backdoor formed in session 4's matrix, the ones that missed the goal first, current recipe
while pgrep -f 'reproduce --matrix /work/exp/s17/mx ' > /dev/null; do sleep 20; done
CELLS=na-code:simclr:0:2,na-paper:simclr:1:2,na-code:simclr:2:2,na-paper:simclr:0:1,na-paper:simclr:1:1,na-paper:simclr:2:1,corruptencoder:simsiam:0:2,na-paper:simclr:0:2,na-code:simclr:1:2,na-paper:simclr:2:2,corruptencoder:simclr:0:2
exec nice -n 15 /work/main/.venv/bin/naviewer reproduce --matrix /work/exp/s17/matrix --cells $CELLS
