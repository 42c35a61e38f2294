#!/bin/bash
cd /work/exp/s14/demo6
( for s in 0 1 2; do nice -n 5 /work/main/.venv/bin/python one.py $s 1 36 > log-s$s-t1.txt 2>&1; done ) &
( for s in 0 1 2; do nice -n 5 /work/main/.venv/bin/python one.py $s 2 36 > log-s$s-t2.txt 2>&1; done ) &
wait
