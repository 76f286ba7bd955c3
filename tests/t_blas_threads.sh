#!/bin/sh
# The CPU path under each OpenBLAS build Debian ships (OpenMP, pthreads, serial), whichever its
# alternatives system would pick: each build chosen in turn with LD_LIBRARY_PATH, and for each
# tests/blas_threads checks that this build is the one loaded, that 1 and 2 threads give the same
# bits and that 2 threads are faster than 1: at least 1.3x with the OpenMP and pthreads builds (two
# idle cores give 1.6-1.9x at 96x96; the pthreads build left to its own thread pool gave 0.06-0.25x),
# at least 1.1x with the serial build, whose GEMMs run one at a time (it is not thread-safe; 1.4x).
# tools/install-deps.sh installs all three builds.
B=${BUILDDIR:-build}
model=weights/catanet_xs_x2.safetensors
libdir=$(dirname "$(ldconfig -p | sed -n 's/.*libopenblas\.so\.0 (libc6,x86-64) => //p' | head -n 1)")
# the builds live in folders beside the alternatives' link: .../openblas-openmp, -pthread, -serial
for f in /usr/lib/x86_64-linux-gnu /usr/lib/aarch64-linux-gnu "$libdir"; do
    [ -d "$f/openblas-pthread" ] && { base=$f; break; }
done
fail=0
if [ -z "${base:-}" ]; then
    echo "FAIL: no openblas-pthread folder found: install libopenblas0-pthread (tools/install-deps.sh)"
    exit 1
fi
for build in openmp pthread serial; do
    dir=$base/openblas-$build
    if [ ! -e "$dir/libopenblas.so.0" ]; then
        echo "FAIL: $dir/libopenblas.so.0 missing: install libopenblas0-$build (tools/install-deps.sh)"
        fail=1
        continue
    fi
    name=$build min=1.3
    [ $build = pthread ] && name=pthreads
    [ $build = serial ] && min=1.1
    echo "-- OpenBLAS $build build ($dir)"
    LD_LIBRARY_PATH=$dir "$B/tests/blas_threads" "$model" "$name" $min || fail=1
done
[ $fail = 0 ] && echo "PASS: every OpenBLAS build: same bits, 2 threads faster than 1"
exit $fail
