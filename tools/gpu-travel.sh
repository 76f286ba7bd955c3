#!/bin/sh
# gpu-travel.sh [CARRY_PATH...]: what a GPU run would send, against the device tool's limit.
# The device machine gets the working tree (tracked files and untracked files git does not ignore)
# plus the carried paths, 64 MiB in all; a run over it is refused before it starts. This prints
# the tree's size, each carried path's, the total and what is left, then the largest tracked files
# when the total is over, and exits 1 then (0 when it fits).
#   tools/gpu-travel.sh build/gpu-carry/shared build/gpu-carry/deps.tar.xz build/gpu-carry/ffmpeg
# (`make gpu-stage` runs it so after staging.)
# --tree-only MIB: checks the tree alone against 64 MiB less MIB kept for the carry (tests/t_gpu_travel.sh).
cd "$(dirname "$0")/.." || exit 1
LIMIT=$((64 * 1024 * 1024))
mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }
# bytes of the files git would send (deleted-but-tracked files are gone: skipped)
tree=$(git ls-files -co --exclude-standard -z | xargs -0 -r stat -c %s 2>/dev/null | awk '{ s += $1 } END { print s + 0 }')
if [ "$1" = "--tree-only" ]; then
    keep=$(( ${2:?usage: gpu-travel.sh --tree-only MIB} * 1024 * 1024 ))
    room=$((LIMIT - keep))
    echo "gpu-travel: working tree $(mib "$tree") of the $(mib "$room") the carry leaves ($(mib "$keep") kept for it)"
    [ "$tree" -le "$room" ] && exit 0
    echo "gpu-travel: the tree is $(mib $((tree - room))) too large for a GPU run with its carry; the largest tracked files:"
    git ls-files -z | xargs -0 -r du -b | sort -rn | head -n 8 | sed 's/^/  /'
    exit 1
fi
total=$tree
echo "gpu-travel: working tree $(mib "$tree")"
for p in "$@"; do
    [ -e "$p" ] || { echo "gpu-travel: $p: not there (not staged?)"; exit 1; }
    b=$(du -sb "$p" | cut -f1)
    echo "gpu-travel: carry $p $(mib "$b")"
    total=$((total + b))
done
if [ "$total" -le "$LIMIT" ]; then
    echo "gpu-travel: $(mib "$total") of 64 MiB: fits ($(mib $((LIMIT - total))) left)"
    exit 0
fi
echo "gpu-travel: $(mib "$total") of 64 MiB: $(mib $((total - LIMIT))) over, the run would be refused. The largest tracked files:"
git ls-files -z | xargs -0 -r du -b | sort -rn | head -n 8 | sed 's/^/  /'
exit 1
