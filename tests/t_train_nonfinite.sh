#!/bin/sh
# A non-finite loss is reported, the step is skipped (never applied), and K in a row stop the run
# with exit status 2. A learning rate of 1e30 makes the weights overflow after the first step.
B=${BUILDDIR:-build}
T=$B/training/catanet-train
SHARED=${CATANET_SHARED:-../shared}
[ -x "$T" ] || { echo "FAIL: $T not built"; exit 1; }
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
$T train --data "$SHARED/data/eval/Set5/HR" --dim 8 --qk-dim 8 --heads 2 --mlp-dim 16 --groups 2 --tokens 4 \
    --group-size 64 --patch-size 8,12 --batch 2 --patch 16 --iters 50 --lr 1e30 --max-bad 3 --threads 1 \
    --val-every 0 --ckpt "$W/c.ckpt" --ckpt-secs 0 --quiet 2>"$W/err"
rc=$?
skipped=$(grep -c "non-finite loss, step skipped" "$W/err")
if [ $rc = 2 ] && [ "$skipped" = 3 ] && grep -q "3 non-finite steps in a row: stopping" "$W/err"; then
    echo "PASS: non-finite loss reported and skipped 3 times, then the run stopped (exit 2)"
else
    echo "FAIL: non-finite handling: exit $rc, $skipped skipped steps"; cat "$W/err"; exit 1
fi
# stopping on divergence does not overwrite the last good checkpoint with the diverged state
if [ -f "$W/c.ckpt" ]; then
    echo "FAIL: a checkpoint was written when stopping on non-finite steps"; exit 1
fi
echo "PASS: no checkpoint of the diverged state"
