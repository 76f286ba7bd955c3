#!/usr/bin/env python3
"""compare-val.py [--a-offset N] A.csv.val.csv B.csv.val.csv [FROM TO]: two runs' training-time
validation side by side (catanet-train's --log CSV.val.csv: step,set,psnr,ssim), at the steps both
validated, as a Markdown table: Set5 / Set14 PSNR of A, of B and A - B. The result tables of
experiments/ are its output.
--a-offset N: A's step k is iteration k + N (a run that went on from a model with N iterations
behind it); each of A's validations is then set beside B's first one at or after that iteration,
so B never has fewer iterations than A, and both iterations are printed."""
import csv
import sys


def read(path):
    out = {}
    with open(path, newline='') as f:
        for row in csv.DictReader(f):
            out.setdefault(int(row['step']), {})[row['set']] = float(row['psnr'])
    return out


def main(argv):
    offset = None
    if len(argv) > 2 and argv[1] == '--a-offset':
        offset = int(argv[2])
        argv = argv[:1] + argv[3:]
    if len(argv) not in (3, 5):
        sys.exit(__doc__)
    a, b = read(argv[1]), read(argv[2])
    if offset is not None:
        return offset_table(a, b, offset)
    lo, hi = (int(argv[3]), int(argv[4])) if len(argv) == 5 else (0, 1 << 62)
    sets = ('Set5', 'Set14')
    print('| step | A: %s | B: %s | A - B |' % (' / '.join(sets), ' / '.join(sets)))
    print('|---|---|---|---|')
    for step in sorted(set(a) & set(b)):
        if not lo <= step <= hi or any(s not in a[step] or s not in b[step] for s in sets):
            continue
        fa = ' / '.join('%.2f' % a[step][s] for s in sets)
        fb = ' / '.join('%.2f' % b[step][s] for s in sets)
        d = ' / '.join('%+.2f' % (round(a[step][s], 2) - round(b[step][s], 2)) for s in sets)
        print('| %s | %s | %s | %s |' % (format(step, ','), fa, fb, d))


def offset_table(a, b, offset):
    sets = ('Set5', 'Set14')
    print('| A: iteration | A: %s | B: iteration | B: %s | A - B |' % (' / '.join(sets), ' / '.join(sets)))
    print('|---|---|---|---|---|')
    for step in sorted(a):
        it = step + offset
        later = [s for s in sorted(b) if s >= it and all(x in b[s] for x in sets)]
        if not later or any(x not in a[step] for x in sets):
            continue
        bs = later[0]
        fa = ' / '.join('%.2f' % a[step][x] for x in sets)
        fb = ' / '.join('%.2f' % b[bs][x] for x in sets)
        d = ' / '.join('%+.2f' % (round(a[step][x], 2) - round(b[bs][x], 2)) for x in sets)
        print('| %s | %s | %s | %s | %s |' % (format(it, ','), fa, format(bs, ','), fb, d))


if __name__ == '__main__':
    main(sys.argv)
