#!/bin/sh
# catanet_xs takes a model by name, resolved by libcatanet (CATANET_MODEL_PATH's folders, then the
# installed model folder): model=NAME gives the frames of the same file by path; an official
# PyTorch checkpoint (.pth) works by name and by path and gives its safetensors twin's frames; the
# default model is the name catanet_xs_x2; a name not found fails before any frame, listing the
# folders looked in (with a hint when it is the default); -h filter=catanet_xs describes it.
. tests/ffmpeg_lib.sh
need_ffmpeg
R=$SHARED/reference/catanet
src="testsrc2=size=16x12:rate=5:duration=0.2,format=yuv420p"
unset CATANET_MODEL_PATH

mkdir "$TMP/m" "$TMP/other"
cp "$MODEL" "$TMP/m/trained.safetensors"
cp "$R/weights_x2_random.pth" "$TMP/m/official.pth"
cp weights/catanet_xs_x2.safetensors "$TMP/m/"

# run OUT.md5 FILTER-OPTIONS [env]: one frame through catanet_xs, its framemd5; the log in OUT.log
run() {
    out=$1 opts=$2 mp=$3
    CATANET_MODEL_PATH=$mp "$FF" -nostdin -hide_banner -v error -y -lavfi "$src,catanet_xs=cpu_threads=1$opts" \
        -bitexact -f framemd5 "$out" > "$out.log" 2>&1
}
same() { # same A.md5 B.md5: both ran, with the same frames
    [ -s "$1" ] && [ -s "$2" ] && [ "$(hashes "$1")" = "$(hashes "$2")" ]
}

run "$TMP/path.md5" ":model=$MODEL"
run "$TMP/name.md5" ":model=trained" "$TMP/other::$TMP/m"
check "model=trained through CATANET_MODEL_PATH=other::m gives the frames of its path ($(head -c 300 "$TMP/name.md5.log"))" \
    same "$TMP/path.md5" "$TMP/name.md5"

run "$TMP/st.md5" ":model=$R/weights_x2_random.safetensors"
run "$TMP/pth_path.md5" ":model=$R/weights_x2_random.pth"
run "$TMP/pth_name.md5" ":model=official" "$TMP/m"
same "$TMP/st.md5" "$TMP/pth_path.md5" && same "$TMP/st.md5" "$TMP/pth_name.md5"
check "an official .pth checkpoint by path and by name gives its safetensors twin's frames ($(head -c 300 "$TMP/pth_name.md5.log"))" \
    [ $? = 0 ]

run "$TMP/xs_path.md5" ":model=weights/catanet_xs_x2.safetensors"
run "$TMP/default.md5" "" "$TMP/m"
check "no model option: the name catanet_xs_x2, found through CATANET_MODEL_PATH ($(head -c 300 "$TMP/default.md5.log"))" \
    same "$TMP/xs_path.md5" "$TMP/default.md5"

# a name not found: before any frame, the folders listed
run "$TMP/nf.md5" ":model=no_such_model" "$TMP/other:$TMP/m"
rc=$?
check "model=no_such_model: exit $rc, the folders looked in listed ($(head -c 400 "$TMP/nf.md5.log"))" \
    sh -c "[ $rc != 0 ] && grep -q \"model=no_such_model: model 'no_such_model' not found: no no_such_model.safetensors or no_such_model.pth in '$TMP/other', '$TMP/m', '/\" '$TMP/nf.md5.log'"
run "$TMP/bad.md5" ":model=bad name" "$TMP/m"
rc=$?
check "model='bad name' is refused: exit $rc ($(head -c 300 "$TMP/bad.md5.log"))" \
    sh -c "[ $rc != 0 ] && grep -q \"'bad name' is not a model name\" '$TMP/bad.md5.log'"

# the default where it is not installed: the hint says how to fix it
datadir=$(sed -n 's/^#define CATANET_DATADIR "\(.*\)"$/\1/p' "$B/config.h")
if [ -f "$datadir/catanet_xs_x2.safetensors" ] || [ -f "$datadir/catanet_xs_x2.pth" ]; then
    run "$TMP/inst.md5" ""
    check "no model option and no CATANET_MODEL_PATH: the installed catanet_xs_x2 in $datadir" [ $? = 0 ]
else
    run "$TMP/inst.md5" ""
    rc=$?
    check "no model option, none installed in $datadir: exit $rc, the error says how to fix it ($(head -c 400 "$TMP/inst.md5.log"))" \
        sh -c "[ $rc != 0 ] && grep -q \"model 'catanet_xs_x2' not found.*'$datadir'.*this is the default model: install libcatanet's models, set CATANET_MODEL_PATH\" '$TMP/inst.md5.log'"
fi

"$FF" -hide_banner -h filter=catanet_xs > "$TMP/help" 2>&1
check "ffmpeg -h filter=catanet_xs: model is a name looked up in CATANET_MODEL_PATH or a .safetensors/.pth file, default catanet_xs_x2" \
    sh -c "grep -A2 '^   model ' '$TMP/help' | tr -s ' \\n' ' ' | grep -q 'a model name (looked up in CATANET_MODEL_PATH, then libcatanet.s installed model folder) or a .safetensors or .pth file.*(default \"catanet_xs_x2\")'"
finish
