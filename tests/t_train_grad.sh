#!/bin/sh
# `catanet-train grad` end to end on the official first-step reference case: NPY input/target in,
# safetensors out; loss, output, every grad.* and means_after.* within 1e-3 of each tensor's largest
# magnitude (the library-level check of the same is in test_train.c). Needs python3 (stdlib only).
B=${BUILDDIR:-build}
T=$B/training/catanet-train
SHARED=${CATANET_SHARED:-../shared}
REF=$SHARED/reference/catanet
[ -x "$T" ] || { echo "FAIL: $T not built"; exit 1; }
command -v python3 >/dev/null || { echo "FAIL: python3 is needed to write the NPY inputs"; exit 1; }
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
python3 - "$REF/train_x2_random_first_step.safetensors" "$W" <<'PY' || { echo "FAIL: NPY"; exit 1; }
import json, struct, sys
src, out = sys.argv[1], sys.argv[2]
with open(src, 'rb') as f:
    n = struct.unpack('<Q', f.read(8))[0]
    h = json.loads(f.read(n))
    base = 8 + n
    for name in ('input', 'target'):
        t = h[name]
        a, b = t['data_offsets']
        f.seek(base + a)
        data = f.read(b - a)
        hdr = "{'descr': '<f4', 'fortran_order': False, 'shape': (%s), }" % ''.join('%d, ' % d for d in t['shape'])
        hdr += ' ' * (63 - (10 + len(hdr)) % 64) + '\n'
        with open('%s/%s.npy' % (out, name), 'wb') as g:
            g.write(b'\x93NUMPY\x01\x00' + struct.pack('<H', len(hdr)) + hdr.encode() + data)
PY
$T grad -m "$REF/weights_x2_random.safetensors" --input "$W/input.npy" --target "$W/target.npy" \
    --out "$W/g.safetensors" --first-step >/dev/null || { echo "FAIL: catanet-train grad"; exit 1; }
python3 - "$W/g.safetensors" "$REF/train_x2_random_first_step.safetensors" <<'PY'
import json, struct, sys
def load(p):
    with open(p, 'rb') as f:
        n = struct.unpack('<Q', f.read(8))[0]
        return json.loads(f.read(n)), f.read()
def get(h, d, k):
    a, b = h[k]['data_offsets']
    return struct.unpack('<%df' % ((b - a) // 4), d[a:b])
mh, md = load(sys.argv[1])
rh, rd = load(sys.argv[2])
worst, wk, missing, n = 0.0, '', [], 0
for k in rh:
    if k in ('__metadata__', 'input', 'target'):
        continue
    if k not in mh:
        missing.append(k)
        continue
    a, b = get(mh, md, k), get(rh, rd, k)
    if len(a) != len(b):
        missing.append(k + ' (size)')
        continue
    s = max(abs(x) for x in b) or 1.0
    e = max(abs(x - y) for x, y in zip(a, b)) / s
    n += 1
    if e > worst:
        worst, wk = e, k
ok = not missing and worst <= 1e-3 and n >= 280
print('%s: catanet-train grad vs train_x2_random_first_step: %d tensors, %d missing, worst %s rel %.3g'
      % ('PASS' if ok else 'FAIL', n, len(missing), wk, worst))
sys.exit(0 if ok else 1)
PY
