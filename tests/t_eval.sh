#!/bin/sh
# catanet-eval end to end: the bicubic baseline table for Set5 (LR given), a model on a plain folder of
# BMP images (LR made by the bicubic), --json lines that parse, and clean failures on bad input.
B=${BUILDDIR:-build}
E=$B/tools/catanet-eval
SHARED=${CATANET_SHARED:-../shared}
MODEL=$SHARED/reference/catanet/weights_x2_trained.safetensors
[ -x "$E" ] || { echo "FAIL: $E not built"; exit 1; }
[ -f "$MODEL" ] || { echo "FAIL: $MODEL missing"; exit 1; }
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
. "$(dirname "$0")/check_lib.sh"

# 1. baseline only: the published bicubic number for Set5 x2 is 33.66 dB
$E -s 2 "$SHARED/data/eval/Set5" > "$W/t1.txt" 2>&1
rc=$?
cat "$W/t1.txt"
psnr=$(awk '$1 == "Set5" && $2 == "bicubic" { print $5 }' "$W/t1.txt")
ok=1; [ $rc = 0 ] && [ -n "$psnr" ] && awk -v p="$psnr" 'BEGIN { exit !(p > 33.63 && p < 33.69) }' && ok=0
check $ok "Set5 x2 bicubic baseline in the table: $psnr dB"

# 2. a model on a plain folder of two small BMPs, JSON lines with a model and a bicubic row per set
mkdir "$W/tiny"
cp "$SHARED/data/train/T91/t9.bmp" "$SHARED/data/train/T91/t20.bmp" "$W/tiny/"
$E -m "$MODEL" -t 1 --json --per-image "$W/tiny" > "$W/t2.txt" 2> "$W/t2.err"
rc=$?
cat "$W/t2.txt" "$W/t2.err"
n_model=$(grep -c '"method": "model", "scale": 2, "images": 2, "lr": "bicubic"' "$W/t2.txt")
n_bic=$(grep -c '"method": "bicubic", "scale": 2, "images": 2' "$W/t2.txt")
n_img=$(grep -c '"image": "t' "$W/t2.txt")
ok=1; [ $rc = 0 ] && [ "$n_model" = 1 ] && [ "$n_bic" = 1 ] && [ "$n_img" = 4 ] && ok=0
check $ok "model + bicubic rows, per-image rows, LR made by the bicubic"
if command -v python3 >/dev/null 2>&1; then
    python3 -c '
import json, math, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
per = [r for r in rows if "image" in r and r["method"] == "model"]
avg = [r for r in rows if "images" in r and r["method"] == "model"][0]
assert all(math.isfinite(r["psnr"]) and 0 < r["ssim"] <= 1 for r in rows)
assert abs(sum(r["psnr"] for r in per) / len(per) - avg["psnr"]) < 2e-4
' "$W/t2.txt"
    check $? "JSON lines parse; the set PSNR is the mean of the per-image PSNRs"
fi

# 3. failures: bad usage (2), a missing folder (1, named), a CUDA request on a machine without one (1, no crash)
$E > /dev/null 2>&1; rc=$?
check $([ $rc = 2 ] && echo 0 || echo 1) "no arguments: usage, exit 2 (got $rc)"
$E -s 2 "$W/nope" > /dev/null 2> "$W/t3.err"; rc=$?
ok=1; [ $rc = 1 ] && grep -q "nope" "$W/t3.err" && ok=0
check $ok "missing folder: exit 1, named ($(cat "$W/t3.err"))"
$E -m "$W/missing.safetensors" "$W/tiny" > /dev/null 2> "$W/t4.err"; rc=$?
check $([ $rc = 1 ] && echo 0 || echo 1) "missing model: exit 1 ($(cat "$W/t4.err"))"
# -d cuda: with a GPU (a CUDA build and nvidia-smi listing one) it runs; otherwise it must fail as
# documented (exit 1, an error; never a silent CPU run) with the library's reason: a build without
# CUDA, or no CUDA device
$E -m "$MODEL" -d cuda "$W/tiny" > "$W/t5.out" 2> "$W/t5.err"; rc=$?
cuda_build=$(sed -n 's/^HAVE_CUDA *= *//p' "$B/config.mk" 2> /dev/null)
if [ "$cuda_build" = 1 ] && command -v nvidia-smi > /dev/null 2>&1 && nvidia-smi -L > /dev/null 2>&1; then
    ok=1; [ $rc = 0 ] && grep -q '^tiny  *model ' "$W/t5.out" && ok=0
    check $ok "-d cuda with a GPU: exit $rc, the model row is printed"
else
    if [ "$cuda_build" = 1 ]; then want="no CUDA device|CUDA device [0-9]+ requested, [0-9]+ present"
    else want="built without CUDA"; fi
    ok=1; [ $rc = 1 ] && grep -Eq "$want" "$W/t5.err" && ok=0
    check $ok "-d cuda without a GPU: exit $rc (want 1) and /$want/ ($(head -c 200 "$W/t5.err"))"
fi
exit $fail
