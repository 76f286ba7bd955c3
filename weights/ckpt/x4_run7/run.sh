#!/bin/sh
# Session 7: XS x4 and S x4 remade from session 7's x2 models, as in ../x4_run6/run.sh (XS 250
# iterations, S 500: the teacher's 250 + XS's 250, session 2's count); the teacher x4 is session 6's.
# Side by side, one thread each. The checkpoints of session 6's x4 runs are overwritten (git has them).
# The catanet-train of this run still appended to an existing --log: the CSVs were trimmed to this
# run's lines afterwards (a run from step 0 rewrites its logs since commit "a run from step 0 rewrites").
set -e
D="--data ../shared/data/train/T91 --data ../shared/data/train/BSD200 --data ../shared/data/train/flutter-landscapes --data ../shared/data/train/debian-photos"
V="--val ../shared/data/eval/Set5 --val ../shared/data/eval/Set14"
T="build/training/catanet-train train --scale 4 $D $V --batch 4 --patch 32 --threads 1 --quiet"
rm -f weights/ckpt/catanet_xs_x4.ckpt.safetensors weights/ckpt/catanet_s_x4.ckpt.safetensors
$T --from weights/catanet_xs_x2.safetensors --iters 250 --val-every 250 --ckpt weights/ckpt/catanet_xs_x4.ckpt.safetensors \
    --log weights/ckpt/catanet_xs_x4.csv > weights/ckpt/x4_run7/xs_x4.log 2>&1 &
$T --from weights/catanet_s_x2.safetensors --iters 500 --val-every 250 --ckpt weights/ckpt/catanet_s_x4.ckpt.safetensors \
    --log weights/ckpt/catanet_s_x4.csv > weights/ckpt/x4_run7/s_x4.log 2>&1 &
wait
# exported to /tmp first; weights/README.md's x4 table decided what ships (export carries XS's provenance)
for m in xs s; do build/training/catanet-train export weights/ckpt/catanet_${m}_x4.ckpt.safetensors /tmp/${m}_x4_new.safetensors; done
