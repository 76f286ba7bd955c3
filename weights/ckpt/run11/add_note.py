# add_note.py IN OUT: copy a session-11 XS model file with its catanet_note prefixed by where the
# pipeline started (the step-31,328 teacher), a header-only edit: the pipeline's own note names only
# its stage teacher (build/xs11/student2.safetensors). Used by run.sh (XS x2) and xs_x34.sh (x3, x4).
import json, struct, sys

raw = open(sys.argv[1], 'rb').read()
n = struct.unpack('<Q', raw[:8])[0]
h = json.loads(raw[8:8 + n])
body = raw[8 + n:]
h['__metadata__']['catanet_note'] = ('training/xs_pipeline.sh from weights/catanet_l_x2.safetensors at step 31,328 '
                                     '(session 11; prune 3 x 120, recovery 2 x 80); ' + h['__metadata__']['catanet_note'])
hb = json.dumps(h, separators=(',', ':')).encode()
hb += b' ' * (-len(hb) % 8)
open(sys.argv[2], 'wb').write(struct.pack('<Q', len(hb)) + hb + body)
