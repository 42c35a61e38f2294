#!/bin/bash
# session 13 background: the demo end to end with the per-class reach, then post-hoc DIFT (preset, crop agreement) on the CIFAR stop's encoder
cd /work/exp/s13/demo && rm -rf ws && nice -n 5 /work/main/.venv/bin/naviewer demo --no-gui --workspace ws > demo.log 2>&1
echo DEMO_DONE >> demo.log
cd /work/exp/s13/cifar && rm -rf wsp && cp -r ws wsp && nice -n 5 /work/main/.venv/bin/naviewer detect wsp --checkpoint stop_e44.pt --dift-set anchor_reach_units=class --tag posthoc-e44 > posthoc.log 2>&1
echo POSTHOC_DONE >> posthoc.log
