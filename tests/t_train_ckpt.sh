#!/bin/sh
# Checkpoints are trusted only after checking, and saved means saved:
#  - a checkpoint that cannot be written (a full disk: ulimit -f) stops the run with a non-zero exit
#    and leaves the previous checkpoint intact (and no temporary file);
#  - resume refuses a NaN planted in an Adam moment or a weight, a negative step, an adam_t beyond
#    the step and a non-finite learning rate in train_config, each with a message naming it;
#  - a stale CKPT.tmpXXXXXX of a killed write is removed when a run on CKPT starts (only that);
#  - a log path stored in a checkpoint is appended to only when it is that run's log: a crafted one
#    pointing at another file leaves that file as it was.
LOG=c.csv . "$(dirname "$0")/train_lib.sh"

# a full disk: the checkpoint (~60 KB) is over the file size limit, the log is not
(ulimit -f 40 && exec $T resume "$W/c.ckpt" --iters 8 --threads 1 --quiet) 2>"$W/full.err"
rc=$?
if [ $rc != 0 ] && cmp -s "$W/c.ckpt" "$W/c0.ckpt" && grep -q "checkpoint .* not written" "$W/full.err" &&
    ! grep -q "checkpoint written" "$W/full.err" && ! ls "$W" | grep -q "tmp"; then
    echo "PASS: a checkpoint that cannot be written stops the run (exit $rc), the previous one kept intact"
else
    echo "FAIL: full disk: exit $rc, previous checkpoint $(cmp -s "$W/c.ckpt" "$W/c0.ckpt" && echo intact || echo changed)," \
        "files: $(ls "$W" | tr '\n' ' '): $(cat "$W/full.err")"
    fail=1
fi

# refused on resume, with the cause named; the checkpoint is left as it was
refused() { # refused NAME EXPECTED-MESSAGE EDIT-ARGS...
    name=$1 msg=$2
    shift 2
    $EDIT "$W/c0.ckpt" "$W/bad.ckpt" "$@" || { echo "FAIL: $name: edit"; fail=1; return; }
    cp "$W/bad.ckpt" "$W/bad0.ckpt"
    $T resume "$W/bad.ckpt" --iters 6 --threads 1 --quiet 2>"$W/bad.err"
    rc=$?
    if [ $rc != 0 ] && grep -q "$msg" "$W/bad.err" && cmp -s "$W/bad.ckpt" "$W/bad0.ckpt"; then
        echo "PASS: $name: refused (exit $rc): $(tail -n 1 "$W/bad.err")"
    else
        echo "FAIL: $name: exit $rc, expected '$msg': $(cat "$W/bad.err")"
        fail=1
    fi
}
refused "a NaN in an Adam moment" "Adam moment of first_conv.weight holds NaN or Inf" nan adam.v.first_conv.weight
refused "a NaN in a weight" "first_conv.bias' holds a non-finite value" nan first_conv.bias
refused "a negative step" "'step' = '-5' is out of range" meta step -5
refused "a step that is not a number" "'step' = '12abc' is not an integer" meta step 12abc
refused "adam_t beyond the step" "'adam_t' = '9' is out of range \[0, 4\]" meta adam_t 9
refused "a non-finite elapsed time" "'elapsed_s' = 'nan'" meta elapsed_s nan
refused "a negative learning rate in train_config" "'lr' = -1 is out of range" config lr -1
refused "a batch of 0 in train_config" "'batch' = 0 is out of range" config batch 0
refused "a path that is not a string" "'log' is not a path" config log 5

# export checks the checkpoint as resume does
$EDIT "$W/c0.ckpt" "$W/neg.ckpt" meta step -5
$T export "$W/neg.ckpt" "$W/neg.safetensors" 2>"$W/neg.err"
rc=$?
if [ $rc != 0 ] && [ ! -e "$W/neg.safetensors" ] && grep -q "'step' = '-5'" "$W/neg.err"; then
    echo "PASS: export refuses a negative step (exit $rc)"
else
    echo "FAIL: export of a negative step: exit $rc: $(cat "$W/neg.err")"; fail=1
fi

# stale temporary files of a killed write are removed; other files are not
head -c 1000 "$W/c0.ckpt" > "$W/c.ckpt.tmpAb12Cd"
: > "$W/c.ckpt.tmpkeep"
: > "$W/other.ckpt.tmpXy34Zw"
cp "$W/c0.ckpt" "$W/c.ckpt"
$T resume "$W/c.ckpt" --iters 5 --threads 1 --quiet 2>"$W/stale.err"
rc=$?
if [ $rc = 0 ] && [ ! -e "$W/c.ckpt.tmpAb12Cd" ] && [ -e "$W/c.ckpt.tmpkeep" ] && [ -e "$W/other.ckpt.tmpXy34Zw" ] &&
    grep -q "removed .*c.ckpt.tmpAb12Cd" "$W/stale.err"; then
    echo "PASS: the stale c.ckpt.tmpAb12Cd was removed at the start, other files kept"
else
    echo "FAIL: stale temporary file: exit $rc, files $(ls "$W" | tr '\n' ' '): $(cat "$W/stale.err")"; fail=1
fi
rm -f "$W/c.ckpt.tmpkeep" "$W/other.ckpt.tmpXy34Zw"

# a crafted log path: the file it names is not this run's log, so it is neither appended to nor truncated
printf 'precious\n' > "$W/victim"
cp "$W/victim" "$W/victim0"
$EDIT "$W/c0.ckpt" "$W/crafted.ckpt" config log "\"$W/victim\""
$T resume "$W/crafted.ckpt" --iters 5 --threads 1 --quiet 2>"$W/crafted.err"
rc=$?
if [ $rc = 0 ] && cmp -s "$W/victim" "$W/victim0" && [ ! -e "$W/victim.val.csv" ] &&
    grep -q "log path .*victim is not this run's log" "$W/crafted.err"; then
    echo "PASS: a checkpoint's log path naming another file leaves it untouched (the run logs nothing, says so)"
else
    echo "FAIL: crafted log path: exit $rc, victim now '$(cat "$W/victim")': $(cat "$W/crafted.err")"; fail=1
fi
# the run's own log is appended to on resume (as the stored path names it)
n0=$(wc -l < "$W/c.csv")
cp "$W/c0.ckpt" "$W/c.ckpt"
$T resume "$W/c.ckpt" --iters 6 --threads 1 --quiet 2>/dev/null
if [ "$(wc -l < "$W/c.csv")" -gt "$n0" ] && [ "$(grep -c '^step' "$W/c.csv")" = 1 ]; then
    echo "PASS: resume appends to the checkpoint's own log"
else
    echo "FAIL: resume did not append to its own log: $(cat "$W/c.csv")"; fail=1
fi
exit $fail
