#!/bin/sh
# The patched ffmpeg's catanet_xs on the CPU: registered with its options; framemd5
# deterministic (run twice, 1 and 2 threads); cpu_threads really sets the network's threads (counted
# in /proc/PID/task of every built ffmpeg: 5.1, and 7.1 and 9.0 when built, each also giving the
# same frames); output size 2x, SAR kept; rgb24 output equal,
# byte for byte, to catanet-upscale on the same frames; timeline (enable=) keeps the size
# and uses bicubic while disabled, the network while enabled.
. tests/ffmpeg_lib.sh
need_ffmpeg
M=$MODEL

# registered, with every documented option
ff -filters > "$TMP/filters" 2>&1
check "catanet_xs is registered (ffmpeg -filters)" grep -q ' catanet_xs  *V->V ' "$TMP/filters"
"$FF" -hide_banner -h filter=catanet_xs > "$TMP/help" 2>&1
ok=1
for o in model device gpu precision cpu_threads tile matrix nonfinite hdr; do
    grep -q "^   $o " "$TMP/help" || { ok=0; echo "option $o missing from -h filter=catanet_xs"; }
done
grep -q "support for timeline" "$TMP/help" || ok=0
check "ffmpeg -h filter=catanet_xs documents model, device, gpu, precision, cpu_threads, tile, matrix, nonfinite, hdr, timeline" [ $ok = 1 ]

# deterministic: the output does not depend on the run or on the thread count (by design; whether
# the thread count takes effect at all is counted below)
src="testsrc2=size=32x24:rate=5:duration=0.4,format=yuv420p"
ff -lavfi "$src,catanet_xs=model=$M:cpu_threads=2" -bitexact -f framemd5 "$TMP/a.md5"
ff -lavfi "$src,catanet_xs=model=$M:cpu_threads=2" -bitexact -f framemd5 "$TMP/b.md5"
ff -lavfi "$src,catanet_xs=model=$M:cpu_threads=1" -bitexact -f framemd5 "$TMP/c.md5"
n=$(hashes "$TMP/a.md5" | wc -l)
check "framemd5 deterministic: 2 runs and 1 vs 2 threads give the same $n frame hashes" \
    sh -c "[ $n = 2 ] && cmp -s '$TMP/a.md5' '$TMP/b.md5' && cmp -s '$TMP/a.md5' '$TMP/c.md5'"

check "output is 2x: 32x24 -> 64x48" grep -q '^#dimensions 0: 64x48$' "$TMP/a.md5"

# the other FFmpeg builds, when they were made (7.1, 9.0), up to date
find_others

# each of them gives the same frames
for name in $others; do
    "$B/$name/ffmpeg" -nostdin -hide_banner -v error -y -lavfi "$src,catanet_xs=model=$M:cpu_threads=2" -bitexact \
        -f framemd5 "$TMP/$name.md5"
    hn=$(hashes "$TMP/$name.md5" | tr '\n' ' ')
    ho=$(hashes "$TMP/a.md5" | tr '\n' ' ')
    check "FFmpeg $(cat "$B/$name/.catanet-version") ($B/$name) gives the frame hashes of FFmpeg $(cat "$B/ffmpeg/.catanet-version")" \
        [ -n "$hn" -a "$hn" = "$ho" ]
done

# cpu_threads takes effect: the threads the process really has, counted while it runs (-re: 2 s of
# frames at their rate, so the network's OpenMP team, which lives from the first frame to the exit,
# is seen), on every FFmpeg built here. 2 threads are one more than 1; 0 (all cores) is nproc - 1
# more than 1. Everything else in the command line is the same, so FFmpeg's own threads cancel.
ncpu=$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc)
for name in ffmpeg $others; do
    counts= rcs=
    for t in 1 2 0; do
        counts="$counts $(peak_threads "$B/$name/ffmpeg" -re -f lavfi -i "testsrc2=size=16x12:rate=10:duration=2,format=yuv420p" \
            -vf "catanet_xs=model=weights/catanet_xs_x2.safetensors:cpu_threads=$t" -f null -)"
        rcs="$rcs $(cat "$TMP/peak.rc")"
    done
    set -- $counts
    check "FFmpeg $(cat "$B/$name/.catanet-version"): cpu_threads=1, 2, 0 run with $1, $2, $3 threads in all (want 2 = 1 + 1, 0 = 1 + $ncpu - 1; exits$rcs)" \
        [ "$rcs" = " 0 0 0" -a $(($2 - $1)) = 1 -a $(($3 - $1)) = $((ncpu - 1)) ]
    # and the generic threads= (which used to take the value silently) and cpu_threads=5000 are refused
    "$B/$name/ffmpeg" -nostdin -hide_banner -v error -lavfi "$src,catanet_xs=model=$M:threads=2" -f null - \
        > "$TMP/gen.log" 2>&1
    rg=$?
    "$B/$name/ffmpeg" -nostdin -hide_banner -v error -lavfi "$src,catanet_xs=model=$M:cpu_threads=5000" -f null - \
        > "$TMP/big.log" 2>&1
    rb=$?
    check "FFmpeg $(cat "$B/$name/.catanet-version"): threads=2 refused naming cpu_threads (exit $rg), cpu_threads=5000 refused (exit $rb)" \
        sh -c "[ $rg != 0 ] && [ $rb != 0 ] && grep -q 'use; set the network.s CPU threads with cpu_threads=N' '$TMP/gen.log' && grep -q \"'cpu_threads' out of range\" '$TMP/big.log'"
done

ff -lavfi "testsrc2=size=18x12:rate=5:duration=0.2,setsar=4/3,format=yuv420p,catanet_xs=model=$M" -bitexact \
    -f framemd5 "$TMP/sar.md5"
check "SAR 4/3 passes through, 18x12 -> 36x24" \
    sh -c "grep -q '^#sar 0: 4/3$' '$TMP/sar.md5' && grep -q '^#dimensions 0: 36x24$' '$TMP/sar.md5'"

# rgb24: the filter and catanet-upscale on the same two frames, byte for byte
UP=$B/tools/catanet-upscale
if [ -x "$UP" ]; then
    ff -lavfi "testsrc2=size=32x24:rate=5:duration=0.4,format=rgb24" -f image2 "$TMP/in%d.png"
    ff -lavfi "testsrc2=size=32x24:rate=5:duration=0.4,format=rgb24,catanet_xs=model=$M" -f rawvideo "$TMP/ff.rgb"
    : > "$TMP/tool.rgb"
    for i in 1 2; do
        "$UP" -m "$M" -d cpu "$TMP/in$i.png" "$TMP/out$i.png" 2> "$TMP/up.log" || cat "$TMP/up.log"
        ff -i "$TMP/out$i.png" -f rawvideo -pix_fmt rgb24 - >> "$TMP/tool.rgb"
    done
    check "rgb24: catanet_xs output equals catanet-upscale on the same 2 frames ($(wc -c < "$TMP/ff.rgb") bytes)" \
        sh -c "[ -s '$TMP/ff.rgb' ] && cmp '$TMP/ff.rgb' '$TMP/tool.rgb'"
else
    fail "rgb24 vs catanet-upscale: $UP is not built (make all)"
fi

# timeline: enabled for frame 1 only; frames 0 and 2 are bicubic at the same size
src="testsrc2=size=32x24:rate=5:duration=0.6,format=yuv420p"
ff -lavfi "$src,catanet_xs=model=$M:enable='eq(n,1)'" -bitexact -f framemd5 "$TMP/tl.md5"
ff -lavfi "$src,catanet_xs=model=$M" -bitexact -f framemd5 "$TMP/net.md5"
ff -lavfi "$src,scale=64:48:flags=bicubic+accurate_rnd+bitexact" -bitexact -f framemd5 "$TMP/bic.md5"
tl=$(hashes "$TMP/tl.md5" | tr '\n' ' ')
net=$(hashes "$TMP/net.md5" | tr '\n' ' ')
bic=$(hashes "$TMP/bic.md5" | tr '\n' ' ')
set -- $tl; t0=$1 t1=$2 t2=$3
set -- $net; n0=$1 n1=$2
set -- $bic; b0=$1 b2=$3
sizes=$(grep -v '^#' "$TMP/tl.md5" | awk -F, '{ print $5 }' | sort -u | wc -l)
check "timeline enable='eq(n,1)': 3 frames of one size (64x48), frame 1 from the network, 0 and 2 bicubic" \
    sh -c "grep -q '^#dimensions 0: 64x48$' '$TMP/tl.md5' && [ $sizes = 1 ] && [ '$t1' = '$n1' ] && [ '$t0' = '$b0' ] && [ '$t2' = '$b2' ] && [ '$t0' != '$n0' ]"
finish
