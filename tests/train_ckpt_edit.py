"""Writes a changed copy of a catanet-train checkpoint (a safetensors file), for the tests that feed
catanet-train a damaged or crafted one:
  train_ckpt_edit.py IN OUT meta KEY VALUE          set a metadata entry (e.g. step -5)
  train_ckpt_edit.py IN OUT config KEY JSON         set an entry of the train_config JSON
  train_ckpt_edit.py IN OUT nan TENSOR              the first value of TENSOR becomes NaN
  train_ckpt_edit.py IN OUT scale FACTOR            every weight (not adam.*) times FACTOR
"""
import json
import struct
import sys

src, dst, op = sys.argv[1:4]
b = open(src, 'rb').read()
n = struct.unpack('<Q', b[:8])[0]
h = json.loads(b[8:8 + n])
data = bytearray(b[8 + n:])
meta = h['__metadata__']
if op == 'meta':
    meta[sys.argv[4]] = sys.argv[5]
elif op == 'config':
    cfg = json.loads(meta['train_config'])
    cfg[sys.argv[4]] = json.loads(sys.argv[5])
    meta['train_config'] = json.dumps(cfg)
elif op == 'nan':
    t = h[sys.argv[4]]
    assert t['dtype'] == 'F32'
    struct.pack_into('<f', data, t['data_offsets'][0], float('nan'))
elif op == 'scale':
    f = float(sys.argv[4])
    for k, t in h.items():
        if k == '__metadata__' or k.startswith('adam.') or t['dtype'] != 'F32':
            continue
        a, e = t['data_offsets']
        vals = struct.unpack('<%df' % ((e - a) // 4), data[a:e])
        data[a:e] = struct.pack('<%df' % len(vals), *[min(max(v * f, -3e38), 3e38) for v in vals])
else:
    sys.exit('unknown operation ' + op)
hdr = json.dumps(h).encode()
hdr += b' ' * (-len(hdr) % 8)
open(dst, 'wb').write(struct.pack('<Q', len(hdr)) + hdr + bytes(data))
