#!/bin/bash
# session 25: PatchSearch with its new defaults (neighbours 10, robust_z), a fresh post-hoc run on the patch cell's
# epoch-70 encoder, against the replay of the stored pass (247 at 81 / 62 %)
cd /work/exp/s25/fresh
nice -n 5 /work/main/.venv/bin/naviewer detect ws --checkpoint ws/checkpoints/dift32/epoch_0069.pt --tag e70-ps25 --detector patchsearch > fresh.log 2>&1
echo FRESH_DONE >> fresh.log
