#!/bin/sh
# gpu-train.sh OUTDIR [SECONDS]: spends SECONDS (default 300) of GPU time on the CATANet-L x2 teacher.
# Copies experiments/teacher-x2/catanet_l_x2.ckpt.safetensors into OUTDIR (the tree is never
# written) and resumes the copy with `catanet-train resume --device cuda --time-limit`, which stops
# at a step boundary with a checkpoint. OUTDIR then holds (5 files): catanet_l_x2.ckpt.safetensors
# (the new checkpoint: resume it anywhere with `catanet-train resume`, CPU or GPU), train.csv
# (step,loss,lr,elapsed_s of this run), train.csv.val.csv, train.log and summary.txt.
# The training images: the checkpoint's own four folders when $CATANET_SHARED/data/train has them
# (the same image set: the data position carries over exactly); else the subset that
# `gpu-train.sh --stage` put in the bundle (build/gpu-carry/shared/data/train-gpu), resumed with
# --new-data: the run goes on at the same sample number in that subset, and the new checkpoint
# records the subset as its data (resume it where the full set is with the four --data folders and
# --new-data). Validation (CPU engine, every 250 steps as in the checkpoint) on Set5 when its HR
# images are there, else off (--val-every 0, recorded in the checkpoint: give --val-every 250 when
# resuming elsewhere).
# Environment: GPU_TRAIN_BIN (catanet-train of a CUDA build; default $GPU_CHECK_BUILDDIR or
# build/gpu, then build), GPU_TRAIN_CKPT (the checkpoint to continue), GPU_TRAIN_ITERS (--iters,
# 800000: the schedule's end, so that the time limit stops the run), GPU_TRAIN_STAGE_MB (--stage:
# how many MB of T91 the bundle takes, default 4; the full set is about 100 MB).
#
# gpu-train.sh --stage (`make gpu-stage`): copies flutter-landscapes, as much of T91 as fits in
# GPU_TRAIN_STAGE_MB and Set5's HR images into the bundle, build/gpu-carry/shared.
cd "$(dirname "$0")/.." || exit 1
SH=${CATANET_SHARED:-../shared}
CARRY=build/gpu-carry/shared
if [ "$1" = "--stage" ]; then
    [ -d "$SH/data/train/T91" ] || { echo "gpu-train --stage: no training data at $SH/data/train"; exit 1; }
    rm -rf "$CARRY/data/train-gpu"
    mkdir -p "$CARRY/data/train-gpu/flutter-landscapes" "$CARRY/data/train-gpu/T91" "$CARRY/data/eval/Set5/HR" || exit 1
    cp "$SH"/data/train/flutter-landscapes/* "$CARRY/data/train-gpu/flutter-landscapes/" || exit 1
    cp "$SH"/data/eval/Set5/HR/* "$CARRY/data/eval/Set5/HR/" || exit 1
    max=$(( ${GPU_TRAIN_STAGE_MB:-4} * 1024 ))
    for f in "$SH"/data/train/T91/*; do
        [ $(du -sk "$CARRY/data/train-gpu" | cut -f1) -lt $max ] || break
        cp "$f" "$CARRY/data/train-gpu/T91/"
    done
    echo "gpu-train --stage: $(ls "$CARRY"/data/train-gpu/* | wc -l) images, $(du -sh "$CARRY/data/train-gpu" | cut -f1) in $CARRY/data/train-gpu"
    exit 0
fi
OUT=$1
SECS=${2:-300}
ITERS=${GPU_TRAIN_ITERS:-800000} # the official schedule's length: the time limit is what stops the run
[ -n "$OUT" ] || { echo "usage: gpu-train.sh OUTDIR [SECONDS] | gpu-train.sh --stage"; exit 2; }
mkdir -p "$OUT" || exit 1
CKPT=${GPU_TRAIN_CKPT:-experiments/teacher-x2/catanet_l_x2.ckpt.safetensors}
T=${GPU_TRAIN_BIN:-${GPU_CHECK_BUILDDIR:-build/gpu}/training/catanet-train}
[ -x "$T" ] || T=build/training/catanet-train
S="$OUT/summary.txt"
say() { echo "$*" | tee -a "$S"; }
: > "$S"
[ -x "$T" ] || { say "FAIL gpu-train: no catanet-train built (make, or GPU_TRAIN_BIN)"; exit 1; }
[ -f "$CKPT" ] || { say "FAIL gpu-train: no checkpoint $CKPT"; exit 1; }
cp "$CKPT" "$OUT/catanet_l_x2.ckpt.safetensors" || exit 1
set --
if [ -d "$SH/data/train/BSD200" ] && [ -d "$SH/data/train/debian-photos" ]; then
    for d in T91 BSD200 flutter-landscapes debian-photos; do set -- "$@" --data "$SH/data/train/$d"; done
    data="the checkpoint's four folders ($SH/data/train)"
elif [ -d "$CARRY/data/train-gpu" ]; then
    for d in "$CARRY"/data/train-gpu/*; do set -- "$@" --data "$d"; done
    set -- "$@" --new-data
    data="the staged subset ($(ls "$CARRY"/data/train-gpu/* | wc -l) images, --new-data)"
else
    say "FAIL gpu-train: no training images ($SH/data/train, or gpu-train.sh --stage there)"
    exit 1
fi
val=""
for d in "$SH/data/eval/Set5" "$CARRY/data/eval/Set5"; do
    [ -d "$d/HR" ] && { val=$d; break; }
done
if [ -n "$val" ]; then set -- "$@" --val "$val"; else set -- "$@" --val-every 0; fi
say "gpu-train: $(date -u +%FT%TZ), $SECS s on the GPU from $CKPT, data: $data, validation: ${val:-off}"
mkdir -p build/gpu-train-cache
t0=$(date +%s)
"$T" resume "$OUT/catanet_l_x2.ckpt.safetensors" --device cuda --time-limit "$SECS" --iters "$ITERS" --quiet \
    --log "$OUT/train.csv" --cache build/gpu-train-cache "$@" > "$OUT/train.log" 2>&1
rc=$?
say "gpu-train: rc $rc in $(( $(date +%s) - t0 )) s; $(grep -E '^catanet-train: (resuming|training on|[0-9]+ steps)' "$OUT/train.log" | tr '\n' ';')"
[ $rc = 0 ] || tail -n 5 "$OUT/train.log" | sed 's/^/    /' | tee -a "$S"
if [ "$(wc -l < "$OUT/train.csv" 2> /dev/null || echo 0)" -gt 1 ]; then
    say "gpu-train: loss $(awk -F, 'FNR == 2 { a = $2; s = $1 } FNR > 1 { b = $2; e = $1; n++; t += $2 } END { if (n) printf "%.5f at step %d -> %.5f at step %d (mean %.5f over %d steps)", a, s, b, e, t / n, n }' "$OUT/train.csv")"
    [ "$(wc -l < "$OUT/train.csv.val.csv" 2> /dev/null || echo 0)" -gt 1 ] && say "gpu-train: validation: $(tail -n +2 "$OUT/train.csv.val.csv" | tail -n 2 | tr '\n' ' ')"
fi
exit $rc
