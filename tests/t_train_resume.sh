#!/bin/sh
# Kill-and-resume: a tiny model trained 60 steps without interruption, and the same run killed
# with SIGKILL part-way and resumed from its last checkpoint, log exactly the same losses, and
# the exported models are identical. Also: SIGTERM writes a checkpoint at the step boundary, and a
# fresh run rewrites an existing log instead of appending to it.
B=${BUILDDIR:-build}
T=$B/training/catanet-train
SHARED=${CATANET_SHARED:-../shared}
DATA=$SHARED/data/eval/Set5/HR
[ -x "$T" ] || { echo "FAIL: $T not built"; exit 1; }
[ -d "$DATA" ] || { echo "FAIL: $DATA missing"; exit 1; }
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
ARGS="--data $DATA --scale 2 --dim 8 --qk-dim 8 --heads 2 --mlp-dim 16 --groups 2 --tokens 4 \
 --group-size 64 --patch-size 8,12 --batch 2 --patch 16 --iters 60 --milestones 20,40 --lr 1e-3 \
 --seed 7 --threads 1 --val-every 0 --ckpt-every 5 --ckpt-secs 0 --quiet"
fail=0
$T train $ARGS --ckpt "$W/a.ckpt" --log "$W/a.csv" || { echo "FAIL: uninterrupted run"; exit 1; }
$T train $ARGS --ckpt "$W/b.ckpt" --log "$W/b.csv" &
pid=$!
# wait for a few checkpoints, then kill -9 in the middle of the run
i=0
while [ $i -lt 600 ]; do
    n=$([ -f "$W/b.csv" ] && wc -l < "$W/b.csv" || echo 0)
    [ "$n" -ge 23 ] && break
    sleep 0.05
    i=$((i + 1))
done
kill -9 $pid 2>/dev/null
wait $pid 2>/dev/null
krc=$?
killed_at=$(($(wc -l < "$W/b.csv") - 1))
[ -f "$W/b.ckpt" ] || { echo "FAIL: no checkpoint before the kill"; exit 1; }
$T resume "$W/b.ckpt" --threads 1 --quiet 2>"$W/b.err" || { echo "FAIL: resume: $(cat "$W/b.err")"; exit 1; }
# the kill must have landed part-way: the run died of SIGKILL (137), before its last step, and the
# resume went on from a checkpoint before the end (else nothing here was resumed)
resumed_at=$(sed -n 's/.*resuming .* at step \([0-9]*\) of .*/\1/p' "$W/b.err")
if [ $krc = 137 ] && [ "$killed_at" -lt 60 ] && [ -n "$resumed_at" ] && [ "$resumed_at" -lt 60 ]; then
    echo "PASS: the kill landed at step $killed_at (status $krc), the resume went on from step $resumed_at"
else
    echo "FAIL: the kill did not land part-way (status $krc, $killed_at steps logged, resumed at '$resumed_at')"
    fail=1
fi
# every logged (step, loss) of the killed and the resumed run equals the uninterrupted one
bad=$(awk -F, 'NR==FNR { if (FNR > 1) a[$1] = $2; next } FNR > 1 && a[$1] != $2 { print $1 }' "$W/a.csv" "$W/b.csv" | head -3)
steps=$(awk -F, 'FNR > 1 { s[$1] = 1 } END { n = 0; for (k in s) n++; print n }' "$W/b.csv")
if [ -n "$bad" ] || [ "$steps" != 60 ]; then
    echo "FAIL: kill -9 at step $killed_at and resume: losses differ at steps: $bad (steps logged: $steps)"
    fail=1
else
    echo "PASS: kill -9 at step $killed_at, resume: the 60 losses equal the uninterrupted run's exactly"
fi
$T export "$W/a.ckpt" "$W/a.safetensors" && $T export "$W/b.ckpt" "$W/b.safetensors" || { echo "FAIL: export"; exit 1; }
if cmp -s "$W/a.safetensors" "$W/b.safetensors"; then
    echo "PASS: exported models identical"
else
    echo "FAIL: exported models differ"
    fail=1
fi
# SIGTERM: the run stops at a step boundary with a checkpoint at that step
$T train $ARGS --iters 100000 --ckpt-every 0 --ckpt "$W/c.ckpt" --log "$W/c.csv" &
pid=$!
i=0
while [ $i -lt 600 ]; do
    n=$([ -f "$W/c.csv" ] && wc -l < "$W/c.csv" || echo 0)
    [ "$n" -ge 5 ] && break
    sleep 0.05
    i=$((i + 1))
done
kill -TERM $pid
wait $pid
rc=$?
last=$(tail -n 1 "$W/c.csv" | cut -d, -f1)
# stopped, not finished: the program ends by the signal (128 + 15 in the shell)
if [ $rc = 143 ]; then
    echo "PASS: a run stopped by SIGTERM ends by it (status $rc)"
else
    echo "FAIL: a run stopped by SIGTERM exited with status $rc, not 143 (a caller would take it for finished)"
    fail=1
fi
$T resume "$W/c.ckpt" --iters $((last + 2)) --quiet 2>"$W/c.err" || { echo "FAIL: resume after SIGTERM"; cat "$W/c.err"; exit 1; }
if grep -q "resuming .* at step $last " "$W/c.err"; then
    echo "PASS: SIGTERM at step $last wrote a checkpoint of that step"
else
    echo "FAIL: SIGTERM checkpoint: $(cat "$W/c.err")"
    fail=1
fi
# a fresh run over an old run's log starts the log afresh (the resumed runs above appended to theirs)
$T train $(echo "$ARGS" | sed 's/--iters 60/--iters 3/') --ckpt "$W/d.ckpt" --log "$W/a.csv" 2>/dev/null ||
    { echo "FAIL: a fresh run on an existing log"; exit 1; }
if [ "$(wc -l < "$W/a.csv")" = 4 ] && [ "$(grep -c '^step' "$W/a.csv")" = 1 ]; then
    echo "PASS: a fresh run over an existing log rewrote it (header + 3 steps)"
else
    echo "FAIL: a fresh run over an existing log: $(wc -l < "$W/a.csv") lines"
    fail=1
fi
exit $fail
