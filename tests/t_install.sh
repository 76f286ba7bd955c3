#!/bin/sh
# make install into a DESTDIR, then what a user of the installed package does: a small C program
# built against the installed catanet.pc, shared (pkg-config --libs) and static (pkg-config --static,
# libcatanet.a), each opening the installed XS model and upscaling a tiny image (output size,
# finite values); the shared library's SONAME and exported symbols (exactly catanet.h's CATANET_API
# functions); catanet.pc free of CUDA and rpath. Then make uninstall must leave no file behind.
B=${BUILDDIR:-build}
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
. "$(dirname "$0")/check_lib.sh"
cfg() { sed -n "s/^$1 *= *//p" "$B/config.mk"; }
PREFIX=$(cfg PREFIX) LIBDIR=$(cfg LIBDIR) DATADIR=$(cfg DATADIR) VERSION=$(cfg VERSION) SOMAJOR=$(cfg SOMAJOR)
HAVE_CUDA=$(cfg HAVE_CUDA)
[ -n "$LIBDIR" ] && [ -n "$SOMAJOR" ] || { echo "FAIL: $B/config.mk has no LIBDIR/SOMAJOR (run ./configure)"; exit 1; }
R=$W/root
# a make of its own (not the caller's jobserver)
mk() { env -u MAKEFLAGS -u MAKELEVEL -u MFLAGS make --no-print-directory BUILDDIR="$B" DESTDIR="$R" "$@"; }

mk install > "$W/install.log" 2>&1
rc=$?
check $rc "make install DESTDIR=... (exit $rc$( [ $rc = 0 ] || { echo; tail -n 5 "$W/install.log"; }))"
L=$R$LIBDIR
missing=
for f in "$L/libcatanet.a" "$L/libcatanet.so.$VERSION" "$L/libcatanet.so.$SOMAJOR" "$L/libcatanet.so" \
    "$L/pkgconfig/catanet.pc" "$R$PREFIX/include/catanet.h" "$R$PREFIX/bin/catanet-upscale" \
    "$R$PREFIX/bin/catanet-train" "$R$DATADIR/catanet/catanet_xs_x2.safetensors"; do
    [ -e "$f" ] || missing="$missing ${f#"$R"}"
done
[ "$HAVE_CUDA" = 1 ] && { [ -e "$L/catanet/libcatanet-cuda.so.$SOMAJOR" ] || missing="$missing the CUDA plugin"; }
check "$([ -z "$missing" ]; echo $?)" "installed: libraries, header, catanet.pc, tools, models$( [ "$HAVE_CUDA" = 1 ] && echo ', the CUDA plugin') (missing:${missing:- none})"
[ -e "$R$PREFIX/bin/catanet-gpubench" ]
check "$((1 - $?))" "catanet-gpubench (links the CUDA runtime) is not installed"

soname=$(readelf -d "$L/libcatanet.so.$VERSION" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
check "$([ "$soname" = "libcatanet.so.$SOMAJOR" ] && [ "$(readlink "$L/libcatanet.so")" = "libcatanet.so.$SOMAJOR" ]; echo $?)" \
    "SONAME $soname; libcatanet.so -> $(readlink "$L/libcatanet.so") -> $(readlink "$L/libcatanet.so.$SOMAJOR")"
sed -n 's/^CATANET_API .*[ *]\(catanet_[a-z_0-9]*\)(.*/\1/p' "$R$PREFIX/include/catanet.h" | sort > "$W/api"
# a function declared without CATANET_API would be neither listed nor exported: there must be none
unmarked=$(grep -E '^[A-Za-z_].*[ *]catanet_[a-z_0-9]*\(' "$R$PREFIX/include/catanet.h" | grep -Ev '^(CATANET_API |typedef |#)')
check "$([ -z "$unmarked" ]; echo $?)" "every function in catanet.h is marked CATANET_API (unmarked: ${unmarked:-none})"
nm -D --defined-only "$L/libcatanet.so.$VERSION" | awk '{ print $3 }' | sort > "$W/exported"
check "$(cmp -s "$W/api" "$W/exported"; echo $?)" "libcatanet.so exports exactly the $(wc -l < "$W/api") CATANET_API functions (extra: $(comm -13 "$W/api" "$W/exported" | tr '\n' ' '); missing: $(comm -23 "$W/api" "$W/exported" | tr '\n' ' '))"
pc=$L/pkgconfig/catanet.pc
check "$(grep -Eiq 'cuda|cublas|rpath' "$pc"; [ $? = 1 ]; echo $?)" "catanet.pc names no CUDA library and no rpath"
check "$(grep -q '^Libs: -L${libdir} -lcatanet$' "$pc"; echo $?)" "catanet.pc: Libs is the library alone ($(grep '^Libs:' "$pc"))"

cat > "$W/prog.c" <<'EOF'
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <catanet.h>

int main(int argc, char **argv)
{
    CatanetConfig cfg;
    catanet_config_default(&cfg);
    cfg.threads = 1;
    CatanetEngine *e;
    char err[512];
    if (catanet_engine_open(&e, argv[1], &cfg, err, sizeof(err)) < 0) {
        printf("open: %s\n", err);
        return 1;
    }
    int s = catanet_engine_scale(e), w = 6, h = 5;
    unsigned char in[5][6][3], out[20][24][3];
    float fin[3 * 5 * 6], fout[3 * 20 * 24];
    for (int i = 0; i < h * w * 3; i++) {
        ((unsigned char *)in)[i] = (unsigned char)(i * 37);
        fin[i] = (float)(i % 11) / 11.0f;
    }
    CatanetImage a = { .format = CATANET_PIX_RGB24, .bits = 8, .width = w, .height = h,
                       .data = { in }, .linesize = { 3 * w } };
    CatanetImage b = { .format = CATANET_PIX_RGB24, .bits = 8, .width = s * w, .height = s * h,
                       .data = { out }, .linesize = { 3 * s * w } };
    memset(out, 0, sizeof(out));
    if (s > 4 || catanet_engine_prepare(e, w, h) < 0 || catanet_engine_process_image(e, &a, &b) < 0 ||
        catanet_engine_process(e, fin, fout) < 0) {
        printf("scale %d: %s\n", s, catanet_engine_last_error(e));
        return 1;
    }
    int finite = 1;
    for (int i = 0; i < 3 * s * h * s * w; i++)
        finite &= isfinite(fout[i]) != 0;
    printf("libcatanet %s: %dx%d -> %dx%d, %s\n", catanet_version(), w, h, s * w, s * h, finite ? "finite" : "NOT finite");
    catanet_engine_close(&e);
    return finite ? 0 : 1;
}
EOF
model=$R$DATADIR/catanet/catanet_xs_x2.safetensors
# the installed catanet.pc moved under DESTDIR as a packager's staging would (its dependencies' own .pc as they are)
mkdir "$W/pc"
sed -e "s|^prefix=/|prefix=$R/|" -e "s|^libdir=/|libdir=$R/|" -e "s|^includedir=/|includedir=$R/|" "$pc" > "$W/pc/catanet.pc"
pkg() { PKG_CONFIG_PATH=$W/pc pkg-config "$@" catanet; }
cc=$(cfg CC)
# shared: against libcatanet.so, which must be the program's only catanet dependency
$cc -o "$W/prog_shared" "$W/prog.c" $(pkg --cflags --libs) > "$W/cc.log" 2>&1
rc=$?
out=$(LD_LIBRARY_PATH=$L "$W/prog_shared" "$model" 2>&1)
rrc=$?
needed=$(readelf -d "$W/prog_shared" 2> /dev/null | sed -n 's/.*NEEDED.*\[\(libcatanet.*\)\]/\1/p')
check "$([ $rc = 0 ] && [ $rrc = 0 ] && [ "$needed" = "libcatanet.so.$SOMAJOR" ] && echo "$out" | grep -q ' 6x5 -> 12x10, finite$'; echo $?)" \
    "shared, pkg-config --cflags --libs: built (exit $rc), NEEDED $needed, ran (exit $rrc): $out$(cat "$W/cc.log")"
# static: libcatanet.a with only what catanet.pc's private fields add
libs=$(pkg --static --libs | sed 's/-lcatanet\b/-l:libcatanet.a/')
$cc -o "$W/prog_static" "$W/prog.c" $(pkg --cflags) $libs > "$W/cc.log" 2>&1
rc=$?
out=$("$W/prog_static" "$model" 2>&1)
rrc=$?
check "$([ $rc = 0 ] && [ $rrc = 0 ] && ! readelf -d "$W/prog_static" | grep -q 'NEEDED.*libcatanet' && echo "$out" | grep -q ' 6x5 -> 12x10, finite$'; echo $?)" \
    "static, pkg-config --static ($libs): built (exit $rc), ran (exit $rrc): $out$(head -n 3 "$W/cc.log")"
"$R$PREFIX/bin/catanet-upscale" --version > /dev/null 2>&1
check $? "the installed catanet-upscale runs"

mk uninstall > "$W/uninstall.log" 2>&1
rc=$?
left=$(find "$R" ! -type d | sed "s|^$R||")
check "$([ $rc = 0 ] && [ -z "$left" ]; echo $?)" "make uninstall (exit $rc) leaves no file behind (left: ${left:-none})"
exit $fail
