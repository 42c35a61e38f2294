#!/bin/bash
# session 25: the field's detectors beside DIFT on the CIFAR CorruptEncoder cell's stop encoder (session 24's ws2,
# epoch 40): PatchSearch with its new defaults, kdist, lid, crop_density (item 7: DIFT and the other detectors on it)
cd /work/exp/s25/ce
rm -rf ws && cp -r /work/exp/s24/cifar/ws2 ws
nice -n 5 /work/main/.venv/bin/naviewer detect ws --checkpoint ws/checkpoints/dift32/last.pt --tag ce-s25 \
  --detector patchsearch --detector kdist --detector lid --detector crop_density > detect.log 2>&1
echo CE_DONE >> detect.log
