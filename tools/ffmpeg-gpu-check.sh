#!/bin/sh
# ffmpeg-gpu-check.sh: the catanet_xs checks that need a GPU, for a machine that has one.
#
#   tools/ffmpeg-gpu-check.sh --stage     (here) copy what the GPU machine lacks into
#       build/gpu-carry/ffmpeg (about 15 MB): the FFmpeg source tarball this build uses, the
#       ffnvcodec headers, three clips (1080p, 576p, CIF); carry build/gpu-carry with the run.
#   tools/ffmpeg-gpu-check.sh OUTDIR      (there, after tools/gpu-check.sh built the CUDA
#       libcatanet in build/gpu) build FFmpeg 5.1 with catanet_xs and CUDA frames against it,
#       then check: software frames on device=cuda against device=cpu (PSNR), CUDA frames
#       (hwupload_cuda nv12, p010, yuv444p) against software frames on the GPU, and the
#       NVDEC -> catanet_xs -> NVENC pipeline's fps at 1080p input (2160p output) and at 540p
#       input (1080p output), then make regress's figures on the staged clips (tools/regress.py,
#       whole frames on cuda). OUTDIR/ffmpeg-gpu.txt gets one verdict line per check,
#       OUTDIR/ffmpeg-gpu.jsonl the fps lines, OUTDIR/regress.txt and OUTDIR/regress/ the regress run.
# Environment: GPU_CHECK_BUILDDIR (build/gpu), FFMPEG_GPU_BUDGET (seconds, default 420), REGRESS_BASELINE.
cd "$(dirname "$0")/.." || exit 1
CARRY=build/gpu-carry/ffmpeg
if [ "$1" = "--stage" ]; then
    # staged in a new folder that replaces the old stage only when complete: a failed stage leaves
    # the previous one as it was
    pkg-config --exists ffnvcodec ||
        { echo "ffmpeg-gpu-check --stage: no ffnvcodec headers here (tools/install-deps.sh --ffmpeg installs them)" >&2; exit 1; }
    NEW=$CARRY.new
    rm -rf "$NEW" && mkdir -p "$NEW/ffnvcodec/include" || exit 1
    orig=$(ls build/ffmpeg-src-default/ffmpeg_5.1*.orig.tar.xz 2>/dev/null | head -n 1)
    [ -n "$orig" ] || { sh tools/ffmpeg-fetch.sh build > /dev/null && orig=$(ls build/ffmpeg-src-default/ffmpeg_5.1*.orig.tar.xz | head -n 1); }
    cp "$orig" "$NEW/" || exit 1
    cp -r "$(pkg-config --variable=includedir ffnvcodec)/ffnvcodec" "$NEW/ffnvcodec/include/" || exit 1
    sed 's|^prefix=.*|prefix=@PREFIX@|' "$(pkg-config --variable=pcfiledir ffnvcodec)/ffnvcodec.pc" > "$NEW/ffnvcodec/ffnvcodec.pc.in" || exit 1
    SH=${CATANET_SHARED:-../shared}
    # the clips of make regress on the GPU (tools/regress.py, whole frames): 1080p, CIF, 576p
    mkdir -p "$NEW/clips" && for c in openh264_street_1080p.264 openh264_foreman_cif.mp4 mecavideo_balle_720x576.mp4; do
        cp "$SH/data/video/$c" "$NEW/clips/" || exit 1
    done
    rm -rf "$CARRY" && mv "$NEW" "$CARRY" || exit 1
    echo "ffmpeg-gpu-check --stage: $(du -sh "$CARRY" | cut -f1) in $CARRY"
    exit 0
fi
OUT=${1:?usage: tools/ffmpeg-gpu-check.sh OUTDIR | --stage}
mkdir -p "$OUT"
B=${GPU_CHECK_BUILDDIR:-build/gpu}
deadline=$(( $(date +%s) + ${FFMPEG_GPU_BUDGET:-420} ))
SUM=$OUT/ffmpeg-gpu.txt
: > "$SUM"
say() { echo "$*" | tee -a "$SUM"; }
left() { echo $(( deadline - $(date +%s) )); }

[ -f "$B/libcatanet.a" ] && grep -q 'HAVE_CUDA = 1' "$B/config.mk" ||
    { say "FAIL setup: no CUDA libcatanet in $B (run tools/gpu-check.sh first)"; exit 1; }
[ -d "$CARRY" ] || { say "FAIL setup: $CARRY missing (run --stage here and carry build/gpu-carry)"; exit 1; }
# the FFmpeg source and ffnvcodec from the carry
mkdir -p "$B/ffmpeg-src-default"
ls -d "$B"/ffmpeg-src-default/ffmpeg-5.1*/ > /dev/null 2>&1 || tar xJf "$CARRY"/ffmpeg_5.1*.orig.tar.xz -C "$B/ffmpeg-src-default" ||
    { say "FAIL setup: cannot unpack the FFmpeg tarball (xz installed?)"; exit 1; }
NV=$(pwd)/$B/ffnvcodec
mkdir -p "$NV/lib/pkgconfig" && cp -r "$CARRY/ffnvcodec/include" "$NV/" &&
    sed "s|@PREFIX@|$NV|" "$CARRY/ffnvcodec/ffnvcodec.pc.in" > "$NV/lib/pkgconfig/ffnvcodec.pc"
# the deps gpu-check unpacked, if it needed them
[ -d /tmp/catanet-deps/deps ] && export CPATH="/tmp/catanet-deps/deps/include${CPATH:+:$CPATH}" \
    LIBRARY_PATH="/tmp/catanet-deps/deps/lib${LIBRARY_PATH:+:$LIBRARY_PATH}" \
    LD_LIBRARY_PATH="/tmp/catanet-deps/deps/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
start=$(date +%s)
if PKG_CONFIG_PATH="$NV/lib/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}" FFMPEG_JOBS=$(nproc) \
        timeout $(left) sh tools/ffmpeg-build.sh "$B" ffmpeg > "$OUT/ffmpeg-build.log" 2>&1; then
    say "PASS build: FFmpeg $(cat "$B"/ffmpeg-src-default/ffmpeg-5.1*/RELEASE) with catanet_xs in $(( $(date +%s) - start )) s"
else
    say "FAIL build: $(tail -n 3 "$OUT/ffmpeg-build.log" | tr '\n' ' ')"
    exit 1
fi
grep -q 'define CONFIG_CUDA 1' "$B/ffmpeg/config.h" || say "FAIL build: FFmpeg has no CUDA (ffnvcodec not found)"
[ -x "$B/ffmpeg/ffmpeg" ] || { say "FAIL build: no $B/ffmpeg/ffmpeg"; exit 1; }
FF="$B/ffmpeg/ffmpeg -nostdin -hide_banner -y"
M=$(ls build/gpu-carry/shared/reference/catanet/weights_x2_trained.safetensors ../shared/reference/catanet/weights_x2_trained.safetensors 2>/dev/null | head -n 1)
[ -f weights/catanet_xs_x2.safetensors ] && M=weights/catanet_xs_x2.safetensors
T=$OUT/tmp
mkdir -p "$T"

# psnr A B: average PSNR of two raw-decodable files
psnr() { $FF -v info -i "$1" -i "$2" -lavfi "[0:v][1:v]psnr" -f null - 2>&1 | sed -n 's/.*average:\([0-9.inf]*\).*/\1/p' | tail -n 1; }

src="testsrc2=size=128x96:rate=10:duration=0.3"
# 1. software frames: GPU vs CPU
$FF -v error -lavfi "$src,format=yuv420p,catanet_xs=model=$M:device=cpu" -c:v ffv1 "$T/cpu.mkv" 2> "$T/e1" &&
$FF -v error -lavfi "$src,format=yuv420p,catanet_xs=model=$M:device=cuda" -c:v ffv1 "$T/gpu.mkv" 2>> "$T/e1" &&
$FF -v error -lavfi "$src,format=yuv420p,catanet_xs=model=$M:device=cuda:precision=fp32" -c:v ffv1 "$T/gpu32.mkv" 2>> "$T/e1"
if [ $? = 0 ]; then
    p16=$(psnr "$T/gpu.mkv" "$T/cpu.mkv") p32=$(psnr "$T/gpu32.mkv" "$T/cpu.mkv")
    v=$(echo "$p16 $p32" | awk '{ print ($1 == "inf" || $1 >= 40) && ($2 == "inf" || $2 >= 50) ? "PASS" : "FAIL" }')
    say "$v sw-frames: device=cuda vs device=cpu, yuv420p 128x96: PSNR fp16 $p16 dB (>= 40), fp32 $p32 dB (>= 50)"
else
    say "FAIL sw-frames: $(head -n 3 "$T/e1" | tr '\n' ' ')"
fi
# 2. CUDA frames: hwupload_cuda -> catanet_xs -> hwdownload against software frames on the GPU
for f in nv12 p010le yuv444p; do
    $FF -v error -init_hw_device cuda=cu:0 -filter_hw_device cu \
        -lavfi "$src,format=$f,hwupload_cuda,catanet_xs=model=$M,hwdownload,format=$f" -c:v ffv1 "$T/hw_$f.mkv" 2> "$T/e2" &&
    $FF -v error -lavfi "$src,format=$f,catanet_xs=model=$M:device=cuda" -c:v ffv1 "$T/sw_$f.mkv" 2>> "$T/e2"
    if [ $? = 0 ]; then
        p=$(psnr "$T/hw_$f.mkv" "$T/sw_$f.mkv")
        v=$(echo "$p" | awk '{ print ($1 == "inf" || $1 >= 45) ? "PASS" : "FAIL" }')
        say "$v cuda-frames $f: hwupload_cuda,catanet_xs,hwdownload vs software frames on the GPU: PSNR $p dB (>= 45)"
    else
        say "FAIL cuda-frames $f: $(head -n 3 "$T/e2" | tr '\n' ' ')"
    fi
done
# 3. fps, never leaving the GPU: NVDEC -> catanet_xs -> NVENC
clip=$CARRY/clips/openh264_street_1080p.264
[ -f "$clip" ] || clip=../shared/data/video/openh264_street_1080p.264
fps_run() { # $1 name, $2 frames, then ffmpeg args: prints a JSON line
    name=$1 n=$2; shift 2
    s=$(date +%s.%N)
    timeout $(left) $FF -v error "$@" > "$T/fps.log" 2>&1
    rc=$?
    e=$(date +%s.%N)
    if [ $rc = 0 ]; then
        echo "$name $n $s $e" | awk '{ printf "{\"run\":\"%s\",\"frames\":%d,\"seconds\":%.2f,\"fps\":%.2f}\n", $1, $2, $4 - $3, $2 / ($4 - $3) }' | tee -a "$OUT/ffmpeg-gpu.jsonl"
    else
        echo "{\"run\":\"$name\",\"error\":\"$(head -n 1 "$T/fps.log" | tr -d '"\\')\"}" | tee -a "$OUT/ffmpeg-gpu.jsonl"
    fi
}
: > "$OUT/ffmpeg-gpu.jsonl"
l=$(fps_run nvdec-1080p-in-2160p-out-nvenc 54 -hwaccel cuda -hwaccel_output_format cuda -r 25 -i "$clip" \
    -vf "catanet_xs=model=$M" -c:v h264_nvenc -preset p1 -f null -)
say "INFO fps 1080p->2160p (NVDEC, CUDA frames, NVENC): $l"
l=$(fps_run sw540p-1080p-out-nvenc 54 -init_hw_device cuda=cu:0 -filter_hw_device cu -r 25 -i "$clip" \
    -vf "scale=960:540,format=nv12,hwupload_cuda,catanet_xs=model=$M" \
    -c:v h264_nvenc -preset p1 -f null -)
say "INFO fps 540p->1080p (software decode+scale, CUDA frames, NVENC): $l"
l=$(fps_run sw-frames-540p-1080p-nvenc 54 -r 25 -i "$clip" -vf "scale=960:540,catanet_xs=model=$M:device=cuda" \
    -c:v h264_nvenc -preset p1 -f null -)
say "INFO fps 540p->1080p (software frames through the GPU engine, NVENC): $l"
# 4. make regress on the GPU (tools/regress.py): whole frames of the staged clips (60 frames each) on
#    cuda; the figures in OUT/regress.txt, the HTML report and JSON in OUT/regress/. A baseline of this
#    GPU and machine is compared with when REGRESS_BASELINE names one (no baseline: figures only).
if ! nvidia-smi -L > /dev/null 2>&1; then
    say "SKIP regress: no NVIDIA GPU (nvidia-smi -L)"
elif ! python3 -c 'import numpy' 2> /dev/null; then
    say "SKIP regress: python3 with numpy is missing"
else
    timeout $(left) python3 tools/regress.py --build "$B" --model "$M" --clips "$CARRY/clips" --full 1 --devices cuda \
        --frames-cuda 60 --out "$OUT/regress" > "$OUT/regress.txt" 2>&1
    rc=$?
    case $rc in
    0) v=PASS ;;
    1) v="FAIL (a regression against $REGRESS_BASELINE)" ;;
    3) v="FAIL (the baseline $REGRESS_BASELINE is of another machine or GPU)" ;;
    124|137) v="FAIL (out of time)" ;;
    *) v="FAIL (exit $rc: $(grep '^regress:' "$OUT/regress.txt" | tail -n 2 | tr '\n' ' '))" ;;
    esac
    say "$v regress: whole frames of $CARRY/clips on cuda, OUT/regress/report.html"
    grep -E ' (fps|catanet|bicubic) ' "$OUT/regress.txt" | sed 's/^/INFO regress /' >> "$SUM"
fi
grep -q '^FAIL' "$SUM" && exit 1
exit 0
