#!/bin/bash
# session 19: four more draws of the no-poison floor (five in all) for the two cells whose kept sets were trained
# three times in session 18: is the floor's own spread as wide as the kept set's?
# OUT/mx1 and OUT/mx2 are copies of session 18's two matrix folders (reproduction/matrix/session18/run.sh, run2.sh):
# the cells are done there, so --floors 5 trains the four missing floor draws of each and nothing else
set -e
N=/work/main/.venv/bin/naviewer
nice -n 15 $N reproduce --matrix OUT/mx1 --cells na-paper:simclr:0:2 --restarts retrain,oracle --retrains 2 --detector kdist --floors 5
nice -n 15 $N reproduce --matrix OUT/mx2 --cells na-paper:simclr:1:1 --restarts retrain,oracle --retrains 2 --detector kdist --floors 5
