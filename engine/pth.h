/*
 * pth.h: the official PyTorch checkpoint format (torch.save zip: <prefix>/data.pkl + <prefix>/data/<key>
 * raw storages, spec §4) read in C, without Python, and written back.
 *
 * The pickle is never executed: a restricted opcode interpreter only builds values (dicts, tuples,
 * ints, strings) and two calls, OrderedDict() and torch._utils._rebuild_tensor_v2(...), on the storage
 * classes it knows. Anything else is refused with the opcode (or global) and its offset.
 * The result is a CatanetSt, the same container a safetensors file gives, so the model loader,
 * the converter and the writer treat both formats the same way.
 */
#ifndef CATANET_PTH_H
#define CATANET_PTH_H

#include <stddef.h>
#include <stdint.h>

#include "safetensors.h"

#define CATANET_PTH_NO_CRC 1u        /* skip the CRC-32 check of the zip entries (fuzzing) */

#define CATANET_PTH_MAX_MARKS 64     /* nesting depth of MARKs (a state dict needs 3) */
#define CATANET_PTH_MAX_NAME 256     /* tensor names and storage keys, bytes */

/* 1 when buf starts like a zip archive (PK\3\4), the torch.save format since torch 1.6 */
int catanet_pth_is_zip(const uint8_t *buf, size_t size);

/*
 * Parses a checkpoint held in buf. The state dict is {'params': sd} (else 'params_ema', else the
 * top-level dict itself); every tensor is copied out, contiguous, into memory owned by the result
 * (buf may be freed afterwards). Tensors keep their storage dtype (F32, BOOL, F16, BF16, F64, I64)
 * and the state dict's order. Free with catanet_st_close.
 */
int catanet_pth_parse(CatanetSt **out, const uint8_t *buf, size_t size, unsigned flags, char *err, size_t es);
/* The same from a file. */
int catanet_pth_open(CatanetSt **out, const char *path, char *err, size_t es);

/* Writes tensors as torch.save({'params': OrderedDict(...)}) would (stored zip, 64-byte aligned
 * records, pickle protocol 2); archive is the record prefix (e.g. "archive"). Atomic. */
int catanet_pth_write(const char *path, const char *archive, const CatanetStEntry *t, int n, char *err, size_t es);

/* ---- the zip layer, exposed for the tests and the fuzzer ---- */

typedef struct CatanetZipEntry {
    const char *name;        /* not NUL-terminated: name_len bytes (points into the archive) */
    size_t name_len;
    const uint8_t *data;     /* stored bytes, inside the archive */
    uint64_t size;
} CatanetZipEntry;

/* Lists the entries of a zip held in buf (central directory + local headers, zip64 aware), sorted by
 * name. Refuses compressed, encrypted, multi-disk archives, bad CRCs (unless CATANET_PTH_NO_CRC),
 * duplicate names. *out is malloc'd (free it); the entries point into buf. */
int catanet_zip_read(CatanetZipEntry **out, int *n, const uint8_t *buf, size_t size, unsigned flags,
                     char *err, size_t es);
/* Writes a stored (uncompressed) zip, data 64-byte aligned, atomically. */
int catanet_zip_write(const char *path, const CatanetZipEntry *e, int n, char *err, size_t es);

#endif
