#!/bin/sh
# Session 13: a control for the XS-vs-S claim. XS's architecture (dim 40, CATANet-L's groups {0,2,6}:
# (16,256,16) (64,64,24) (64,64,24); 216,515 parameters) trained from scratch exactly as the baseline S
# was (batch 4 of 32x32, lr 2e-4, seed 3407, the same four folders), to the same budget of 40,713
# iterations with S's decayed tail (x0.5 at 37,713 and 39,213). It separates what XS's architecture
# learns from what the pipeline gives it: the shipped XS spends 33,593 of those iterations on the teacher.
#
# usage (repo root): [THREADS=N] sh weights/ckpt/run13/xs_scratch.sh. Resumable: it goes on from its
# checkpoint, and exports weights/ckpt/run13/xs_scratch.safetensors once the run has finished.
# Session 13 ran the first 4,500 iterations with --iters 4500 (the same schedule: no milestone before
# 37,713), then resumed with the options below.
set -e
T=build/training/catanet-train
C=weights/ckpt/catanet_xs_scratch_x2.ckpt.safetensors
B=40713
D="--data ../shared/data/train/T91 --data ../shared/data/train/BSD200 --data ../shared/data/train/flutter-landscapes --data ../shared/data/train/debian-photos"
V="--val ../shared/data/eval/Set5 --val ../shared/data/eval/Set14"
if [ -f $C ]; then
    $T resume $C --iters $B --milestones 37713,39213 --threads ${THREADS:-1} --log ${C%.ckpt.safetensors}.csv --quiet
else
    $T train $D $V --scale 2 --dim 40 --qk-dim 36 --heads 4 --mlp-dim 96 --groups 3 --tokens 16,64,64 \
        --group-size 256,64,64 --patch-size 16,24,24 --batch 4 --patch 32 --iters $B --lr 2e-4 \
        --milestones 37713,39213 --gamma 0.5 --threads ${THREADS:-1} --val-every 1500 --ckpt $C \
        --log ${C%.ckpt.safetensors}.csv --cache weights/ckpt/photo-cache --quiet
fi
# reached only by a finished run: a run stopped by a signal ends by that signal (docs/training.md) and
# set -e stops here; no --time-limit, the one stop that exits 0
$T export $C weights/ckpt/run13/xs_scratch.safetensors
