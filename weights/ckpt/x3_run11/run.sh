#!/bin/sh
# Session 11: the first x3 models, and the teacher x4 remade from the teacher whose learning rate
# decayed (step 31,328). As the x4 models (../x4_run7/run.sh): each from its shipped x2 model with a
# new upsampler (train --from MODEL_x2 --scale S: the official recipe fine-tunes x3/x4 from x2), the
# same data, batch 4 of 32x32 LR, HR-only L1, lr 2e-4. XS x3 250 iterations, the teacher 250, the
# baseline S 500 (the teacher's 250 + XS's 250, the count of the x4 comparison; validated at 250 too).
# One after another on one thread. These runs take minutes, so their checkpoints stay in build/x3
# (not in the tree); the logs are here. Exported to build/x3; weights/README.md decides what ships.
set -e
D="--data ../shared/data/train/T91 --data ../shared/data/train/BSD200 --data ../shared/data/train/flutter-landscapes --data ../shared/data/train/debian-photos"
V="--val ../shared/data/eval/Set5 --val ../shared/data/eval/Set14"
R=weights/ckpt/x3_run11 W=build/x3
mkdir -p $W
run() {  # run NAME SCALE ITERS
    [ -f $W/catanet_$1_x$2.safetensors ] && return 0
    build/training/catanet-train train --scale $2 --from weights/catanet_$1_x2.safetensors $D $V --batch 4 --patch 32 \
        --threads 1 --quiet --iters $3 --val-every 250 --ckpt $W/catanet_$1_x$2.ckpt.safetensors \
        --log $R/catanet_$1_x$2.csv > $R/$1_x$2.log 2>&1
    build/training/catanet-train export $W/catanet_$1_x$2.ckpt.safetensors $W/catanet_$1_x$2.safetensors
}
run xs 3 250
run l 3 250
run s 3 500
run l 4 250
