#!/bin/sh
# Runs every test program in $1/tests and the shell tests in tests/*.sh; prints a summary.
# Exit status 77 from a program means "skipped" (only for a missing GPU, with the reason printed).
B=${1:-build}
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
    [ -f "$t" ] || continue
    name=$(basename "$t")
    echo "== $name"
    BUILDDIR=$B sh "$t"; rc=$?
    echo "== $name: exit $rc"
    if [ $rc = 0 ]; then pass=$((pass+1)); elif [ $rc = 77 ]; then skip=$((skip+1)); else fail=$((fail+1)); failed="$failed $name"; fi
done
[ -n "$failed" ] && echo "failed:$failed"
echo "$pass passed, $fail failed, $skip skipped"
[ $fail = 0 ]
