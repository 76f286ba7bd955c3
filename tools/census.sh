#!/bin/sh
# census.sh [-b BUILDDIR] MODEL WxH [fp16|fp32] [primary|fallback]: what one frame of the CUDA engine
# launches, and how full each launch keeps an H100/H200 (sm_90, 132 SMs), without a GPU.
#
# 1. The launches: BUILDDIR/emu/census (tests/cuda_emu/census.c; `make BUILDDIR=... emu-build`) runs
#    the engine under the host emulator, dry (no kernel runs), on NV12 device frames, and lists one
#    frame's kernels, GEMMs, copies and memsets in order, with their grids and shared memory. These
#    are exact: the engine's launch shapes depend on the frame size and the model, never on the data.
# 2. The resources: nvcc -Xptxas -v for sm_90 gives each kernel instantiation's registers and static
#    shared memory (cached in BUILDDIR/census/ptxas-sm90.tsv). The census names each launch's
#    instantiation by its symbol (g++ mangles a kernel as nvcc does), so each row gets its own.
# 3. The occupancy model: sm_90 limits (65,536 registers, 64 warps, 32 blocks and 228 KB of shared
#    memory per SM, 1 KB of it reserved per block, registers allocated per warp in units of 256),
#    blocks per SM = the smallest of those limits; waves = blocks / (132 x blocks per SM).
# Counted and modelled, not measured: what it shows is where a launch cannot fill the GPU, not time.
# Output: one row per distinct launch (kernel and shape), in first-launch order, then the totals.
cd "$(dirname "$0")/.." || exit 1
B=build
if [ "$1" = "-b" ]; then B=$2; shift 2; fi
[ $# -ge 2 ] || { echo "usage: tools/census.sh [-b BUILDDIR] MODEL WxH [fp16|fp32] [primary|fallback]" >&2; exit 2; }
CEN=$B/emu/census
[ -x "$CEN" ] || { echo "census.sh: $CEN not built (make BUILDDIR=$B emu-build)" >&2; exit 1; }
mkdir -p "$B/census" || exit 1
launches=$B/census/launches.tsv
"$CEN" "$@" > "$launches" 2> "$B/census/census.log" || { cat "$B/census/census.log" >&2; exit 1; }

# registers and static shared memory of each kernel instantiation, from ptxas (sm_90), rebuilt when
# a source changed: "mangled<TAB>registers<TAB>smem<TAB>name" (name demangled, without its parameters)
res=$B/census/ptxas-sm90.tsv
NVCC=${NVCC:-$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)}
stale=1
if [ -s "$res" ] && [ -z "$(find kernels/cuda -newer "$res" -name '*.cu*' | head -1)" ]; then stale=0; fi
if [ $stale = 1 ] && [ -x "$NVCC" ] && [ -f "$B/config.h" ]; then
    echo "census.sh: ptxas -v for sm_90 (once per source change, about a minute)" >&2
    : > "$res.tmp"
    for f in kernels/cuda/*.cu; do
        "$NVCC" -O3 -std=c++17 -arch=sm_90 -Xptxas -v -Iinclude -Ikernels -Iengine -I"$B" -c "$f" -o /dev/null 2>&1 |
            awk '/Compiling entry function/ { fn = $7; gsub(/\047/, "", fn) }
                 /Used [0-9]+ registers/ { s = 0; if (match($0, /[0-9]+ bytes smem/)) s = substr($0, RSTART, RLENGTH) + 0
                                           printf "%s\t%s\t%d\n", fn, $5, s }' >> "$res.tmp"
    done
    cut -f1 "$res.tmp" | c++filt | sed -E 's/^void //; s/\(.*//' | paste "$res.tmp" - > "$res"
    rm -f "$res.tmp"
fi
[ -s "$res" ] || { echo "census.sh: no ptxas resources (nvcc missing?): registers shown as ?" >&2; : > "$res"; }

head -1 "$launches"
awk -F'\t' -v resfile="$res" '
BEGIN {
    while ((getline line < resfile) > 0) {
        split(line, a, "\t"); regs[a[1]] = a[2]; ssmem[a[1]] = a[3]; pretty[a[1]] = a[4]
        b = a[4]; sub(/<.*/, "", b) # per base name, the most registers of its instantiations
        if (a[2] + 0 > bregs[b] + 0) bregs[b] = a[2]
        if (a[3] + 0 > bsmem[b] + 0) bsmem[b] = a[3]
    }
    SMS = 132; REGS = 65536; WARPS = 64; BLOCKS = 32; SMEM = 233472; RESV = 1024
    printf "%-44s %7s %7s %6s %5s %6s %4s %6s %9s\n", "kernel (launches a frame)", "blocks", "threads", "smem", "regs", "blk/SM", "occ", "waves", "last wave"
}
$1 == "kernel" {
    key = $8 " " $3 " " $4 " " $5
    if (!(key in n)) {
        order[++nk] = key; blk[key] = $3; thr[key] = $4; dsm[key] = $5
        if ($8 in regs) { name[key] = pretty[$8]; r[key] = regs[$8]; sm[key] = ssmem[$8]; exact[key] = 1 }
        else { b = $2; sub(/<.*/, "", b); name[key] = $2; r[key] = bregs[b] + 0; sm[key] = bsmem[b] + 0 }
    }
    n[key]++; kernels++; nb += $3
    next
}
$1 == "gemm" { gemms++; next }
$1 == "memcpy" { copies++; cbytes += $2; next }
$1 == "memset" { sets++; sbytes += $2; next }
END {
    for (i = 1; i <= nk; i++) {
        k = order[i]; rg = r[k]; smem = dsm[k] + sm[k]
        w = int((thr[k] + 31) / 32)
        rw = int((rg + 7) / 8) * 8 * 32; if (rw < 256) rw = 256
        lim = BLOCKS
        if (int(WARPS / w) < lim) lim = int(WARPS / w)
        if (rg > 0 && int(int(REGS / rw) / w) < lim) lim = int(int(REGS / rw) / w)
        if (int(SMEM / (smem + RESV)) < lim) lim = int(SMEM / (smem + RESV))
        waves = lim > 0 ? blk[k] / (SMS * lim) : 0
        last = waves - int(waves); if (last == 0 && waves > 0) last = 1
        nm = name[k]; if (length(nm) > 38) nm = substr(nm, 1, 37) "~"
        printf "%-44s %7d %7d %6d %5s %6d %3d%% %6.2f %8d%%\n", nm " (" n[k] ")", blk[k], thr[k], smem, rg ? rg (exact[k] ? "" : "*") : "?", lim, lim * w / WARPS * 100 + 0.5, waves, last * 100 + 0.5
    }
    printf "total: %d kernel launches (%d distinct), %d blocks; %d cuBLAS GEMMs; %d async copies (%d bytes); %d memsets (%d bytes)\n", kernels, nk, nb, gemms, copies, cbytes, sets, sbytes
    printf "regs: ptxas for sm_90 (* where the instantiation was not matched: its kernel'"'"'s most); occ: resident warps of 64 per SM\n"
}' "$launches"
