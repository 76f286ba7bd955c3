#!/bin/sh
# Session 11: the XS-vs-S comparison again, from the teacher whose learning rate finally decayed
# (weights/catanet_l_x2.safetensors, step 31,328: Set5 37.61, Set14 33.10; the shipped XS came from
# the step-12,541 teacher, 37.23 / 32.76, only as good as S).
#
# xs: the shipped XS's recipe, unchanged but for the teacher: the pipeline (3 x 120 prune, 2 x 80
#     recovery, the 600-iteration final stage on HR only, as session 5), then 3,000 on HR only at lr 2e-4
#     (session 6), then 3,000 at lr 1e-4 halved at 1,500 (session 7).
# s:  the baseline S resumed from its step-18,121 checkpoint (lr 2e-4 throughout, batch 4 of 32) to the
#     same budget, with the same decayed tail as XS's last stage: x0.5 at 37,713 and at 39,213.
#
# The budget (batch 4 of 32x32 equivalents, counted as in weights/README.md): the teacher's 31,328
# steps are 33,593 (its first 151 steps were 16 of 64x64), + 1,120 + 3,000 + 3,000 = 40,713.
#
# usage (repo root): [THREADS=N] sh weights/ckpt/run11/run.sh xs|s (THREADS: the s part's, 1 by default). Each part is resumable: it picks up from its
# checkpoint, or skips a stage whose output is already in weights/ckpt/run11/.
set -e
R=weights/ckpt/run11
T=build/training/catanet-train
D="--data ../shared/data/train/T91 --data ../shared/data/train/BSD200 --data ../shared/data/train/flutter-landscapes --data ../shared/data/train/debian-photos"
V="--val ../shared/data/eval/Set5 --val ../shared/data/eval/Set14"
B=40713

# the step a checkpoint is at (catanet-train exited 0 when a signal stopped it until session 12; it now ends
# by the signal, and set -e stops the script, but the step check stays: it is what "finished" means)
ckpt_step() {
    python3 -c 'import json, struct, sys; f = open(sys.argv[1], "rb"); n = struct.unpack("<Q", f.read(8))[0]; print(json.loads(f.read(n))["__metadata__"]["step"])' "$1"
}
stage() {  # stage CKPT FROM OUT ITERS LR MILESTONES: train --from FROM (or resume CKPT), export to OUT
    [ -f "$3" ] && return 0
    if [ -f "$1" ]; then
        $T resume "$1" --threads 1 --quiet
    else
        $T train --from "$2" $D $V --batch 4 --patch 32 --iters "$4" --lr "$5" --milestones "$6" --gamma 0.5 \
            --threads 1 --val-every 1000 --ckpt "$1" --log "${1%.ckpt.safetensors}.csv" --quiet
    fi
    [ "$(ckpt_step "$1")" = "$4" ] || { echo "run.sh: $1 stopped before step $4; run it again to go on" >&2; exit 1; }
    $T export "$1" "$3"
}

case "$1" in
xs)
    W=build/xs11
    if [ ! -f $R/xs_hr.safetensors ]; then
        mkdir -p $W
        LATENCY_OF=weights/catanet_s_x2.safetensors LATENCY_FACTOR=0.8 DATA="../shared/data/train/T91 ../shared/data/train/BSD200 ../shared/data/train/flutter-landscapes ../shared/data/train/debian-photos" \
            BATCH=4 PATCH=32 THREADS=1 P1=120 P2=120 P3=120 R=80 D=600 \
            sh training/xs_pipeline.sh weights/catanet_l_x2.safetensors $W $W/xs_recipe.safetensors > $R/pipeline.log 2>&1
        $T distill --teacher $W/student2.safetensors --student $W/pruned3.safetensors --out $W/xs_hr.safetensors \
            $D --batch 4 --patch 32 --iters 600 --hr-weight 1 --kd-weight 0 --beta 0 --threads 1 \
            --val ../shared/data/eval/Set5 --val ../shared/data/eval/Set14 > $R/final_hr.log 2>&1
        cp $W/decision1.json $W/decision2.json $W/decision3.json $R/
        cp $W/xs_recipe.safetensors $R/xs_recipe.safetensors
        cp $W/xs_hr.safetensors $R/xs_hr.safetensors
    fi
    stage weights/ckpt/catanet_xs11_x2_ft.ckpt.safetensors $R/xs_hr.safetensors $R/xs_ft.safetensors 3000 2e-4 300000 \
        >> $R/xs.log 2>&1
    stage weights/ckpt/catanet_xs11_x2_ft2.ckpt.safetensors $R/xs_ft.safetensors $R/xs_ft2.safetensors 3000 1e-4 1500 \
        >> $R/xs.log 2>&1
    # shipped (weights/README.md), with the note's first clause added (the intermediate exports in
    # ckpt/run11 then left the tree)
    python3 $R/add_note.py $R/xs_ft2.safetensors weights/catanet_xs_x2.safetensors
    ;;
s)
    C=weights/ckpt/catanet_s_x2.ckpt.safetensors
    [ -f $C ] || git show 77a5244:$C > $C  # the step-18,121 checkpoint (left the tree in session 8)
    [ -f $R/s.safetensors ] && exit 0
    $T resume $C --iters $B --milestones 37713,39213 --threads ${THREADS:-1} --quiet >> $R/s.log 2>&1
    # export only a finished run (see ckpt_step)
    step=$(ckpt_step $C)
    [ "$step" = $B ] || { echo "run.sh s: stopped at step $step of $B; run it again to go on" >&2; exit 1; }
    $T export $C $R/s.safetensors
    ;;
*) echo "usage: $0 xs|s" >&2; exit 2 ;;
esac
