#!/bin/sh
# prep.sh IN OUT: rewrites a kernels/cuda source for the host emulator (tests/cuda_emu/emu.cpp):
#   name<<<grid, block[, smem[, stream]]>>>(args)  ->  emu::Launcher(grid, block[, ...]).bind(name, "name")(args)
#   extern __shared__ T name[];                     ->  T *name = (T *)emu::dyn_smem();
# A launch must open on one line (`<<<` through `>>>(`; the arguments may continue on the next
# lines), one launch per line; the kernel may be a template specialisation (name<A, B>). The check
# at the end refuses a source with a `<<<` left over, so a launch this cannot rewrite fails the build
# instead of being silently mistranslated.
set -e
in=$1
out=$2
sed -E \
    -e 's/extern __shared__ ([A-Za-z_][A-Za-z0-9_]*) ([A-Za-z_][A-Za-z0-9_]*)\[\];/\1 *\2 = (\1 *)emu::dyn_smem();/' \
    -e 's/([A-Za-z_][A-Za-z0-9_:]*(<[^<>;()]*>)?)<<<(.*)>>>\(/emu::Launcher(\3).bind(\1, "\1")(/' \
    "$in" > "$out.tmp"
if grep -n '<<<\|>>>\|extern __shared__' "$out.tmp" >&2; then
    echo "prep.sh: $in: a launch or shared declaration above was not rewritten" >&2
    rm -f "$out.tmp"
    exit 1
fi
mv "$out.tmp" "$out"
