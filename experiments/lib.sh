# experiments/lib.sh: what the recipes share; each experiments/*/run.sh sources it from the repository
# root. CATANET_SHARED: the shared data folder (default ../shared); BUILDDIR: the build (default build).
SHARED=${CATANET_SHARED:-../shared}
T=${BUILDDIR:-build}/training/catanet-train
[ -x "$T" ] || { echo "$0: $T is not built (./configure && make)" >&2; exit 1; }
[ -d "$SHARED/data/train/T91" ] || { echo "$0: no training images in $SHARED/data/train (CATANET_SHARED)" >&2; exit 1; }
# the training set of every shipped model (341 images; the photos are downscaled by the data pipeline)
TRAIN_DIRS="$SHARED/data/train/T91 $SHARED/data/train/BSD200 $SHARED/data/train/flutter-landscapes $SHARED/data/train/debian-photos"
DATA=
for d in $TRAIN_DIRS; do DATA="$DATA --data $d"; done
VAL="--val $SHARED/data/eval/Set5 --val $SHARED/data/eval/Set14"
# the decoded-photo cache and the work folder (checkpoints of short stages, exports): build output
CACHE=${BUILDDIR:-build}/photo-cache
WORK=${BUILDDIR:-build}/experiments

# ckpt_step CKPT: the step a checkpoint is at. A run stopped by a signal ends by that signal (set -e
# stops the recipe), but the step is what "finished" means before an export.
ckpt_step() {
    python3 -c 'import json, struct, sys; f = open(sys.argv[1], "rb"); n = struct.unpack("<Q", f.read(8))[0]; print(json.loads(f.read(n))["__metadata__"]["step"])' "$1"
}

# finetune CKPT FROM OUT ITERS LR MILESTONES LOG [OPTIONS]: `train --from FROM` (or resume CKPT),
# batch 4 of 32x32 (OPTIONS come last and may change it), HR-only L1, THREADS threads (default one),
# then export to OUT once CKPT reached ITERS; nothing to do when OUT exists
finetune() {
    [ -f "$3" ] && return 0
    ck=$1 from=$2 out=$3 it=$4 lr=$5 ms=$6 log=$7
    shift 7
    if [ -f "$ck" ]; then
        $T resume "$ck" $DATA $VAL --threads ${THREADS:-1} --quiet
    else
        $T train --from "$from" $DATA $VAL --batch 4 --patch 32 --iters "$it" --lr "$lr" --milestones "$ms" \
            --gamma 0.5 --threads ${THREADS:-1} --ckpt "$ck" --log "$log" --cache "$CACHE" --quiet "$@"
    fi
    [ "$(ckpt_step "$ck")" = "$it" ] || { echo "$0: $ck stopped before step $it; run it again to go on" >&2; exit 1; }
    $T export "$ck" "$out"
}
