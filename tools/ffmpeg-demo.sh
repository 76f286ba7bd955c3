#!/bin/sh
# make demo: upscale the bundled clip with catanet_xs and compare with bicubic.
#
# Usage: tools/ffmpeg-demo.sh BUILDDIR MODEL CLIP
#   The clip is first reduced to the "original" (DEMO_HR, default 640x360 on the CPU,
#   the clip's own size when a CUDA GPU is present) and downscaled 2x (bicubic) to the
#   low-resolution input; that input is upscaled by catanet_xs (ffmpeg -vf catanet_xs,
#   H.264 output, fps printed) and by bicubic; PSNR and SSIM of both against the original
#   are printed, and BUILDDIR/demo/side_by_side.png shows one frame: bicubic | catanet_xs.
#   DEMO_FRAMES (default 5 on the CPU, 60 with a GPU) frames are used.
set -e
B=${1:?usage: tools/ffmpeg-demo.sh BUILDDIR MODEL CLIP}
MODEL=${2:?}
CLIP=${3:?}
FF=$B/ffmpeg/ffmpeg
D=$B/demo
if [ ! -f "$MODEL" ]; then
    echo "make demo: the model $MODEL is missing." >&2
    echo "  It is the trained CATANet-XS x2 model that the training module commits to weights/;" >&2
    echo "  until it is there, run with another model: make demo CATANET_MODEL=path/to/model.safetensors" >&2
    exit 1
fi
[ -f "$CLIP" ] || { echo "make demo: the clip $CLIP is missing" >&2; exit 1; }
[ -x "$FF" ] || { echo "make demo: $FF is not built (make ffmpeg)" >&2; exit 1; }
mkdir -p "$D"
gpu=0
command -v nvidia-smi > /dev/null 2>&1 && nvidia-smi -L > /dev/null 2>&1 && gpu=1
if [ $gpu = 1 ]; then
    hr=${DEMO_HR:-$("$B/ffmpeg/ffprobe" -v error -select_streams v:0 -show_entries stream=width,height \
        -of csv=s=x:p=0 "$CLIP")}
    frames=${DEMO_FRAMES:-60}
else
    hr=${DEMO_HR:-640x360}
    frames=${DEMO_FRAMES:-5}
fi
w=${hr%x*} h=${hr#*x}
lw=$((w / 2)) lh=$((h / 2))
w=$((lw * 2)) h=$((lh * 2))
ffq() { "$FF" -nostdin -hide_banner -v error -y "$@"; }

echo "demo: $CLIP, $frames frames; original ${w}x${h}, downscaled 2x (bicubic) to ${lw}x${lh}, upscaled back"
[ $gpu = 0 ] && echo "demo: no GPU: CPU run with few frames at a reduced size (DEMO_FRAMES, DEMO_HR to change)"
ffq -i "$CLIP" -an -frames:v "$frames" -vf "scale=$w:$h:flags=lanczos+accurate_rnd" -c:v ffv1 "$D/original.mkv"
ffq -i "$D/original.mkv" -vf "scale=$lw:$lh:flags=bicubic+accurate_rnd" -c:v ffv1 "$D/input.mkv"
ffq -i "$D/input.mkv" -vf "scale=$w:$h:flags=bicubic+accurate_rnd" -c:v ffv1 "$D/bicubic.mkv"

# the product command, timed; a lossless copy of the same frames for the metrics
start=$(date +%s.%N)
"$FF" -nostdin -hide_banner -v info -y -i "$D/input.mkv" \
    -filter_complex "[0:v]catanet_xs=model=$MODEL,split[enc][lossless]" \
    -map "[enc]" -c:v libx264 -crf 16 "$D/catanet_xs.mp4" -map "[lossless]" -c:v ffv1 "$D/catanet_xs.mkv" \
    2> "$D/catanet_xs.log" || { tail -n 20 "$D/catanet_xs.log" >&2; exit 1; }
end=$(date +%s.%N)
device=$(sed -n 's/.*device=auto chose \([a-z]*\).*/\1/p' "$D/catanet_xs.log" | head -n 1)
fps=$(echo "$frames $start $end" | awk '{ printf "%.3f", $1 / ($3 - $2) }')
echo "demo: catanet_xs ${lw}x${lh} -> ${w}x${h} on ${device:-?}: $frames frames in $(echo "$start $end" | awk '{ printf "%.1f", $2 - $1 }') s = $fps fps (decode + filter + x264 encode) -> $D/catanet_xs.mp4"

metrics() { # $1: video to judge; prints "PSNR_Y PSNR_avg SSIM_Y SSIM_all"
    "$FF" -nostdin -hide_banner -v info -i "$1" -i "$D/original.mkv" \
        -lavfi "[0:v]split[a][b];[1:v]split[c][d];[a][c]psnr;[b][d]ssim" -f null - 2>&1 |
        awk '/Parsed_psnr/ { for (i = 1; i <= NF; i++) { if ($i ~ /^y:/) py = substr($i, 3); if ($i ~ /^average:/) pa = substr($i, 9) } }
             /Parsed_ssim/ { for (i = 1; i <= NF; i++) { if ($i ~ /^Y:/) sy = substr($i, 3); if ($i ~ /^All:/) sa = substr($i, 5) } }
             END { print py, pa, sy, sa }'
}
set -- $(metrics "$D/bicubic.mkv"); b_py=$1 b_pa=$2 b_sy=$3 b_sa=$4
set -- $(metrics "$D/catanet_xs.mkv"); c_py=$1 c_pa=$2 c_sy=$3 c_sa=$4
echo "demo: against the original ${w}x${h} ($frames frames):"
printf "  %-11s PSNR-Y %7s dB  PSNR(YUV) %7s dB  SSIM-Y %s  SSIM(YUV) %s\n" bicubic "$b_py" "$b_pa" "$b_sy" "$b_sa"
printf "  %-11s PSNR-Y %7s dB  PSNR(YUV) %7s dB  SSIM-Y %s  SSIM(YUV) %s\n" catanet_xs "$c_py" "$c_pa" "$c_sy" "$c_sa"
echo "{\"demo\":\"$(basename "$CLIP")\",\"model\":\"$MODEL\",\"device\":\"${device:-?}\",\"frames\":$frames,\"input\":\"${lw}x${lh}\",\"output\":\"${w}x${h}\",\"fps\":$fps,\"psnr_y\":{\"bicubic\":$b_py,\"catanet_xs\":$c_py},\"ssim_y\":{\"bicubic\":$b_sy,\"catanet_xs\":$c_sy}}" > "$D/result.json"

# one frame side by side: bicubic | catanet_xs
ffq -i "$D/bicubic.mkv" -i "$D/catanet_xs.mkv" -lavfi "[0:v][1:v]hstack=inputs=2,format=rgb24" -frames:v 1 \
    "$D/side_by_side.png"
echo "demo: $D/side_by_side.png (left: bicubic, right: catanet_xs), $D/result.json"
