#!/bin/sh
# Session 7: a final stage at a decayed learning rate for both sides of the XS-vs-S comparison.
# Each shipped x2 model (XS and the baseline S, both at budget 18,121) is trained 3,000 more
# iterations on HR only, the same for both: a fresh Adam at lr 1e-4, halved at 1,500, batch 4 of
# 32x32, seed 3407. Equal budget after it: 21,121 iterations each. Run from the repo root.
set -e
D="--data ../shared/data/train/T91 --data ../shared/data/train/BSD200 --data ../shared/data/train/flutter-landscapes --data ../shared/data/train/debian-photos"
V="--val ../shared/data/eval/Set5 --val ../shared/data/eval/Set14"
O="--batch 4 --patch 32 --iters 3000 --lr 1e-4 --milestones 1500 --gamma 0.5 --threads 1 --val-every 1000 --quiet"
run() {  # run NAME MODEL
    build/training/catanet-train train --from weights/catanet_$1_x2.safetensors $D $V $O \
        --ckpt weights/ckpt/catanet_$1_x2_ft2.ckpt.safetensors --log weights/ckpt/catanet_$1_x2_ft2.csv \
        > weights/ckpt/ft2_run7/$1.log 2>&1
}
# The two run side by side, one core each.
run xs & run s & wait
# Export (the evaluation in weights/README.md decided that both ship). These checkpoints were made
# before 'train --from' carried a student's provenance (commit dc0bafa), so XS's keys are copied from
# the session-6 XS file it started from, with this stage added to the note (a header-only edit).
E=build/training/catanet-train
$E export weights/ckpt/catanet_s_x2_ft2.ckpt.safetensors weights/catanet_s_x2.safetensors
$E export weights/ckpt/catanet_xs_x2_ft2.ckpt.safetensors /tmp/xs_ft2.safetensors
python3 - weights/catanet_xs_x2.safetensors /tmp/xs_ft2.safetensors <<'PY'
import json, struct, sys
def header(path):
    raw = open(path, 'rb').read()
    n = struct.unpack('<Q', raw[:8])[0]
    return json.loads(raw[8:8 + n]), raw[8 + n:]
old, _ = header(sys.argv[1])
new, body = header(sys.argv[2])
meta = new['__metadata__']
for k in ('catanet_kept_groups', 'catanet_origin_groups', 'catanet_teacher', 'catanet_note'):
    meta[k] = old['__metadata__'][k]
meta['catanet_note'] += '; then train --from it: 3000 iterations on HR only, batch 4 of 32 LR, lr 0.0001, x0.5 at 1500 (session 7)'
h = json.dumps(new, separators=(',', ':')).encode()
h += b' ' * (-len(h) % 8)
open(sys.argv[1], 'wb').write(struct.pack('<Q', len(h)) + h + body)
PY
