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

# OpenMP threads that wait by sleeping, not spinning: on a machine busier than its cores (make -j,
# other jobs) spinning team threads make a 2-thread frame take 20x longer; results do not change
OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
export OMP_WAIT_POLICY

# ff ARGS...: the built ffmpeg, quiet, no stdin
ff() { "$FF" -nostdin -hide_banner -v error -y "$@"; }

# frame hashes of a framemd5 file, without the header
hashes() { grep -v '^#' "$1" | awk -F, '{ print $NF }'; }

# peak_threads FFMPEG ARGS...: run FFMPEG ARGS in the background and print the largest number of
# threads (entries of /proc/PID/task) it had while it ran; its exit status goes to $TMP/peak.rc.
# OpenMP's own sizing variables are cleared so that only the options decide the count.
peak_threads() {
    ffbin=$1; shift
    env -u OMP_NUM_THREADS -u OMP_DYNAMIC -u OMP_THREAD_LIMIT "$ffbin" -nostdin -hide_banner -v error -y "$@" \
        2> "$TMP/peak.log" &
    pid=$!
    peak=0
    while :; do
        # until it exits (a zombie keeps /proc/PID until it is waited for)
        st=$(sed 's/.*) //' "/proc/$pid/stat" 2> /dev/null | cut -c1)
        [ -z "$st" ] || [ "$st" = Z ] && break
        n=$(ls "/proc/$pid/task" 2> /dev/null | wc -l)
        [ "$n" -gt "$peak" ] && peak=$n
        sleep 0.02
    done
    wait $pid
    echo $? > "$TMP/peak.rc"
    echo $peak
}

# find_others: sets $others to the names (under $B) of the other FFmpeg builds, when they were
# made (make ffmpeg-new: 7.1 from trixie; tools/ffmpeg-build.sh BUILDDIR ffmpeg-9 unstable: 9.0),
# each first brought up to date with the library and the patches; a failed rebuild is a FAIL
find_others() {
    others=
    for nb in ffmpeg-new:trixie ffmpeg-9:unstable; do
        name=${nb%%:*} suite=${nb#*:}
        [ -x "$B/$name/ffmpeg" ] || { echo "($B/$name was not built: FFmpeg from $suite is not checked)"; continue; }
        stale=0
        for f in "$B/libcatanet.a" patches/ffmpeg-*/0*.patch; do
            [ "$f" -nt "$B/$name/ffmpeg" ] && stale=1
        done
        if [ $stale = 1 ] && ! sh tools/ffmpeg-build.sh "$B" $name $suite > "$TMP/$name-build.log" 2>&1; then
            tail -n 5 "$TMP/$name-build.log"
            fail "rebuilding $B/$name (FFmpeg from $suite)"
            continue
        fi
        others="$others $name"
    done
}
