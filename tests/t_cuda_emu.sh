#!/bin/sh
# The CUDA twins on the CPU: builds tests/test_twins.c's op table against kernels/cuda/*.cu run by the
# host emulator (tests/cuda_emu; Makefile target emu-build, in $B/emu) and runs it: every CUDA twin
# against its CPU twin, each with its tolerance, in PASS/FAIL lines. What the emulator can and cannot
# catch: the comment opening tests/cuda_emu/emu.cpp. No GPU or CUDA toolkit needed; skipped (77)
# when the C++ compiler or the ucontext fibers it needs are missing.
# Usage: BUILDDIR=build sh tests/t_cuda_emu.sh [--run-only]   (--run-only: make check-emu built it)
cd "$(dirname "$0")/.." || exit 1
B=${BUILDDIR:-build}
CXX=${EMU_CXX:-g++}
bin=$B/emu/test_twins
if [ "${1:-}" != "--run-only" ]; then
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
[ -x "$bin" ] || { echo "FAIL: t_cuda_emu: $bin not built"; exit 1; }
start=$(date +%s)
"$bin"
rc=$?
echo "t_cuda_emu: the emulated op table ran in $(( $(date +%s) - start )) s (exit $rc)"
exit $rc
