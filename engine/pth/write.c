/*
 * write.c: tensors -> a checkpoint as torch.save({'params': OrderedDict(...)}) writes it (pickle
 * protocol 2, one storage record data/<i> per tensor, in a stored zip), so that tests and tools can
 * produce checkpoints torch.load reads.
 * defines: catanet_pth_write
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catanet.h"
#include "error.h"
#include "internal.h"

/* pickle emitters (protocol 2, no memo: the unpickler does not need one) */
static void pk_str(Buf *b, const char *s)
{
    size_t n = strlen(s);
    put8(b, 'X');
    put32(b, (uint32_t)n);
    catanet_pth_put(b, s, n);
}

static void pk_int(Buf *b, int64_t v)
{
    if (v >= 0 && v < 256) {
        put8(b, 'K');
        put8(b, (unsigned)v);
    } else if (v >= INT32_MIN && v <= INT32_MAX) {
        put8(b, 'J');
        put32(b, (uint32_t)(int32_t)v);
    } else {
        put8(b, 0x8a);
        put8(b, 8);
        for (int k = 0; k < 8; k++)
            put8(b, (unsigned)((uint64_t)v >> (8 * k)) & 0xff);
    }
}

static void pk_global(Buf *b, int g)
{
    const PthGlobal *gl = &catanet_pth_globals[g];
    put8(b, 'c');
    catanet_pth_put(b, gl->module, strlen(gl->module));
    put8(b, '\n');
    catanet_pth_put(b, gl->name, strlen(gl->name));
    put8(b, '\n');
}

static void pk_ordered_dict(Buf *b)
{
    pk_global(b, G_ORDERED_DICT);
    put8(b, ')');
    put8(b, 'R');
}

int catanet_pth_write(const char *path, const char *archive, const CatanetStEntry *t, int n, char *err, size_t es)
{
    Buf pk = { 0 };
    CatanetZipEntry *ze = calloc((size_t)n + 3, sizeof(*ze));
    char (*names)[64] = calloc((size_t)n + 3, 64);
    size_t alen = strlen(archive);
    int ret = 0;
    if (!ze || !names) {
        ret = catanet_errf(err, es, CATANET_ERR_NOMEM, "out of memory");
        goto done;
    }
    if (alen == 0 || alen > 32 || strchr(archive, '/')) {
        ret = catanet_errf(err, es, CATANET_ERR_INVALID_ARG, "archive name '%s': 1 to 32 characters, no '/'", archive);
        goto done;
    }
    put8(&pk, 0x80);
    put8(&pk, 2);
    put8(&pk, '}');
    pk_str(&pk, "params");
    pk_ordered_dict(&pk);
    put8(&pk, '(');
    for (int i = 0; i < n; i++) {
        int g = -1;
        for (int k = 0; k < N_GLOBALS; k++)
            if (catanet_pth_globals[k].is_storage && catanet_pth_globals[k].dtype == t[i].dtype)
                g = k;
        if (g < 0 || t[i].ndim < 0 || t[i].ndim > CATANET_ST_MAX_DIMS) {
            ret = catanet_errf(err, es, CATANET_ERR_UNSUPPORTED, "tensor '%s': dtype %s or %d dimensions not writable",
                               t[i].name, catanet_dtype_name(t[i].dtype), t[i].ndim);
            goto done;
        }
        int64_t numel = 1, stride[CATANET_ST_MAX_DIMS];
        for (int d = t[i].ndim - 1; d >= 0; d--) {
            stride[d] = numel;
            if (t[i].shape[d] < 0 || (t[i].shape[d] && numel > INT64_MAX / 8 / t[i].shape[d])) {
                ret = catanet_errf(err, es, CATANET_ERR_INVALID_ARG, "tensor '%s': bad shape", t[i].name);
                goto done;
            }
            numel *= t[i].shape[d];
        }
        char key[24];
        snprintf(key, sizeof(key), "%d", i);
        pk_str(&pk, t[i].name);
        pk_global(&pk, G_REBUILD_TENSOR);
        put8(&pk, '(');
        put8(&pk, '(');
        pk_str(&pk, "storage");
        pk_global(&pk, g);
        pk_str(&pk, key);
        pk_str(&pk, "cpu");
        pk_int(&pk, numel);
        put8(&pk, 't');
        put8(&pk, 'Q');
        pk_int(&pk, 0);
        put8(&pk, '(');
        for (int d = 0; d < t[i].ndim; d++)
            pk_int(&pk, t[i].shape[d]);
        put8(&pk, 't');
        put8(&pk, '(');
        for (int d = 0; d < t[i].ndim; d++)
            pk_int(&pk, stride[d]);
        put8(&pk, 't');
        put8(&pk, 0x89);
        pk_ordered_dict(&pk);
        put8(&pk, 't');
        put8(&pk, 'R');
        snprintf(names[i + 3], 64, "%s/data/%d", archive, i);
        ze[i + 3].name = names[i + 3];
        ze[i + 3].name_len = strlen(names[i + 3]);
        ze[i + 3].data = t[i].data;
        ze[i + 3].size = (uint64_t)numel * catanet_dtype_size(t[i].dtype);
    }
    put8(&pk, 'u');
    put8(&pk, 's');
    put8(&pk, '.');
    if (pk.failed) {
        ret = catanet_errf(err, es, CATANET_ERR_NOMEM, "out of memory");
        goto done;
    }
    static const char *const fixed[3] = { "data.pkl", "byteorder", "version" };
    static const char little[] = "little", version[] = "3\n";
    for (int k = 0; k < 3; k++) {
        snprintf(names[k], 64, "%s/%s", archive, fixed[k]);
        ze[k].name = names[k];
        ze[k].name_len = strlen(names[k]);
    }
    ze[0].data = pk.p;
    ze[0].size = pk.n;
    ze[1].data = (const uint8_t *)little;
    ze[1].size = 6;
    ze[2].data = (const uint8_t *)version;
    ze[2].size = 2;
    ret = catanet_zip_write(path, ze, n + 3, err, es);
done:
    free(pk.p);
    free(ze);
    free(names);
    return ret;
}

