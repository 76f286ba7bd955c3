#!/bin/sh
# Entry point on a lent GPU machine (see README "GPU checks"): that machine has the CUDA toolkit
# but no Debian packages and no network, so the libraries libcatanet builds against travel as
# Debian .deb files in .gpu-deps/ (made by `tools/gpu-run.sh --prepare` here) and the reference
# data the tests read travels in .gpu-data/ (a subset of ../shared). Both folders are ignored by git.
#   here:  tools/gpu-run.sh --prepare
#   there: sh tools/gpu-run.sh OUTDIR        (runs `make gpu-check OUT=OUTDIR`)
set -u
if [ "${1:-}" = "--prepare" ]; then
    set -e
    mkdir -p .gpu-deps .gpu-data/reference/catanet .gpu-data/data/eval
    (cd .gpu-deps && apt-get download libopenblas0-openmp libopenblas-openmp-dev libjansson4 libjansson-dev \
        libpng16-16 libpng-dev libgfortran5 zlib1g-dev libjpeg62-turbo libjpeg62-turbo-dev)
    shared=${CATANET_SHARED:-../shared}
    for f in README.md cases.json weights_x2_trained.safetensors weights_x2_random.safetensors \
        weights_x3_random.safetensors weights_x4_random.safetensors eval_x2_random_1x64x64.safetensors \
        eval_x2_random_2x28x30.safetensors eval_x3_random_1x33x40.safetensors eval_x4_random_1x45x31.safetensors \
        eval_x2_random_1x31x45.safetensors train_x2_random_initted.safetensors; do
        cp "$shared/reference/catanet/$f" .gpu-data/reference/catanet/
    done
    cp -r "$shared/data/eval/Set5" .gpu-data/data/eval/
    grep -qx '/.gpu-deps/' .git/info/exclude || echo '/.gpu-deps/' >> .git/info/exclude
    grep -qx '/.gpu-data/' .git/info/exclude || echo '/.gpu-data/' >> .git/info/exclude
    du -sh .gpu-deps .gpu-data
    exit 0
fi
out=${1:-/tmp/catanet-gpu-out}
mkdir -p "$out"
if [ -d .gpu-deps ]; then
    d=/tmp/catanet-deps
    mkdir -p $d
    for f in .gpu-deps/*.deb; do
        if command -v dpkg >/dev/null 2>&1; then
            dpkg -x "$f" $d
        else
            (t=$(mktemp -d) && cd "$t" && ar x "$OLDPWD/$f" && tar -xf data.tar.* -C $d; rm -rf "$t")
        fi
    done
    L=$d/usr/lib/x86_64-linux-gnu
    export CATANET_EXTRA_CFLAGS="-I$d/usr/include -I$d/usr/include/x86_64-linux-gnu/openblas-openmp -I$d/usr/include/libpng16"
    export CATANET_EXTRA_LDFLAGS="-L$L/openblas-openmp -L$L -Wl,-rpath,$L/openblas-openmp -Wl,-rpath,$L"
    export LD_LIBRARY_PATH="$L/openblas-openmp:$L${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi
[ -d .gpu-data ] && export CATANET_SHARED="$(pwd)/.gpu-data"
nvidia-smi --query-gpu=name,compute_cap,driver_version,memory.total --format=csv,noheader > "$out/gpu.txt" 2>&1
cat "$out/gpu.txt"
make gpu-check OUT="$out" 2>&1 | tee "$out/gpu-check.log"
