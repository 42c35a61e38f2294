#!/bin/bash
# session 26: PatchSearch's Grad-CAM one stage finer (layer3, 8x8 at 32 px: a window of 8 px is 2 cells, the
# paper's ratio at 224 px) beside auto (layer4, 4x4: the window is 1 cell) on the ce10 epoch-40 encoder
cd /work/exp/s26/cifar
while ! grep -q FLOOR_DONE eval_run_floor.log 2>/dev/null || ! grep -q STEP5 ce10.out 2>/dev/null; do sleep 30; done
NV=/work/main/.venv/bin/naviewer
rm -rf wsc && cp -r wsp wsc
nice -n 5 $NV detect wsc --checkpoint $PWD/run_poisoned/checkpoints/epoch_0039.pt --tag cam-layer3 \
  --detector patchsearch --detector-set patchsearch:cam_layer=layer3 > cam.log 2>&1
/work/main/.venv/bin/python auroc.py wsc > auroc_wsc.txt 2>&1
echo CAM_DONE >> cam.log
