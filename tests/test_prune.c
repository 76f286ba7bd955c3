/*
 * test_prune.c: depth pruning and distillation:
 *   - FAKD affinity loss: reference vs finite differences, tiled fast path vs reference, work
 *     memory well below N^2 for a 64x64 patch;
 *   - hard Gumbel-softmax: the forward is one-hot at the argmax, the relaxed (straight-through)
 *     path against finite differences, Gumbel-max sampling frequencies = softmax(scale*logits);
 *   - mask composition, the gated residual and its branch form against finite differences;
 *   - the masked model: a one-hot mask reproduces the extracted student bit for bit (output and
 *     the kept groups' `means` after a training-mode forward); d loss / d gate, the feature and
 *     KD hooks of model_train against finite differences;
 *   - candidates and budget: C(8,3) subsets, parameter counts = the closed form of training-spec;
 *   - extraction keeps per-group hyperparameters, `means` and `initted`, and the kept-group
 *     metadata survives a save/load.
 * Finite differences: central, |a - n| <= 1e-2 max(|a|,|n|) + tol_abs.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "forward_cpu.h"
#include "kernels.h"
#include "latency.h"
#include "model.h"
#include "model_train.h"
#include "prune.h"
#include "testutil.h"

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

/* a scalar function of x (x perturbed in place) */
typedef double (*ScalarFn)(void *ctx);

static void fd_scalar(const char *what, ScalarFn f, void *ctx, float *x, size_t n, const float *an, float h,
                      double tol_abs, size_t max_checks)
{
    Rng r = { 777 };
    double worst = -1e30, wa = 0, wn = 0;
    size_t wi = 0, checked = 0;
    for (size_t c = 0; c < (n < max_checks ? n : max_checks); c++) {
        size_t i = n <= max_checks ? c : rng_u32(&r) % n;
        float x0 = x[i], xp = x0 + h, xm = x0 - h;
        x[i] = xp;
        double lp = f(ctx);
        x[i] = xm;
        double lm = f(ctx);
        x[i] = x0;
        double num = (lp - lm) / ((double)xp - xm), a = an[i];
        double ex = fabs(a - num) - (1e-2 * fmax(fabs(a), fabs(num)) + tol_abs);
        if (ex > worst) {
            worst = ex;
            wi = i;
            wa = a;
            wn = num;
        }
        checked++;
    }
    f(ctx);
    test_check(worst <= 0, "%s (%zu of %zu checked): worst index %zu analytic %.6g numeric %.6g", what, checked, n,
               wi, wa, wn);
}

/* ---------------- FAKD ---------------- */
typedef struct FakdCtx { int n, cs, ct; float *fs, *ft, *work; } FakdCtx;
static double fakd_f(void *p)
{
    FakdCtx *c = p;
    return catanet_fakd_fwd_ref(c->n, c->cs, c->ct, c->fs, c->ft, c->work);
}

static void test_fakd(Rng *r)
{
    FakdCtx c = { 24, 6, 4, NULL, NULL, NULL };
    c.fs = rnd(r, (size_t)c.n * c.cs, 1);
    c.ft = rnd(r, (size_t)c.n * c.ct, 1);
    c.work = zeros((size_t)c.n * (2 * c.cs + c.ct + 2));
    float *dfs = zeros((size_t)c.n * c.cs);
    catanet_fakd_bwd_ref(c.n, c.cs, c.ct, c.fs, c.ft, 1.0f, dfs, c.work);
    fd_scalar("fakd: d loss / d student features (reference)", fakd_f, &c, c.fs, (size_t)c.n * c.cs, dfs, 1e-3f,
              1e-5, 200);
    /* identical features (up to a per-position scale and any width) give zero loss */
    float *same = malloc(sizeof(float) * c.n * c.cs);
    for (int i = 0; i < c.n * c.cs; i++)
        same[i] = c.fs[i] * (1.0f + (i / c.cs) % 3);
    double l0 = catanet_fakd_fwd_ref(c.n, c.cs, c.cs, c.fs, same, c.work);
    test_check(l0 < 1e-6, "fakd: scaled copy of the features gives loss %.3g (~0)", l0);
    free(same);
    /* tiled fast path (N = 600 > one 256 tile, 2 threads) vs the reference; weight scales the gradient */
    int n = 600, cs = 40, ct = 24;
    float *fs = rnd(r, (size_t)n * cs, 1), *ft = rnd(r, (size_t)n * ct, 1);
    float *w1 = zeros((size_t)n * (2 * cs + ct + 2)), *w2 = zeros(catanet_fakd_work(n, cs, ct, 2));
    float *d1 = zeros((size_t)n * cs), *d2 = zeros((size_t)n * cs);
    double lr = catanet_fakd_fwd_ref(n, cs, ct, fs, ft, w1), lc = catanet_fakd_fwd_cpu(2, n, cs, ct, fs, ft, w2);
    double lc1 = catanet_fakd_fwd_cpu(1, n, cs, ct, fs, ft, w2);
    test_check(fabs(lr - lc) <= 1e-5 * lr, "fakd: tiled loss %.8f vs reference %.8f", lc, lr);
    test_check(lc == lc1, "fakd: tiled loss identical for 1 and 2 threads");
    catanet_fakd_bwd_ref(n, cs, ct, fs, ft, 0.5f, d1, w1);
    catanet_fakd_bwd_cpu(2, n, cs, ct, fs, ft, 0.5f, d2, w2);
    size_t where;
    double md = max_abs_diff(d1, d2, (size_t)n * cs, &where), ms = max_abs(d1, (size_t)n * cs);
    test_check(md <= 1e-3 * ms, "fakd: tiled gradient vs reference: max diff %.3g (max %.3g)", md, ms);
    /* memory: a 64x64 patch (N = 4096), C = 40: far below the N x N affinity (16.7M floats) */
    size_t wk = catanet_fakd_work(4096, 40, 40, 2);
    test_check(wk < (size_t)4096 * 4096 / 8, "fakd: work for N = 4096 is %zu floats (N^2 = %d)", wk, 4096 * 4096);
    free(fs); free(ft); free(w1); free(w2); free(d1); free(d2);
    free(c.fs); free(c.ft); free(c.work); free(dfs);
}

/* ---------------- Gumbel-softmax ---------------- */
typedef struct GumCtx { int k; float *logits, *noise, *ysoft, *rw; float scale, tau; } GumCtx;
static double gum_f(void *p)
{
    GumCtx *c = p;
    catanet_gumbel_softmax_fwd_ref(c->k, c->logits, c->noise, c->scale, c->tau, c->ysoft);
    double s = 0;
    for (int i = 0; i < c->k; i++)
        s += (double)c->rw[i] * c->ysoft[i];
    return s;
}

static void test_gumbel(Rng *r)
{
    GumCtx c = { .k = 7 };
    c.logits = rnd(r, c.k, 0.01f);
    c.noise = zeros(c.k);
    c.ysoft = zeros(c.k);
    c.rw = rnd(r, c.k, 1);
    c.scale = 100;
    c.tau = 2.5f;
    uint64_t st = 42;
    catanet_gumbel_noise(&st, c.k, c.noise);
    int hard = catanet_gumbel_softmax_fwd_ref(c.k, c.logits, c.noise, c.scale, c.tau, c.ysoft);
    int am = 0;
    double sum = 0;
    for (int i = 0; i < c.k; i++) {
        sum += c.ysoft[i];
        if (c.scale * c.logits[i] + c.noise[i] > c.scale * c.logits[am] + c.noise[am])
            am = i;
    }
    test_check(hard == am, "gumbel: hard sample %d is the argmax %d of scale*logits + noise", hard, am);
    test_check(fabs(sum - 1) < 1e-5, "gumbel: soft sample sums to %.7f", sum);
    /* a one-hot forward: the gate values the model sees are exactly 0 or 1 */
    float opt[3 * 4] = { 1, 1, 0, 0, 1, 0, 1, 0, 0, 1, 1, 0 }, y[3] = { 0 }, m[4];
    y[1] = 1;
    catanet_mask_compose_fwd_ref(3, 4, y, opt, m);
    test_check(m[0] == 1 && m[1] == 0 && m[2] == 1 && m[3] == 0, "gumbel: one-hot sample composes the mask {0,2}");
    /* straight-through: dlogits = (scale/tau) J^T dy, against finite differences of the relaxed path */
    float *dl = zeros(c.k);
    gum_f(&c);
    catanet_gumbel_softmax_bwd_ref(c.k, c.ysoft, c.rw, c.scale, c.tau, dl);
    fd_scalar("gumbel: relaxed path d/d logits", gum_f, &c, c.logits, c.k, dl, 1e-5f, 1e-5, 100);
    /* mask composition transpose: <m(y), dm> = <y, opt dm> */
    float yr[3] = { 0.2f, 0.5f, 0.3f }, dm[4] = { 0.3f, -1, 2, 0.5f }, dy[3] = { 0 }, mr[4];
    catanet_mask_compose_fwd_ref(3, 4, yr, opt, mr);
    catanet_mask_compose_bwd_ref(3, 4, opt, dm, dy);
    double a = 0, b = 0;
    for (int i = 0; i < 4; i++)
        a += mr[i] * dm[i];
    for (int i = 0; i < 3; i++)
        b += yr[i] * dy[i];
    test_check(fabs(a - b) < 1e-6, "gumbel: mask composition backward is its transpose (%.7f vs %.7f)", a, b);
    /* Gumbel-max: hard samples follow softmax(scale * logits) */
    float lg[4] = { 0.01f, 0.02f, 0.0f, 0.015f }, ys[4], noise[4];
    int cnt[4] = { 0 }, trials = 40000;
    for (int t = 0; t < trials; t++) {
        catanet_gumbel_noise(&st, 4, noise);
        cnt[catanet_gumbel_softmax_fwd_ref(4, lg, noise, 100, 0.3f, ys)]++;
    }
    double p[4], z = 0, worst = 0;
    for (int i = 0; i < 4; i++)
        z += p[i] = exp(100.0 * lg[i]);
    for (int i = 0; i < 4; i++)
        worst = fmax(worst, fabs(cnt[i] / (double)trials - p[i] / z));
    test_check(worst < 0.01, "gumbel: sampling frequencies within %.4f of softmax(100 logits)", worst);
    free(c.logits); free(c.noise); free(c.ysoft); free(c.rw); free(dl);
}

/* ---------------- gated residual ---------------- */
typedef struct GateCtx { int b; size_t n; float *m, *x, *gx, *y, *g; int branch; } GateCtx;
static double gate_f(void *p)
{
    GateCtx *c = p;
    if (c->branch)
        catanet_gate_branch_fwd_ref(c->b, c->n, c->m, c->x, c->gx, c->y);
    else
        catanet_gated_residual_fwd_ref(c->b, c->n, c->m, c->x, c->gx, c->y);
    double s = 0;
    for (size_t i = 0; i < c->b * c->n; i++)
        s += (double)c->g[i] * c->y[i];
    return s;
}

static void test_gate(Rng *r)
{
    GateCtx c = { .b = 3, .n = 20 };
    size_t t = c.b * c.n;
    float m[3] = { 0.3f, 1.0f, 0.0f };
    c.m = m;
    c.x = rnd(r, t, 1);
    c.gx = rnd(r, t, 1);
    c.y = zeros(t);
    c.g = rnd(r, t, 1);
    float *dx = zeros(t), *dgx = zeros(t), dm[3] = { 0 };
    catanet_gated_residual_bwd_ref(c.b, c.n, c.m, c.x, c.gx, c.g, dx, dgx, dm);
    fd_scalar("gated residual: dx", gate_f, &c, c.x, t, dx, 1e-2f, 1e-4, 100);
    fd_scalar("gated residual: d group output", gate_f, &c, c.gx, t, dgx, 1e-2f, 1e-4, 100);
    fd_scalar("gated residual: d gate", gate_f, &c, c.m, 3, dm, 1e-2f, 1e-4, 100);
    /* branch form: y = x + m r */
    c.branch = 1;
    float *dr = zeros(t), dm2[3] = { 0 };
    catanet_gate_branch_bwd_ref(c.b, c.n, c.m, c.gx, c.g, dr, dm2);
    fd_scalar("gate branch: d branch", gate_f, &c, c.gx, t, dr, 1e-2f, 1e-4, 100);
    fd_scalar("gate branch: d gate", gate_f, &c, c.m, 3, dm2, 1e-2f, 1e-4, 100);
    gate_f(&c);
    int exact = 1;
    for (size_t i = 2 * c.n; i < 3 * c.n; i++)
        exact &= c.y[i] == c.x[i];
    test_check(exact, "gate branch: m = 0 passes x through bit for bit");
    free(c.x); free(c.gx); free(c.y); free(c.g); free(dx); free(dgx); free(dr);
}

/* ---------------- the masked model ---------------- */
static void small_arch(CatanetModelInfo *a, int groups, int tokens)
{
    catanet_arch_default(a, 2);
    a->dim = 8;
    a->qk_dim = 8;
    a->heads = 2;
    a->mlp_dim = 12;
    a->num_groups = groups;
    for (int g = 0; g < groups; g++) {
        a->groups[g].num_tokens = tokens ? tokens : 2 + g;
        a->groups[g].group_size = 16 + 8 * g;
        a->groups[g].patch_size = 8 + (g % 2) * 2;
    }
}

static CatanetModel *random_model(Rng *r, int groups, int tokens)
{
    CatanetModelInfo a;
    small_arch(&a, groups, tokens);
    CatanetModel *m;
    char err[256] = "";
    if (catanet_model_create(&m, &a, err, sizeof(err)) < 0) {
        printf("FAIL: %s\n", err);
        exit(1);
    }
    for (int i = 0; i < m->n_tensors; i++) {
        const CatanetTensorDef *d = &m->tensors[i];
        fill_normal(r, m->arena + d->offset, d->numel, strstr(d->name, "norm.weight") ? 0.1f : 0.2f);
        if (strstr(d->name, "norm.weight"))
            for (size_t k = 0; k < d->numel; k++)
                m->arena[d->offset + k] += 1.0f;
    }
    for (int g = 0; g < groups; g++)
        m->initted[g] = (uint8_t)(g % 2); /* both center paths: the buffer and the avg-pool init */
    return m;
}

static CatanetModel *clone(const CatanetModel *m)
{
    CatanetModel *c;
    char err[256] = "";
    catanet_model_create(&c, &m->info, err, sizeof(err));
    memcpy(c->arena, m->arena, sizeof(float) * m->arena_floats);
    memcpy(c->initted, m->initted, sizeof(m->initted));
    return c;
}

static void test_onehot_equals_student(Rng *r)
{
    const int G = 4, B = 2, H = 16, W = 16, keep[2] = { 1, 3 };
    CatanetModel *full = random_model(r, G, 0), *st;
    char err[256] = "";
    test_check(catanet_model_extract(&st, full, keep, 2, err, sizeof(err)) == 0, "extract {1,3}: %s", err);
    float *lr = zeros((size_t)B * 3 * H * W), *hr = zeros((size_t)B * 3 * H * W * 4);
    for (size_t i = 0; i < (size_t)B * 3 * H * W; i++)
        lr[i] = rng_uniform(r);
    for (size_t i = 0; i < (size_t)B * 3 * H * W * 4; i++)
        hr[i] = rng_uniform(r);
    for (int use_ref = 0; use_ref < 2; use_ref++) {
        CatanetModel *fm = clone(full), *sm = clone(st);
        CatanetTrainPlan *pf, *ps;
        catanet_train_plan_create(&pf, fm, B, H, W, 2, use_ref, err, sizeof(err));
        catanet_train_plan_create(&ps, sm, B, H, W, 2, use_ref, err, sizeof(err));
        float gate[4 * 2];
        for (int g = 0; g < G; g++)
            for (int b = 0; b < B; b++)
                gate[g * B + b] = (g == 1 || g == 3) ? 1.0f : 0.0f;
        pf->gate = gate;
        double lf = catanet_train_forward(pf, lr, hr), ls = catanet_train_forward(ps, lr, hr);
        size_t no = (size_t)B * 3 * H * W * 4;
        int same = memcmp(pf->out, ps->out, sizeof(float) * no) == 0 && lf == ls;
        test_check(same, "one-hot mask {1,3} of 4 groups == extracted student, training forward bit for bit (%s)",
                   use_ref ? "reference ops" : "fast ops");
        int msame = 1;
        for (int j = 0; j < 2; j++) {
            int M = st->info.groups[j].num_tokens, C = st->info.dim;
            msame &= memcmp(fm->groups[keep[j]].tab.means, sm->groups[j].tab.means, sizeof(float) * M * C) == 0;
            msame &= fm->initted[keep[j]] == sm->initted[j];
        }
        test_check(msame, "one-hot mask: the kept groups' means/initted after the forward == the student's (%s)",
                   use_ref ? "reference" : "fast");
        /* gradients: the kept groups' weight gradients equal the student's (first conv too) */
        CatanetModel *gf = clone(fm), *gs = clone(sm);
        catanet_model_zero(gf);
        catanet_model_zero(gs);
        float dgate[8] = { 0 };
        pf->dgate = dgate;
        catanet_train_backward(pf, hr, gf);
        catanet_train_backward(ps, hr, gs);
        size_t w;
        double d1 = max_abs_diff(gf->first_w, gs->first_w, 8 * 3 * 9, &w);
        double d2 = max_abs_diff(gf->groups[3].mid_w, gs->groups[1].mid_w, 8 * 8 * 9, &w);
        test_check(d1 == 0 && d2 == 0, "one-hot mask: weight gradients == the student's (first_conv %.3g, mid_conv %.3g)",
                   d1, d2);
        double dz = max_abs(gf->groups[0].mid_w, 8 * 8 * 9);
        test_check(dz == 0, "one-hot mask: a masked group's weights get zero gradient (%.3g)", dz);
        test_check(dgate[0] != 0 && dgate[2 * B] != 0, "one-hot mask: masked groups still get a gate gradient");
        catanet_model_free(gf);
        catanet_model_free(gs);
        catanet_train_plan_free(pf);
        catanet_train_plan_free(ps);
        catanet_model_free(fm);
        catanet_model_free(sm);
    }
    /* eval mode (the engine's forward): a gate of 0 is a residual branch multiplied by 0, i.e. a
     * mid_conv with zero weights and bias; the full model with the masked groups' branches zeroed
     * gives the extracted student's output bit for bit */
    {
        CatanetModel *z = clone(full), *sc = clone(st);
        for (int g = 0; g < G; g++)
            if (g != keep[0] && g != keep[1]) {
                memset(z->groups[g].mid_w, 0, sizeof(float) * 8 * 8 * 9);
                memset(z->groups[g].mid_b, 0, sizeof(float) * 8);
            }
        for (int g = 0; g < G; g++)
            z->initted[g] = 1;
        for (int j = 0; j < 2; j++)
            sc->initted[j] = 1;
        CatanetCpuPlan *pz, *psd;
        int ew = 20, eh = 18;
        int r1 = catanet_cpu_plan_create(&pz, z, ew, eh, 2, err, sizeof(err));
        int r2 = catanet_cpu_plan_create(&psd, sc, ew, eh, 2, err, sizeof(err));
        float *in = zeros((size_t)3 * ew * eh), *o1 = zeros((size_t)12 * ew * eh), *o2 = zeros((size_t)12 * ew * eh);
        for (int i = 0; i < 3 * ew * eh; i++)
            in[i] = rng_uniform(r);
        if (r1 == 0 && r2 == 0) {
            catanet_cpu_forward(pz, in, o1);
            catanet_cpu_forward(psd, in, o2);
        }
        test_check(r1 == 0 && r2 == 0 && memcmp(o1, o2, sizeof(float) * 12 * ew * eh) == 0,
                   "one-hot mask {1,3} == extracted student in eval mode (engine forward), bit for bit");
        if (r1 == 0)
            catanet_cpu_plan_free(pz);
        if (r2 == 0)
            catanet_cpu_plan_free(psd);
        free(in); free(o1); free(o2);
        catanet_model_free(z);
        catanet_model_free(sc);
    }
    /* the extracted student in eval mode equals its source model's groups (metadata round trip) */
    char path[] = "/tmp/test_prune_XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    test_check(catanet_kd_save_student(st, path, keep, 2, "teacher.safetensors", "test", err, sizeof(err)) == 0,
               "save student: %s", err);
    CatanetModel *ld;
    int kk[8];
    test_check(catanet_model_load(&ld, path, err, sizeof(err)) == 0, "load student: %s", err);
    test_check(catanet_kd_read_kept(path, kk, 8) == 2 && kk[0] == 1 && kk[1] == 3, "student metadata keeps {1,3}");
    test_check(catanet_kd_read_origin(path, kk, 8) == 2 && kk[0] == 1 && kk[1] == 3, "origin groups {1,3} of the original");
    {
        /* a second stage keeping the student's group 1 is the original's group 3 */
        char path2[] = "/tmp/test_prune_XXXXXX";
        int fd2 = mkstemp(path2), one = 1;
        close(fd2);
        CatanetModel *st2;
        test_check(catanet_model_extract(&st2, ld, &one, 1, err, sizeof(err)) == 0 &&
                       catanet_kd_save_student(st2, path2, &one, 1, path, "stage 2", err, sizeof(err)) == 0,
                   "stage 2 student: %s", err);
        test_check(catanet_kd_read_kept(path2, kk, 8) == 1 && kk[0] == 1 && catanet_kd_read_origin(path2, kk, 8) == 1 &&
                       kk[0] == 3,
                   "stage 2 keeps its teacher's group 1 = the original's group 3 (origin composed through the stages)");
        catanet_model_free(st2);
        unlink(path2);
    }
    int ok = ld->info.num_groups == 2;
    for (int j = 0; j < 2 && ok; j++) {
        const CatanetGroupInfo *a = &ld->info.groups[j], *b = &full->info.groups[keep[j]];
        ok &= a->num_tokens == b->num_tokens && a->group_size == b->group_size && a->patch_size == b->patch_size;
        ok &= memcmp(ld->groups[j].tab.means, full->groups[keep[j]].tab.means,
                     sizeof(float) * a->num_tokens * ld->info.dim) == 0;
        ok &= ld->initted[j] == full->initted[keep[j]] || !full->initted[keep[j]];
        ok &= memcmp(ld->groups[j].mid_w, full->groups[keep[j]].mid_w, sizeof(float) * 8 * 8 * 9) == 0;
        ok &= memcmp(ld->groups[j].lrsa.q, full->groups[keep[j]].lrsa.q, sizeof(float) * 8 * 8) == 0;
    }
    test_check(ok, "extraction keeps per-group num_tokens/group_size/patch_size, means, initted and weights");
    unlink(path);
    catanet_model_free(ld);
    catanet_model_free(st);
    catanet_model_free(full);
    free(lr);
    free(hr);
}

/* d loss / d gate, and the feature / KD hooks, against finite differences of the training forward */
typedef struct NetCtx {
    CatanetModel *m;
    CatanetTrainPlan *p;
    float *lr, *hr, *kd, *saved, *d_in, *d_body, *body;
    uint8_t init[CATANET_MAX_GROUPS];
    int tap;
} NetCtx;

static double net_f(void *q)
{
    NetCtx *c = q;
    memcpy(c->m->arena, c->saved, sizeof(float) * c->m->arena_floats); /* undo the centers' EMA */
    memcpy(c->m->initted, c->init, sizeof(c->init));
    /* the perturbed weight lives in saved: the caller perturbs saved, not the arena */
    double l = catanet_train_forward(c->p, c->lr, c->hr) * c->p->hr_weight;
    size_t no = (size_t)c->p->batch * 3 * c->p->h * c->p->w * 4, nf = (size_t)c->p->batch * c->p->h * c->p->w * 8;
    l += c->p->kd_weight * catanet_l1_loss_fwd_ref(no, c->p->out, c->kd);
    for (size_t i = 0; i < nf; i++)
        l += (double)c->d_in[i] * c->p->g[c->tap].tab_in[i] + (double)c->d_body[i] * c->body[i];
    return l;
}

static void test_gate_grad(Rng *r)
{
    const int G = 3, B = 2, H = 12, W = 12;
    NetCtx c = { 0 };
    /* one center per group: the clustering (argmax, sort) is then constant, so the training forward
     * is smooth and finite differences apply */
    c.m = random_model(r, G, 1);
    char err[256] = "";
    catanet_train_plan_create(&c.p, c.m, B, H, W, 1, 1, err, sizeof(err));
    size_t nl = (size_t)B * 3 * H * W, nf = (size_t)B * H * W * 8;
    c.lr = zeros(nl);
    c.hr = zeros(nl * 4);
    c.kd = zeros(nl * 4);
    for (size_t i = 0; i < nl; i++)
        c.lr[i] = rng_uniform(r);
    for (size_t i = 0; i < nl * 4; i++) {
        c.hr[i] = 3 + rng_uniform(r); /* above / below every output: L1 without kinks */
        c.kd[i] = -3 - rng_uniform(r);
    }
    c.saved = malloc(sizeof(float) * c.m->arena_floats);
    memcpy(c.saved, c.m->arena, sizeof(float) * c.m->arena_floats);
    memcpy(c.init, c.m->initted, sizeof(c.init));
    c.d_in = rnd(r, nf, 1e-3f);
    c.d_body = rnd(r, nf, 1e-3f);
    c.body = zeros(nf);
    c.tap = 1;
    /* h small: the upsampler's LeakyReLU kinks are the only non-smooth points left */
    float gate[3 * 2] = { 0.7f, 0.2f, 1.0f, 0.5f, 0.0f, 0.9f }, dgate[6] = { 0 };
    float *dfeat[4] = { NULL, c.d_in, NULL, c.d_body };
    c.p->gate = gate;
    c.p->dgate = dgate;
    c.p->body_out = c.body;
    c.p->dfeat = dfeat;
    c.p->kd_target = c.kd;
    c.p->hr_weight = 0.5f;
    c.p->kd_weight = 0.5f;
    CatanetModel *g = clone(c.m);
    catanet_model_zero(g);
    net_f(&c);
    catanet_train_backward(c.p, c.hr, g);
    fd_scalar("masked model: d loss / d gate (relaxed, per image)", net_f, &c, gate, 6, dgate, 3e-4f, 1e-4, 6);
    /* the first conv's bias sees every hook: hr/kd L1 weights, the group-input and body-end gradients */
    size_t ob = (size_t)(c.m->first_b - c.m->arena);
    fd_scalar("masked model: d (0.5 L1 hr + 0.5 L1 kd + <D1,h_1> + <D2,body>) / d first_conv.bias", net_f, &c,
              c.saved + ob, 8, g->first_b, 3e-4f, 1e-4, 8);
    size_t om = (size_t)(c.m->groups[2].mid_b - c.m->arena);
    fd_scalar("masked model: d loss / d mid_conv.bias of a gated group", net_f, &c, c.saved + om, 8, g->groups[2].mid_b,
              1e-2f, 1e-4, 8);
    catanet_model_free(g);
    catanet_train_plan_free(c.p);
    catanet_model_free(c.m);
    free(c.lr); free(c.hr); free(c.kd); free(c.saved); free(c.d_in); free(c.d_body); free(c.body);
}

/* ---------------- candidates and the budget ---------------- */
static void test_candidates(void)
{
    CatanetModelInfo L;
    catanet_arch_default(&L, 2);
    CatanetPruneCand *c;
    int n;
    char err[256] = "";
    int ret = catanet_prune_candidates(&L, 3, 229999, &c, &n, err, sizeof(err));
    test_check(ret == 0 && n == 56, "candidates: C(8,3) = %d subsets under 230K params", n);
    /* closed form (training-spec): 59,963 outside the groups + 52,184 per group at dim 40, x2 */
    int ok = ret == 0;
    for (int i = 0; ok && i < n; i++)
        ok &= c[i].params == 59963 + 3 * 52184;
    test_check(ok, "candidates: every 3-group student has %lld = 59963 + 3*52184 parameters",
               ret == 0 ? (long long)c[0].params : -1LL);
    test_check(ret == 0 && c[0].keep[0] == 0 && c[0].keep[2] == 2 && c[55].keep[0] == 5 && c[55].keep[2] == 7,
               "candidates: lexicographic order {0,1,2} .. {5,6,7}");
    free(c);
    ret = catanet_prune_candidates(&L, 4, 229999, &c, &n, err, sizeof(err));
    test_check(ret < 0, "candidates: no 4-group student fits 230K (268,699 params): %s", err);
    ret = catanet_prune_candidates(&L, 6, 0, &c, &n, err, sizeof(err));
    test_check(ret == 0 && n == 28 && c[0].params == 59963 + 6 * 52184, "candidates: C(8,6) = %d without budget", n);
    if (ret == 0)
        free(c);
}

/* fine-tuning to another scale (x2 -> x3/x4): every tensor but the upsampler carried over, x4's first
 * stage from x2's upsampler, the new tensors left as initialised */
static void test_rescale(Rng *r)
{
    CatanetModel *x2 = random_model(r, 2, 0);
    for (int s = 3; s <= 4; s++) {
        CatanetModelInfo info = x2->info;
        info.upscale = s;
        CatanetModel *m;
        char err[256] = "";
        test_check(catanet_model_create(&m, &info, err, sizeof(err)) == 0, "x%d model: %s", s, err);
        for (size_t k = 0; k < m->arena_floats; k++)
            m->arena[k] = 12345.0f; /* "freshly initialised" marker */
        memset(m->initted, 0, sizeof(m->initted));
        int copied = catanet_model_copy_matching(m, x2), ok = 1, same = 0, fresh = 0;
        for (int i = 0; i < m->n_tensors; i++) {
            const CatanetTensorDef *d = &m->tensors[i];
            const char *src = d->name;
            if (!strncmp(d->name, "upconv", 6))
                src = s == 4 && !strncmp(d->name, "upconv1.", 8) ? (strstr(d->name, "weight") ? "upconv.weight" : "upconv.bias")
                                                                 : NULL;
            const CatanetTensorDef *sd = src ? catanet_model_find(x2, src) : NULL;
            if (sd) {
                ok &= sd->numel == d->numel && !memcmp(m->arena + d->offset, x2->arena + sd->offset, 4 * d->numel);
                same++;
            } else {
                for (size_t k = 0; k < d->numel; k++)
                    ok &= m->arena[d->offset + k] == 12345.0f;
                fresh++;
            }
        }
        ok &= copied == same && fresh == 2; /* x3: upconv w+b; x4: upconv2 w+b */
        for (int g = 0; g < info.num_groups; g++)
            ok &= m->initted[g] == x2->initted[g];
        test_check(ok, "x2 -> x%d: %d tensors carried over (upsampler rule), %d left fresh, initted kept", s, copied, fresh);
        catanet_model_free(m);
    }
    catanet_model_free(x2);
}

/* the latency model: additive prediction, the cheapest-k bound, and a real measurement */
static void test_latency(Rng *r)
{
    const double group[4] = { 5, 1, 3, 2 };
    const int keep[3] = { 0, 2, 3 };
    test_check(catanet_latency_predict(10, group, keep, 3) == 20 && catanet_latency_cheapest(10, group, keep, 3, 2) == 15 &&
                   catanet_latency_cheapest(10, group, keep, 3, 0) == 10,
               "latency: base + kept groups; base + the cheapest k of them");
    CatanetModel *m = random_model(r, 2, 0);
    double base = -1, per[2] = { -1, -1 }, whole = -1;
    char err[256] = "";
    int ok = catanet_latency_groups(m, 32, 32, 1, &base, per, err, sizeof(err)) == 0 &&
             catanet_latency_ms(m, 32, 32, 1, &whole, err, sizeof(err)) == 0;
    test_check(ok && base > 0 && whole > base, "latency measured: %.2f ms without groups, %.2f ms whole (%s)", base, whole,
               err);
    catanet_model_free(m);
}

int main(void)
{
    Rng r = { 2026 };
    test_fakd(&r);
    test_gumbel(&r);
    test_gate(&r);
    test_onehot_equals_student(&r);
    test_gate_grad(&r);
    test_candidates();
    test_rescale(&r);
    test_latency(&r);
    return test_finish();
}
