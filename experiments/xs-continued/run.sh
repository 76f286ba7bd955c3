#!/bin/sh
# Equal student budget, the teacher given: the shipped XS x2 (7,120 student iterations of pruning,
# recovery and distillation from the trained CATANet-L) trained on, HR-only, to 40,713 student
# iterations, the budget S had from scratch. The schedule is S's: batch 4 of 32x32, lr 2e-4, seed
# 3407, the same four folders, x0.5 at student iterations 37,713 and 39,213 (steps 30,593 and 32,093
# of this run). The teacher's own training is not counted here: this is the framing in which
# CATANet-L exists already. Adam starts fresh (the shipped file holds weights only); the data order
# is this run's own.
#
# usage (any folder): [THREADS=N] sh experiments/xs-continued/run.sh
# Resumable: it goes on from catanet_xs_continued_x2.ckpt.safetensors (beside this script, committed
# while the run is in progress) and exports build/experiments/xs_continued_x2.safetensors once
# finished, and beside it catanet_xs_x2.safetensors with its provenance (what ships when it wins).
# Validation every 1,500 steps (student iteration = step + 7,120) in train.csv.val.csv.
# It starts from the xs-pipeline's XS x2 (XS_PIPELINE_MODEL; by default the one
# `sh experiments/xs-pipeline/run.sh` makes), not from weights/, which this run's model may replace.
set -e
cd "$(dirname "$0")/../.."
. experiments/lib.sh
X=experiments/xs-continued
C=$X/catanet_xs_continued_x2.ckpt.safetensors
B=33593
FROM=${XS_PIPELINE_MODEL:-$WORK/xs-pipeline/catanet_xs_x2.safetensors}
if [ -f $C ]; then
    $T resume $C $DATA $VAL --iters $B --threads ${THREADS:-1} --log $X/train.csv --cache "$CACHE" --quiet
else
    [ -f "$FROM" ] || { echo "$0: no $FROM: run sh experiments/xs-pipeline/run.sh first (or set XS_PIPELINE_MODEL)" >&2; exit 1; }
    $T train --from "$FROM" $DATA $VAL --batch 4 --patch 32 --iters $B \
        --lr 2e-4 --milestones 30593,32093 --gamma 0.5 --threads ${THREADS:-1} --val-every 1500 \
        --ckpt $C --log $X/train.csv --cache "$CACHE" --quiet
fi
[ "$(ckpt_step $C)" = $B ] || { echo "$0: stopped before step $B; run it again to go on" >&2; exit 1; }
mkdir -p "$WORK"
$T export $C "$WORK/xs_continued_x2.safetensors"
python3 experiments/set-provenance.py "$WORK/xs_continued_x2.safetensors" "$WORK/catanet_xs_x2.safetensors" \
    "catanet_provenance=$(python3 experiments/provenance.py xs_x2)"
