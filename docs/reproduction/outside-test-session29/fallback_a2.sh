set -x
# session 29: the outside test's A2 data (built by build_data.py + build_a2.py into D) through DIFT in training
# and finetune --accept-all, whose paper restart now falls back to a retrain when Eq. 7 takes no step
NV=/work/main/.venv/bin/naviewer
D=/work/exp/s29/indep/data
rm -rf wsA2v
$NV new wsA2v --dataset $D/A2 --anchors $D/clean/trusted
nice -n 10 $NV run wsA2v --dift --arch resnet10 --width 16 --batch-size 128 --image-size 16 \
    --epochs 50 --warmup-epochs 2 --augment-recipe aug+ --dift-start 29 --threads 1 --seed 0
nice -n 10 $NV finetune wsA2v --accept-all --threads 1
# ASR with the helper's own trigger image (naviewer eval pastes it, 8 px, on the clean test digits)
$NV eval --checkpoint wsA2v/checkpoints/dift/last.pt --train-dataset $D/clean/train --test-dataset $D/clean/test \
   --attack patch --attack-setting trigger=$D/trigger_A2_8px.png --attack-setting trigger_size=8 --target 0 \
   --no-linear --device cpu --json eval_after.json
