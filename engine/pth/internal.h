/*
 * internal.h: what the layers of engine/pth/ share; the library's interface stays engine/pth.h.
 * zip.c reads and writes the zip, pickle.c interprets data.pkl, read.c turns a checkpoint into a
 * CatanetSt, write.c writes one.
 */
#ifndef CATANET_PTH_INTERNAL_H
#define CATANET_PTH_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "pth.h"

/* little-endian fields of the zip records and pickle arguments (the caller checked the bounds) */
static inline uint16_t rd16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static inline uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint64_t rd64(const uint8_t *p)
{
    return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32;
}

/* the entry named name (len bytes, not NUL-terminated) among entries sorted by catanet_zip_read, or NULL */
const CatanetZipEntry *catanet_zip_find(const CatanetZipEntry *e, int n, const char *name, size_t len);

/* ---- the pickle's values (pickle.c builds them, read.c walks them) ---- */

/* what a Val is */
enum { V_NONE, V_BOOL, V_INT, V_STR, V_TUPLE, V_LIST, V_DICT, V_GLOBAL, V_STORAGE, V_TENSOR };

/* the only globals a state-dict checkpoint needs */
enum {
    G_ORDERED_DICT, G_REBUILD_TENSOR, G_FLOAT, G_BOOL, G_HALF, G_BFLOAT16, G_DOUBLE, G_LONG, N_GLOBALS
};

/* one of those globals: its Python name, and for a storage class its dtype */
typedef struct PthGlobal {
    const char *module, *name;
    int is_storage;
    CatanetDtype dtype;
} PthGlobal;

/* indexed by G_*: the unpickler accepts these names only, the writer emits them */
extern const PthGlobal catanet_pth_globals[N_GLOBALS];

/* one value the pickle built; values refer to each other by their index in Vm.v */
typedef struct Val {
    int kind;
    int sub;                /* V_GLOBAL: which; V_STORAGE: the storage global; V_TENSOR: index in tens */
    int64_t i;              /* V_INT, V_BOOL; V_STORAGE: numel */
    const uint8_t *s;       /* V_STR (inside the pickle); V_STORAGE: key */
    uint32_t slen;
    int *items;             /* V_TUPLE, V_LIST: n values; V_DICT: n key/value pairs (2n) */
    int n, cap;
} Val;

/* a _rebuild_tensor_v2(...) call: where the tensor lies in its storage */
typedef struct Tens {
    int storage;            /* a V_STORAGE value */
    int64_t offset;
    int ndim;
    int64_t shape[CATANET_ST_MAX_DIMS], stride[CATANET_ST_MAX_DIMS];
} Tens;

/* the interpreter: the pickle, its values, stack, marks, memo, and the memory they may take */
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
    size_t bytes, budget;   /* what the values, stacks and lists hold; at most budget (PTH_BUDGET, pickle.c) */
    int over;               /* the budget was hit: the failure is the pickle's, not the machine's */
    char *err;
    size_t es;
} Vm;

/* Runs the pickle pk (len bytes) in vm, which must start zeroed; on success *result is the value STOP
 * returned. Free vm with catanet_pth_vm_free whatever this returns. */
int catanet_pth_unpickle(Vm *vm, const uint8_t *pk, size_t len, int *result, char *err, size_t es);
/* frees what the interpreter allocated */
void catanet_pth_vm_free(Vm *vm);
/* the value of key in a dict, or -1 */
int catanet_pth_dict_get(const Vm *vm, int dict, const char *key);

/* ---- a growing byte buffer (the zip and pickle writers) ---- */

/* a failed growth sets failed and drops every later write: check it once at the end */
typedef struct Buf {
    uint8_t *p;
    size_t n, cap;
    int failed;
} Buf;

/* appends n bytes */
void catanet_pth_put(Buf *b, const void *data, size_t n);

/* appends 1, 2 or 4 bytes, little-endian */
static inline void put8(Buf *b, unsigned v)
{
    uint8_t c = (uint8_t)v;
    catanet_pth_put(b, &c, 1);
}

static inline void put16(Buf *b, unsigned v)
{
    uint8_t c[2] = { (uint8_t)v, (uint8_t)(v >> 8) };
    catanet_pth_put(b, c, 2);
}

static inline void put32(Buf *b, uint32_t v)
{
    uint8_t c[4] = { (uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24) };
    catanet_pth_put(b, c, 4);
}

#endif
