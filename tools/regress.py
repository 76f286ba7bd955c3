#!/usr/bin/env python3
"""catanet regression run on sample clips (`make regress`): fps, quality and temporal stability of
catanet_xs against a baseline measured on the same machine and device.

For each clip and device: the clip (a centre crop on the CPU, the whole frame with --full) is the
original; a 2x bicubic downscale of it is the input; catanet_xs and bicubic upscale the input back.
  fps end to end   frames / wall time of the product command: decode the input, catanet_xs,
                   libx264 (veryfast) into an .mp4; process start and model load included.
  fps filter       1 / mean time a frame spends inside catanet_xs, from wall-clock stamps that
                   setpts (RTCTIME) puts on each frame just before and just after the filter; the
                   first frame (warm-up) is left out when there are more than two.
  PSNR-Y, SSIM-Y   against the original (PSNR of the mean squared error over all frames; SSIM:
                   FFmpeg's ssim filter, Y).
  temporal error   mean |(SR_t - SR_t-1) - (HR_t - HR_t-1)| over consecutive frames, Y, 0-255.
  static flicker   mean |SR_t - SR_t-1| over the pixels whose original changes by at most
                   STATIC_THR levels between the two frames (where the truth is still).
Bicubic gets the same figures, as the reference line.

Comparison with a baseline (--baseline FILE): refused (exit 3) when the baseline was measured on
another machine (CPU model, core count), device, GPU or with other settings, unless --force.
A figure regresses when
  fps            now < mean - band, band = K x spread, at least FLOOR x mean and at most
                 max(CAP, FLOOR) x mean (spread: standard deviation of the baseline's repeated
                 runs; now: the mean of this run's repeats; K=3, FLOOR=0.10, CAP=0.50 by default)
  PSNR-Y         now < baseline - 0.05 dB
  SSIM-Y         now < baseline - 0.001
  temporal error, static flicker   now > baseline x 1.05 + 0.002
Exit status: 0 no regression (or no baseline), 1 a regression, 2 an error (bad input, ffmpeg
failed), 3 the baseline belongs to another machine, device or settings.
--update runs the end-to-end pass --repeat times (default 3) and writes the baseline.
"""
import argparse
import base64
import hashlib
import html
import json
import math
import os
import platform
import re
import shutil
import subprocess
import sys
import time

import numpy as np

PROG = "regress"
EXIT_REGRESSION, EXIT_ERROR, EXIT_REFUSED = 1, 2, 3
VIDEO_EXT = (".mp4", ".mkv", ".mov", ".avi", ".mpg", ".mpeg", ".ts", ".264", ".h264", ".265", ".hevc",
             ".webm", ".m4v", ".y4m", ".nut", ".flv")
# the CPU's default set (a few minutes on 2 cores): a still camera with walkers, a hand-held face,
# a thrown ball: still background, global motion, a small fast object
CPU_DEFAULT_CLIPS = ("opencv_vtest_768x576.avi", "openh264_foreman_cif.mp4", "mecavideo_balle_720x576.mp4")
STATIC_THR = 2          # levels (0-255) of original change still counted as static
TOL = {"psnr_y": 0.05, "ssim_y": 0.001, "temporal_rel": 0.05, "temporal_abs": 0.002}


class Error(Exception):
    """A clear message for the user; exit status 2."""


def log(msg):
    print(f"{PROG}: {msg}", file=sys.stderr, flush=True)


def run(cmd, what):
    """Runs a command given as a list (never through a shell); returns (stderr text, seconds)."""
    t0 = time.monotonic()
    p = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    dt = time.monotonic() - t0
    err = p.stderr.decode(errors="replace")
    if p.returncode != 0:
        tail = "\n".join(err.strip().splitlines()[-8:])
        raise Error(f"{what} failed (exit {p.returncode}):\n{tail}")
    return err, dt


def ffmpeg_cmd(ff, *args):
    return [ff, "-nostdin", "-hide_banner", "-nostats", "-y", *args]


# ---- identity ----------------------------------------------------------------------------------

def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def gpu_name():
    if not shutil.which("nvidia-smi"):
        return ""
    try:
        p = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True,
                           timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return p.stdout.decode().strip().splitlines()[0] if p.returncode == 0 and p.stdout.strip() else ""


def first_line(cmd):
    try:
        p = subprocess.run(cmd, capture_output=True, timeout=30)
        return (p.stdout or p.stderr).decode(errors="replace").strip().splitlines()[0]
    except (OSError, subprocess.TimeoutExpired, IndexError):
        return "unknown"


# ---- clips --------------------------------------------------------------------------------------

def list_clips(spec, match):
    if os.path.isfile(spec):
        clips = [spec]
    elif os.path.isdir(spec):
        clips = sorted(os.path.join(spec, n) for n in os.listdir(spec) if n.lower().endswith(VIDEO_EXT))
    else:
        raise Error(f"no clip or folder {spec} (CLIPS=a folder of clips or one clip)")
    if match:
        clips = [c for c in clips if re.search(match, os.path.basename(c))]
    if not clips:
        raise Error(f"no video clips in {spec}" + (f" matching '{match}'" if match else "") +
                    f" (extensions: {' '.join(VIDEO_EXT)})")
    return clips


def probe_size(ffprobe, clip):
    p = subprocess.run([ffprobe, "-v", "error", "-select_streams", "v:0", "-show_entries", "stream=width,height",
                        "-of", "csv=s=x:p=0", clip], capture_output=True)
    m = re.match(rb"\s*(\d+)x(\d+)", p.stdout)
    if p.returncode != 0 or not m:
        raise Error(f"{clip}: not a readable video ({p.stderr.decode(errors='replace').strip() or 'no video stream'})")
    return int(m.group(1)), int(m.group(2))


# ---- metrics ------------------------------------------------------------------------------------

def ssim_y(ff, path, orig, w, h):
    """FFmpeg's SSIM of the Y plane over all frames (its ssim filter: 8x8 windows, SIMD, fast enough
    for whole 1080p clips)."""
    raw = ["-f", "rawvideo", "-pix_fmt", "yuv420p", "-s", f"{w}x{h}"]
    err, _ = run(ffmpeg_cmd(ff, "-v", "info", *raw, "-i", path, *raw, "-i", orig, "-lavfi", "[0:v][1:v]ssim",
                            "-f", "null", "-"), "SSIM")
    m = re.search(r"Parsed_ssim.* SSIM Y:([0-9.]+)", err)
    if not m:
        raise Error("ffmpeg's ssim filter printed no SSIM")
    return float(m.group(1))


def y_frames(path, w, h):
    """Y planes of a raw yuv420p file, one frame at a time."""
    size = w * h * 3 // 2
    with open(path, "rb") as f:
        while True:
            buf = f.read(size)
            if len(buf) < size:
                return
            yield np.frombuffer(buf, np.uint8, w * h).reshape(h, w).astype(np.int16)


def quality(ff, path, orig, w, h, frames):
    """PSNR-Y (of the mean squared error over all frames), SSIM-Y, temporal error, static flicker."""
    if os.path.getsize(path) != os.path.getsize(orig):
        raise Error(f"{path}: {os.path.getsize(path) // (w * h * 3 // 2)} frames, the original has {frames}")
    sq = n = 0
    terr, flick = [], []
    prev = prev_hr = None
    for sr, hr in zip(y_frames(path, w, h), y_frames(orig, w, h)):
        d = (sr - hr).astype(np.float64)
        sq += float((d * d).sum())
        n += d.size
        if prev is not None:
            dsr, dhr = sr - prev, hr - prev_hr
            terr.append(float(np.abs(dsr - dhr).mean()))
            still = np.abs(dhr) <= STATIC_THR
            if still.any():
                flick.append(float(np.abs(dsr[still]).mean()))
        prev, prev_hr = sr, hr
    if n == 0:
        raise Error(f"{path}: no frames to measure")
    mse = sq / n
    return {"psnr_y": round(99.0 if mse == 0 else 10 * math.log10(255 * 255 / mse), 4),
            "ssim_y": round(ssim_y(ff, path, orig, w, h), 5),
            "temporal": round(float(np.mean(terr)), 4) if terr else None,
            "static_flicker": round(float(np.mean(flick)), 4) if flick else None}


def stamps(stderr, n):
    """Per-frame seconds inside catanet_xs from the two showinfo filters' pts (microseconds)."""
    pts = {}
    for m in re.finditer(r"\[Parsed_showinfo_(\d+) @[^\]]*\] n: *(\d+) pts: *(-?\d+)", stderr):
        pts.setdefault(int(m.group(1)), {})[int(m.group(2))] = int(m.group(3))
    if len(pts) != 2:
        raise Error("the frame stamps around catanet_xs were not found in ffmpeg's log")
    before, after = (pts[k] for k in sorted(pts))
    if len(after) != n or set(after) != set(before):
        raise Error(f"catanet_xs passed {len(after)} of the input's {n} frames")
    return [(after[i] - before[i]) / 1e6 for i in sorted(after)]


def mean_spread(xs):
    m = sum(xs) / len(xs)
    s = math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1)) if len(xs) > 1 else 0.0
    return {"mean": round(m, 4), "spread": round(s, 4), "runs": [round(x, 4) for x in xs]}


# ---- one clip on one device ---------------------------------------------------------------------

def measure(a, clip, dev, work):
    w0, h0 = probe_size(a.ffprobe, clip)
    if a.full:
        w, h = w0 - w0 % 4, h0 - h0 % 4
    else:
        w, h = min(2 * a.crop[0], w0) // 4 * 4, min(2 * a.crop[1], h0) // 4 * 4
    if w < 16 or h < 16:
        raise Error(f"{clip}: {w0}x{h0} is too small")
    x, y = (w0 - w) // 2, (h0 - h) // 2
    lw, lh = w // 2, h // 2
    frames = a.frames_cuda if dev == "cuda" else a.frames_cpu
    trim = f"trim=end_frame={frames}," if frames > 0 else ""
    orig, lr, bic, sr = (os.path.join(work, n) for n in ("original.yuv", "input.mov", "bicubic.yuv", "catanet.yuv"))
    raw = ["-fps_mode", "passthrough", "-f", "rawvideo", "-pix_fmt", "yuv420p"]
    # the original crop, the input (lossless FFV1 in a microsecond time base, so that the stamps
    # below keep their precision) and bicubic's upscale, in one pass over the clip
    run(ffmpeg_cmd(a.ffmpeg, "-v", "error", "-i", clip, "-an", "-sn", "-dn", "-filter_complex",
                   f"[0:v]{trim}crop={w}:{h}:{x}:{y},format=yuv420p,split[o][d];"
                   f"[d]scale={lw}:{lh}:flags=bicubic+accurate_rnd,split[l][b];"
                   f"[b]scale={w}:{h}:flags=bicubic+accurate_rnd[u]",
                   "-map", "[o]", *raw, orig,
                   "-map", "[l]", "-fps_mode", "passthrough", "-c:v", "ffv1", "-video_track_timescale", "1000000", lr,
                   "-map", "[u]", *raw, bic), f"{clip}: preparing the input")
    n = os.path.getsize(orig) // (w * h * 3 // 2)
    if n < 1:
        raise Error(f"{clip}: no frame decoded")
    stamp = "setpts=(RTCTIME-RTCSTART)/(TB*1000000),showinfo"
    graph = f"{stamp},catanet_xs=model={a.model}:device={dev},{stamp}"
    # quality pass: the network's frames, losslessly
    run(ffmpeg_cmd(a.ffmpeg, "-v", "error", "-i", lr, "-vf", f"catanet_xs=model={a.model}:device={dev}", *raw, sr),
        f"{clip} on {dev}: catanet_xs")
    # timed passes: the product command (decode, catanet_xs, libx264); the filter's own time is
    # taken here too, where it shares the machine with the encoder as in the product
    e2e, filt = [], []
    for _ in range(a.repeat):
        err, dt = run(ffmpeg_cmd(a.ffmpeg, "-v", "info", "-i", lr, "-vf", graph, "-fps_mode", "passthrough",
                                 "-c:v", "libx264", "-preset", "veryfast", "-crf", "18",
                                 os.path.join(work, "catanet.mp4")), f"{clip} on {dev}: the timed run")
        e2e.append(n / dt)
        t = stamps(err, n)
        t = t[1:] if n > 2 else t   # the first frame warms up
        filt.append(len(t) / max(sum(t), 1e-6))
    res = {"clip": os.path.basename(clip), "device": dev, "frames": n, "original": f"{w}x{h}",
           "input": f"{lw}x{lh}", "crop_at": f"{x},{y}",
           "fps_e2e": mean_spread(e2e),
           "fps_filter": mean_spread(filt),
           "catanet": quality(a.ffmpeg, sr, orig, w, h, n), "bicubic": quality(a.ffmpeg, bic, orig, w, h, n)}
    png = re.sub(r"[^A-Za-z0-9._-]", "_", f"{res['clip']}-{dev}.png")
    res["side_by_side"] = png if side_by_side(a, os.path.join(a.out, png), orig, bic, sr, w, h, n) else None
    return res


def side_by_side(a, png, orig, bic, sr, w, h, n):
    """PNG of the middle frame's central crop: bicubic | catanet | original; False when it failed."""
    cw, ch = min(w, 320), min(h, 240)
    crop = f"select=eq(n\\,{n // 2}),crop={cw}:{ch}"
    ins = []
    for f in (bic, sr, orig):
        ins += ["-f", "rawvideo", "-pix_fmt", "yuv420p", "-s", f"{w}x{h}", "-i", f]
    try:
        run(ffmpeg_cmd(a.ffmpeg, "-v", "error", *ins, "-filter_complex",
                       f"[0:v]{crop}[a];[1:v]{crop}[b];[2:v]{crop}[c];[a][b][c]hstack=inputs=3,format=rgb24",
                       "-frames:v", "1", png), "the side-by-side PNG")
    except Error as e:
        log(f"warning: {e}")
        return False
    return True


# ---- comparison ---------------------------------------------------------------------------------

def identity_mismatch(base, now):
    out = []
    for k in ("cpu", "cores"):
        if base["machine"].get(k) != now["machine"].get(k):
            out.append(f"machine {k}: baseline '{base['machine'].get(k)}', now '{now['machine'].get(k)}'")
    for k in ("full", "crop", "frames_cpu", "frames_cuda"):
        if base["settings"].get(k) != now["settings"].get(k):
            out.append(f"setting {k}: baseline {base['settings'].get(k)}, now {now['settings'].get(k)}")
    devs_now = {r["device"] for r in now["results"]}
    if "cuda" in devs_now and base["machine"].get("gpu") != now["machine"].get("gpu"):
        out.append(f"GPU: baseline '{base['machine'].get('gpu')}', now '{now['machine'].get('gpu')}'")
    devs_base = {r["device"] for r in base["results"]}
    if not devs_now & devs_base:
        out.append(f"device: baseline {sorted(devs_base)}, now {sorted(devs_now)}")
    return out


def compare(base, now, k, floor, cap):
    """Rows (clip, device, metric, baseline, now, delta, verdict) and whether anything regressed."""
    rows, bad = [], False
    index = {(r["clip"], r["device"]): r for r in base["results"]}
    for r in now["results"]:
        b = index.get((r["clip"], r["device"]))
        c, d = r["clip"], r["device"]
        if b is None:
            rows.append((c, d, "(all)", None, None, None, "no baseline"))
            continue
        for key, label in (("fps_e2e", "fps end to end"), ("fps_filter", "fps filter")):
            m, s = b[key]["mean"], b[key].get("spread", 0.0)
            v = r[key]["mean"]
            band = min(max(k * s, floor * m), max(cap, floor) * m)
            limit = m - band
            if k * s > cap * m:
                log(f"warning: {c} on {d}: the baseline's {label} varies by {s:.3g} (standard deviation) around "
                    f"{m:.4g}; the noise band is capped at {max(cap, floor):.0%}: a busy machine? (UPDATE=1 again)")
            ok = v is not None and v >= limit
            bad |= not ok
            rows.append((c, d, label, m, v, v - m, "ok" if ok else f"SLOWER (limit {limit:.4g})"))
        for who in ("catanet", "bicubic"):
            for key, label in (("psnr_y", "PSNR-Y dB"), ("ssim_y", "SSIM-Y"), ("temporal", "temporal error"),
                               ("static_flicker", "static flicker")):
                bv, v = b[who].get(key), r[who].get(key)
                if bv is None or v is None:
                    rows.append((c, d, f"{who} {label}", bv, v, None, "n/a"))
                    continue
                if who == "bicubic":    # the reference line: a change means the input changed
                    verdict = "reference" if abs(v - bv) < 1e-3 else "reference CHANGED (input differs)"
                elif key == "psnr_y":
                    verdict = "ok" if v >= bv - TOL["psnr_y"] else "WORSE"
                elif key == "ssim_y":
                    verdict = "ok" if v >= bv - TOL["ssim_y"] else "WORSE"
                else:
                    verdict = "ok" if v <= bv * (1 + TOL["temporal_rel"]) + TOL["temporal_abs"] else "WORSE"
                bad |= verdict == "WORSE"
                rows.append((c, d, f"{who} {label}", bv, v, v - bv, verdict))
    return rows, bad


def fmt(v):
    if v is None:
        return "-"
    return f"{v:.6g}" if isinstance(v, float) else str(v)


def print_table(rows, out):
    head = ("clip", "device", "metric", "baseline", "now", "delta", "verdict")
    cells = [head] + [(c, d, m, fmt(b), fmt(n), "-" if dl is None else f"{dl:+.4g}", v)
                      for c, d, m, b, n, dl, v in rows]
    widths = [max(len(str(r[i])) for r in cells) for i in range(len(head))]
    for r in cells:
        print("  ".join(str(x).ljust(widths[i]) for i, x in enumerate(r)).rstrip(), file=out)


def figures_rows(now):
    """Rows without a baseline: the figures alone."""
    rows = []
    for r in now["results"]:
        rows.append((r["clip"], r["device"], "fps end to end", None, r["fps_e2e"]["mean"], None, ""))
        rows.append((r["clip"], r["device"], "fps filter", None, r["fps_filter"]["mean"], None, ""))
        for who in ("catanet", "bicubic"):
            for key, label in (("psnr_y", "PSNR-Y dB"), ("ssim_y", "SSIM-Y"), ("temporal", "temporal error"),
                               ("static_flicker", "static flicker")):
                rows.append((r["clip"], r["device"], f"{who} {label}", None, r[who][key], None, ""))
    return rows


def write_html(path, now, rows, verdict, baseline_path):
    """One self-contained page: the crops are embedded (they also lie beside it)."""
    e = html.escape
    m, s = now["machine"], now["software"]
    out = ["<!doctype html><html><head><meta charset='utf-8'><title>catanet regress</title><style>",
           "body{font-family:sans-serif;margin:1.5em}table{border-collapse:collapse;margin:.5em 0}"
           "td,th{border:1px solid #ccc;padding:2px 8px;text-align:right}td:nth-child(1){text-align:left}"
           ".bad{background:#fcc}.ok{background:#dfd}.ref{color:#777}img{image-rendering:pixelated;max-width:100%}"
           "</style></head><body>",
           f"<h1>catanet regress: {e(verdict)}</h1>",
           f"<p>{e(m['cpu'])}, {m['cores']} cores{', ' + e(m['gpu']) if m['gpu'] else ''}; {e(s['ffmpeg'])}; "
           f"catanet {e(s['catanet'])}; model {e(s['model'])} (sha256 {e(s['model_sha256'][:16])}...); "
           f"baseline: {e(baseline_path or 'none')}</p>"]
    for r in now["results"]:
        out.append(f"<h2>{e(r['clip'])} on {e(r['device'])}</h2><p>{r['frames']} frames, input {r['input']} "
                   f"&rarr; {r['original']} (crop at {r['crop_at']} of the clip)</p>")
        out.append("<table><tr><th>metric</th><th>baseline</th><th>now</th><th>delta</th><th>verdict</th></tr>")
        for c, d, metric, b, n, dl, v in rows:
            if c != r["clip"] or d != r["device"]:
                continue
            cls = "bad" if v.startswith(("SLOWER", "WORSE", "reference CHANGED")) else "ref" if v.startswith(
                "reference") else "ok" if v == "ok" else ""
            out.append(f"<tr class='{cls}'><td>{e(metric)}</td><td>{fmt(b)}</td><td>{fmt(n)}</td>"
                       f"<td>{'-' if dl is None else f'{dl:+.4g}'}</td><td>{e(v)}</td></tr>")
        out.append("</table>")
        if r.get("side_by_side"):
            with open(os.path.join(os.path.dirname(path), r["side_by_side"]), "rb") as f:
                b64 = base64.b64encode(f.read()).decode()
            out.append(f"<p>middle frame, centre ({e(r['side_by_side'])}): bicubic | catanet_xs | original</p>"
                       f"<img src='data:image/png;base64,{b64}'>")
    out.append("</body></html>")
    with open(path, "w") as f:
        f.write("\n".join(out))


# ---- main ---------------------------------------------------------------------------------------

def parse_args(argv):
    p = argparse.ArgumentParser(prog="tools/regress.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    env = os.environ.get     # `make regress VAR=...` hands its variables over as REGRESS_VAR
    shared = os.environ.get("CATANET_SHARED", "../shared")
    p.add_argument("--build", default="build", help="build folder with ffmpeg/ffmpeg (default build)")
    p.add_argument("--ffmpeg", help="the ffmpeg to test (default BUILD/ffmpeg/ffmpeg)")
    p.add_argument("--model", default=env("REGRESS_MODEL") or "weights/catanet_xs_x2.safetensors", help="MODEL")
    p.add_argument("--clips", default=env("REGRESS_CLIPS") or "",
                   help="CLIPS: a folder of clips or one clip (default $CATANET_SHARED/data/video; on the CPU "
                        f"without --full, {len(CPU_DEFAULT_CLIPS)} of its clips)")
    p.add_argument("--match", default=env("REGRESS_MATCH") or "", help="MATCH: only the clips whose name matches")
    p.add_argument("--baseline", default=env("REGRESS_BASELINE") or "",
                   help="BASELINE: the baseline JSON to compare with (or to write with --update)")
    p.add_argument("--update", action="store_true", default=env("REGRESS_UPDATE") == "1",
                   help="UPDATE=1: write the baseline (the timed run --repeat times)")
    p.add_argument("--force", action="store_true", default=env("REGRESS_FORCE") == "1",
                   help="FORCE=1: compare even with another machine's, device's or settings' baseline")
    p.add_argument("--full", choices=("auto", "0", "1"), default=env("REGRESS_FULL") or "auto",
                   help="FULL: whole frames and all frames (default: with a GPU only)")
    p.add_argument("--crop", default="256x192", help="input size of the crop when not --full (default 256x192)")
    p.add_argument("--frames-cpu", type=int, help="frames per clip on the CPU (default 6; with --full: all)")
    p.add_argument("--frames-cuda", type=int, help="frames per clip on CUDA (default: all; 6 without --full)")
    p.add_argument("--devices", default=env("REGRESS_DEVICES") or "auto",
                   help="DEVICES: cpu, cuda or cpu,cuda (default: cuda with a GPU, else cpu)")
    p.add_argument("--repeat", type=int, help="timed runs per clip (default 1; 3 with --update)")
    p.add_argument("--fps-k", type=float, default=3.0, help="noise band: K x the baseline's spread (default 3)")
    p.add_argument("--fps-floor", type=float, default=0.10, help="noise band floor, fraction of fps (default 0.10)")
    p.add_argument("--fps-cap", type=float, default=0.50,
                   help="the noise band's widest, fraction of fps (default 0.50: half the fps always fails)")
    p.add_argument("--out", default="", help="report folder (default BUILD/regress)")
    a = p.parse_args(argv)
    a.ffmpeg = a.ffmpeg or os.path.join(a.build, "ffmpeg", "ffmpeg")
    a.ffprobe = os.path.join(os.path.dirname(a.ffmpeg), "ffprobe")
    a.out = a.out or os.path.join(a.build, "regress")
    a.default_clips = not a.clips
    a.clips = a.clips or os.path.join(shared, "data", "video")
    m = re.fullmatch(r"(\d+)x(\d+)", a.crop)
    if not m or not (8 <= int(m.group(1)) <= 8192 and 8 <= int(m.group(2)) <= 8192):
        raise Error(f"--crop {a.crop}: expected WxH, 8 to 8192 each")
    a.crop = (int(m.group(1)), int(m.group(2)))
    gpu = gpu_name()
    a.devices = (["cuda"] if gpu else ["cpu"]) if a.devices == "auto" else a.devices.split(",")
    for d in a.devices:
        if d not in ("cpu", "cuda"):
            raise Error(f"--devices: unknown device '{d}' (cpu, cuda)")
        if d == "cuda" and not gpu:
            raise Error("DEVICES=cuda: no NVIDIA GPU here (nvidia-smi finds none)")
    a.gpu = gpu
    a.full = bool(gpu) if a.full == "auto" else a.full == "1"
    if a.default_clips and not a.full and not a.match:
        a.match = "^(" + "|".join(re.escape(c) for c in CPU_DEFAULT_CLIPS) + ")$"
        log(f"crops on the CPU: {len(CPU_DEFAULT_CLIPS)} of the sample clips ({', '.join(CPU_DEFAULT_CLIPS)}); "
            "MATCH=. for all of them, FULL=1 for whole clips")
    for name in ("frames_cpu", "frames_cuda", "repeat"):
        v = getattr(a, name)
        if v is not None and not 0 <= v <= 100000:
            raise Error(f"--{name.replace('_', '-')} {v}: expected 0 to 100000")
    if a.frames_cpu is None:
        a.frames_cpu = 0 if a.full else 6
    if a.frames_cuda is None:
        a.frames_cuda = 0 if a.full else 6
    if a.repeat is None:
        a.repeat = 3 if a.update else 1
    if a.repeat < 1:
        raise Error("--repeat: at least 1")
    if a.update and not a.baseline:
        raise Error("--update needs --baseline FILE (BASELINE=file): the file to write")
    if not (0 <= a.fps_floor < 1 and 0 <= a.fps_cap < 1 and a.fps_k >= 0):
        raise Error("--fps-floor and --fps-cap are fractions in [0, 1), --fps-k at least 0")
    return a


def main(argv):
    a = parse_args(argv)
    if not os.path.isfile(a.model):
        raise Error(f"the model {a.model} is missing (MODEL=path to another)")
    if re.search(r"[:,;\[\]'\\=]", a.model):   # it goes into the filter graph's text
        raise Error(f"the model path {a.model} holds one of : , ; [ ] ' \\ = (filter graph syntax): "
                    "copy or link the model to a plain path")
    if not os.access(a.ffmpeg, os.X_OK):
        raise Error(f"{a.ffmpeg} is not built (make ffmpeg)")
    clips = list_clips(a.clips, a.match)
    base = None
    if a.baseline and not a.update:
        try:
            with open(a.baseline) as f:
                base = json.load(f)
            base["machine"], base["settings"]  # noqa: B018 (the keys must be there)
            for r in base["results"]:
                r["clip"], r["device"], r["fps_e2e"]["mean"], r["fps_filter"]["mean"]  # noqa: B018
                r["catanet"]["psnr_y"], r["bicubic"]["psnr_y"]  # noqa: B018
        except OSError as e:
            raise Error(f"cannot read the baseline {a.baseline}: {e.strerror} (UPDATE=1 writes one)")
        except (ValueError, KeyError, TypeError) as e:
            raise Error(f"the baseline {a.baseline} is not a regress baseline (it lacks {e})")
    os.environ.setdefault("OMP_WAIT_POLICY", "passive")   # a busy machine: team threads sleep, not spin
    now = {"tool": "catanet regress", "format": 1,
           "machine": {"cpu": cpu_model(), "cores": os.cpu_count(), "gpu": a.gpu, "host": platform.node()},
           "software": {"ffmpeg": first_line([a.ffmpeg, "-hide_banner", "-version"]).split(" Copyright")[0],
                        "catanet": first_line([os.path.join(a.build, "tools", "catanet-bench"), "--version"]),
                        "model": a.model, "model_sha256": sha256(a.model)},
           "settings": {"full": a.full, "crop": None if a.full else f"{a.crop[0]}x{a.crop[1]}",
                        "frames_cpu": a.frames_cpu, "frames_cuda": a.frames_cuda, "static_thr": STATIC_THR},
           "repeat": a.repeat, "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "results": []}
    if base is not None and not a.force:
        why = identity_mismatch(base, {**now, "results": [{"device": d} for d in a.devices]})
        if why:
            log(f"refusing to compare with {a.baseline}: it was measured elsewhere or otherwise:")
            for w in why:
                log(f"  {w}")
            log("measure a baseline here (UPDATE=1 BASELINE=another file), or FORCE=1 to compare anyway")
            return EXIT_REFUSED
    os.makedirs(a.out, exist_ok=True)
    work = os.path.join(a.out, "work")
    t0 = time.monotonic()
    for clip in clips:
        for dev in a.devices:
            shutil.rmtree(work, ignore_errors=True)
            os.makedirs(work)
            log(f"{os.path.basename(clip)} on {dev} ...")
            r = measure(a, clip, dev, work)
            log(f"  {r['frames']} frames {r['input']} -> {r['original']}: {r['fps_e2e']['mean']:.4g} fps end to end, "
                f"{r['fps_filter']['mean']:.4g} fps filter; PSNR-Y {r['catanet']['psnr_y']} dB "
                f"(bicubic {r['bicubic']['psnr_y']})")
            now["results"].append(r)
    shutil.rmtree(work, ignore_errors=True)
    now["seconds"] = round(time.monotonic() - t0, 1)
    rc = 0
    if base is not None:
        for k in ("ffmpeg", "catanet", "model_sha256"):
            if base.get("software", {}).get(k) != now["software"][k]:
                print(f"changed since the baseline: {k}: '{base.get('software', {}).get(k)}' -> '{now['software'][k]}'")
        try:
            rows, bad = compare(base, now, a.fps_k, a.fps_floor, a.fps_cap)
        except (KeyError, TypeError, ZeroDivisionError) as e:
            raise Error(f"the baseline {a.baseline} is not a regress baseline (it lacks {e})")
        if not any(v not in ("no baseline",) for *_, v in rows):
            raise Error(f"no clip of this run is in the baseline {a.baseline}")
        verdict = "REGRESSION" if bad else "no regression"
        rc = EXIT_REGRESSION if bad else 0
    else:
        rows, verdict = figures_rows(now), "baseline measured" if a.update else "figures (no baseline)"
    print(f"catanet regress: {verdict}  ({now['machine']['cpu']}, {', '.join(a.devices)}; "
          f"baseline {a.baseline or 'none'}; model {a.model})")
    print_table(rows, sys.stdout)
    results = os.path.join(a.out, "results.json")
    with open(results, "w") as f:
        json.dump({**now, "verdict": verdict,
                   "comparison": [dict(zip(("clip", "device", "metric", "baseline", "now", "delta", "verdict"), r))
                                  for r in rows] if base is not None else None}, f, indent=1)
    write_html(os.path.join(a.out, "report.html"), now, rows, verdict, a.baseline)
    print(f"{PROG}: {results}, {os.path.join(a.out, 'report.html')} ({now['seconds']} s)")
    if a.update:
        with open(a.baseline, "w") as f:
            json.dump(now, f, indent=1)
        print(f"{PROG}: baseline written: {a.baseline} ({a.repeat} timed runs per clip)")
    elif base is None:
        print(f"{PROG}: nothing compared: BASELINE=file to compare, BASELINE=file UPDATE=1 to write one")
    return rc


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except Error as e:
        log(str(e))
        sys.exit(EXIT_ERROR)
    except KeyboardInterrupt:
        sys.exit(130)
