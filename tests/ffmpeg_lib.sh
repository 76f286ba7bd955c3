# Sourced by tests/t_ffmpeg*.sh: finds (or builds) the patched ffmpeg and the model, and
# counts PASS/FAIL lines. Not a test itself (tests/run.sh runs t_*.sh only).
B=${BUILDDIR:-build}
FF=$B/ffmpeg/ffmpeg
SHARED=${CATANET_SHARED:-../shared}
MODEL=$SHARED/reference/catanet/weights_x2_trained.safetensors
TMP=$(mktemp -d "${TMPDIR:-/tmp}/t_ffmpeg.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
nfail=0
npass=0

pass() { echo "PASS: $*"; npass=$((npass + 1)); }
fail() { echo "FAIL: $*"; nfail=$((nfail + 1)); }
check() { # check "description" command...: pass when the command succeeds
    d=$1; shift
    if "$@"; then pass "$d"; else fail "$d"; fi
}
finish() {
    echo "$npass passed, $nfail failed"
    [ $nfail = 0 ] && exit 0
    exit 1
}

# the ffmpeg under test: build it when missing or older than the patches or the library
# (a fresh clone builds FFmpeg here: 2-5 minutes on 2 cores)
need_ffmpeg() {
    stale=0
    for f in "$B/libcatanet.a" patches/ffmpeg-*/0*.patch; do
        [ "$f" -nt "$FF" ] && stale=1
    done
    if [ ! -x "$FF" ] || [ $stale = 1 ]; then
        echo "building ffmpeg with catanet_xs (tools/ffmpeg-build.sh)"
        if ! sh tools/ffmpeg-build.sh "$B" ffmpeg; then
            fail "building the patched ffmpeg"
            finish
        fi
    fi
    if [ ! -f "$MODEL" ]; then
        fail "reference model $MODEL is missing (set CATANET_SHARED)"
        finish
    fi
}

# ff ARGS...: the built ffmpeg, quiet, no stdin
ff() { "$FF" -nostdin -hide_banner -v error -y "$@"; }

# frame hashes of a framemd5 file, without the header
hashes() { grep -v '^#' "$1" | awk -F, '{ print $NF }'; }
