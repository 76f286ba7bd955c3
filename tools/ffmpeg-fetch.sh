#!/bin/sh
# Fetch Debian's FFmpeg source package with `apt-get source` and unpack it.
#
# Usage: tools/ffmpeg-fetch.sh BUILDDIR [SUITE [PACKAGE]]
#   SUITE  empty: the suites the machine already uses (bookworm: FFmpeg 5.1.x);
#          a name (e.g. trixie): that suite of the same archive (trixie: FFmpeg 7.1.x).
# Prints the path of the unpacked tree on its last line.
#
# The deb-src entries are derived at run time from the machine's own APT sources
# (/etc/apt/sources.list.d/*.sources in deb822 form and /etc/apt/sources.list[.d/*.list]),
# written under BUILDDIR/apt-SUITE/sources-parts (not *.d: the Makefile includes every *.d under
# build/), and APT is pointed at them with -o options; all
# APT state (lists, downloaded files) stays under BUILDDIR. No mirror host name is kept
# in this repository and the machine's APT configuration is not modified.
set -e
B=${1:?usage: tools/ffmpeg-fetch.sh BUILDDIR [SUITE [PACKAGE]]}
SUITE=$2
PKG=${3:-ffmpeg}   # ffmpeg, or nv-codec-headers (the ffnvcodec headers newer FFmpeg needs)
dirname=ffmpeg-src
[ "$PKG" = ffmpeg ] || dirname=$PKG-src
B=$(cd "$B" && pwd)
tag=${SUITE:-default}
A=$B/apt-$tag
mkdir -p "$A/sources-parts" "$A/lists/partial" "$A/cache/archives/partial" "$B/$dirname-$tag"

# deb822 stanzas: keep those of Types deb (not the security/updates suites when a suite is
# given), turn them into deb-src, optionally replace the suite.
out=$A/sources-parts/catanet-src.sources
: > "$out"
for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    awk -v suite="$SUITE" '
        function flush() {
            if (n && isdeb && (suite == "" || !skip)) {
                for (i = 1; i <= n; i++) print lines[i]
                print ""
            }
            n = 0; isdeb = 0; skip = 0
        }
        /^[ \t]*#/ { next }
        /^[ \t]*$/ { flush(); next }
        /^Types:/ { if ($0 ~ /[ \t]deb([ \t]|$)/) isdeb = 1; lines[++n] = "Types: deb-src"; next }
        /^Suites:/ {
            if ($0 ~ /-security|security\//) skip = 1
            if (suite != "") { lines[++n] = "Suites: " suite; next }
        }
        { lines[++n] = $0 }
        END { flush() }' "$f" >> "$out"
done
# one-line format
for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    awk -v suite="$SUITE" '
        $1 == "deb" {
            if (suite != "" && ($0 ~ /security/)) next
            $1 = "deb-src"
            if (suite != "") {
                # deb [opts] URI SUITE COMPONENTS...: the suite is the field after the URI
                i = 2; if ($i ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
                $(i + 1) = suite
            }
            print
        }' "$f" >> "$A/sources-parts/catanet-src.list"
done
if [ ! -s "$out" ] && [ ! -s "$A/sources-parts/catanet-src.list" ]; then
    echo "ffmpeg-fetch: no Debian 'deb' entry found in /etc/apt to derive a deb-src entry from" >&2
    exit 1
fi

APT="apt-get -q -o Dir::Etc::SourceList=/dev/null -o Dir::Etc::SourceParts=$A/sources-parts
     -o Dir::State::Lists=$A/lists -o Dir::Cache=$A/cache -o Dir::Cache::pkgcache= -o Dir::Cache::srcpkgcache=
     -o APT::Sandbox::User=root -o Debug::NoLocking=1"
echo "ffmpeg-fetch: apt-get update (deb-src ${SUITE:-of the configured suites})" >&2
$APT update >&2
cd "$B/$dirname-$tag"
rm -rf "$PKG"-[0-9n]*/
echo "ffmpeg-fetch: apt-get source $PKG" >&2
$APT source --download-only "$PKG" >&2 || echo "ffmpeg-fetch: apt-get source did not get every file" >&2
dsc=$(ls -t "$PKG"_*.dsc 2>/dev/null | head -n 1)
# dpkg-source applies Debian's own patch series; signatures are not checked (no keyring for
# source uploaders here; the index itself was verified by APT). A mirror caught mid-update
# may serve the upstream tarball without the rest: then that tarball is used as it is.
if [ -z "$dsc" ] || ! dpkg-source --no-check -x "$dsc" >&2; then
    rm -rf "$PKG"-[0-9n]*/
    orig=$(ls -t "$PKG"_*.orig.tar.* 2>/dev/null | grep -v '\.asc$' | head -n 1)
    [ -n "$orig" ] || { echo "ffmpeg-fetch: no $PKG source downloaded" >&2; exit 1; }
    echo "ffmpeg-fetch: unpacking the upstream tarball $orig without Debian's patches" >&2
    tar xf "$orig" >&2
fi
tree=$(ls -d "$PKG"-[0-9n]*/ | head -n 1)
echo "$B/$dirname-$tag/${tree%/}"
