#!/bin/sh
# The twin rule (STYLE 5.5): every kernels/cuda/<op>.cu has a CPU twin with the same stem, and every
# CUDA launcher declared in kernels/kernels_cuda.h is defined in a .cu and has an entry in the
# table of tests/test_twins.c. Runs anywhere (no GPU, no CUDA toolkit needed).
cd "$(dirname "$0")/.." || exit 1
fail=0
n=0
for cu in kernels/cuda/*.cu; do
    [ -f "$cu" ] || continue
    stem=$(basename "$cu" .cu)
    case $stem in
        image) twin=engine/image.c ;;        # the colour conversion lives in the engine
        frame) twin=engine/forward_cpu.c ;;  # the forward's input staging
        *) twin=kernels/cpu/$stem.c ;;
    esac
    if [ -f "$twin" ]; then
        n=$((n + 1))
    else
        echo "FAIL: $cu has no CPU twin ($twin)"
        fail=1
    fi
done
launchers=$(grep -o 'catanet_[a-z0-9_]*_cuda(' kernels/kernels_cuda.h | tr -d '(' | sort -u)
[ -n "$launchers" ] || { echo "FAIL: no launchers found in kernels/kernels_cuda.h"; exit 1; }
for fn in $launchers; do
    if ! grep -q "^int $fn(" kernels/cuda/*.cu; then
        echo "FAIL: $fn is declared in kernels/kernels_cuda.h but defined in no kernels/cuda/*.cu"
        fail=1
    fi
    if ! grep -q "\"$fn\"" tests/test_twins.c; then
        echo "FAIL: $fn has no entry in the twin table of tests/test_twins.c"
        fail=1
    fi
done
[ $fail = 0 ] && echo "PASS: $n CUDA op files have CPU twins; $(echo "$launchers" | wc -l) launchers all have twin-test entries"
exit $fail
