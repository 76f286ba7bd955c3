#!/usr/bin/env python3
"""set-provenance.py IN OUT [KEY=VALUE | -KEY]...: copy a model file, setting (KEY=VALUE) or removing
(-KEY) keys of its safetensors __metadata__. A header-only edit: the tensor bytes are copied as they
are, and the tensors' data offsets do not change. The recipes use it to write a shipped model's
provenance (catanet_provenance, a JSON object) into the file itself."""
import json
import struct
import sys


def main(argv):
    if len(argv) < 3:
        sys.exit(__doc__)
    raw = open(argv[1], 'rb').read()
    if len(raw) < 8:
        sys.exit('%s: not a safetensors file (shorter than its header length)' % argv[1])
    n = struct.unpack('<Q', raw[:8])[0]
    if n > len(raw) - 8:
        sys.exit('%s: header length %d past the end of the file' % (argv[1], n))
    try:
        head = json.loads(raw[8:8 + n])
    except ValueError as e:
        sys.exit('%s: header is not JSON: %s' % (argv[1], e))
    meta = head.setdefault('__metadata__', {})
    for a in argv[3:]:
        if a.startswith('-'):
            meta.pop(a[1:], None)
        elif '=' in a:
            k, v = a.split('=', 1)
            meta[k] = v
        else:
            sys.exit('%s: neither KEY=VALUE nor -KEY' % a)
    hb = json.dumps(head, separators=(',', ':')).encode()
    hb += b' ' * (-len(hb) % 8)
    with open(argv[2], 'wb') as f:
        f.write(struct.pack('<Q', len(hb)) + hb + raw[8 + n:])


if __name__ == '__main__':
    main(sys.argv)
