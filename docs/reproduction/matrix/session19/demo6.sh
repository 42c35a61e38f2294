#!/bin/bash
# session 19: the demo's recipe (NA paper layout, 36 references, 8 %) on seeds 0-2 x 1-2 threads, each kept set
# retrained twice and the no-poison floor drawn three times: the README's ranges re-measured with means
exec nice -n 15 /work/main/.venv/bin/naviewer reproduce --matrix OUT/demo6 \
  --cells na-paper:simclr:0:1,na-paper:simclr:0:2,na-paper:simclr:1:1,na-paper:simclr:1:2,na-paper:simclr:2:1,na-paper:simclr:2:2 \
  --set na_references=36 --retrains 2 --floors 3 --detector kdist
