set -x
NV=/work/main/.venv/bin/naviewer
D=/work/exp/s29/indep/data
rm -rf wsA2v
$NV new wsA2v --dataset $D/A2 --anchors $D/clean/trusted
nice -n 10 $NV run wsA2v --dift --arch resnet10 --width 16 --batch-size 128 --image-size 16 \
    --epochs 50 --warmup-epochs 2 --augment-recipe aug+ --dift-start 29 --threads 1 --seed 0
nice -n 10 $NV finetune wsA2v --accept-all --threads 1
for ck in wsA2v/checkpoints/*/last.pt; do
  $NV eval --checkpoint $ck --dataset $D/clean --attack patch --attack-setting trigger=$D/trigger_A2_8px.png \
     --attack-setting trigger_size=8 --attack-setting target_class=0 --no-linear --device cpu --json eval_after.json
done
