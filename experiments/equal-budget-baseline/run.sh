#!/bin/sh
# The equal-budget baseline: the hand-designed S (dim 36, CATANet-L's first four groups; 230,079
# parameters) trained from scratch for as many iterations as the XS pipeline spends in all (40,713
# batch-4-of-32x32 iterations: the teacher's 33,593 + pruning and recovery 1,120 + two 3,000-iteration
# stages), lr 2e-4 with the same decayed tail as XS's last stage (x0.5 at 37,713 and 39,213).
# The result is weights/catanet_s_x2.safetensors.
#
# usage (any folder): [THREADS=N] sh experiments/equal-budget-baseline/run.sh
# Resumable (checkpoint in build/experiments/equal-budget-baseline); exports
# build/experiments/equal-budget-baseline/catanet_s_x2.safetensors with its provenance once finished.
# The shipped model's finished checkpoint is in the history:
#   git show c03a228f790939ef0ad3fdbb242196cf5f3f85a4:weights/ckpt/catanet_s_x2.ckpt.safetensors
set -e
cd "$(dirname "$0")/../.."
. experiments/lib.sh
X=experiments/equal-budget-baseline W=$WORK/equal-budget-baseline
C=$W/catanet_s_x2.ckpt.safetensors
B=40713
mkdir -p $W
if [ -f $C ]; then
    $T resume $C $DATA $VAL --iters $B --threads ${THREADS:-1} --log $X/train.csv --cache "$CACHE" --quiet
else
    $T train $DATA $VAL --scale 2 --dim 36 --groups 4 --batch 4 --patch 32 --iters $B --lr 2e-4 \
        --milestones 37713,39213 --gamma 0.5 --threads ${THREADS:-1} --val-every 1500 --ckpt $C \
        --log $X/train.csv --cache "$CACHE" --quiet
fi
[ "$(ckpt_step $C)" = $B ] || { echo "$0: stopped before step $B; run it again to go on" >&2; exit 1; }
$T export $C $W/s.safetensors
python3 experiments/set-provenance.py $W/s.safetensors $W/catanet_s_x2.safetensors \
    "catanet_provenance=$(python3 experiments/provenance.py s_x2)"
