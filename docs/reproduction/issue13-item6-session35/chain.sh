#!/bin/bash
# session 35: the demo's recipe end to end as a newcomer runs it, on the given seed/thread cells, one after another
cd /work/exp/s35
for c in "$@"; do
  s=${c%-*}; t=${c#*-}; ws=/work/exp/s35/run-s$s-t$t
  [ -f $ws.json ] && continue
  rm -rf $ws
  start=$(date +%s)
  nice -n 5 /work/main/.venv/bin/naviewer demo --no-gui --set seed=$s --threads $t --workspace $ws > $ws.demo.log 2>&1
  mid=$(date +%s)
  nice -n 5 /work/main/.venv/bin/naviewer finetune $ws --accept-all --threads $t > $ws.finetune.log 2>&1
  end=$(date +%s)
  echo "s$s-t$t demo $((mid-start)) s finetune $((end-mid)) s" >> /work/exp/s35/times.txt
  nice -n 5 /work/main/.venv/bin/python /work/exp/s35/evalrun.py $ws $t > $ws.json 2> $ws.eval.err
done
echo DONE "$@" >> /work/exp/s35/times.txt
