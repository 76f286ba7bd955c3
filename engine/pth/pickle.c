/*
 * pth.c: PyTorch checkpoints (torch.save's zip format) without Python.
 *
 * Layers, each validating everything it reads from the file:
 *   zip:    end of central directory (zip64 aware) -> central directory -> local headers -> stored data;
 *   pickle: a restricted interpreter (protocol 2, plus the few protocol 4 framing opcodes) that builds
 *           plain values and never calls anything but OrderedDict() and _rebuild_tensor_v2(...);
 *   tensors: storage records data/<key>, offset + strided extent checked against the storage, copied
 *           out contiguous.
 * Writer: the same format, so tests and tools can produce checkpoints torch.load reads.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "catanet.h"
#include "error.h"
#include "pth.h"

#define ZIP_LOCAL_SIG 0x04034b50u
#define ZIP_CENTRAL_SIG 0x02014b50u
#define ZIP_EOCD_SIG 0x06054b50u
#define ZIP64_LOCATOR_SIG 0x07064b50u
#define ZIP64_EOCD_SIG 0x06064b50u
#define ZIP_LOCAL_SIZE 30
#define ZIP_CENTRAL_SIZE 46
#define ZIP_EOCD_SIZE 22
#define ZIP64_LOCATOR_SIZE 20
#define ZIP64_EOCD_SIZE 56
#define ZIP_MAX_COMMENT 65535
#define ZIP_FLAG_ENCRYPTED 0x0001u
#define ZIP_FLAG_STRONG_ENCRYPTION 0x0040u
#define ZIP_EXTRA_ZIP64 0x0001u
#define ZIP_ALIGN 64 /* torch aligns every record's data to 64 bytes */

#define TENSOR_ALIGN 64

static uint16_t rd16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t rd64(const uint8_t *p)
{
    return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32;
}

static uint32_t crc32_buf(const uint8_t *p, uint64_t n)
{
    uint32_t table[256];
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
        table[i] = c;
    }
    uint32_t c = 0xffffffffu;
    for (uint64_t i = 0; i < n; i++)
        c = table[(c ^ p[i]) & 0xff] ^ (c >> 8);
    return c ^ 0xffffffffu;
}

int catanet_pth_is_zip(const uint8_t *buf, size_t size)
{
    return size >= 4 && rd32(buf) == ZIP_LOCAL_SIG;
}

/* ------------------------------------------------------------------------------------------------ */
/* zip reader                                                                                       */

static int cmp_entry(const void *a, const void *b)
{
    const CatanetZipEntry *x = a, *y = b;
    size_t n = x->name_len < y->name_len ? x->name_len : y->name_len;
    int c = memcmp(x->name, y->name, n);
    if (c)
        return c;
    return x->name_len < y->name_len ? -1 : x->name_len > y->name_len;
}

static const CatanetZipEntry *zip_find(const CatanetZipEntry *e, int n, const char *name, size_t len)
{
    CatanetZipEntry key = { name, len, NULL, 0 };
    return bsearch(&key, e, n, sizeof(*e), cmp_entry);
}

/* the zip64 extended-information extra field replaces the 0xffff.. placeholders, in this order */
static int zip64_extra(const uint8_t *x, size_t xlen, uint64_t *usize, uint64_t *csize, uint64_t *lho,
                       int need_u, int need_c, int need_o)
{
    size_t p = 0;
    while (p + 4 <= xlen) {
        unsigned id = rd16(x + p), len = rd16(x + p + 2);
        if (len > xlen - p - 4)
            return -1;
        if (id == ZIP_EXTRA_ZIP64) {
            const uint8_t *v = x + p + 4;
            size_t need = 8u * (size_t)(need_u + need_c + need_o), q = 0;
            if (len < need)
                return -1;
            if (need_u) {
                *usize = rd64(v + q);
                q += 8;
            }
            if (need_c) {
                *csize = rd64(v + q);
                q += 8;
            }
            if (need_o)
                *lho = rd64(v + q);
            return 0;
        }
        p += 4 + (size_t)len;
    }
    return need_u || need_c || need_o ? -1 : 0;
}

int catanet_zip_read(CatanetZipEntry **out, int *n_out, const uint8_t *buf, size_t size, unsigned flags,
                     char *err, size_t es)
{
    *out = NULL;
    *n_out = 0;
    if (size < ZIP_EOCD_SIZE)
        return catanet_errf(err, es, CATANET_ERR_FORMAT, "file too short (%zu bytes) for a zip archive", size);
    /* the end-of-central-directory record sits in the last 22 + 65535 (comment) bytes */
    size_t eocd = SIZE_MAX;
    size_t lowest = size - ZIP_EOCD_SIZE > ZIP_MAX_COMMENT ? size - ZIP_EOCD_SIZE - ZIP_MAX_COMMENT : 0;
    for (size_t p = size - ZIP_EOCD_SIZE + 1; p-- > lowest;)
        if (rd32(buf + p) == ZIP_EOCD_SIG && p + ZIP_EOCD_SIZE + rd16(buf + p + 20) <= size) {
            eocd = p;
            break;
        }
    if (eocd == SIZE_MAX)
        return catanet_errf(err, es, CATANET_ERR_FORMAT,
                            "no zip end-of-central-directory record: not a zip archive, or truncated");
    const uint8_t *e = buf + eocd;
    uint64_t disk = rd16(e + 4), cd_disk = rd16(e + 6), count = rd16(e + 10), cd_size = rd32(e + 12),
             cd_off = rd32(e + 16);
    if (count == 0xffff || cd_size == 0xffffffffu || cd_off == 0xffffffffu || disk == 0xffff) {
        if (eocd < ZIP64_LOCATOR_SIZE || rd32(buf + eocd - ZIP64_LOCATOR_SIZE) != ZIP64_LOCATOR_SIG)
            return catanet_errf(err, es, CATANET_ERR_FORMAT, "zip64 archive without a zip64 locator");
        uint64_t z = rd64(buf + eocd - ZIP64_LOCATOR_SIZE + 8);
        if (z > size - ZIP64_LOCATOR_SIZE || size - ZIP64_LOCATOR_SIZE - z < ZIP64_EOCD_SIZE ||
            rd32(buf + z) != ZIP64_EOCD_SIG)
            return catanet_errf(err, es, CATANET_ERR_FORMAT, "zip64 end-of-central-directory record out of the file");
        disk = rd32(buf + z + 16);
        cd_disk = rd32(buf + z + 20);
        count = rd64(buf + z + 32);
        cd_size = rd64(buf + z + 40);
        cd_off = rd64(buf + z + 48);
    }
    if (disk != 0 || cd_disk != 0)
        return catanet_errf(err, es, CATANET_ERR_UNSUPPORTED, "multi-disk zip archives are not supported");
    if (cd_off > size || cd_size > size - cd_off)
        return catanet_errf(err, es, CATANET_ERR_FORMAT,
                            "zip central directory (offset %llu, %llu bytes) beyond the %zu-byte file: truncated?",
                            (unsigned long long)cd_off, (unsigned long long)cd_size, size);
    if (count > cd_size / ZIP_CENTRAL_SIZE)
        return catanet_errf(err, es, CATANET_ERR_FORMAT, "zip claims %llu entries in a %llu-byte central directory",
                            (unsigned long long)count, (unsigned long long)cd_size);
    CatanetZipEntry *ent = malloc(sizeof(*ent) * (count ? count : 1));
    if (!ent)
        return catanet_errf(err, es, CATANET_ERR_NOMEM, "out of memory");
    int ret = 0;
    const uint8_t *cd = buf + cd_off;
    size_t p = 0;
    for (uint64_t i = 0; i < count; i++) {
        if (cd_size - p < ZIP_CENTRAL_SIZE || rd32(cd + p) != ZIP_CENTRAL_SIG) {
            ret = catanet_errf(err, es, CATANET_ERR_FORMAT, "zip central directory entry %llu is damaged",
                               (unsigned long long)i);
            goto fail;
        }
        const uint8_t *c = cd + p;
        unsigned gflags = rd16(c + 8), method = rd16(c + 10), nlen = rd16(c + 28), xlen = rd16(c + 30),
                 clen = rd16(c + 32), dstart = rd16(c + 34);
        uint32_t crc = rd32(c + 16);
        uint64_t csize = rd32(c + 20), usize = rd32(c + 24), lho = rd32(c + 42);
        if (cd_size - p - ZIP_CENTRAL_SIZE < (uint64_t)nlen + xlen + clen) {
            ret = catanet_errf(err, es, CATANET_ERR_FORMAT, "zip central directory entry %llu overruns the directory",
                               (unsigned long long)i);
            goto fail;
        }
        const char *name = (const char *)c + ZIP_CENTRAL_SIZE;
        int nl = (int)nlen;
        if (zip64_extra(c + ZIP_CENTRAL_SIZE + nlen, xlen, &usize, &csize, &lho, usize == 0xffffffffu,
                        csize == 0xffffffffu, lho == 0xffffffffu) < 0) {
            ret = catanet_errf(err, es, CATANET_ERR_FORMAT, "zip entry '%.*s': bad zip64 extra field", nl, name);
            goto fail;
        }
        p += ZIP_CENTRAL_SIZE + (size_t)nlen + xlen + clen;
        if (gflags & (ZIP_FLAG_ENCRYPTED | ZIP_FLAG_STRONG_ENCRYPTION)) {
            ret = catanet_errf(err, es, CATANET_ERR_UNSUPPORTED, "zip entry '%.*s' is encrypted", nl, name);
            goto fail;
        }
        if (method != 0) {
            ret = catanet_errf(err, es, CATANET_ERR_UNSUPPORTED,
                               "zip entry '%.*s' is compressed (method %u): torch.save stores entries "
                               "uncompressed; re-save the checkpoint with torch.save", nl, name, method);
            goto fail;
        }
        if (dstart != 0 && dstart != 0xffff) {
            ret = catanet_errf(err, es, CATANET_ERR_UNSUPPORTED, "zip entry '%.*s' is on another disk", nl, name);
            goto fail;
        }
        if (csize != usize) {
            ret = catanet_errf(err, es, CATANET_ERR_FORMAT, "zip entry '%.*s': stored, but sizes differ (%llu, %llu)",
                               nl, name, (unsigned long long)csize, (unsigned long long)usize);
            goto fail;
        }
        if (lho > size || size - lho < ZIP_LOCAL_SIZE || rd32(buf + lho) != ZIP_LOCAL_SIG) {
            ret = catanet_errf(err, es, CATANET_ERR_FORMAT, "zip entry '%.*s': local header missing at offset %llu",
                               nl, name, (unsigned long long)lho);
            goto fail;
        }
        const uint8_t *l = buf + lho;
        uint64_t data = lho + ZIP_LOCAL_SIZE + (uint64_t)rd16(l + 26) + rd16(l + 28);
        if (rd16(l + 26) != nlen || (size - lho - ZIP_LOCAL_SIZE >= nlen && memcmp(l + ZIP_LOCAL_SIZE, name, nlen)) ||
            rd16(l + 6) & (ZIP_FLAG_ENCRYPTED | ZIP_FLAG_STRONG_ENCRYPTION) || rd16(l + 8) != 0) {
            ret = catanet_errf(err, es, CATANET_ERR_FORMAT,
                               "zip entry '%.*s': local header disagrees with the central directory", nl, name);
            goto fail;
        }
        if (data > size || csize > size - data) {
            ret = catanet_errf(err, es, CATANET_ERR_FORMAT,
                               "zip entry '%.*s': %llu bytes at offset %llu run past the end of the file (truncated?)",
                               nl, name, (unsigned long long)csize, (unsigned long long)data);
            goto fail;
        }
        if (!(flags & CATANET_PTH_NO_CRC) && crc32_buf(buf + data, csize) != crc) {
            ret = catanet_errf(err, es, CATANET_ERR_FORMAT, "zip entry '%.*s': CRC-32 mismatch (damaged file)", nl, name);
            goto fail;
        }
        ent[i].name = name;
        ent[i].name_len = nlen;
        ent[i].data = buf + data;
        ent[i].size = csize;
    }
    qsort(ent, count, sizeof(*ent), cmp_entry);
    for (uint64_t i = 1; i < count; i++)
        if (!cmp_entry(&ent[i - 1], &ent[i])) {
            ret = catanet_errf(err, es, CATANET_ERR_FORMAT, "zip entry '%.*s' appears twice", (int)ent[i].name_len,
                               ent[i].name);
            goto fail;
        }
    *out = ent;
    *n_out = (int)count;
    return 0;
fail:
    free(ent);
    return ret;
}

/* ------------------------------------------------------------------------------------------------ */
/* restricted pickle interpreter                                                                    */

enum { V_NONE, V_BOOL, V_INT, V_STR, V_TUPLE, V_LIST, V_DICT, V_GLOBAL, V_STORAGE, V_TENSOR };

/* the only globals a state-dict checkpoint needs */
enum {
    G_ORDERED_DICT, G_REBUILD_TENSOR, G_FLOAT, G_BOOL, G_HALF, G_BFLOAT16, G_DOUBLE, G_LONG, N_GLOBALS
};

static const struct {
    const char *module, *name;
    int is_storage;
    CatanetDtype dtype;
} globals[N_GLOBALS] = {
    [G_ORDERED_DICT] = { "collections", "OrderedDict", 0, 0 },
    [G_REBUILD_TENSOR] = { "torch._utils", "_rebuild_tensor_v2", 0, 0 },
    [G_FLOAT] = { "torch", "FloatStorage", 1, CATANET_DT_F32 },
    [G_BOOL] = { "torch", "BoolStorage", 1, CATANET_DT_BOOL },
    [G_HALF] = { "torch", "HalfStorage", 1, CATANET_DT_F16 },
    [G_BFLOAT16] = { "torch", "BFloat16Storage", 1, CATANET_DT_BF16 },
    [G_DOUBLE] = { "torch", "DoubleStorage", 1, CATANET_DT_F64 },
    [G_LONG] = { "torch", "LongStorage", 1, CATANET_DT_I64 },
};

typedef struct Val {
    int kind;
    int sub;                /* V_GLOBAL: which; V_STORAGE: the storage global; V_TENSOR: index in tens */
    int64_t i;              /* V_INT, V_BOOL; V_STORAGE: numel */
    const uint8_t *s;       /* V_STR (inside the pickle); V_STORAGE: key */
    uint32_t slen;
    int *items;             /* V_TUPLE, V_LIST: n values; V_DICT: n key/value pairs (2n) */
    int n, cap;
} Val;

typedef struct Tens {
    int storage;            /* a V_STORAGE value */
    int64_t offset;
    int ndim;
    int64_t shape[CATANET_ST_MAX_DIMS], stride[CATANET_ST_MAX_DIMS];
} Tens;

typedef struct Vm {
    const uint8_t *pk;
    size_t len, pos, op_pos;
    Val *v;
    int nv, capv;
    Tens *tens;
    int nt, capt;
    int *stack;
    int sp, caps;
    int marks[CATANET_PTH_MAX_MARKS];
    int nmarks;
    int *memo;              /* len + 1 slots: a valid pickle never memoizes more values than it has bytes */
    size_t nmemo;
    size_t bytes, budget;   /* what the values, stacks and lists hold; at most budget (PTH_BUDGET) */
    int over;               /* the budget was hit: the failure is the pickle's, not the machine's */
    char *err;
    size_t es;
} Vm;

static int vm_err(Vm *vm, const char *fmt, const char *what)
{
    char buf[384];
    snprintf(buf, sizeof(buf), fmt, what);
    return catanet_errf(vm->err, vm->es, CATANET_ERR_FORMAT, "data.pkl offset %zu: %s", vm->op_pos, buf);
}

/* A pickle makes at most one value per byte, and a genuine checkpoint's far fewer (its pickle is small
 * and names tensors stored beside it), but 1-byte opcodes (NONE, EMPTY_TUPLE, ...) cost ~50 bytes of
 * value each: without a cap a 10 MB pickle would take over 500 MB before it is refused. */
#define PTH_BUDGET(len) (16 * (size_t)(len) + ((size_t)16 << 20))

/* charges n bytes to the pickle's budget; -1 when it is spent */
static int charge(Vm *vm, size_t n)
{
    if (n > vm->budget - vm->bytes) {
        vm->over = 1;
        return -1;
    }
    vm->bytes += n;
    return 0;
}

static int grow(Vm *vm, void **p, int *cap, int need, size_t elem)
{
    if (need <= *cap)
        return 0;
    int c = *cap ? *cap : 16;
    while (c < need) {
        if (c > (1 << 28))
            return -1;
        c *= 2;
    }
    if (charge(vm, (size_t)(c - *cap) * elem) < 0)
        return -1;
    void *q = realloc(*p, (size_t)c * elem);
    if (!q)
        return -1;
    *p = q;
    *cap = c;
    return 0;
}

static int new_val(Vm *vm, int kind)
{
    if (grow(vm, (void **)&vm->v, &vm->capv, vm->nv + 1, sizeof(Val)) < 0)
        return -1;
    memset(&vm->v[vm->nv], 0, sizeof(Val));
    vm->v[vm->nv].kind = kind;
    return vm->nv++;
}

static int push(Vm *vm, int idx)
{
    if (idx < 0)
        return catanet_errf(vm->err, vm->es, CATANET_ERR_NOMEM, "out of memory");
    if (grow(vm, (void **)&vm->stack, &vm->caps, vm->sp + 1, sizeof(int)) < 0)
        return catanet_errf(vm->err, vm->es, CATANET_ERR_NOMEM, "out of memory");
    vm->stack[vm->sp++] = idx;
    return 0;
}

/* values above the innermost mark, or on the whole stack when need > 0 items */
static int need_stack(Vm *vm, int n, const char *op)
{
    int floor = vm->nmarks ? vm->marks[vm->nmarks - 1] : 0;
    if (vm->sp - floor < n)
        return vm_err(vm, "%s on a stack with too few values", op);
    return 0;
}

static int pop_mark(Vm *vm, const char *op)
{
    if (!vm->nmarks)
        return vm_err(vm, "%s without a MARK", op);
    return vm->marks[--vm->nmarks];
}

static int append_item(Vm *vm, int container, int item)
{
    Val *c = &vm->v[container];
    if (grow(vm, (void **)&c->items, &c->cap, c->n + 1, sizeof(int)) < 0)
        return catanet_errf(vm->err, vm->es, CATANET_ERR_NOMEM, "out of memory");
    c->items[c->n++] = item;
    return 0;
}

static int make_tuple(Vm *vm, int from)
{
    int n = vm->sp - from;
    int t = new_val(vm, V_TUPLE);
    if (t < 0)
        return catanet_errf(vm->err, vm->es, CATANET_ERR_NOMEM, "out of memory");
    if (n) {
        vm->v[t].items = charge(vm, sizeof(int) * n) < 0 ? NULL : malloc(sizeof(int) * n);
        if (!vm->v[t].items)
            return catanet_errf(vm->err, vm->es, CATANET_ERR_NOMEM, "out of memory");
        memcpy(vm->v[t].items, vm->stack + from, sizeof(int) * n);
        vm->v[t].n = vm->v[t].cap = n;
    }
    vm->sp = from;
    return push(vm, t);
}

/* strict UTF-8 (no overlong forms, no surrogates, at most U+10FFFF), as Python's decoder */
static int utf8_valid(const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t k = c >= 0xc2 && c <= 0xdf ? 1 : c >= 0xe0 && c <= 0xef ? 2 : c >= 0xf0 && c <= 0xf4 ? 3 : 0;
        if (!k || n - i <= k)
            return 0;
        uint8_t lo = 0x80, hi = 0xbf;
        if (c == 0xe0)
            lo = 0xa0;
        else if (c == 0xed)
            hi = 0x9f;
        else if (c == 0xf0)
            lo = 0x90;
        else if (c == 0xf4)
            hi = 0x8f;
        if (s[i + 1] < lo || s[i + 1] > hi)
            return 0;
        for (size_t j = 2; j <= k; j++)
            if ((s[i + j] & 0xc0) != 0x80)
                return 0;
        i += k + 1;
    }
    return 1;
}

static int str_is(const Val *v, const char *s)
{
    return v->kind == V_STR && v->slen == strlen(s) && !memcmp(v->s, s, v->slen);
}

static int take(Vm *vm, size_t n, const uint8_t **p)
{
    if (vm->len - vm->pos < n)
        return vm_err(vm, "%s", "truncated pickle (an argument runs past the end of data.pkl)");
    *p = vm->pk + vm->pos;
    vm->pos += n;
    return 0;
}

static int push_str(Vm *vm, const uint8_t *s, size_t n)
{
    if (n > UINT32_MAX)
        return vm_err(vm, "%s", "string too long");
    if (!utf8_valid(s, n))
        return vm_err(vm, "%s", "string is not valid UTF-8");
    int v = new_val(vm, V_STR);
    if (v >= 0) {
        vm->v[v].s = s;
        vm->v[v].slen = (uint32_t)n;
    }
    return push(vm, v);
}

static int push_global(Vm *vm, const uint8_t *mod, size_t ml, const uint8_t *name, size_t nl)
{
    for (int g = 0; g < N_GLOBALS; g++)
        if (strlen(globals[g].module) == ml && !memcmp(globals[g].module, mod, ml) &&
            strlen(globals[g].name) == nl && !memcmp(globals[g].name, name, nl)) {
            int v = new_val(vm, V_GLOBAL);
            if (v >= 0)
                vm->v[v].sub = g;
            return push(vm, v);
        }
    char what[160];
    snprintf(what, sizeof(what), "%.*s %.*s", (int)(ml < 64 ? ml : 64), (const char *)mod,
             (int)(nl < 64 ? nl : 64), (const char *)name);
    for (char *c = what; *c; c++)
        if ((unsigned char)*c < 32 || (unsigned char)*c > 126)
            *c = '?';
    return vm_err(vm, "refusing GLOBAL '%s': a weight checkpoint only references collections.OrderedDict, "
                  "torch._utils._rebuild_tensor_v2 and torch storage classes", what);
}

static int get_int(const Vm *vm, int idx, int64_t *out)
{
    if (vm->v[idx].kind != V_INT)
        return -1;
    *out = vm->v[idx].i;
    return 0;
}

/* _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata]) */
static int rebuild_tensor(Vm *vm, const Val *args)
{
    if (args->n != 6 && args->n != 7)
        return vm_err(vm, "%s", "_rebuild_tensor_v2 takes 6 or 7 arguments");
    const Val *st = &vm->v[args->items[0]], *size = &vm->v[args->items[2]], *stride = &vm->v[args->items[3]];
    const Val *rg = &vm->v[args->items[4]], *hooks = &vm->v[args->items[5]];
    Tens t = { 0 };
    if (st->kind != V_STORAGE)
        return vm_err(vm, "%s", "_rebuild_tensor_v2: first argument is not a storage (BINPERSID)");
    if (get_int(vm, args->items[1], &t.offset) < 0 || t.offset < 0)
        return vm_err(vm, "%s", "_rebuild_tensor_v2: storage offset is not a non-negative integer");
    if (size->kind != V_TUPLE || stride->kind != V_TUPLE || size->n != stride->n)
        return vm_err(vm, "%s", "_rebuild_tensor_v2: size and stride must be tuples of the same length");
    if (size->n > CATANET_ST_MAX_DIMS)
        return vm_err(vm, "%s", "_rebuild_tensor_v2: too many dimensions");
    for (int d = 0; d < size->n; d++)
        if (get_int(vm, size->items[d], &t.shape[d]) < 0 || get_int(vm, stride->items[d], &t.stride[d]) < 0 ||
            t.shape[d] < 0 || t.stride[d] < 0)
            return vm_err(vm, "%s", "_rebuild_tensor_v2: size and stride entries must be non-negative integers");
    if (rg->kind != V_BOOL)
        return vm_err(vm, "%s", "_rebuild_tensor_v2: requires_grad is not a bool");
    if (hooks->kind != V_DICT || hooks->n != 0)
        return vm_err(vm, "%s", "_rebuild_tensor_v2: backward hooks must be an empty OrderedDict");
    if (args->n == 7) {
        const Val *md = &vm->v[args->items[6]];
        if (md->kind != V_NONE && !(md->kind == V_DICT && md->n == 0))
            return vm_err(vm, "%s", "_rebuild_tensor_v2: tensor metadata must be None or empty");
    }
    t.storage = args->items[0];
    t.ndim = size->n;
    if (grow(vm, (void **)&vm->tens, &vm->capt, vm->nt + 1, sizeof(Tens)) < 0)
        return catanet_errf(vm->err, vm->es, CATANET_ERR_NOMEM, "out of memory");
    vm->tens[vm->nt] = t;
    int v = new_val(vm, V_TENSOR);
    if (v >= 0)
        vm->v[v].sub = vm->nt++;
    return push(vm, v);
}

/* BINPERSID: ('storage', StorageClass, key, location, numel) -> a storage reference */
static int persistent_load(Vm *vm, int pid)
{
    const Val *t = &vm->v[pid];
    if (t->kind != V_TUPLE || t->n != 5 || !str_is(&vm->v[t->items[0]], "storage"))
        return vm_err(vm, "%s", "persistent id is not ('storage', class, key, location, numel)");
    const Val *cls = &vm->v[t->items[1]], *key = &vm->v[t->items[2]], *loc = &vm->v[t->items[3]];
    int64_t numel;
    /* new_val may move vm->v: keep what is needed from these values first */
    if (cls->kind != V_GLOBAL || !globals[cls->sub].is_storage)
        return vm_err(vm, "%s", "persistent id: the class is not a torch storage class");
    if (key->kind != V_STR || key->slen == 0 || key->slen > CATANET_PTH_MAX_NAME || loc->kind != V_STR)
        return vm_err(vm, "%s", "persistent id: bad storage key or location");
    if (get_int(vm, t->items[4], &numel) < 0 || numel < 0)
        return vm_err(vm, "%s", "persistent id: storage size is not a non-negative integer");
    int sub = cls->sub;
    const uint8_t *ks = key->s;
    uint32_t kl = key->slen;
    int v = new_val(vm, V_STORAGE);
    if (v >= 0) {
        vm->v[v].sub = sub;
        vm->v[v].i = numel;
        vm->v[v].s = ks;
        vm->v[v].slen = kl;
    }
    return push(vm, v);
}

static int reduce(Vm *vm)
{
    int ret = need_stack(vm, 2, "REDUCE");
    if (ret < 0)
        return ret;
    int fn = vm->stack[vm->sp - 2], args = vm->stack[vm->sp - 1];
    vm->sp -= 2;
    if (vm->v[args].kind != V_TUPLE)
        return vm_err(vm, "%s", "REDUCE arguments are not a tuple");
    if (vm->v[fn].kind == V_GLOBAL && vm->v[fn].sub == G_ORDERED_DICT) {
        if (vm->v[args].n != 0)
            return vm_err(vm, "%s", "OrderedDict(...) with arguments is not supported");
        return push(vm, new_val(vm, V_DICT));
    }
    if (vm->v[fn].kind == V_GLOBAL && vm->v[fn].sub == G_REBUILD_TENSOR)
        return rebuild_tensor(vm, &vm->v[args]);
    char what[64];
    snprintf(what, sizeof(what), "%s%s%s", vm->v[fn].kind == V_GLOBAL ? globals[vm->v[fn].sub].module : "a value",
             vm->v[fn].kind == V_GLOBAL ? "." : "", vm->v[fn].kind == V_GLOBAL ? globals[vm->v[fn].sub].name : "");
    return vm_err(vm, "REDUCE calls %s: only OrderedDict() and _rebuild_tensor_v2(...) may be called", what);
}

static int set_items(Vm *vm, int dict, int from, const char *op)
{
    if (vm->v[dict].kind != V_DICT)
        return vm_err(vm, "%s on a value that is not a dict", op);
    if ((vm->sp - from) % 2)
        return vm_err(vm, "%s with an odd number of values", op);
    for (int i = from; i < vm->sp; i += 2) {
        if (vm->v[vm->stack[i]].kind != V_STR)
            return vm_err(vm, "%s: dict key is not a string", op);
        int ret = append_item(vm, dict, vm->stack[i]);
        if (ret < 0 || (ret = append_item(vm, dict, vm->stack[i + 1])) < 0)
            return ret;
    }
    return 0;
}

static int memo_index(Vm *vm, uint64_t idx, int for_get)
{
    if (idx > vm->len)
        return vm_err(vm, "%s", "memo index out of range");
    if (for_get && vm->memo[idx] < 0)
        return vm_err(vm, "%s", "BINGET of an empty memo slot");
    return (int)idx;
}

/* Runs the pickle; on success *result is the value STOP returned. */
static int vm_run(Vm *vm, int *result)
{
    const uint8_t *a = NULL;
    int ret;
    for (;;) {
        vm->op_pos = vm->pos;
        if (vm->pos >= vm->len)
            return vm_err(vm, "%s", "truncated pickle (no STOP opcode)");
        uint8_t op = vm->pk[vm->pos++];
        ret = 0;
        switch (op) {
        case 0x80: /* PROTO */
            if ((ret = take(vm, 1, &a)) < 0)
                return ret;
            if (a[0] < 2 || a[0] > 5)
                return vm_err(vm, "%s", "unsupported pickle protocol (2 to 5)");
            break;
        case 0x95: /* FRAME (protocol 4): a length hint only */
            ret = take(vm, 8, &a);
            break;
        case '}': /* EMPTY_DICT */
            ret = push(vm, new_val(vm, V_DICT));
            break;
        case ']': /* EMPTY_LIST */
            ret = push(vm, new_val(vm, V_LIST));
            break;
        case ')': /* EMPTY_TUPLE */
            ret = push(vm, new_val(vm, V_TUPLE));
            break;
        case 'N': /* NONE */
            ret = push(vm, new_val(vm, V_NONE));
            break;
        case 0x88: /* NEWTRUE */
        case 0x89: { /* NEWFALSE */
            int v = new_val(vm, V_BOOL);
            if (v >= 0)
                vm->v[v].i = op == 0x88;
            ret = push(vm, v);
            break;
        }
        case 'J': /* BININT */
        case 'K': /* BININT1 */
        case 'M': { /* BININT2 */
            size_t n = op == 'J' ? 4 : op == 'K' ? 1 : 2;
            if ((ret = take(vm, n, &a)) < 0)
                return ret;
            int v = new_val(vm, V_INT);
            if (v >= 0)
                vm->v[v].i = op == 'J' ? (int64_t)(int32_t)rd32(a) : op == 'K' ? a[0] : rd16(a);
            ret = push(vm, v);
            break;
        }
        case 0x8a: { /* LONG1: n-byte two's complement, n <= 8 here */
            if ((ret = take(vm, 1, &a)) < 0)
                return ret;
            size_t n = a[0];
            if (n > 8)
                return vm_err(vm, "%s", "LONG1 integer wider than 64 bits");
            if ((ret = take(vm, n, &a)) < 0)
                return ret;
            uint64_t u = 0;
            for (size_t k = 0; k < n; k++)
                u |= (uint64_t)a[k] << (8 * k);
            if (n && n < 8 && (a[n - 1] & 0x80))
                u |= ~(uint64_t)0 << (8 * n);
            int v = new_val(vm, V_INT);
            if (v >= 0)
                memcpy(&vm->v[v].i, &u, 8);
            ret = push(vm, v);
            break;
        }
        case 'X': /* BINUNICODE */
        case 0x8c: { /* SHORT_BINUNICODE */
            if ((ret = take(vm, op == 'X' ? 4 : 1, &a)) < 0)
                return ret;
            size_t n = op == 'X' ? rd32(a) : a[0];
            if ((ret = take(vm, n, &a)) < 0)
                return ret;
            ret = push_str(vm, a, n);
            break;
        }
        case 'c': { /* GLOBAL: "module\nname\n" */
            const uint8_t *mod = vm->pk + vm->pos, *nl1, *nl2;
            nl1 = memchr(mod, '\n', vm->len - vm->pos);
            nl2 = nl1 ? memchr(nl1 + 1, '\n', vm->len - vm->pos - (size_t)(nl1 + 1 - mod)) : NULL;
            if (!nl2)
                return vm_err(vm, "%s", "truncated GLOBAL");
            vm->pos += (size_t)(nl2 + 1 - mod);
            ret = push_global(vm, mod, (size_t)(nl1 - mod), nl1 + 1, (size_t)(nl2 - nl1 - 1));
            break;
        }
        case 0x93: { /* STACK_GLOBAL */
            if ((ret = need_stack(vm, 2, "STACK_GLOBAL")) < 0)
                return ret;
            const Val *m = &vm->v[vm->stack[vm->sp - 2]], *n = &vm->v[vm->stack[vm->sp - 1]];
            if (m->kind != V_STR || n->kind != V_STR)
                return vm_err(vm, "%s", "STACK_GLOBAL on values that are not strings");
            vm->sp -= 2;
            ret = push_global(vm, m->s, m->slen, n->s, n->slen);
            break;
        }
        case '(': /* MARK */
            if (vm->nmarks == CATANET_PTH_MAX_MARKS)
                return vm_err(vm, "%s", "MARKs nested too deeply");
            vm->marks[vm->nmarks++] = vm->sp;
            break;
        case 't': { /* TUPLE */
            int from = pop_mark(vm, "TUPLE");
            if (from < 0)
                return from;
            ret = make_tuple(vm, from);
            break;
        }
        case 0x85: /* TUPLE1 */
        case 0x86: /* TUPLE2 */
        case 0x87: { /* TUPLE3 */
            int n = op - 0x84;
            if ((ret = need_stack(vm, n, "TUPLEn")) < 0)
                return ret;
            ret = make_tuple(vm, vm->sp - n);
            break;
        }
        case 'a': { /* APPEND */
            if ((ret = need_stack(vm, 2, "APPEND")) < 0)
                return ret;
            int list = vm->stack[vm->sp - 2], item = vm->stack[vm->sp - 1];
            if (vm->v[list].kind != V_LIST)
                return vm_err(vm, "%s", "APPEND to a value that is not a list");
            vm->sp--;
            ret = append_item(vm, list, item);
            break;
        }
        case 'e': { /* APPENDS */
            int from = pop_mark(vm, "APPENDS");
            if (from < 0)
                return from;
            if (from < 1 || (vm->nmarks && from - 1 < vm->marks[vm->nmarks - 1]))
                return vm_err(vm, "%s", "APPENDS without a list below its MARK");
            int list = vm->stack[from - 1];
            if (vm->v[list].kind != V_LIST)
                return vm_err(vm, "%s", "APPENDS to a value that is not a list");
            for (int i = from; i < vm->sp && ret >= 0; i++)
                ret = append_item(vm, list, vm->stack[i]);
            vm->sp = from;
            break;
        }
        case 's': { /* SETITEM */
            if ((ret = need_stack(vm, 3, "SETITEM")) < 0)
                return ret;
            ret = set_items(vm, vm->stack[vm->sp - 3], vm->sp - 2, "SETITEM");
            vm->sp -= 2;
            break;
        }
        case 'u': { /* SETITEMS */
            int from = pop_mark(vm, "SETITEMS");
            if (from < 0)
                return from;
            if (from < 1 || (vm->nmarks && from - 1 < vm->marks[vm->nmarks - 1]))
                return vm_err(vm, "%s", "SETITEMS without a dict below its MARK");
            ret = set_items(vm, vm->stack[from - 1], from, "SETITEMS");
            vm->sp = from;
            break;
        }
        case 'b': { /* BUILD: only OrderedDict state (the state dict's _metadata), which is ignored */
            if ((ret = need_stack(vm, 2, "BUILD")) < 0)
                return ret;
            if (vm->v[vm->stack[vm->sp - 2]].kind != V_DICT)
                return vm_err(vm, "%s", "BUILD on a value that is not an OrderedDict");
            vm->sp--;
            break;
        }
        case 'R': /* REDUCE */
            ret = reduce(vm);
            break;
        case 'Q': { /* BINPERSID */
            if ((ret = need_stack(vm, 1, "BINPERSID")) < 0)
                return ret;
            int pid = vm->stack[--vm->sp];
            ret = persistent_load(vm, pid);
            break;
        }
        case 'q': /* BINPUT */
        case 'r': /* LONG_BINPUT */
        case 0x94: { /* MEMOIZE */
            uint64_t idx = vm->nmemo;
            if (op != 0x94) {
                if ((ret = take(vm, op == 'q' ? 1 : 4, &a)) < 0)
                    return ret;
                idx = op == 'q' ? a[0] : rd32(a);
            }
            if ((ret = need_stack(vm, 1, "BINPUT")) < 0)
                return ret;
            int slot = memo_index(vm, idx, 0);
            if (slot < 0)
                return slot;
            vm->memo[slot] = vm->stack[vm->sp - 1];
            if ((size_t)slot >= vm->nmemo)
                vm->nmemo = (size_t)slot + 1;
            break;
        }
        case 'h': /* BINGET */
        case 'j': { /* LONG_BINGET */
            if ((ret = take(vm, op == 'h' ? 1 : 4, &a)) < 0)
                return ret;
            int slot = memo_index(vm, op == 'h' ? a[0] : rd32(a), 1);
            if (slot < 0)
                return slot;
            ret = push(vm, vm->memo[slot]);
            break;
        }
        case '.': /* STOP */
            if (vm->sp < 1)
                return vm_err(vm, "%s", "STOP on an empty stack");
            *result = vm->stack[vm->sp - 1];
            return 0;
        default: {
            char what[32];
            if (op >= 33 && op < 127)
                snprintf(what, sizeof(what), "0x%02x '%c'", op, op);
            else
                snprintf(what, sizeof(what), "0x%02x", op);
            return vm_err(vm, "unsupported pickle opcode %s (only the opcodes of a tensor state dict are "
                          "interpreted; nothing is executed)", what);
        }
        }
        if (ret < 0)
            return ret;
    }
}

static void vm_free(Vm *vm)
{
    for (int i = 0; i < vm->nv; i++)
        free(vm->v[i].items);
    free(vm->v);
    free(vm->tens);
    free(vm->stack);
    free(vm->memo);
}

/* the value of key in a dict, or -1 */
static int dict_get(const Vm *vm, int dict, const char *key)
{
    const Val *d = &vm->v[dict];
    for (int i = 0; i + 1 < d->n; i += 2)
        if (str_is(&vm->v[d->items[i]], key))
            return d->items[i + 1];
    return -1;
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp(((const CatanetStTensor *)a)->name, ((const CatanetStTensor *)b)->name);
}

/* ------------------------------------------------------------------------------------------------ */
/* checkpoint -> CatanetSt                                                                          */

static int mul_ok(uint64_t a, uint64_t b, uint64_t *r)
{
    return !__builtin_mul_overflow(a, b, r);
}

static int add_ok(uint64_t a, uint64_t b, uint64_t *r)
{
    return !__builtin_add_overflow(a, b, r);
}

/* strided copy of one tensor: out[i] = storage[offset + sum(idx_d * stride_d)] */
static void copy_strided(uint8_t *dst, const uint8_t *src, const Tens *t, size_t esz, uint64_t numel)
{
    int contiguous = 1;
    int64_t expect = 1;
    for (int d = t->ndim - 1; d >= 0; d--) {
        if (t->shape[d] != 1 && t->stride[d] != expect)
            contiguous = 0;
        expect *= t->shape[d];
    }
    if (contiguous) {
        memcpy(dst, src + (size_t)t->offset * esz, (size_t)numel * esz);
        return;
    }
    int64_t idx[CATANET_ST_MAX_DIMS] = { 0 };
    for (uint64_t i = 0; i < numel; i++) {
        int64_t off = t->offset;
        for (int d = 0; d < t->ndim; d++)
            off += idx[d] * t->stride[d];
        memcpy(dst + i * esz, src + (size_t)off * esz, esz);
        for (int d = t->ndim - 1; d >= 0; d--) {
            if (++idx[d] < t->shape[d])
                break;
            idx[d] = 0;
        }
    }
}

typedef struct Pending {
    const char *name;        /* inside the pickle */
    uint32_t name_len;
    const Tens *t;
    const CatanetZipEntry *rec;
    CatanetDtype dtype;
    uint64_t numel, nbytes, offset;
} Pending;

int catanet_pth_parse(CatanetSt **out, const uint8_t *buf, size_t size, unsigned flags, char *err, size_t es)
{
    *out = NULL;
    if (!catanet_pth_is_zip(buf, size))
        return catanet_errf(err, es, CATANET_ERR_FORMAT,
                            "not a PyTorch zip checkpoint (no PK\\3\\4 magic; legacy torch.save files before "
                            "torch 1.6 are not supported)");
    CatanetZipEntry *ent = NULL;
    int nent = 0, ret;
    Vm vm = { 0 };
    Pending *pend = NULL;
    CatanetSt *st = NULL;
    uint8_t *arena = NULL;
    size_t arena_size = 0;
    char *rname = NULL;
    if ((ret = catanet_zip_read(&ent, &nent, buf, size, flags, err, es)) < 0)
        return ret;

    /* records are found by suffix: the folder prefix is whatever name the file had when saved */
    static const char pkl_suffix[] = "data.pkl";
    const size_t pkl_len = sizeof(pkl_suffix) - 1;
    const CatanetZipEntry *pkl = NULL;
    for (int i = 0; i < nent; i++) {
        const CatanetZipEntry *z = &ent[i];
        if (z->name_len >= pkl_len && !memcmp(z->name + z->name_len - pkl_len, pkl_suffix, pkl_len) &&
            (z->name_len == pkl_len || z->name[z->name_len - pkl_len - 1] == '/')) {
            if (pkl) {
                ret = catanet_errf(err, es, CATANET_ERR_FORMAT, "two data.pkl records ('%.*s', '%.*s')",
                                   (int)pkl->name_len, pkl->name, (int)z->name_len, z->name);
                goto done;
            }
            pkl = z;
        }
    }
    if (!pkl) {
        ret = catanet_errf(err, es, CATANET_ERR_FORMAT, "zip archive without a data.pkl record: not a torch.save checkpoint");
        goto done;
    }
    size_t plen = pkl->name_len - pkl_len;
    rname = malloc(plen + 16 + CATANET_PTH_MAX_NAME);
    if (!rname) {
        ret = catanet_errf(err, es, CATANET_ERR_NOMEM, "out of memory");
        goto done;
    }
    memcpy(rname, pkl->name, plen);
    memcpy(rname + plen, "byteorder", 9);
    const CatanetZipEntry *bo = zip_find(ent, nent, rname, plen + 9);
    if (bo && !(bo->size == 6 && !memcmp(bo->data, "little", 6))) {
        ret = catanet_errf(err, es, CATANET_ERR_UNSUPPORTED,
                           "checkpoint byteorder is '%.*s': only little-endian checkpoints are supported",
                           (int)(bo->size < 16 ? bo->size : 16), (const char *)bo->data);
        goto done;
    }
    memcpy(rname + plen, "version", 7);
    const CatanetZipEntry *ver = zip_find(ent, nent, rname, plen + 7);
    if (ver) {
        uint64_t i = 0, v = 0;
        while (i < ver->size && i < 8 && ver->data[i] >= '0' && ver->data[i] <= '9')
            v = v * 10 + (ver->data[i++] - '0');
        while (i < ver->size && (ver->data[i] == '\n' || ver->data[i] == '\r'))
            i++;
        if (i == 0 || i != ver->size || v < 1 || v > 99) {
            ret = catanet_errf(err, es, CATANET_ERR_FORMAT, "checkpoint version record is not a small integer");
            goto done;
        }
    }

    /* the pickle */
    vm.pk = pkl->data;
    vm.len = (size_t)pkl->size;
    vm.err = err;
    vm.es = es;
    vm.budget = PTH_BUDGET(vm.len);
    vm.bytes = sizeof(int) * (vm.len + 1);
    vm.memo = malloc(sizeof(int) * (vm.len + 1));
    if (!vm.memo) {
        ret = catanet_errf(err, es, CATANET_ERR_NOMEM, "out of memory");
        goto done;
    }
    for (size_t i = 0; i <= vm.len; i++)
        vm.memo[i] = -1;
    int top = -1;
    if ((ret = vm_run(&vm, &top)) < 0) {
        if (vm.over)
            ret = catanet_errf(err, es, CATANET_ERR_FORMAT,
                               "data.pkl (%zu bytes) needs more than %zu MiB to parse (the cap: 16 bytes per "
                               "byte of pickle + 16 MiB): not a checkpoint", vm.len, vm.budget >> 20);
        goto done;
    }
    if (vm.v[top].kind != V_DICT) {
        ret = catanet_errf(err, es, CATANET_ERR_FORMAT, "the checkpoint is not a dict (of tensors or with 'params')");
        goto done;
    }
    int sd = dict_get(&vm, top, "params");
    const char *which = "params";
    if (sd < 0) {
        sd = dict_get(&vm, top, "params_ema");
        which = "params_ema";
    }
    if (sd < 0) {
        sd = top;
        which = NULL;
    }
    if (vm.v[sd].kind != V_DICT) {
        ret = catanet_errf(err, es, CATANET_ERR_FORMAT, "checkpoint['%s'] is not a state dict", which);
        goto done;
    }
    const Val *d = &vm.v[sd];
    int n = d->n / 2;
    if (n == 0) {
        ret = catanet_errf(err, es, CATANET_ERR_FORMAT, "the state dict%s%s%s holds no tensors", which ? " '" : "",
                           which ? which : "", which ? "'" : "");
        goto done;
    }
    pend = calloc(n, sizeof(*pend));
    if (!pend) {
        ret = catanet_errf(err, es, CATANET_ERR_NOMEM, "out of memory");
        goto done;
    }

    /* every tensor: storage record, dtype, extent inside the storage */
    uint64_t total = 0, limit = 4 * (uint64_t)size + (1u << 20); /* shared storages may repeat, but not explode */
    for (int i = 0; i < n; i++) {
        const Val *k = &vm.v[d->items[2 * i]], *v = &vm.v[d->items[2 * i + 1]];
        Pending *p = &pend[i];
        int kl = (int)(k->slen < 80 ? k->slen : 80);
        if (k->slen == 0 || k->slen > CATANET_PTH_MAX_NAME || memchr(k->s, 0, k->slen)) {
            ret = catanet_errf(err, es, CATANET_ERR_FORMAT, "state dict key '%.*s' is empty, too long or holds NUL",
                               kl, (const char *)k->s);
            goto done;
        }
        if (v->kind != V_TENSOR) {
            ret = catanet_errf(err, es, CATANET_ERR_FORMAT, "state dict entry '%.*s' is not a tensor", kl,
                               (const char *)k->s);
            goto done;
        }
        p->name = (const char *)k->s;
        p->name_len = k->slen;
        p->t = &vm.tens[v->sub];
        const Val *s = &vm.v[p->t->storage];
        p->dtype = globals[s->sub].dtype;
        size_t esz = catanet_dtype_size(p->dtype);
        memcpy(rname + plen, "data/", 5);
        memcpy(rname + plen + 5, s->s, s->slen);
        p->rec = zip_find(ent, nent, rname, plen + 5 + s->slen);
        if (!p->rec) {
            ret = catanet_errf(err, es, CATANET_ERR_FORMAT, "tensor '%.*s': storage record '%.*s' is missing", kl,
                               p->name, (int)(plen + 5 + s->slen), rname);
            goto done;
        }
        uint64_t sbytes;
        if (!mul_ok((uint64_t)s->i, esz, &sbytes) || sbytes != p->rec->size) {
            ret = catanet_errf(err, es, CATANET_ERR_FORMAT,
                               "tensor '%.*s': storage of %lld %s elements but its record has %llu bytes", kl,
                               p->name, (long long)s->i, catanet_dtype_name(p->dtype),
                               (unsigned long long)p->rec->size);
            goto done;
        }
        uint64_t numel = 1, last = (uint64_t)p->t->offset;
        int ok = 1;
        for (int j = 0; j < p->t->ndim && ok; j++)
            ok = mul_ok(numel, (uint64_t)p->t->shape[j], &numel);
        for (int j = 0; j < p->t->ndim && ok && numel; j++) {
            uint64_t span;
            ok = mul_ok((uint64_t)p->t->shape[j] - 1, (uint64_t)p->t->stride[j], &span) && add_ok(last, span, &last);
        }
        if (!ok || (numel && last >= (uint64_t)s->i) || numel > (uint64_t)s->i) {
            ret = catanet_errf(err, es, CATANET_ERR_FORMAT,
                               "tensor '%.*s': offset, size and stride reach outside its storage of %lld elements",
                               kl, p->name, (long long)s->i);
            goto done;
        }
        p->numel = numel;
        p->nbytes = numel * esz;
        p->offset = total;
        total += (p->nbytes + TENSOR_ALIGN - 1) / TENSOR_ALIGN * TENSOR_ALIGN;
        if (total > limit) {
            ret = catanet_errf(err, es, CATANET_ERR_FORMAT, "tensors add up to far more bytes than the file holds");
            goto done;
        }
    }

    /* copy out: one read-only anonymous mapping that catanet_st_close unmaps */
    st = calloc(1, sizeof(*st));
    if (!st || !(st->tensors = calloc(n, sizeof(*st->tensors)))) {
        ret = catanet_errf(err, es, CATANET_ERR_NOMEM, "out of memory");
        goto done;
    }
    arena_size = total ? (size_t)total : 1;
    arena = mmap(NULL, arena_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (arena == MAP_FAILED) {
        arena = NULL;
        ret = catanet_errf(err, es, CATANET_ERR_NOMEM, "out of memory (%zu bytes of tensors)", arena_size);
        goto done;
    }
    for (int i = 0; i < n; i++) {
        Pending *p = &pend[i];
        CatanetStTensor *t = &st->tensors[i];
        t->name = strndup(p->name, p->name_len);
        if (!t->name) {
            ret = catanet_errf(err, es, CATANET_ERR_NOMEM, "out of memory");
            goto done;
        }
        st->n++;
        t->dtype = p->dtype;
        t->ndim = p->t->ndim;
        for (int j = 0; j < t->ndim; j++)
            t->shape[j] = p->t->shape[j];
        t->numel = (int64_t)p->numel;
        t->nbytes = (size_t)p->nbytes;
        t->data = arena + p->offset;
        if (p->numel)
            copy_strided(arena + p->offset, p->rec->data, p->t, catanet_dtype_size(p->dtype), p->numel);
    }
    mprotect(arena, arena_size, PROT_READ);
    st->map = arena;
    st->map_size = arena_size;
    arena = NULL;

    /* a Python dict cannot hold a key twice; a crafted pickle can */
    CatanetStTensor *sorted = malloc(sizeof(*sorted) * n);
    if (!sorted) {
        ret = catanet_errf(err, es, CATANET_ERR_NOMEM, "out of memory");
        goto done;
    }
    memcpy(sorted, st->tensors, sizeof(*sorted) * n);
    qsort(sorted, n, sizeof(*sorted), cmp_name);
    for (int i = 1; i < n; i++)
        if (!strcmp(sorted[i].name, sorted[i - 1].name)) {
            ret = catanet_errf(err, es, CATANET_ERR_FORMAT, "tensor '%.80s' appears twice in the state dict",
                               sorted[i].name);
            break;
        }
    free(sorted);
    if (ret < 0)
        goto done;
    *out = st;
    st = NULL;
    ret = 0;
done:
    if (arena)
        munmap(arena, arena_size);
    catanet_st_close(st);
    free(pend);
    free(rname);
    vm_free(&vm);
    free(ent);
    return ret;
}

int catanet_pth_open(CatanetSt **out, const char *path, char *err, size_t es)
{
    *out = NULL;
    uint8_t *map;
    size_t size;
    int ret = catanet_map_file(path, 1, &map, &size, err, es);
    if (ret < 0)
        return ret;
    char sub[384];
    ret = catanet_pth_parse(out, map, size, 0, sub, sizeof(sub));
    munmap(map, size);
    if (ret < 0)
        return catanet_errf(err, es, ret, "'%s': %s", path, sub);
    return 0;
}

/* ------------------------------------------------------------------------------------------------ */
/* writers                                                                                          */

typedef struct Buf {
    uint8_t *p;
    size_t n, cap;
    int failed;
} Buf;

static void put(Buf *b, const void *data, size_t n)
{
    if (b->failed)
        return;
    if (b->cap - b->n < n) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap - b->n < n) {
            if (cap > SIZE_MAX / 2) {
                b->failed = 1;
                return;
            }
            cap *= 2;
        }
        uint8_t *q = realloc(b->p, cap);
        if (!q) {
            b->failed = 1;
            return;
        }
        b->p = q;
        b->cap = cap;
    }
    if (n)
        memcpy(b->p + b->n, data, n);
    b->n += n;
}

static void put8(Buf *b, unsigned v)
{
    uint8_t c = (uint8_t)v;
    put(b, &c, 1);
}

static void put16(Buf *b, unsigned v)
{
    uint8_t c[2] = { (uint8_t)v, (uint8_t)(v >> 8) };
    put(b, c, 2);
}

static void put32(Buf *b, uint32_t v)
{
    uint8_t c[4] = { (uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24) };
    put(b, c, 4);
}

static int write_file(const char *path, const uint8_t *data, size_t n, char *err, size_t es)
{
    size_t plen = strlen(path);
    char *tmp = malloc(plen + 16);
    if (!tmp)
        return catanet_errf(err, es, CATANET_ERR_NOMEM, "out of memory");
    snprintf(tmp, plen + 16, "%s.tmpXXXXXX", path);
    int fd = mkstemp(tmp), ret = 0;
    if (fd < 0) {
        ret = catanet_errf(err, es, CATANET_ERR_IO, "cannot create a temporary file beside '%s': %s", path,
                           strerror(errno));
        free(tmp);
        return ret;
    }
    const uint8_t *p = data;
    size_t left = n;
    while (left) {
        ssize_t w = write(fd, p, left);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break;
        p += w;
        left -= (size_t)w;
    }
    /* mkstemp creates 0600; a weight file is as readable as any other output */
    if (left || fchmod(fd, 0644) < 0 || fsync(fd) < 0) {
        ret = catanet_errf(err, es, CATANET_ERR_IO, "cannot write '%s': %s", tmp, strerror(errno));
        close(fd);
        unlink(tmp);
    } else {
        close(fd);
        if (rename(tmp, path) < 0) {
            ret = catanet_errf(err, es, CATANET_ERR_IO, "cannot rename '%s' to '%s': %s", tmp, path, strerror(errno));
            unlink(tmp);
        }
    }
    free(tmp);
    return ret;
}

int catanet_zip_write(const char *path, const CatanetZipEntry *e, int n, char *err, size_t es)
{
    Buf b = { 0 };
    uint64_t *lho = calloc(n ? n : 1, sizeof(*lho));
    uint32_t *crc = calloc(n ? n : 1, sizeof(*crc));
    int ret = 0;
    if (!lho || !crc) {
        ret = catanet_errf(err, es, CATANET_ERR_NOMEM, "out of memory");
        goto done;
    }
    if (n > 0xfffe) {
        ret = catanet_errf(err, es, CATANET_ERR_UNSUPPORTED, "%d zip entries: more than this writer supports", n);
        goto done;
    }
    for (int i = 0; i < n; i++) {
        if (e[i].name_len > 0xffff || e[i].size >= 0xffffffffu || b.n >= 0xffffffffu) {
            ret = catanet_errf(err, es, CATANET_ERR_UNSUPPORTED, "zip entry too large for this writer (no zip64)");
            goto done;
        }
        lho[i] = b.n;
        crc[i] = crc32_buf(e[i].data, e[i].size);
        /* pad with an extra field so that the data starts on a 64-byte boundary, as torch does */
        size_t hdr = ZIP_LOCAL_SIZE + e[i].name_len + 4;
        size_t pad = (ZIP_ALIGN - (b.n + hdr) % ZIP_ALIGN) % ZIP_ALIGN;
        put32(&b, ZIP_LOCAL_SIG);
        put16(&b, 20);          /* version needed */
        put16(&b, 0x0800);      /* UTF-8 names */
        put16(&b, 0);           /* stored */
        put16(&b, 0);
        put16(&b, 0x21);        /* 1980-01-01 */
        put32(&b, crc[i]);
        put32(&b, (uint32_t)e[i].size);
        put32(&b, (uint32_t)e[i].size);
        put16(&b, (unsigned)e[i].name_len);
        put16(&b, (unsigned)(4 + pad));
        put(&b, e[i].name, e[i].name_len);
        put16(&b, 0x4246);      /* "FB": torch's padding field id */
        put16(&b, (unsigned)pad);
        for (size_t k = 0; k < pad; k++)
            put8(&b, 'Z');
        put(&b, e[i].data, (size_t)e[i].size);
    }
    uint64_t cd_off = b.n;
    for (int i = 0; i < n; i++) {
        put32(&b, ZIP_CENTRAL_SIG);
        put16(&b, 20);
        put16(&b, 20);
        put16(&b, 0x0800);
        put16(&b, 0);
        put16(&b, 0);
        put16(&b, 0x21);
        put32(&b, crc[i]);
        put32(&b, (uint32_t)e[i].size);
        put32(&b, (uint32_t)e[i].size);
        put16(&b, (unsigned)e[i].name_len);
        put16(&b, 0);
        put16(&b, 0);
        put16(&b, 0);
        put16(&b, 0);
        put32(&b, 0);
        put32(&b, (uint32_t)lho[i]);
        put(&b, e[i].name, e[i].name_len);
    }
    uint64_t cd_size = b.n - cd_off;
    if (b.n >= 0xffffffffu) {
        ret = catanet_errf(err, es, CATANET_ERR_UNSUPPORTED, "zip archive too large for this writer (no zip64)");
        goto done;
    }
    put32(&b, ZIP_EOCD_SIG);
    put16(&b, 0);
    put16(&b, 0);
    put16(&b, (unsigned)n);
    put16(&b, (unsigned)n);
    put32(&b, (uint32_t)cd_size);
    put32(&b, (uint32_t)cd_off);
    put16(&b, 0);
    if (b.failed) {
        ret = catanet_errf(err, es, CATANET_ERR_NOMEM, "out of memory");
        goto done;
    }
    ret = write_file(path, b.p, b.n, err, es);
done:
    free(b.p);
    free(lho);
    free(crc);
    return ret;
}

/* pickle emitters (protocol 2, no memo: the unpickler does not need one) */
static void pk_str(Buf *b, const char *s)
{
    size_t n = strlen(s);
    put8(b, 'X');
    put32(b, (uint32_t)n);
    put(b, s, n);
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
    put8(b, 'c');
    put(b, globals[g].module, strlen(globals[g].module));
    put8(b, '\n');
    put(b, globals[g].name, strlen(globals[g].name));
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
            if (globals[k].is_storage && globals[k].dtype == t[i].dtype)
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
