#!/bin/bash
for c in s1-t2 s0-t1 s1-t1 s2-t2; do
  nice -n 5 /work/main/.venv/bin/python /work/exp/s31/second_round.py $c 2>&1 | grep -v "\[#\|^  epoch\|^epoch" | tail -2
done
echo DONE
