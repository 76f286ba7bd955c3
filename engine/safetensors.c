/*
 * safetensors.c: the safetensors container. Layout: u64 little-endian header length L, L bytes
 * of JSON ({name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {str: str}}),
 * then the data; offsets are relative to the end of the header.
 * Every number read from a file is checked before use: header length, offsets, the shape
 * product (overflow), the byte size against dtype x numel, overlaps between tensors.
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <libgen.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "catanet.h"
#include "error.h"
#include "safetensors.h"

static const struct {
    const char *name;
    size_t size;
} dtypes[] = {
    [CATANET_DT_F32] = { "F32", 4 },  [CATANET_DT_F16] = { "F16", 2 }, [CATANET_DT_BF16] = { "BF16", 2 },
    [CATANET_DT_F64] = { "F64", 8 },  [CATANET_DT_I64] = { "I64", 8 }, [CATANET_DT_I32] = { "I32", 4 },
    [CATANET_DT_I16] = { "I16", 2 },  [CATANET_DT_I8] = { "I8", 1 },   [CATANET_DT_U8] = { "U8", 1 },
    [CATANET_DT_BOOL] = { "BOOL", 1 },
};
#define N_DTYPES ((int)(sizeof(dtypes) / sizeof(dtypes[0])))

const char *catanet_dtype_name(CatanetDtype dt)
{
    return (int)dt >= 0 && (int)dt < N_DTYPES ? dtypes[dt].name : "?";
}

size_t catanet_dtype_size(CatanetDtype dt)
{
    return (int)dt >= 0 && (int)dt < N_DTYPES ? dtypes[dt].size : 0;
}

static int dtype_from_name(const char *s)
{
    for (int i = 0; i < N_DTYPES; i++)
        if (!strcmp(s, dtypes[i].name))
            return i;
    return -1;
}

static uint64_t read_u64le(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

void catanet_st_close(CatanetSt *st)
{
    if (!st)
        return;
    for (int i = 0; i < st->n; i++)
        free(st->tensors[i].name);
    free(st->tensors);
    for (int i = 0; i < st->n_meta; i++) {
        free(st->meta_keys[i]);
        free(st->meta_vals[i]);
    }
    free(st->meta_keys);
    free(st->meta_vals);
    if (st->map)
        munmap(st->map, st->map_size);
    free(st);
}

static int cmp_begin(const void *a, const void *b)
{
    const CatanetStTensor *x = *(CatanetStTensor *const *)a, *y = *(CatanetStTensor *const *)b;
    return x->data < y->data ? -1 : x->data > y->data;
}

/* a JSON integer that must be >= 0 */
static int get_nonneg(const json_t *j, int64_t *v)
{
    if (!json_is_integer(j) || json_integer_value(j) < 0)
        return -1;
    *v = json_integer_value(j);
    return 0;
}

static int parse_tensor(CatanetStTensor *t, const char *name, json_t *desc, const uint8_t *data,
                        size_t data_size, char *err, size_t es)
{
    if (!json_is_object(desc))
        return catanet_errf(err, es, CATANET_ERR_FORMAT, "tensor '%s': entry is not an object", name);
    json_t *jd = json_object_get(desc, "dtype"), *js = json_object_get(desc, "shape");
    json_t *jo = json_object_get(desc, "data_offsets");
    if (!json_is_string(jd) || !json_is_array(js) || !json_is_array(jo) || json_array_size(jo) != 2)
        return catanet_errf(err, es, CATANET_ERR_FORMAT,
                            "tensor '%s': needs dtype (string), shape (array), data_offsets ([begin, end])", name);
    int dt = dtype_from_name(json_string_value(jd));
    if (dt < 0)
        return catanet_errf(err, es, CATANET_ERR_FORMAT, "tensor '%s': unsupported dtype '%s'", name,
                            json_string_value(jd));
    size_t nd = json_array_size(js);
    if (nd > CATANET_ST_MAX_DIMS)
        return catanet_errf(err, es, CATANET_ERR_FORMAT, "tensor '%s': %zu dimensions (at most %d)",
                            name, nd, CATANET_ST_MAX_DIMS);
    int64_t numel = 1, begin, end;
    for (size_t i = 0; i < nd; i++) {
        int64_t d;
        if (get_nonneg(json_array_get(js, i), &d) < 0)
            return catanet_errf(err, es, CATANET_ERR_FORMAT, "tensor '%s': bad shape entry %zu", name, i);
        if (d != 0 && numel > INT64_MAX / d)
            return catanet_errf(err, es, CATANET_ERR_FORMAT, "tensor '%s': shape overflows", name);
        numel *= d;
        t->shape[i] = d;
    }
    if (get_nonneg(json_array_get(jo, 0), &begin) < 0 || get_nonneg(json_array_get(jo, 1), &end) < 0 ||
        begin > end)
        return catanet_errf(err, es, CATANET_ERR_FORMAT, "tensor '%s': bad data_offsets", name);
    if ((uint64_t)end > data_size)
        return catanet_errf(err, es, CATANET_ERR_FORMAT,
                            "tensor '%s': data_offsets end %lld beyond the %zu data bytes of the file",
                            name, (long long)end, data_size);
    size_t esz = dtypes[dt].size;
    if ((uint64_t)numel > SIZE_MAX / esz || (uint64_t)numel * esz != (uint64_t)(end - begin))
        return catanet_errf(err, es, CATANET_ERR_FORMAT,
                            "tensor '%s': %lld bytes for %lld elements of %s", name,
                            (long long)(end - begin), (long long)numel, dtypes[dt].name);
    t->name = strdup(name);
    if (!t->name)
        return catanet_errf(err, es, CATANET_ERR_NOMEM, "out of memory");
    t->dtype = dt;
    t->ndim = (int)nd;
    t->numel = numel;
    t->nbytes = (size_t)(end - begin);
    t->data = data + begin;
    return 0;
}

int catanet_st_parse(CatanetSt **out, const uint8_t *buf, size_t size, char *err, size_t es)
{
    *out = NULL;
    if (size < 8)
        return catanet_errf(err, es, CATANET_ERR_FORMAT, "file too short (%zu bytes) for a safetensors header", size);
    uint64_t hlen = read_u64le(buf);
    if (hlen < 2 || hlen > CATANET_ST_MAX_HEADER || hlen > size - 8)
        return catanet_errf(err, es, CATANET_ERR_FORMAT,
                            "header length %llu does not fit the file (%zu bytes): not a safetensors file or truncated",
                            (unsigned long long)hlen, size);
    json_error_t jerr;
    json_t *root = json_loadb((const char *)buf + 8, (size_t)hlen, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return catanet_errf(err, es, CATANET_ERR_FORMAT, "header is not valid JSON: %s (offset %d)",
                            jerr.text, jerr.position);
    int ret = 0;
    CatanetSt *st = calloc(1, sizeof(*st));
    CatanetStTensor **order = NULL;
    if (!st) {
        ret = catanet_errf(err, es, CATANET_ERR_NOMEM, "out of memory");
        goto fail;
    }
    if (!json_is_object(root)) {
        ret = catanet_errf(err, es, CATANET_ERR_FORMAT, "header is not a JSON object");
        goto fail;
    }
    size_t count = json_object_size(root);
    st->tensors = calloc(count ? count : 1, sizeof(*st->tensors));
    if (!st->tensors) {
        ret = catanet_errf(err, es, CATANET_ERR_NOMEM, "out of memory");
        goto fail;
    }
    const uint8_t *data = buf + 8 + hlen;
    size_t data_size = size - 8 - (size_t)hlen;
    const char *key;
    json_t *val;
    json_object_foreach(root, key, val) {
        if (!strcmp(key, "__metadata__")) {
            if (!json_is_object(val)) {
                ret = catanet_errf(err, es, CATANET_ERR_FORMAT, "__metadata__ is not an object");
                goto fail;
            }
            size_t nm = json_object_size(val);
            st->meta_keys = calloc(nm ? nm : 1, sizeof(char *));
            st->meta_vals = calloc(nm ? nm : 1, sizeof(char *));
            if (!st->meta_keys || !st->meta_vals) {
                ret = catanet_errf(err, es, CATANET_ERR_NOMEM, "out of memory");
                goto fail;
            }
            const char *mk;
            json_t *mv;
            json_object_foreach(val, mk, mv) {
                if (!json_is_string(mv)) {
                    ret = catanet_errf(err, es, CATANET_ERR_FORMAT, "__metadata__ value '%s' is not a string", mk);
                    goto fail;
                }
                st->meta_keys[st->n_meta] = strdup(mk);
                st->meta_vals[st->n_meta] = strdup(json_string_value(mv));
                st->n_meta++;
                if (!st->meta_keys[st->n_meta - 1] || !st->meta_vals[st->n_meta - 1]) {
                    ret = catanet_errf(err, es, CATANET_ERR_NOMEM, "out of memory");
                    goto fail;
                }
            }
            continue;
        }
        ret = parse_tensor(&st->tensors[st->n], key, val, data, data_size, err, es);
        if (ret < 0)
            goto fail;
        st->n++;
    }
    /* tensors must not overlap (the format also forbids holes; we only need no aliasing) */
    order = malloc(sizeof(*order) * (st->n ? st->n : 1));
    if (!order) {
        ret = catanet_errf(err, es, CATANET_ERR_NOMEM, "out of memory");
        goto fail;
    }
    for (int i = 0; i < st->n; i++)
        order[i] = &st->tensors[i];
    qsort(order, st->n, sizeof(*order), cmp_begin);
    for (int i = 1; i < st->n; i++)
        if (order[i]->data < order[i - 1]->data + order[i - 1]->nbytes) {
            ret = catanet_errf(err, es, CATANET_ERR_FORMAT, "tensors '%s' and '%s' overlap",
                               order[i - 1]->name, order[i]->name);
            goto fail;
        }
    free(order);
    json_decref(root);
    *out = st;
    return 0;
fail:
    free(order);
    json_decref(root);
    catanet_st_close(st);
    return ret;
}

int catanet_map_file(const char *path, size_t min_size, uint8_t **map, size_t *size, char *err, size_t es)
{
    *map = NULL;
    *size = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return catanet_errf(err, es, CATANET_ERR_IO, "cannot open '%s': %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return catanet_errf(err, es, CATANET_ERR_IO, "'%s' is not a regular file", path);
    }
    size_t n = (size_t)sb.st_size;
    if (n < min_size || n == 0) {
        close(fd);
        return catanet_errf(err, es, CATANET_ERR_FORMAT, "'%s': file too short (%zu bytes)", path, n);
    }
    void *m = mmap(NULL, n, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (m == MAP_FAILED)
        return catanet_errf(err, es, CATANET_ERR_IO, "cannot map '%s': %s", path, strerror(errno));
    *map = m;
    *size = n;
    return 0;
}

int catanet_st_open(CatanetSt **out, const char *path, char *err, size_t es)
{
    *out = NULL;
    uint8_t *map;
    size_t size;
    int ret = catanet_map_file(path, 8, &map, &size, err, es);
    if (ret < 0)
        return ret;
    char sub[256];
    ret = catanet_st_parse(out, map, size, sub, sizeof(sub));
    if (ret < 0) {
        munmap(map, size);
        return catanet_errf(err, es, ret, "'%s': %s", path, sub);
    }
    (*out)->map = map;
    (*out)->map_size = size;
    return 0;
}

const CatanetStTensor *catanet_st_get(const CatanetSt *st, const char *name)
{
    for (int i = 0; i < st->n; i++)
        if (!strcmp(st->tensors[i].name, name))
            return &st->tensors[i];
    return NULL;
}

const char *catanet_st_meta(const CatanetSt *st, const char *key)
{
    for (int i = 0; i < st->n_meta; i++)
        if (!strcmp(st->meta_keys[i], key))
            return st->meta_vals[i];
    return NULL;
}

static float half_to_float(uint16_t h)
{
    int s = h >> 15, e = h >> 10 & 31, m = h & 1023;
    float v = e == 0 ? ldexpf((float)m, -24) : e == 31 ? (m ? NAN : INFINITY) : ldexpf((float)(m | 1024), e - 25);
    return s ? -v : v;
}

int catanet_st_read_f32(const CatanetStTensor *t, float *dst)
{
    const uint8_t *p = t->data;
    for (int64_t i = 0; i < t->numel; i++) {
        switch (t->dtype) {
        case CATANET_DT_F32: {
            uint32_t u = (uint32_t)p[4 * i] | (uint32_t)p[4 * i + 1] << 8 | (uint32_t)p[4 * i + 2] << 16 |
                         (uint32_t)p[4 * i + 3] << 24;
            memcpy(&dst[i], &u, 4);
            break;
        }
        case CATANET_DT_F16:
            dst[i] = half_to_float((uint16_t)(p[2 * i] | p[2 * i + 1] << 8));
            break;
        case CATANET_DT_BF16: {
            uint32_t u = (uint32_t)(p[2 * i] | p[2 * i + 1] << 8) << 16;
            memcpy(&dst[i], &u, 4);
            break;
        }
        case CATANET_DT_F64: {
            uint64_t u = read_u64le(p + 8 * i);
            double d;
            memcpy(&d, &u, 8);
            dst[i] = (float)d;
            break;
        }
        default:
            return CATANET_ERR_FORMAT;
        }
    }
    return 0;
}

static int write_all(int fd, const void *buf, size_t n)
{
    const uint8_t *p = buf;
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int catanet_st_write(const char *path, const CatanetStEntry *t, int n, const char *const *meta_keys,
                     const char *const *meta_vals, int n_meta, char *err, size_t es)
{
    int ret = 0, fd = -1;
    char *hdr = NULL, *tmp = NULL, *dircopy = NULL;
    json_t *root = json_object();
    if (!root)
        return catanet_errf(err, es, CATANET_ERR_NOMEM, "out of memory");
    /* every json_* result is checked: jansson returns NULL/-1 for invalid UTF-8 and on allocation
     * failure, and a silently dropped key would make a file that reads back different */
    if (n_meta > 0) {
        json_t *meta = json_object();
        if (!meta || json_object_set_new(root, "__metadata__", meta) < 0) {
            ret = catanet_errf(err, es, CATANET_ERR_NOMEM, "out of memory");
            goto done;
        }
        for (int i = 0; i < n_meta; i++)
            if (!meta_keys[i] || !meta_vals[i] || json_object_get(meta, meta_keys[i]) ||
                json_object_set_new(meta, meta_keys[i], json_string(meta_vals[i])) < 0) {
                ret = catanet_errf(err, es, CATANET_ERR_INVALID_ARG,
                                   "metadata entry %d: NULL, duplicate or not valid UTF-8", i);
                goto done;
            }
    }
    uint64_t off = 0;
    for (int i = 0; i < n; i++) {
        int64_t numel = 1;
        if (!t[i].name || !strcmp(t[i].name, "__metadata__") || json_object_get(root, t[i].name) ||
            t[i].ndim < 0 || t[i].ndim > CATANET_ST_MAX_DIMS || !catanet_dtype_size(t[i].dtype)) {
            ret = catanet_errf(err, es, CATANET_ERR_INVALID_ARG,
                               "tensor %d ('%s'): NULL, reserved or duplicate name, or bad dtype/rank", i,
                               t[i].name ? t[i].name : "");
            goto done;
        }
        json_t *shape = json_array();
        for (int d = 0; d < t[i].ndim; d++) {
            if (t[i].shape[d] < 0 || (t[i].shape[d] && numel > INT64_MAX / 8 / t[i].shape[d])) {
                json_decref(shape);
                ret = catanet_errf(err, es, CATANET_ERR_INVALID_ARG, "tensor '%s': bad shape", t[i].name);
                goto done;
            }
            numel *= t[i].shape[d];
            if (json_array_append_new(shape, json_integer(t[i].shape[d])) < 0) {
                json_decref(shape);
                ret = catanet_errf(err, es, CATANET_ERR_NOMEM, "out of memory");
                goto done;
            }
        }
        uint64_t nb = (uint64_t)numel * catanet_dtype_size(t[i].dtype);
        json_t *desc = json_object();
        if (!desc || !shape || json_object_set_new(desc, "dtype", json_string(catanet_dtype_name(t[i].dtype))) < 0 ||
            json_object_set_new(desc, "shape", shape) < 0 ||
            json_object_set_new(desc, "data_offsets", json_pack("[II]", (json_int_t)off, (json_int_t)(off + nb))) < 0 ||
            json_object_set_new(root, t[i].name, desc) < 0) {
            ret = catanet_errf(err, es, CATANET_ERR_INVALID_ARG, "tensor '%s': name is not valid UTF-8 (or out of memory)",
                               t[i].name);
            goto done;
        }
        if (nb && !t[i].data) {
            ret = catanet_errf(err, es, CATANET_ERR_INVALID_ARG, "tensor '%s': no data", t[i].name);
            goto done;
        }
        off += nb;
    }
    hdr = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (!hdr) {
        ret = catanet_errf(err, es, CATANET_ERR_NOMEM, "out of memory");
        goto done;
    }
    size_t hlen = strlen(hdr), padded = (hlen + 7) & ~(size_t)7; /* data 8-byte aligned */
    size_t plen = strlen(path);
    tmp = malloc(plen + 16);
    if (!tmp) {
        ret = catanet_errf(err, es, CATANET_ERR_NOMEM, "out of memory");
        goto done;
    }
    snprintf(tmp, plen + 16, "%s.tmpXXXXXX", path);
    fd = mkstemp(tmp);
    if (fd < 0) {
        ret = catanet_errf(err, es, CATANET_ERR_IO, "cannot create a temporary file beside '%s': %s", path,
                           strerror(errno));
        goto done;
    }
    uint8_t len8[8];
    for (int i = 0; i < 8; i++)
        len8[i] = (uint8_t)((uint64_t)padded >> (8 * i));
    static const char spaces[8] = "        ";
    int bad = write_all(fd, len8, 8) || write_all(fd, hdr, hlen) || write_all(fd, spaces, padded - hlen);
    for (int i = 0; i < n && !bad; i++) {
        int64_t numel = 1;
        for (int d = 0; d < t[i].ndim; d++)
            numel *= t[i].shape[d];
        bad = write_all(fd, t[i].data, (size_t)numel * catanet_dtype_size(t[i].dtype));
    }
    /* mkstemp creates 0600; a weight file is as readable as any other output */
    if (bad || fchmod(fd, 0644) < 0 || fsync(fd) < 0) {
        ret = catanet_errf(err, es, CATANET_ERR_IO, "cannot write '%s': %s", tmp, strerror(errno));
        goto done;
    }
    close(fd);
    fd = -1;
    if (rename(tmp, path) < 0) {
        ret = catanet_errf(err, es, CATANET_ERR_IO, "cannot rename '%s' to '%s': %s", tmp, path, strerror(errno));
        unlink(tmp);
        goto done;
    }
    dircopy = strdup(path);
    if (dircopy) { /* make the rename itself durable */
        int dfd = open(dirname(dircopy), O_RDONLY | O_DIRECTORY);
        if (dfd >= 0) {
            fsync(dfd);
            close(dfd);
        }
    }
done:
    if (fd >= 0) {
        close(fd);
        unlink(tmp);
    }
    free(dircopy);
    free(tmp);
    free(hdr);
    json_decref(root);
    return ret;
}
