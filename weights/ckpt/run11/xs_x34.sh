#!/bin/sh
# Session 11: XS x3 and XS x4 remade from the new XS x2 (run.sh xs's export, ckpt/run11/xs_ft2.safetensors),
# the same way as ../x3_run11/run.sh and ../x4_run7/run.sh: train --from it --scale S, 250
# iterations each, batch 4 of 32x32 LR, HR-only L1, lr 2e-4, one thread. Exports in build/xs11.
set -e
D="--data ../shared/data/train/T91 --data ../shared/data/train/BSD200 --data ../shared/data/train/flutter-landscapes --data ../shared/data/train/debian-photos"
V="--val ../shared/data/eval/Set5 --val ../shared/data/eval/Set14"
R=weights/ckpt/run11 W=build/xs11
for s in 3 4; do
    build/training/catanet-train train --scale $s --from $R/xs_ft2.safetensors $D $V --batch 4 --patch 32 --threads 1 \
        --quiet --iters 250 --val-every 250 --ckpt $W/xs_x$s.ckpt.safetensors --log $R/xs_x$s.csv > $R/xs_x$s.log 2>&1
    build/training/catanet-train export $W/xs_x$s.ckpt.safetensors $W/catanet_xs_x$s.safetensors
done
# Shipped (weights/README.md): each export copied to weights/catanet_xs_x$s.safetensors with the note's
# first clause (the teacher's step) added by a header-only edit, as for the XS x2 of this session:
for s in 3 4; do
    python3 - $W/catanet_xs_x$s.safetensors weights/catanet_xs_x$s.safetensors <<'PY'
import json, struct, sys
raw = open(sys.argv[1], 'rb').read()
n = struct.unpack('<Q', raw[:8])[0]
h = json.loads(raw[8:8 + n]); body = raw[8 + n:]
h['__metadata__']['catanet_note'] = ('training/xs_pipeline.sh from weights/catanet_l_x2.safetensors at step 31,328 '
    '(session 11; prune 3 x 120, recovery 2 x 80); ' + h['__metadata__']['catanet_note'])
hb = json.dumps(h, separators=(',', ':')).encode()
hb += b' ' * (-len(hb) % 8)
open(sys.argv[2], 'wb').write(struct.pack('<Q', len(hb)) + hb + body)
PY
done
