#!/bin/bash
# session 27: the sixteen cells of the plan that session 23 did not run again (every cell where session 4's recipe
# formed no backdoor), with today's recipe, so that the matrix's 27 cells are all measured on the rules of sessions
# 18-26. Session 23's records hold the other eleven. Resumable: run it again to go on.
set -e
M=/work/exp/s27/matrix/out
CELLS=patch:simclr:0:2,ctrl:simclr:0:2,corruptencoder:byol:0:2,corruptencoder:mocov2:0:2
nice -n 15 /work/main/.venv/bin/naviewer reproduce --matrix $M --cells $CELLS
CELLS=na-code:mocov2:0:2,na-paper:mocov2:0:2,patch:mocov2:0:2,ctrl:mocov2:0:2
nice -n 15 /work/main/.venv/bin/naviewer reproduce --matrix $M --cells $CELLS
CELLS=na-code:byol:0:2,na-paper:byol:0:2,patch:byol:0:2,ctrl:byol:0:2
nice -n 15 /work/main/.venv/bin/naviewer reproduce --matrix $M --cells $CELLS
CELLS=na-code:simsiam:0:2,na-paper:simsiam:0:2,patch:simsiam:0:2,ctrl:simsiam:0:2
nice -n 15 /work/main/.venv/bin/naviewer reproduce --matrix $M --cells $CELLS
