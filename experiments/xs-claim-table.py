#!/usr/bin/env python3
"""The XS claim's table: models side by side on quality, size, work and CPU time, measured in one run.

usage: python3 experiments/xs-claim-table.py [--build DIR] [--shared DIR] [--threads N] [--rounds R]
           [--size WxH] LABEL=MODEL...

For each model: Set5 / Set14 PSNR-Y / SSIM (catanet-eval, the bicubic LR images the sets ship), the
parameters (catanet-bench), GFLOP per LR frame of --size (catanet-cost) and the median CPU ms per
frame on --threads threads (catanet-bench, 3 runs), the models timed back to back, --rounds times
over, so that the machine's drift falls on all of them alike; every round's figure is printed and
the ratio to the first model is the figure to trust. Prints a markdown table.
"""
import argparse
import json
import os
import subprocess
import sys


def run_json_lines(cmd):
    out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True).stdout
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def quality(build, shared, model, threads):
    rows = run_json_lines([os.path.join(build, "tools", "catanet-eval"), "-m", model, "-t", str(threads), "--json",
                           "--no-bicubic", os.path.join(shared, "data", "eval", "Set5"),
                           os.path.join(shared, "data", "eval", "Set14")])
    return {r["set"]: (r["psnr"], r["ssim"]) for r in rows if r.get("method") == "model" and "images" in r}


def gflop(build, model, size):
    out = subprocess.run([os.path.join(build, "tools", "catanet-cost"), "-m", model, "-s", size], check=True,
                         stdout=subprocess.PIPE, text=True).stdout
    for line in out.splitlines():
        f = line.split()
        if f and f[0] == "total":
            return float(f[1])
    raise RuntimeError("catanet-cost printed no total row for " + model)


def bench(build, model, threads, size, runs):
    r = run_json_lines([os.path.join(build, "tools", "catanet-bench"), "-m", model, "-d", "cpu", "-t", str(threads),
                        "-s", size, "-n", str(runs)])[-1]
    return r["params"], r["ms_median"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default="build")
    ap.add_argument("--shared", default=os.environ.get("CATANET_SHARED", "../shared"))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--size", default="480x270")
    ap.add_argument("models", nargs="+", metavar="LABEL=MODEL")
    a = ap.parse_args()
    models = []
    for m in a.models:
        label, sep, path = m.partition("=")
        if not sep or not os.path.isfile(path):
            sys.exit("xs-claim-table: want LABEL=MODEL with an existing model file, got '%s'" % m)
        models.append((label, path))
    q = {p: quality(a.build, a.shared, p, 2) for _, p in models}
    g = {p: gflop(a.build, p, a.size) for _, p in models}
    ms = {p: [] for _, p in models}
    params = {}
    for _ in range(a.rounds):
        for _, p in models:
            params[p], t = bench(a.build, p, a.threads, a.size, 3)
            ms[p].append(t)
    first = models[0][1]
    print("| model | params | Set5 PSNR / SSIM | Set14 PSNR / SSIM | GFLOP per %s frame | CPU ms per frame (%d thread%s, "
          "%d rounds) | time vs %s |" % (a.size, a.threads, "" if a.threads == 1 else "s", a.rounds, models[0][0]))
    print("|---|---|---|---|---|---|---|")
    for label, p in models:
        s5, s14 = q[p]["Set5"], q[p]["Set14"]
        ratio = " / ".join("%.2f" % (t / t0) for t, t0 in zip(ms[p], ms[first]))
        print("| %s | %d | %.2f / %.4f | %.2f / %.4f | %.1f | %s | %s |" % (
            label, params[p], s5[0], s5[1], s14[0], s14[1], g[p], " / ".join("%.0f" % t for t in ms[p]), ratio))


if __name__ == "__main__":
    main()
