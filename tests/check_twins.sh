#!/bin/sh
# The twin rule (STYLE 5.5): every kernels/cuda/<op>.cu has a CPU twin with the same stem, and every
# CUDA launcher declared in kernels/kernels_cuda.h is defined in a .cu and has an entry in the
# table of tests/test_twins.c. Backward twins: every catanet_<op>_bwd_cuda (and the optimizer's
# catanet_<op>_update_cuda) has its CPU reference catanet_<op>_bwd_ref (_update_ref) declared in
# kernels/kernels.h and defined in the CPU file of the same stem as the .cu that defines it, and
# every _bwd_ref/_update_ref in kernels.h has its CUDA twin. Runs anywhere (no GPU, no CUDA toolkit
# needed).
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
# backward (and optimizer) twins, both directions
nb=0
for fn in $(echo "$launchers" | grep -E '_(bwd|update)_cuda$'); do
    ref=${fn%_cuda}_ref
    nb=$((nb + 1))
    if ! grep -q "[ *]$ref(" kernels/kernels.h; then
        echo "FAIL: $fn has no CPU reference twin $ref declared in kernels/kernels.h"
        fail=1
        continue
    fi
    cu=$(grep -l "^int $fn(" kernels/cuda/*.cu | head -n 1)
    [ -n "$cu" ] || continue # reported above
    cpu=kernels/cpu/$(basename "$cu" .cu).c
    if ! grep -q "^[a-z].* $ref(" "$cpu" 2>/dev/null; then
        echo "FAIL: $fn is defined in $cu but its twin $ref is not defined in $cpu"
        fail=1
    fi
done
for ref in $(grep -o 'catanet_[a-z0-9_]*_\(bwd\|update\)_ref(' kernels/kernels.h | tr -d '(' | sort -u); do
    fn=${ref%_ref}_cuda
    if ! echo "$launchers" | grep -qx "$fn"; then
        echo "FAIL: $ref (kernels/kernels.h) has no CUDA twin $fn in kernels/kernels_cuda.h"
        fail=1
    fi
done
[ $fail = 0 ] && echo "PASS: $n CUDA op files have CPU twins; $(echo "$launchers" | wc -l) launchers all have twin-test entries; $nb backward/update launchers all have CPU reference twins"
exit $fail
