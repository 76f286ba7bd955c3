#!/bin/sh
# catanet_xs with a model whose output overflows (the shipped XS model with every weight matrix
# scaled by 1e12: finite weights, NaN/Inf output). Without the library's non-finite check such a
# model gave all-zero frames and exit 0. Default (nonfinite=fail): ffmpeg fails (5.1, and 7.1 and
# 9.0 when built), the message names the frame and the cause. nonfinite=bicubic: exit 0, every frame equals the bicubic upscale of the
# input, one warning per frame with the running count, and the total when the filter closes. The
# control: the unscaled model with nonfinite=bicubic gives the network's frames and no warning.
# Needs python3 (stdlib) to write the scaled model.
. tests/ffmpeg_lib.sh
need_ffmpeg
XS=weights/catanet_xs_x2.safetensors
command -v python3 > /dev/null || { fail "python3 is needed to write the overflowing model"; finish; }

# every F32 *.weight tensor times FACTOR; header, other tensors and metadata unchanged
python3 - "$XS" "$TMP/over.safetensors" 1e12 <<'PY' || { fail "writing the overflowing model"; finish; }
import array, json, struct, sys
src, dst, factor = sys.argv[1], sys.argv[2], float(sys.argv[3])
with open(src, 'rb') as f:
    n = struct.unpack('<Q', f.read(8))[0]
    head = f.read(n)
    data = bytearray(f.read())
scaled = 0
for name, t in json.loads(head).items():
    if name == '__metadata__' or t['dtype'] != 'F32' or not name.endswith('.weight'):
        continue
    a, b = t['data_offsets']
    v = array.array('f', bytes(data[a:b]))
    if sys.byteorder == 'big':
        v.byteswap()
    v = array.array('f', [x * factor for x in v])
    if sys.byteorder == 'big':
        v.byteswap()
    data[a:b] = v.tobytes()
    scaled += 1
assert scaled > 0
with open(dst, 'wb') as f:
    f.write(struct.pack('<Q', n) + head + bytes(data))
PY

src="testsrc2=size=16x12:rate=5:duration=0.6,format=yuv420p"

# default: fail, naming the frame and the cause, on every FFmpeg built here. The frames come from an
# input (-f lavfi -i), not from a source inside the graph: FFmpeg 5.1's ffmpeg ends a graph fed by
# sources alone at a filter's error but exits 0 all the same (fftools/ffmpeg.c, transcode()).
find_others
for name in ffmpeg $others; do
    v=$(cat "$B/$name/.catanet-version")
    "$B/$name/ffmpeg" -nostdin -hide_banner -v error -y -f lavfi -i "$src" \
        -vf "catanet_xs=model=$TMP/over.safetensors:cpu_threads=1" -f framemd5 "$TMP/fail.md5" > "$TMP/fail.log" 2>&1
    rc=$?
    if [ $rc != 0 ] && grep -q "frame 0: the network's output holds NaN or Inf" "$TMP/fail.log"; then
        pass "FFmpeg $v, overflowing model, nonfinite=fail (default): exit $rc, frame 0 and the cause named"
    else
        fail "FFmpeg $v, overflowing model, nonfinite=fail (default): exit $rc, wanted non-zero and \"frame 0: the network's output holds NaN or Inf\""
        sed 's/^/    /' "$TMP/fail.log" | head -n 5
    fi
done

# nonfinite=bicubic: the input passed through bicubic, logged per frame and counted
"$FF" -nostdin -hide_banner -v warning -y -f lavfi -i "$src" \
    -vf "catanet_xs=model=$TMP/over.safetensors:cpu_threads=1:nonfinite=bicubic" -bitexact \
    -f framemd5 "$TMP/bic.md5" > "$TMP/bic.log" 2>&1
rc=$?
ff -lavfi "$src,scale=32:24:flags=bicubic+accurate_rnd+bitexact" -bitexact -f framemd5 "$TMP/ref.md5"
got=$(hashes "$TMP/bic.md5" | tr '\n' ' ')
want=$(hashes "$TMP/ref.md5" | tr '\n' ' ')
nwarn=$(grep -c "the network's output holds NaN or Inf; passing the input through bicubic instead" "$TMP/bic.log")
if [ $rc = 0 ] && [ -n "$want" ] && [ "$got" = "$want" ] && [ "$nwarn" = 3 ] &&
    grep -q "frame 2: .*(3 such frames so far)" "$TMP/bic.log" &&
    grep -q "3 of 3 frames had non-finite network output" "$TMP/bic.log"; then
    pass "overflowing model, nonfinite=bicubic: exit 0, the 3 frames are the bicubic upscale, 3 warnings and the total"
else
    fail "overflowing model, nonfinite=bicubic: exit $rc, $nwarn warnings (want 3), frames ${got:-none} (want bicubic's $want)"
    sed 's/^/    /' "$TMP/bic.log" | head -n 5
fi

# control: a sound model with nonfinite=bicubic is the network, untouched, and silent
"$FF" -nostdin -hide_banner -v warning -y -f lavfi -i "$src" -vf "catanet_xs=model=$XS:cpu_threads=1:nonfinite=bicubic" \
    -bitexact -f framemd5 "$TMP/ok.md5" > "$TMP/ok.log" 2>&1
rc=$?
ff -lavfi "$src,catanet_xs=model=$XS:cpu_threads=1" -bitexact -f framemd5 "$TMP/net.md5"
ok=$(hashes "$TMP/ok.md5" | tr '\n' ' ')
net=$(hashes "$TMP/net.md5" | tr '\n' ' ')
check "control: the shipped model with nonfinite=bicubic gives the network's 3 frames (not bicubic's) and no warning (exit $rc)" \
    [ $rc = 0 -a -n "$net" -a "$ok" = "$net" -a "$ok" != "$want" -a ! -s "$TMP/ok.log" ]
finish
