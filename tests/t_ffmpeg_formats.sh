#!/bin/sh
# catanet_xs in every pixel format it lists, at an odd size (17x13) and tiny ones (1x1, 2x2), and
# an odd size, 175x143, for the formats where odd sizes meet chroma subsampling or packing:
# the filter's output must equal, byte for byte, what libcatanet itself gives for the same
# raw input frame (tests/ffmpeg_ref.c) with the colour rules the filter documents (untagged:
# BT.601 below 720 lines, limited range, left-sited chroma; yuvj*: full range, centred). Each format
# comes out in its own format (no conversion by FFmpeg's negotiation: 4:2:2 stays 4:2:2).
# 10-bit: yuv444p10le output, read back, is within half an 8-bit step of the float network
# output (8-bit yuv444p, the control, is not). Every ffmpeg and ffmpeg_ref run must succeed: a
# failed step fails its case (no file of an earlier case is compared), and the control counts
# only when ffmpeg_ref ran and measured an error too large (its exit 1; errors are exit 2).
. tests/ffmpeg_lib.sh
need_ffmpeg
M=$MODEL

# the library reference, built against this tree's libcatanet (the static archive the ffmpeg stage
# holds: --static brings catanet.pc's private dependencies)
PC=$B/ffmpeg.stage/lib/pkgconfig
if ! cc -std=c11 -O2 $(PKG_CONFIG_PATH=$PC pkg-config --cflags catanet) tests/ffmpeg_ref.c \
        $(PKG_CONFIG_PATH=$PC pkg-config --static --libs catanet) -o "$TMP/ffmpeg_ref" 2> "$TMP/cc.log"; then
    cat "$TMP/cc.log"
    fail "compiling tests/ffmpeg_ref.c"
    finish
fi

# step LABEL COMMAND...: run one step of a case; on failure print why and return 1 (the caller
# fails the case). Each case starts by removing the files of the previous one.
step() {
    label=$1; shift
    "$@" 2> "$TMP/step.log" && return 0
    echo "    $label: exit $? from $(basename "$1"): $(head -c 300 "$TMP/step.log")"
    return 1
}
fresh() { rm -f "$TMP/in.raw" "$TMP/ff.raw" "$TMP/ref.raw" "$TMP/other.raw"; }

# fmt_case MODEL SCALE PIXFMT WxH [LABEL]: one raw frame through the filter and through libcatanet
# (untagged: BT.601, limited range and left-sited chroma; yuvj*: full range, centred), byte for byte
fmt_case() {
    model=$1 s=$2 f=$3 size=$4 label=$5
    w=${size%x*} h=${size#*x}
    range=limited loc=left
    case $f in yuvj*) range=full loc=center ;; esac
    fresh
    if ! step "input frame" ff -lavfi "testsrc2=size=64x48:rate=5:duration=0.2,scale=$w:$h,format=$f" -f rawvideo "$TMP/in.raw" ||
       ! step "filter" ff -f rawvideo -pix_fmt $f -s $size -i "$TMP/in.raw" -vf "catanet_xs=model=$model:cpu_threads=1" \
            -f rawvideo -pix_fmt $f "$TMP/ff.raw" ||
       ! step "library" "$TMP/ffmpeg_ref" "$model" $f $w $h 601 $range $loc "$TMP/in.raw" "$TMP/ref.raw"; then
        fail "$label$f $size: a step failed"
        return
    fi
    check "$label$f $size -> $((s * w))x$((s * h)): filter output equals libcatanet's ($(wc -c < "$TMP/ff.raw") bytes)" \
        cmp -s "$TMP/ff.raw" "$TMP/ref.raw"
}

fmts="yuv420p yuvj420p yuv422p yuvj422p yuv444p yuvj444p nv12 rgb24 bgr24 gbrp gray yuv420p10le yuv422p10le
 yuv444p10le yuv420p12le yuv422p12le yuv444p12le p010le gray10le gray16le rgb48le gbrp10le gbrp16le"
for size in 17x13 1x1 2x2; do
    list=$fmts
    # 2x2: only where chroma geometry differs from 1x1 (subsampled formats)
    [ $size = 2x2 ] && list="yuv420p yuv422p nv12 p010le"
    for f in $list; do
        fmt_case "$M" 2 $f $size
    done
done

# an odd size, 175x143 (odd width and height through 4:2:0 chroma), with the shipped
# 3-group XS model (the 8-group model would take minutes per format on this CPU)
XS=weights/catanet_xs_x2.safetensors
for f in yuv420p nv12 p010le rgb24; do
    fresh
    if ! step "input frame" ff -lavfi "testsrc2=size=176x144:rate=5:duration=0.2,scale=175:143,format=$f" -f rawvideo "$TMP/in.raw" ||
       ! step "filter" ff -f rawvideo -pix_fmt $f -s 175x143 -i "$TMP/in.raw" -vf "catanet_xs=model=$XS" \
            -f rawvideo -pix_fmt $f "$TMP/ff.raw" ||
       ! step "library" "$TMP/ffmpeg_ref" "$XS" $f 175 143 601 limited left "$TMP/in.raw" "$TMP/ref.raw"; then
        fail "$f 175x143: a step failed"
        continue
    fi
    check "$f 175x143 -> 350x286 (XS model): filter output equals libcatanet's ($(wc -c < "$TMP/ff.raw") bytes)" \
        cmp -s "$TMP/ff.raw" "$TMP/ref.raw"
done

# x3: the only scale whose output can be odd (17x13 -> 51x39, 1x1 -> 3x3), where 4:2:0 and 4:2:2
# chroma of the output round up; the reference cases' x3 weights (random, so every output byte is
# the network's, not a copy of bicubic)
M3=$SHARED/reference/catanet/weights_x3_random.safetensors
for size in 17x13 1x1; do
    for f in yuv420p yuvj420p yuv422p nv12 p010le rgb24; do
        fmt_case "$M3" 3 $f $size "x3 "
    done
done

# colour tags and the untagged default: each case must match the library with the expected
# matrix/range, and not the library with the other matrix (so the case tells them apart)
tagcase() { # description size pix_fmt filter-prefix matrix range other-matrix [catanet_xs options]
    d=$1 size=$2 f=$3 pre=$4 m=$5 r=$6 om=$7 opt=$8
    w=${size%x*} h=${size#*x}
    fresh
    if ! step "input frame" ff -lavfi "testsrc2=size=64x48:rate=5:duration=0.2,scale=$w:$h,format=$f" -f rawvideo "$TMP/in.raw" ||
       ! step "filter" ff -f rawvideo -pix_fmt $f -s $size -i "$TMP/in.raw" -vf "${pre}catanet_xs=model=$M:cpu_threads=1$opt" \
            -f rawvideo -pix_fmt $f "$TMP/ff.raw" ||
       ! step "library" "$TMP/ffmpeg_ref" "$M" $f $w $h $m $r left "$TMP/in.raw" "$TMP/ref.raw" ||
       ! step "library, other matrix" "$TMP/ffmpeg_ref" "$M" $f $w $h $om $r left "$TMP/in.raw" "$TMP/other.raw"; then
        fail "$d: a step failed"
        return
    fi
    check "$d" sh -c "cmp -s '$TMP/ff.raw' '$TMP/ref.raw' && ! cmp -s '$TMP/ff.raw' '$TMP/other.raw'"
}
tagcase "untagged 4x720 yuv420p uses BT.709 (720 lines and up)" 4x720 yuv420p "" 709 limited 601
tagcase "untagged 4x718 yuv420p uses BT.601 (below 720 lines)" 4x718 yuv420p "" 601 limited 709
tagcase "frames tagged bt709 at 17x13 use BT.709" 17x13 yuv444p "setparams=colorspace=bt709," 709 limited 601
tagcase "frames tagged bt2020nc use BT.2020" 17x13 yuv444p "setparams=colorspace=bt2020nc," 2020 limited 709
tagcase "frames tagged full range (pc) use full range" 17x13 yuv444p "setparams=range=pc," 601 full 709
tagcase "matrix=bt2020 overrides untagged frames" 17x13 yuv444p "" 2020 limited 601 ":matrix=bt2020"

# 10-bit precision against the float result
for f in yuv444p10le yuv444p; do
    fresh
    rc=ffmpeg
    if step "input frame" ff -lavfi "testsrc2=size=64x48:rate=5:duration=0.2,scale=17:13,format=$f" -f rawvideo "$TMP/in.raw" &&
       step "filter" ff -f rawvideo -pix_fmt $f -s 17x13 -i "$TMP/in.raw" -vf "catanet_xs=model=$M:cpu_threads=1" \
            -f rawvideo -pix_fmt $f "$TMP/ff.raw"; then
        "$TMP/ffmpeg_ref" --precision "$M" $f 17 13 601 limited left "$TMP/in.raw" "$TMP/ff.raw"
        rc=$?
    fi
    eval "rc_$f=\$rc"
done
check "yuv444p10le keeps 10-bit precision (within half an 8-bit step of the float output; 8-bit yuv444p is not): exits $rc_yuv444p10le and $rc_yuv444p, want 0 and 1" \
    [ "$rc_yuv444p10le" = 0 -a "$rc_yuv444p" = 1 ]
finish
