#!/bin/sh
# One binary with and without CUDA: libcatanet loads the CUDA backend at run time (the plugin
# libcatanet-cuda.so, engine/cuda_dl.c), so
#   - no tool, no catanet-train, no libcatanet.so and no patched ffmpeg has a NEEDED entry for the
#     CUDA runtime or cuBLAS (readelf -d);
#   - with the CUDA libraries made unreachable (the dynamic loader run without its cache, on the
#     folders of the programs' other libraries only: ld.so --inhibit-cache --library-path), the
#     plugin fails to load with the loader's reason, and the tools, catanet-train and ffmpeg run
#     their CPU path, while device=cuda fails naming the missing library;
#   - a missing plugin, or a library that is not one, gives its own clear error;
#   - with the plugin reachable, device=cuda on a machine without a GPU fails with "no CUDA device"
#     and cudart's reason (with a GPU it runs).
# catanet-gpubench and test_twins, GPU-only programs that call CUDA themselves, are not installed
# and are left out of the NEEDED check.
. tests/ffmpeg_lib.sh
need_ffmpeg
B=$(cd "$B" && pwd)
FF=$B/ffmpeg/ffmpeg
XS=weights/catanet_xs_x2.safetensors
PLUGIN=$(ls "$B"/libcatanet-cuda.so.* 2> /dev/null | head -n 1)
CUDA_RE='libcudart|libcublas|libcuda\.|libnv'

# ---- NEEDED entries ----
progs="$FF $B/training/catanet-train $(ls "$B"/libcatanet.so.*.*)"
for t in "$B"/tools/catanet-*; do
    case "$t" in *.o|*.d|*/catanet-gpubench) ;; *) progs="$progs $t" ;; esac
done
bad=
for p in $progs; do
    readelf -d "$p" | grep NEEDED | grep -Eq "$CUDA_RE" && bad="$bad $(basename "$p")"
done
check "no CUDA NEEDED entry in $(echo $progs | wc -w) programs and libcatanet.so (bad:${bad:- none})" [ -z "$bad" ]
if [ -n "$PLUGIN" ]; then
    check "the plugin itself links cudart and cuBLAS" sh -c "readelf -d '$PLUGIN' | grep NEEDED | grep -q libcudart"
    n=$(nm -D --defined-only "$PLUGIN" | wc -l)
    check "the plugin exports one symbol, catanet_cuda_plugin_v1 ($n exported)" \
        sh -c "[ $n = 1 ] && nm -D --defined-only '$PLUGIN' | grep -q ' catanet_cuda_plugin_v1\$'"
fi

# ---- a missing plugin, a library that is not one ----
for p in "$TMP/none.so" "$B/libcatanet.so.0"; do
    CATANET_CUDA_PLUGIN=$p "$B/tests/test_cuda_plugin" --unavailable "$p" > "$TMP/log" 2>&1
    rc=$?
    check "CATANET_CUDA_PLUGIN=$(basename "$p"): CUDA unavailable, auto on the CPU, the reason names it (exit $rc: $(grep -m1 'device=cuda' "$TMP/log"))" [ $rc = 0 ]
done
CATANET_CUDA_PLUGIN=$B/libcatanet.so.0 "$B/tests/test_cuda_plugin" --unavailable "is not a catanet CUDA plugin" > /dev/null 2>&1
check "a library that is not a plugin: 'is not a catanet CUDA plugin'" [ $? = 0 ]

# ---- the CUDA libraries unreachable ----
# the loader searches only a folder of links to the programs' other libraries (by soname), so the
# CUDA libraries are out of reach wherever the system keeps them (beside the others included)
ldso=$(readelf -l "$FF" | sed -n 's/.*interpreter: \(.*\)]$/\1/p')
dirs=$TMP/libs
mkdir -p "$dirs"
for p in "$FF" "$B/tools/catanet-upscale" "$B/tests/test_cuda_plugin" "$B/training/catanet-train" $PLUGIN; do
    ldd "$p"
done | grep -Ev "$CUDA_RE" | sed -n 's|^[[:space:]]*\([^ ]*\) => \(/[^ ]*\) (0x.*|\1 \2|p' | sort -u |
    while read -r name path; do ln -sf "$path" "$dirs/$name"; done
# hidden RUN...: RUN with the CUDA libraries out of reach (an rpath the plugin may carry ignored too)
hidden() {
    CATANET_CUDA_PLUGIN=${PLUGIN:-$TMP/no-plugin.so} "$ldso" --inhibit-cache --library-path "$dirs" \
        ${PLUGIN:+--inhibit-rpath "$PLUGIN"} "$@"
}
why="cannot open shared object file"
[ -n "$PLUGIN" ] && why="libcu.*$why"

hidden "$B/tests/test_cuda_plugin" --unavailable "cannot open shared object file" > "$TMP/log" 2>&1
check "CUDA hidden: test_cuda_plugin (auto on the CPU, cuda refused, cpu runs) (exit $?; $(grep -m1 'device=cuda w' "$TMP/log"))" \
    grep -q '0 failed' "$TMP/log"
"$FF" -nostdin -v error -y -f lavfi -i testsrc2=size=12x10:rate=1 -frames:v 1 "$TMP/in.png" 2> "$TMP/err"
hidden "$B/tools/catanet-upscale" -m $XS -d cpu "$TMP/in.png" "$TMP/out.png" 2> "$TMP/err"
rc=$?
size=$(od -An -tu1 -j16 -N8 "$TMP/out.png" 2> /dev/null | tr -s ' ')
check "CUDA hidden: catanet-upscale -d cpu runs (exit $rc, 12x10 -> IHDR bytes:$size)" \
    [ $rc = 0 ] && [ "$size" = " 0 0 0 24 0 0 0 20" ]
hidden "$B/tools/catanet-upscale" -m $XS -d cuda "$TMP/in.png" "$TMP/out2.png" 2> "$TMP/err"
rc=$?
check "CUDA hidden: catanet-upscale -d cuda fails naming the missing library (exit $rc: $(tail -n 1 "$TMP/err"))" \
    sh -c "[ $rc != 0 ] && [ ! -e '$TMP/out2.png' ] && grep -q '$why' '$TMP/err'"
hidden "$B/training/catanet-train" bench --device cuda --dim 8 --qk-dim 8 --heads 2 --mlp-dim 16 --groups 1 \
    --tokens 4 --group-size 64 --patch-size 8 --batch 1 --patch 16 --iters 1 > "$TMP/out" 2> "$TMP/err"
rc=$?
check "CUDA hidden: catanet-train --device cuda fails naming the missing library (exit $rc: $(tail -n 1 "$TMP/err"))" \
    sh -c "[ $rc != 0 ] && grep -q '$why' '$TMP/err'"
src="testsrc2=size=24x16:rate=5,format=rgb24"
for dev in cpu auto; do
    rm -f "$TMP/ff.md5"
    hidden "$FF" -nostdin -hide_banner -v error -f lavfi -i "$src" -frames:v 2 -vf "catanet_xs=model=$XS:device=$dev" \
        -f framemd5 "$TMP/ff.md5" 2> "$TMP/err"
    rc=$?
    check "CUDA hidden: ffmpeg starts and catanet_xs device=$dev runs on the CPU (exit $rc, $(grep -cv '^#' "$TMP/ff.md5" 2> /dev/null) frames)" \
        sh -c "[ $rc = 0 ] && [ \$(grep -cv '^#' '$TMP/ff.md5') = 2 ]"
done
hidden "$FF" -nostdin -hide_banner -v error -f lavfi -i "$src" -frames:v 1 -vf "catanet_xs=model=$XS:device=cuda" \
    -f null - 2> "$TMP/err"
rc=$?
check "CUDA hidden: ffmpeg catanet_xs device=cuda fails naming the missing library (exit $rc: $(grep -m1 "$why" "$TMP/err"))" \
    sh -c "[ $rc != 0 ] && grep -q '$why' '$TMP/err'"

# ---- the plugin reachable (beside the program), no GPU: cudart's reason ----
if [ -n "$PLUGIN" ]; then
    "$B/tools/catanet-upscale" -m $XS -d cuda "$TMP/in.png" "$TMP/out3.png" 2> "$TMP/err"
    rc=$?
    if [ $rc = 0 ]; then
        pass "plugin reachable: catanet-upscale -d cuda ran on a GPU"
    else
        check "plugin reachable, no GPU: -d cuda says 'no CUDA device' and why (exit $rc: $(tail -n 1 "$TMP/err"))" \
            grep -q 'no CUDA device: the CUDA plugin loaded, but cudaGetDeviceCount says: ' "$TMP/err"
    fi
fi
finish
