#!/bin/sh
# catanet-upscale with the images people have: JPEG in and out, 16-bit PNG, alpha, folders.
#   - a JPEG in (one the tool wrote at -q 95): upscaled close to the same image from PNG
#   - 16-bit PNG in -> 16-bit PNG out holding the network's output at 16 bits (equal to its float
#     output rounded at 65535, most values not a multiple of 257, so not 8 bits widened); --bits 8 gives 8
#   - RGBA in -> RGBA out: the colour is the network's, the alpha plane is MATLAB's bicubic of the
#     input's, both checked value by value against oracles here (a PNG decoder and a bicubic in Python)
#   - a folder of 3 images (PNG, a corrupt PNG, JPEG, in that order) and a text file: 2 outputs (the one
#     after the bad one too), the bad one named with the reason, a progress line per image, a summary, exit 1
#   - refused before any work (exit 2, no output; the model is a path that does not exist, so only a
#     check made before opening it can answer): a .bmp OUT, -f disagreeing with OUT, -f bmp, --bits 16
#     with JPEG, an OUT folder equal to IN whose names would overwrite the inputs, two inputs with one
#     output name, OUT equal to IN; with --suffix the same folder works and the inputs stay as they were
#   - an output past the readers' caps (16385x1 at x2: a side over 32768): refused before the network runs
B=${BUILDDIR:-build}
SHARED=${CATANET_SHARED:-../shared}
U=$B/tools/catanet-upscale
MODEL=$SHARED/reference/catanet/weights_x2_trained.safetensors
[ -x "$U" ] || { echo "FAIL: $U not built"; exit 1; }
[ -f "$MODEL" ] || { echo "FAIL: $MODEL missing"; exit 1; }
command -v python3 > /dev/null || { echo "FAIL: python3 missing (tools/install-deps.sh installs it)"; exit 1; }
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
. "$(dirname "$0")/check_lib.sh"
up() { "$U" -m "$MODEL" -t 1 "$@"; }

# ---- the oracles: a PNG writer and reader (zlib and the five filters) and NPY, independent of libpng
cat > "$W/img.py" <<'EOF'
import math, struct, zlib
CH = {0: 1, 2: 3, 4: 2, 6: 4}
def write_png(path, w, h, depth, ctype, px):  # px: interleaved samples, row by row
    n, bps = CH[ctype], depth // 8
    raw = b""
    for y in range(h):
        row = px[y * w * n:(y + 1) * w * n]
        raw += b"\0" + b"".join(v.to_bytes(bps, "big") for v in row)
    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
    open(path, "wb").write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, ctype, 0, 0, 0))
                           + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
def read_png(path):  # -> w, h, depth, ctype, interleaved samples (not interlaced)
    b = open(path, "rb").read()
    assert b[:8] == b"\x89PNG\r\n\x1a\n"
    i, idat = 8, b""
    while i < len(b):
        n, t = struct.unpack(">I4s", b[i:i + 8])
        d = b[i + 8:i + 8 + n]
        if t == b"IHDR":
            w, h, depth, ctype, _, _, inter = struct.unpack(">IIBBBBB", d)
            assert inter == 0
        elif t == b"IDAT":
            idat += d
        i += 12 + n
    raw, bpp = zlib.decompress(idat), CH[ctype] * depth // 8
    stride, out, prev = w * bpp, bytearray(), bytearray(w * bpp)
    for y in range(h):
        f, r = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for x in range(stride):
            a = r[x - bpp] if x >= bpp else 0
            c = prev[x - bpp] if x >= bpp else 0
            u = prev[x]
            if f == 1: r[x] = (r[x] + a) & 255
            elif f == 2: r[x] = (r[x] + u) & 255
            elif f == 3: r[x] = (r[x] + (a + u) // 2) & 255
            elif f == 4:
                p = a + u - c
                pa, pb, pc = abs(p - a), abs(p - u), abs(p - c)
                r[x] = (r[x] + (a if pa <= pb and pa <= pc else u if pb <= pc else c)) & 255
        out += r
        prev = r
    if depth == 16:
        return w, h, depth, ctype, [out[k] << 8 | out[k + 1] for k in range(0, len(out), 2)]
    return w, h, depth, ctype, list(out)
def read_npy(path):  # -> (h, w), planar floats [3][h][w]
    b = open(path, "rb").read()
    n = struct.unpack("<H", b[8:10])[0]
    shape = eval(b[10:10 + n].decode())["shape"]
    cnt = (len(b) - 10 - n) // 4
    return shape[-2:], struct.unpack("<%df" % cnt, b[10 + n:])
def cubic(x):  # Keys, a = -0.5
    x = abs(x)
    return 1.5 * x**3 - 2.5 * x**2 + 1 if x <= 1 else -0.5 * x**3 + 2.5 * x**2 - 4 * x + 2 if x < 2 else 0
def weights(n, s):  # MATLAB imresize upscaling: half-pixel centres, 4 taps, mirrored edges, normalised
    res = []
    for o in range(n * s):
        u = (o + 0.5) / s + 0.5
        left = math.floor(u - 2)
        taps = []
        for k in range(left, left + 5):
            wt = cubic(u - k)
            if wt:
                j = k - 1
                while j < 0 or j >= n:
                    j = -j - 1 if j < 0 else 2 * n - 1 - j
                taps.append((j, wt))
        tot = sum(t[1] for t in taps)
        res.append([(j, wt / tot) for j, wt in taps])
    return res
def bicubic(p, w, h, s):  # one plane, floats, [h][w] -> [h*s][w*s]
    wy, wx = weights(h, s), weights(w, s)
    mid = [[sum(p[j * w + x] * c for j, c in wy[y]) for x in range(w)] for y in range(h * s)]
    return [sum(mid[y][j] * c for j, c in wx[x]) for y in range(h * s) for x in range(w * s)]
EOF
python3 - "$W" <<'EOF'
import sys
sys.path.insert(0, sys.argv[1])
from img import write_png
d, w, h = sys.argv[1], 40, 32
tex = lambda x, y, c: (x * 7 + y * 5 + c * 40 + (x * y) % 17 * 6) % 256
write_png(d + "/rgb.png", w, h, 8, 2, [tex(x, y, c) for y in range(h) for x in range(w) for c in range(3)])
write_png(d + "/rgb16.png", w, h, 16, 2, [(tex(x, y, c) * 257 + x * 97 + y * 31) % 65536
                                           for y in range(h) for x in range(w) for c in range(3)])
# alpha: an opaque disc on a ramp, so edges and gradients both show
al = lambda x, y: 255 if (x - 18) ** 2 + (y - 14) ** 2 < 81 else x * 6
write_png(d + "/rgba.png", w, h, 8, 6, [tex(x, y, c) if c < 3 else al(x, y)
                                         for y in range(h) for x in range(w) for c in range(4)])
EOF
check $? "test images written"

# ---- JPEG in: a JPEG the tool writes (-q 95), upscaled, against the same upscale of the PNG it came from
up -q 95 "$W/rgb.png" "$W/x2.jpg" 2> "$W/e"; rc=$?
magic=$(head -c 3 "$W/x2.jpg" | od -An -tx1 | tr -d ' ')
ok=1; [ $rc = 0 ] && [ "$magic" = ffd8ff ] && ok=0
check $ok "PNG in, .jpg out: exit $rc, a JPEG file ($magic) ($(cat "$W/e"))"
up "$W/rgb.png" "$W/x2.png" 2> "$W/e" && up "$W/x2.png" "$W/from_png.npy" 2>> "$W/e" &&
    up "$W/x2.jpg" "$W/from_jpg.npy" 2>> "$W/e"; rc=$?
res=$(python3 - "$W" <<'EOF'
import sys
sys.path.insert(0, sys.argv[1])
from img import read_npy
(h, w), a = read_npy(sys.argv[1] + "/from_jpg.npy")
(h2, w2), b = read_npy(sys.argv[1] + "/from_png.npy")
d = [abs(x - y) for x, y in zip(a, b)]
print(0 if (h, w) == (h2, w2) == (128, 160) and sum(d) / len(d) < 0.01 else 1,
      "%dx%d, mean |jpeg - png| %.4f, max %.3f" % (w, h, sum(d) / len(d), max(d)))
EOF
)
check "$([ $rc = 0 ] && echo "${res%% *}" || echo 1)" "JPEG in: upscaled from the JPEG, close to the same from PNG (< 0.01 mean): exit $rc, ${res#* } ($(cat "$W/e"))"

# ---- 16-bit PNG round trip: 16 bits kept, the values the network's
up "$W/rgb16.png" "$W/o16.png" 2> "$W/e" && up "$W/rgb16.png" "$W/o16.npy" 2>> "$W/e" &&
    up --bits 8 "$W/rgb16.png" "$W/o8.png" 2>> "$W/e"; rc=$?
res=$(python3 - "$W" <<'EOF'
import sys
sys.path.insert(0, sys.argv[1])
from img import read_png, read_npy
w, h, depth, ctype, px = read_png(sys.argv[1] + "/o16.png")
(nh, nw), f = read_npy(sys.argv[1] + "/o16.npy")
n = w * h
ref = [round(min(max(f[c * n + i], 0.0), 1.0) * 65535) for i in range(n) for c in range(3)]
off = max(abs(a - b) for a, b in zip(px, ref))
wide = sum(v % 257 != 0 for v in px) / len(px)
d8 = read_png(sys.argv[1] + "/o8.png")[2]
print(0 if depth == 16 and ctype == 2 and (w, h) == (nw, nh) == (80, 64) and off <= 1 and wide > 0.5 and d8 == 8 else 1,
      "%dx%d depth %d, max %d off the float output x 65535, %.0f%% of values not a multiple of 257; --bits 8: depth %d"
      % (w, h, depth, off, 100 * wide, d8))
EOF
)
check "$([ $rc = 0 ] && echo "${res%% *}" || echo 1)" "16-bit PNG in -> 16-bit PNG out: exit $rc, ${res#* } ($(cat "$W/e"))"

# ---- RGBA: colour from the network, alpha the bicubic of the input's alpha
up "$W/rgba.png" "$W/oa.png" 2> "$W/e" && up "$W/rgba.png" "$W/oa.npy" 2> "$W/e_npy"; rc=$?
res=$(python3 - "$W" <<'EOF'
import sys
sys.path.insert(0, sys.argv[1])
from img import read_png, read_npy, bicubic
w0, h0, _, _, src = read_png(sys.argv[1] + "/rgba.png")
w, h, depth, ctype, px = read_png(sys.argv[1] + "/oa.png")
if ctype != 6:
    sys.exit(print(1, "%dx%d colour type %d, not RGBA: the alpha is lost" % (w, h, ctype)))
(nh, nw), f = read_npy(sys.argv[1] + "/oa.npy")
n = w * h
ref_c = [round(min(max(f[c * n + i], 0.0), 1.0) * 255) for i in range(n) for c in range(3)]
col = [px[4 * i + c] for i in range(n) for c in range(3)]
off_c = max(abs(a - b) for a, b in zip(col, ref_c))
ref_a = [round(min(max(v, 0.0), 1.0) * 255) for v in bicubic([src[4 * i + 3] / 255 for i in range(w0 * h0)], w0, h0, 2)]
alpha = [px[4 * i + 3] for i in range(n)]
off_a = max(abs(a - b) for a, b in zip(alpha, ref_a))
print(0 if ctype == 6 and depth == 8 and (w, h) == (80, 64) and off_c <= 1 and off_a <= 1 and len(set(alpha)) > 50 else 1,
      "%dx%d colour type %d: colour at most %d off the network's, alpha at most %d off bicubic (%d distinct values)"
      % (w, h, ctype, off_c, off_a, len(set(alpha))))
EOF
)
check "$([ $rc = 0 ] && echo "${res%% *}" || echo 1)" "RGBA in -> RGBA out: exit $rc, ${res#* } ($(cat "$W/e"))"
ok=1; grep -q "alpha channel is not kept: NPY has none" "$W/e_npy" && ok=0
check $ok "RGBA in, NPY out: alpha dropped with a warning ($(cat "$W/e_npy"))"

# ---- a folder: 2 good images, a corrupt one, a text file
mkdir "$W/in"
cp "$W/rgb.png" "$W/in/a.png"
printf 'not a png at all' > "$W/in/b.png"
cp "$W/x2.jpg" "$W/in/c.jpg"
echo notes > "$W/in/notes.txt"
up "$W/in" "$W/out" 2> "$W/e"; rc=$?
outs=$(ls "$W/out" | tr '\n' ' ')
ok=1; [ $rc = 1 ] && [ "$outs" = "a.png c.png " ] && grep -q "^\[2/3\] b.png: error: .*b.png.*not a PNG" "$W/e" &&
    grep -q "^\[1/3\] a.png 40x32 -> 80x64 [0-9.]* s$" "$W/e" && grep -q "^\[3/3\] c.jpg 80x64 -> 160x128 [0-9.]* s$" "$W/e" &&
    grep -q "2 of 3 images written to .*; 1 failed: b.png$" "$W/e" && ok=0
check $ok "folder of 3 images, one corrupt: exit $rc, outputs: $outs($(cat "$W/e" | tr '\n' '|'))"
res=$(python3 - "$W" <<'EOF'
import sys
sys.path.insert(0, sys.argv[1])
from img import read_png
a, b = read_png(sys.argv[1] + "/out/a.png"), read_png(sys.argv[1] + "/x2.png")
print(0 if a == b else 1, "out/a.png %s the single-file upscale of the same image" % ("equals" if a == b else "differs from"))
EOF
)
check "${res%% *}" "folder: ${res#* }"

# ---- refused before any work: exit 2 and nothing written; a model that does not exist proves the order
mkdir "$W/run"
refuse() {  # refuse WHAT ARGS...
    what=$1
    shift
    "$U" -m "$W/no-such-model.safetensors" "$@" > /dev/null 2> "$W/e"; rc=$?
    ok=1; [ $rc = 2 ] && grep -q -- "$what" "$W/e" && ! grep -q "no-such-model" "$W/e" && [ -z "$(ls "$W/run")" ] && ok=0
    check $ok "refused before the model is opened: $(echo "$*" | sed "s|$W/||g"): exit $rc ($(cat "$W/e"))"
}
refuse "cannot write '.bmp' files" "$W/rgb.png" "$W/run/x.bmp"
refuse "does not match -f jpg" -f jpg "$W/rgb.png" "$W/run/x.png"
refuse "-f: 'bmp'" -f bmp "$W/in" "$W/run/out"
refuse "JPEG is 8-bit" -f jpg --bits 16 "$W/in" "$W/run/out"
refuse "no extension" "$W/rgb.png" "$W/run/x"
refuse "is that input itself" "$W/in" "$W/in"
refuse "is that input itself" "$W/rgb.png" "$W/rgb.png"
mkdir "$W/twins"
cp "$W/rgb.png" "$W/twins/p.png"
cp "$W/x2.jpg" "$W/twins/p.jpg"
refuse "two inputs would both be written to '.*p.png'" "$W/twins" "$W/run/out"
# r.png -> r_x.png with --suffix _x in the same folder, while r_x.png is another input
mkdir "$W/same"
cp "$W/rgb.png" "$W/same/r.png"
cp "$W/rgb.png" "$W/same/r_x.png"
refuse "r_x.png', the output of '.*r.png', is an input too" --suffix _x "$W/same" "$W/same"
# the real model: the .bmp output is still refused and nothing is written
up "$W/rgb.png" "$W/run/x.bmp" 2> "$W/e"; rc=$?
ok=1; [ $rc = 2 ] && [ -z "$(ls "$W/run")" ] && ok=0
check $ok "a .bmp OUT with a real model: exit $rc, nothing written ($(cat "$W/e"))"

# ---- an output past the caps every image read must meet (32768 a side): refused before the network runs
python3 - "$W" <<'PY'
import sys
sys.path.insert(0, sys.argv[1])
from img import write_png
write_png(sys.argv[1] + "/wide.png", 16385, 1, 8, 2, [(x * 3 + c) % 256 for x in range(16385) for c in range(3)])
PY
up "$W/wide.png" "$W/wide_x2.png" 2> "$W/e"; rc=$?
ok=1; [ $rc = 1 ] && [ ! -e "$W/wide_x2.png" ] &&
    grep -q "the output, 32770x2, cannot be written as PNG: a side exceeds 32768" "$W/e" && ok=0
check $ok "a 16385x1 PNG at x2: exit $rc, no file ($(cat "$W/e"))"

# ---- the same folder with --suffix: outputs beside the inputs, the inputs unchanged
cp -r "$W/in" "$W/in_copy"
up --suffix _x2 "$W/in" "$W/in" 2> "$W/e"; rc=$?
outs=$(ls "$W/in" | tr '\n' ' ')
ok=1; [ $rc = 1 ] && [ "$outs" = "a.png a_x2.png b.png c.jpg c_x2.png notes.txt " ] && cmp -s "$W/in/a.png" "$W/in_copy/a.png" &&
    cmp -s "$W/in/b.png" "$W/in_copy/b.png" && cmp -s "$W/in/c.jpg" "$W/in_copy/c.jpg" && ok=0
check $ok "--suffix _x2 into the input folder: exit $rc (b.png still bad), files: $outs inputs unchanged"
exit $fail
