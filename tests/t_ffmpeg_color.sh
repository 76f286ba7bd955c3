#!/bin/sh
# catanet_xs beyond 8-bit SDR 4:2:0, as documented: HDR-tagged clips (PQ, HLG) stop the filter unless
# hdr=pass, which upscales them with a warning and the frames of untagged input; 4:2:2 comes out
# 4:2:2 (and yuvj422p keeps its range), not converted by FFmpeg's negotiation; alpha is kept
# (yuva420p, and packed rgba through gbrap), the colour planes unchanged by it; the engine's log
# follows FFmpeg's level (-v debug and -v verbose show its INFO lines, -v info does not).
. tests/ffmpeg_lib.sh
need_ffmpeg
M=$MODEL
src="testsrc2=size=16x12:rate=5:duration=0.2"

# HDR: clips tagged PQ and HLG (ffv1 in Matroska: the tag travels in the container, as in a real
# HDR file); fail by default, naming the transfer; hdr=pass: the frames of the same clip untagged,
# one warning
ff -lavfi "$src,format=yuv420p" -c:v ffv1 "$TMP/sdr.mkv"
ff -i "$TMP/sdr.mkv" -vf "catanet_xs=model=$M:cpu_threads=1" -bitexact -f framemd5 "$TMP/sdr.md5"
for trc in smpte2084 arib-std-b67; do
    ff -lavfi "$src,format=yuv420p" -c:v ffv1 -color_trc $trc "$TMP/$trc.mkv"
    "$FF" -nostdin -hide_banner -v error -i "$TMP/$trc.mkv" -vf "catanet_xs=model=$M:cpu_threads=1" -f null - \
        > "$TMP/hdr.log" 2>&1
    rc=$?
    check "a clip tagged $trc (HDR), default hdr=fail: exit $rc, the transfer and hdr=pass named ($(head -c 300 "$TMP/hdr.log"))" \
        sh -c "[ $rc != 0 ] && grep -q 'frame 0: HDR input (transfer $trc): the network was trained on SDR.*hdr=pass' '$TMP/hdr.log'"
    "$FF" -nostdin -hide_banner -v warning -y -i "$TMP/$trc.mkv" -vf "catanet_xs=model=$M:cpu_threads=1:hdr=pass" \
        -bitexact -f framemd5 "$TMP/pass.md5" > "$TMP/pass.log" 2>&1
    rc=$?
    check "a clip tagged $trc, hdr=pass: exit $rc, one warning, the frames of the untagged clip" \
        sh -c "[ $rc = 0 ] && [ \$(grep -c 'hdr=pass: HDR input (transfer $trc) is upscaled as if it were SDR' '$TMP/pass.log') = 1 ] &&
               [ -s '$TMP/sdr.md5' ] && [ \"\$(grep -v '^#' '$TMP/pass.md5')\" = \"\$(grep -v '^#' '$TMP/sdr.md5')\" ]"
done
"$FF" -nostdin -hide_banner -v warning -lavfi "$src,format=yuv420p,setparams=color_trc=bt709,catanet_xs=model=$M" \
    -f null - > "$TMP/bt709.log" 2>&1
rc=$?
check "transfer bt709 (SDR): runs without a warning (exit $rc)" sh -c "[ $rc = 0 ] && ! grep -q HDR '$TMP/bt709.log'"

# the output format as the next filter sees it (showinfo): the input's
outfmt() { # outfmt PIXFMT: the pix_fmt showinfo reports after catanet_xs
    "$FF" -nostdin -hide_banner -v info -lavfi "$src,format=$1,catanet_xs=model=$M:cpu_threads=1,showinfo" -f null - 2>&1 |
        sed -n 's/.*Parsed_showinfo.* fmt:\([a-z0-9]*\) .*/\1/p' | head -n 1
}
for f in yuv422p10le yuv422p yuvj422p yuv422p12le yuva420p gbrap; do
    got=$(outfmt $f)
    check "$f in, $f out (got '$got')" [ "$got" = $f ]
done
got=$(outfmt rgba)
check "rgba in: gbrap out (alpha kept through the closest format with alpha; got '$got')" [ "$got" = gbrap ]

# alpha: testsrc2's alpha=128 comes out 128 everywhere in the upscaled alpha plane, and the colour
# planes are those of the same frame without alpha
W=32 H=24
ff -lavfi "$src:alpha=128,format=yuva420p,catanet_xs=model=$M:cpu_threads=1" -f rawvideo -pix_fmt yuva420p "$TMP/a.raw"
ff -lavfi "$src,format=yuv420p,catanet_xs=model=$M:cpu_threads=1" -f rawvideo -pix_fmt yuv420p "$TMP/c.raw"
csize=$((W * H * 3 / 2))
na=$(tail -c $((W * H)) "$TMP/a.raw" | od -An -v -tu1 | tr -s ' ' '\n' | grep -c '^128$')
check "yuva420p: $W x $H alpha plane is 128 at $na of $((W * H)) pixels; the colour planes equal yuv420p's" \
    sh -c "[ \$(wc -c < '$TMP/a.raw') = $((csize + W * H)) ] && [ $na = $((W * H)) ] &&
           head -c $csize '$TMP/a.raw' | cmp -s - '$TMP/c.raw'"
ff -lavfi "$src:alpha=64,format=rgba,catanet_xs=model=$M:cpu_threads=1" -f rawvideo -pix_fmt rgba "$TMP/rgba.raw"
na=$(od -An -v -tu1 -w4 "$TMP/rgba.raw" | awk '$4 == 64' | wc -l)
check "rgba: alpha 64 kept at $na of $((W * H)) pixels" [ "$na" = $((W * H)) ]

# the engine's log level follows FFmpeg's
for v in debug verbose info; do
    "$FF" -nostdin -hide_banner -v $v -lavfi "$src,format=yuv420p,catanet_xs=model=$M:cpu_threads=1" -f null - \
        > "$TMP/log.$v" 2>&1
done
line="libcatanet: catanet: $M on CPU (fp32): x2"
check "-v debug shows the engine's INFO line ('$line')" grep -qF "$line" "$TMP/log.debug"
check "-v verbose shows it too" grep -qF "$line" "$TMP/log.verbose"
check "-v info does not" sh -c "! grep -qF 'libcatanet: catanet:' '$TMP/log.info' && [ -s '$TMP/log.info' ]"
finish
