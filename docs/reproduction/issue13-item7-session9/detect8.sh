#!/bin/bash
# CIFAR cell (CorruptEncoder 8 %, SimCLR, ResNet-10 w16, 16 px): every detector post-hoc on the epoch-150 encoder
cd /work/exp/s9
nice -n 5 /work/main/.venv/bin/naviewer detect ws8 --checkpoint run_ce_w16/checkpoints/epoch_0149.pt --run cifar-e150 \
  --baselines dbscan --detector kdist --detector lid --detector slof --detector dao --detector crop_density --detector patchsearch \
  > detect8.log 2>&1
echo done >> detect8.log
