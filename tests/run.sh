#!/bin/sh
# Runs every test program in $1/tests and the shell tests in tests/t_*.sh; prints a summary.
# --programs-only: the C test programs alone (the sanitizer pass: the shell tests drive the same
# library through the tools and FFmpeg, which the normal pass covers).
# Exit status 77 from a program means "skipped" (only for a missing GPU, with the reason printed).
B=${1:-build}
programs_only=0
[ "${2:-}" = "--programs-only" ] && programs_only=1
pass=0; fail=0; skip=0; failed=
for t in "$B"/tests/test_*; do
    [ -x "$t" ] || continue
    case "$t" in *.d|*.o) continue ;; esac
    name=$(basename "$t")
    echo "== $name"
    start=$(date +%s)
    "$t"; rc=$?
    echo "== $name: exit $rc ($(( $(date +%s) - start )) s)"
    if [ $rc = 0 ]; then pass=$((pass+1)); elif [ $rc = 77 ]; then skip=$((skip+1)); else fail=$((fail+1)); failed="$failed $name"; fi
done
for t in tests/t_*.sh; do
    [ -f "$t" ] && [ $programs_only = 0 ] || continue
    name=$(basename "$t")
    echo "== $name"
    BUILDDIR=$B sh "$t"; rc=$?
    echo "== $name: exit $rc"
    if [ $rc = 0 ]; then pass=$((pass+1)); elif [ $rc = 77 ]; then skip=$((skip+1)); else fail=$((fail+1)); failed="$failed $name"; fi
done
[ -n "$failed" ] && echo "failed:$failed"
echo "$pass passed, $fail failed, $skip skipped"
[ $fail = 0 ]
