/*
 * safetensors.h: reader (mmap, every offset/size/shape validated) and atomic writer of
 * safetensors files, shared by the engine, the tools and the training module.
 */
#ifndef CATANET_SAFETENSORS_H
#define CATANET_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#define CATANET_ST_MAX_DIMS 8
#define CATANET_ST_MAX_HEADER (100u << 20) /* the format's own limit: 100 MB of JSON */

typedef enum CatanetDtype {
    CATANET_DT_F32, CATANET_DT_F16, CATANET_DT_BF16, CATANET_DT_F64,
    CATANET_DT_I64, CATANET_DT_I32, CATANET_DT_I16, CATANET_DT_I8, CATANET_DT_U8, CATANET_DT_BOOL,
} CatanetDtype;

const char *catanet_dtype_name(CatanetDtype dt);
size_t catanet_dtype_size(CatanetDtype dt);

typedef struct CatanetStTensor {
    char *name;
    CatanetDtype dtype;
    int ndim;
    int64_t shape[CATANET_ST_MAX_DIMS];
    int64_t numel;
    size_t nbytes;
    const uint8_t *data;     /* inside the mapping; not necessarily aligned */
} CatanetStTensor;

typedef struct CatanetSt {
    uint8_t *map;            /* mmap of the file, or NULL for a borrowed buffer */
    size_t map_size;
    int n;
    CatanetStTensor *tensors;
    int n_meta;
    char **meta_keys, **meta_vals;
} CatanetSt;

/* Map a regular file read-only (at least min_size bytes); the caller munmaps (*map, *size). */
int catanet_map_file(const char *path, size_t min_size, uint8_t **map, size_t *size, char *err, size_t err_size);

/* Open and validate a file. On error returns a negative CatanetError and writes a message to err. */
int catanet_st_open(CatanetSt **out, const char *path, char *err, size_t err_size);
/* Parse a buffer the caller keeps alive while the result is used (for tests and fuzzing). */
int catanet_st_parse(CatanetSt **out, const uint8_t *buf, size_t size, char *err, size_t err_size);
void catanet_st_close(CatanetSt *st);
const CatanetStTensor *catanet_st_get(const CatanetSt *st, const char *name);
const char *catanet_st_meta(const CatanetSt *st, const char *key);
/* Copy a tensor out as float32 (F32/F16/BF16/F64 sources), numel floats. */
int catanet_st_read_f32(const CatanetStTensor *t, float *dst);

/* One tensor to write: data holds numel elements of dtype, little-endian. */
typedef struct CatanetStEntry {
    const char *name;
    CatanetDtype dtype;
    int ndim;
    int64_t shape[CATANET_ST_MAX_DIMS];
    const void *data;
} CatanetStEntry;

/* Write atomically (temp file in the same folder, fsync, rename). meta: n_meta key/value pairs. */
int catanet_st_write(const char *path, const CatanetStEntry *t, int n, const char *const *meta_keys,
                     const char *const *meta_vals, int n_meta, char *err, size_t err_size);

#endif
