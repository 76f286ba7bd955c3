#!/bin/sh
# Every tool's command line: --help on stdout with exit 0, --version on stdout with exit 0, an unknown
# option exits 2 with the usage on stderr (nothing on stdout), numbers and choices are checked
# (tools/cli.h: whole string, range) instead of read as 0 or the default.
B=${BUILDDIR:-build}
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
. "$(dirname "$0")/check_lib.sh"
version=$(sed -n 's/^#define CATANET_VERSION_\(MAJOR\|MINOR\|MICRO\) \([0-9]*\)$/\2/p' include/catanet.h | paste -sd.)
tools=$(ls tools/catanet-*.c | sed 's|tools/\(.*\)\.c|\1|')
[ -n "$tools" ] && [ -n "$version" ] || { echo "FAIL: no tools or no version found (run from the source tree)"; exit 1; }
for t in $tools; do
    x=$B/tools/$t
    [ -x "$x" ] || { check 1 "$t is not built"; continue; }
    "$x" --help > "$W/o" 2> "$W/e"; rc=$?
    ok=1; [ $rc = 0 ] && grep -q "usage: $t" "$W/o" && [ ! -s "$W/e" ] && ok=0
    check $ok "$t --help: exit $rc, usage on stdout, stderr empty"
    "$x" --version > "$W/o" 2> "$W/e"; rc=$?
    ok=1; [ $rc = 0 ] && [ "$(cat "$W/o")" = "$t (catanet) $version" ] && [ ! -s "$W/e" ] && ok=0
    check $ok "$t --version: exit $rc, '$(cat "$W/o")'"
    "$x" --no-such-option > "$W/o" 2> "$W/e"; rc=$?
    ok=1; [ $rc = 2 ] && [ ! -s "$W/o" ] && grep -q "usage: $t" "$W/e" && ok=0
    check $ok "$t --no-such-option: exit $rc, usage on stderr only"
done
# refused: exit 2, the option and the value named on stderr (each before any file is opened), run in an
# empty folder that must stay empty
BA=$(cd "$B" && pwd)
mkdir "$W/run"
refuse() {  # refuse TOOL WHAT ARGS...
    t=$1 what=$2
    shift 2
    (cd "$W/run" && exec "$BA/tools/$t" "$@") > "$W/o" 2> "$W/e"; rc=$?
    ok=1; [ $rc = 2 ] && grep -q -- "$what" "$W/e" && ok=0
    check $ok "$t $*: exit $rc ($(head -1 "$W/e"))"
}
refuse catanet-upscale "-t: 'abc'" -m m.safetensors -t abc in.png out.png
refuse catanet-upscale "-t: '4x'" -m m.safetensors -t 4x in.png out.png
refuse catanet-upscale "--bits: '12'" -m m.safetensors --bits 12 in.png out.png
refuse catanet-upscale "--tile: '-5'" -m m.safetensors --tile -5 in.png out.png
refuse catanet-upscale "-p: 'fp64'" -m m.safetensors -p fp64 in.png out.png
refuse catanet-upscale "-d: 'gpu'" -m m.safetensors -d gpu in.png out.png
refuse catanet-upscale "-q: '0'" -m m.safetensors -q 0 in.png out.jpg
refuse catanet-upscale "-q: '9x'" -m m.safetensors -q 9x in.png out.jpg
refuse catanet-upscale "-f: 'webp'" -m m.safetensors -f webp in.png out
refuse catanet-upscale "--suffix: 'x/y'" -m m.safetensors --suffix x/y in out
refuse catanet-bench "-t: 'abc'" -m m.safetensors -t abc
refuse catanet-bench "-n: '0'" -m m.safetensors -n 0
refuse catanet-bench "-s: '64' is not a size" -m m.safetensors -s 64
refuse catanet-bench "-k: 'fast'" -m m.safetensors -k fast
refuse catanet-eval "-t: 'abc'" -m m.safetensors -t abc dir
refuse catanet-eval "-s: '9'" -s 9 dir
refuse catanet-cost "-s: '0x540' is not a size" -m m.safetensors -s 0x540
refuse catanet-mkmodel "-s: '5'" -o x.safetensors -s 5
refuse catanet-mkmodel "--seed: '1e3'" -o x.safetensors --seed 1e3
refuse catanet-mkmodel "-g: '9'" -o x.safetensors -g 9
refuse catanet-gpubench "-n: 'abc'" -m m.safetensors -n abc
refuse catanet-gpubench "-f: 'yuv'" -m m.safetensors -f yuv
refuse catanet-convert "needs IN and OUT" onlyone.pth
ok=1; [ -z "$(ls "$W/run")" ] && ok=0
check $ok "no refused command line wrote a file ($(ls "$W/run"))"
exit $fail
