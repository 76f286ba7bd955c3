#!/bin/sh
# make fps: end-to-end fps (decode + catanet_xs x2 + libx264 encode) over the 720p/1080p clips
# of the shared data, one JSON line per clip and device.
#
# Usage: tools/ffmpeg-fps.sh BUILDDIR MODEL VIDEO_DIR
#   FPS_FRAMES  frames per clip (default: 100 on CUDA, 1 on the CPU, where one 720p frame
#               takes minutes); FPS_DEVICES (default: cuda when a GPU is present, and cpu);
#   FPS_CLIPS   a grep pattern to select clips (default: all *720p* and *1080p* clips).
# Raw .264 clips are read at the frame rate their provenance.tsv line gives ("-r N").
B=${1:?usage: tools/ffmpeg-fps.sh BUILDDIR MODEL VIDEO_DIR}
MODEL=${2:?}
V=${3:?}
FF=$B/ffmpeg/ffmpeg
[ -f "$MODEL" ] || { echo "make fps: the model $MODEL is missing (CATANET_MODEL=path to use another)" >&2; exit 1; }
[ -d "$V" ] || { echo "make fps: no video folder $V (set CATANET_SHARED)" >&2; exit 1; }
gpu=0
command -v nvidia-smi > /dev/null 2>&1 && nvidia-smi -L > /dev/null 2>&1 && gpu=1
devices=${FPS_DEVICES:-$([ $gpu = 1 ] && echo "cuda cpu" || echo cpu)}
host=$(uname -n)
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
gpuname=$([ $gpu = 1 ] && nvidia-smi --query-gpu=name --format=csv,noheader | head -n 1)
status=0
for clip in $(ls "$V" | grep -E '(720p|1080p)' | grep -E "${FPS_CLIPS:-.}"); do
    path=$V/$clip
    rate=$(awk -F'\t' -v f="$clip" '$1 == f' "$V/provenance.tsv" 2>/dev/null | sed -n 's/.*ffmpeg -r \([0-9]*\) -i.*/\1/p')
    inopt=
    [ -n "$rate" ] && inopt="-r $rate"
    for dev in $devices; do
        if [ $dev = cpu ]; then frames=${FPS_FRAMES:-1}; else frames=${FPS_FRAMES:-100}; fi
        [ $dev = cpu ] && [ -z "$FPS_FRAMES" ] &&
            echo "fps: $clip on the CPU: limited to $frames frame(s) (FPS_FRAMES=N for more); CPU numbers are not the product's target" >&2
        start=$(date +%s.%N)
        # shellcheck disable=SC2086
        "$FF" -nostdin -hide_banner -v error $inopt -i "$path" -an -frames:v $frames \
            -vf "catanet_xs=model=$MODEL:device=$dev" -c:v libx264 -preset veryfast -f null - 2> "$B/fps.log"
        rc=$?
        end=$(date +%s.%N)
        size=$("$B/ffmpeg/ffprobe" -v error -select_streams v:0 -show_entries stream=width,height -of csv=s=x:p=0 "$path" | head -n 1)
        if [ $rc = 0 ]; then
            echo "$clip $dev $size $frames $start $end" | awk -v host="$host" -v cpu="$cpu" -v gpuname="$gpuname" '{
                split($3, d, "x"); t = $6 - $5
                printf "{\"clip\":\"%s\",\"device\":\"%s\",\"input\":\"%s\",\"output\":\"%dx%d\",\"frames\":%d,\"seconds\":%.2f,\"fps\":%.4f,\"host\":\"%s\",\"cpu\":\"%s\",\"gpu\":\"%s\",\"pipeline\":\"decode+catanet_xs+libx264 veryfast\"}\n",
                       $1, $2, $3, 2 * d[1], 2 * d[2], $4, t, $4 / t, host, cpu, ($2 == "cuda" ? gpuname : "") }'
        else
            echo "{\"clip\":\"$clip\",\"device\":\"$dev\",\"error\":\"$(head -n 1 "$B/fps.log" | tr -d '"\\')\"}"
            status=1
        fi
    done
done
exit $status
