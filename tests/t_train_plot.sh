#!/bin/sh
# The loss plot runs gnuplot without a shell: a log path or a validation set's name full of shell and
# gnuplot syntax reaches gnuplot only as an argument of its fixed script (gnuplot -c SCRIPT LOG
# VAL.csv PNG SET...), never as code. A stub `gnuplot` first on PATH records the argument vector it
# was started with; with a real gnuplot installed, the plot is also drawn from such names.
B=${BUILDDIR:-build}
T=$(cd "$(dirname "$B/training/catanet-train")" 2>/dev/null && pwd)/catanet-train
SHARED=$(cd "${CATANET_SHARED:-../shared}" 2>/dev/null && pwd)
[ -x "$T" ] || { echo "FAIL: $T not built"; exit 1; }
[ -d "$SHARED/data/eval/Set5/HR" ] || { echo "FAIL: $SHARED/data/eval/Set5/HR missing"; exit 1; }
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
fail=0
# a validation set of one image, in a folder whose name is hostile
VAL="$W/v'\$(touch INJECTED_VAL)'"
mkdir -p "$VAL" && cp "$SHARED/data/eval/Set5/HR/baby.png" "$VAL/" || { echo "FAIL: setup"; exit 1; }
SET=$(basename "$VAL")
ARGS="--data $SHARED/data/eval/Set5/HR --dim 8 --qk-dim 8 --heads 2 --mlp-dim 16 --groups 1 --tokens 4 \
 --group-size 64 --patch-size 8 --batch 1 --patch 16 --iters 2 --lr 1e-3 --threads 1 --val-every 2 --quiet"
mkdir "$W/bin"
cat > "$W/bin/gnuplot" <<'EOF'
#!/bin/sh
# records its arguments one per line, and the script it was given
for a in "$@"; do printf '%s\n' "$a"; done > "$GP_RECORD.args"
[ "$1" = -c ] && cp "$2" "$GP_RECORD.script"
exit 0
EOF
chmod +x "$W/bin/gnuplot"

# runs a command in a shell whether it is pasted bare, in single or in double quotes
LOG="$W/x'\$(touch INJECTED_A)'\$(touch INJECTED_B).csv"
# ends a string of gnuplot code and runs a command there
GLOG="$W/g');system('touch INJECTED_GP');print('.csv"
(cd "$W" && PATH="$W/bin:$PATH" GP_RECORD="$W/rec" "$T" train $ARGS --val "$VAL" --log "$LOG" 2>"$W/err")
rc=$?
printf '%s\n' -c SCRIPT "$LOG" "$LOG.val.csv" "$LOG.png" "$SET" > "$W/expected"
# the script's path is a fresh temporary file: replaced by SCRIPT before comparing
sed '2s|.*/catanet-plot-[A-Za-z0-9]*$|SCRIPT|' "$W/rec.args" > "$W/got" 2>/dev/null
if [ $rc = 0 ] && cmp -s "$W/expected" "$W/got"; then
    echo "PASS: gnuplot was started with the argument vector -c SCRIPT LOG VAL PNG SET (paths and name verbatim)"
else
    echo "FAIL: gnuplot's arguments (exit $rc):"; diff "$W/expected" "$W/got"; cat "$W/err"; fail=1
fi
if [ -s "$W/rec.script" ] && ! grep -q "INJECTED\|baby\|/tmp" "$W/rec.script"; then
    echo "PASS: the gnuplot script is fixed text (no path or name in it)"
else
    echo "FAIL: the gnuplot script holds a path or a name, or was not given"; fail=1
fi
# a relative path starting with '<' (gnuplot reads such a name as a command to run) goes as ./<...
(cd "$W" && PATH="$W/bin:$PATH" GP_RECORD="$W/rel" "$T" train $ARGS --val-every 0 --log "<touch INJECTED_LT" 2>/dev/null)
if [ "$(sed -n 3p "$W/rel.args" 2>/dev/null)" = "./<touch INJECTED_LT" ]; then
    echo "PASS: a relative log path goes to gnuplot as ./PATH"
else
    echo "FAIL: a relative log path reached gnuplot as '$(sed -n 3p "$W/rel.args" 2>/dev/null)'"; fail=1
fi

# the real gnuplot, when installed, draws the plot from these names and runs nothing
if command -v gnuplot >/dev/null 2>&1; then
    rm -f "$W"/x*.png
    (cd "$W" && "$T" train $ARGS --val "$VAL" --log "$LOG" 2>"$W/err2" &&
        "$T" train $ARGS --val "$VAL" --log "$GLOG" 2>>"$W/err2" &&
        "$T" train $ARGS --val-every 0 --log "<touch INJECTED_LT" 2>>"$W/err2")
    rc=$?
    if [ $rc = 0 ] && [ -s "$LOG.png" ] && [ -s "$GLOG.png" ] && [ -s "$W/<touch INJECTED_LT.png" ] && ! grep -q gnuplot "$W/err2"; then
        echo "PASS: gnuplot drew the three plots"
    else
        echo "FAIL: real gnuplot (exit $rc): $(ls "$W"; cat "$W/err2")"; fail=1
    fi
else
    echo "PASS: (no gnuplot installed: the real plot is not drawn here)"
fi
ran=
for f in INJECTED_A INJECTED_B INJECTED_VAL INJECTED_GP INJECTED_LT; do
    [ -e "$W/$f" ] || [ -e "$f" ] && ran="$ran $f"
done
if [ -n "$ran" ]; then
    echo "FAIL: a name ran a command: created$ran"; fail=1
else
    echo "PASS: no command of a name was run (no INJECTED file)"
fi
exit $fail
