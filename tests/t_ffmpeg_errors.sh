#!/bin/sh
# Each error case of catanet_xs: the message (naming the file / the device / the sizes) and
# a failing exit status. Missing model, unreadable models (a directory, a path through a file,
# mode 000: as root through setpriv), generic threads= and cpu_threads out of range, malformed model,
# device=cuda without a GPU, fp16 on the CPU, a frame size change with -reinit_filter 0; device=auto
# logs its choice. (Models by name, the default model among them: t_ffmpeg_models.sh.)
. tests/ffmpeg_lib.sh
need_ffmpeg
M=$MODEL
src="testsrc2=size=16x12:rate=5:duration=0.2,format=yuv420p"

# expect_error "description" "message regex" ffmpeg-args...
expect_error() {
    d=$1 re=$2; shift 2
    "$FF" -nostdin -hide_banner -v error -y "$@" > "$TMP/err.log" 2>&1
    rc=$?
    if [ $rc != 0 ] && grep -Eq "$re" "$TMP/err.log"; then
        pass "$d (exit $rc)"
    else
        fail "$d (exit $rc, wanted non-zero and /$re/)"
        sed 's/^/    /' "$TMP/err.log" | head -n 5
    fi
}

expect_error "missing model file: error names the file and the reason" \
    "cannot open model file '$TMP/nope.safetensors': No such file or directory" \
    -lavfi "$src,catanet_xs=model=$TMP/nope.safetensors" -f null -

echo "not a safetensors file" > "$TMP/bad.safetensors"
expect_error "malformed model: error names the file and says what is wrong" \
    "cannot open model '$TMP/bad.safetensors': .+" \
    -lavfi "$src,catanet_xs=model=$TMP/bad.safetensors" -f null -

# unreadable models that no user, root included, can read: a directory, a path through a file
mkdir "$TMP/dir.safetensors"
expect_error "model path is a directory: error names it and says why" \
    "cannot read model file '$TMP/dir.safetensors': Is a directory" \
    -lavfi "$src,catanet_xs=model=$TMP/dir.safetensors" -f null -
cp "$M" "$TMP/m.safetensors"
expect_error "model path under a regular file: error names it and says why" \
    "cannot open model file '$TMP/m.safetensors/x.safetensors': Not a directory" \
    -lavfi "$src,catanet_xs=model=$TMP/m.safetensors/x.safetensors" -f null -
# a file without read permission: as root, read by an unprivileged user (setpriv), since root
# reads any file
cp "$M" "$TMP/locked.safetensors" && chmod 000 "$TMP/locked.safetensors"
if [ "$(id -u)" != 0 ]; then
    expect_error "unreadable model (mode 000): permission denied is reported" \
        "cannot open model file '$TMP/locked.safetensors': Permission denied" \
        -lavfi "$src,catanet_xs=model=$TMP/locked.safetensors" -f null -
elif command -v setpriv > /dev/null 2>&1; then
    # nobody must reach ffmpeg and the folder: a copy of the binary in a folder it may enter
    chmod 711 "$TMP"
    cp "$FF" "$TMP/ffmpeg" && chmod 755 "$TMP/ffmpeg"
    setpriv --reuid=65534 --regid=65534 --clear-groups "$TMP/ffmpeg" -nostdin -hide_banner -v error \
        -lavfi "$src,catanet_xs=model=$TMP/locked.safetensors" -f null - > "$TMP/err.log" 2>&1
    rc=$?
    if [ $rc != 0 ] && grep -q "cannot open model file '$TMP/locked.safetensors': Permission denied" "$TMP/err.log"; then
        pass "unreadable model (mode 000, read as uid 65534): permission denied is reported (exit $rc)"
    else
        fail "unreadable model (mode 000, read as uid 65534): exit $rc, wanted non-zero and permission denied"
        sed 's/^/    /' "$TMP/err.log" | head -n 5
    fi
else
    fail "unreadable model (mode 000): running as root without setpriv (util-linux) to drop privileges"
fi

# threads: the generic option (slice threading, which the filter does not do) is refused with the
# name of the filter's own; cpu_threads out of its range is refused
expect_error "threads= (FFmpeg's generic option) is refused, naming cpu_threads" \
    "threads=2 is FFmpeg's generic slice-threading option.*cpu_threads=N" \
    -lavfi "$src,catanet_xs=model=$M:threads=2" -f null -
expect_error "cpu_threads=5000 is refused (0 to 1024)" \
    "Value 5000.* for parameter 'cpu_threads' out of range \\[0 - 1024\\]" \
    -lavfi "$src,catanet_xs=model=$M:cpu_threads=5000" -f null -

if command -v nvidia-smi > /dev/null 2>&1 && nvidia-smi -L > /dev/null 2>&1; then
    ff -lavfi "$src,catanet_xs=model=$M:device=cuda" -f null - 2> "$TMP/cuda.log"
    check "device=cuda with a GPU present runs" [ $? = 0 ]
else
    expect_error "device=cuda without a usable GPU fails and says so (no silent CPU fallback)" \
        "device=cuda: no usable CUDA GPU" \
        -lavfi "$src,catanet_xs=model=$M:device=cuda" -f null -
    "$FF" -nostdin -hide_banner -v info -lavfi "$src,catanet_xs=model=$M:device=auto" -f null - > "$TMP/auto.log" 2>&1
    rc=$?
    check "device=auto without a GPU runs on the CPU and logs the choice" \
        sh -c "[ $rc = 0 ] && grep -q 'device=auto chose cpu' '$TMP/auto.log'"
fi

expect_error "precision=fp16 on the CPU is refused" "precision=fp16 needs device=cuda" \
    -lavfi "$src,catanet_xs=model=$M:device=cpu:precision=fp16" -f null -

# two clips of different sizes through the concat demuxer, graph re-creation disabled (png:
# the decoder takes each frame's size from the stream, unlike ffv1/rawvideo)
ff -lavfi "testsrc2=size=16x12:rate=5:duration=0.4" -c:v png "$TMP/a.nut"
ff -lavfi "testsrc2=size=12x8:rate=5:duration=0.4" -c:v png "$TMP/b.nut"
printf "file '%s'\nfile '%s'\n" "$TMP/a.nut" "$TMP/b.nut" > "$TMP/list.txt"
expect_error "size change with -reinit_filter 0: the frame is rejected with both sizes in the message" \
    "frame size changed from 16x12 to 12x8" \
    -f concat -safe 0 -reinit_filter 0 -i "$TMP/list.txt" -vf "catanet_xs=model=$M:cpu_threads=1" -f null -
finish
