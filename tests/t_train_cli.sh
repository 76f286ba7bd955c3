#!/bin/sh
# catanet-train's command line: --help on stdout with exit 0 (also for prune, extract, distill), --version, and numbers read whole and
# range-checked (exit 2 with a message naming the option), also for prune and distill.
B=${BUILDDIR:-build}
T=$B/training/catanet-train
[ -x "$T" ] || { echo "FAIL: $T not built"; exit 1; }
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
fail=0
$T --help > "$W/out" 2> "$W/err"
rc=$?
if [ $rc = 0 ] && grep -q "^usage:" "$W/out" && [ ! -s "$W/err" ]; then
    echo "PASS: --help prints the usage to stdout, exit 0"
else
    echo "FAIL: --help: exit $rc, stdout $(wc -c < "$W/out") bytes, stderr: $(cat "$W/err")"; fail=1
fi
$T train --help > "$W/out2" 2>&1 && cmp -s "$W/out" "$W/out2" || { echo "FAIL: train --help differs or fails"; fail=1; }
for c in prune extract distill; do
    $T $c --help > "$W/sub" 2> "$W/sub.err"
    rc=$?
    if [ $rc = 0 ] && grep -q "^usage: catanet-train $c" "$W/sub" && [ ! -s "$W/sub.err" ]; then
        echo "PASS: $c --help prints its usage to stdout, exit 0"
    else
        echo "FAIL: $c --help: exit $rc: $(cat "$W/sub" "$W/sub.err")"; fail=1
    fi
done
v=$($T --version 2>&1)
case "$v" in "catanet-train (catanet) "[0-9]*) echo "PASS: --version: $v" ;;
*) echo "FAIL: --version printed '$v'"; fail=1 ;; esac
# refused before any work: exit 2 and the option named (no data folder is needed to get there)
bad() { # bad EXPECTED-MESSAGE ARGS...
    msg=$1
    shift
    "$T" "$@" > /dev/null 2> "$W/bad.err"
    rc=$?
    if [ $rc = 2 ] && grep -q -- "$msg" "$W/bad.err"; then
        echo "PASS: $* -> exit 2: $(head -n 1 "$W/bad.err")"
    else
        echo "FAIL: $*: exit $rc, expected '$msg': $(cat "$W/bad.err")"; fail=1
    fi
}
bad "\-\-lr: 'abc' is not a number" train --data "$W" --lr abc
bad "\-\-lr: 'nan' is not a finite number" train --data "$W" --lr nan
bad "\-\-lr: '-1' is out of range" train --data "$W" --lr -1
bad "\-\-iters: '1.5' is not an integer" train --data "$W" --iters 1.5
bad "\-\-batch: '0' is out of range" train --data "$W" --batch 0
bad "\-\-threads: '100000' is out of range" train --data "$W" --threads 100000
bad "\-\-max-bad: '0' is out of range" train --data "$W" --max-bad 0
bad "\-\-milestones: '1x' is not an integer" train --data "$W" --milestones 1000,1x
bad "\-\-gamma: '2' is out of range" train --data "$W" --gamma 2
bad "unrecognized option '--nope'" train --data "$W" --nope 1
bad "resume takes 1 argument, not 0" resume --iters 5
# prune and distill refuse too (their errors exit 1)
"$T" prune --teacher "$W/t" --data "$W" --keep abc > /dev/null 2> "$W/p.err"
rc=$?
if [ $rc != 0 ] && grep -q -- "--keep: 'abc' is not an integer" "$W/p.err"; then
    echo "PASS: prune --keep abc refused (exit $rc)"
else
    echo "FAIL: prune --keep abc: exit $rc: $(cat "$W/p.err")"; fail=1
fi
"$T" distill --teacher a --student b --out c --data "$W" --lr 1e > /dev/null 2> "$W/d.err"
rc=$?
if [ $rc != 0 ] && grep -q -- "--lr: '1e' is not a number" "$W/d.err"; then
    echo "PASS: distill --lr 1e refused (exit $rc)"
else
    echo "FAIL: distill --lr 1e: exit $rc: $(cat "$W/d.err")"; fail=1
fi
exit $fail
