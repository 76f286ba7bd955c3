#!/bin/sh
# x3 and x4 models from the shipped x2 ones, as the official recipe makes them: `train --from
# MODEL_x2 --scale S` carries every tensor but the upsampler (x4's first upsampling stage starts from
# x2's), then trains on HR-only L1, batch 4 of 32x32 LR, lr 2e-4, one thread, validated every 250.
# XS and S get 500 iterations each, the teacher 250: XS's budget counts the student's own
# iterations, as its x2 model's does (the teacher given).
#
# usage (any folder): sh experiments/x3-x4-finetune/run.sh [l|xs|s]...   (all three by default;
# minutes per model). Checkpoints and exports (with their provenance) in build/experiments/x3-x4-finetune;
# validation here as MODEL_xS.csv.val.csv.
set -e
cd "$(dirname "$0")/../.."
. experiments/lib.sh
X=experiments/x3-x4-finetune W=$WORK/x3-x4-finetune
mkdir -p $W
[ $# -gt 0 ] || set -- l xs s
for m in "$@"; do
    case $m in l) it=250 ;; xs|s) it=500 ;; *) echo "$0: $m: not l, xs or s" >&2; exit 2 ;; esac
    for s in 3 4; do
        [ -f $W/catanet_${m}_x$s.safetensors ] && continue
        finetune $W/${m}_x$s.ckpt.safetensors weights/catanet_${m}_x2.safetensors $W/${m}_x$s.safetensors $it 2e-4 \
            300000 $X/${m}_x$s.csv --scale $s --val-every 250
        python3 experiments/set-provenance.py $W/${m}_x$s.safetensors $W/catanet_${m}_x$s.safetensors -catanet_note \
            "catanet_provenance=$(python3 experiments/provenance.py ${m}_x$s)"
    done
done
