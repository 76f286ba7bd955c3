#!/usr/bin/env python3
"""ncu-summary.py CSV [LABEL]: one frame's kernels as Nsight Compute measured them, summed.

tools/gpu-check.sh runs `ncu --csv --print-units base --metrics dram__bytes_read.sum,
dram__bytes_write.sum,gpu__time_duration.sum --profile-from-start off` over `catanet-gpubench -P 1`
(one frame between cudaProfilerStart and Stop) and feeds its output here. Both CSV layouts ncu
writes are read: the details page (a row per kernel and metric: "ID", "Kernel Name", "Metric
Name", "Metric Unit", "Metric Value") and the raw page (a row per kernel, a column per metric, the
units in the row under the header). Values may carry thousands separators; units are converted
(byte, Kbyte.., nsecond, usecond..). Lines that are not CSV rows (==PROF== notes, the program's
own output) are skipped.

Prints "NCU LABEL total: ..." (kernels, DRAM bytes read and written, the sum of the kernels' own
times: ncu serialises kernels, so this is not the frame's time) and then one "NCU LABEL kernel
NAME: ..." line per kernel name (templates and parameters cut off), largest traffic first (or
longest, without byte metrics). Percentages (unit %: gpu-check's second run, how busy the DRAM,
the SMs, the transcendental (XU) pipe that computes the softmax's exp2, the issue slots and the
tensor pipe were) are averaged over a name's launches weighted by their times and appended to its
line by short name. Exit 1 when no kernel row was found.
"""
import csv
import sys

READ, WRITE, TIME = "dram__bytes_read.sum", "dram__bytes_write.sum", "gpu__time_duration.sum"
SHORT = {"dram__throughput": "dram", "sm__throughput": "sm", "sm__inst_executed_pipe_xu": "xu",
         "sm__issue_active": "issue", "sm__pipe_tensor_op_hmma_cycles_active": "tensor"}
SCALE = {"byte": 1, "kbyte": 1e3, "mbyte": 1e6, "gbyte": 1e9, "tbyte": 1e12,
         "nsecond": 1e-9, "usecond": 1e-6, "msecond": 1e-3, "second": 1,
         "ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1, "b": 1, "kb": 1e3, "mb": 1e6, "gb": 1e9}


def number(text, unit):
    """a metric's value in bytes, seconds or percent; None when it is not a number (n/a)"""
    try:
        v = float(text.replace(",", ""))
    except ValueError:
        return None
    return v * SCALE.get(unit.strip().lower(), 1)


def is_metric(name):
    """a raw metric name (unit.counter.rollup): the columns and rows this script reads"""
    return "__" in name and "." in name


def base_name(name):
    """the kernel's function name: no return type, template arguments or parameters"""
    for stop in ("<", "("):
        if stop in name:
            name = name[:name.index(stop)]
    return name.strip().split(" ")[-1]


def read_rows(lines):
    """kernel id -> (name, {metric: value}, {metric: is a percentage}) from either layout"""
    rows = [r for r in csv.reader(l for l in lines if l.startswith('"'))]
    kernels = {}
    i = 0
    while i < len(rows):
        head = rows[i]
        if "Kernel Name" not in head or "ID" not in head:
            i += 1
            continue
        col = {h: j for j, h in enumerate(head)}
        i += 1
        if "Metric Name" in col:  # details page: a row per metric
            while i < len(rows) and rows[i] != head and len(rows[i]) == len(head):
                r = rows[i]
                i += 1
                m, unit = r[col["Metric Name"]], r[col["Metric Unit"]]
                if is_metric(m):
                    v = number(r[col["Metric Value"]], unit)
                    k = kernels.setdefault(r[col["ID"]], (r[col["Kernel Name"]], {}, {}))
                    if v is not None:
                        k[1][m] = v
                        k[2][m] = unit.strip() == "%"
        else:  # raw page: a column per metric, units in the next row
            units = rows[i] if i < len(rows) and not rows[i][col["ID"]].strip().isdigit() else None
            if units:
                i += 1
            while i < len(rows) and rows[i] != head and len(rows[i]) == len(head):
                r = rows[i]
                i += 1
                k = kernels.setdefault(r[col["ID"]], (r[col["Kernel Name"]], {}, {}))
                for m in col:
                    if is_metric(m):
                        unit = units[col[m]] if units else ""
                        v = number(r[col[m]], unit)
                        if v is not None:
                            k[1][m] = v
                            k[2][m] = unit.strip() == "%"
    return kernels


def main():
    if len(sys.argv) < 2:
        print("usage: ncu-summary.py CSV [LABEL]", file=sys.stderr)
        return 2
    label = sys.argv[2] if len(sys.argv) > 2 else "frame"
    with open(sys.argv[1], errors="replace") as f:
        kernels = read_rows(f.read().splitlines())
    if not kernels:
        print(f"NCU {label}: no kernel rows in {sys.argv[1]}")
        return 1
    by_name = {}  # name -> [launches, read, written, time, {pct metric: [time-weighted sum, weight]}]
    for name, m, pct in kernels.values():
        s = by_name.setdefault(base_name(name), [0, 0.0, 0.0, 0.0, {}])
        s[0] += 1
        s[1] += m.get(READ, 0.0)
        s[2] += m.get(WRITE, 0.0)
        s[3] += m.get(TIME, 0.0)
        w = m.get(TIME, 1.0)
        for k, v in m.items():
            if pct.get(k):
                a = s[4].setdefault(k, [0.0, 0.0])
                a[0] += v * w
                a[1] += w
    n = sum(s[0] for s in by_name.values())
    rd, wr, t = (sum(s[j] for s in by_name.values()) for j in (1, 2, 3))
    missing = sum(1 for _, m, _ in kernels.values() if any(x not in m for x in (READ, WRITE, TIME)))
    print(f"NCU {label} total: {n} kernels, DRAM {rd / 1e9:.3f} GB read + {wr / 1e9:.3f} GB written = "
          f"{(rd + wr) / 1e9:.3f} GB, kernel time {t * 1e3:.3f} ms (summed; ncu serialises kernels)"
          + (f", {missing} kernels without every byte and time metric" if missing else ""))
    for name, s in sorted(by_name.items(), key=lambda kv: (-(kv[1][1] + kv[1][2]), -kv[1][3])):
        bw = (s[1] + s[2]) / s[3] / 1e9 if s[3] > 0 else 0.0
        pcts = "".join(f", {SHORT.get(k.split('.')[0], k.split('.')[0])} {a[0] / a[1]:.0f}%"
                       for k, a in sorted(s[4].items()) if a[1] > 0)
        print(f"NCU {label} kernel {name}: {s[0]} launches, DRAM {s[1] / 1e9:.3f} + {s[2] / 1e9:.3f} GB, "
              f"{s[3] * 1e3:.3f} ms, {bw:.0f} GB/s{pcts}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
