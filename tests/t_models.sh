#!/bin/sh
# Models by name in the tools: a name (no '/', no extension) is found through CATANET_MODEL_PATH
# and gives the same output as its path; an official PyTorch checkpoint (.pth) loads by name and
# by path in every tool that takes -m, and equals its safetensors twin; a name not found is an
# error that lists the folders looked in; a malformed name is refused; --list-models (upscale,
# eval, bench, cost, gpubench) lists what a name reaches: the first folder wins, NAME.safetensors before
# NAME.pth, a folder named twice counts once, an unreadable model is named and makes the exit 1.
B=${BUILDDIR:-build}
SHARED=${CATANET_SHARED:-../shared}
R=$SHARED/reference/catanet
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
nfail=0
npass=0
check() {  # check "description" command...
    d=$1; shift
    if "$@"; then echo "PASS: $d"; npass=$((npass + 1)); else echo "FAIL: $d"; nfail=$((nfail + 1)); fi
}
[ -f "$R/weights_x2_random.pth" ] || { echo "FAIL: $R/weights_x2_random.pth missing (set CATANET_SHARED)"; exit 1; }
U=$B/tools/catanet-upscale
unset CATANET_MODEL_PATH

# two model folders: a holds the .pth checkpoint under a new name and a shadowing copy of XS x3;
# b holds XS x2 and x3 (x3 shadowed by a's), and a .pth beside its safetensors twin
mkdir -p "$W/a" "$W/b" "$W/empty"
cp "$R/weights_x2_random.pth" "$W/a/ref_pth.pth"
cp weights/catanet_xs_x4.safetensors "$W/a/catanet_xs_x3.safetensors"
cp weights/catanet_xs_x2.safetensors weights/catanet_xs_x3.safetensors "$W/b/"
cp "$R/weights_x3_random.pth" "$W/b/catanet_xs_x2.pth"
MP="$W/empty::$W/a:$W/b:$W/a"

# a small input (NPY: float, exact)
python3 - "$W/in.npy" <<'EOF'
import struct, sys
H, W = 12, 16
hdr = "{'descr': '<f4', 'fortran_order': False, 'shape': (3, %d, %d), }" % (H, W)
hdr += " " * (63 - (10 + len(hdr)) % 64) + "\n"
data = struct.pack("<%df" % (3 * H * W), *(0.1 + 0.8 * ((i * 7919) % 101) / 100 for i in range(3 * H * W)))
open(sys.argv[1], "wb").write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(hdr)) + hdr.encode() + data)
EOF

# by name = by path (the first folder that has it: a's x3 is the x4 model, so the output is 4x)
CATANET_MODEL_PATH=$MP $U -m catanet_xs_x2 -t 1 "$W/in.npy" "$W/name.npy" 2> "$W/e1"
r1=$?
$U -m weights/catanet_xs_x2.safetensors -t 1 "$W/in.npy" "$W/path.npy" 2>> "$W/e1"
check "catanet-upscale -m catanet_xs_x2 through CATANET_MODEL_PATH: the output of its path (exit $r1$(head -c 200 "$W/e1"))" \
    sh -c "[ $r1 = 0 ] && cmp -s '$W/name.npy' '$W/path.npy'"
CATANET_MODEL_PATH=$MP $U -m catanet_xs_x3 -t 1 "$W/in.npy" "$W/x3.npy" 2> "$W/e2"
$U -m weights/catanet_xs_x4.safetensors -t 1 "$W/in.npy" "$W/x4.npy" 2>> "$W/e2"
check "the first folder of CATANET_MODEL_PATH wins (a's catanet_xs_x3 is the x4 model: equal outputs)" \
    cmp -s "$W/x3.npy" "$W/x4.npy"

# the official checkpoint: by name (a's ref_pth.pth) and by path, equal to the safetensors twin
CATANET_MODEL_PATH=$MP $U -m ref_pth -t 1 "$W/in.npy" "$W/pth_name.npy" 2> "$W/e3"
r1=$?
$U -m "$R/weights_x2_random.pth" -t 1 "$W/in.npy" "$W/pth_path.npy" 2>> "$W/e3"
r2=$?
$U -m "$R/weights_x2_random.safetensors" -t 1 "$W/in.npy" "$W/st.npy" 2>> "$W/e3"
check "a .pth checkpoint by name and by path gives the output of its safetensors twin (exits $r1 $r2$(head -c 200 "$W/e3"))" \
    sh -c "[ $r1 = 0 ] && [ $r2 = 0 ] && cmp -s '$W/pth_name.npy' '$W/st.npy' && cmp -s '$W/pth_path.npy' '$W/st.npy'"
# the .pth in every other tool that takes -m (eval on a one-image folder, bench, cost)
mkdir "$W/set"
$U -m weights/catanet_xs_x2.safetensors -t 1 "$W/in.npy" "$W/set/img.png" 2> /dev/null
for t in "catanet-eval -t 1 --no-bicubic $W/set" "catanet-bench -t 1 -s 8x8 -n 1 -w 0" "catanet-cost -s 64x64"; do
    name=${t%% *}
    CATANET_MODEL_PATH=$MP $B/tools/$name -m ref_pth ${t#* } > "$W/o" 2> "$W/e"
    r1=$?
    $B/tools/$name -m "$R/weights_x2_random.pth" ${t#* } > "$W/o2" 2>> "$W/e"
    r2=$?
    check "$name -m ref_pth (by name) and -m weights_x2_random.pth (by path) run (exits $r1 $r2$(head -c 200 "$W/e"))" \
        sh -c "[ $r1 = 0 ] && [ $r2 = 0 ] && [ -s '$W/o' ]"
done

# not found: exit 1, the name, both file names and every folder looked in (the empty entry skipped)
CATANET_MODEL_PATH=$MP $U -m no_such_model "$W/in.npy" "$W/nf.npy" > "$W/o" 2> "$W/e"
rc=$?
msg=$(cat "$W/e")
want="model 'no_such_model' not found: no no_such_model.safetensors or no_such_model.pth in '$W/empty', '$W/a', '$W/b', '/"
check "a name not found: exit $rc, the folders listed ($msg)" \
    sh -c "[ $rc = 1 ] && grep -qF \"$want\" '$W/e' && [ ! -e '$W/nf.npy' ]"
$U -m no_such_model "$W/in.npy" "$W/nf.npy" 2> "$W/e"
check "a name not found without CATANET_MODEL_PATH names the installed folder and says the variable is not set ($(cat "$W/e"))" \
    grep -q "not found: .* in '/.*'.*CATANET_MODEL_PATH, which is not set" "$W/e"
CATANET_MODEL_PATH=$MP $U -m 'bad name' "$W/in.npy" "$W/nf.npy" 2> "$W/e"
rc=$?
check "a malformed name is refused: exit $rc ($(cat "$W/e"))" \
    sh -c "[ $rc = 1 ] && grep -q \"'bad name' is not a model name\" '$W/e'"

# the listing: the same in every tool that takes -m
CATANET_MODEL_PATH=$MP $U --list-models > "$W/list" 2> "$W/e"
rc=$?
# expected lines, by field: a's two models (sorted), then b's x2 (its .pth shadowed by the safetensors)
awk 'NR > 1 { print $1, $2, $4 }' "$W/list" > "$W/got"
printf '%s\n' "catanet_xs_x3 x4 $W/a/catanet_xs_x3.safetensors" "ref_pth x2 $W/a/ref_pth.pth" \
    "catanet_xs_x2 x2 $W/b/catanet_xs_x2.safetensors" > "$W/want"
check "--list-models: a's models, then b's not shadowed ones, each once (exit $rc): $(tr '\n' ';' < "$W/got")" \
    sh -c "[ $rc = 0 ] && cmp -s '$W/got' '$W/want' && head -1 '$W/list' | grep -q '^NAME  *SCALE  *PARAMS  *PATH$'"
check "--list-models prints the parameter count of each model (catanet_xs_x2: 216515)" \
    grep -q "^catanet_xs_x2  *x2  *216515  " "$W/list"
for t in catanet-eval catanet-bench catanet-cost catanet-gpubench; do
    CATANET_MODEL_PATH=$MP $B/tools/$t --list-models > "$W/l2" 2> /dev/null
    check "$t --list-models lists the same" cmp -s "$W/list" "$W/l2"
done
CATANET_MODEL_PATH=$W/empty $U --list-models > "$W/o" 2> "$W/e"
rc=$?
check "--list-models with no model anywhere: exit $rc, says where it looked ($(cat "$W/e"))" \
    sh -c "[ $rc = 0 ] && [ ! -s '$W/o' ] && grep -q 'no models found in CATANET_MODEL_PATH ($W/empty) nor in /' '$W/e'"
echo "not a model" > "$W/empty/broken.safetensors"
CATANET_MODEL_PATH=$W/empty $U --list-models > "$W/o" 2> "$W/e"
rc=$?
check "--list-models with an unreadable model: exit $rc, its line and the reason ($(head -c 200 "$W/e"))" \
    sh -c "[ $rc = 1 ] && grep -q '^broken .* $W/empty/broken.safetensors: unreadable$' '$W/o' && grep -q 'broken.safetensors' '$W/e'"

echo "$npass passed, $nfail failed"
[ $nfail = 0 ]
