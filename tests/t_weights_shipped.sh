#!/bin/sh
# The shipped models (weights/catanet_{l,xs,s}_x{2,3,4}.safetensors), what `make install` puts
# where the filter looks: each loads, upscales by the factor its name says, and beats bicubic on
# Set5's bird (LR given, catanet-eval's protocol) by at least 2 dB (the shipped ones gain 2.8 to
# 5.7; an untrained or damaged file loses to bicubic). The product's size claim for the default
# filter model: XS x2 under 230,000 parameters and under the hand-designed baseline S x2. Each file
# carries its provenance as data (catanet_provenance: a JSON object whose recipe is a script of the
# tree, and the training data and machine), as experiments/provenance.py gives it.
B=${BUILDDIR:-build}
E=$B/tools/catanet-eval
BENCH=$B/tools/catanet-bench
SHARED=${CATANET_SHARED:-../shared}
[ -x "$E" ] && [ -x "$BENCH" ] || { echo "FAIL: $E or $BENCH not built"; exit 1; }
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
. "$(dirname "$0")/check_lib.sh"

# a one-image set in the benchmark layout, LR given for every scale
mkdir -p "$W/bird/HR"
cp "$SHARED/data/eval/Set5/HR/bird.png" "$W/bird/HR/"
for s in 2 3 4; do
    mkdir -p "$W/bird/LR_bicubic/X$s"
    cp "$SHARED/data/eval/Set5/LR_bicubic/X$s/birdx$s.png" "$W/bird/LR_bicubic/X$s/"
done

n=0
for f in weights/catanet_*_x[0-9].safetensors; do
    [ -f "$f" ] || continue
    n=$((n + 1))
    name=$(basename "$f" .safetensors)
    s=${name##*_x}
    "$E" -m "$f" -t 1 --json "$W/bird" > "$W/out" 2> "$W/err"
    rc=$?
    model=$(sed -n 's/.*"method": "model", "scale": \([0-9]*\),.*"lr": "given", "psnr": \([0-9.]*\).*/\1 \2/p' "$W/out")
    bic=$(sed -n 's/.*"method": "bicubic", "scale": [0-9]*,.*"psnr": \([0-9.]*\).*/\1/p' "$W/out")
    ok=1
    [ $rc = 0 ] && [ "${model%% *}" = "$s" ] && [ -n "$bic" ] &&
        awk -v m="${model#* }" -v b="$bic" 'BEGIN { exit !(m >= b + 2) }' && ok=0
    check $ok "$name: x${model%% *} (name: x$s), bird ${model#* } dB against bicubic's ${bic:-?} $(head -c 200 "$W/err")"
done
check $([ $n -ge 9 ] && echo 0 || echo 1) "$n shipped models found (L, XS and S at x2, x3 and x4: 9)"

# provenance: the file's catanet_provenance equals experiments/provenance.py's for its name, and its
# recipe names a script of the tree
prov() {  # prov FILE NAME: prints the recipe, or what is wrong and fails
    python3 - "$1" "$2" <<'PY'
import json, os, struct, subprocess, sys
f, name = sys.argv[1], sys.argv[2]
raw = open(f, 'rb').read()
n = struct.unpack('<Q', raw[:8])[0]
meta = json.loads(raw[8:8 + n]).get('__metadata__', {})
if 'catanet_provenance' not in meta:
    sys.exit('no catanet_provenance')
p = json.loads(meta['catanet_provenance'])
want = json.loads(subprocess.run([sys.executable, 'experiments/provenance.py', name], capture_output=True,
                                 text=True).stdout or 'null')
if p != want:
    sys.exit('catanet_provenance differs from experiments/provenance.py %s' % name)
script = p['recipe'].split()[1]
if not os.path.isfile(script):
    sys.exit('recipe %s: no such script' % script)
if not p.get('data') or not p.get('hardware'):
    sys.exit('no data or hardware')
print(p['recipe'])
PY
}
command -v python3 > /dev/null || { echo "FAIL: python3 is needed to read the models' metadata"; exit 1; }
for f in weights/catanet_*_x[0-9].safetensors; do
    [ -f "$f" ] || continue
    name=$(basename "$f" .safetensors)
    out=$(prov "$f" "${name#catanet_}" 2>&1)
    check $? "$name: provenance as data: $out"
done

params() { "$BENCH" -m "$1" -t 1 -s 16x16 -n 1 2> /dev/null | sed -n 's/.*"params":\([0-9]*\).*/\1/p' | head -1; }
xs=$(params weights/catanet_xs_x2.safetensors)
base=$(params weights/catanet_s_x2.safetensors)
ok=1; [ -n "$xs" ] && [ -n "$base" ] && [ "$xs" -lt 230000 ] && [ "$xs" -lt "$base" ] && ok=0
check $ok "XS x2 has ${xs:-?} parameters: under 230,000 and under the baseline S x2's ${base:-?}"
exit $fail
