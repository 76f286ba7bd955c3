/*
 * catanet-train: trains CATANet on the CPU (training-mode model of training/model_train.c) or, with
 * --device cuda, on a GPU (training/model_train_cuda.c; the same loop, data and checkpoints).
 *
 *   catanet-train train [options]          from scratch (--arch L or --dim/--groups...) or --from MODEL
 *   catanet-train resume CKPT [options]    continue a checkpoint (options may extend --iters)
 *   catanet-train export CKPT OUT          the model file the engine loads
 *   catanet-train grad -m MODEL --input X.npy --target Y.npy --out G.safetensors [--first-step]
 *   catanet-train bench [--batch B] [--patch P] [--steps N] [--threads T] [--device cpu|cuda] [arch options]
 *   catanet-train prune|extract|distill ...   depth pruning and distillation (training/prune.h, distill.h)
 */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <omp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "data.h"
#include "forward_cpu.h"
#include "metrics.h"
#include "model.h"
#include "model_train.h"
#include "model_train_cuda.h"
#include "prune.h"
#include "distill.h"
#include "safetensors.h"

#define MAX_DIRS 16
#define MAX_MILESTONES 16

typedef struct TrainCfg {
    CatanetModelInfo arch;
    int batch, patch, threads;
    int64_t iters;
    double lr, gamma, clip;
    int64_t milestones[MAX_MILESTONES];
    int n_milestones;
    uint64_t seed;
    const char *data[MAX_DIRS];
    int n_data;
    const char *val[MAX_DIRS];
    int n_val;
    int64_t val_every, ckpt_every;
    double ckpt_secs;
    int max_bad;
    const char *ckpt, *log, *from, *cache;
    int quiet;
    int new_data; /* resume: accept a changed image set (--new-data) */
    int cuda;     /* --device cuda: the step on the GPU (training/model_train_cuda.h) */
    double time_limit; /* --time-limit S: stop with a checkpoint S seconds after the program started */
    double t_start;    /* now_s() at the start of the program */
} TrainCfg;

/* the signal that asked the loop to stop (0: none); main re-raises it once the checkpoint is written,
 * so a caller sees a run stopped by a signal as stopped by it (a script chaining stages must not take
 * it for a finished run), while --time-limit, a stop that was asked for, exits 0 */
static volatile sig_atomic_t g_stop;

static void on_signal(int sig)
{
    g_stop = sig;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "catanet-train: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(1);
}

/* CPU seconds of the process (all threads): on a shared machine the honest cost of a step */
static double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec * 1e-6;
}

static double rng_uniform(uint64_t *s)
{
    return catanet_train_rng_uniform(s);
}

/* ---- NPY (float32, C order) ---- */
static float *read_npy(const char *path, int64_t *shape, int *ndim)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        die("cannot open %s: %s", path, strerror(errno));
    unsigned char head[10];
    if (fread(head, 1, 10, f) != 10 || memcmp(head, "\x93NUMPY", 6))
        die("%s: not an NPY file", path);
    size_t hlen = head[6] == 1 ? (size_t)(head[8] | head[9] << 8) : 0;
    if (head[6] != 1) {
        unsigned char b[2];
        if (fread(b, 1, 2, f) != 2)
            die("%s: truncated", path);
        hlen = (size_t)(head[8] | head[9] << 8 | b[0] << 16 | (size_t)b[1] << 24);
    }
    if (hlen > 65536)
        die("%s: header too large", path);
    char *h = calloc(1, hlen + 1);
    if (!h || fread(h, 1, hlen, f) != hlen)
        die("%s: truncated header", path);
    if (!strstr(h, "'descr': '<f4'") || strstr(h, "'fortran_order': True"))
        die("%s: need float32 little-endian C-order data (header %s)", path, h);
    char *sp = strstr(h, "'shape': (");
    if (!sp)
        die("%s: no shape", path);
    sp += 10;
    *ndim = 0;
    size_t n = 1;
    while (*sp && *sp != ')' && *ndim < 8) {
        char *e;
        long long v = strtoll(sp, &e, 10);
        if (e == sp)
            break;
        if (v < 1 || v > 1 << 24)
            die("%s: bad dimension %lld", path, v);
        shape[(*ndim)++] = v;
        n *= (size_t)v;
        sp = e;
        while (*sp == ',' || *sp == ' ')
            sp++;
    }
    free(h);
    float *x = malloc(sizeof(float) * n);
    if (!x || fread(x, sizeof(float), n, f) != n)
        die("%s: truncated data", path);
    fclose(f);
    return x;
}

/* ---- checkpoints: weights (official names), adam.m./adam.v.<name>, metadata ---- */
/* A student's provenance (catanet_kd_prov_keys, which prune/extract/distill write), carried from a
 * `train --from` model through the checkpoint (resume keeps it) to `export`, which adds the stage */
#define PROV_MAX 1024

typedef struct TrainState {
    CatanetModel *model, *grads, *adam_m, *adam_v;
    int64_t step, adam_t, skipped, bad_in_row;
    double elapsed;
    char data_state[CATANET_DATA_STATE_MAX];
    double last_psnr[MAX_DIRS], last_ssim[MAX_DIRS];
    int have_val;
    char prov[CATANET_KD_PROV_KEYS][PROV_MAX]; /* "" where the key is absent */
} TrainState;

static void prov_read(const CatanetSt *st, char prov[CATANET_KD_PROV_KEYS][PROV_MAX])
{
    for (int k = 0; k < CATANET_KD_PROV_KEYS; k++) {
        const char *v = catanet_st_meta(st, catanet_kd_prov_keys[k]);
        snprintf(prov[k], PROV_MAX, "%s", v ? v : "");
    }
}

static char *cfg_to_json(const TrainCfg *c)
{
    json_t *o = json_object(), *d = json_array(), *v = json_array(), *ms = json_array();
    for (int i = 0; i < c->n_data; i++)
        json_array_append_new(d, json_string(c->data[i]));
    for (int i = 0; i < c->n_val; i++)
        json_array_append_new(v, json_string(c->val[i]));
    for (int i = 0; i < c->n_milestones; i++)
        json_array_append_new(ms, json_integer(c->milestones[i]));
    json_object_set_new(o, "batch", json_integer(c->batch));
    json_object_set_new(o, "patch", json_integer(c->patch));
    json_object_set_new(o, "iters", json_integer(c->iters));
    json_object_set_new(o, "lr", json_real(c->lr));
    json_object_set_new(o, "gamma", json_real(c->gamma));
    json_object_set_new(o, "clip", json_real(c->clip));
    json_object_set_new(o, "milestones", ms);
    json_object_set_new(o, "seed", json_integer((json_int_t)c->seed));
    json_object_set_new(o, "data", d);
    json_object_set_new(o, "val", v);
    json_object_set_new(o, "val_every", json_integer(c->val_every));
    json_object_set_new(o, "ckpt_every", json_integer(c->ckpt_every));
    json_object_set_new(o, "ckpt_secs", json_real(c->ckpt_secs));
    json_object_set_new(o, "max_bad", json_integer(c->max_bad));
    if (c->log)
        json_object_set_new(o, "log", json_string(c->log));
    if (c->cache)
        json_object_set_new(o, "cache", json_string(c->cache));
    char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    return s;
}

/* strings from the checkpoint's JSON must outlive it: kept in a small pool */
static const char *keep(const char *s)
{
    return s ? strdup(s) : NULL;
}

static void cfg_from_json(TrainCfg *c, const char *text)
{
    json_error_t e;
    json_t *o = json_loads(text, 0, &e);
    if (!o)
        die("checkpoint train_config is not JSON: %s", e.text);
    c->batch = (int)json_integer_value(json_object_get(o, "batch"));
    c->patch = (int)json_integer_value(json_object_get(o, "patch"));
    c->iters = json_integer_value(json_object_get(o, "iters"));
    c->lr = json_number_value(json_object_get(o, "lr"));
    c->gamma = json_number_value(json_object_get(o, "gamma"));
    c->clip = json_number_value(json_object_get(o, "clip"));
    c->seed = (uint64_t)json_integer_value(json_object_get(o, "seed"));
    c->val_every = json_integer_value(json_object_get(o, "val_every"));
    c->ckpt_every = json_integer_value(json_object_get(o, "ckpt_every"));
    c->ckpt_secs = json_number_value(json_object_get(o, "ckpt_secs"));
    c->max_bad = (int)json_integer_value(json_object_get(o, "max_bad"));
    json_t *a;
    size_t i;
    json_t *x;
    c->n_milestones = 0;
    a = json_object_get(o, "milestones");
    json_array_foreach(a, i, x) if (c->n_milestones < MAX_MILESTONES) c->milestones[c->n_milestones++] = json_integer_value(x);
    c->n_data = 0;
    a = json_object_get(o, "data");
    json_array_foreach(a, i, x) if (c->n_data < MAX_DIRS) c->data[c->n_data++] = keep(json_string_value(x));
    c->n_val = 0;
    a = json_object_get(o, "val");
    json_array_foreach(a, i, x) if (c->n_val < MAX_DIRS) c->val[c->n_val++] = keep(json_string_value(x));
    if (json_object_get(o, "log"))
        c->log = keep(json_string_value(json_object_get(o, "log")));
    if (json_object_get(o, "cache"))
        c->cache = keep(json_string_value(json_object_get(o, "cache")));
    json_decref(o);
    if (c->batch < 1 || c->patch < 1 || c->iters < 0)
        die("checkpoint train_config is incomplete");
}

static int save_ckpt(const char *path, const TrainCfg *cfg, TrainState *ts, char *err, size_t es)
{
    CatanetModel *m = ts->model;
    int n = 3 * m->n_tensors + m->info.num_groups;
    CatanetStEntry *e = calloc(n, sizeof(*e));
    char (*names)[CATANET_NAME_MAX + 16] = calloc(n, CATANET_NAME_MAX + 16);
    char (*initted_names)[CATANET_NAME_MAX] = calloc(m->info.num_groups + 1, CATANET_NAME_MAX);
    if (!e || !names || !initted_names) {
        free(e);
        free(names);
        free(initted_names);
        return -1;
    }
    /* the model as catanet_model_save writes it, then Adam's moments of every parameter */
    int k = catanet_model_entries(m, e, initted_names), n_model = k;
    for (int i = 0; i < n_model; i++) {
        const CatanetTensorDef *d = catanet_model_find(m, e[i].name);
        if (!d || d->is_buffer)
            continue; /* means and initted: state, not parameters */
        for (int mv = 0; mv < 2; mv++) {
            snprintf(names[k], sizeof(names[k]), "adam.%c.%s", mv ? 'v' : 'm', d->name);
            e[k] = e[i];
            e[k].name = names[k];
            e[k].data = (mv ? ts->adam_v : ts->adam_m)->arena + d->offset;
            k++;
        }
    }
    char *arch = catanet_arch_to_json(&m->info), *cj = cfg_to_json(cfg);
    char step[32], adam_t[32], skipped[32], elapsed[64], rng[32];
    snprintf(step, sizeof(step), "%lld", (long long)ts->step);
    snprintf(adam_t, sizeof(adam_t), "%lld", (long long)ts->adam_t);
    snprintf(skipped, sizeof(skipped), "%lld", (long long)ts->skipped);
    snprintf(elapsed, sizeof(elapsed), "%.3f", ts->elapsed);
    snprintf(rng, sizeof(rng), "%llu", (unsigned long long)cfg->seed);
    const char *keys[9 + CATANET_KD_PROV_KEYS] = { CATANET_ARCH_KEY, "train_config", "step", "adam_t", "skipped", "elapsed_s",
                                        "rng_seed", "data_state", "format" };
    const char *vals[9 + CATANET_KD_PROV_KEYS] = { arch, cj, step, adam_t, skipped, elapsed, rng, ts->data_state,
                                        "catanet-train checkpoint 1" };
    int nk = 9;
    for (int p = 0; p < CATANET_KD_PROV_KEYS; p++)
        if (ts->prov[p][0]) {
            keys[nk] = catanet_kd_prov_keys[p];
            vals[nk++] = ts->prov[p];
        }
    int ret = catanet_st_write(path, e, k, keys, vals, nk, err, es);
    free(arch);
    free(cj);
    free(e);
    free(names);
    free(initted_names);
    return ret;
}

static CatanetModel *new_like(const CatanetModel *m)
{
    CatanetModel *x;
    char err[256];
    if (catanet_model_create(&x, &m->info, err, sizeof(err)) < 0)
        die("%s", err);
    return x;
}

static void load_ckpt(const char *path, TrainCfg *cfg, TrainState *ts)
{
    char err[512];
    if (catanet_model_load(&ts->model, path, err, sizeof(err)) < 0)
        die("%s", err);
    CatanetSt *st;
    if (catanet_st_open(&st, path, err, sizeof(err)) < 0)
        die("%s", err);
    const char *cj = catanet_st_meta(st, "train_config"), *step = catanet_st_meta(st, "step");
    const char *at = catanet_st_meta(st, "adam_t"), *ds = catanet_st_meta(st, "data_state");
    if (!cj || !step || !at || !ds)
        die("%s: not a catanet-train checkpoint (metadata missing)", path);
    cfg_from_json(cfg, cj);
    cfg->arch = ts->model->info;
    ts->step = strtoll(step, NULL, 10);
    ts->adam_t = strtoll(at, NULL, 10);
    const char *sk = catanet_st_meta(st, "skipped"), *el = catanet_st_meta(st, "elapsed_s");
    ts->skipped = sk ? strtoll(sk, NULL, 10) : 0;
    ts->elapsed = el ? strtod(el, NULL) : 0;
    snprintf(ts->data_state, sizeof(ts->data_state), "%s", ds);
    prov_read(st, ts->prov);
    ts->grads = new_like(ts->model);
    ts->adam_m = new_like(ts->model);
    ts->adam_v = new_like(ts->model);
    for (int i = 0; i < ts->model->n_tensors; i++) {
        const CatanetTensorDef *d = &ts->model->tensors[i];
        if (d->is_buffer)
            continue;
        for (int mv = 0; mv < 2; mv++) {
            char name[CATANET_NAME_MAX + 16];
            snprintf(name, sizeof(name), "adam.%c.%s", mv ? 'v' : 'm', d->name);
            const CatanetStTensor *t = catanet_st_get(st, name);
            if (!t || t->numel != (int64_t)d->numel ||
                catanet_st_read_f32(t, (mv ? ts->adam_v : ts->adam_m)->arena + d->offset) < 0)
                die("%s: tensor %s missing or malformed", path, name);
        }
    }
    catanet_st_close(st);
}

/* ---- validation with the eval-mode engine forward ---- */
typedef struct ValCtx {
    const CatanetModel *m;
    int threads;
} ValCtx;

static int val_upscale(void *opaque, const float *lr, int w, int h, float *sr)
{
    ValCtx *v = opaque;
    CatanetCpuPlan *p;
    char err[256];
    int ret = catanet_cpu_plan_create(&p, v->m, w, h, v->threads, err, sizeof(err));
    if (ret < 0)
        return ret;
    catanet_cpu_forward(p, lr, sr);
    catanet_cpu_plan_free(p);
    return 0;
}

/* ---- the training loop ---- */
static double lr_at(const TrainCfg *c, int64_t step)
{
    double lr = c->lr;
    for (int i = 0; i < c->n_milestones; i++)
        if (step >= c->milestones[i])
            lr *= c->gamma;
    return lr;
}

static int grads_finite(const CatanetModel *g)
{
    for (int i = 0; i < g->n_tensors; i++) {
        const CatanetTensorDef *d = &g->tensors[i];
        if (d->is_buffer)
            continue;
        const float *x = g->arena + d->offset;
        for (size_t k = 0; k < d->numel; k++)
            if (!isfinite(x[k]))
                return 0;
    }
    return 1;
}

/* the L2 norm of the whole gradient arena, a sequential double sum (the gaps between tensors are 0) */
static double grad_norm(const CatanetModel *g)
{
    double ss = 0;
    for (size_t k = 0; k < g->arena_floats; k++)
        ss += (double)g->arena[k] * g->arena[k];
    return sqrt(ss);
}

/* loss and one validation PSNR curve per set, with gnuplot when it is installed */
static void plot(const TrainCfg *cfg, CatanetEvalSet *const *vs)
{
    if (!cfg->log || system("command -v gnuplot >/dev/null 2>&1") != 0)
        return;
    char cmd[8192], val[4096] = "";
    for (int i = 0; i < cfg->n_val && vs[i]; i++) {
        size_t l = strlen(val);
        snprintf(val + l, sizeof(val) - l,
                 ", '< grep -F ,%s, %s.val.csv' using 1:3 axes x1y2 with linespoints title '%s PSNR'", vs[i]->name,
                 cfg->log, vs[i]->name);
    }
    snprintf(cmd, sizeof(cmd),
             "gnuplot -e \"set terminal png size 1000,600; set output '%s.png'; set datafile separator ',';"
             " set xlabel 'iteration'; set ylabel 'L1 loss'; set y2label 'val PSNR (dB)'; set y2tics; set logscale y;"
             " plot '%s' using 1:2 every ::1 with lines title 'loss'%s\" >/dev/null 2>&1",
             cfg->log, cfg->log, val);
    if (system(cmd) != 0)
        fprintf(stderr, "catanet-train: gnuplot failed (plot skipped)\n");
}

static int train_loop(TrainCfg *cfg, TrainState *ts)
{
    char err[1024];
    CatanetModel *m = ts->model;
    CatanetDataConfig dc;
    catanet_data_config_default(&dc);
    dc.scale = m->info.upscale;
    dc.lr_patch = cfg->patch;
    dc.batch = cfg->batch;
    dc.seed = cfg->seed;
    dc.cache_dir = cfg->cache;
    CatanetData *data;
    if (catanet_data_open(&data, cfg->data, cfg->n_data, &dc, err, sizeof(err)) < 0)
        die("data: %s", err);
    if (ts->data_state[0] && catanet_data_set_state_ex(data, ts->data_state, cfg->new_data) < 0)
        die("data state: %s (resume with --new-data to go on in the new image set)", catanet_data_last_error(data));
    CatanetEvalSet *vs[MAX_DIRS] = { 0 };
    for (int i = 0; i < cfg->n_val && cfg->val_every > 0; i++) /* --val-every 0: the sets are not read */
        if (catanet_evalset_open(&vs[i], cfg->val[i], m->info.upscale, err, sizeof(err)) < 0)
            die("validation set %s: %s", cfg->val[i], err);
    /* the step on the CPU (plan) or the GPU (dev: weights, means, gradients and Adam's moments live
     * there; the host model keeps `initted` and gets the weights back for validation and checkpoints) */
    CatanetTrainPlan *plan = NULL;
    CatanetTrainCuda *dev = NULL;
    if (cfg->cuda) {
        if (catanet_train_cuda_create(&dev, m, cfg->batch, cfg->patch, cfg->patch, err, sizeof(err)) < 0)
            die("--device cuda: %s", err);
        if (catanet_train_cuda_set_adam(dev, ts->adam_m, ts->adam_v) < 0)
            die("--device cuda: %s", catanet_train_cuda_error(dev));
        fprintf(stderr, "catanet-train: training on %s\n", catanet_train_cuda_device(dev));
    } else if (catanet_train_plan_create(&plan, m, cfg->batch, cfg->patch, cfg->patch, cfg->threads, 0, err,
                                         sizeof(err)) < 0)
        die("%s", err);
    int s = m->info.upscale;
    size_t nlr = (size_t)cfg->batch * 3 * cfg->patch * cfg->patch, nhr = nlr * s * s;
    float *lr = malloc(sizeof(float) * nlr), *hr = malloc(sizeof(float) * nhr);
    float *means_save = malloc(sizeof(float) * m->arena_floats);
    uint8_t initted_save[CATANET_MAX_GROUPS];
    FILE *log = NULL, *vlog = NULL;
    if (cfg->log) {
        char vpath[1024];
        snprintf(vpath, sizeof(vpath), "%s.val.csv", cfg->log);
        /* a run from step 0 starts its logs afresh (an old run's log at the same path would read as
         * this run's); a resumed one appends */
        const char *mode = ts->step == 0 ? "w" : "a";
        int fresh = ts->step == 0 || access(cfg->log, F_OK) != 0;
        log = fopen(cfg->log, mode);
        int vfresh = ts->step == 0 || access(vpath, F_OK) != 0;
        vlog = fopen(vpath, mode);
        if (!log || !vlog)
            die("cannot open the log %s: %s", cfg->log, strerror(errno));
        if (fresh)
            fprintf(log, "step,loss,lr,elapsed_s\n");
        if (vfresh)
            fprintf(vlog, "step,set,psnr,ssim\n");
    }
    if (!lr || !hr || !means_save)
        die("out of memory");
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    double t0 = now_s(), last_ckpt = t0, last_print = 0, base_elapsed = ts->elapsed, loss_avg = NAN;
    int64_t start_step = ts->step;
    int ret = 0, timed_out = 0;
    while (ts->step < cfg->iters && !g_stop && !timed_out) {
        if (catanet_data_next(data, lr, hr) < 0)
            die("data: %s", catanet_data_last_error(data));
        memcpy(initted_save, m->initted, sizeof(initted_save));
        double loss, gnorm = NAN;
        int ok;
        if (dev) {
            /* one upload of the batch, one read-back of the loss and the gradient norm */
            if (catanet_train_cuda_step(dev, lr, hr, &loss, &gnorm) < 0)
                die("--device cuda: step %lld: %s", (long long)ts->step + 1, catanet_train_cuda_error(dev));
            ok = isfinite(loss);
            if (ok && !isfinite(gnorm)) {
                /* a non-finite gradient, or only a norm beyond float range: the host decides */
                if (catanet_train_cuda_get_grads(dev, ts->grads) < 0)
                    die("--device cuda: %s", catanet_train_cuda_error(dev));
                ok = grads_finite(ts->grads);
                gnorm = ok ? grad_norm(ts->grads) : gnorm;
            }
        } else {
            memcpy(means_save, m->arena, sizeof(float) * m->arena_floats);
            catanet_model_zero(ts->grads);
            loss = catanet_train_forward(plan, lr, hr);
            ok = isfinite(loss);
            if (ok) {
                catanet_train_backward(plan, hr, ts->grads);
                ok = grads_finite(ts->grads);
            }
        }
        ts->step++;
        if (!ok) {
            /* never applied: the centers' EMA of this forward is undone too */
            if (dev && catanet_train_cuda_undo(dev) < 0)
                die("--device cuda: %s", catanet_train_cuda_error(dev));
            if (!dev)
                memcpy(m->arena, means_save, sizeof(float) * m->arena_floats);
            memcpy(m->initted, initted_save, sizeof(initted_save));
            ts->skipped++;
            ts->bad_in_row++;
            fprintf(stderr, "\ncatanet-train: step %lld: non-finite %s, step skipped (%lld in a row)\n",
                    (long long)ts->step, isfinite(loss) ? "gradient" : "loss", (long long)ts->bad_in_row);
            if (ts->bad_in_row >= cfg->max_bad) {
                fprintf(stderr, "catanet-train: %d non-finite steps in a row: stopping\n", cfg->max_bad);
                ret = 2;
                break;
            }
        } else {
            ts->bad_in_row = 0;
            double lrt = lr_at(cfg, ts->step - 1);
            ts->adam_t++;
            if (dev) {
                float gscale = cfg->clip > 0 && gnorm > cfg->clip ? (float)(cfg->clip / gnorm) : 1.0f;
                if (catanet_train_cuda_adam(dev, (float)lrt, 0.9f, 0.99f, 1e-8f, ts->adam_t, gscale) < 0)
                    die("--device cuda: %s", catanet_train_cuda_error(dev));
            }
            if (!dev && cfg->clip > 0) {
                double nrm = grad_norm(ts->grads);
                if (nrm > cfg->clip)
                    for (size_t k = 0; k < ts->grads->arena_floats; k++)
                        ts->grads->arena[k] *= (float)(cfg->clip / nrm);
            }
            for (int i = 0; !dev && i < m->n_tensors; i++) {
                const CatanetTensorDef *d = &m->tensors[i];
                if (d->is_buffer)
                    continue;
                catanet_adam_update_ref(d->numel, m->arena + d->offset, ts->grads->arena + d->offset,
                                        ts->adam_m->arena + d->offset, ts->adam_v->arena + d->offset, (float)lrt,
                                        0.9f, 0.99f, 1e-8f, ts->adam_t);
            }
            loss_avg = isnan(loss_avg) ? loss : 0.98 * loss_avg + 0.02 * loss;
        }
        double t = now_s();
        ts->elapsed = base_elapsed + (t - t0);
        timed_out = cfg->time_limit > 0 && t - cfg->t_start >= cfg->time_limit;
        if (log) { /* flushed every step: a step costs seconds, and the log is what people watch */
            fprintf(log, "%lld,%.9g,%.6g,%.1f\n", (long long)ts->step, loss, lr_at(cfg, ts->step - 1), ts->elapsed);
            fflush(log);
        }
        if (cfg->val_every > 0 && ts->step % cfg->val_every == 0 && cfg->n_val) {
            /* the CPU engine's eval-mode forward on the current weights (downloaded from the GPU) */
            if (dev && catanet_train_cuda_get_weights(dev, m) < 0)
                die("--device cuda: %s", catanet_train_cuda_error(dev));
            ValCtx vc = { m, cfg->threads };
            for (int i = 0; i < cfg->n_val; i++) {
                CatanetEvalResult r = { 0 };
                if (catanet_eval_set(vs[i], val_upscale, &vc, &r, err, sizeof(err)) < 0) {
                    fprintf(stderr, "\ncatanet-train: validation on %s failed: %s\n", vs[i]->name, err);
                    continue;
                }
                ts->last_psnr[i] = r.psnr;
                ts->last_ssim[i] = r.ssim;
                ts->have_val = 1;
                if (vlog) {
                    fprintf(vlog, "%lld,%s,%.4f,%.5f\n", (long long)ts->step, vs[i]->name, r.psnr, r.ssim);
                    fflush(vlog);
                }
            }
            if (log)
                fflush(log);
            plot(cfg, vs);
        }
        if (!cfg->quiet && (t - last_print > 1.0 || ts->step == cfg->iters)) {
            double ips = (ts->step - start_step) / (t - t0);
            double eta = ips > 0 ? (cfg->iters - ts->step) / ips : 0;
            char val[192] = "";
            if (ts->have_val)
                snprintf(val, sizeof(val), "  val %s %.2f dB", vs[0]->name, ts->last_psnr[0]);
            fprintf(stderr, "\r[%lld/%lld] loss %.5f (avg %.5f)  %.3f it/s  ETA %02d:%02d:%02d%s   ",
                    (long long)ts->step, (long long)cfg->iters, loss, loss_avg, ips, (int)(eta / 3600),
                    (int)fmod(eta / 60, 60), (int)fmod(eta, 60), val);
            last_print = t;
        }
        int due = (cfg->ckpt_every > 0 && ts->step % cfg->ckpt_every == 0) ||
                  (cfg->ckpt_secs > 0 && t - last_ckpt >= cfg->ckpt_secs);
        if (cfg->ckpt && (due || g_stop || timed_out || ts->step == cfg->iters)) {
            if (log)
                fflush(log);
            if (dev && (catanet_train_cuda_get_weights(dev, m) < 0 ||
                        catanet_train_cuda_get_adam(dev, ts->adam_m, ts->adam_v) < 0))
                die("--device cuda: reading the state back for the checkpoint: %s", catanet_train_cuda_error(dev));
            catanet_data_get_state(data, ts->data_state, sizeof(ts->data_state));
            if (save_ckpt(cfg->ckpt, cfg, ts, err, sizeof(err)) < 0)
                fprintf(stderr, "\ncatanet-train: checkpoint failed: %s\n", err);
            last_ckpt = t;
        }
    }
    if (!cfg->quiet)
        fprintf(stderr, "\n");
    if (g_stop || timed_out)
        fprintf(stderr, "catanet-train: stopped by %s at step %lld%s\n", g_stop ? "signal" : "--time-limit",
                (long long)ts->step, cfg->ckpt ? " (checkpoint written)" : "");
    double run_s = now_s() - t0;
    fprintf(stderr, "catanet-train: %lld steps in %.1f s, %.3f it/s, batch %d of %dx%d, on %s\n",
            (long long)(ts->step - start_step), run_s, run_s > 0 ? (ts->step - start_step) / run_s : 0.0, cfg->batch,
            cfg->patch, cfg->patch, dev ? catanet_train_cuda_device(dev) : "the CPU");
    if (log)
        fclose(log);
    if (vlog)
        fclose(vlog);
    plot(cfg, vs);
    for (int i = 0; i < cfg->n_val; i++)
        catanet_evalset_close(vs[i]);
    catanet_data_close(data);
    catanet_train_plan_free(plan);
    catanet_train_cuda_free(dev);
    free(lr);
    free(hr);
    free(means_save);
    return ret;
}

/* ---- options ---- */
static void kd_log(void *opaque, int level, const char *msg)
{
    (void)opaque;
    fprintf(level <= CATANET_LOG_WARNING ? stderr : stdout, "%s\n", msg);
    fflush(stdout);
}

static void usage(void)
{
    fprintf(stderr,
            "usage:\n"
            "  catanet-train train --data DIR [--data DIR...] [--val DIR...] [options]\n"
            "  catanet-train resume CKPT [--iters N] [--threads T] [--batch B --patch P] [--new-data] [--quiet]\n"
            "                            [--device cpu|cuda] [--time-limit S] [--data DIR.. --val DIR..]\n"
            "  catanet-train export CKPT OUT.safetensors\n"
            "  catanet-train grad -m MODEL --input X.npy --target Y.npy --out G.safetensors [--first-step]\n"
            "  catanet-train bench [--batch B] [--patch P] [--steps N] [--device cpu|cuda] [arch options]\n"
            "  catanet-train prune|extract|distill (run one without options for its usage)\n"
            "options: --scale S (2)  --arch L | --dim D --qk-dim Q --heads H --mlp-dim M --groups K\n"
            "  --tokens a,b,.. --group-size a,b,.. --patch-size a,b,.. (per group, repeated cyclically)\n"
            "  --from MODEL (initial weights)  --batch B (16)  --patch P (LR side, 64)  --iters N (800000)\n"
            "  --lr X (2e-4)  --milestones a,b,.. (300k,500k,650k,700k,750k)  --gamma G (0.5)  --clip X (off)\n"
            "  --seed N (3407)  --threads T  --val-every N (2500)  --ckpt PATH  --ckpt-every N  --ckpt-secs S (600)\n"
            "  --log CSV  --max-bad K (5)  --cache DIR  --quiet  --config FILE (lines of 'option value')\n"
            "  --device cpu|cuda (train, resume, bench)  --time-limit S (stop with a checkpoint after S seconds)\n"
            "resume: --data/--val on its command line replace the checkpoint's lists (with --new-data when the\n"
            "  image set changes)\n");
    exit(2);
}

static int parse_list(const char *s, int64_t *out, int max)
{
    int n = 0;
    while (*s && n < max) {
        char *e;
        double v = strtod(s, &e);
        if (e == s)
            die("bad number list '%s'", s);
        if (*e == 'k' || *e == 'K') {
            v *= 1000;
            e++;
        }
        out[n++] = (int64_t)v;
        s = *e == ',' ? e + 1 : e;
    }
    return n;
}

typedef struct ArchOpts {
    int scale, dim, qk, heads, mlp, groups, set;
    int64_t tokens[64], gsz[64], psz[64];
    int nt, ng, np;
} ArchOpts;

static void apply_arch(const ArchOpts *o, CatanetModelInfo *a)
{
    catanet_arch_default(a, o->scale ? o->scale : 2);
    if (o->dim)
        a->dim = o->dim;
    if (o->qk)
        a->qk_dim = o->qk;
    if (o->heads)
        a->heads = o->heads;
    if (o->mlp)
        a->mlp_dim = o->mlp;
    if (o->groups)
        a->num_groups = o->groups;
    for (int i = 0; i < a->num_groups; i++) {
        if (o->nt)
            a->groups[i].num_tokens = (int)o->tokens[i % o->nt];
        if (o->ng)
            a->groups[i].group_size = (int)o->gsz[i % o->ng];
        if (o->np)
            a->groups[i].patch_size = (int)o->psz[i % o->np];
    }
    char err[256];
    if (catanet_arch_validate(a, err, sizeof(err)) < 0)
        die("%s", err);
}

static void defaults(TrainCfg *c)
{
    memset(c, 0, sizeof(*c));
    c->batch = 16;
    c->patch = 64;
    c->iters = 800000;
    c->lr = 2e-4;
    c->gamma = 0.5;
    int64_t ms[] = { 300000, 500000, 650000, 700000, 750000 };
    memcpy(c->milestones, ms, sizeof(ms));
    c->n_milestones = 5;
    c->seed = 3407;
    c->val_every = 2500;
    c->ckpt_secs = 600;
    c->max_bad = 5;
}

/* one option (name without dashes, value); returns 1 when it took the value */
static int set_opt(TrainCfg *c, ArchOpts *ao, const char *k, const char *v, int *extra_flag)
{
#define NEED() do { if (!v) die("--%s needs a value", k); } while (0)
    if (!strcmp(k, "quiet")) {
        c->quiet = 1;
        return 0;
    }
    if (!strcmp(k, "new-data")) {
        c->new_data = 1;
        return 0;
    }
    if (!strcmp(k, "first-step")) {
        *extra_flag = 1;
        return 0;
    }
    NEED();
    if (!strcmp(k, "data") && c->n_data < MAX_DIRS)
        c->data[c->n_data++] = v;
    else if (!strcmp(k, "val") && c->n_val < MAX_DIRS)
        c->val[c->n_val++] = v;
    else if (!strcmp(k, "scale"))
        ao->scale = atoi(v);
    else if (!strcmp(k, "arch")) {
        if (strcmp(v, "L"))
            die("--arch: only L (the official CATANet-L); use --dim/--groups/... for others");
    } else if (!strcmp(k, "dim"))
        ao->dim = atoi(v);
    else if (!strcmp(k, "qk-dim"))
        ao->qk = atoi(v);
    else if (!strcmp(k, "heads"))
        ao->heads = atoi(v);
    else if (!strcmp(k, "mlp-dim"))
        ao->mlp = atoi(v);
    else if (!strcmp(k, "groups"))
        ao->groups = atoi(v);
    else if (!strcmp(k, "tokens"))
        ao->nt = parse_list(v, ao->tokens, 64);
    else if (!strcmp(k, "group-size"))
        ao->ng = parse_list(v, ao->gsz, 64);
    else if (!strcmp(k, "patch-size"))
        ao->np = parse_list(v, ao->psz, 64);
    else if (!strcmp(k, "from"))
        c->from = v;
    else if (!strcmp(k, "batch"))
        c->batch = atoi(v);
    else if (!strcmp(k, "patch"))
        c->patch = atoi(v);
    else if (!strcmp(k, "iters") || !strcmp(k, "steps"))
        c->iters = (int64_t)strtod(v, NULL);
    else if (!strcmp(k, "lr"))
        c->lr = strtod(v, NULL);
    else if (!strcmp(k, "milestones"))
        c->n_milestones = parse_list(v, c->milestones, MAX_MILESTONES);
    else if (!strcmp(k, "gamma"))
        c->gamma = strtod(v, NULL);
    else if (!strcmp(k, "clip"))
        c->clip = strtod(v, NULL);
    else if (!strcmp(k, "seed"))
        c->seed = strtoull(v, NULL, 10);
    else if (!strcmp(k, "threads"))
        c->threads = atoi(v);
    else if (!strcmp(k, "device")) {
        if (strcmp(v, "cpu") && strcmp(v, "cuda"))
            die("--device cpu|cuda, not '%s'", v);
        c->cuda = !strcmp(v, "cuda");
    }
    else if (!strcmp(k, "val-every"))
        c->val_every = (int64_t)strtod(v, NULL);
    else if (!strcmp(k, "ckpt"))
        c->ckpt = v;
    else if (!strcmp(k, "ckpt-every"))
        c->ckpt_every = (int64_t)strtod(v, NULL);
    else if (!strcmp(k, "ckpt-secs"))
        c->ckpt_secs = strtod(v, NULL);
    else if (!strcmp(k, "time-limit"))
        c->time_limit = strtod(v, NULL);
    else if (!strcmp(k, "log"))
        c->log = v;
    else if (!strcmp(k, "max-bad"))
        c->max_bad = atoi(v);
    else if (!strcmp(k, "cache"))
        c->cache = v;
    else
        die("unknown option --%s", k);
    ao->set = 1;
    return 1;
#undef NEED
}

static void load_config_file(TrainCfg *c, ArchOpts *ao, const char *path, int *flag)
{
    FILE *f = fopen(path, "r");
    if (!f)
        die("cannot open %s: %s", path, strerror(errno));
    char line[1024];
    while (fgets(line, sizeof(line), f)) {
        char *p = line + strspn(line, " \t");
        if (*p == '#' || *p == '\n' || !*p)
            continue;
        p[strcspn(p, "\r\n")] = 0;
        char *k = p, *v = p + strcspn(p, " \t=");
        if (*v) {
            *v++ = 0;
            v += strspn(v, " \t=");
        }
        while (*k == '-')
            k++;
        set_opt(c, ao, k, *v ? strdup(v) : NULL, flag);
    }
    fclose(f);
}

static void parse_opts(int argc, char **argv, int first, TrainCfg *c, ArchOpts *ao, const char **positional,
                       int npos, int *flag, const char **model, const char **in, const char **tgt, const char **out)
{
    int pos = 0;
    for (int i = first; i < argc; i++) {
        const char *a = argv[i];
        if (a[0] != '-' || a[1] != '-') {
            if (!strcmp(a, "-m") && i + 1 < argc) {
                *model = argv[++i];
                continue;
            }
            if (pos >= npos)
                die("unexpected argument '%s'", a);
            positional[pos++] = a;
            continue;
        }
        const char *k = a + 2, *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(k, "help"))
            usage();
        if (!strcmp(k, "config")) {
            if (!v)
                die("--config needs a file");
            load_config_file(c, ao, v, flag);
            i++;
        } else if (!strcmp(k, "model") && v) {
            *model = v;
            i++;
        } else if (!strcmp(k, "input") && v) {
            *in = v;
            i++;
        } else if (!strcmp(k, "target") && v) {
            *tgt = v;
            i++;
        } else if (!strcmp(k, "out") && v) {
            *out = v;
            i++;
        } else
            i += set_opt(c, ao, k, v, flag);
    }
    if (pos < npos)
        usage();
}

/* ---- commands ---- */

static int cmd_grad(const char *model_path, const char *in, const char *tgt, const char *out, int first_step,
                    int threads)
{
    char err[1024];
    CatanetModel *m, *g;
    if (!model_path || !in || !tgt || !out)
        usage();
    if (catanet_model_load(&m, model_path, err, sizeof(err)) < 0)
        die("%s", err);
    g = new_like(m);
    if (first_step)
        for (int i = 0; i < m->info.num_groups; i++)
            m->initted[i] = 0;
    int64_t sx[8], st[8];
    int nx, nt;
    float *x = read_npy(in, sx, &nx), *t = read_npy(tgt, st, &nt);
    int s = m->info.upscale;
    if (nx != 4 || sx[1] != 3 || nt != 4 || st[0] != sx[0] || st[1] != 3 || st[2] != sx[2] * s || st[3] != sx[3] * s)
        die("need input [B,3,H,W] and target [B,3,%dH,%dW]", s, s);
    CatanetTrainPlan *p;
    if (catanet_train_plan_create(&p, m, (int)sx[0], (int)sx[2], (int)sx[3], threads, 0, err, sizeof(err)) < 0)
        die("%s", err);
    catanet_model_zero(g);
    float loss = (float)catanet_train_forward(p, x, t);
    catanet_train_backward(p, t, g);
    int n = 2 + m->n_tensors;
    CatanetStEntry *e = calloc(n, sizeof(*e));
    char (*names)[CATANET_NAME_MAX + 16] = calloc(n, CATANET_NAME_MAX + 16);
    e[0] = (CatanetStEntry){ "loss", CATANET_DT_F32, 1, { 1 }, &loss };
    e[1] = (CatanetStEntry){ "output", CATANET_DT_F32, 4, { st[0], 3, st[2], st[3] }, p->out };
    int k = 2;
    for (int i = 0; i < m->n_tensors; i++) {
        const CatanetTensorDef *d = &m->tensors[i];
        snprintf(names[k], sizeof(names[k]), "%s.%s", d->is_buffer ? "means_after" : "grad", d->name);
        e[k].name = names[k];
        e[k].dtype = CATANET_DT_F32;
        e[k].ndim = d->ndim;
        for (int j = 0; j < d->ndim; j++)
            e[k].shape[j] = d->shape[j];
        e[k].data = (d->is_buffer ? m->arena : g->arena) + d->offset;
        k++;
    }
    const char *mk[] = { "mode" }, *mv[] = { "train" };
    if (catanet_st_write(out, e, k, mk, mv, 1, err, sizeof(err)) < 0)
        die("%s", err);
    printf("loss %.7f\n", loss);
    free(e);
    free(names);
    free(x);
    free(t);
    catanet_train_plan_free(p);
    catanet_model_free(m);
    catanet_model_free(g);
    return 0;
}

/* bench: one random batch (B x 3 x P x P LR, its s-times HR) from the seed, for the CPU and CUDA benches */
static void bench_batch(const TrainCfg *c, int s, float **lr, float **hr)
{
    size_t nlr = (size_t)c->batch * 3 * c->patch * c->patch, nhr = nlr * s * s;
    *lr = malloc(sizeof(float) * nlr);
    *hr = malloc(sizeof(float) * nhr);
    if (!*lr || !*hr)
        die("bench: out of memory");
    uint64_t r = c->seed;
    for (size_t i = 0; i < nlr; i++)
        (*lr)[i] = (float)rng_uniform(&r);
    for (size_t i = 0; i < nhr; i++)
        (*hr)[i] = (float)rng_uniform(&r);
}

/* bench --device cuda: the same steps on the GPU (training/model_train_cuda.c), timed after a sync */
static int cmd_bench_cuda(TrainCfg *c, const CatanetModelInfo *info, CatanetModel *m)
{
    char err[512];
    int B = c->batch, P = c->patch, s = info->upscale;
    CatanetTrainCuda *p;
    if (catanet_train_cuda_create(&p, m, B, P, P, err, sizeof(err)) < 0)
        die("%s", err);
    float *lr, *hr;
    bench_batch(c, s, &lr, &hr);
    int steps = c->iters > 0 && c->iters < 1000 ? (int)c->iters : 5;
    double tf = 0, tb = 0, t_all0 = 0, loss = 0;
    for (int it = 0; it <= steps; it++) { /* step 0 warms up */
        double t0 = now_s();
        if (catanet_train_cuda_zero_grads(p) < 0 || catanet_train_cuda_forward(p, lr, hr, NULL, &loss) < 0)
            die("bench --device cuda: %s", catanet_train_cuda_error(p));
        double t1 = now_s();
        if (catanet_train_cuda_backward(p) < 0 || catanet_train_cuda_adam(p, 2e-4f, 0.9f, 0.99f, 1e-8f, it + 1, 1.0f) < 0 ||
            catanet_train_cuda_sync(p) < 0)
            die("bench --device cuda: %s", catanet_train_cuda_error(p));
        double t2 = now_s();
        if (it == 0) {
            t_all0 = now_s();
            continue;
        }
        tf += t1 - t0;
        tb += t2 - t1;
    }
    double total = now_s() - t_all0;
    printf("bench: x%d, %d groups, dim %d, batch %d of %dx%d LR, cuda (%s): %.3f s/step (forward %.3f, backward+adam "
           "%.3f), %.3f it/s; last loss %.5f\n",
           s, info->num_groups, info->dim, B, P, P, catanet_train_cuda_device(p), total / steps, tf / steps, tb / steps,
           steps / total, loss);
    catanet_train_cuda_free(p);
    free(lr);
    free(hr);
    catanet_model_free(m);
    return 0;
}

static int cmd_bench(TrainCfg *c, ArchOpts *ao)
{
    char err[512];
    CatanetModel *m, *g, *am, *av;
    CatanetModelInfo info;
    apply_arch(ao, &info);
    if (catanet_model_create(&m, &info, err, sizeof(err)) < 0)
        die("%s", err);
    catanet_train_init_weights(m, c->seed);
    if (c->cuda)
        return cmd_bench_cuda(c, &info, m);
    g = new_like(m);
    am = new_like(m);
    av = new_like(m);
    int B = c->batch, P = c->patch, s = info.upscale;
    CatanetTrainPlan *p;
    if (catanet_train_plan_create(&p, m, B, P, P, c->threads, 0, err, sizeof(err)) < 0)
        die("%s", err);
    float *lr, *hr;
    bench_batch(c, s, &lr, &hr);
    int steps = c->iters > 0 && c->iters < 1000 ? (int)c->iters : 5;
    double tf = 0, tb = 0, t_all0 = 0, c_all0 = 0;
    for (int it = 0; it <= steps; it++) { /* step 0 warms up */
        double t0 = now_s();
        catanet_model_zero(g);
        catanet_train_forward(p, lr, hr);
        double t1 = now_s();
        catanet_train_backward(p, hr, g);
        for (int i = 0; i < m->n_tensors; i++) {
            const CatanetTensorDef *d = &m->tensors[i];
            if (!d->is_buffer)
                catanet_adam_update_ref(d->numel, m->arena + d->offset, g->arena + d->offset, am->arena + d->offset,
                                        av->arena + d->offset, 2e-4f, 0.9f, 0.99f, 1e-8f, it + 1);
        }
        double t2 = now_s();
        if (it == 0) {
            t_all0 = now_s();
            c_all0 = cpu_s();
            continue;
        }
        tf += t1 - t0;
        tb += t2 - t1;
    }
    double total = now_s() - t_all0, cpu = cpu_s() - c_all0;
    printf("bench: x%d, %d groups, dim %d, batch %d of %dx%d LR, %d threads: %.3f s/step (forward %.3f, backward+adam %.3f), "
           "%.3f it/s; CPU %.3f s/step (all threads)\n",
           s, info.num_groups, info.dim, B, P, P, p->cpu.threads, total / steps, tf / steps, tb / steps, steps / total,
           cpu / steps);
    catanet_train_plan_free(p);
    free(lr);
    free(hr);
    catanet_model_free(m);
    catanet_model_free(g);
    catanet_model_free(am);
    catanet_model_free(av);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        usage();
    const char *cmd = argv[1];
    TrainCfg cfg;
    ArchOpts ao = { .scale = 0 }; /* 0: not given (x2, or the --from model's scale) */
    defaults(&cfg);
    cfg.t_start = now_s(); /* --time-limit counts the data loading and the device setup too */
    const char *pos[2] = { 0 }, *model = NULL, *in = NULL, *tgt = NULL, *out = NULL;
    int flag = 0;
    char err[1024];
    if (!strcmp(cmd, "prune") || !strcmp(cmd, "extract") || !strcmp(cmd, "distill")) /* training/prune.c, distill.c */
        return (!strcmp(cmd, "prune") ? catanet_prune_main : !strcmp(cmd, "extract") ? catanet_extract_main
                : catanet_distill_main)(argc - 1, argv + 1, kd_log, NULL) < 0;
    if (!strcmp(cmd, "grad")) {
        parse_opts(argc, argv, 2, &cfg, &ao, pos, 0, &flag, &model, &in, &tgt, &out);
        return cmd_grad(model, in, tgt, out, flag, cfg.threads);
    }
    if (!strcmp(cmd, "bench")) {
        cfg.batch = 4;
        cfg.patch = 32;
        cfg.iters = 5;
        parse_opts(argc, argv, 2, &cfg, &ao, pos, 0, &flag, &model, &in, &tgt, &out);
        return cmd_bench(&cfg, &ao);
    }
    if (!strcmp(cmd, "export")) {
        parse_opts(argc, argv, 2, &cfg, &ao, pos, 2, &flag, &model, &in, &tgt, &out);
        CatanetModel *m;
        if (catanet_model_load(&m, pos[0], err, sizeof(err)) < 0)
            die("%s", err);
        CatanetSt *st;
        char step[64] = "", prov[CATANET_KD_PROV_KEYS][PROV_MAX] = { "" };
        TrainCfg tc = cfg;
        if (catanet_st_open(&st, pos[0], err, sizeof(err)) == 0) {
            const char *sv = catanet_st_meta(st, "step"), *cj = catanet_st_meta(st, "train_config");
            snprintf(step, sizeof(step), "%s", sv ? sv : "");
            prov_read(st, prov);
            if (cj)
                cfg_from_json(&tc, cj);
            catanet_st_close(st);
        }
        char *note = prov[CATANET_KD_PROV_NOTE];
        if (note[0] && step[0]) { /* a student trained further: the stage joins its note */
            size_t l = strlen(note);
            snprintf(note + l, PROV_MAX - l, "; then train --from it: %s iterations, batch %d of %d LR, lr %g",
                     step, tc.batch, tc.patch, tc.lr);
            for (int i = 0; i < tc.n_milestones && tc.milestones[i] < strtoll(step, NULL, 10); i++) {
                l = strlen(note);
                snprintf(note + l, PROV_MAX - l, ", x%g at %lld", tc.gamma, (long long)tc.milestones[i]);
            }
        }
        const char *k[1 + CATANET_KD_PROV_KEYS] = { "trained_steps" }, *v[1 + CATANET_KD_PROV_KEYS] = { step };
        int nk = step[0] ? 1 : 0;
        for (int p = 0; p < CATANET_KD_PROV_KEYS; p++)
            if (prov[p][0]) {
                k[nk] = catanet_kd_prov_keys[p];
                v[nk++] = prov[p];
            }
        if (catanet_model_save(m, pos[1], k, v, nk, err, sizeof(err)) < 0)
            die("%s", err);
        catanet_model_free(m);
        return 0;
    }
    TrainState ts;
    memset(&ts, 0, sizeof(ts));
    if (!strcmp(cmd, "resume")) {
        /* the checkpoint's config, then the command line on top (e.g. a longer --iters) */
        const char *ckpt = NULL;
        for (int i = 2; i < argc; i++)
            if (argv[i][0] != '-') {
                ckpt = argv[i];
                break;
            } else if (i + 1 < argc && strcmp(argv[i], "--quiet") && strcmp(argv[i], "--new-data"))
                i++;
        if (!ckpt)
            usage();
        load_ckpt(ckpt, &cfg, &ts);
        cfg.ckpt = ckpt;
        /* --data/--val on the command line replace the checkpoint's lists (another machine's paths) */
        TrainCfg saved = cfg;
        cfg.n_data = cfg.n_val = 0;
        parse_opts(argc, argv, 2, &cfg, &ao, pos, 1, &flag, &model, &in, &tgt, &out);
        if (!cfg.n_data) {
            cfg.n_data = saved.n_data;
            memcpy(cfg.data, saved.data, sizeof(cfg.data));
        }
        if (!cfg.n_val) {
            cfg.n_val = saved.n_val;
            memcpy(cfg.val, saved.val, sizeof(cfg.val));
        }
        fprintf(stderr, "catanet-train: resuming %s at step %lld of %lld\n", ckpt, (long long)ts.step,
                (long long)cfg.iters);
    } else if (!strcmp(cmd, "train")) {
        parse_opts(argc, argv, 2, &cfg, &ao, pos, 0, &flag, &model, &in, &tgt, &out);
        if (!cfg.n_data)
            die("train needs --data DIR");
        if (cfg.from) {
            if (catanet_model_load(&ts.model, cfg.from, err, sizeof(err)) < 0)
                die("%s", err);
            CatanetSt *st;
            if (catanet_st_open(&st, cfg.from, err, sizeof(err)) == 0) { /* a student's provenance */
                prov_read(st, ts.prov);
                catanet_st_close(st);
            }
            if (ao.scale && ao.scale != ts.model->info.upscale) {
                /* fine-tuning to another scale (the official x3/x4 recipe): everything but the upsampler
                 * comes from the model; x4's first upsampling stage from x2's upsampler (model.h) */
                CatanetModelInfo info = ts.model->info;
                info.upscale = ao.scale;
                CatanetModel *m;
                if (catanet_model_create(&m, &info, err, sizeof(err)) < 0)
                    die("--scale %d from %s: %s", ao.scale, cfg.from, err);
                catanet_train_init_weights(m, cfg.seed);
                int copied = catanet_model_copy_matching(m, ts.model);
                fprintf(stderr, "catanet-train: x%d from the x%d model %s: %d of %d tensors carried over\n", ao.scale,
                        ts.model->info.upscale, cfg.from, copied, m->n_tensors);
                catanet_model_free(ts.model);
                ts.model = m;
            }
        } else {
            apply_arch(&ao, &cfg.arch);
            if (catanet_model_create(&ts.model, &cfg.arch, err, sizeof(err)) < 0)
                die("%s", err);
            catanet_train_init_weights(ts.model, cfg.seed);
        }
        ts.grads = new_like(ts.model);
        ts.adam_m = new_like(ts.model);
        ts.adam_v = new_like(ts.model);
        if (cfg.ckpt && access(cfg.ckpt, F_OK) == 0)
            die("%s exists: use 'catanet-train resume %s' or remove it", cfg.ckpt, cfg.ckpt);
        fprintf(stderr, "catanet-train: %lld parameters, x%d, %d groups, batch %d of %dx%d LR patches, %lld iterations\n",
                (long long)ts.model->info.num_params, ts.model->info.upscale, ts.model->info.num_groups, cfg.batch,
                cfg.patch, cfg.patch, (long long)cfg.iters);
    } else
        usage();
    int ret = train_loop(&cfg, &ts);
    catanet_model_free(ts.model);
    catanet_model_free(ts.grads);
    catanet_model_free(ts.adam_m);
    catanet_model_free(ts.adam_v);
    if (g_stop) {
        signal(g_stop, SIG_DFL);
        raise(g_stop);
    }
    return ret;
}
