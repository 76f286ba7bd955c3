#!/bin/sh
# CATANet-XS x2 (weights/catanet_xs_x2.safetensors) from the teacher weights/catanet_l_x2.safetensors
# (step 31,328): training/xs_pipeline.sh prunes 8 -> 6 -> 4 -> 3 groups (120 prune iterations per
# stage, 80 of recovery distillation after the first two, each stage under a latency bound of 0.8 x
# the baseline S's measured CPU time and the last under 230,000 parameters); the 3-group student's
# final stage is trained on HR only (600 iterations; the recipe's KD final stage is kept for
# comparison as xs_recipe.safetensors); then 3,000 iterations on HR only at lr 2e-4 and 3,000 at
# 1e-4 halved at 1,500. Budget: the teacher's 33,593 + 1,120 + 3,000 + 3,000 = 40,713 iterations.
#
# usage (any folder): sh experiments/xs-pipeline/run.sh   (one thread; about 2 hours on the CPU)
# Each part is resumable or skipped when its output exists in build/experiments/xs-pipeline.
# Writes here: pipeline.log, final_hr.log, decision{1,2,3}.json (every candidate's probability),
# ft{1,2}.csv.val.csv (validation of the two last stages). The result, with its provenance:
# build/experiments/xs-pipeline/catanet_xs_x2.safetensors. The shipped model's last checkpoint:
#   git show c03a228f790939ef0ad3fdbb242196cf5f3f85a4:weights/ckpt/catanet_xs11_x2_ft2.ckpt.safetensors
set -e
cd "$(dirname "$0")/../.."
. experiments/lib.sh
X=experiments/xs-pipeline W=$WORK/xs-pipeline
mkdir -p $W
if [ ! -f $W/xs_hr.safetensors ]; then
    LATENCY_OF=weights/catanet_s_x2.safetensors LATENCY_FACTOR=0.8 DATA="$TRAIN_DIRS" BATCH=4 PATCH=32 THREADS=1 \
        P1=120 P2=120 P3=120 R=80 D=600 \
        sh training/xs_pipeline.sh weights/catanet_l_x2.safetensors $W $W/xs_recipe.safetensors > $X/pipeline.log 2>&1
    $T distill --teacher $W/student2.safetensors --student $W/pruned3.safetensors --out $W/xs_hr.safetensors \
        $DATA $VAL --batch 4 --patch 32 --iters 600 --hr-weight 1 --kd-weight 0 --beta 0 --threads 1 \
        > $X/final_hr.log 2>&1
    cp $W/decision1.json $W/decision2.json $W/decision3.json $X/
fi
finetune $W/ft1.ckpt.safetensors $W/xs_hr.safetensors $W/xs_ft1.safetensors 3000 2e-4 300000 $X/ft1.csv --val-every 1000
finetune $W/ft2.ckpt.safetensors $W/xs_ft1.safetensors $W/xs_ft2.safetensors 3000 1e-4 1500 $X/ft2.csv --val-every 1000
python3 experiments/set-provenance.py $W/xs_ft2.safetensors $W/catanet_xs_x2.safetensors -catanet_note \
    "catanet_teacher=the xs-pipeline's stage-2 student (CATANet-L groups 0,2,3,6)" \
    "catanet_provenance=$(python3 experiments/provenance.py xs_x2_pipeline)"
