#!/bin/sh
# The CPU path under each OpenBLAS build Debian ships (OpenMP, pthreads, serial), whichever its
# alternatives system would pick: each build chosen in turn with LD_LIBRARY_PATH, and for each
# tests/blas_threads checks that this build is the one loaded, that 1 and 2 threads give the same
# bits and, with the OpenMP and pthreads builds, that 2 threads are at least 1.3x as fast as 1 (two
# idle cores give 1.6-1.9x at 96x96; the pthreads build left to its own thread pool gave 0.06-0.25x).
# The serial build is not thread-safe, so its GEMMs run one at a time and 2 threads gain only what
# the rest of the network gains (1.1-1.4x measured): no speed bound there (0), its bits are checked.
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
    [ $build = serial ] && min=0
    echo "-- OpenBLAS $build build ($dir)"
    LD_LIBRARY_PATH=$dir "$B/tests/blas_threads" "$model" "$name" $min || fail=1
done
[ $fail = 0 ] && echo "PASS: every OpenBLAS build: same bits for 1 and 2 threads; the parallel builds faster on 2"
exit $fail
