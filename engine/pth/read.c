/*
 * read.c: a PyTorch checkpoint (torch.save's zip format) -> CatanetSt, without Python. The zip layer
 * finds data.pkl, the pickle interpreter runs it; then for every tensor of the state dict its storage
 * record data/<key> is found, its offset + strided extent checked against the storage, and it is
 * copied out contiguous.
 * defines: catanet_pth_parse, catanet_pth_open
 */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "catanet.h"
#include "error.h"
#include "internal.h"

#define TENSOR_ALIGN 64 /* every tensor copied out starts on a 64-byte boundary of the arena */

static int cmp_name(const void *a, const void *b)
{
    return strcmp(((const CatanetStTensor *)a)->name, ((const CatanetStTensor *)b)->name);
}

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
    const CatanetZipEntry *bo = catanet_zip_find(ent, nent, rname, plen + 9);
    if (bo && !(bo->size == 6 && !memcmp(bo->data, "little", 6))) {
        ret = catanet_errf(err, es, CATANET_ERR_UNSUPPORTED,
                           "checkpoint byteorder is '%.*s': only little-endian checkpoints are supported",
                           (int)(bo->size < 16 ? bo->size : 16), (const char *)bo->data);
        goto done;
    }
    memcpy(rname + plen, "version", 7);
    const CatanetZipEntry *ver = catanet_zip_find(ent, nent, rname, plen + 7);
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
    int top = -1;
    if ((ret = catanet_pth_unpickle(&vm, pkl->data, (size_t)pkl->size, &top, err, es)) < 0)
        goto done;
    if (vm.v[top].kind != V_DICT) {
        ret = catanet_errf(err, es, CATANET_ERR_FORMAT, "the checkpoint is not a dict (of tensors or with 'params')");
        goto done;
    }
    int sd = catanet_pth_dict_get(&vm, top, "params");
    const char *which = "params";
    if (sd < 0) {
        sd = catanet_pth_dict_get(&vm, top, "params_ema");
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
        p->dtype = catanet_pth_globals[s->sub].dtype;
        size_t esz = catanet_dtype_size(p->dtype);
        memcpy(rname + plen, "data/", 5);
        memcpy(rname + plen + 5, s->s, s->slen);
        p->rec = catanet_zip_find(ent, nent, rname, plen + 5 + s->slen);
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
    catanet_pth_vm_free(&vm);
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
