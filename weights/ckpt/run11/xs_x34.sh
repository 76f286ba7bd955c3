#!/bin/sh
# Session 11: XS x3 and XS x4 remade from the new XS x2 (run.sh xs's export, ckpt/run11/xs_ft2.safetensors),
# the same way as ../x3_run11/run.sh and ../x4_run7/run.sh: train --from it --scale S, 250
# iterations each, batch 4 of 32x32 LR, HR-only L1, lr 2e-4, one thread. Exports in build/xs11.
set -e
D="--data ../shared/data/train/T91 --data ../shared/data/train/BSD200 --data ../shared/data/train/flutter-landscapes --data ../shared/data/train/debian-photos"
V="--val ../shared/data/eval/Set5 --val ../shared/data/eval/Set14"
R=weights/ckpt/run11 W=build/xs11
for s in 3 4; do
    build/training/catanet-train train --scale $s --from $R/xs_ft2.safetensors $D $V --batch 4 --patch 32 --threads 1 \
        --quiet --iters 250 --val-every 250 --ckpt $W/xs_x$s.ckpt.safetensors --log $R/xs_x$s.csv > $R/xs_x$s.log 2>&1
    build/training/catanet-train export $W/xs_x$s.ckpt.safetensors $W/catanet_xs_x$s.safetensors
done
# Shipped (weights/README.md): each export copied to weights/ with the note's first clause added
for s in 3 4; do
    python3 $R/add_note.py $W/catanet_xs_x$s.safetensors weights/catanet_xs_x$s.safetensors
done
