#!/bin/sh
# The CUDA code on the CPU: builds tests/test_twins.c's op table, tests/test_train_cuda.c and
# catanet-train against kernels/cuda/*.cu run by the host emulator (tests/cuda_emu; Makefile target
# emu-build, in $B/emu) and runs: every CUDA twin against its CPU twin, a `catanet-train bench
# --device cuda` smoke run on a tiny network, the CUDA training loop (train/resume --device cuda)
# against the CPU loop on a tiny network (tests/train_cuda_loop.sh: losses, kill -9 and resume,
# checkpoints across devices, non-finite steps; 11 emulated device steps, about 13 s of one core),
# catanet-gpubench on a one-group model (gpu-check's bench step: kernel picks, step profile), the
# launch census of a 960x540 frame (tests/cuda_emu/census.c: no per-frame weight work), and one
# CUDA training step against the CPU step on the reference cases (test_train_cuda); PASS/FAIL
# lines. What the emulator can and cannot catch: the comment opening tests/cuda_emu/emu.cpp. No GPU
# or CUDA toolkit needed; skipped (77) when the C++ compiler or the ucontext fibers it needs are
# missing.
# Usage: BUILDDIR=build sh tests/t_cuda_emu.sh [--run-only]   (--with-train is accepted: it is always on)
#   --run-only: make check-emu built it
cd "$(dirname "$0")/.." || exit 1
B=${BUILDDIR:-build}
CXX=${EMU_CXX:-g++}
case " $* " in *" --run-only "*) run_only=1 ;; *) run_only=0 ;; esac
if [ $run_only = 0 ]; then
    if ! command -v "$CXX" > /dev/null 2>&1; then
        echo "SKIP: t_cuda_emu: no C++ compiler ($CXX; tools/install-deps.sh installs build-essential)"
        exit 77
    fi
    probe=$(mktemp -d) || exit 1
    printf '#include <ucontext.h>\n#include <functional>\nint main(void) { ucontext_t c; return getcontext(&c); }\n' > "$probe/p.cpp"
    if ! "$CXX" -std=c++17 "$probe/p.cpp" -o "$probe/p" > "$probe/log" 2>&1 || ! "$probe/p"; then
        echo "SKIP: t_cuda_emu: $CXX cannot build a C++17 program with ucontext fibers here:"
        sed 's/^/    /' "$probe/log" | head -n 5
        rm -rf "$probe"
        exit 77
    fi
    rm -rf "$probe"
    [ -f "$B/config.mk" ] || { echo "FAIL: t_cuda_emu: $B is not configured (./configure)"; exit 1; }
    # a make of its own (-j2): the suite's make does not hand its job slots down to the tests
    if ! env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make --no-print-directory -j2 BUILDDIR="$B" emu-build > "$B/emu-build.log" 2>&1; then
        echo "FAIL: t_cuda_emu: building the emulated twins failed ($B/emu-build.log):"
        tail -n 20 "$B/emu-build.log"
        exit 1
    fi
fi
fail=0
run() { # name, command...
    start=$(date +%s)
    "$@"
    rc=$?
    echo "t_cuda_emu: $(basename "$1") (emulated) ran in $(( $(date +%s) - start )) s, exit $rc"
    [ $rc = 77 ] && echo "FAIL: $(basename "$1") skipped (exit 77) though its emulated device is always there"
    [ $rc = 0 ] || fail=1
}
[ -x "$B/emu/test_twins" ] && [ -x "$B/emu/catanet-train" ] && [ -x "$B/emu/test_train_cuda" ] ||
    { echo "FAIL: t_cuda_emu: $B/emu is not built (make emu-build)"; exit 1; }
run "$B/emu/test_twins"
run "$B/emu/wmma_selftest" # the emulator's wmma/fp16 against host arithmetic (tests/cuda_emu/wmma_selftest.cu)
run "$B/emu/exp2_selftest" # attn_tc.cuh's exp2_fma against exp2 in double (tests/cuda_emu/exp2_selftest.cu)
# catanet-train bench --device cuda on a tiny network: the CUDA training step, Adam included, runs
out=$("$B/emu/catanet-train" bench --device cuda --dim 8 --qk-dim 8 --heads 2 --mlp-dim 16 --groups 1 --tokens 4 \
    --group-size 64 --patch-size 8 --batch 1 --patch 16 --iters 1 2>&1)
rc=$?
echo "$out"
if [ $rc = 0 ] && echo "$out" | grep -q '^bench: .*cuda (host emulation'; then
    echo "PASS: catanet-train bench --device cuda (emulated, tiny network) runs"
else
    echo "FAIL: catanet-train bench --device cuda (emulated): exit $rc"
    fail=1
fi
# gpu-check's bench step off-GPU: catanet-gpubench on a one-group model, fp16, AUTO kernels (the
# picks are timed and logged), NV12 device frames, its JSON line and the step profile
if [ -x "$B/emu/catanet-gpubench" ] && [ -x "$B/tools/catanet-mkmodel" ]; then
    gdir=$(mktemp -d)
    "$B/tools/catanet-mkmodel" -o "$gdir/g1.safetensors" -s 2 -g 1 > "$gdir/mk.log" 2>&1
    "$B/emu/catanet-gpubench" -m "$gdir/g1.safetensors" -p fp16 -f nv12 -n 1 -w 0 -s 32x28 > "$gdir/out" 2> "$gdir/err"
    rc=$?
    picks=$(grep -c 'kernel pick 32x28' "$gdir/err")
    if [ $rc = 0 ] && grep -q '^{"tool":"gpubench".*"kernels":"auto","mode":"sync","in":"32x28","out":"64x56"' "$gdir/out" &&
        grep -q '^PROFILE 32x28 total ' "$gdir/out" && [ "$picks" -gt 0 ]; then
        echo "PASS: catanet-gpubench (emulated, one group, 32x28 fp16): JSON lines, step profile, $picks kernel picks logged"
    else
        echo "FAIL: catanet-gpubench (emulated): exit $rc, $picks kernel picks"
        tail -n 5 "$gdir/out" "$gdir/err"
        fail=1
    fi
    # gpu-check's DRAM-bytes step records only between cudaProfilerStart and Stop (-P 1): that range
    # must hold exactly one frame's kernels, the census's list for the same model, size and kernels,
    # and make no graph: the profiled frame replays the graph that prepare captured, even when no
    # warm-up frame is asked for (-w 0)
    "$B/emu/catanet-gpubench" -m "$gdir/g1.safetensors" -p fp16 -f nv12 -k primary -P 1 -w 0 -s 32x28 > "$gdir/pout" 2> "$gdir/perr"
    rc=$?
    inrange=$(sed -n 's/^emu: \([0-9]*\) kernel launches and [0-9]* graphs instantiated between cudaProfilerStart and cudaProfilerStop$/\1/p' "$gdir/perr")
    graphs=$(sed -n 's/^emu: [0-9]* kernel launches and \([0-9]*\) graphs instantiated between .*$/\1/p' "$gdir/perr")
    frame=$([ -x "$B/emu/census" ] && "$B/emu/census" "$gdir/g1.safetensors" 32x28 fp16 primary 2> /dev/null | grep -c '^kernel')
    if [ $rc = 0 ] && grep -q '^PROFILED 32x28: one frame' "$gdir/pout" && [ -n "$inrange" ] && [ "$inrange" = "$frame" ] \
        && [ "$graphs" = 0 ]; then
        echo "PASS: catanet-gpubench -P 1 -w 0 (emulated): the profiled range holds one frame's $inrange kernel launches (the census: $frame) and makes no graph"
    else
        echo "FAIL: catanet-gpubench -P 1 -w 0 (emulated): exit $rc, ${inrange:-no} launches in the profiled range (the census lists ${frame:-none}), ${graphs:-?} graphs made there (want 0)"
        tail -n 5 "$gdir/pout" "$gdir/perr"
        fail=1
    fi
    rm -rf "$gdir"
else
    echo "FAIL: t_cuda_emu: $B/emu/catanet-gpubench or $B/tools/catanet-mkmodel is not built"
    fail=1
fi
# one frame's launches at 960x540 (tests/cuda_emu/census.c, dry: nothing runs, so the size costs
# nothing; tools/census.sh's input) for an 8-group x2 model on NV12 device frames. In both
# precisions, with the primary and the fallback kernels, no weight is put in a kernel's form per
# frame (the convs' layouts and the normalised token centers are made once at open); with the
# primary kernels the frame is kernel launches only (no memset, copy or cuBLAS GEMM); the fp16
# frame has each group's 9 LRSA patch-class launches, its IASA and its two ConvFFN kernels. Besides
# the kernels a frame has exactly two 4-byte operations: the non-finite count's memset before the
# forward and its read-back after it (backend_cuda.c: run)
if [ -x "$B/emu/census" ] && [ -x "$B/tools/catanet-mkmodel" ]; then
    cdir=$(mktemp -d)
    "$B/tools/catanet-mkmodel" -o "$cdir/l8.safetensors" -s 2 -g 8 > "$cdir/mk.log" 2>&1
    cfail=
    for mode in "fp16 primary" "fp32 primary" "fp16 fallback"; do
        set -- $mode
        if ! "$B/emu/census" "$cdir/l8.safetensors" 960x540 $1 $2 > "$cdir/$1$2" 2> "$cdir/err"; then
            cfail="$cfail; $1 $2: census failed ($(tail -n 1 "$cdir/err"))"
            continue
        fi
        nk=$(grep -c '^kernel' "$cdir/$1$2")
        conv=$(grep -c '^kernel.\(conv_weights_half\|conv_permute\|center_norm\)_kernel' "$cdir/$1$2")
        other=$(grep '^\(memset\|memcpy\|gemm\)' "$cdir/$1$2" | grep -v -c -x 'memset.4\|memcpy.4')
        count_ops=$(grep -c -x 'memset.4\|memcpy.4' "$cdir/$1$2")
        [ "$count_ops" = 2 ] || cfail="$cfail; $1 $2: $count_ops 4-byte memset/read-back of the non-finite count (want 2)"
        [ "$nk" -gt 0 ] || cfail="$cfail; $1 $2: no kernel launch listed"
        [ "$conv" = 0 ] || cfail="$cfail; $1 $2: $conv weight conversions in a frame"
        [ "$2" = fallback ] || [ "$other" = 0 ] || cfail="$cfail; $1 $2: $other memsets, copies or GEMMs in a frame"
        echo "t_cuda_emu: census 960x540 $1 $2: $nk kernel launches, $other other operations a frame"
    done
    f=$cdir/fp16primary
    lrsa=$(grep -c '^kernel.lrsa_\(attn\|fused\)_tc_kernel' "$f"); iasa=$(grep -c '^kernel.iasa_tc_kernel' "$f")
    ffn=$(grep -c '^kernel.convffn_fp16_kernel' "$f")
    [ "$lrsa $iasa $ffn" = "72 8 16" ] || cfail="$cfail; fp16: LRSA/IASA/ConvFFN launches $lrsa/$iasa/$ffn, want 72/8/16"
    if [ -z "$cfail" ]; then
        echo "PASS: census (emulated launches of a 960x540 frame, 8 groups): no per-frame weight conversion; primary kernels only kernels; 72/8/16 LRSA/IASA/ConvFFN launches in fp16"
    else
        echo "FAIL: census${cfail}"
        fail=1
    fi
    # tools/census.sh (make census) on the same frame: every row matched to its instantiation in
    # ptxas's list (by symbol: no '*'), with registers, when nvcc is here (about a minute of ptxas for
    # sm_90, cached in $B/census); without nvcc, the table with '?' registers
    sh tools/census.sh -b "$B" "$cdir/l8.safetensors" 960x540 > "$cdir/table" 2> "$cdir/err"
    rc=$?
    rows=$(grep -c '^[a-z_][a-z_0-9]*_kernel' "$cdir/table")
    unmatched=$(grep '^[a-z_][a-z_0-9]*_kernel' "$cdir/table" | grep -c '[0-9]\* ')
    noregs=$(grep '^[a-z_][a-z_0-9]*_kernel' "$cdir/table" | grep -c ' ? ')
    nvcc_here=$(command -v nvcc || ls /usr/local/cuda/bin/nvcc 2>/dev/null)
    if [ $rc = 0 ] && grep -q '^total: [1-9][0-9]* kernel launches' "$cdir/table" && [ "$rows" -gt 0 ] &&
        { [ -z "$nvcc_here" ] || [ "$unmatched $noregs" = "0 0" ]; }; then
        echo "PASS: tools/census.sh (8 groups, 960x540): $rows distinct launches$([ -n "$nvcc_here" ] && echo ", each with its instantiation's ptxas registers" || echo " (no nvcc here: registers not shown)")"
    else
        echo "FAIL: tools/census.sh: exit $rc, $rows rows, $unmatched not matched to an instantiation, $noregs without registers"
        tail -n 5 "$cdir/table" "$cdir/err"
        fail=1
    fi
    rm -rf "$cdir"
else
    echo "FAIL: t_cuda_emu: $B/emu/census or $B/tools/catanet-mkmodel is not built"
    fail=1
fi
# the plugin path without a GPU: $B's own test_cuda_plugin and catanet-train (libcatanet, no CUDA
# linked) load the emulated backend as their CUDA plugin: device=auto picks CUDA and runs a frame
# through the plugin's table, and catanet-train --device cuda trains through it
P=$B/emu/plugin/libcatanet-cuda.so.$(sed -n 's/^SOMAJOR *= *//p' "$B/config.mk")
if [ -f "$P" ] && [ -x "$B/tests/test_cuda_plugin" ] && [ -x "$B/training/catanet-train" ]; then
    CATANET_CUDA_PLUGIN=$P run "$B/tests/test_cuda_plugin" --available
    out=$(CATANET_CUDA_PLUGIN=$P "$B/training/catanet-train" bench --device cuda --dim 8 --qk-dim 8 --heads 2 \
        --mlp-dim 16 --groups 1 --tokens 4 --group-size 64 --patch-size 8 --batch 1 --patch 16 --iters 1 2>&1)
    rc=$?
    if [ $rc = 0 ] && echo "$out" | grep -q '^bench: .*cuda (host emulation'; then
        echo "PASS: catanet-train bench --device cuda through the CUDA plugin (emulated backend)"
    else
        echo "$out" | tail -n 5
        echo "FAIL: catanet-train bench --device cuda through the CUDA plugin (emulated backend): exit $rc"
        fail=1
    fi
else
    echo "FAIL: t_cuda_emu: the emulated plugin $P, $B/tests/test_cuda_plugin or $B/training/catanet-train is not built"
    fail=1
fi
# the CUDA training loop against the CPU loop (tests/train_cuda_loop.sh; gpu-check runs it on the GPU)
start=$(date +%s)
sh tests/train_cuda_loop.sh "$B/emu/catanet-train"
rc=$?
echo "t_cuda_emu: train_cuda_loop.sh (emulated) ran in $(( $(date +%s) - start )) s, exit $rc"
# its 77 means "no CUDA device", which the emulated binary always has: a failure here, not a skip
if [ $rc = 77 ]; then
    echo "FAIL: train_cuda_loop.sh skipped (exit 77) with the emulated catanet-train, whose device is always there"
    fail=1
elif [ $rc != 0 ]; then
    fail=1
fi
# the CUDA training step against the CPU step on the two reference training cases (about 80 s of
# one core since the emulator switches fibers without swapcontext; make gpu-check runs it on the GPU)
run "$B/emu/test_train_cuda"
exit $fail
