#!/bin/sh
# Installs the Debian packages libcatanet needs to build and test (idempotent).
# Usage: tools/install-deps.sh [--ffmpeg] [--fuzz] [--plot]   (--ffmpeg adds what 'make ffmpeg' needs,
#        --plot gnuplot for catanet-train's loss/PSNR plot (optional),
#        --fuzz what 'make fuzz' needs beyond the default set (which has clang and libFuzzer for make check's short run): OpenMP headers for clang)
set -e
# libx264-dev: make check builds FFmpeg for the filter tests, whose live-streaming test sends H.264
# python3 (stdlib only): tests/t_train_grad.sh writes its NPY inputs with it, tests/t_ncu_summary.sh runs
# tools/ncu-summary.py
# clang, libclang-rt-dev: the short fuzz run of make check (tests/t_fuzz_images.sh: libFuzzer, ASan, UBSan)
# libopenblas0-pthread, libopenblas0-serial: tests/t_blas_threads.sh runs the engine under every
# OpenBLAS build Debian ships (the alternatives pick the pthreads one once it is installed)
pkgs="build-essential pkg-config libopenblas-openmp-dev libopenblas0-pthread libopenblas0-serial libjansson-dev libpng-dev libjpeg62-turbo-dev zip libx264-dev python3 clang libclang-rt-dev"
case " $* " in *" --ffmpeg "*) pkgs="$pkgs nasm dpkg-dev libffmpeg-nvenc-dev zlib1g-dev" ;; esac
case " $* " in *" --fuzz "*) pkgs="$pkgs libomp-dev" ;; esac
case " $* " in *" --plot "*) pkgs="$pkgs gnuplot-nox" ;; esac
missing=
for p in $pkgs; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
SUDO=
[ "$(id -u)" = 0 ] || SUDO=sudo
echo "installing:$missing"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing
