#!/bin/sh
# The working tree stays small enough for a GPU run: the device tool sends the tree (tracked and
# untracked-not-ignored files) plus the carried paths, 64 MiB in all, and refuses a run over it.
# `make gpu-stage`'s carry (build/gpu-carry: shared 18.5 MiB, FFmpeg 13.1, deps 0.3, measured
# 2026-11-27) takes 32 MiB of that, so the tree may have the other 32 (tools/gpu-travel.sh; the
# exact total is checked by `make gpu-stage` after staging).
# Checkpoints of finished runs are what grows it: weights/README.md says how they leave the tree.
fail=0
check() { if [ "$1" = 0 ]; then echo "PASS: $2"; else echo "FAIL: $2"; fail=1; fi; }
if ! git rev-parse --is-inside-work-tree > /dev/null 2>&1; then
    echo "PASS: not a git checkout (the device tool sends a git checkout): nothing to measure"
    exit 0
fi
sh tools/gpu-travel.sh --tree-only 32
check $? "the working tree leaves 32 MiB of the 64 MiB transfer for gpu-check's carry"
# the check itself can fail: with all 64 MiB kept for the carry, no tree fits
sh tools/gpu-travel.sh --tree-only 64 > /dev/null
[ $? = 1 ]; check $? "gpu-travel.sh fails a tree that does not fit (64 MiB kept for the carry)"
exit $fail
