/*
 * pickle.c: the restricted interpreter of a checkpoint's data.pkl (protocol 2, plus the few protocol 4
 * framing opcodes). It builds plain values (dicts, tuples, ints, strings) and never calls anything but
 * OrderedDict() and _rebuild_tensor_v2(...) on the storage classes it knows; every argument is checked
 * against the pickle's bytes, and the memory a pickle may take is capped.
 * defines: catanet_pth_globals, catanet_pth_unpickle, catanet_pth_vm_free, catanet_pth_dict_get
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catanet.h"
#include "error.h"
#include "internal.h"

const PthGlobal catanet_pth_globals[N_GLOBALS] = {
    [G_ORDERED_DICT] = { "collections", "OrderedDict", 0, 0 },
    [G_REBUILD_TENSOR] = { "torch._utils", "_rebuild_tensor_v2", 0, 0 },
    [G_FLOAT] = { "torch", "FloatStorage", 1, CATANET_DT_F32 },
    [G_BOOL] = { "torch", "BoolStorage", 1, CATANET_DT_BOOL },
    [G_HALF] = { "torch", "HalfStorage", 1, CATANET_DT_F16 },
    [G_BFLOAT16] = { "torch", "BFloat16Storage", 1, CATANET_DT_BF16 },
    [G_DOUBLE] = { "torch", "DoubleStorage", 1, CATANET_DT_F64 },
    [G_LONG] = { "torch", "LongStorage", 1, CATANET_DT_I64 },
};

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
        if (strlen(catanet_pth_globals[g].module) == ml && !memcmp(catanet_pth_globals[g].module, mod, ml) &&
            strlen(catanet_pth_globals[g].name) == nl && !memcmp(catanet_pth_globals[g].name, name, nl)) {
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
    if (cls->kind != V_GLOBAL || !catanet_pth_globals[cls->sub].is_storage)
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
    const PthGlobal *g = vm->v[fn].kind == V_GLOBAL ? &catanet_pth_globals[vm->v[fn].sub] : NULL;
    snprintf(what, sizeof(what), "%s%s%s", g ? g->module : "a value", g ? "." : "", g ? g->name : "");
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

int catanet_pth_unpickle(Vm *vm, const uint8_t *pk, size_t len, int *result, char *err, size_t es)
{
    vm->pk = pk;
    vm->len = len;
    vm->err = err;
    vm->es = es;
    vm->budget = PTH_BUDGET(vm->len);
    vm->bytes = sizeof(int) * (vm->len + 1);
    vm->memo = malloc(sizeof(int) * (vm->len + 1));
    if (!vm->memo)
        return catanet_errf(err, es, CATANET_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i <= vm->len; i++)
        vm->memo[i] = -1;
    int ret = vm_run(vm, result);
    if (ret < 0 && vm->over)
        ret = catanet_errf(err, es, CATANET_ERR_FORMAT,
                           "data.pkl (%zu bytes) needs more than %zu MiB to parse (the cap: 16 bytes per "
                           "byte of pickle + 16 MiB): not a checkpoint", vm->len, vm->budget >> 20);
    return ret;
}

void catanet_pth_vm_free(Vm *vm)
{
    for (int i = 0; i < vm->nv; i++)
        free(vm->v[i].items);
    free(vm->v);
    free(vm->tens);
    free(vm->stack);
    free(vm->memo);
}

int catanet_pth_dict_get(const Vm *vm, int dict, const char *key)
{
    const Val *d = &vm->v[dict];
    for (int i = 0; i + 1 < d->n; i += 2)
        if (str_is(&vm->v[d->items[i]], key))
            return d->items[i + 1];
    return -1;
}
