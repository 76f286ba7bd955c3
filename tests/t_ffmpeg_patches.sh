#!/bin/sh
# patches/ is generated from filter/: regenerate the series for every FFmpeg tree this build
# has fetched (or was pointed at) and fail if a committed series is stale or does not apply.
# The default build's tree (Debian bookworm, 5.1) is always there after need_ffmpeg.
. tests/ffmpeg_lib.sh
need_ffmpeg
trees=
for t in "$B"/ffmpeg-src-*/ffmpeg-[0-9]*/ $(sed -n 's/^FFMPEG_SOURCE *= *//p' "$B/config.mk"); do
    [ -f "$t/RELEASE" ] && trees="$trees $t"
done
[ -n "$trees" ] || fail "no FFmpeg source tree found under $B"
for t in $trees; do
    v=$(cat "$t/RELEASE")
    if [ -d "patches/ffmpeg-$(echo "$v" | cut -d. -f1-2)" ]; then
        check "patches for FFmpeg $v are up to date with filter/ and apply" sh tools/gen-patches.sh --check "$t"
    else
        echo "(FFmpeg $v at $t: no patch series for it)"
    fi
done
# the patched tree the build used carries exactly the filter source
check "the built ffmpeg's vf_catanet_xs.c is filter/vf_catanet_xs.c" cmp -s filter/vf_catanet_xs.c "$B/ffmpeg.src/libavfilter/vf_catanet_xs.c"
finish
