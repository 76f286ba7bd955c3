#!/usr/bin/env python3
"""provenance.py NAME: the provenance of a shipped model (NAME: l_x2, xs_x3, s_x4, ...) as the JSON
object its file carries under __metadata__["catanet_provenance"]: the recipe that makes it (a
command from the repository root), the model it starts from, its training stages, the budget in
batch-4-of-32x32 iterations, the data and the machine. One table for every recipe and for
weights/README.md's model cards, so that the files and the cards cannot disagree."""
import json
import sys

COMMON = {
    "data": ["T91", "BSD200", "flutter-landscapes", "debian-photos"],
    "data_note": "341 images of ../shared/data/train; the photos downscaled 2-4x by the data pipeline",
    "loss": "L1", "optimizer": "Adam (0.9, 0.99)", "seed": 3407,
    "augment": "flips and transposes",
    "hardware": "CPU: 2-core x86-64 VM with AVX-512, no GPU",
}
L_X2 = [
    {"op": "train", "iters": 151, "batch": 16, "patch": 64, "lr": 2e-4, "images": 334},
    {"op": "train", "iters": 31177, "batch": 4, "patch": 32, "lr": 2e-4,
     "milestones": [26500, 29000, 31000, 33000], "gamma": 0.5},
]
XS_X2 = [
    {"op": "prune", "keep": 6, "iters": 120, "latency_factor": 0.8, "latency_of": "catanet_s_x2.safetensors"},
    {"op": "distill", "iters": 80, "loss": "0.5 L1 HR + 0.5 L1 teacher + 0.04 FAKD"},
    {"op": "prune", "keep": 4, "iters": 120, "latency_factor": 0.8, "latency_of": "catanet_s_x2.safetensors"},
    {"op": "distill", "iters": 80, "loss": "0.5 L1 HR + 0.5 L1 teacher + 0.04 FAKD"},
    {"op": "prune", "keep": 3, "iters": 120, "max_params": 229999, "latency_factor": 0.8,
     "latency_of": "catanet_s_x2.safetensors"},
    {"op": "distill", "iters": 600, "loss": "L1 HR"},
    {"op": "train", "iters": 3000, "lr": 2e-4},
    {"op": "train", "iters": 3000, "lr": 1e-4, "milestones": [1500], "gamma": 0.5},
]
# the shipped XS x2: the pipeline's XS (7,120 student iterations) trained on, HR-only, to S's 40,713
XS_X2_CONTINUED = XS_X2 + [
    {"op": "train", "iters": 33593, "lr": 2e-4, "milestones": [30593, 32093], "gamma": 0.5},
]
S_X2 = [{"op": "train", "iters": 40713, "lr": 2e-4, "milestones": [37713, 39213], "gamma": 0.5}]
MODELS = {
    "l_x2": {"recipe": "sh experiments/teacher-x2/run.sh", "from": None, "stages": L_X2,
             "budget_iters": 33593},
    "xs_x2": {"recipe": "sh experiments/xs-continued/run.sh",
              "from": {"model": "catanet_l_x2.safetensors", "trained_steps": 31328},
              "stages": XS_X2_CONTINUED, "budget_iters": 74306, "student_iters": 40713,
              "budget_note": "the teacher's 33,593 iterations and the student's 40,713 (S's budget)"},
    # the pipeline's own XS x2 (shipped before the continued run; the start of xs-continued)
    "xs_x2_pipeline": {"recipe": "sh experiments/xs-pipeline/run.sh",
                       "from": {"model": "catanet_l_x2.safetensors", "trained_steps": 31328}, "stages": XS_X2,
                       "budget_iters": 40713, "student_iters": 7120},
    "s_x2": {"recipe": "sh experiments/equal-budget-baseline/run.sh", "from": None, "stages": S_X2,
             "budget_iters": 40713},
}
for name, x2, iters, budget in (("l", "l_x2", 250, 250), ("xs", "xs_x2", 500, 500), ("s", "s_x2", 500, 500)):
    for s in (3, 4):
        MODELS["%s_x%d" % (name, s)] = {
            "recipe": "sh experiments/x3-x4-finetune/run.sh %s" % name,
            "from": {"model": "catanet_%s.safetensors" % x2, "provenance": "as that file's"},
            "stages": [{"op": "train", "scale": s, "iters": iters, "lr": 2e-4}],
            "budget_iters": budget}


def provenance(name):
    p = dict(MODELS[name])
    p.update(COMMON)
    for st in p["stages"]:
        st.setdefault("batch", 4)
        st.setdefault("patch", 32)
    return p


if __name__ == '__main__':
    if len(sys.argv) != 2 or sys.argv[1] not in MODELS:
        sys.exit("usage: provenance.py NAME (one of %s)" % ", ".join(sorted(MODELS)))
    print(json.dumps(provenance(sys.argv[1]), separators=(',', ':')))
