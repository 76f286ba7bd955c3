#!/usr/bin/env python3
"""
bench-official.py: catanet against the official PyTorch CATANet, side by side, in one run on one
machine: the forward at several sizes and a training step (L1 + Adam), with the ratios, catanet's
GFLOP/s and its share of the machine's fp32 FMA peak (measured by catanet-peak, not assumed).

  tools/bench-official.py --official PATH [--build build] [--model weights/catanet_l_x2.safetensors]
                          [--threads 2] [--sizes 64x64,96x96,256x256,480x270] [--runs 3]
                          [--train-batch 4] [--train-patch 32] [--train-steps 3] [--json FILE]

PATH is a checkout of github.com/EquationWalker/CATANet (the product cannot download it). Without
it, or without PyTorch (Debian: python3-torch), the script says so and exits 77 (skipped).
The official code runs on Debian's PyTorch as it is, with two shims where that PyTorch lacks what
the code imports: einops' rearrange (the patterns the model uses) and, before PyTorch 2.0,
F.scaled_dot_product_attention (softmax(q k^T / sqrt(d)) v, as PyTorch's own math path computes
it); and its token sort is made stable, as PyTorch's CUDA sort is (otherwise ties among the
tokens of a cluster are ordered by chance on the CPU and the output changes). Before timing, one
frame goes through both and the outputs must agree. mkldnn is turned off: its float32 gradients through this model are wrong on some CPUs, and
the comparison should be of two correct implementations. Both sides use the same number of threads
and the same weights (the catanet model file, official key names).
Every external program is started with an argument vector; no shell is involved.
"""
import argparse
import importlib.util
import json
import math
import os
import re
import statistics
import struct
import subprocess
import sys
import time
import types


def skip(msg):
    print(f"bench-official: skipped: {msg}")
    sys.exit(77)


# ---- einops.rearrange, enough of it for the official model --------------------------------------
def _parse_side(side):
    groups, i, toks = [], 0, side.split()
    cur = None
    for t in re.findall(r"\(|\)|[A-Za-z_][A-Za-z0-9_]*", side):
        if t == "(":
            cur = []
        elif t == ")":
            groups.append(cur)
            cur = None
        elif cur is not None:
            cur.append(t)
        else:
            groups.append([t])
    return groups


def rearrange(x, pattern, **sizes):
    lhs, rhs = (s.strip() for s in pattern.split("->"))
    lg, rg = _parse_side(lhs), _parse_side(rhs)
    if len(lg) != x.dim():
        raise ValueError(f"rearrange: {pattern} does not fit a {x.dim()}-d tensor")
    known = dict(sizes)
    for g, n in zip(lg, x.shape):
        unknown = [a for a in g if a not in known]
        prod = math.prod(known[a] for a in g if a in known)
        if len(unknown) == 1:
            known[unknown[0]] = n // prod
        elif unknown:
            raise ValueError(f"rearrange: cannot infer {unknown} in {pattern}")
    flat_l = [a for g in lg for a in g]
    flat_r = [a for g in rg for a in g]
    y = x.reshape([known[a] for a in flat_l]).permute([flat_l.index(a) for a in flat_r])
    return y.reshape([math.prod(known[a] for a in g) for g in rg])


def load_official(path, torch):
    arch = os.path.join(path, "basicsr", "archs", "catanet_arch.py")
    if not os.path.isfile(arch):
        skip(f"no official model code at {arch}")
    F = torch.nn.functional
    if not hasattr(F, "scaled_dot_product_attention"):
        def sdpa(q, k, v):
            s = torch.matmul(q, k.transpose(-2, -1)) / math.sqrt(q.shape[-1])
            return torch.matmul(torch.softmax(s, dim=-1), v)
        F.scaled_dot_product_attention = sdpa
    reg = types.ModuleType("basicsr.utils.registry")
    reg.ARCH_REGISTRY = types.SimpleNamespace(register=lambda *a, **k: (lambda c: c))
    util = types.ModuleType("basicsr.archs.arch_util")
    util.trunc_normal_ = torch.nn.init.trunc_normal_
    ein = types.ModuleType("einops")
    ein.rearrange = rearrange
    for name, mod in (("basicsr", types.ModuleType("basicsr")), ("basicsr.utils", types.ModuleType("basicsr.utils")),
                      ("basicsr.archs", types.ModuleType("basicsr.archs")), ("basicsr.utils.registry", reg),
                      ("basicsr.archs.arch_util", util)):
        sys.modules.setdefault(name, mod)
    sys.modules.setdefault("einops", ein)
    # the official argsort of cluster ids is not stable, and every cluster is a long run of ties:
    # on the CPU that reorders tokens by chance and changes the output. PyTorch's CUDA sort is
    # stable (ties by token index), which is what catanet implements: the CPU run does the same.
    sort = torch.sort
    torch.argsort = lambda x, dim=-1, descending=False: sort(x, dim=dim, descending=descending, stable=True)[1]
    spec = importlib.util.spec_from_file_location("catanet_arch_official", arch)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def read_safetensors(path, torch):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        head = json.loads(f.read(n))
        data = f.read()
    meta = head.pop("__metadata__", {})
    dt = {"F32": torch.float32, "BOOL": torch.bool, "I64": torch.int64, "F16": torch.float16}
    out = {}
    for k, v in head.items():
        a, b = v["data_offsets"]
        t = torch.frombuffer(bytearray(data[a:b]), dtype=dt[v["dtype"]]) if b > a else torch.zeros(0, dtype=dt[v["dtype"]])
        out[k] = t.reshape(v["shape"]).clone()
    return out, meta


def write_npy(path, t):
    """float32 C-order array as NPY version 1.0 (the format catanet-upscale reads)"""
    shape = "(" + ", ".join(str(d) for d in t.shape) + ("," if t.dim() == 1 else "") + ")"
    head = "{'descr': '<f4', 'fortran_order': False, 'shape': %s, }" % shape
    head += " " * (63 - (10 + len(head)) % 64) + "\n"
    with open(path, "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(head)) + head.encode() + t.contiguous().numpy().tobytes())


def read_npy(path, torch):
    with open(path, "rb") as f:
        data = f.read()
    n = struct.unpack("<H", data[8:10])[0]
    shape = tuple(int(v) for v in re.search(r"\(([0-9, ]*)\)", data[10:10 + n].decode()).group(1).split(",") if v.strip())
    return torch.frombuffer(bytearray(data[10 + n:]), dtype=torch.float32).reshape(shape)


def run(argv):
    return subprocess.run(argv, check=True, capture_output=True, text=True).stdout


def median_time(fn, runs, warmup=1):
    for _ in range(warmup):
        fn()
    ts = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--official", default=os.environ.get("CATANET_OFFICIAL", ""))
    ap.add_argument("--build", default="build")
    ap.add_argument("--model", default="weights/catanet_l_x2.safetensors")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--sizes", default="64x64,96x96,256x256,480x270")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--train-batch", type=int, default=4)
    ap.add_argument("--train-patch", type=int, default=32)
    ap.add_argument("--train-steps", type=int, default=3)
    ap.add_argument("--json", default="")
    a = ap.parse_args()
    # Both sides on the OpenMP build of OpenBLAS where Debian has it: PyTorch calls the BLAS from
    # its own OpenMP threads too, and the pthreads build (which Debian's alternatives pick once it
    # is installed) makes its multi-threaded steps many times slower, as it made catanet's.
    blas = "/usr/lib/x86_64-linux-gnu/openblas-openmp"
    if os.path.isfile(os.path.join(blas, "libopenblas.so.0")) and os.environ.get("LD_LIBRARY_PATH") != blas:
        os.environ["LD_LIBRARY_PATH"] = blas
        os.execv(sys.executable, [sys.executable] + sys.argv)
    if not a.official:
        skip("give the official code's checkout with --official PATH (or CATANET_OFFICIAL)")
    try:
        import torch
    except ImportError:
        skip("PyTorch is not installed (Debian: python3-torch)")
    official = load_official(a.official, torch)
    torch.set_num_threads(a.threads)
    torch.backends.mkldnn.enabled = False
    tools = os.path.join(a.build, "tools")

    sd, meta = read_safetensors(a.model, torch)
    arch = json.loads(meta.get("catanet_arch", "{}"))
    groups = arch.get("groups") or []
    scale = int(arch.get("upscale", 2))
    if groups and (len(groups) != 8 or arch.get("dim") != 40):
        sys.exit("bench-official: the official CATANet class is CATANet-L (8 groups, dim 40); give such a model")
    net = official.CATANet(upscale=scale)
    missing, unexpected = net.load_state_dict(sd, strict=False)
    if [k for k in missing if not k.endswith("initted")] or unexpected:
        sys.exit(f"bench-official: weights do not fit the official model: missing {missing}, unexpected {unexpected}")
    net.eval()

    # both sides compute the same function: one 64x64 frame through each, compared
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        # a photo-like frame (smooth content, a little noise): pure noise puts many tokens near a
        # tie between two centres
        yy, xx = torch.meshgrid(torch.arange(64.0), torch.arange(64.0), indexing="ij")
        x = torch.stack([0.5 + 0.3 * torch.sin(0.21 * xx + 0.13 * yy + c) for c in range(3)])
        x = (x + 0.05 * torch.randn(3, 64, 64, generator=torch.Generator().manual_seed(3))).clamp(0, 1)
        write_npy(os.path.join(tmp, "in.npy"), x)
        run([os.path.join(tools, "catanet-upscale"), "-m", a.model, "-t", str(a.threads), os.path.join(tmp, "in.npy"),
             os.path.join(tmp, "out.npy")])
        with torch.no_grad():
            ref = net(x[None])[0]
        err = read_npy(os.path.join(tmp, "out.npy"), torch) - ref
    # a token whose two best centres are nearly tied may join another cluster in either
    # implementation (float32 rounding), which moves a few pixels: compare by PSNR, not max |diff|
    agree = 10 * math.log10(1 / max(err.pow(2).mean().item(), 1e-20))
    if not agree >= 50:
        sys.exit(f"bench-official: catanet and the official model disagree on a 64x64 frame: {agree:.1f} dB PSNR "
                 f"(max |diff| {err.abs().max().item():.3g})")

    peak = json.loads(run([os.path.join(tools, "catanet-peak"), "-t", str(a.threads)]))
    rows = []
    print(f"machine: {os.cpu_count()} CPUs, fp32 FMA peak {peak['gflops']:.1f} GFLOP/s on {a.threads} threads "
          f"({peak['isa']}, catanet-peak); torch {torch.__version__} ({torch.get_num_threads()} threads, mkldnn off)")
    print(f"model: {a.model} (x{scale}, {sum(p.numel() for p in net.parameters())} parameters); outputs agree to "
          f"{agree:.1f} dB PSNR on a 64x64 frame")
    print(f"{'case':<26}{'official ms':>12}{'catanet ms':>12}{'ratio':>8}{'GFLOP':>9}{'GFLOP/s':>9}{'% peak':>8}")
    for size in a.sizes.split(","):
        w, h = (int(v) for v in size.split("x"))
        x = torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(1))
        with torch.no_grad():
            t_off = median_time(lambda: net(x), a.runs)
        bench = json.loads(run([os.path.join(tools, "catanet-bench"), "-m", a.model, "-d", "cpu", "-t", str(a.threads),
                                "-s", size, "-n", str(a.runs)]).strip().splitlines()[-1])
        cost = run([os.path.join(tools, "catanet-cost"), "-m", a.model, "-s", size])
        gflop = float(re.search(r"^\s*total\s+([0-9.]+)", cost, re.M).group(1))
        t_cat = bench["ms_median"] / 1e3
        rows.append(dict(case=f"forward {size}", official_s=t_off, catanet_s=t_cat, gflop=gflop))

    # a training step: batch of random LR patches, HR targets, L1 loss, Adam
    B, P = a.train_batch, a.train_patch
    g = torch.Generator().manual_seed(2)
    lr_img, hr_img = torch.rand(B, 3, P, P, generator=g), torch.rand(B, 3, P * scale, P * scale, generator=g)
    tnet = official.CATANet(upscale=scale)
    tnet.train()
    opt = torch.optim.Adam(tnet.parameters(), lr=2e-4, betas=(0.9, 0.99))

    def step():
        opt.zero_grad()
        loss = torch.nn.functional.l1_loss(tnet(lr_img), hr_img)
        loss.backward()
        opt.step()

    t_off = median_time(step, a.train_steps, warmup=2)
    out = run([os.path.join(a.build, "training", "catanet-train"), "bench", "--scale", str(scale), "--batch", str(B),
               "--patch", str(P), "--threads", str(a.threads), "--iters", str(a.train_steps)])
    t_cat = float(re.search(r"([0-9.]+) s/step", out).group(1))
    cost = run([os.path.join(tools, "catanet-cost"), "-m", a.model, "-s", f"{P}x{P}"])
    # a step is the forward, the backward (about twice the forward) and Adam: 3x the forward's FLOPs
    gflop = 3 * B * float(re.search(r"^\s*total\s+([0-9.]+)", cost, re.M).group(1))
    rows.append(dict(case=f"train step {B}x{P}x{P}", official_s=t_off, catanet_s=t_cat, gflop=gflop))

    for r in rows:
        r["ratio"] = r["official_s"] / r["catanet_s"]
        r["gflops"] = r["gflop"] / r["catanet_s"]
        r["peak_share"] = r["gflops"] / peak["gflops"]
        print(f"{r['case']:<26}{r['official_s'] * 1e3:>12.1f}{r['catanet_s'] * 1e3:>12.1f}{r['ratio']:>7.2f}x"
              f"{r['gflop']:>9.2f}{r['gflops']:>9.1f}{100 * r['peak_share']:>7.1f}%")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(dict(peak=peak, threads=a.threads, model=a.model, torch=torch.__version__, rows=rows), f, indent=1)


if __name__ == "__main__":
    main()
