#!/bin/sh
# catanet-train prune / extract / distill end to end on a tiny 4-group teacher: prune to 2 groups
# (a few steps), the decision file, the student written by prune equals `extract --decision`
# (same kept groups and tensors), distill runs with FAKD and writes a loadable 2-group model that
# catanet-eval measures; `train --from` a student carries its provenance to `export`; bad usage
# fails cleanly.
B=${BUILDDIR:-build}
T=$B/training/catanet-train
E=$B/tools/catanet-eval
SHARED=${CATANET_SHARED:-../shared}
DATA=$SHARED/data/eval/Set5/HR
[ -x "$T" ] || { echo "FAIL: $T not built"; exit 1; }
[ -d "$DATA" ] || { echo "FAIL: $DATA missing"; exit 1; }
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
. "$(dirname "$0")/check_lib.sh"
$T train --data "$DATA" --scale 2 --dim 8 --qk-dim 8 --heads 2 --mlp-dim 16 --groups 4 --tokens 4 \
    --group-size 64 --patch-size 8,12 --batch 2 --patch 16 --iters 2 --lr 1e-3 --seed 7 --threads 1 \
    --val-every 0 --ckpt "$W/t.ckpt" --quiet >/dev/null 2>&1 && $T export "$W/t.ckpt" "$W/t.safetensors" ||
    { echo "FAIL: tiny teacher"; exit 1; }
$T prune --teacher "$W/t.safetensors" --data "$DATA" --keep 2 --budget 0 --iters 6 --batch 2 --patch 16 \
    --log-every 3 --out "$W/d.json" --student "$W/s.safetensors" > "$W/prune.log" 2>&1
check $? "prune 4 -> 2 groups runs"
grep -q "C(4,2)\|6 candidate subsets" "$W/prune.log" && grep -q "decision: keep groups" "$W/prune.log"
check $? "prune logs 6 candidate subsets, the leading ones and the decision"
$T extract "$W/t.safetensors" "$W/x.safetensors" --decision "$W/d.json" > /dev/null 2>&1
check $? "extract --decision"
# the same tensors (names, types, shapes, bytes) and metadata; only the note says which stage wrote it
python3 - "$W/s.safetensors" "$W/x.safetensors" <<'EOF2'
import json, struct, sys
def load(path):
    b = open(path, 'rb').read()
    n = struct.unpack('<Q', b[:8])[0]
    h = json.loads(b[8:8 + n])
    meta = h.pop('__metadata__', {})
    meta.pop('catanet_note', None)
    data = b[8 + n:]
    return meta, {k: (v['dtype'], v['shape'], data[v['data_offsets'][0]:v['data_offsets'][1]]) for k, v in h.items()}
(ma, ta), (mb, tb) = load(sys.argv[1]), load(sys.argv[2])
diff = sorted(k for k in set(ta) | set(tb) if ta.get(k) != tb.get(k))
if ma != mb or diff or not ta:
    print('differ: metadata %s, tensors %s' % ('equal' if ma == mb else 'differ', diff[:5]))
    sys.exit(1)
EOF2
r=$?
check $r "extract --decision writes prune's student (the same tensors and metadata; only the note differs)"
$T extract "$W/t.safetensors" "$W/y.safetensors" --groups 0,3 > "$W/ext.log" 2>&1 && grep -q "2 of 4 groups" "$W/ext.log"
check $? "extract --groups 0,3"
$T extract "$W/t.safetensors" "$W/z.safetensors" --groups 0,9 > /dev/null 2>&1
[ $? != 0 ] && [ ! -f "$W/z.safetensors" ]
check $? "extract of a missing group fails without output"
$T distill --teacher "$W/t.safetensors" --student "$W/y.safetensors" --out "$W/o.safetensors" --data "$DATA" \
    --iters 3 --batch 2 --patch 16 --log-every 1 > "$W/dist.log" 2>&1 && grep -q "beta\*FAKD" "$W/dist.log"
check $? "distill with FAKD at 2 points (group 1 input, body end) runs"
if [ -x "$E" ]; then
    $E -m "$W/o.safetensors" "$SHARED/data/eval/Set5" > "$W/eval.log" 2>&1
    check $? "catanet-eval loads the distilled student"
fi
# a student trained further with `train --from` keeps its provenance through the checkpoint (and a
# resume) into the exported file, whose note gains the stage
$T train --from "$W/o.safetensors" --data "$DATA" --batch 2 --patch 16 --iters 1 --lr 1e-4 --threads 1 \
    --val-every 0 --ckpt "$W/f.ckpt" --quiet > /dev/null 2>&1 &&
    $T resume "$W/f.ckpt" --iters 2 --threads 1 --quiet > /dev/null 2>&1 &&
    $T export "$W/f.ckpt" "$W/f.safetensors" > /dev/null 2>&1
r=$?
ko=$(strings "$W/o.safetensors" | grep -o '"catanet_kept_groups":"[0-9,]*"' | head -1)
kf=$(strings "$W/f.safetensors" | grep -o '"catanet_kept_groups":"[0-9,]*"' | head -1)
[ $r = 0 ] && [ -n "$ko" ] && [ "$ko" = "$kf" ] &&
    strings "$W/f.safetensors" | grep -q 'then train --from it: 2 iterations, batch 2 of 16 LR, lr 0.0001'
check $? "train --from a student, resume, export: the provenance carried, the stage in its note"
$T distill --teacher "$W/t.safetensors" --student "$W/t.safetensors" --out "$W/bad.safetensors" --data "$DATA" \
    --iters 1 > /dev/null 2>&1
[ $? != 0 ] && [ ! -f "$W/bad.safetensors" ]
check $? "distill without a group map fails cleanly"
$T prune --teacher "$W/t.safetensors" --data "$DATA" --keep 4 --budget 1000 --iters 1 > /dev/null 2>&1
[ $? != 0 ]
check $? "prune with an impossible parameter budget fails cleanly"
exit $fail
