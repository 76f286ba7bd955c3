#!/bin/sh
# Does the attention learn more from wider crops? An LRSA patch is 16-28 pixels and an IASA group
# up to 256 tokens, so a 32x32 LR crop gives them little long-range context; the paper trains on
# 64x64. Each shipped x2 model (the teacher L, XS, S) is trained on from its shipped weights for the
# same budget in LR pixels, two ways from the same start:
#   wide:    N steps at batch 4 of 64x64 LR crops (the paper's crop);
#   control: 4N steps at batch 4 of 32x32 (the same number of LR pixels, the same lr schedule in
#            pixels), so that what the wide arm gains over the control is the crop, not the extra steps.
# Both at lr 5e-5 (where the shipped models ended), halved at three quarters, Adam fresh, seed 3407,
# the four training folders; validation on Set5/Set14 at every quarter (train.csv.val.csv files here).
#
# usage (any folder): [N=1000] [THREADS=2] sh experiments/context-64/run.sh [l|xs|s]...  (all three
# by default). Resumable: each arm keeps its one checkpoint beside this script while it runs
# (MODEL_ARM.ckpt.safetensors, committed while the run is in progress) and exports
# build/experiments/context-64/MODEL_ARM.safetensors when finished.
set -e
cd "$(dirname "$0")/../.."
. experiments/lib.sh
X=experiments/context-64 W=$WORK/context-64
N=${N:-1000}
mkdir -p $W
[ $# -gt 0 ] || set -- l xs s
for m in "$@"; do
    case $m in l|xs|s) ;; *) echo "$0: $m: not l, xs or s" >&2; exit 2 ;; esac
    for arm in wide control; do
        case $arm in wide) p=64 it=$N ;; control) p=32 it=$((4 * N)) ;; esac
        finetune $X/${m}_$arm.ckpt.safetensors weights/catanet_${m}_x2.safetensors $W/${m}_$arm.safetensors $it \
            5e-5 $((3 * it / 4)) $X/${m}_$arm.csv --patch $p --val-every $((it / 4))
    done
done
