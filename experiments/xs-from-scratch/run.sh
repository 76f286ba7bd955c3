#!/bin/sh
# The from-scratch control: XS's architecture (dim 40, CATANet-L's groups {0,2,6}: (16,256,16)
# (64,64,24) (64,64,24); 216,515 parameters) trained from scratch exactly as the baseline S was
# (batch 4 of 32x32, lr 2e-4, seed 3407, the same four folders) for the same 40,713 iterations,
# with S's decayed tail (x0.5 at 37,713 and 39,213). It tells what XS's architecture learns on its
# own from what the pipeline gives it: the shipped XS spends 33,593 of those iterations on its teacher.
#
# usage (any folder): [THREADS=N] sh experiments/xs-from-scratch/run.sh
# Resumable: it goes on from catanet_xs_scratch_x2.ckpt.safetensors (beside this script, committed
# while the run is in progress) and exports build/experiments/xs_scratch_x2.safetensors once finished.
set -e
cd "$(dirname "$0")/../.."
. experiments/lib.sh
X=experiments/xs-from-scratch
C=$X/catanet_xs_scratch_x2.ckpt.safetensors
B=40713
if [ -f $C ]; then
    $T resume $C $DATA $VAL --iters $B --milestones 37713,39213 --threads ${THREADS:-1} --log $X/train.csv \
        --cache "$CACHE" --quiet
else
    $T train $DATA $VAL --scale 2 --dim 40 --qk-dim 36 --heads 4 --mlp-dim 96 --groups 3 --tokens 16,64,64 \
        --group-size 256,64,64 --patch-size 16,24,24 --batch 4 --patch 32 --iters $B --lr 2e-4 \
        --milestones 37713,39213 --gamma 0.5 --threads ${THREADS:-1} --val-every 1500 --ckpt $C \
        --log $X/train.csv --cache "$CACHE" --quiet
fi
# reached only by a finished run: a run stopped by a signal ends by that signal and set -e stops here
mkdir -p "$WORK"
$T export $C "$WORK/xs_scratch_x2.safetensors"
