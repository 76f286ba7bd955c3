#!/bin/sh
# CATANet-XS from a CATANet-L teacher: staged depth pruning 8 -> 6 -> 4 -> 3 groups (each stage's
# recovered student is the next stage's teacher, training-spec §5.2), a short recovery distillation
# after each stage, and the final distillation (0.5 L1 HR + 0.5 L1 teacher + 0.04 FAKD).
# usage: training/xs_pipeline.sh TEACHER.safetensors WORKDIR OUT.safetensors
# Lengths come from the environment (defaults are a minutes-long CPU demonstration, not a result):
#   P1 P2 P3 (prune iterations per stage), R (recovery iterations), D (final distillation iterations),
#   BATCH, PATCH, DATA (training image folders, separated by spaces), THREADS,
#   LATENCY_OF (a model: every stage keeps only students that can run within LATENCY_FACTOR (0.8) of
#   its measured CPU time, e.g. the hand-designed baseline's)
set -e
TEACHER=$1 W=$2 OUT=$3
[ -n "$OUT" ] || { echo "usage: $0 TEACHER WORKDIR OUT" >&2; exit 2; }
T=${BUILDDIR:-build}/training/catanet-train
SHARED=${CATANET_SHARED:-../shared}
DATA=${DATA:-$SHARED/data/train/T91}
P1=${P1:-80} P2=${P2:-60} P3=${P3:-40} R=${R:-40} D=${D:-200}
DATA_OPTS=
for d in $DATA; do DATA_OPTS="$DATA_OPTS --data $d"; done
COMMON="$DATA_OPTS --batch ${BATCH:-2} --patch ${PATCH:-32} --threads ${THREADS:-1}"
LAT=
[ -n "$LATENCY_OF" ] && LAT="--latency-of $LATENCY_OF --latency-factor ${LATENCY_FACTOR:-0.8} --final-keep 3"
mkdir -p "$W"
cur=$TEACHER
stage=1
for spec in "6 $P1 0" "4 $P2 0" "3 $P3 229999"; do
    set -- $spec
    keep=$1 iters=$2 budget=$3
    echo "== stage $stage: $cur -> keep $keep groups ($iters prune iterations)"
    $T prune --teacher "$cur" --keep "$keep" --budget "$budget" --iters "$iters" --log-every 10 $LAT \
        --out "$W/decision$stage.json" --student "$W/pruned$stage.safetensors" $COMMON
    if [ "$keep" -gt 3 ]; then
        $T distill --teacher "$cur" --student "$W/pruned$stage.safetensors" --out "$W/student$stage.safetensors" \
            --iters "$R" --log-every 10 $COMMON
        cur=$W/student$stage.safetensors
    else
        $T distill --teacher "$cur" --student "$W/pruned$stage.safetensors" --out "$OUT" --iters "$D" \
            --log-every 20 --val "$SHARED/data/eval/Set5" --val "$SHARED/data/eval/Set14" $COMMON
    fi
    stage=$((stage + 1))
done
