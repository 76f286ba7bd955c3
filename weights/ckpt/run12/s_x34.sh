#!/bin/sh
# Session 12: S x3 and S x4 remade from the S x2 that reached the equal budget (40,713; run11/run.sh s's
# export, shipped byte for byte as weights/catanet_s_x2.safetensors, read from there), the same way as
# before (../x3_run11/run.sh, ../x4_run7/run.sh):
# train --from it --scale S, 500 iterations each (the teacher's 250 + XS's 250), validated at 250 too,
# batch 4 of 32x32 LR, HR-only L1, lr 2e-4; side by side, one thread each. Checkpoints and exports in
# build/run12 (minutes-long runs), logs here. weights/README.md decides what ships.
set -e
D="--data ../shared/data/train/T91 --data ../shared/data/train/BSD200 --data ../shared/data/train/flutter-landscapes --data ../shared/data/train/debian-photos"
V="--val ../shared/data/eval/Set5 --val ../shared/data/eval/Set14"
R=weights/ckpt/run12 W=build/run12 T=build/training/catanet-train
mkdir -p $W
for s in 3 4; do
    [ -f $W/catanet_s_x$s.ckpt.safetensors ] && continue
    $T train --scale $s --from weights/catanet_s_x2.safetensors $D $V --batch 4 --patch 32 --threads 1 --quiet \
        --iters 500 --val-every 250 --ckpt $W/catanet_s_x$s.ckpt.safetensors --log $R/s_x$s.csv > $R/s_x$s.log 2>&1 &
done
wait
# `wait` tells nothing of the jobs' status: resume each (a no-op for a finished run, the rest of a stopped
# one, which ends by its signal again if stopped again, and set -e stops here), then export
for s in 3 4; do
    $T resume $W/catanet_s_x$s.ckpt.safetensors --threads 1 --quiet >> $R/s_x$s.log 2>&1
    $T export $W/catanet_s_x$s.ckpt.safetensors $W/catanet_s_x$s.safetensors
done
