#!/bin/sh
# Session 6: the x4 models from the shipped x2 models (each its own process, one thread; they ran side by side)
set -e
D="--data ../shared/data/train/T91 --data ../shared/data/train/BSD200 --data ../shared/data/train/flutter-landscapes --data ../shared/data/train/debian-photos"
V="--val ../shared/data/eval/Set5 --val ../shared/data/eval/Set14"
T="build/training/catanet-train train --scale 4 $D $V --batch 4 --patch 32 --threads 1 --quiet"
$T --from weights/catanet_xs_x2.safetensors --iters 250 --val-every 250 --ckpt weights/ckpt/catanet_xs_x4.ckpt.safetensors \
    --log weights/ckpt/catanet_xs_x4.csv > weights/ckpt/x4_run6/xs_x4.log 2>&1
$T --from weights/catanet_s_x2.safetensors --iters 500 --val-every 250 --ckpt weights/ckpt/catanet_s_x4.ckpt.safetensors \
    --log weights/ckpt/catanet_s_x4.csv > weights/ckpt/x4_run6/s_x4.log 2>&1
$T --from weights/catanet_l_x2.safetensors --iters 250 --val-every 250 --ckpt weights/ckpt/catanet_l_x4.ckpt.safetensors \
    --log weights/ckpt/catanet_l_x4.csv > weights/ckpt/x4_run6/l_x4.log 2>&1
for m in l s; do build/training/catanet-train export weights/ckpt/catanet_${m}_x4.ckpt.safetensors weights/catanet_${m}_x4.safetensors; done
build/training/catanet-train export weights/ckpt/catanet_xs_x4.ckpt.safetensors weights/catanet_xs_x4.safetensors
# then the XS x2's provenance keys were written into its metadata (kept = origin = CATANet-L {0,2,5}; a header-only edit)
