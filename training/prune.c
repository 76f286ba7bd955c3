/*
 * prune.c: `catanet-train prune` (learnable group masks, see prune.h) and `catanet-train extract`
 * (model surgery), plus small helpers shared with distill.c.
 */
#include <float.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "data.h"
#include "error.h"
#include "forward_cpu.h"
#include "kernels.h"
#include "latency.h"
#include "metrics.h"
#include "model_train.h"
#include "prune.h"
#include "safetensors.h"

#define MAX_DIRS 16

void catanet_kd_log(CatanetLogFn log, void *opaque, int level, const char *fmt, ...)
{
    if (!log)
        return;
    char buf[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    log(opaque, level, buf);
}

int catanet_kd_parse_ints(const char *s, int *out, int max)
{
    int n = 0;
    while (s && *s) {
        char *e;
        long v = strtol(s, &e, 10);
        if (e == s || n >= max)
            return -1;
        out[n++] = (int)v;
        if (*e == ',')
            e++;
        else if (*e)
            return -1;
        s = e;
    }
    return n;
}

void catanet_kd_adam(CatanetModel *m, const CatanetModel *g, CatanetModel *am, CatanetModel *av, float lr, int64_t t)
{
    for (int i = 0; i < m->n_tensors; i++) {
        const CatanetTensorDef *d = &m->tensors[i];
        if (!d->is_buffer)
            catanet_adam_update_ref(d->numel, m->arena + d->offset, g->arena + d->offset, am->arena + d->offset,
                                    av->arena + d->offset, lr, 0.9f, 0.99f, 1e-8f, t);
    }
}

double catanet_kd_clip(CatanetModel *g, double clip)
{
    double ss = 0;
    for (int i = 0; i < g->n_tensors; i++) {
        const CatanetTensorDef *d = &g->tensors[i];
        if (d->is_buffer)
            continue;
        for (size_t k = 0; k < d->numel; k++)
            ss += (double)g->arena[d->offset + k] * g->arena[d->offset + k];
    }
    double nrm = sqrt(ss);
    if (clip > 0 && nrm > clip)
        for (size_t k = 0; k < g->arena_floats; k++)
            g->arena[k] *= (float)(clip / nrm);
    return nrm;
}

const char *const catanet_kd_prov_keys[CATANET_KD_PROV_KEYS] = { "catanet_kept_groups", "catanet_origin_groups",
                                                               "catanet_teacher", "catanet_note" };

int catanet_kd_save_student(const CatanetModel *m, const char *path, const int *keep, int n_keep,
                            const char *teacher, const char *note, char *err, size_t es)
{
    char kept[256] = "";
    for (int j = 0; j < n_keep; j++) {
        size_t l = strlen(kept);
        snprintf(kept + l, sizeof(kept) - l, "%s%d", j ? "," : "", keep[j]);
    }
    /* the groups of the original model (through every stage): the teacher's own origin composed with keep */
    int torigin[CATANET_MAX_GROUPS], nt = teacher ? catanet_kd_read_origin(teacher, torigin, CATANET_MAX_GROUPS) : -1;
    char origin[256] = "";
    for (int j = 0; j < n_keep; j++) {
        size_t l = strlen(origin);
        int g = nt > 0 && keep[j] >= 0 && keep[j] < nt ? torigin[keep[j]] : keep[j];
        snprintf(origin + l, sizeof(origin) - l, "%s%d", j ? "," : "", g);
    }
    const char *v[CATANET_KD_PROV_KEYS] = { kept, origin, teacher ? teacher : "", note ? note : "" };
    return catanet_model_save(m, path, catanet_kd_prov_keys, v, CATANET_KD_PROV_KEYS, err, es);
}

static int read_groups(const char *path, const char *key, int *keep, int max)
{
    CatanetSt *st;
    char err[256];
    if (catanet_st_open(&st, path, err, sizeof(err)) < 0)
        return CATANET_ERR_IO;
    const char *s = catanet_st_meta(st, key);
    int n = s ? catanet_kd_parse_ints(s, keep, max) : CATANET_ERR_FORMAT;
    catanet_st_close(st);
    return n;
}

int catanet_kd_read_kept(const char *path, int *keep, int max)
{
    return read_groups(path, "catanet_kept_groups", keep, max);
}

int catanet_kd_read_origin(const char *path, int *origin, int max)
{
    return read_groups(path, "catanet_origin_groups", origin, max);
}

typedef struct EvalCtx {
    const CatanetModel *m;
    int threads;
} EvalCtx;

static int eval_upscale(void *opaque, const float *lr, int w, int h, float *sr)
{
    EvalCtx *c = opaque;
    CatanetCpuPlan *p;
    char err[256];
    int ret = catanet_cpu_plan_create(&p, c->m, w, h, c->threads, err, sizeof(err));
    if (ret < 0)
        return ret;
    catanet_cpu_forward(p, lr, sr);
    catanet_cpu_plan_free(p);
    return 0;
}

int catanet_kd_eval(const CatanetModel *m, const char *dir, int threads, double *psnr, double *ssim, char *err,
                    size_t es)
{
    CatanetEvalSet *set;
    int ret = catanet_evalset_open(&set, dir, m->info.upscale, err, es);
    if (ret < 0)
        return ret;
    EvalCtx c = { m, threads > 0 ? threads : 1 };
    CatanetEvalResult r = { 0 };
    ret = catanet_eval_set(set, eval_upscale, &c, &r, err, es);
    catanet_evalset_close(set);
    *psnr = r.psnr;
    *ssim = r.ssim;
    return ret;
}

/* ---- candidates ---- */

void catanet_prune_student_info(const CatanetModelInfo *teacher, const int *keep, int n_keep, CatanetModelInfo *out)
{
    *out = *teacher;
    out->num_groups = n_keep;
    for (int j = 0; j < n_keep; j++)
        out->groups[j] = teacher->groups[keep[j]];
    for (int j = n_keep; j < CATANET_MAX_GROUPS; j++)
        memset(&out->groups[j], 0, sizeof(out->groups[j]));
}

int catanet_prune_candidates(const CatanetModelInfo *teacher, int n_keep, int64_t max_params,
                             CatanetPruneCand **out, int *n_out, char *err, size_t es)
{
    int G = teacher->num_groups;
    *out = NULL;
    *n_out = 0;
    if (n_keep < 1 || n_keep > G)
        return catanet_errf(err, es, CATANET_ERR_INVALID_ARG, "cannot keep %d of %d groups", n_keep, G);
    /* C(G,K) <= C(16,8) = 12870 for the groups a model may have here; count first */
    double total = 1;
    for (int i = 0; i < n_keep; i++)
        total = total * (G - i) / (i + 1);
    if (total > 100000)
        return catanet_errf(err, es, CATANET_ERR_UNSUPPORTED, "C(%d,%d) = %.0f candidates: too many for one categorical",
                            G, n_keep, total);
    CatanetPruneCand *c = calloc((size_t)total + 1, sizeof(*c));
    if (!c)
        return catanet_errf(err, es, CATANET_ERR_NOMEM, "out of memory");
    int idx[CATANET_MAX_GROUPS], n = 0;
    for (int i = 0; i < n_keep; i++)
        idx[i] = i;
    for (;;) {
        CatanetModelInfo si;
        catanet_prune_student_info(teacher, idx, n_keep, &si);
        CatanetModel *m;
        int ret = catanet_model_create(&m, &si, err, es);
        if (ret < 0) {
            free(c);
            return ret;
        }
        int64_t params = m->info.num_params;
        catanet_model_free(m);
        if (max_params <= 0 || params <= max_params) {
            c[n].n_keep = n_keep;
            memcpy(c[n].keep, idx, sizeof(int) * n_keep);
            c[n].params = params;
            n++;
        }
        /* next combination in lexicographic order */
        int i = n_keep - 1;
        while (i >= 0 && idx[i] == G - n_keep + i)
            i--;
        if (i < 0)
            break;
        idx[i]++;
        for (int j = i + 1; j < n_keep; j++)
            idx[j] = idx[j - 1] + 1;
    }
    if (!n) {
        free(c);
        return catanet_errf(err, es, CATANET_ERR_INVALID_ARG, "no subset of %d groups fits %lld parameters", n_keep,
                            (long long)max_params);
    }
    *out = c;
    *n_out = n;
    return 0;
}

static void cand_str(const CatanetPruneCand *c, char *buf, size_t n)
{
    buf[0] = 0;
    for (int j = 0; j < c->n_keep; j++) {
        size_t l = strlen(buf);
        snprintf(buf + l, n - l, "%s%d", j ? "," : "", c->keep[j]);
    }
}

/* ---- options shared by prune and distill ---- */

typedef struct PruneOpts {
    const char *teacher, *student, *out, *decision;
    const char *data[MAX_DIRS];
    const char *latency_of;   /* latency budget: this model's measured time x latency_factor */
    double latency_factor;
    int latency_w, latency_h, final_keep;
    int n_data;
    int keep, batch, patch, threads, log_every;
    int64_t budget, iters;
    double lr, logit_mult, scale, tau0, tau1, ema, clip;
    uint64_t seed;
} PruneOpts;

/* a number of an option through tools/cli.h (which says why on stderr), else an error naming it */
#define PROG "catanet-train prune"
#define NUM(x) do { if ((x) < 0) return catanet_errf(err, es, CATANET_ERR_INVALID_ARG, "prune: bad value for %s", o_); } while (0)

static int prune_opts(int argc, char **argv, PruneOpts *o, char *err, size_t es)
{
    memset(o, 0, sizeof(*o));
    int64_t seed = 3407;
    char o_[64];
    o->budget = 230000 - 1; /* fewer than CATANet-S's 230K parameters */
    o->batch = 4;
    o->patch = 32;
    o->threads = 1;
    o->log_every = 25;
    o->iters = 300;
    o->lr = 1e-4;
    o->logit_mult = 10;
    o->scale = 100;
    o->tau0 = 4;
    o->tau1 = 0.1;
    o->ema = -1;
    o->clip = 1.0;
    o->latency_factor = 1.0;
    o->latency_w = o->latency_h = 128;
    for (int i = 1; i < argc; i++) {
        const char *k = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strncmp(k, "--", 2) || !v)
            return catanet_errf(err, es, CATANET_ERR_INVALID_ARG, "prune: expected --option value, got '%s'", k);
        snprintf(o_, sizeof(o_), "%.60s", k);
        k += 2;
        i++;
        if (!strcmp(k, "teacher"))
            o->teacher = v;
        else if (!strcmp(k, "student"))
            o->student = v;
        else if (!strcmp(k, "out"))
            o->decision = v;
        else if (!strcmp(k, "data") && o->n_data < MAX_DIRS)
            o->data[o->n_data++] = v;
        else if (!strcmp(k, "keep"))
            NUM(cli_int(PROG, o_, v, 1, CATANET_MAX_GROUPS, &o->keep));
        else if (!strcmp(k, "budget"))
            NUM(cli_int64(PROG, o_, v, 0, INT64_C(1000000000000), &o->budget));
        else if (!strcmp(k, "batch"))
            NUM(cli_int(PROG, o_, v, 1, 4096, &o->batch));
        else if (!strcmp(k, "patch"))
            NUM(cli_int(PROG, o_, v, 1, 4096, &o->patch));
        else if (!strcmp(k, "threads"))
            NUM(cli_int(PROG, o_, v, 0, 1024, &o->threads));
        else if (!strcmp(k, "log-every"))
            NUM(cli_int(PROG, o_, v, 0, INT_MAX, &o->log_every));
        else if (!strcmp(k, "iters"))
            NUM(cli_int64(PROG, o_, v, 1, INT64_C(1000000000000), &o->iters));
        else if (!strcmp(k, "lr"))
            NUM(cli_double(PROG, o_, v, 0, DBL_MAX, &o->lr));
        else if (!strcmp(k, "logit-lr-mult"))
            NUM(cli_double(PROG, o_, v, 0, DBL_MAX, &o->logit_mult));
        else if (!strcmp(k, "logit-scale"))
            NUM(cli_double(PROG, o_, v, DBL_MIN, DBL_MAX, &o->scale));
        else if (!strcmp(k, "tau")) {
            if (sscanf(v, "%lf,%lf", &o->tau0, &o->tau1) != 2)
                return catanet_errf(err, es, CATANET_ERR_INVALID_ARG, "--tau needs FROM,TO");
        } else if (!strcmp(k, "ema"))
            NUM(cli_double(PROG, o_, v, 0, 1, &o->ema));
        else if (!strcmp(k, "clip"))
            NUM(cli_double(PROG, o_, v, 0, DBL_MAX, &o->clip));
        else if (!strcmp(k, "seed"))
            NUM(cli_int64(PROG, o_, v, 0, INT64_MAX, &seed));
        else if (!strcmp(k, "latency-of"))
            o->latency_of = v;
        else if (!strcmp(k, "latency-factor"))
            NUM(cli_double(PROG, o_, v, DBL_MIN, DBL_MAX, &o->latency_factor));
        else if (!strcmp(k, "latency-size")) {
            if (sscanf(v, "%dx%d", &o->latency_w, &o->latency_h) != 2 || o->latency_w < 1 || o->latency_h < 1)
                return catanet_errf(err, es, CATANET_ERR_INVALID_ARG, "--latency-size needs WxH");
        } else if (!strcmp(k, "final-keep"))
            NUM(cli_int(PROG, o_, v, 0, CATANET_MAX_GROUPS, &o->final_keep));
        else
            return catanet_errf(err, es, CATANET_ERR_INVALID_ARG, "prune: unknown option --%s", k);
    }
    o->seed = (uint64_t)seed;
    if (!o->teacher || !o->n_data)
        return catanet_errf(err, es, CATANET_ERR_INVALID_ARG,
                            "usage: catanet-train prune --teacher MODEL --data DIR [--keep K] [--budget P (229999)]"
                            " [--iters N (300)] [--batch B (4)] [--patch P (32)] [--lr X (1e-4)] [--logit-lr-mult 10]"
                            " [--logit-scale 100] [--tau 4,0.1] [--ema D] [--clip 1] [--seed N] [--threads T]"
                            " [--log-every N] [--out DECISION.json] [--student OUT.safetensors]"
                            " [--latency-of MODEL [--latency-factor F (1)] [--latency-size WxH (128x128)]"
                            " [--final-keep K]]");
    if (o->batch < 1 || o->iters < 1 || o->tau0 <= 0 || o->tau1 <= 0)
        return catanet_errf(err, es, CATANET_ERR_INVALID_ARG, "prune: bad batch, iters or tau");
    /* TinyFusion's 0.999 assumes ~10k steps; a short run needs a shorter memory */
    if (o->ema < 0)
        o->ema = fmax(0.0, fmin(0.999, 1.0 - 5.0 / (double)o->iters));
    return 0;
}
#undef NUM
#undef PROG

/* Keeps the candidates whose students fit the latency budget (o->latency_of's measured time x
 * factor): at the final stage their predicted time, at an earlier one the fastest final_keep-group
 * student they still allow (so that the last stage has a candidate). */
static int latency_filter(const PruneOpts *o, const CatanetModel *T, int K, CatanetPruneCand *cand, int *nc,
                          double *budget, double *base, double *group_ms, CatanetLogFn log, void *op, char *err,
                          size_t es)
{
    CatanetModel *ref;
    double ref_ms;
    int w = o->latency_w, h = o->latency_h, reps = 5, ret;
    if ((ret = catanet_model_load(&ref, o->latency_of, err, es)) < 0)
        return ret;
    ret = catanet_latency_ms(ref, w, h, reps, &ref_ms, err, es);
    catanet_model_free(ref);
    if (ret < 0 || (ret = catanet_latency_groups(T, w, h, reps, base, group_ms, err, es)) < 0)
        return ret;
    *budget = ref_ms * o->latency_factor;
    char buf[1024];
    int len = snprintf(buf, sizeof(buf), "without groups %.1f ms; per group", *base);
    for (int g = 0; g < T->info.num_groups && len < (int)sizeof(buf); g++)
        len += snprintf(buf + len, sizeof(buf) - len, " %d:+%.1f", g, group_ms[g]);
    catanet_kd_log(log, op, CATANET_LOG_INFO,
                   "prune: latency (CPU, 1 thread, %dx%d LR, min of %d): %s (budget %.1f ms = %g x %s's %.1f ms)", w,
                   h, reps, buf, *budget, o->latency_factor, o->latency_of, ref_ms);
    int fk = o->final_keep > 0 && o->final_keep < K ? o->final_keep : K, n = 0;
    for (int i = 0; i < *nc; i++) {
        double t = catanet_latency_cheapest(*base, group_ms, cand[i].keep, cand[i].n_keep, fk);
        if (t <= *budget)
            cand[n++] = cand[i];
    }
    if (!n)
        return catanet_errf(err, es, CATANET_ERR_INVALID_ARG,
                            "prune: no subset of %d groups allows a %d-group student within %.1f ms", K, fk, *budget);
    catanet_kd_log(log, op, CATANET_LOG_INFO, "prune: %d of %d candidates fit the latency budget", n, *nc);
    *nc = n;
    return 0;
}

/* ---- prune ---- */

typedef struct Top {
    int idx;
    double p;
} Top;

static int cmp_top(const void *a, const void *b)
{
    const Top *x = a, *y = b;
    return x->p < y->p ? 1 : x->p > y->p ? -1 : x->idx - y->idx;
}

/* probabilities softmax(scale * logits) (no noise, tau 1: the categorical the logits define) */
static void probs(int k, const float *logits, double scale, double *p)
{
    double mx = -INFINITY, s = 0;
    for (int i = 0; i < k; i++)
        mx = fmax(mx, scale * logits[i]);
    for (int i = 0; i < k; i++)
        s += p[i] = exp(scale * logits[i] - mx);
    for (int i = 0; i < k; i++)
        p[i] /= s;
}

static void log_top(CatanetLogFn log, void *op, const char *what, const CatanetPruneCand *c, int nc,
                    const float *logits, double scale, int ntop)
{
    double *p = malloc(sizeof(double) * nc);
    Top *t = malloc(sizeof(Top) * nc);
    if (!p || !t) {
        free(p);
        free(t);
        return;
    }
    probs(nc, logits, scale, p);
    for (int i = 0; i < nc; i++)
        t[i] = (Top){ i, p[i] };
    qsort(t, nc, sizeof(Top), cmp_top);
    char line[1024];
    snprintf(line, sizeof(line), "%s:", what);
    for (int i = 0; i < ntop && i < nc; i++) {
        char s[128];
        cand_str(&c[t[i].idx], s, sizeof(s));
        size_t l = strlen(line);
        snprintf(line + l, sizeof(line) - l, " {%s} %.3f", s, t[i].p);
    }
    catanet_kd_log(log, op, CATANET_LOG_INFO, "%s", line);
    free(p);
    free(t);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

int catanet_prune_main(int argc, char **argv, CatanetLogFn log, void *op)
{
    char err[1024];
    PruneOpts o;
    int ret = prune_opts(argc, argv, &o, err, sizeof(err));
    CatanetModel *T = NULL, *S = NULL, *grads = NULL, *am = NULL, *av = NULL;
    CatanetTrainPlan *pt = NULL, *ps = NULL;
    CatanetData *data = NULL;
    CatanetPruneCand *cand = NULL;
    float *lr = NULL, *hr = NULL, *tmeans = NULL, *logits = NULL, *ema = NULL, *lm = NULL, *lv = NULL;
    float *dlogits = NULL, *ysoft = NULL, *noise = NULL, *dy = NULL, *gate = NULL, *dgate = NULL, *opt = NULL;
    int nc = 0;
    if (ret < 0)
        goto fail;
    if ((ret = catanet_model_load(&T, o.teacher, err, sizeof(err))) < 0 ||
        (ret = catanet_model_load(&S, o.teacher, err, sizeof(err))) < 0)
        goto fail;
    int G = T->info.num_groups, B = o.batch, s = T->info.upscale;
    /* the budget: a number of kept groups, or the most groups whose students fit the parameter budget */
    int K = o.keep;
    if (K <= 0) {
        for (K = G; K >= 1; K--) {
            CatanetPruneCand *c;
            int n;
            if (catanet_prune_candidates(&T->info, K, o.budget, &c, &n, err, sizeof(err)) == 0) {
                free(c);
                break;
            }
        }
        if (K < 1) {
            ret = catanet_errf(err, sizeof(err), CATANET_ERR_INVALID_ARG, "no student fits %lld parameters",
                               (long long)o.budget);
            goto fail;
        }
    }
    if ((ret = catanet_prune_candidates(&T->info, K, o.budget, &cand, &nc, err, sizeof(err))) < 0)
        goto fail;
    double lat_budget = 0, lat_base = 0, lat_group[CATANET_MAX_GROUPS] = { 0 };
    if (o.latency_of && (ret = latency_filter(&o, T, K, cand, &nc, &lat_budget, &lat_base, lat_group, log, op, err,
                                              sizeof(err))) < 0)
        goto fail;
    catanet_kd_log(log, op, CATANET_LOG_INFO,
                   "prune: %s (%d groups, %lld params) -> keep %d groups: %d candidate subsets within the budget "
                   "(%lld params; 0 = none), each %lld params; batch %d of %dx%d, %lld iterations, tau %g -> %g, "
                   "logit scale %g, lr %g (logits x%g), EMA %g",
                   o.teacher, G, (long long)T->info.num_params, K, nc, (long long)o.budget, (long long)cand[0].params,
                   B, o.patch, o.patch, (long long)o.iters, o.tau0, o.tau1, o.scale, o.lr, o.logit_mult, o.ema);
    grads = NULL;
    if ((ret = catanet_model_create(&grads, &S->info, err, sizeof(err))) < 0 ||
        (ret = catanet_model_create(&am, &S->info, err, sizeof(err))) < 0 ||
        (ret = catanet_model_create(&av, &S->info, err, sizeof(err))) < 0)
        goto fail;
    CatanetDataConfig dc;
    catanet_data_config_default(&dc);
    dc.scale = s;
    dc.lr_patch = o.patch;
    dc.batch = B;
    dc.seed = o.seed;
    if ((ret = catanet_data_open(&data, o.data, o.n_data, &dc, err, sizeof(err))) < 0)
        goto fail;
    if ((ret = catanet_train_plan_create(&pt, T, B, o.patch, o.patch, o.threads, 0, err, sizeof(err))) < 0 ||
        (ret = catanet_train_plan_create(&ps, S, B, o.patch, o.patch, o.threads, 0, err, sizeof(err))) < 0)
        goto fail;
    size_t nlr = (size_t)B * 3 * o.patch * o.patch, nhr = nlr * s * s;
    lr = malloc(sizeof(float) * nlr);
    hr = malloc(sizeof(float) * nhr);
    tmeans = malloc(sizeof(float) * T->arena_floats);
    logits = malloc(sizeof(float) * nc);
    ema = malloc(sizeof(float) * nc);
    lm = calloc(nc, sizeof(float));
    lv = calloc(nc, sizeof(float));
    dlogits = malloc(sizeof(float) * nc);
    ysoft = malloc(sizeof(float) * (size_t)nc * B);
    noise = malloc(sizeof(float) * nc);
    dy = malloc(sizeof(float) * nc);
    gate = malloc(sizeof(float) * (size_t)G * B);
    dgate = malloc(sizeof(float) * (size_t)G * B);
    opt = calloc((size_t)nc * G, sizeof(float));
    if (!lr || !hr || !tmeans || !logits || !ema || !lm || !lv || !dlogits || !ysoft || !noise || !dy || !gate ||
        !dgate || !opt) {
        ret = catanet_errf(err, sizeof(err), CATANET_ERR_NOMEM, "out of memory");
        goto fail;
    }
    for (int i = 0; i < nc; i++) {
        logits[i] = ema[i] = 0.02f; /* TinyFusion's constant initial value: a uniform categorical */
        for (int j = 0; j < cand[i].n_keep; j++)
            opt[(size_t)i * G + cand[i].keep[j]] = 1.0f;
    }
    /* the teacher is frozen: its forward runs in training mode (batch-refined centers, as the student
     * sees them) but its `means` are restored after every step */
    memcpy(tmeans, T->arena, sizeof(float) * T->arena_floats);
    uint8_t tinit[CATANET_MAX_GROUPS];
    memcpy(tinit, T->initted, sizeof(tinit));
    ps->gate = gate;
    ps->dgate = dgate;
    ps->kd_target = pt->out;
    ps->hr_weight = 1.0f;
    ps->kd_weight = 1.0f;
    uint64_t rng = o.seed ^ 0x6a09e667f3bcc909ull;
    double t0 = now_s(), lavg = NAN;
    for (int64_t step = 0; step < o.iters; step++) {
        double tau = o.iters > 1 ? o.tau0 + (o.tau1 - o.tau0) * (double)step / (double)(o.iters - 1) : o.tau1;
        if ((ret = catanet_data_next(data, lr, hr)) < 0) {
            ret = catanet_errf(err, sizeof(err), ret, "data: %s", catanet_data_last_error(data));
            goto fail;
        }
        /* one hard sample per image */
        for (int b = 0; b < B; b++) {
            catanet_gumbel_noise(&rng, nc, noise);
            int k = catanet_gumbel_softmax_fwd_ref(nc, logits, noise, (float)o.scale, (float)tau, ysoft + (size_t)b * nc);
            for (int g = 0; g < G; g++)
                gate[(size_t)g * B + b] = opt[(size_t)k * G + g];
        }
        catanet_train_forward(pt, lr, NULL);
        memcpy(T->arena, tmeans, sizeof(float) * T->arena_floats);
        memcpy(T->initted, tinit, sizeof(tinit));
        double lhr = catanet_train_forward(ps, lr, hr);
        double lkd = catanet_l1_loss_fwd_ref(nhr, ps->out, pt->out);
        double loss = lhr + lkd;
        if (!isfinite(loss)) {
            catanet_kd_log(log, op, CATANET_LOG_WARNING, "prune: step %lld: non-finite loss, skipped", (long long)step);
            continue;
        }
        catanet_model_zero(grads);
        memset(dgate, 0, sizeof(float) * (size_t)G * B);
        catanet_train_backward(ps, hr, grads);
        /* straight-through: d loss / d (hard one-hot of image b) = opt dm_b, into the soft sample */
        memset(dlogits, 0, sizeof(float) * nc);
        for (int b = 0; b < B; b++) {
            float dm[CATANET_MAX_GROUPS];
            for (int g = 0; g < G; g++)
                dm[g] = dgate[(size_t)g * B + b];
            memset(dy, 0, sizeof(float) * nc);
            catanet_mask_compose_bwd_ref(nc, G, opt, dm, dy);
            catanet_gumbel_softmax_bwd_ref(nc, ysoft + (size_t)b * nc, dy, (float)o.scale, (float)tau, dlogits);
        }
        catanet_kd_clip(grads, o.clip);
        catanet_kd_adam(S, grads, am, av, (float)o.lr, step + 1);
        catanet_adam_update_ref(nc, logits, dlogits, lm, lv, (float)(o.lr * o.logit_mult), 0.9f, 0.99f, 1e-8f,
                                step + 1);
        for (int i = 0; i < nc; i++)
            ema[i] = (float)(o.ema * ema[i] + (1.0 - o.ema) * logits[i]);
        lavg = isnan(lavg) ? loss : 0.9 * lavg + 0.1 * loss;
        if ((step + 1) % o.log_every == 0 || step + 1 == o.iters) {
            char what[256];
            snprintf(what, sizeof(what), "step %lld tau %.3f loss %.5f (L1 hr %.5f, L1 teacher %.5f) %.2f s/step; EMA top",
                     (long long)step + 1, tau, lavg, lhr, lkd, (now_s() - t0) / (double)(step + 1));
            log_top(log, op, what, cand, nc, ema, o.scale, 3);
        }
    }
    /* the decision: argmax of the EMA logits; the student comes from the original teacher */
    int best = 0;
    for (int i = 1; i < nc; i++)
        if (ema[i] > ema[best])
            best = i;
    double *p = malloc(sizeof(double) * nc);
    if (!p) {
        ret = catanet_errf(err, sizeof(err), CATANET_ERR_NOMEM, "out of memory");
        goto fail;
    }
    probs(nc, ema, o.scale, p);
    char kept[128];
    cand_str(&cand[best], kept, sizeof(kept));
    catanet_kd_log(log, op, CATANET_LOG_INFO, "prune: decision: keep groups {%s} (p = %.3f under the EMA logits), %lld params",
                   kept, p[best], (long long)cand[best].params);
    if (o.latency_of)
        catanet_kd_log(log, op, CATANET_LOG_INFO, "prune: its predicted latency %.1f ms (budget %.1f ms)",
                       catanet_latency_predict(lat_base, lat_group, cand[best].keep, cand[best].n_keep), lat_budget);
    log_top(log, op, "prune: final EMA top 5", cand, nc, ema, o.scale, 5);
    if (o.decision) {
        json_t *j = json_object(), *arr = json_array(), *all = json_array();
        for (int k = 0; k < cand[best].n_keep; k++)
            json_array_append_new(arr, json_integer(cand[best].keep[k]));
        for (int i = 0; i < nc; i++) {
            char sc[128];
            cand_str(&cand[i], sc, sizeof(sc));
            json_t *e = json_object();
            json_object_set_new(e, "keep", json_string(sc));
            json_object_set_new(e, "ema_logit", json_real(ema[i]));
            json_object_set_new(e, "p", json_real(p[i]));
            json_array_append_new(all, e);
        }
        json_object_set_new(j, "teacher", json_string(o.teacher));
        json_object_set_new(j, "keep", arr);
        json_object_set_new(j, "p", json_real(p[best]));
        json_object_set_new(j, "params", json_integer(cand[best].params));
        json_object_set_new(j, "iters", json_integer(o.iters));
        if (o.latency_of) {
            json_object_set_new(j, "latency_budget_ms", json_real(lat_budget));
            json_object_set_new(j, "latency_ms", json_real(catanet_latency_predict(lat_base, lat_group, cand[best].keep,
                                                                                   cand[best].n_keep)));
        }
        json_object_set_new(j, "candidates", all);
        if (json_dump_file(j, o.decision, JSON_INDENT(1) | JSON_PRESERVE_ORDER) < 0)
            catanet_kd_log(log, op, CATANET_LOG_WARNING, "prune: cannot write %s", o.decision);
        json_decref(j);
    }
    free(p);
    if (o.student) {
        CatanetModel *st;
        memcpy(T->arena, tmeans, sizeof(float) * T->arena_floats);
        if ((ret = catanet_model_extract(&st, T, cand[best].keep, cand[best].n_keep, err, sizeof(err))) < 0)
            goto fail;
        char note[256];
        snprintf(note, sizeof(note), "prune: %lld iterations, batch %d of %d LR, %d candidates", (long long)o.iters, B,
                 o.patch, nc);
        ret = catanet_kd_save_student(st, o.student, cand[best].keep, cand[best].n_keep, o.teacher, note, err,
                                      sizeof(err));
        catanet_model_free(st);
        if (ret < 0)
            goto fail;
        catanet_kd_log(log, op, CATANET_LOG_INFO, "prune: wrote %s", o.student);
    }
    ret = 0;
fail:
    if (ret < 0)
        catanet_kd_log(log, op, CATANET_LOG_ERROR, "%s", err);
    catanet_train_plan_free(pt);
    catanet_train_plan_free(ps);
    catanet_data_close(data);
    catanet_model_free(T);
    catanet_model_free(S);
    catanet_model_free(grads);
    catanet_model_free(am);
    catanet_model_free(av);
    free(cand);
    free(lr);
    free(hr);
    free(tmeans);
    free(logits);
    free(ema);
    free(lm);
    free(lv);
    free(dlogits);
    free(ysoft);
    free(noise);
    free(dy);
    free(gate);
    free(dgate);
    free(opt);
    return ret;
}

/* ---- extract: catanet-train extract MODEL OUT --groups a,b,c | --decision FILE.json ---- */

int catanet_extract_main(int argc, char **argv, CatanetLogFn log, void *op)
{
    char err[1024];
    const char *pos[2] = { 0 }, *groups = NULL, *decision = NULL;
    int npos = 0, keep[CATANET_MAX_GROUPS], nk = 0, ret;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--groups") && i + 1 < argc)
            groups = argv[++i];
        else if (!strcmp(argv[i], "--decision") && i + 1 < argc)
            decision = argv[++i];
        else if (argv[i][0] != '-' && npos < 2)
            pos[npos++] = argv[i];
        else {
            npos = -1;
            break;
        }
    }
    if (npos != 2 || (!groups == !decision)) {
        catanet_kd_log(log, op, CATANET_LOG_ERROR,
                       "usage: catanet-train extract MODEL OUT (--groups a,b,c | --decision DECISION.json)");
        return CATANET_ERR_INVALID_ARG;
    }
    if (groups)
        nk = catanet_kd_parse_ints(groups, keep, CATANET_MAX_GROUPS);
    else {
        json_error_t je;
        json_t *j = json_load_file(decision, 0, &je), *arr = j ? json_object_get(j, "keep") : NULL;
        size_t i;
        json_t *x;
        nk = arr ? 0 : -1;
        json_array_foreach(arr, i, x) if (nk < CATANET_MAX_GROUPS) keep[nk++] = (int)json_integer_value(x);
        json_decref(j);
    }
    if (nk < 1) {
        catanet_kd_log(log, op, CATANET_LOG_ERROR, "extract: no groups to keep (%s)", groups ? groups : decision);
        return CATANET_ERR_INVALID_ARG;
    }
    CatanetModel *src, *dst;
    if ((ret = catanet_model_load(&src, pos[0], err, sizeof(err))) < 0) {
        catanet_kd_log(log, op, CATANET_LOG_ERROR, "%s", err);
        return ret;
    }
    ret = catanet_model_extract(&dst, src, keep, nk, err, sizeof(err));
    if (ret == 0) {
        ret = catanet_kd_save_student(dst, pos[1], keep, nk, pos[0], "extract", err, sizeof(err));
        if (ret == 0)
            catanet_kd_log(log, op, CATANET_LOG_INFO, "extract: %s: %d of %d groups, %lld parameters", pos[1], nk,
                           src->info.num_groups, (long long)dst->info.num_params);
        catanet_model_free(dst);
    }
    if (ret < 0)
        catanet_kd_log(log, op, CATANET_LOG_ERROR, "%s", err);
    catanet_model_free(src);
    return ret;
}
