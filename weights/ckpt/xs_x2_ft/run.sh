#!/bin/sh
# Session 6: the shipped session-5 XS x2, fine-tuned 3,000 more iterations on HR only (the equal-budget
# comparison's longer final stage; the baseline S was resumed to the same total, 18,121), then exported
# with its provenance carried into the metadata (weights/README.md).
set -e
D="--data ../shared/data/train/T91 --data ../shared/data/train/BSD200 --data ../shared/data/train/flutter-landscapes --data ../shared/data/train/debian-photos"
build/training/catanet-train train --from weights/catanet_xs_x2.safetensors $D \
    --val ../shared/data/eval/Set5 --val ../shared/data/eval/Set14 --batch 4 --patch 32 --iters 3000 --threads 1 \
    --val-every 1000 --ckpt weights/ckpt/catanet_xs_x2_ft.ckpt.safetensors --log weights/ckpt/catanet_xs_x2_ft.csv \
    --quiet > weights/ckpt/xs_x2_ft/train.log 2>&1
build/training/catanet-train resume weights/ckpt/catanet_s_x2.ckpt.safetensors --iters 18121 --threads 1 --quiet
