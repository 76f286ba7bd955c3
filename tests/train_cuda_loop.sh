#!/bin/sh
# The CUDA training loop (catanet-train train/resume --device cuda) against the CPU loop, on a tiny
# network and a tiny data folder (Set5's x2 LR images as training photos):
#  (a) `train --device cuda` logs the per-step losses of `train --device cpu` within REL_TOL (below);
#  (b) kill -9 of a device run and `resume --device cuda` log exactly the uninterrupted device run's losses;
#  (c) a device checkpoint resumes on the CPU (and a CPU checkpoint on the device): the resumed run
#      logs the uninterrupted run's remaining losses within REL_TOL;
#  (d) non-finite losses are reported and skipped as by the CPU loop (--max-bad, exit 2).
# Usage: sh tests/train_cuda_loop.sh CATANET_TRAIN [WORKDIR]. Called by tests/t_cuda_emu.sh with the
# emulated binary ($B/emu/catanet-train) and by tools/gpu-check.sh with the GPU build's. PASS/FAIL
# lines; exit 1 on a failure, 77 (reason printed) when the binary has no CUDA device.
#
# REL_TOL = 1e-3 of the CPU loss, the bound test_train_cuda.c holds one CUDA step to against the CPU
# step: the loss is the same host formula (the double sum of catanet_l1_loss_fwd_ref) of outputs that
# differ by the summation order of the device ops (test_twins: <= 1e-4 per op), about 1e-7 of the
# loss at step 1; later steps add the weights' drift, a few rounding steps of Adam's update
# (measured under the emulator: below 1e-7 of the loss over 6 steps). The clipping threshold is set
# where Adam's update depends on it (per-weight gradients near Adam's eps), so the test checks the
# device's gradient norm, not only that a step ran: control runs on the CPU with the clipping off,
# with a threshold twice as large (a norm off by 2x) and without updates (--lr 0) must each differ
# from the CPU run by more than 10 x REL_TOL, else the comparison could not tell them apart.
# 11 device steps in all: about 13 s of one core under the emulator (its register-saving
# fiber switch; ~90 s with the earlier swapcontext one).
T=$1
W=${2:-}
SHARED=${CATANET_SHARED:-../shared}
DATA=$SHARED/data/eval/Set5/LR_bicubic/X2
REL_TOL=1e-3
[ -x "$T" ] || { echo "FAIL: train_cuda_loop: $T not built"; exit 1; }
[ -d "$DATA" ] || { echo "FAIL: train_cuda_loop: $DATA missing (set CATANET_SHARED)"; exit 1; }
if [ -z "$W" ]; then
    W=$(mktemp -d) || exit 1
    trap 'rm -rf "$W"' EXIT
fi
mkdir -p "$W" || exit 1
N=3
ARGS="--data $DATA --scale 2 --dim 8 --qk-dim 8 --heads 2 --mlp-dim 16 --groups 1 --tokens 4 --group-size 64 \
 --patch-size 8 --batch 1 --patch 16 --iters $N --milestones 2 --gamma 0.5 --lr 2e-3 --clip 1e-6 --seed 11 \
 --threads 1 --val-every 0 --ckpt-every 1 --ckpt-secs 0 --quiet"
fail=0
# --device cuda without a usable device: skip with the reason
if ! $T train $ARGS --device cuda --iters 0 --ckpt "$W/probe.ckpt" > "$W/probe.log" 2>&1; then
    if grep -qi "no usable CUDA device\|no CUDA backend" "$W/probe.log"; then
        echo "SKIP: train_cuda_loop: $(tail -n 1 "$W/probe.log")"
        exit 77
    fi
    echo "FAIL: train_cuda_loop: train --device cuda --iters 0: $(tail -n 3 "$W/probe.log")"
    exit 1
fi
rm -f "$W/probe.ckpt"
# compare A B FIRST: every step >= FIRST logged in B has A's loss within REL_TOL (relative to A);
# prints the worst relative gap, or "missing" when B lacks a step of A from FIRST on
compare() {
    awk -F, -v first="$3" 'NR == FNR { if (FNR > 1) a[$1] = $2; next }
        FNR > 1 && $1 >= first { seen[$1] = 1; d = ($2 - a[$1]) / a[$1]; d = d < 0 ? -d : d; if (d > w || !n) { w = d; at = $1 }; n++ }
        END { for (k in a) if (k + 0 >= first && !(k in seen)) { print "missing step " k; exit }
              if (!n) print "missing"; else printf "%.3g at step %d\n", w, at }' "$1" "$2"
}
within() { awk -v x="$1" -v t="$REL_TOL" 'BEGIN { exit !(x + 0 <= t + 0) }'; }

# (a) CPU and device runs of the same N steps (the device run is also (b)'s uninterrupted run). The
# CPU run stops after step 1 and resumes (exact on the CPU: t_train_resume.sh), leaving a CPU
# checkpoint of step 1 for (c).
$T train $ARGS --device cpu --iters 1 --ckpt "$W/cpu.ckpt" --log "$W/cpu.csv" 2> "$W/cpu.err" &&
    cp "$W/cpu.ckpt" "$W/c1.ckpt" && $T resume "$W/cpu.ckpt" --device cpu --iters $N --quiet 2>> "$W/cpu.err" ||
    { echo "FAIL: train --device cpu: $(tail -n 3 "$W/cpu.err")"; exit 1; }
t0=$(date +%s)
$T train $ARGS --device cuda --ckpt "$W/dev.ckpt" --log "$W/dev.csv" 2> "$W/dev.err" ||
    { echo "FAIL: train --device cuda: $(tail -n 3 "$W/dev.err")"; exit 1; }
echo "train_cuda_loop: $N device steps in $(( $(date +%s) - t0 )) s ($(grep -m1 'training on' "$W/dev.err" | sed 's/.*training on //'))"
r=$(compare "$W/cpu.csv" "$W/dev.csv" 1)
steps=$(awk -F, 'FNR > 1' "$W/dev.csv" | wc -l)
if [ "$steps" = $N ] && echo "$r" | grep -qv missing && within "${r%% *}"; then
    echo "PASS: (a) train --device cuda: the $N losses equal the CPU loop's within $REL_TOL (worst $r)"
else
    echo "FAIL: (a) train --device cuda vs cpu: worst relative loss gap $r (tolerance $REL_TOL, $steps steps logged)"
    paste -d' ' "$W/cpu.csv" "$W/dev.csv" | sed 's/^/    cpu | cuda: /'
    fail=1
fi
# the controls: what (a) must be able to tell apart from the CPU loop
for ctl in "--clip 0" "--clip 2e-6" "--lr 0"; do
    $T train $ARGS --device cpu $ctl --log "$W/ctl.csv" 2> /dev/null || { echo "FAIL: control run $ctl"; fail=1; }
    r=$(compare "$W/cpu.csv" "$W/ctl.csv" 1)
    if within "$(awk -v r="${r%% *}" -v t="$REL_TOL" 'BEGIN { print r / 10 }')"; then
        echo "FAIL: (a) a CPU run with $ctl differs from the CPU loop by only $r: (a) could not detect it"
        fail=1
    fi
    rm -f "$W/ctl.csv"
done
# (b) kill -9 a device run as soon as its first checkpoint exists, resume it on the device
$T train $ARGS --device cuda --iters 1000 --ckpt "$W/k.ckpt" --log "$W/k.csv" 2> "$W/k.err" &
pid=$!
i=0
while [ $i -lt 6000 ] && ! [ -f "$W/k.ckpt" ] && kill -0 $pid 2> /dev/null; do
    sleep 0.05
    i=$((i + 1))
done
kill -9 $pid 2> /dev/null
wait $pid 2> /dev/null
killed=$(($(wc -l < "$W/k.csv") - 1))
kstep=$(cp "$W/k.ckpt" "$W/d1.ckpt" 2> /dev/null && $T resume "$W/d1.ckpt" --iters 0 --quiet 2>&1 | sed -n 's/.*resuming .* at step \([0-9]*\) .*/\1/p')
if ! [ -f "$W/k.ckpt" ]; then
    echo "FAIL: (b) no checkpoint before the kill (after $killed steps): $(tail -n 2 "$W/k.err")"
    fail=1
elif ! $T resume "$W/k.ckpt" --device cuda --iters $N --quiet 2> "$W/kr.err"; then
    echo "FAIL: (b) resume --device cuda: $(tail -n 3 "$W/kr.err")"
    fail=1
else
    bad=$(awk -F, 'NR == FNR { if (FNR > 1) a[$1] = $2; next } FNR > 1 && $1 <= '$N' && a[$1] != $2 { print $1 }' \
        "$W/dev.csv" "$W/k.csv" | head -3)
    got=$(awk -F, 'FNR > 1 && $1 <= '$N' { s[$1] = 1 } END { n = 0; for (k in s) n++; print n }' "$W/k.csv")
    if [ -z "$bad" ] && [ "$got" = $N ]; then
        echo "PASS: (b) kill -9 after $killed logged steps, resume --device cuda from step $kstep: the $N losses equal the uninterrupted device run's exactly"
    else
        echo "FAIL: (b) kill -9 after $killed steps and resume --device cuda: losses differ at steps: $bad ($got of $N steps logged)"
        fail=1
    fi
fi

# (c) the device checkpoint of (b) resumed on the CPU, the CPU checkpoint of step 1 on the device
for pair in "d1 cpu dev device ${kstep:-1}" "c1 cuda cpu CPU 1"; do
    set -- $pair
    [ -f "$W/$1.ckpt" ] || { echo "FAIL: (c) no $4 checkpoint"; fail=1; continue; }
    if ! $T resume "$W/$1.ckpt" --device $2 --iters $N --log "$W/$1.csv" --quiet 2> "$W/$1r.err"; then
        echo "FAIL: (c) the $4 checkpoint, resume --device $2: $(tail -n 3 "$W/$1r.err")"
        fail=1
        continue
    fi
    r=$(compare "$W/$3.csv" "$W/$1.csv" $(($5 + 1)))
    if echo "$r" | grep -qv missing && within "${r%% *}" && grep -q "resuming .* at step $5 " "$W/$1r.err"; then
        echo "PASS: (c) a $4 checkpoint (step $5) resumes with --device $2: steps $(($5 + 1))..$N within $REL_TOL of the uninterrupted $4 run (worst $r)"
    else
        echo "FAIL: (c) the $4 checkpoint (step $5) resumed with --device $2: worst relative gap $r to the uninterrupted $4 run"
        paste -d' ' "$W/$3.csv" "$W/$1.csv" | sed 's/^/    uninterrupted | resumed: /'
        fail=1
    fi
done

# (d) non-finite steps: --lr 1e30 overflows the weights at step 1, the next steps' losses are not
# finite; the device loop must report and skip them exactly as the CPU loop (the same stderr lines),
# stop after --max-bad in a row with exit 2, and write no checkpoint of the diverged state
for dev in cpu cuda; do
    $T train $ARGS --lr 1e30 --max-bad 2 --iters 10 --ckpt-every 0 --device $dev --ckpt "$W/nf_$dev.ckpt" \
        2> "$W/nf_$dev.err"
    echo $? > "$W/nf_$dev.rc"
    grep -E "non-finite|stopping" "$W/nf_$dev.err" > "$W/nf_$dev.lines"
done
if [ "$(cat "$W/nf_cuda.rc")" = 2 ] && [ "$(grep -c 'step skipped' "$W/nf_cuda.lines")" = 2 ] &&
    cmp -s "$W/nf_cpu.lines" "$W/nf_cuda.lines" && ! [ -f "$W/nf_cuda.ckpt" ]; then
    echo "PASS: (d) non-finite steps on the device: reported and skipped as on the CPU ($(tr '\n' ' ' < "$W/nf_cuda.lines")), exit 2, no checkpoint"
else
    echo "FAIL: (d) non-finite steps: device exit $(cat "$W/nf_cuda.rc"), CPU exit $(cat "$W/nf_cpu.rc"); device | CPU lines:"
    cat "$W/nf_cuda.lines" "$W/nf_cpu.lines" | sed 's/^/    /'
    [ -f "$W/nf_cuda.ckpt" ] && echo "    (a checkpoint of the diverged state was written)"
    fail=1
fi
exit $fail
