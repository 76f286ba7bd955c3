# Sourced by the training tests that start from a tiny model's checkpoint (t_train_ckpt.sh,
# t_train_diverge.sh): T (catanet-train), EDIT (tests/train_ckpt_edit.py), a work folder W removed
# at exit, fail=0, ARGS (a 1-group dim-8 network on Set5), and $W/c.ckpt at step 4 with its copy
# $W/c0.ckpt. LOG: the --log file (in W) to give the run, empty for none.
B=${BUILDDIR:-build}
T=$B/training/catanet-train
SHARED=${CATANET_SHARED:-../shared}
EDIT="python3 $(dirname "$0")/train_ckpt_edit.py"
[ -x "$T" ] || { echo "FAIL: $T not built"; exit 1; }
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
fail=0
ARGS="--data $SHARED/data/eval/Set5/HR --dim 8 --qk-dim 8 --heads 2 --mlp-dim 16 --groups 1 --tokens 4 \
 --group-size 64 --patch-size 8 --batch 1 --patch 16 --lr 1e-3 --threads 1 --val-every 0 --ckpt-every 2 \
 --ckpt-secs 0 --quiet"
$T train $ARGS --iters 4 --ckpt "$W/c.ckpt" ${LOG:+--log "$W/$LOG"} 2>"$W/err" || { echo "FAIL: train: $(cat "$W/err")"; exit 1; }
cp "$W/c.ckpt" "$W/c0.ckpt"
