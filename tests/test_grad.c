/*
 * test_grad.c: finite-difference checks of every backward op (STYLE §5.6). For an op f and a
 * fixed random g, L = sum g * f(inputs) is evaluated in double; the central difference
 * (L(x+h) - L(x-h)) / 2h of each checked input element is compared with the backward's
 * gradient (dout = g): |a - n| <= 1e-2 max(|a|,|n|) + 1e-4. The worst index is reported.
 * The fast (_cpu) backward paths are then compared with the reference ones.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels.h"
#include "testutil.h"

typedef struct Fd {
    void (*fwd)(void *ctx);
    void *ctx;
    const float *out;
    size_t nout;
    const float *g;
} Fd;

static double fd_loss(const Fd *f)
{
    f->fwd(f->ctx);
    double s = 0.0;
    for (size_t i = 0; i < f->nout; i++)
        s += (double)f->g[i] * f->out[i];
    return s;
}

#define FD_MAX 400

static void fd_check(const Fd *f, const char *op, const char *what, float *x, size_t n,
                     const float *an, float h)
{
    Rng r = { 12345 };
    size_t worst_i = 0, checked = 0;
    double worst = -1e30, wa = 0, wn = 0;
    for (size_t c = 0; c < (n < FD_MAX ? n : FD_MAX); c++) {
        size_t i = n <= FD_MAX ? c : rng_u32(&r) % n;
        float x0 = x[i];
        float xp = x0 + h, xm = x0 - h;
        x[i] = xp;
        double lp = fd_loss(f);
        x[i] = xm;
        double lm = fd_loss(f);
        x[i] = x0;
        double num = (lp - lm) / ((double)xp - xm);
        double a = an[i];
        double excess = fabs(a - num) - (1e-2 * fmax(fabs(a), fabs(num)) + 1e-4);
        if (excess > worst) {
            worst = excess;
            worst_i = i;
            wa = a;
            wn = num;
        }
        checked++;
    }
    fd_loss(f); /* leave the outputs as they were */
    test_check(worst <= 0, "%s: d%s (%zu of %zu checked) worst index %zu: analytic %.6g numeric %.6g",
               op, what, checked, n, worst_i, wa, wn);
}

/* fast vs reference: max |a-b| relative to the reference's largest magnitude */
static void twin_check(const char *what, const float *fast, const float *ref, size_t n, double tol)
{
    size_t where = 0;
    double d = max_abs_diff(fast, ref, n, &where), s = max_abs(ref, n);
    double rel = d / (s > 1e-30 ? s : 1e-30);
    test_check(rel <= tol, "%s: fast vs reference, max rel diff %.3g at %zu (tol %.g)", what, rel,
               where, tol);
}

static float *rnd(Rng *r, size_t n, float scale)
{
    float *x = malloc(sizeof(float) * (n ? n : 1));
    fill_normal(r, x, n, scale);
    return x;
}

static float *zeros(size_t n)
{
    return calloc(n ? n : 1, sizeof(float));
}

static CatanetCpu make_cpu(int threads, size_t work)
{
    CatanetCpu c = { threads, NULL, (work + 15) & ~(size_t)15 };
    c.work = malloc(sizeof(float) * c.work_per_thread * threads + 64);
    return c;
}

/* ---------------- linear ---------------- */
typedef struct LinCtx { int n, in, out; float *x, *w, *b, *y; } LinCtx;
static void lin_fwd(void *p)
{
    LinCtx *c = p;
    catanet_linear_fwd_ref(c->n, c->in, c->out, c->x, c->w, c->b, c->y);
}

static void test_linear(Rng *r)
{
    LinCtx c = { .n = 37, .in = 5, .out = 6 };
    c.x = rnd(r, c.n * c.in, 1);
    c.w = rnd(r, c.out * c.in, 1);
    c.b = rnd(r, c.out, 1);
    c.y = zeros(c.n * c.out);
    float *g = rnd(r, c.n * c.out, 1);
    float *dx = zeros(c.n * c.in), *dw = zeros(c.out * c.in), *db = zeros(c.out);
    catanet_linear_bwd_ref(c.n, c.in, c.out, c.x, c.w, g, dx, dw, db);
    Fd f = { lin_fwd, &c, c.y, (size_t)c.n * c.out, g };
    fd_check(&f, "linear", "x", c.x, c.n * c.in, dx, 1e-2f);
    fd_check(&f, "linear", "w", c.w, c.out * c.in, dw, 1e-2f);
    fd_check(&f, "linear", "b", c.b, c.out, db, 1e-2f);
    /* fast path: 600 rows spans several chunks; 2 threads */
    int n = 600, in = 40, out = 36;
    float *x = rnd(r, n * in, 1), *w = rnd(r, out * in, 1), *dy = rnd(r, n * out, 1);
    float *dx1 = zeros(n * in), *dw1 = zeros(out * in), *db1 = zeros(out);
    float *dx2 = zeros(n * in), *dw2 = zeros(out * in), *db2 = zeros(out);
    CatanetCpu cpu = make_cpu(2, 16);
    catanet_linear_bwd_ref(n, in, out, x, w, dy, dx1, dw1, db1);
    catanet_linear_bwd_cpu(&cpu, n, in, out, x, w, dy, dx2, dw2, db2);
    twin_check("linear dx", dx2, dx1, n * in, 1e-5);
    twin_check("linear dw", dw2, dw1, out * in, 1e-5);
    twin_check("linear db", db2, db1, out, 1e-5);
    free(cpu.work);
    free(x); free(w); free(dy); free(dx1); free(dw1); free(db1); free(dx2); free(dw2); free(db2);
    free(c.x); free(c.w); free(c.b); free(c.y); free(g); free(dx); free(dw); free(db);
}

/* ---------------- conv2d ---------------- */
typedef struct ConvCtx { CatanetConv2dArgs a; float *x, *w, *b, *y; } ConvCtx;
static void conv_fwd(void *p)
{
    ConvCtx *c = p;
    catanet_conv2d_fwd_ref(&c->a, c->x, c->w, c->b, c->y);
}

static void test_conv(Rng *r, int k)
{
    ConvCtx c = { .a = { 2, 5, 6, 3, 4, k } };
    size_t nin = 2 * 5 * 6 * 3, nout = 2 * 5 * 6 * 4, nw = 4 * 3 * k * k;
    c.x = rnd(r, nin, 1);
    c.w = rnd(r, nw, 1);
    c.b = rnd(r, 4, 1);
    c.y = zeros(nout);
    float *g = rnd(r, nout, 1), *dx = zeros(nin), *dw = zeros(nw), *db = zeros(4);
    catanet_conv2d_bwd_ref(&c.a, c.x, c.w, g, dx, dw, db);
    Fd f = { conv_fwd, &c, c.y, nout, g };
    char name[32];
    snprintf(name, sizeof(name), "conv2d k%d", k);
    fd_check(&f, name, "x", c.x, nin, dx, 1e-2f);
    fd_check(&f, name, "w", c.w, nw, dw, 1e-2f);
    fd_check(&f, name, "b", c.b, 4, db, 1e-2f);
    /* fast path on a size spanning several chunks and pixel blocks */
    CatanetConv2dArgs a = { 2, 37, 41, 8, 12, k };
    size_t ni = (size_t)2 * 37 * 41 * 8, no = (size_t)2 * 37 * 41 * 12, nww = (size_t)12 * 8 * k * k;
    float *x = rnd(r, ni, 1), *w = rnd(r, nww, 1), *dy = rnd(r, no, 1);
    float *dx1 = zeros(ni), *dw1 = zeros(nww), *db1 = zeros(12);
    float *dx2 = zeros(ni), *dw2 = zeros(nww), *db2 = zeros(12);
    float *scr = zeros(catanet_conv2d_bwd_scratch(&a));
    CatanetCpu cpu = make_cpu(2, catanet_conv2d_bwd_work(&a));
    catanet_conv2d_bwd_ref(&a, x, w, dy, dx1, dw1, db1);
    catanet_conv2d_bwd_cpu(&cpu, &a, x, w, dy, dx2, dw2, db2, scr);
    snprintf(name, sizeof(name), "conv2d k%d dx", k);
    twin_check(name, dx2, dx1, ni, 1e-5);
    snprintf(name, sizeof(name), "conv2d k%d dw", k);
    twin_check(name, dw2, dw1, nww, 1e-5);
    snprintf(name, sizeof(name), "conv2d k%d db", k);
    twin_check(name, db2, db1, 12, 1e-5);
    free(cpu.work); free(scr);
    free(x); free(w); free(dy); free(dx1); free(dw1); free(db1); free(dx2); free(dw2); free(db2);
    free(c.x); free(c.w); free(c.b); free(c.y); free(g); free(dx); free(dw); free(db);
}

/* ---------------- dwconv ---------------- */
typedef struct DwCtx { CatanetDwconvArgs a; float *x, *w, *b, *y; } DwCtx;
static void dw_fwd(void *p)
{
    DwCtx *c = p;
    catanet_dwconv_fwd_ref(&c->a, c->x, c->w, c->b, c->y);
}

static void test_dwconv(Rng *r)
{
    DwCtx c = { .a = { 2, 6, 7, 4, 5 } };
    size_t n = 2 * 6 * 7 * 4, nw = 4 * 25;
    c.x = rnd(r, n, 1);
    c.w = rnd(r, nw, 1);
    c.b = rnd(r, 4, 1);
    c.y = zeros(n);
    float *g = rnd(r, n, 1), *dx = zeros(n), *dw = zeros(nw), *db = zeros(4);
    catanet_dwconv_bwd_ref(&c.a, c.x, c.w, g, dx, dw, db);
    Fd f = { dw_fwd, &c, c.y, n, g };
    fd_check(&f, "dwconv", "x", c.x, n, dx, 1e-2f);
    fd_check(&f, "dwconv", "w", c.w, nw, dw, 1e-2f);
    fd_check(&f, "dwconv", "b", c.b, 4, db, 1e-2f);
    CatanetDwconvArgs a = { 3, 19, 23, 16, 5 };
    size_t ni = (size_t)3 * 19 * 23 * 16;
    float *x = rnd(r, ni, 1), *w = rnd(r, 16 * 25, 1), *dy = rnd(r, ni, 1);
    float *dx1 = zeros(ni), *dw1 = zeros(16 * 25), *db1 = zeros(16);
    float *dx2 = zeros(ni), *dw2 = zeros(16 * 25), *db2 = zeros(16);
    float *scr = zeros(catanet_dwconv_bwd_scratch(&a));
    CatanetCpu cpu = make_cpu(2, 16);
    catanet_dwconv_bwd_ref(&a, x, w, dy, dx1, dw1, db1);
    catanet_dwconv_bwd_cpu(&cpu, &a, x, w, dy, dx2, dw2, db2, scr);
    twin_check("dwconv dx", dx2, dx1, ni, 1e-5);
    twin_check("dwconv dw", dw2, dw1, 16 * 25, 1e-5);
    twin_check("dwconv db", db2, db1, 16, 1e-5);
    free(cpu.work); free(scr);
    free(x); free(w); free(dy); free(dx1); free(dw1); free(db1); free(dx2); free(dw2); free(db2);
    free(c.x); free(c.w); free(c.b); free(c.y); free(g); free(dx); free(dw); free(db);
}

/* the fast forward against the reference: channel counts with and without a partial vector,
 * widths below, at and past the interior block (4 pixels + the 2 x 2 border columns) */
static void test_dwconv_fwd(Rng *r)
{
    static const int shapes[][4] = { /* batch, h, w, c */
        { 1, 1, 1, 16 }, { 2, 3, 5, 20 }, { 1, 7, 8, 16 }, { 1, 9, 13, 96 }, { 2, 6, 11, 7 }, { 1, 12, 9, 40 },
    };
    for (size_t i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++) {
        CatanetDwconvArgs a = { shapes[i][0], shapes[i][1], shapes[i][2], shapes[i][3], 5 };
        size_t n = (size_t)a.batch * a.h * a.w * a.c;
        float *x = rnd(r, n, 1), *w = rnd(r, (size_t)a.c * 25, 1), *b = rnd(r, a.c, 1);
        float *y1 = zeros(n), *y2 = zeros(n);
        CatanetCpu cpu = make_cpu(2, 16);
        catanet_dwconv_fwd_ref(&a, x, w, b, y1);
        catanet_dwconv_fwd_cpu(&cpu, &a, x, w, b, y2);
        char name[64];
        snprintf(name, sizeof(name), "dwconv forward %dx%dx%dx%d", a.batch, a.h, a.w, a.c);
        twin_check(name, y2, y1, n, 1e-6);
        free(cpu.work); free(x); free(w); free(b); free(y1); free(y2);
    }
}

/* the fused attention against its reference: row counts below, at and past a 16-row block, key
 * counts with and without a partial 8-key step, heads wider than the register block (the row
 * loop), accumulate on and off */
static void test_attention(Rng *r)
{
    static const int shapes[][4] = { /* rows, T, dqk, dv */
        { 1, 1, 9, 10 }, { 3, 15, 9, 10 }, { 2, 16, 4, 4 }, { 5, 17, 3, 5 }, { 7, 83, 9, 10 }, { 4, 784, 9, 10 },
        { 2, 128, 16, 16 }, { 33, 64, 9, 10 }, { 3, 20, 17, 5 }, { 2, 9, 4, 18 },
    };
    for (size_t i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++)
        for (int acc = 0; acc < 2; acc++) {
            int rows = shapes[i][0], T = shapes[i][1], dqk = shapes[i][2], dv = shapes[i][3];
            int ldq = dqk + 3, ldk = dqk + 5, ldv = dv + 2, ldo = dv + 1;
            float *q = rnd(r, (size_t)rows * ldq, 1.5f), *kt = rnd(r, (size_t)T * ldk, 1.5f);
            float *vt = rnd(r, (size_t)T * ldv, 1), *o1 = rnd(r, (size_t)rows * ldo, 1);
            float *o2 = malloc(sizeof(float) * rows * ldo), *work = zeros(16 * (size_t)T);
            double *dwork = malloc(sizeof(double) * T);
            float *lse1 = zeros(rows), *lse2 = zeros(rows);
            memcpy(o2, o1, sizeof(float) * rows * ldo);
            catanet_attention_fwd_ref(rows, T, dqk, dv, 0.33f, q, ldq, kt, ldk, vt, ldv, o1, ldo, acc, dwork, lse1);
            catanet_attention_fwd_cpu(rows, T, dqk, dv, 0.33f, q, ldq, kt, ldk, vt, ldv, o2, ldo, acc, work, lse2);
            char name[80];
            snprintf(name, sizeof(name), "attention rows %d T %d dqk %d dv %d%s", rows, T, dqk, dv,
                     acc ? " accumulate" : "");
            twin_check(name, o2, o1, (size_t)rows * ldo, 1e-5);
            snprintf(name, sizeof(name), "attention rows %d T %d dqk %d dv %d: lse", rows, T, dqk, dv);
            twin_check(name, lse2, lse1, rows, 1e-5);
            free(q); free(kt); free(vt); free(o1); free(o2); free(work); free(dwork); free(lse1); free(lse2);
        }
}

/* ---------------- layernorm ---------------- */
typedef struct LnCtx { int n, c; float *x, *w, *b, *y; } LnCtx;
static void ln_fwd(void *p)
{
    LnCtx *c = p;
    catanet_layernorm_fwd_ref(c->n, c->c, c->x, c->w, c->b, c->y, NULL, NULL);
}

static void test_layernorm(Rng *r)
{
    LnCtx c = { .n = 9, .c = 7 };
    size_t n = 9 * 7;
    c.x = rnd(r, n, 1);
    c.w = rnd(r, 7, 1);
    c.b = rnd(r, 7, 1);
    c.y = zeros(n);
    float *g = rnd(r, n, 1), *dx = zeros(n), *dw = zeros(7), *db = zeros(7);
    float mean[9], rstd[9];
    catanet_layernorm_fwd_ref(c.n, c.c, c.x, c.w, c.b, c.y, mean, rstd);
    catanet_layernorm_bwd_ref(c.n, c.c, c.x, c.w, mean, rstd, g, dx, dw, db);
    Fd f = { ln_fwd, &c, c.y, n, g };
    fd_check(&f, "layernorm", "x", c.x, n, dx, 3e-3f);
    fd_check(&f, "layernorm", "w", c.w, 7, dw, 1e-2f);
    fd_check(&f, "layernorm", "b", c.b, 7, db, 1e-2f);
    /* the fast rows (float sums in 8 partials) against the reference (double): 37 channels
     * cover the partial sums' tail; the values are offset as activations are, where a float
     * single-pass variance would lose digits */
    int rows = 700, ch = 37;
    size_t nn = (size_t)rows * ch;
    float *x = rnd(r, nn, 2), *w = rnd(r, ch, 1), *b = rnd(r, ch, 1), *dy = rnd(r, nn, 1), *y = zeros(nn);
    for (size_t i = 0; i < nn; i++)
        x[i] += 3.0f;
    float *y2 = zeros(nn), *m1 = zeros(rows), *r1 = zeros(rows), *m2 = zeros(rows), *r2 = zeros(rows);
    float *dx1 = zeros(nn), *dw1 = zeros(ch), *db1 = zeros(ch), *dx2 = zeros(nn), *dw2 = zeros(ch), *db2 = zeros(ch);
    float *scr = zeros(catanet_layernorm_bwd_scratch(rows, ch));
    CatanetCpu cpu = make_cpu(2, 16);
    catanet_layernorm_fwd_ref(rows, ch, x, w, b, y, m1, r1);
    catanet_layernorm_fwd_stats_cpu(&cpu, rows, ch, x, w, b, y2, m2, r2);
    twin_check("layernorm y", y2, y, nn, 1e-6);
    twin_check("layernorm mean", m2, m1, rows, 1e-6);
    twin_check("layernorm rstd", r2, r1, rows, 1e-6);
    catanet_layernorm_fwd_cpu(&cpu, rows, ch, x, w, b, y2);
    twin_check("layernorm y (no statistics)", y2, y, nn, 1e-6);
    catanet_layernorm_bwd_ref(rows, ch, x, w, m1, r1, dy, dx1, dw1, db1);
    catanet_layernorm_bwd_cpu(&cpu, rows, ch, x, w, m1, r1, dy, dx2, dw2, db2, scr);
    twin_check("layernorm dx", dx2, dx1, nn, 1e-6);
    twin_check("layernorm dw", dw2, dw1, ch, 1e-5);
    twin_check("layernorm db", db2, db1, ch, 1e-5);
    /* the serial rows (inside LRSA's tasks) are the same rows */
    memset(dx2, 0, sizeof(float) * nn);
    memset(dw2, 0, sizeof(float) * ch);
    memset(db2, 0, sizeof(float) * ch);
    catanet_layernorm_fwd_serial_cpu(rows, ch, x, w, b, y2, m2, r2);
    twin_check("layernorm serial y", y2, y, nn, 1e-6);
    twin_check("layernorm serial rstd", r2, r1, rows, 1e-6);
    catanet_layernorm_bwd_serial_cpu(rows, ch, x, w, m1, r1, dy, dx2, dw2, db2);
    twin_check("layernorm serial dx", dx2, dx1, nn, 1e-6);
    twin_check("layernorm serial dw", dw2, dw1, ch, 1e-5);
    twin_check("layernorm serial db", db2, db1, ch, 1e-5);
    free(cpu.work); free(scr); free(x); free(w); free(b); free(dy); free(y); free(y2);
    free(m1); free(r1); free(m2); free(r2); free(dx1); free(dw1); free(db1); free(dx2); free(dw2); free(db2);
    free(c.x); free(c.w); free(c.b); free(c.y); free(g); free(dx); free(dw); free(db);
}

/* ---------------- elementwise: gelu, lrelu, pixel shuffle ---------------- */
typedef struct EwCtx { size_t n; float *x, *y; int op; CatanetShuffleArgs sa; } EwCtx;
static void ew_fwd(void *p)
{
    EwCtx *c = p;
    if (c->op == 0)
        catanet_gelu_fwd_ref(c->n, c->x, c->y);
    else if (c->op == 1)
        catanet_lrelu_fwd_ref(c->n, c->x, c->y);
    else
        catanet_pixel_shuffle_fwd_ref(&c->sa, c->x, c->y);
}

static void test_elementwise(Rng *r)
{
    EwCtx c = { .n = 200 };
    c.x = rnd(r, c.n, 2);
    for (size_t i = 0; i < c.n; i++) /* keep lrelu's kink further than h away */
        if (fabsf(c.x[i]) < 0.05f)
            c.x[i] = c.x[i] < 0 ? -0.1f : 0.1f;
    c.y = zeros(c.n);
    float *g = rnd(r, c.n, 1), *dx = zeros(c.n);
    Fd f = { ew_fwd, &c, c.y, c.n, g };
    c.op = 0;
    catanet_gelu_bwd_ref(c.n, c.x, g, dx);
    fd_check(&f, "gelu", "x", c.x, c.n, dx, 1e-3f);
    float *dx2 = zeros(c.n);
    catanet_gelu_bwd_cpu(c.n, c.x, g, dx2);
    twin_check("gelu dx", dx2, dx, c.n, 1e-5);
    free(dx2);
    c.op = 1;
    memset(dx, 0, sizeof(float) * c.n);
    catanet_lrelu_fwd_ref(c.n, c.x, c.y);
    catanet_lrelu_bwd_ref(c.n, c.y, g, dx);
    fd_check(&f, "lrelu", "x", c.x, c.n, dx, 1e-2f);
    /* pixel shuffle r=2: [2,3,4,3*4] -> [2,6,8,3] */
    EwCtx s = { .n = 2 * 3 * 4 * 12 };
    s.op = 2;
    s.sa = (CatanetShuffleArgs){ 2, 3, 4, 3, 2 };
    s.x = rnd(r, s.n, 1);
    s.y = zeros(s.n);
    float *gs = rnd(r, s.n, 1), *dxs = zeros(s.n);
    catanet_pixel_shuffle_bwd_ref(&s.sa, gs, dxs);
    Fd fs = { ew_fwd, &s, s.y, s.n, gs };
    fd_check(&fs, "pixel_shuffle", "x", s.x, s.n, dxs, 1e-2f);
    free(s.x); free(s.y); free(gs); free(dxs);
    free(c.x); free(c.y); free(g); free(dx);
}

/* ---------------- L1 loss ---------------- */
typedef struct L1Ctx { size_t n; float *x, *t, loss; } L1Ctx;
static void l1_fwd(void *p)
{
    L1Ctx *c = p;
    c->loss = (float)catanet_l1_loss_fwd_ref(c->n, c->x, c->t);
}

static void test_l1(Rng *r)
{
    L1Ctx c = { .n = 150 };
    c.x = rnd(r, c.n, 1);
    c.t = rnd(r, c.n, 1);
    for (size_t i = 0; i < c.n; i++) /* away from the kink */
        if (fabsf(c.x[i] - c.t[i]) < 0.05f)
            c.x[i] = c.t[i] + 0.1f;
    float one = 1.0f, *dx = zeros(c.n);
    catanet_l1_loss_bwd_ref(c.n, c.x, c.t, 1.0f, dx);
    /* scale the gradient up for the tolerance: L1 of 150 values has tiny per-element slopes */
    Fd f = { l1_fwd, &c, &c.loss, 1, &one };
    for (size_t i = 0; i < c.n; i++)
        dx[i] *= 1.0f;
    fd_check(&f, "l1_loss", "out", c.x, c.n, dx, 1e-2f);
    free(c.x); free(c.t); free(dx);
}

/* ---------------- normalize + center_iter (the differentiable fifth refinement) ---------------- */
typedef struct CiCtx {
    int n, c, m;
    float *xn, *xu, *nrm, *cu_in, *sum, *cu_out;
    int32_t *bucket, *count;
} CiCtx;
static void ci_fwd(void *p)
{
    CiCtx *c = p;
    catanet_normalize_fwd_ref(c->n, c->c, c->xn, c->xu, c->nrm);
    catanet_center_iter_fwd_ref(c->n, c->c, c->m, c->xu, c->cu_in, c->bucket, c->sum, c->count,
                                c->cu_out);
}

static void test_center_iter(Rng *r)
{
    CiCtx c = { .n = 2 * 37, .c = 6, .m = 5 };
    c.xn = rnd(r, (size_t)c.n * c.c, 1);
    c.xu = zeros((size_t)c.n * c.c);
    c.nrm = zeros(c.n);
    c.cu_in = rnd(r, (size_t)c.m * c.c, 1);
    c.sum = zeros((size_t)c.m * c.c);
    c.cu_out = zeros((size_t)c.m * c.c);
    c.bucket = calloc(c.n, sizeof(int32_t));
    c.count = calloc(c.m, sizeof(int32_t));
    /* the last center duplicates the first: ties go to the first index, so it stays empty
     * and keeps its old center */
    memcpy(c.cu_in + (size_t)(c.m - 1) * c.c, c.cu_in, sizeof(float) * c.c);
    catanet_normalize_fwd_ref(c.m, c.c, c.cu_in, c.cu_in, NULL);
    ci_fwd(&c);
    int empty = 0;
    for (int j = 0; j < c.m; j++)
        empty += c.count[j] == 0;
    test_check(empty >= 1, "center_iter: the test has an empty cluster (%d)", empty);
    float *g = rnd(r, (size_t)c.m * c.c, 1), *dxu = zeros((size_t)c.n * c.c);
    float *dxn = zeros((size_t)c.n * c.c), *dsum = zeros((size_t)c.m * c.c);
    catanet_center_iter_bwd_ref(c.n, c.c, c.m, c.bucket, c.sum, c.count, c.cu_out, g, dsum, dxu);
    catanet_normalize_bwd_ref(c.n, c.c, c.xu, c.nrm, dxu, dxn);
    Fd f = { ci_fwd, &c, c.cu_out, (size_t)c.m * c.c, g };
    fd_check(&f, "center_iter(normalize(xn))", "xn", c.xn, (size_t)c.n * c.c, dxn, 1e-3f);
    /* the fast forward assigns the same buckets */
    int32_t *b2 = calloc(c.n, sizeof(int32_t)), *cnt2 = calloc(c.m, sizeof(int32_t));
    float *s2 = zeros((size_t)c.m * c.c), *o2 = zeros((size_t)c.m * c.c);
    CatanetCpu cpu = make_cpu(2, catanet_center_iter_work(c.m));
    catanet_center_iter_fwd_cpu(&cpu, c.n, c.c, c.m, c.xu, c.cu_in, b2, s2, cnt2, o2);
    test_check(!memcmp(b2, c.bucket, sizeof(int32_t) * c.n) && !memcmp(o2, c.cu_out, sizeof(float) * c.m * c.c),
               "center_iter: fast forward equals the reference");
    free(cpu.work); free(b2); free(cnt2); free(s2); free(o2);
    free(g); free(dxu); free(dxn); free(dsum);
    free(c.xn); free(c.xu); free(c.nrm); free(c.cu_in); free(c.sum); free(c.cu_out); free(c.bucket); free(c.count);
}

/* ---------------- iasa ---------------- */
typedef struct IaCtx { CatanetIasaArgs a; float *q, *k, *v, *kg, *vg, *out; int32_t *ord; } IaCtx;
static void ia_fwd(void *p)
{
    IaCtx *c = p;
    catanet_iasa_fwd_ref(&c->a, c->q, c->k, c->v, c->ord, c->kg, c->vg, c->out);
}

static void test_iasa(Rng *r, int n, int gs)
{
    IaCtx c = { .a = { n, gs, 4, 2, 3, 4 } };
    int hq = 6, hv = 8, m = 4;
    c.q = rnd(r, (size_t)n * hq, 1);
    c.k = rnd(r, (size_t)n * hq, 1);
    c.v = rnd(r, (size_t)n * hv, 1);
    c.kg = rnd(r, (size_t)m * hq, 1);
    c.vg = rnd(r, (size_t)m * hv, 1);
    c.out = zeros((size_t)n * hv);
    c.ord = malloc(sizeof(int32_t) * n);
    for (int i = 0; i < n; i++)
        c.ord[i] = i;
    for (int i = n - 1; i > 0; i--) { /* a random permutation */
        int j = rng_u32(r) % (i + 1), t = c.ord[i];
        c.ord[i] = c.ord[j];
        c.ord[j] = t;
    }
    float *g = rnd(r, (size_t)n * hv, 1);
    float *dq = zeros((size_t)n * hq), *dk = zeros((size_t)n * hq), *dv = zeros((size_t)n * hv);
    float *dkg = zeros((size_t)m * hq), *dvg = zeros((size_t)m * hv);
    catanet_iasa_bwd_ref(&c.a, c.q, c.k, c.v, c.ord, c.kg, c.vg, g, dq, dk, dv, dkg, dvg);
    Fd f = { ia_fwd, &c, c.out, (size_t)n * hv, g };
    char name[48];
    snprintf(name, sizeof(name), "iasa N=%d gs=%d", n, gs);
    /* h = 1e-2: the float forward's rounding over a group's outputs is ~1e-6 of the loss, which
     * at h = 3e-3 is ~2e-4 of a derivative, above the check's 1e-4 floor; the central difference's
     * h^2 error stays far below it */
    fd_check(&f, name, "q", c.q, (size_t)n * hq, dq, 1e-2f);
    fd_check(&f, name, "k", c.k, (size_t)n * hq, dk, 1e-2f);
    fd_check(&f, name, "v", c.v, (size_t)n * hv, dv, 1e-2f);
    fd_check(&f, name, "kg", c.kg, (size_t)m * hq, dkg, 1e-2f);
    fd_check(&f, name, "vg", c.vg, (size_t)m * hv, dvg, 1e-2f);
    /* the fast path: forward (fused attention), then backward */
    float *out1 = zeros((size_t)n * hv), *out2 = zeros((size_t)n * hv), *out3 = zeros((size_t)n * hv);
    float *saved = zeros(catanet_iasa_saved(&c.a));
    CatanetCpu fcpu = make_cpu(2, catanet_iasa_work(&c.a));
    catanet_iasa_fwd_ref(&c.a, c.q, c.k, c.v, c.ord, c.kg, c.vg, out1);
    catanet_iasa_fwd_cpu(&fcpu, &c.a, c.q, c.k, c.v, c.ord, c.kg, c.vg, out2, NULL);
    snprintf(name, sizeof(name), "iasa N=%d gs=%d forward", n, gs);
    twin_check(name, out2, out1, (size_t)n * hv, 1e-5);
    /* training's forward keeps its activations and gives the same bits */
    catanet_iasa_fwd_cpu(&fcpu, &c.a, c.q, c.k, c.v, c.ord, c.kg, c.vg, out3, saved);
    test_check(memcmp(out3, out2, sizeof(float) * n * hv) == 0, "iasa N=%d gs=%d forward keeping its activations: "
               "the same bits", n, gs);
    free(fcpu.work); free(out1); free(out3);
    float *dq2 = zeros((size_t)n * hq), *dk2 = zeros((size_t)n * hq), *dv2 = zeros((size_t)n * hv);
    float *dkg2 = zeros((size_t)m * hq), *dvg2 = zeros((size_t)m * hv);
    float *tw = zeros(catanet_iasa_bwd_task_work(&c.a));
    CatanetCpu cpu = make_cpu(2, catanet_iasa_bwd_work(&c.a));
    catanet_iasa_bwd_cpu(&cpu, &c.a, c.q, c.k, c.v, c.ord, c.kg, c.vg, out2, saved, g, dq2, dk2, dv2, dkg2, dvg2, tw);
    snprintf(name, sizeof(name), "iasa N=%d gs=%d dq", n, gs);
    twin_check(name, dq2, dq, (size_t)n * hq, 1e-4);
    snprintf(name, sizeof(name), "iasa N=%d gs=%d dk", n, gs);
    twin_check(name, dk2, dk, (size_t)n * hq, 1e-4);
    snprintf(name, sizeof(name), "iasa N=%d gs=%d dv", n, gs);
    twin_check(name, dv2, dv, (size_t)n * hv, 1e-4);
    snprintf(name, sizeof(name), "iasa N=%d gs=%d dkg", n, gs);
    twin_check(name, dkg2, dkg, (size_t)m * hq, 1e-4);
    snprintf(name, sizeof(name), "iasa N=%d gs=%d dvg", n, gs);
    twin_check(name, dvg2, dvg, (size_t)m * hv, 1e-4);
    free(cpu.work); free(tw); free(out2); free(saved); free(dq2); free(dk2); free(dv2); free(dkg2); free(dvg2);
    free(g); free(dq); free(dk); free(dv); free(dkg); free(dvg);
    free(c.q); free(c.k); free(c.v); free(c.kg); free(c.vg); free(c.out); free(c.ord);
}

/* ---------------- lrsa ---------------- */
typedef struct LrCtx { CatanetLrsaArgs a; CatanetLrsaWeights w; float *x, *out; } LrCtx;
static void lr_fwd(void *p)
{
    LrCtx *c = p;
    catanet_lrsa_fwd_ref(&c->a, &c->w, c->x, c->out);
}

/* the fast training pair on a batch: the forward (out) keeps its activations, the backward of
 * dout accumulates into dx and g */
static void lrsa_train_cpu(const CatanetLrsaArgs *a, const CatanetLrsaWeights *wt, int batch, const float *x,
                           float *out, const float *dout, float *dx, const CatanetLrsaGrads *g)
{
    float *saved = zeros((size_t)batch * catanet_lrsa_saved(a));
    float *tw = zeros((size_t)batch * catanet_lrsa_task_work(a));
    CatanetCpu cpu = make_cpu(2, catanet_lrsa_train_work(a));
    catanet_lrsa_fwd_train_cpu(&cpu, a, wt, batch, x, out, saved, tw);
    catanet_lrsa_bwd_cpu(&cpu, a, wt, batch, x, saved, dout, dx, g, tw);
    free(cpu.work); free(saved); free(tw);
}

static void test_lrsa(Rng *r, int h, int w, int ps)
{
    int C = 8, hq = 6, hv = 8;
    LrCtx c = { .a = { h, w, C, ps, 2, 3, 4 } };
    float *nw = rnd(r, C, 0.3f), *nb = rnd(r, C, 0.3f), *wq = rnd(r, hq * C, 0.5f);
    float *wk = rnd(r, hq * C, 0.5f), *wv = rnd(r, hv * C, 0.5f), *wp = rnd(r, C * hv, 0.5f);
    for (int i = 0; i < C; i++)
        nw[i] += 1.0f;
    c.w = (CatanetLrsaWeights){ nw, nb, wq, wk, wv, wp };
    size_t n = (size_t)h * w * C;
    c.x = rnd(r, n, 1);
    c.out = zeros(n);
    float *g = rnd(r, n, 1), *dx = zeros(n);
    float *gnw = zeros(C), *gnb = zeros(C), *gq = zeros(hq * C), *gk = zeros(hq * C), *gv = zeros(hv * C), *gp = zeros(C * hv);
    CatanetLrsaGrads gr = { gnw, gnb, gq, gk, gv, gp };
    catanet_lrsa_bwd_ref(&c.a, &c.w, c.x, g, dx, &gr);
    Fd f = { lr_fwd, &c, c.out, n, g };
    float wts[64];
    catanet_lrsa_band_weights(h, ps, wts);
    int quirk = 0;
    for (int i = 0; i < h; i++)
        quirk |= wts[i] == 0.25f;
    char name[64];
    snprintf(name, sizeof(name), "lrsa %dx%d ps %d%s", h, w, ps, quirk ? " (0.75 quirk rows)" : "");
    fd_check(&f, name, "x", c.x, n, dx, 1e-2f);
    fd_check(&f, name, "norm.weight", nw, C, gnw, 1e-2f);
    fd_check(&f, name, "norm.bias", nb, C, gnb, 1e-2f);
    fd_check(&f, name, "to_q", wq, hq * C, gq, 1e-2f);
    fd_check(&f, name, "to_k", wk, hq * C, gk, 1e-2f);
    fd_check(&f, name, "to_v", wv, hv * C, gv, 1e-2f);
    fd_check(&f, name, "proj", wp, C * hv, gp, 1e-2f);
    float *out1 = zeros(n), *out2 = zeros(n);
    CatanetCpu fcpu = make_cpu(2, catanet_lrsa_work(&c.a));
    catanet_lrsa_fwd_ref(&c.a, &c.w, c.x, out1);
    catanet_lrsa_fwd_cpu(&fcpu, &c.a, &c.w, c.x, out2);
    snprintf(name, sizeof(name), "lrsa %dx%d ps %d forward", h, w, ps);
    twin_check(name, out2, out1, n, 1e-5);
    free(fcpu.work); free(out1); free(out2);
    float *dx2 = zeros(n), *g2[6], *out3 = zeros(n);
    size_t sz[6] = { C, C, hq * C, hq * C, hv * C, C * hv };
    for (int i = 0; i < 6; i++)
        g2[i] = zeros(sz[i]);
    CatanetLrsaGrads gr2 = { g2[0], g2[1], g2[2], g2[3], g2[4], g2[5] };
    lrsa_train_cpu(&c.a, &c.w, 1, c.x, out3, g, dx2, &gr2);
    snprintf(name, sizeof(name), "lrsa %dx%d ps %d training forward", h, w, ps);
    twin_check(name, out3, c.out, n, 1e-5);
    twin_check("lrsa dx", dx2, dx, n, 1e-4);
    const float *g1[6] = { gnw, gnb, gq, gk, gv, gp };
    const char *nm[6] = { "lrsa dnorm.weight", "lrsa dnorm.bias", "lrsa dto_q", "lrsa dto_k", "lrsa dto_v", "lrsa dproj" };
    for (int i = 0; i < 6; i++) {
        twin_check(nm[i], g2[i], g1[i], sz[i], 1e-4);
        free(g2[i]);
    }
    free(dx2); free(out3);
    free(nw); free(nb); free(wq); free(wk); free(wv); free(wp); free(c.x); free(c.out); free(g); free(dx);
    free(gnw); free(gnb); free(gq); free(gk); free(gv); free(gp);
}

/* the fast backward against the reference where the fused attention takes several 16-row blocks
 * of a 64-row block and a partial one (T = 100), and where heads wider than 16 take the GEMMs */
static void test_lrsa_bwd_twin(Rng *r, int h, int w, int ps, int heads, int dqk, int dv)
{
    int C = 8, hq = heads * dqk, hv = heads * dv, B = 2;
    CatanetLrsaArgs a = { h, w, C, ps, heads, dqk, dv };
    float *nw = rnd(r, C, 0.3f), *nb = rnd(r, C, 0.3f), *wq = rnd(r, hq * C, 0.5f);
    float *wk = rnd(r, hq * C, 0.5f), *wv = rnd(r, hv * C, 0.5f), *wp = rnd(r, C * hv, 0.5f);
    for (int i = 0; i < C; i++)
        nw[i] += 1.0f;
    CatanetLrsaWeights wt = { nw, nb, wq, wk, wv, wp };
    size_t n = (size_t)h * w * C, sz[6] = { C, C, hq * C, hq * C, hv * C, C * hv };
    float *x = rnd(r, B * n, 1), *g = rnd(r, B * n, 1), *dx1 = zeros(B * n), *dx2 = zeros(B * n), *g1[6], *g2[6];
    float *out1 = zeros(B * n), *out2 = zeros(B * n);
    for (int i = 0; i < 6; i++) {
        g1[i] = zeros(sz[i]);
        g2[i] = zeros(sz[i]);
    }
    CatanetLrsaGrads gr1 = { g1[0], g1[1], g1[2], g1[3], g1[4], g1[5] };
    CatanetLrsaGrads gr2 = { g2[0], g2[1], g2[2], g2[3], g2[4], g2[5] };
    for (int b = 0; b < B; b++) {
        catanet_lrsa_fwd_ref(&a, &wt, x + b * n, out1 + b * n);
        catanet_lrsa_bwd_ref(&a, &wt, x + b * n, g + b * n, dx1 + b * n, &gr1);
    }
    lrsa_train_cpu(&a, &wt, B, x, out2, g, dx2, &gr2);
    char name[96];
    snprintf(name, sizeof(name), "lrsa train %d x %dx%d ps %d heads %d dqk %d dv %d: forward", B, h, w, ps, heads, dqk, dv);
    twin_check(name, out2, out1, B * n, 1e-5);
    snprintf(name, sizeof(name), "lrsa train %d x %dx%d ps %d heads %d dqk %d dv %d: dx", B, h, w, ps, heads, dqk, dv);
    twin_check(name, dx2, dx1, B * n, 1e-4);
    const char *nm[6] = { "dnorm.weight", "dnorm.bias", "dto_q", "dto_k", "dto_v", "dproj" };
    for (int i = 0; i < 6; i++) {
        snprintf(name, sizeof(name), "lrsa train %d x %dx%d ps %d heads %d dqk %d dv %d: %s", B, h, w, ps, heads, dqk,
                 dv, nm[i]);
        twin_check(name, g2[i], g1[i], sz[i], 1e-4);
        free(g1[i]);
        free(g2[i]);
    }
    free(x); free(g); free(dx1); free(dx2); free(out1); free(out2);
    free(nw); free(nb); free(wq); free(wk); free(wv); free(wp);
}

/* ---------------- Adam: the update formula ---------------- */
static void test_adam(Rng *r)
{
    size_t n = 50;
    float *p = rnd(r, n, 1), *p0 = malloc(sizeof(float) * n), *m = zeros(n), *v = zeros(n);
    memcpy(p0, p, sizeof(float) * n);
    double worst = 0;
    double md[50] = { 0 }, vd[50] = { 0 }, pd[50];
    for (size_t i = 0; i < n; i++)
        pd[i] = p0[i];
    for (int t = 1; t <= 5; t++) {
        float *g = rnd(r, n, 1);
        catanet_adam_update_ref(n, p, g, m, v, 2e-4f, 0.9f, 0.99f, 1e-8f, t);
        for (size_t i = 0; i < n; i++) {
            md[i] = 0.9 * md[i] + 0.1 * g[i];
            vd[i] = 0.99 * vd[i] + 0.01 * (double)g[i] * g[i];
            double mh = md[i] / (1 - pow(0.9, t)), vh = vd[i] / (1 - pow(0.99, t));
            pd[i] -= 2e-4 * mh / (sqrt(vh) + 1e-8);
            worst = fmax(worst, fabs(pd[i] - p[i]));
        }
        free(g);
    }
    test_check(worst < 1e-6, "adam: 5 steps match the double-precision formula (max diff %.3g)", worst);
    free(p); free(p0); free(m); free(v);
}

/* ---------------- convffn: the fused two-pass CPU forward against the reference op ---------------- */
static void test_convffn_fwd(Rng *r, int h, int w, int hidden)
{
    int d = 40, n = h * w;
    CatanetConvffnArgs a = { h, w, d, hidden };
    float *nw = rnd(r, d, 1), *nb = rnd(r, d, 0.1f), *f1 = rnd(r, (size_t)hidden * d, 0.2f), *b1 = rnd(r, hidden, 0.1f);
    float *dw = rnd(r, (size_t)hidden * 25, 0.2f), *db = rnd(r, hidden, 0.1f);
    float *f2 = rnd(r, (size_t)d * hidden, 0.1f), *b2 = rnd(r, d, 0.1f);
    CatanetConvffnWeights fw = { nw, nb, f1, b1, dw, db, f2, b2 };
    float *x = rnd(r, (size_t)n * d, 1), *x1 = malloc(sizeof(float) * n * d), *x2 = malloc(sizeof(float) * n * d);
    float *t = zeros((size_t)n * d), *hb = zeros((size_t)n * hidden), *hd = zeros((size_t)n * hidden);
    memcpy(x1, x, sizeof(float) * n * d);
    catanet_convffn_fwd_ref(&a, &fw, x1, t, hb, hd);
    char name[64];
    for (int threads = 1; threads <= 2; threads++) {
        CatanetCpu cpu = make_cpu(threads, catanet_convffn_work(&a));
        memcpy(x2, x, sizeof(float) * n * d);
        int ret = catanet_convffn_fwd_cpu(&cpu, &a, &fw, x2, hb);
        snprintf(name, sizeof(name), "convffn %dx%d hidden %d, %d thread(s)", w, h, hidden, threads);
        test_check(ret == 0, "%s: the fused path runs", name);
        twin_check(name, x2, x1, (size_t)n * d, 1e-5);
        if (threads == 1)
            memcpy(x1, x2, sizeof(float) * n * d); /* from here: 2 threads give the 1-thread bits */
        else
            test_check(!memcmp(x1, x2, sizeof(float) * n * d), "%s: the same bits as 1 thread", name);
        free(cpu.work);
    }
    free(nw); free(nb); free(f1); free(b1); free(dw); free(db); free(f2); free(b2);
    free(x); free(x1); free(x2); free(t); free(hb); free(hd);
}

int main(void)
{
    Rng r = { 2024 };
    test_linear(&r);
    test_conv(&r, 3);
    test_conv(&r, 1);
    test_dwconv(&r);
    test_layernorm(&r);
    test_elementwise(&r);
    test_l1(&r);
    test_center_iter(&r);
    test_iasa(&r, 37, 8);  /* mirror padding past N, 5 subgroups */
    test_iasa(&r, 32, 8);  /* no query padding, keys still mirrored */
    test_iasa(&r, 6, 8);   /* gs = N */
    test_lrsa(&r, 7, 8, 4);  /* 7: the compounding halving (row weight 0.25, covered 3 times) */
    test_lrsa(&r, 4, 4, 4);  /* one patch, step = ps */
    test_adam(&r);
    test_dwconv_fwd(&r);
    test_attention(&r);
    test_lrsa_bwd_twin(&r, 20, 22, 10, 2, 9, 10);
    test_lrsa_bwd_twin(&r, 12, 12, 8, 1, 17, 5);
    test_iasa(&r, 100, 40); /* the fused attention's several 16-row blocks and a partial one */
    test_convffn_fwd(&r, 23, 19, 96); /* two row chunks, the last partial; rows past the conv's taps */
    test_convffn_fwd(&r, 3, 5, 20);   /* fewer rows than the 5x5 conv spans; hidden not a vector multiple */
    return test_finish();
}
