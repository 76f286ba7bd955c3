#!/bin/sh
# A run whose state diverges stops with exit 2, keeps its last good checkpoint and leaves nothing to
# export: a learning rate of 1e30 blows the weights up at the first step (finite, but the network's
# output is NaN), and the run ends (--iters) before --max-bad non-finite steps in a row would stop it.
# export refuses a checkpoint whose network gives NaN.
LOG= . "$(dirname "$0")/train_lib.sh"

# steps 5..7 at lr 1e30, checkpoints due at 6 and at the end (7); --max-bad 5 is not reached
$T resume "$W/c.ckpt" --lr 1e30 --iters 7 --max-bad 5 --threads 1 --quiet 2>"$W/div.err" &&
    $T export "$W/c.ckpt" "$W/out.safetensors" 2>>"$W/div.err"
rc=$?
if [ $rc = 2 ] && [ ! -e "$W/out.safetensors" ] && cmp -s "$W/c.ckpt" "$W/c0.ckpt" &&
    grep -q "the training diverged .*: stopping; the checkpoint .*c.ckpt of step 4 is kept" "$W/div.err"; then
    echo "PASS: a diverging run exits 2, exports nothing, and keeps the checkpoint of step 4 intact"
else
    echo "FAIL: diverging run: exit $rc, export $([ -e "$W/out.safetensors" ] && echo written || echo absent)," \
        "checkpoint $(cmp -s "$W/c.ckpt" "$W/c0.ckpt" && echo intact || echo changed): $(cat "$W/div.err")"
    fail=1
fi

# without --ckpt the end of the run still says the state diverged
$T train $(echo "$ARGS" | sed 's/--lr 1e-3/--lr 1e30/') --iters 3 --max-bad 5 2>"$W/nock.err"
rc=$?
if [ $rc = 2 ] && grep -q "the training diverged" "$W/nock.err"; then
    echo "PASS: a diverged run without --ckpt exits 2"
else
    echo "FAIL: a diverged run without --ckpt: exit $rc: $(cat "$W/nock.err")"; fail=1
fi

# a checkpoint whose weights are finite but huge: its network gives NaN, export refuses it
$EDIT "$W/c0.ckpt" "$W/huge.ckpt" scale 1e30
$T export "$W/huge.ckpt" "$W/huge.safetensors" 2>"$W/huge.err"
rc=$?
if [ $rc != 0 ] && [ ! -e "$W/huge.safetensors" ] && grep -q "output holds NaN or Inf" "$W/huge.err"; then
    echo "PASS: export refuses a model whose output is not finite (exit $rc)"
else
    echo "FAIL: export of a diverged model: exit $rc: $(cat "$W/huge.err")"; fail=1
fi
# and the sound checkpoint exports
if $T export "$W/c0.ckpt" "$W/good.safetensors" 2>"$W/good.err" && [ -s "$W/good.safetensors" ]; then
    echo "PASS: the last good checkpoint exports"
else
    echo "FAIL: export of the good checkpoint: $(cat "$W/good.err")"; fail=1
fi
exit $fail
