#!/bin/sh
# A short libFuzzer run over the image readers (tests/fuzz/fuzz_images.c: PNG, JPEG, BMP, NPY; ASan +
# UBSan) from the seeds of every kind, FUZZ_SHORT_TIME seconds (Makefile, default 20). A crash, a leak,
# a silent failure or a size past the caps fails it; the input is kept in build-fuzz/crash-*. Longer
# runs: make fuzz-run FUZZ_TIME=600. Needs clang with libFuzzer (tools/install-deps.sh installs it).
command -v "${FUZZ_CC:-clang}" > /dev/null ||
    { echo "FAIL: ${FUZZ_CC:-clang} missing: run tools/install-deps.sh"; exit 1; }
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
${MAKE:-make} --no-print-directory fuzz-short > "$W/log" 2>&1; rc=$?
runs=$(sed -n 's/^Done \([0-9]*\) runs.*/\1/p' "$W/log")
if [ $rc = 0 ] && [ -n "$runs" ] && [ "$runs" -gt 0 ]; then
    echo "PASS: fuzz_images: $runs inputs, no finding ($(grep -o 'average_exec_per_sec: *[0-9]*' "$W/log"), $(grep -o 'peak_rss_mb: *[0-9]*' "$W/log"))"
else
    tail -30 "$W/log"
    grep -m 3 "ERROR: \|SUMMARY: \|^    #[0-3] " "$W/log"
    echo "FAIL: fuzz_images: exit $rc after ${runs:-no} runs (input kept as $(ls build-fuzz/crash-* build-fuzz/leak-* 2>/dev/null | tail -1))"
    exit 1
fi
