#!/bin/sh
# The CATANet-L x2 teacher (weights/catanet_l_x2.safetensors): the official architecture trained on
# the CPU. Its checkpoint (catanet_l_x2.ckpt.safetensors, beside this script: weights, Adam moments,
# data position) is at the shipped file's step; the run may go on, on the CPU or a GPU.
#
# usage (any folder): [THREADS=N] [ITERS=N] sh experiments/teacher-x2/run.sh
# Resumes the checkpoint to ITERS steps (default 40,000; the lr schedule is the checkpoint's: x0.5 at
# 26,500, 29,000, 31,000 and 33,000), then exports build/experiments/catanet_l_x2.safetensors.
# SIGTERM stops it at a step boundary with a checkpoint. On a GPU: tools/gpu-train.sh (a copy of this
# checkpoint, --device cuda --time-limit).
#
# How the checkpoint began (not rerun here): `catanet-train train --arch L --scale 2 --batch 16
# --patch 64 --iters 800000 --val-every 250` on 334 of the images for 151 steps, then resumed with
# `--new-data --batch 4 --patch 32` on the 341 of the four folders (data position carried over).
set -e
cd "$(dirname "$0")/../.."
. experiments/lib.sh
X=experiments/teacher-x2
C=$X/catanet_l_x2.ckpt.safetensors
$T resume $C $DATA $VAL --iters ${ITERS:-40000} --threads ${THREADS:-1} --log $X/train.csv --cache "$CACHE" --quiet
mkdir -p "$WORK"
$T export $C "$WORK/catanet_l_x2.safetensors"
