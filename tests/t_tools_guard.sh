#!/bin/sh
# The tools refuse garbage instead of reporting it as success, and small inputs cannot take large memory:
#   - a model whose weights are finite but whose output overflows: catanet-upscale exits 1 naming the cause
#     and writes no file (PNG or NPY); catanet-eval --json exits 1 and prints no NaN/Inf (stdout stays JSON)
#   - a PNG claiming 100000x100000 and one claiming 8000x8000 in a few hundred bytes, a JPEG claiming
#     9000x9000 (81 Mpixel): refused, peak memory measured (getrusage) and bounded
#   - an NPY of shape (1,3,32,32,7) and one whose data is longer than its shape: refused
#   - a write that fails (file-size limit): exit 1, no partial file, no temporary left, an earlier
#     output kept as it was (catanet-upscale, catanet-convert, catanet-mkmodel)
#   - a 10 MB pickle of 1-byte opcodes: refused at the pickle's memory cap, peak memory bounded
B=${BUILDDIR:-build}
SHARED=${CATANET_SHARED:-../shared}
U=$B/tools/catanet-upscale E=$B/tools/catanet-eval C=$B/tools/catanet-convert K=$B/tools/catanet-mkmodel
MODEL=$SHARED/reference/catanet/weights_x2_trained.safetensors
for t in "$U" "$E" "$C" "$K"; do [ -x "$t" ] || { echo "FAIL: $t not built"; exit 1; }; done
[ -f "$MODEL" ] || { echo "FAIL: $MODEL missing"; exit 1; }
command -v python3 > /dev/null || { echo "FAIL: python3 missing (tools/install-deps.sh installs it)"; exit 1; }
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
. "$(dirname "$0")/check_lib.sh"
# peak NAME CMD...: runs CMD (stdout to $W/NAME.out, stderr to $W/NAME.err), prints "EXIT PEAK_KB"
peak() {
    name=$1
    shift
    python3 -c '
import os, resource, subprocess, sys
def limit():  # 4 GB of address space: a reader that lost its cap fails here instead of taking the machine
    if not os.environ.get("CATANET_SANITIZE"):  # (ASan reserves terabytes of shadow address space)
        resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))
rc = subprocess.run(sys.argv[2:], stdout=open(sys.argv[1] + ".out", "w"), stderr=open(sys.argv[1] + ".err", "w"),
                    preexec_fn=limit).returncode
print(rc, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)' "$W/$name" "$@"
}

# ---- an overflowing model: the reference weights with last_conv's scaled to a largest |w| of 3e38 (finite)
python3 - "$MODEL" "$W/over.safetensors" <<'EOF'
import json, struct, sys
b = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", b[:8])[0]
h = json.loads(b[8:8 + n])
t = h["last_conv.weight"]
lo, hi = (8 + n + o for o in t["data_offsets"])
w = struct.unpack("<%df" % ((hi - lo) // 4), b[lo:hi])
k = 3e38 / max(abs(x) for x in w)
out = bytearray(b)
out[lo:hi] = struct.pack("<%df" % len(w), *(x * k for x in w))
open(sys.argv[2], "wb").write(out)
EOF
python3 - "$W/in.npy" <<'EOF'
import struct, sys
H, W = 24, 32
hdr = "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 3, %d, %d), }" % (H, W)
hdr += " " * (63 - (10 + len(hdr)) % 64) + "\n"
data = struct.pack("<%df" % (3 * H * W), *(0.2 + 0.6 * ((i % W) + (i // W % H)) / (W + H) for i in range(3 * H * W)))
open(sys.argv[1], "wb").write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(hdr)) + hdr.encode() + data)
EOF
$U -m "$MODEL" -t 1 "$W/in.npy" "$W/in.png" 2> "$W/mk.err"
check $? "an input PNG from the reference model ($(cat "$W/mk.err"))"
for ext in png npy; do
    $U -m "$W/over.safetensors" -t 1 "$W/in.$ext" "$W/over_out.$ext" 2> "$W/over.err"; rc=$?
    ok=1; [ $rc = 1 ] && [ ! -e "$W/over_out.$ext" ] && grep -q "non-finite" "$W/over.err" && ok=0
    check $ok "overflowing model, .$ext: exit $rc, no file written ($(cat "$W/over.err"))"
done
mkdir "$W/tiny"
cp "$SHARED/data/eval/Set5/HR/baby.png" "$W/tiny/" 2>/dev/null || cp "$SHARED/data/train/T91/t9.bmp" "$W/tiny/"
$E -m "$W/over.safetensors" -t 1 --json --per-image "$W/tiny" > "$W/eval.out" 2> "$W/eval.err"; rc=$?
nan=$(grep -ci "nan\|inf" "$W/eval.out")
json=1; python3 -c 'import json, sys; [json.loads(l) for l in open(sys.argv[1])]' "$W/eval.out" 2> /dev/null && json=0
ok=1; [ $rc = 1 ] && [ "$nan" = 0 ] && [ $json = 0 ] && grep -q "non-finite" "$W/eval.err" && ok=0
check $ok "eval --json, overflowing model: exit $rc, $nan lines with NaN/Inf, stdout $([ $json = 0 ] && echo is || echo is not) JSON ($(head -c 300 "$W/eval.err"))"

# ---- images that claim far more than they hold
python3 - "$W" <<'EOF'
import struct, sys, zlib
def png(path, w, h):
    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\0" * 4096)
    open(path, "wb").write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b""))
png(sys.argv[1] + "/huge.png", 100000, 100000)
png(sys.argv[1] + "/claims8k.png", 8000, 8000)
EOF
# a real JPEG's header (up to the start of its scan) with the frame size patched to 9000x9000, then a few bytes
python3 - "$SHARED/data/train/debian-photos/mate_Aqua.jpg" "$W/jbomb/claims.jpg" <<'EOF'
import os, struct, sys
b = bytearray(open(sys.argv[1], "rb").read())
i, sof, sos = 2, None, None
while i < len(b) and sos is None:
    m, n = b[i + 1], struct.unpack(">H", b[i + 2:i + 4])[0]
    if m in (0xC0, 0xC1, 0xC2):
        sof = i
    if m == 0xDA:
        sos = i + 2 + n
    i += 2 + n
b[sof + 5:sof + 9] = struct.pack(">HH", 9000, 9000)
os.makedirs(os.path.dirname(sys.argv[2]))
open(sys.argv[2], "wb").write(b[:sos + 64])
EOF
# The bound is on the growth over the same tool refusing a garbage file of the same kind (its
# libraries, and in a CUDA build the CUDA runtime's mappings, are 200+ MB of the peak by themselves).
printf 'not a png' > "$W/garbage.png"
set -- $(peak base_u "$U" -m "$MODEL" -t 1 "$W/garbage.png" "$W/garbage.out.png")
base_u=$2
for f in huge claims8k; do
    set -- $(peak "$f" "$U" -m "$MODEL" -t 1 "$W/$f.png" "$W/$f.out.png")
    grow=$(($2 - base_u))
    ok=1; [ "$1" = 1 ] && [ "$grow" -lt 65536 ] && [ ! -e "$W/$f.out.png" ] && grep -q "exceeds 32768\|cannot fit" "$W/$f.err" && ok=0
    check $ok "a $(wc -c < "$W/$f.png")-byte PNG claiming $(python3 -c 'import struct,sys; print("%dx%d" % struct.unpack(">II", open(sys.argv[1],"rb").read()[16:24]))' "$W/$f.png"): exit $1, peak $2 kB, $grow kB over a garbage PNG's (< 64 MB) ($(cat "$W/$f.err"))"
done
mkdir "$W/jgarbage"
printf 'not a jpeg' > "$W/jgarbage/claims.jpg"
set -- $(peak base_e "$E" -s 2 "$W/jgarbage")
base_e=$2
set -- $(peak jbomb "$E" -s 2 "$W/jbomb")
grow=$(($2 - base_e))
ok=1; [ "$1" = 1 ] && [ "$grow" -lt 65536 ] && grep -q "Mpixel" "$W/jbomb.err" && ok=0
check $ok "a $(wc -c < "$W/jbomb/claims.jpg")-byte JPEG claiming 9000x9000: exit $1, peak $2 kB, $grow kB over a garbage JPEG's (< 64 MB) ($(cat "$W/jbomb.err"))"

# ---- NPY shapes: a 5th dimension is not ignored; the data must be what the shape says
python3 - "$W" <<'EOF'
import struct, sys
def npy(path, shape, count):
    hdr = "{'descr': '<f4', 'fortran_order': False, 'shape': %s, }" % (shape,)
    hdr += " " * (63 - (10 + len(hdr)) % 64) + "\n"
    open(path, "wb").write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(hdr)) + hdr.encode() + b"\0\0\0\0" * count)
npy(sys.argv[1] + "/dim5.npy", (1, 3, 32, 32, 7), 3 * 32 * 32 * 7)
npy(sys.argv[1] + "/long.npy", (1, 3, 32, 32), 3 * 32 * 32 + 5)
EOF
$U -m "$MODEL" -t 1 "$W/dim5.npy" "$W/dim5.out.npy" 2> "$W/dim5.err"; rc=$?
ok=1; [ $rc = 1 ] && [ ! -e "$W/dim5.out.npy" ] && grep -q "shape must be (3,H,W) or (1,3,H,W)" "$W/dim5.err" && ok=0
check $ok "NPY of shape (1,3,32,32,7): exit $rc ($(cat "$W/dim5.err"))"
$U -m "$MODEL" -t 1 "$W/long.npy" "$W/long.out.npy" 2> "$W/long.err"; rc=$?
ok=1; [ $rc = 1 ] && grep -q "does not match the shape" "$W/long.err" && ok=0
check $ok "NPY whose data is longer than its shape: exit $rc ($(cat "$W/long.err"))"

# ---- a write that fails: past a file-size limit (tests may run as root, so no read-only folders)
mkdir "$W/out"
echo "earlier result" > "$W/out/keep.png"
(ulimit -f 2; exec "$U" -m "$MODEL" -t 1 "$W/in.png" "$W/out/keep.png") 2> "$W/w1.err"; rc=$?
ok=1; [ $rc = 1 ] && [ "$(cat "$W/out/keep.png")" = "earlier result" ] && [ "$(ls "$W/out")" = keep.png ] && ok=0
check $ok "upscale past a 1 kB file-size limit: exit $rc, the earlier file kept, no temporary left ($(cat "$W/w1.err"))"
(ulimit -f 2; exec "$C" -q "$MODEL" "$W/out/m.safetensors") 2> "$W/w2.err"; rc=$?
ok=1; [ $rc = 1 ] && [ "$(ls "$W/out")" = keep.png ] && ok=0
check $ok "convert past a 1 kB file-size limit: exit $rc, no partial file ($(cat "$W/w2.err"))"
(ulimit -f 2; exec "$K" -o "$W/out/r.safetensors" -g 1) > /dev/null 2> "$W/w3.err"; rc=$?
ok=1; [ $rc = 1 ] && [ "$(ls "$W/out")" = keep.png ] && ok=0
check $ok "mkmodel past a 1 kB file-size limit: exit $rc, no partial file ($(cat "$W/w3.err"))"
$U -m "$MODEL" -t 1 "$W/in.png" "$W/out/keep.png" 2> "$W/w4.err"; rc=$?
ok=1; [ $rc = 0 ] && [ "$(head -c 4 "$W/out/keep.png" | tail -c 3)" = PNG ] && [ "$(ls "$W/out")" = keep.png ] && ok=0
check $ok "without the limit the same write succeeds and replaces the file (exit $rc)"

# ---- a pickle of 10 MB of NONE opcodes in a torch.save archive: refused at the pickle's memory cap
python3 - "$W/big.pth" <<'EOF'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1], "w", zipfile.ZIP_STORED) as z:
    z.writestr("archive/data.pkl", b"\x80\x02" + b"N" * (10 << 20) + b".")
    z.writestr("archive/version", "3\n")
EOF
printf 'not a checkpoint' > "$W/garbage.pth"
set -- $(peak base_c "$C" -q "$W/garbage.pth" "$W/garbage.safetensors")
base_c=$2
set -- $(peak pickle "$C" -q "$W/big.pth" "$W/big.safetensors")
grow=$(($2 - base_c))
ok=1; [ "$1" = 1 ] && [ "$grow" -lt 262144 ] && grep -q "cap" "$W/pickle.err" && [ ! -e "$W/big.safetensors" ] && ok=0
check $ok "a 10 MB pickle of NONEs: exit $1, peak $2 kB, $grow kB over a garbage file's (< 256 MB) ($(cat "$W/pickle.err"))"
exit $fail
