#!/bin/sh
# catanet_xs in live use: a resolution change mid-stream (concat demuxer: the graph is
# re-created and the cached engine is reused, not reloaded); loopback TCP and UDP streaming
# (one ffmpeg upscales and sends MPEG-TS, another receives: every frame arrives at 2x); and
# latency: frames fed one at a time through a FIFO come out exactly as early as with the
# null filter (the ffmpeg CLI itself holds one frame; the filter must add none).
. tests/ffmpeg_lib.sh
need_ffmpeg
M=$MODEL

# resolution change, graph re-created: both sizes come out, the engine is reused
ff -lavfi "testsrc2=size=16x12:rate=5:duration=0.4" -c:v png "$TMP/a.nut"
ff -lavfi "testsrc2=size=12x8:rate=5:duration=0.4" -c:v png "$TMP/b.nut"
printf "file '%s'\nfile '%s'\n" "$TMP/a.nut" "$TMP/b.nut" > "$TMP/list.txt"
"$FF" -nostdin -hide_banner -v verbose -f concat -safe 0 -i "$TMP/list.txt" \
    -vf "catanet_xs=model=$M:cpu_threads=1,showinfo" -f null - > "$TMP/concat.log" 2>&1
rc=$?
big=$(grep -c 'showinfo.* s:32x24 ' "$TMP/concat.log")
small=$(grep -c 'showinfo.* s:24x16 ' "$TMP/concat.log")
reuse=$(grep -c 'reusing the cached engine' "$TMP/concat.log")
check "size change via concat: 2 frames 32x24 then 2 frames 24x16 (got $big, $small), engine reused ($reuse) not reloaded" \
    sh -c "[ $rc = 0 ] && [ $big = 2 ] && [ $small = 2 ] && [ $reuse -ge 1 ]"

# loopback streaming: sender upscales and streams MPEG-TS, receiver counts the frames
if ! "$FF" -hide_banner -encoders 2>/dev/null | grep -q ' libx264 '; then
    fail "loopback streaming: $FF has no libx264 (tools/install-deps.sh installs libx264-dev; rebuild FFmpeg)"
fi
port=$((20000 + $$ % 20000))
send_src="testsrc2=size=32x24:rate=10:duration=1,format=yuv420p,catanet_xs=model=$M:cpu_threads=1"
enc="-c:v libx264 -preset ultrafast -tune zerolatency -g 10 -bf 0 -f mpegts"
for proto in tcp udp; do
    if [ $proto = tcp ]; then
        in_url="tcp://127.0.0.1:$port?listen=1&listen_timeout=60000"
        out_url="tcp://127.0.0.1:$port"
    else
        in_url="udp://127.0.0.1:$port?timeout=4000000&fifo_size=100000"
        out_url="udp://127.0.0.1:$port?pkt_size=1316"
    fi
    "$FF" -nostdin -hide_banner -v error -y -i "$in_url" -f framemd5 "$TMP/rx_$proto.md5" 2> "$TMP/rx_$proto.log" &
    rx=$!
    sleep 1
    # shellcheck disable=SC2086
    ff -lavfi "$send_src" $enc "$out_url" 2> "$TMP/tx_$proto.log"
    txrc=$?
    wait $rx
    n=$(hashes "$TMP/rx_$proto.md5" 2>/dev/null | wc -l)
    check "loopback $proto: sender ok ($txrc), receiver got $n of 10 frames at 64x48" \
        sh -c "[ $txrc = 0 ] && [ $n = 10 ] && grep -q '^#dimensions 0: 64x48$' '$TMP/rx_$proto.md5'"
    port=$((port + 1))
done

# latency: feed raw frames one by one through a FIFO. The ffmpeg CLI itself may hold one frame
# (whether it does depends on timing), so after input frame i (0-based) at least i frames must
# have come out; a filter that holds a frame of its own falls one short and never catches up,
# however long it waits. tblend (which needs the next frame) is the control that the test can fail.
ff -lavfi "testsrc2=size=16x12:rate=5:duration=0.8,format=rgb24" -f rawvideo "$TMP/frames.rgb"
# latency_run FILTER BYTES_PER_OUTPUT_FRAME WAIT_LIMIT_DECISECONDS: prints the count after each input
latency_run() {
    rm -f "$TMP/in.fifo" "$TMP/out.raw"
    mkfifo "$TMP/in.fifo"
    "$FF" -nostdin -v error -y -probesize 32 -analyzeduration 0 -fpsprobesize 0 -f rawvideo -pix_fmt rgb24 \
        -s 16x12 -framerate 5 -i "$TMP/in.fifo" -vf "$1" -fps_mode passthrough -f rawvideo -flush_packets 1 \
        "$TMP/out.raw" 2> "$TMP/lat.log" &
    lp=$!
    exec 3> "$TMP/in.fifo"
    counts=
    for i in 0 1 2 3; do
        dd if="$TMP/frames.rgb" bs=576 skip=$i count=1 status=none >&3
        t=0
        while [ $(( $(stat -c %s "$TMP/out.raw" 2>/dev/null || echo 0) / $2 )) -lt $i ] && [ $t -lt $3 ]; do
            sleep 0.1
            t=$((t + 1))
        done
        counts="$counts$(( $(stat -c %s "$TMP/out.raw" 2>/dev/null || echo 0) / $2 )) "
    done
    exec 3>&-
    wait $lp
    echo "$counts"
}
at_least() { # at_least "c0 c1 c2 c3": true when c_i >= i for every i
    i=0
    for c in $1; do [ "$c" -ge $i ] || return 1; i=$((i + 1)); done
}
cat=$(latency_run "catanet_xs=model=$M:cpu_threads=1" 2304 1200)
check "latency: after input frame i at least i output frames (the CLI holds at most one): catanet_xs [$cat]" at_least "$cat"
ctl=$(latency_run tblend 576 30)
if at_least "$ctl"; then fail "latency control: tblend, which holds a frame, was not caught [$ctl]"
else pass "latency control: tblend, which holds a frame, is caught [$ctl]"; fi
finish
