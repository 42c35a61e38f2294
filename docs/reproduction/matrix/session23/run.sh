#!/bin/bash
# session 23: session 17's backdoor cells again, with the rules of sessions 18-23 (the cluster-reach rule and its
# member floor); first the five that missed in session 17, then the other six. Resumable: run it again to go on.
set -e
CELLS=na-paper:simclr:0:2,na-paper:simclr:0:1,na-code:simclr:2:2,na-paper:simclr:1:1,na-paper:simclr:2:1
nice -n 15 /work/main/.venv/bin/naviewer reproduce --matrix /work/exp/s23/matrix/out --cells $CELLS
CELLS=na-code:simclr:0:2,na-paper:simclr:1:2,corruptencoder:simsiam:0:2,na-code:simclr:1:2,na-paper:simclr:2:2,corruptencoder:simclr:0:2
nice -n 15 /work/main/.venv/bin/naviewer reproduce --matrix /work/exp/s23/matrix/out --cells $CELLS
