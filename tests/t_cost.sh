#!/bin/sh
# catanet-cost: the per-frame counts agree with closed forms computed here by hand, parts sum to
# the total, and bad input is refused cleanly.
B=${BUILDDIR:-build}
X=$B/tools/catanet-cost
SHARED=${CATANET_SHARED:-../shared}
MODEL=$SHARED/reference/catanet/weights_x2_trained.safetensors
[ -x "$X" ] || { echo "FAIL: $X not built"; exit 1; }
. "$(dirname "$0")/check_lib.sh"
out=$($X -m "$MODEL" -s 960x540 --json)
echo "$out"
# closed forms for CATANet-L x2 (dim 40, qk 36, mlp 96, 8 groups) on 960x540: N = 518400
#   mid_conv   8 * 2 N C^2 9          = 119.439 GFLOP
#   first_conv 2 N C 27               =   1.120 GFLOP
#   lrsa_attention: patches per side = len(range(0, L + step - ps, step)) with step = ps - 2 (the
#     official patch_divide loop), each patch size in two groups; 2 P T^2 (36 + 40) with T = ps^2
get() { echo "$out" | tr ',{}' '\n\n\n' | awk -F: -v k="\"$1\"" '$1 == k { print $2; exit }'; }
gmid=$(echo "$out" | sed 's/.*"mid_conv":{"gflops":\([0-9.]*\).*/\1/')
gfirst=$(echo "$out" | sed 's/.*"first_conv":{"gflops":\([0-9.]*\).*/\1/')
glrsa=$(echo "$out" | sed 's/.*"lrsa_attention":{"gflops":\([0-9.]*\).*/\1/')
total=$(get gflops)
sum=$(echo "$out" | grep -o '"gflops":[0-9.]*' | tail -n +2 | cut -d: -f2 | awk '{ s += $1 } END { printf "%.2f", s }')
awk -v a="$gmid" -v b="$gfirst" -v c="$glrsa" 'BEGIN {
    N = 518400; C = 40
    mid = 8 * 2 * N * C * C * 9 / 1e9; first = 2 * N * C * 27 / 1e9
    l = 0; split("16 20 24 28", ps, " ")
    for (i = 1; i <= 4; i++) {
        st = ps[i] - 2; T = ps[i] * ps[i]
        nr = int((540 + st - ps[i] + st - 1) / st); nc = int((960 + st - ps[i] + st - 1) / st)
        l += 2 * 2 * nr * nc * T * T * 76 / 1e9
    }
    ok = (a - mid < 0.01 && mid - a < 0.01) && (b - first < 0.01 && first - b < 0.01) && (c - l < 0.01 && l - c < 0.01)
    printf "mid_conv %s (%.3f), first_conv %s (%.3f), lrsa_attention %s (%.3f)\n", a, mid, b, first, c, l
    exit !ok }'
check $? "closed forms: mid_conv, first_conv, LRSA attention FLOPs"
awk -v t="$total" -v s="$sum" 'BEGIN { d = t - s; exit !(d < 0.05 && d > -0.05) }'
check $? "parts sum to the total ($sum vs $total GFLOP)"
$X -m "$MODEL" -s 20x20 > /dev/null 2>&1
[ $? = 1 ]; check $? "a frame below the smallest side is refused"
$X -m /nonexistent.safetensors > /dev/null 2>&1
[ $? = 1 ]; check $? "a missing model is refused"
$X -m "$MODEL" -s bad > /dev/null 2>&1
[ $? = 2 ]; check $? "a malformed size is a usage error"
exit $fail
