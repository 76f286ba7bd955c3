#!/bin/sh
set -e
DATA="../shared/data/train/T91 ../shared/data/train/BSD200 ../shared/data/train/flutter-landscapes ../shared/data/train/debian-photos"
W=build/xs2
LATENCY_OF=weights/catanet_s_x2.safetensors LATENCY_FACTOR=0.8 DATA="$DATA" BATCH=4 PATCH=32 THREADS=1 \
    P1=120 P2=120 P3=120 R=80 D=600 sh training/xs_pipeline.sh weights/catanet_l_x2.safetensors $W $W/xs_recipe.safetensors > $W/pipeline.log 2>&1
build/training/catanet-train distill --teacher $W/student2.safetensors --student $W/pruned3.safetensors \
    --out $W/xs_hr.safetensors --data ../shared/data/train/T91 --data ../shared/data/train/BSD200 \
    --data ../shared/data/train/flutter-landscapes --data ../shared/data/train/debian-photos \
    --batch 4 --patch 32 --iters 600 --hr-weight 1 --kd-weight 0 --beta 0 --threads 1 > $W/final_gt_only.log 2>&1
echo done > $W/DONE
