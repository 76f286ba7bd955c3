#!/bin/sh
# gpu-check.sh OUTDIR: everything that needs a GPU, in one go, on a machine with an NVIDIA GPU and
# the CUDA toolkit (`make gpu-check OUT=dir`). Builds for the GPU it finds (its SM only: fast), runs
# the CUDA twin tests (every op against its CPU twin, the whole model against the reference cases,
# fp16 against fp32 on Set5, device frames), the benchmarks (device frames and host frames), one
# CUDA training step against the CPU's (test_train_cuda), a one-minute training benchmark
# (catanet-train bench --device cuda), the training loop on the GPU against the CPU's
# (tests/train_cuda_loop.sh) and its speed (iterations/s of `catanet-train train --device cuda`,
# CATANet-L, batch 16 of 64x64 and batch 4 of 32x32), the twin tests once more under
# compute-sanitizer memcheck (small cases), one frame's DRAM bytes by kernel under Nsight Compute
# (tools/ncu-summary.py) and the FFmpeg filter on CUDA frames when staged, with make regress's
# figures on the staged clips (tools/regress.py on cuda, whole frames). Optional steps:
# GPU_CHECK_TRAIN_SECS=S spends up to S seconds continuing the CATANet-L x2 teacher on the GPU
# (tools/gpu-train.sh: its new checkpoint and logs in logs.tar.gz, gputrain/), GPU_CHECK_CHECK=1
# runs the CPU test suite too. Every step has a timeout and the whole run a deadline
# (GPU_CHECK_BUDGET seconds, default 900; the steps without training take about 3 minutes on an
# H200, the build included).
# Environment: GPU_CHECK_BUDGET, GPU_CHECK_JOBS (16), GPU_CHECK_BUILDDIR (build/gpu), GPU_CHECK_CHECK,
# GPU_CHECK_TRAIN_SECS, GPU_CHECK_SKIP_FFMPEG.
# OUTDIR gets at most 8 files: summary.txt (one verdict line per step), twins.log, opbench.log,
# bench.jsonl, memcheck.log, build.log, check.log and logs.tar.gz (every log); the work happens in
# build/gpu*.
#
# gpu-check.sh --stage (`make gpu-stage`): a self-contained bundle for a GPU machine that has no
# network access or no copy of the shared data folder, in build/gpu-carry (ignored by git, about
# 15 MB): the reference cases (eval: inputs and outputs only) and Set5's LR images from the shared
# folder, and the jansson/libpng/libjpeg headers and libraries of this machine (used there only
# when ./configure fails without them; GPU_CHECK_STAGE_BLAS=1 adds OpenBLAS, +5 MB). Copy the
# checkout with build/gpu-carry to the GPU machine and run there:
#     sh tools/gpu-check.sh "$OUT"
# Exit status: 0 when build and twin tests passed, 1 otherwise.
cd "$(dirname "$0")/.." || exit 1
CARRY=build/gpu-carry

if [ "$1" = "--stage" ]; then
    SH=${CATANET_SHARED:-../shared}
    [ -f "$SH/reference/catanet/cases.json" ] || { echo "gpu-check --stage: no shared folder at $SH"; exit 1; }
    rm -rf "$CARRY/shared" "$CARRY/deps" "$CARRY/deps.tar.xz" # only ours: others may stage beside it
    mkdir -p "$CARRY/shared/reference/catanet" "$CARRY/shared/data/eval/Set5/LR_bicubic/X2" "$CARRY/deps/lib" \
        "$CARRY/deps/include" || exit 1
    cp "$SH"/reference/catanet/cases.json "$SH"/reference/catanet/weights_x*_*.safetensors \
        "$SH"/reference/catanet/train_x2_*.safetensors "$CARRY/shared/reference/catanet/" || exit 1
    # the eval cases without their act.* activations (the twin test reads input and output only),
    # which keeps the bundle small
    for f in "$SH"/reference/catanet/eval_*.safetensors; do
        python3 - "$f" "$CARRY/shared/reference/catanet/$(basename "$f")" <<'PY' || exit 1
import json, struct, sys
src, dst = sys.argv[1], sys.argv[2]
with open(src, 'rb') as fh:
    n = struct.unpack('<Q', fh.read(8))[0]
    head = json.loads(fh.read(n))
    base = 8 + n
    out, blobs, off = {}, [], 0
    for k, v in head.items():
        if k != '__metadata__' and k not in ('input', 'output'):
            continue
        if k == '__metadata__':
            out[k] = v
            continue
        b, e = v['data_offsets']
        fh.seek(base + b)
        blobs.append(fh.read(e - b))
        out[k] = dict(v, data_offsets=[off, off + e - b])
        off += e - b
hj = json.dumps(out).encode()
hj += b' ' * (-len(hj) % 8)
with open(dst, 'wb') as fh:
    fh.write(struct.pack('<Q', len(hj)) + hj + b''.join(blobs))
PY
    done
    cp "$SH"/data/eval/Set5/LR_bicubic/X2/*.png "$CARRY/shared/data/eval/Set5/LR_bicubic/X2/" || exit 1
    L=/usr/lib/x86_64-linux-gnu
    libs="$L/libjansson.so.4 $L/libpng16.so.16 $L/libjpeg.so.62"
    # OpenBLAS is 36 MB (5 MB compressed) and the GPU image has one: only on request
    if [ -n "$GPU_CHECK_STAGE_BLAS" ]; then
        blas=$L/openblas-openmp/libopenblas.so.0
        [ -f "$blas" ] || blas=$L/libopenblas.so.0
        libs="$libs $blas $L/libgfortran.so.5 $L/libquadmath.so.0"
    fi
    for f in $libs; do
        cp -L "$f" "$CARRY/deps/lib/" || echo "gpu-check --stage: warning: $f not copied"
    done
    for f in /usr/include/x86_64-linux-gnu/openblas-openmp/*.h /usr/include/jansson*.h /usr/include/libpng16/*.h \
        /usr/include/jpeglib.h /usr/include/jerror.h /usr/include/jmorecfg.h /usr/include/x86_64-linux-gnu/jconfig.h; do
        cp -L "$f" "$CARRY/deps/include/" || echo "gpu-check --stage: warning: $f not copied"
    done
    (cd "$CARRY" && tar cJf deps.tar.xz deps && rm -rf deps) || exit 1
    echo "gpu-check --stage: $(du -sh "$CARRY/shared" "$CARRY/deps.tar.xz" | cut -f1 | tr "\n" " ")in $CARRY; on the GPU machine: sh tools/gpu-check.sh \"\$OUT\" (carry $CARRY/shared and $CARRY/deps.tar.xz)"
    exit 0
fi

OUT=${1:-gpu-check-out}
mkdir -p "$OUT" || exit 1
OUT=$(cd "$OUT" && pwd)
B=${GPU_CHECK_BUILDDIR:-build/gpu}
LOG=build/gpu-logs
BUDGET=${GPU_CHECK_BUDGET:-900}
JOBS=${GPU_CHECK_JOBS:-16}
START=$(date +%s)
rm -rf "$LOG"
mkdir -p "$LOG" || exit 1
LOG=$(cd "$LOG" && pwd)
SUMMARY=$LOG/summary.txt
: > "$SUMMARY"
: > "$LOG/bench.jsonl"
status=0

say() { echo "$*" | tee -a "$SUMMARY"; }
elapsed() { echo $(( $(date +%s) - START )); }
# seconds left for a step: its own limit, capped by what is left of the budget
left() { l=$(( BUDGET - $(elapsed) )); [ "$l" -lt "$1" ] && echo "$l" || echo "$1"; }
# step NAME LIMIT CMD...: runs CMD with a timeout, logs to LOG/NAME.log, sets rc and dt
step() {
    name=$1; lim=$(left "$2"); shift 2
    dt=0
    if [ "$lim" -lt 10 ]; then
        rc=124
        echo "(skipped: out of time budget)" > "$LOG/$name.log"
        say "SKIP $name: out of time budget ($(elapsed) s used of $BUDGET)"
        return
    fi
    t0=$(date +%s)
    timeout -k 5 "$lim" "$@" > "$LOG/$name.log" 2>&1
    rc=$?
    dt=$(( $(date +%s) - t0 ))
    if [ $rc = 124 ] || [ $rc = 137 ]; then echo "(timed out after $lim s)" >> "$LOG/$name.log"; fi
}
# the files that come back (at most 8)
finish() {
    say "gpu-check: $( [ $status = 0 ] && echo PASS || echo FAIL ) in $(elapsed) s"
    for f in summary.txt twins.log bench.jsonl memcheck.log build.log check.log opbench.log; do
        [ -f "$LOG/$f" ] && cp "$LOG/$f" "$OUT/"
    done
    (cd "$LOG/.." && tar czf "$OUT/logs.tar.gz" "$(basename "$LOG")") 2>/dev/null
    exit $status
}

# the shared folder: as given, beside the checkout, or staged in build/gpu-carry
SH=
for d in "$CATANET_SHARED" ../shared "$CARRY/shared"; do
    if [ -n "$d" ] && [ -f "$d/reference/catanet/cases.json" ]; then SH=$(cd "$d" && pwd); break; fi
done
[ -n "$SH" ] && export CATANET_SHARED="$SH"

say "gpu-check $(date -u +%Y-%m-%dT%H:%M:%SZ) commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
{
    nvidia-smi --query-gpu=name,compute_cap,driver_version,memory.total --format=csv 2>&1
    nvidia-smi 2>&1 | head -15
    echo; command -v nvcc || ls /usr/local/cuda/bin/nvcc; /usr/local/cuda/bin/nvcc --version 2>&1 | tail -2
    echo; nproc; free -g
} > "$LOG/env.log" 2>&1
gpu=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)
arch=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1 | tr -d ' .')
case "$arch" in [0-9][0-9]|[0-9][0-9][0-9]) ;; *) arch=90 ;; esac
# CUDA 13 compiles nothing below sm_75
[ "$arch" -lt 75 ] 2>/dev/null && arch=75
say "INFO env: GPU '${gpu:-unknown}', building for sm_$arch, $(nproc) cores, shared data: ${SH:-MISSING (run --stage and carry build/gpu-carry)}"

# ---- build ----
step configure 60 ./configure --builddir="$B" --enable-cuda --cuda-arch="$arch"
if [ $rc != 0 ] && [ -f "$CARRY/deps.tar.xz" ]; then
    # this machine lacks OpenBLAS/jansson/libpng: use the staged ones
    say "INFO configure: $(grep -m1 'error' "$LOG/configure.log"); retrying with the staged libraries"
    D=/tmp/catanet-deps
    rm -rf "$D" && mkdir -p "$D" && tar xJf "$CARRY/deps.tar.xz" -C "$D" ||
        say "FAIL deps: could not unpack $CARRY/deps.tar.xz (is xz installed?)"
    (cd "$D/deps/lib" && for l in libopenblas.so.0 libjansson.so.4 libpng16.so.16 libjpeg.so.62; do
        [ -f $l ] && ln -sf $l "${l%.so.*}.so"; done; [ -f libpng16.so.16 ] && ln -sf libpng16.so.16 libpng.so)
    export CPATH="$D/deps/include${CPATH:+:$CPATH}" LIBRARY_PATH="$D/deps/lib${LIBRARY_PATH:+:$LIBRARY_PATH}"
    export LD_LIBRARY_PATH="$D/deps/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    mv "$LOG/configure.log" "$LOG/configure1.log"
    step configure 60 ./configure --builddir="$B" --enable-cuda --cuda-arch="$arch"
fi
if [ $rc != 0 ]; then
    say "FAIL configure: rc $rc: $(grep -i -m2 'error\|no' "$LOG/configure.log" | tr '\n' ' ')"
    cat "$B/config.log" >> "$LOG/configure.log" 2>/dev/null
    status=1
    finish
fi
step build 240 make BUILDDIR="$B" -j"$JOBS"
if [ $rc != 0 ]; then
    # the CUDA library and the GPU tools may still build when something unrelated fails
    say "FAIL build: rc $rc in $dt s (build.log: $(grep -m1 -i 'error' "$LOG/build.log"))"
    step build2 120 make BUILDDIR="$B" -j"$JOBS" -k "$B/libcatanet.a" \
        "$B/libcatanet-cuda.so.$(sed -n 's/^SOMAJOR *= *//p' "$B/config.mk")" "$B/tests/test_twins" "$B/tools/catanet-mkmodel" \
        "$B/tools/catanet-gpubench" "$B/tools/catanet-bench"
    status=1
else
    say "PASS build: $dt s"
fi
if [ ! -x "$B/tests/test_twins" ]; then
    say "FAIL twins: test_twins did not build"
    status=1
    finish
fi

# ---- the twin tests ----
step twins 180 "$B/tests/test_twins"
pass=$(grep -c '^PASS' "$LOG/twins.log"); fail=$(grep -c '^FAIL' "$LOG/twins.log")
if [ $rc = 0 ]; then
    say "PASS twins: $pass checks passed in $dt s"
else
    say "FAIL twins: rc $rc, $pass passed, $fail failed in $dt s"
    grep '^FAIL' "$LOG/twins.log" | head -20 | sed 's/^/    /' | tee -a "$SUMMARY"
    status=1
fi
grep -E '^(PASS|FAIL): (model|Set5|own|caller|twin)' "$LOG/twins.log" | sed 's/^/    /' >> "$SUMMARY"

# ---- each op alone (where the time goes) ----
step opbench 60 "$B/tests/test_twins" --bench
[ $rc = 0 ] || say "FAIL opbench: rc $rc"
grep -E '^  ' "$LOG/opbench.log" | sed 's/^  /OPBENCH /' >> "$SUMMARY"

# ---- benchmarks ----
M=build/gpu-models
mkdir -p "$M"
if [ -x "$B/tools/catanet-mkmodel" ]; then
    "$B/tools/catanet-mkmodel" -o "$M/l8_x2.safetensors" -s 2 -g 8 > "$LOG/mkmodel.log" 2>&1
    "$B/tools/catanet-mkmodel" -o "$M/l8_x4.safetensors" -s 4 -g 8 >> "$LOG/mkmodel.log" 2>&1
    "$B/tools/catanet-mkmodel" -o "$M/g3_x2.safetensors" -s 2 -g 0,3,6 >> "$LOG/mkmodel.log" 2>&1
    "$B/tools/catanet-mkmodel" -o "$M/g3_x4.safetensors" -s 4 -g 0,3,6 >> "$LOG/mkmodel.log" 2>&1
fi
bench() { # bench LABEL MODEL PREC SIZES...   (KERNELS=primary|fallback in the environment: not AUTO)
    label=$1 model=$2 prec=$3; shift 3
    args=
    for s in "$@"; do args="$args -s $s"; done
    step "bench_$label" 60 "$B/tools/catanet-gpubench" -m "$model" -p "$prec" -f nv12 -n 10 -w 2 -k "${KERNELS:-auto}" $args
    grep '^{' "$LOG/bench_$label.log" >> "$LOG/bench.jsonl"
    # the lines printed before a timeout count too
    grep '^{' "$LOG/bench_$label.log" | sed -n 's/.*"gpu":"\([^"]*\)".*"precision":"\([a-z0-9]*\)".*"mode":"\([a-z]*\)","in":"\([0-9x]*\)","out":"\([0-9x]*\)".*"ms_per_frame":\([0-9.]*\).*"fps":\([0-9.]*\).*"planned_mib":\([0-9.]*\).*"device_used_mib":\([0-9.-]*\).*/\2 \3 \4->\5 \6 ms \7 fps, planned \8 MiB, device used \9 MiB (\1)/p' |
        while read -r line; do say "BENCH $label: $line"; done
    [ $rc = 0 ] || say "FAIL bench_$label: rc $rc ($(tail -1 "$LOG/bench_$label.log"))"
}
if [ -x "$B/tools/catanet-gpubench" ] && [ -f "$M/g3_x2.safetensors" ]; then
    bench g3_x2_fp16 "$M/g3_x2.safetensors" fp16 960x540 1920x1080
    bench l8_x2_fp16 "$M/l8_x2.safetensors" fp16 960x540 1920x1080
    # the kernel picks AUTO made at 960x540, each with both kernels' times on this GPU (backend_cuda.c:
    # 19 for this model: 7 pairs, the attention's exp2 among them, 4 distinct IASA configurations and
    # 2 picks for each of the 4 distinct LRSA patches)
    grep -E 'kernel pick 960x540|residual stream 960x540' "$LOG/bench_l8_x2_fp16.log" | head -24 |
        sed 's/^catanet: /PICK /' | tee -a "$SUMMARY"
    # where the time of that frame goes, step by step (catanet_engine_profile: one eager forward)
    grep '^PROFILE 960x540' "$LOG/bench_l8_x2_fp16.log" | tee -a "$SUMMARY"
    # the same frame with the primary kernels only, and with the kernels they replaced (~ the old engine)
    KERNELS=primary bench l8_x2_fp16_primary "$M/l8_x2.safetensors" fp16 960x540
    KERNELS=fallback bench l8_x2_fp16_fallback "$M/l8_x2.safetensors" fp16 960x540
    # the shipped models: the product claim's speed side on the GPU (XS against the hand-designed S)
    for m in xs s; do
        [ -f "weights/catanet_${m}_x2.safetensors" ] && bench "${m}_x2_fp16" "weights/catanet_${m}_x2.safetensors" fp16 960x540
    done
    bench g3_x4_fp16 "$M/g3_x4.safetensors" fp16 480x270
    bench l8_x4_fp16 "$M/l8_x4.safetensors" fp16 480x270
    bench g3_x2_fp32 "$M/g3_x2.safetensors" fp32 960x540
    bench l8_x2_fp32 "$M/l8_x2.safetensors" fp32 960x540 1920x1080
    bench l8_x4_fp32 "$M/l8_x4.safetensors" fp32 480x270
else
    say "SKIP bench: catanet-gpubench or the models are missing"
fi
if [ -x "$B/tools/catanet-bench" ] && [ -f "$M/l8_x2.safetensors" ]; then
    # host float frames through catanet_engine_process (includes the host<->device copies)
    step hostbench 60 "$B/tools/catanet-bench" -m "$M/l8_x2.safetensors" -d cuda -p fp16 -s 960x540 -n 5 -w 1
    grep '^{' "$LOG/hostbench.log" >> "$LOG/bench.jsonl"
    say "$([ $rc = 0 ] && echo INFO || echo FAIL) hostbench (catanet-bench, host float frames): $(grep '^{' "$LOG/hostbench.log" | sed -n 's/.*"ms_median":\([0-9.]*\).*"fps":\([0-9.]*\).*/\1 ms, \2 fps/p' | head -1) rc $rc"
fi

# ---- memcheck on the small cases ----
CS=$(command -v compute-sanitizer || true)
[ -z "$CS" ] && [ -x /usr/local/cuda/bin/compute-sanitizer ] && CS=/usr/local/cuda/bin/compute-sanitizer
if [ -n "$CS" ]; then
    step memcheck 150 "$CS" --tool memcheck --error-exitcode 3 "$B/tests/test_twins" --quick
    errs=$(grep -m1 'ERROR SUMMARY' "$LOG/memcheck.log")
    if [ $rc = 0 ]; then
        say "PASS memcheck: test_twins --quick clean in $dt s ($errs)"
    else
        say "FAIL memcheck: rc $rc in $dt s (${errs:-see memcheck.log})"
        status=1
    fi
else
    say "SKIP memcheck: compute-sanitizer not installed"
fi

# ---- training on the GPU (training/model_train_cuda.c): one step against the CPU step and the
# reference cases, then a one-minute training benchmark (CATANet-L, batch 16 of 64x64 LR patches) ----
if [ -x "$B/tests/test_train_cuda" ]; then
    step traincuda 120 "$B/tests/test_train_cuda"
    say "$([ $rc = 0 ] && echo PASS || echo FAIL) traincuda: test_train_cuda rc $rc in $dt s"
    grep -E '^(PASS|FAIL):' "$LOG/traincuda.log" | sed 's/^/    /' >> "$SUMMARY"
    [ $rc = 0 ] || status=1
else
    say "FAIL traincuda: test_train_cuda did not build"
    status=1
fi
if [ -x "$B/training/catanet-train" ]; then
    step trainbench 75 "$B/training/catanet-train" bench --device cuda --batch 16 --patch 64 --iters 20
    say "$([ $rc = 0 ] && echo INFO || echo FAIL) trainbench: $(grep -m1 '^bench:' "$LOG/trainbench.log" || tail -n 1 "$LOG/trainbench.log") (rc $rc, $dt s)"
    # the training loop (train/resume --device cuda) against the CPU loop: tiny network, Set5 LR images
    step trainloop 120 sh tests/train_cuda_loop.sh "$B/training/catanet-train" "$LOG/trainloop"
    say "$([ $rc = 0 ] && echo PASS || echo FAIL) trainloop: tests/train_cuda_loop.sh rc $rc in $dt s"
    grep -E '^(PASS|FAIL|SKIP)' "$LOG/trainloop.log" | sed 's/^/    /' >> "$SUMMARY"
    [ $rc = 0 ] || status=1
    # the loop's speed: iterations/s of catanet-train train --device cuda (data pipeline, upload,
    # step, read-back, logging), CATANet-L x2 from scratch on photos staged by gpu-train.sh --stage
    # (else Set5's HR images)
    tdata=$CARRY/shared/data/train-gpu/T91
    [ -d "$tdata" ] || tdata=$SH/data/train/T91
    [ -d "$tdata" ] || tdata=$SH/data/eval/Set5/HR
    for bp in "16 64 12" "4 32 40"; do
        set -- $bp
        rm -rf "$LOG/trainloop$1"
        mkdir -p "$LOG/trainloop$1"
        step trainloop$1 60 "$B/training/catanet-train" train --device cuda --data "$tdata" --arch L --scale 2 \
            --batch $1 --patch $2 --iters $3 --val-every 0 --ckpt-secs 0 --time-limit 45 --quiet \
            --log "$LOG/trainloop$1/loop.csv" --cache "$LOG/trainloop$1/cache"
        say "$([ $rc = 0 ] && echo INFO || echo FAIL) trainloop$1: $(grep -m1 'steps in .* it/s' "$LOG/trainloop$1.log" || tail -n 1 "$LOG/trainloop$1.log") (rc $rc, $dt s; includes the first step)"
    done
fi

# ---- the DRAM bytes of one frame, kernel by kernel, measured (Nsight Compute): the 8-group x2
# model at 960x540, fp16, primary kernels, the frame between cudaProfilerStart and Stop
# (catanet-gpubench -P 1); against docs/roofline.md's count (~9.0 GB) and the census's 168
# launches. ncu serialises the kernels and replays each: its times are each kernel alone. Before the
# FFmpeg step, which builds FFmpeg and takes what is left of the budget: ~20-40 s expected here ----
NCU=$(command -v ncu || true)
[ -z "$NCU" ] && [ -x /usr/local/cuda/bin/ncu ] && NCU=/usr/local/cuda/bin/ncu
# ncu_frame NAME LIMIT LABEL METRICS: one profiled frame, summed by tools/ncu-summary.py into the summary
ncu_frame() {
    name=$1 lim=$2 label=$3 metrics=$4
    step "$name" "$lim" "$NCU" --profile-from-start off --clock-control none --csv --print-units base \
        --metrics "$metrics" \
        "$B/tools/catanet-gpubench" -m "$M/l8_x2.safetensors" -p fp16 -f nv12 -k primary -P 1 -s 960x540
    nrc=$rc
    python3 tools/ncu-summary.py "$LOG/$name.log" "$label" > "$LOG/$name-summary.txt"
    head -1 "$LOG/$name-summary.txt" | sed 's/^/INFO /' | tee -a "$SUMMARY"
    tail -n +2 "$LOG/$name-summary.txt" >> "$SUMMARY"
    [ $nrc = 0 ] || say "INFO $name: rc $nrc in $dt s ($(grep -m1 '==ERROR==' "$LOG/$name.log"))"
}
if [ -n "$NCU" ] && [ -x "$B/tools/catanet-gpubench" ] && [ -f "$M/l8_x2.safetensors" ] && command -v python3 > /dev/null; then
    ncu_frame ncu 60 "960x540 fp16 primary" dram__bytes_read.sum,dram__bytes_write.sum,gpu__time_duration.sum
    # a second run for what bounds each kernel: how busy the DRAM, the SMs, the XU pipe (the
    # softmax's exp2: the count says the attention may be bound there, ~2.4 ms a frame at 16 a clock
    # per SM), the issue slots and the tensor pipe were. Apart, so that a metric this ncu lacks
    # costs only this run
    ncu_frame ncu2 45 "960x540 fp16 primary, busy" gpu__time_duration.sum,dram__throughput.avg.pct_of_peak_sustained_elapsed,sm__throughput.avg.pct_of_peak_sustained_elapsed,sm__inst_executed_pipe_xu.avg.pct_of_peak_sustained_active,sm__issue_active.avg.pct_of_peak_sustained_active,sm__pipe_tensor_op_hmma_cycles_active.avg.pct_of_peak_sustained_active
else
    say "SKIP ncu: Nsight Compute (ncu), python3, catanet-gpubench or the 8-group model missing"
fi

# ---- the FFmpeg filter on the GPU (CUDA frames, NVDEC -> catanet_xs -> NVENC), when
# `tools/ffmpeg-gpu-check.sh --stage` staged its inputs (make gpu-stage does) and they were carried ----
if [ -d build/gpu-carry/ffmpeg ] && [ -z "$GPU_CHECK_SKIP_FFMPEG" ]; then
    export FFMPEG_GPU_BUDGET=$(left 300) GPU_CHECK_BUILDDIR="$B"
    step ffmpeg 430 sh tools/ffmpeg-gpu-check.sh "$LOG/ffmpeg"
    sed 's/^/FFMPEG /' "$LOG/ffmpeg/ffmpeg-gpu.txt" 2>/dev/null >> "$SUMMARY"
    cat "$LOG/ffmpeg/ffmpeg-gpu.jsonl" >> "$LOG/bench.jsonl" 2>/dev/null
    say "$([ $rc = 0 ] && echo PASS || echo FAIL) ffmpeg: tools/ffmpeg-gpu-check.sh rc $rc in $dt s"
    [ $rc = 0 ] || status=1
else
    say "SKIP ffmpeg: build/gpu-carry/ffmpeg not carried (make gpu-stage, then carry it)"
fi

# ---- when asked (GPU_CHECK_TRAIN_SECS), GPU time on the CATANet-L x2 teacher (tools/gpu-train.sh:
# resumes a copy of experiments/teacher-x2/catanet_l_x2.ckpt.safetensors with --time-limit; the
# tree is not written), within what is left of the budget. 60 s of the budget stay for the start
# (data, device), the final checkpoint and the packing ----
tsecs=$(( BUDGET - $(elapsed) - 60 ))
[ -n "$GPU_CHECK_TRAIN_SECS" ] && [ "$GPU_CHECK_TRAIN_SECS" -lt "$tsecs" ] && tsecs=$GPU_CHECK_TRAIN_SECS
if [ -z "$GPU_CHECK_TRAIN_SECS" ] || [ -n "$GPU_CHECK_SKIP_TRAIN" ]; then
    say "SKIP gputrain: GPU_CHECK_TRAIN_SECS is not set (set it to continue the teacher on this GPU)"
elif [ "$tsecs" -lt 60 ]; then
    say "SKIP gputrain: $tsecs s of budget left (needs 60)"
elif [ -x "$B/training/catanet-train" ]; then
    export GPU_TRAIN_BIN="$B/training/catanet-train"
    step gputrain $((tsecs + 50)) sh tools/gpu-train.sh "$LOG/gputrain" "$tsecs"
    sed 's/^/    /' "$LOG/gputrain/summary.txt" >> "$SUMMARY" 2>/dev/null
    say "$([ $rc = 0 ] && echo INFO || echo FAIL) gputrain: tools/gpu-train.sh $tsecs s, rc $rc in $dt s (checkpoint and logs: logs.tar.gz, gputrain/)"
fi

# ---- the CPU suite, only when asked (GPU_CHECK_CHECK=1): it passes without a GPU anyway, and
# builds FFmpeg for its filter tests, which takes minutes ----
if [ -z "$GPU_CHECK_CHECK" ] || [ -n "$GPU_CHECK_SKIP_CHECK" ]; then
    say "SKIP make check: the CPU suite (set GPU_CHECK_CHECK=1 to run it here)"
    finish
fi
step check 120 make BUILDDIR="$B" -s check
sumline=$(grep -E '^[0-9]+ passed' "$LOG/check.log" | tail -1)
if [ $rc = 0 ]; then
    say "PASS make check: $sumline in $dt s"
elif [ $rc = 124 ] || [ $rc = 137 ]; then
    say "INFO make check: not finished within its time slot ($dt s)"
else
    say "INFO make check: rc $rc: $sumline ($(grep '^failed:' "$LOG/check.log")) (the CPU suite; may need data not staged)"
fi

finish
