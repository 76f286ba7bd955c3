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
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <fcntl.h>
#include <float.h>
#include <dirent.h>
#include <spawn.h>
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
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "data.h"
#include "forward_cpu.h"
#include "metrics.h"
#include "model.h"
#include "model_train.h"
#include "model_train_cuda.h"
#include "ckpt.h"
#include "cli.h"
#include "distill.h"
#include "prune.h"
#include "safetensors.h"


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
        snprintf(err, es, "out of memory");
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
    char *arch = catanet_arch_to_json(&m->info), *cj = catanet_ckpt_config_json(cfg);
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
    int ret = arch && cj ? catanet_st_write(path, e, k, keys, vals, nk, err, es) : -1;
    if (!arch || !cj)
        snprintf(err, es, "out of memory");
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

/* the metadata of an opened checkpoint, validated (ckpt.c): the config into cfg, the state into ts */
static int read_ckpt_meta(const CatanetSt *st, TrainCfg *cfg, CkptProgress *p, char *err, size_t es)
{
    const char *meta[CKPT_META_N];
    for (int k = 0; k < CKPT_META_N; k++)
        meta[k] = catanet_st_meta(st, catanet_ckpt_meta_keys[k]);
    return catanet_ckpt_parse_meta(meta, cfg, p, err, es);
}

static void load_ckpt(const char *path, TrainCfg *cfg, TrainState *ts)
{
    char err[512];
    if (catanet_model_load(&ts->model, path, err, sizeof(err)) < 0)
        die("%s", err);
    CatanetSt *st;
    if (catanet_st_open(&st, path, err, sizeof(err)) < 0)
        die("%s", err);
    CkptProgress p;
    if (read_ckpt_meta(st, cfg, &p, err, sizeof(err)) < 0)
        die("%s: %s", path, err);
    cfg->arch = ts->model->info;
    ts->step = p.step;
    ts->adam_t = p.adam_t;
    ts->skipped = p.skipped;
    ts->elapsed = p.elapsed;
    snprintf(ts->data_state, sizeof(ts->data_state), "%s", p.data_state);
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
    /* a non-finite value would spread through Adam into every weight it touches, and be checkpointed */
    const char *bad = NULL;
    if (!catanet_ckpt_finite(ts->model, &bad))
        die("%s: weight tensor %s holds NaN or Inf: not resumable", path, bad);
    if (!catanet_ckpt_finite(ts->adam_m, &bad) || !catanet_ckpt_finite(ts->adam_v, &bad))
        die("%s: Adam moment of %s holds NaN or Inf: not resumable", path, bad);
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

/* The plot: gnuplot runs this fixed script, and the paths and set names reach it only as its
 * arguments (ARG1..ARGn, strings), never as text of a shell or of gnuplot code. ARG1 the loss log,
 * ARG2 the validation log, ARG3 the PNG, ARG4.. the validation sets' names. */
static const char plot_script[] =
    "set terminal png size 1000,600 noenhanced\n"
    "set output ARG3\n"
    "set datafile separator ','\n"
    "set key noenhanced\n"
    "set xlabel 'iteration'\n"
    "set ylabel 'L1 loss'\n"
    "set logscale y\n"
    "if (ARGC < 4) {\n"
    "  plot ARG1 using 1:2 every ::1 with lines title 'loss'\n"
    "} else {\n"
    "  set y2label 'val PSNR (dB)'\n"
    "  set y2tics\n"
    "  plot ARG1 using 1:2 every ::1 with lines title 'loss', \\\n"
    "    for [i=4:ARGC] ARG2 using 1:(strcol(2) eq value(sprintf('ARG%d', i)) ? $3 : NaN) axes x1y2 \\\n"
    "    with points title value(sprintf('ARG%d', i)).' PSNR'\n"
    "}\n";
extern char **environ;
#define PLOT_MAX_SETS 6 /* gnuplot -c passes at most 9 arguments */

/* gnuplot reads a file name that starts with '<' as a command to run, and an output that starts
 * with '|' as one to pipe to; "-" and "" are special too: a relative path goes as ./PATH */
static void plot_path(char *out, size_t n, const char *path, const char *suffix)
{
    snprintf(out, n, "%s%s%s", path[0] == '/' ? "" : "./", path, suffix);
}

/* loss and one validation PSNR curve per set, with gnuplot when it is installed */
static void plot(const TrainCfg *cfg, CatanetEvalSet *const *vs, const int *validated)
{
    if (!cfg->log)
        return;
    const char *tmpdir = getenv("TMPDIR");
    if (!tmpdir || !*tmpdir || strlen(tmpdir) > 3000)
        tmpdir = "/tmp";
    char spath[4096];
    snprintf(spath, sizeof(spath), "%s/catanet-plot-XXXXXX", tmpdir);
    int fd = mkstemp(spath);
    if (fd < 0) {
        fprintf(stderr, "catanet-train: plot skipped: cannot create %s: %s\n", spath, strerror(errno));
        return;
    }
    size_t len = sizeof(plot_script) - 1;
    int wrote = write(fd, plot_script, len) == (ssize_t)len;
    close(fd);
    char logp[4200], valp[4200], png[4200];
    plot_path(logp, sizeof(logp), cfg->log, "");
    plot_path(valp, sizeof(valp), cfg->log, ".val.csv");
    plot_path(png, sizeof(png), cfg->log, ".png");
    char *argv[7 + PLOT_MAX_SETS] = { "gnuplot", "-c", spath, logp, valp, png };
    int argc = 6;
    for (int i = 0; i < cfg->n_val && argc < 6 + PLOT_MAX_SETS; i++)
        if (vs[i] && validated[i]) /* a set without a point would fail the plot */
            argv[argc++] = vs[i]->name;
    argv[argc] = NULL;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    pid_t pid;
    int err = wrote ? posix_spawnp(&pid, "gnuplot", &fa, NULL, argv, environ) : EIO;
    posix_spawn_file_actions_destroy(&fa);
    int status = 0;
    if (err == 0)
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
            ;
    unlink(spath);
    if (err == ENOENT)
        return; /* no gnuplot: no plot */
    if (err)
        fprintf(stderr, "catanet-train: plot skipped: cannot run gnuplot: %s\n", strerror(err));
    else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fprintf(stderr, "catanet-train: gnuplot failed (plot skipped)\n");
}

/* 1 when the eval-mode output of the model on the planar image is finite, 0 when not, -1 when it
 * could not run (the plan's error in err) */
static int output_finite(const CatanetModel *m, const float *img, int w, int h, int threads, char *err, size_t es)
{
    CatanetCpuPlan *p;
    if (catanet_cpu_plan_create(&p, m, w, h, threads, err, es) < 0)
        return -1;
    size_t n = (size_t)3 * w * h * m->info.upscale * m->info.upscale;
    float *out = malloc(sizeof(float) * n);
    if (!out) {
        catanet_cpu_plan_free(p);
        snprintf(err, es, "out of memory");
        return -1;
    }
    catanet_cpu_forward(p, img, out);
    int ok = 1;
    for (size_t i = 0; i < n && ok; i++)
        ok = isfinite(out[i]);
    free(out);
    catanet_cpu_plan_free(p);
    return ok;
}

/* Whether the training state is fit to be kept: every weight, buffer and Adam moment finite, and the
 * network's output on a probe patch (the first LR patch of the last batch) finite, for weights that
 * have grown huge stay finite while giving NaN. NULL when it is, else what is wrong (in buf). */
static const char *state_broken(const TrainState *ts, const float *probe, int patch, int threads, char *buf,
                                size_t n)
{
    const char *bad;
    if (!catanet_ckpt_finite(ts->model, &bad))
        snprintf(buf, n, "weight tensor %s holds NaN or Inf", bad);
    else if (!catanet_ckpt_finite(ts->adam_m, &bad) || !catanet_ckpt_finite(ts->adam_v, &bad))
        snprintf(buf, n, "an Adam moment of %s holds NaN or Inf", bad);
    else {
        char err[256];
        int r = output_finite(ts->model, probe, patch, patch, threads, err, sizeof(err));
        if (r == 1)
            return NULL;
        if (r == 0)
            snprintf(buf, n, "the network's output on a training patch holds NaN or Inf");
        else /* the patch is too small for the eval-mode forward: only the finite checks above */
            return NULL;
    }
    return buf;
}

/* what is on disk after a stop */
static const char *kept_msg(const TrainCfg *cfg, int64_t saved_step, char *buf, size_t n)
{
    if (!cfg->ckpt)
        snprintf(buf, n, "no checkpoint (no --ckpt)");
    else if (saved_step < 0)
        snprintf(buf, n, "no checkpoint was written");
    else
        snprintf(buf, n, "the checkpoint %s of step %lld is kept", cfg->ckpt, (long long)saved_step);
    return buf;
}

#define LOG_HEADER "step,loss,lr,elapsed_s\n"
#define VLOG_HEADER "step,set,psnr,ssim\n"

/* A log of the run. `train` starts its logs afresh (an old run's log at the same path would read as
 * this run's); `resume` appends. A path from the command line is the user's to choose. A path from a
 * checkpoint is only a claim of the file that wrote it: the run appends to it only if it is still a
 * regular file (not a symbolic link) that starts with this log's header, so a crafted checkpoint
 * cannot make the run write into any other file; the validation log beside an accepted log may be
 * created (sibling, may_create). Otherwise the run logs nothing, and says so. */
static FILE *open_log(const char *path, const char *header, const TrainCfg *cfg, int may_create)
{
    size_t hl = strlen(header);
    int fd;
    if (!cfg->resumed)
        fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_APPEND, 0644);
    else if (!cfg->log_from_ckpt)
        fd = open(path, O_RDWR | O_CREAT | O_APPEND, 0644);
    else {
        fd = open(path, O_RDWR | O_APPEND | O_NOFOLLOW);
        if (fd < 0 && errno == ENOENT && may_create)
            fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_APPEND | O_NOFOLLOW, 0644);
        char head[64] = "";
        struct stat sb;
        if (fd >= 0 && (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode) ||
                        (sb.st_size > 0 && (pread(fd, head, hl, 0) != (ssize_t)hl || memcmp(head, header, hl))) ||
                        (sb.st_size == 0 && !may_create))) {
            close(fd);
            fprintf(stderr, "catanet-train: the checkpoint's log path %s is not this run's log: not logging "
                            "(give --log to log)\n", path);
            return NULL;
        }
    }
    if (fd < 0) {
        if (cfg->log_from_ckpt)
            fprintf(stderr, "catanet-train: the checkpoint's log %s: %s: not logging (give --log to log)\n", path,
                    strerror(errno));
        else
            die("cannot open the log %s: %s", path, strerror(errno));
        return NULL;
    }
    FILE *f = fdopen(fd, "a+");
    if (!f)
        die("cannot open the log %s: %s", path, strerror(errno));
    if (lseek(fd, 0, SEEK_END) == 0)
        fputs(header, f);
    return f;
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
    int validated[MAX_DIRS] = { 0 }; /* the sets validated in this run */
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
        char vpath[4200];
        snprintf(vpath, sizeof(vpath), "%s.val.csv", cfg->log);
        log = open_log(cfg->log, LOG_HEADER, cfg, 0);
        vlog = log ? open_log(vpath, VLOG_HEADER, cfg, 1) : NULL;
        if (!vlog && log) {
            fclose(log);
            log = NULL;
        }
        if (!log)
            cfg->log = NULL; /* no plot either */
    }
    if (!lr || !hr || !means_save)
        die("out of memory");
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    double t0 = now_s(), last_ckpt = t0, last_print = 0, base_elapsed = ts->elapsed, loss_avg = NAN;
    int64_t start_step = ts->step;
    /* the step of the checkpoint on disk (-1: none) and of the last state found sound */
    int64_t saved_step = cfg->resumed ? ts->step : -1, verified_step = ts->step;
    char kept[4300];
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
                fprintf(stderr, "catanet-train: %d non-finite steps in a row: stopping; %s\n", cfg->max_bad,
                        kept_msg(cfg, saved_step, kept, sizeof(kept)));
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
                validated[i] = 1;
                ts->last_ssim[i] = r.ssim;
                ts->have_val = 1;
                if (vlog) {
                    fprintf(vlog, "%lld,%s,%.4f,%.5f\n", (long long)ts->step, vs[i]->name, r.psnr, r.ssim);
                    fflush(vlog);
                }
            }
            if (log)
                fflush(log);
            plot(cfg, vs, validated);
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
            /* a diverged state is never saved over the last good one */
            const char *why = state_broken(ts, lr, cfg->patch, cfg->threads, err, sizeof(err));
            if (why) {
                fprintf(stderr, "\ncatanet-train: step %lld: the training diverged (%s): stopping; %s\n",
                        (long long)ts->step, why, kept_msg(cfg, saved_step, kept, sizeof(kept)));
                ret = 2;
                break;
            }
            verified_step = ts->step;
            catanet_data_get_state(data, ts->data_state, sizeof(ts->data_state));
            /* a run whose checkpoints cannot be written would lose all its work at the end */
            if (save_ckpt(cfg->ckpt, cfg, ts, err, sizeof(err)) < 0)
                die("step %lld: checkpoint %s not written: %s; %s", (long long)ts->step, cfg->ckpt, err,
                    kept_msg(cfg, saved_step, kept, sizeof(kept)));
            saved_step = ts->step;
            last_ckpt = t;
        }
    }
    /* a run that ends without a checkpoint of its last step still says whether its state is sound */
    if (ret == 0 && verified_step != ts->step && ts->step > start_step) {
        if (dev && (catanet_train_cuda_get_weights(dev, m) < 0 ||
                    catanet_train_cuda_get_adam(dev, ts->adam_m, ts->adam_v) < 0))
            die("--device cuda: reading the state back: %s", catanet_train_cuda_error(dev));
        const char *why = state_broken(ts, lr, cfg->patch, cfg->threads, err, sizeof(err));
        if (why) {
            fprintf(stderr, "\ncatanet-train: step %lld: the training diverged (%s); %s\n", (long long)ts->step, why,
                    kept_msg(cfg, saved_step, kept, sizeof(kept)));
            ret = 2;
        }
    }
    if (!cfg->quiet)
        fprintf(stderr, "\n");
    if (g_stop || timed_out)
        fprintf(stderr, "catanet-train: stopped by %s at step %lld%s\n", g_stop ? "signal" : "--time-limit",
                (long long)ts->step, saved_step == ts->step ? " (checkpoint written)" : "");
    double run_s = now_s() - t0;
    fprintf(stderr, "catanet-train: %lld steps in %.1f s, %.3f it/s, batch %d of %dx%d, on %s\n",
            (long long)(ts->step - start_step), run_s, run_s > 0 ? (ts->step - start_step) / run_s : 0.0, cfg->batch,
            cfg->patch, cfg->patch, dev ? catanet_train_cuda_device(dev) : "the CPU");
    if (log)
        fclose(log);
    if (vlog)
        fclose(vlog);
    plot(cfg, vs, validated);
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

static void help_log(void *opaque, int level, const char *msg)
{
    (void)opaque;
    (void)level;
    printf("%s\n", msg);
}

static void usage(FILE *f, int code)
{
    fprintf(f,
            "usage:\n"
            "  catanet-train train --data DIR [--data DIR...] [--val DIR...] [options]\n"
            "  catanet-train resume CKPT [--iters N] [--threads T] [--batch B --patch P] [--new-data] [--quiet]\n"
            "                            [--device cpu|cuda] [--time-limit S] [--log CSV] [--data DIR.. --val DIR..]\n"
            "  catanet-train export CKPT OUT.safetensors\n"
            "  catanet-train grad -m MODEL --input X.npy --target Y.npy --out G.safetensors [--first-step]\n"
            "  catanet-train bench [--batch B] [--patch P] [--steps N] [--device cpu|cuda] [arch options]\n"
            "  catanet-train prune|extract|distill (run one without options for its usage)\n"
            "  catanet-train --help | --version\n"
            "options: --scale S (2)  --arch L | --dim D --qk-dim Q --heads H --mlp-dim M --groups K\n"
            "  --tokens a,b,.. --group-size a,b,.. --patch-size a,b,.. (per group, repeated cyclically)\n"
            "  --from MODEL (initial weights)  --batch B (16)  --patch P (LR side, 64)  --iters N (800000)\n"
            "  --lr X (2e-4)  --milestones a,b,.. (300k,500k,650k,700k,750k)  --gamma G (0.5)  --clip X (off)\n"
            "  --seed N (3407)  --threads T (0: all)  --val-every N (2500)  --ckpt PATH  --ckpt-every N\n"
            "  --ckpt-secs S (600)  --log CSV  --max-bad K (5)  --cache DIR  --quiet\n"
            "  --config FILE (lines of 'option value')  --device cpu|cuda (train, resume, bench)\n"
            "  --time-limit S (stop with a checkpoint after S seconds)\n"
            "resume: --data/--val on its command line replace the checkpoint's lists (with --new-data when the\n"
            "  image set changes); --log replaces the checkpoint's log path\n"
            "exit status: 0 done, 1 error (a checkpoint that could not be written included), 2 bad usage or\n"
            "  a diverged run (non-finite state or --max-bad non-finite steps in a row); a run stopped by a\n"
            "  signal ends by that signal\n");
    exit(code);
}

/* a bad option value: cli.h has said why */
#define OPT_CHECK(x) do { if ((x) < 0) exit(2); } while (0)

/* "a,b,c" (each with an optional k for thousands), every entry in [lo, hi]; "" is an empty list */
static int parse_list(const char *opt, const char *s, int64_t lo, int64_t hi, int64_t *out, int max)
{
    int n = 0;
    while (*s) {
        char item[64];
        size_t l = strcspn(s, ",");
        if (n >= max) {
            fprintf(stderr, "catanet-train: %s: more than %d entries\n", opt, max);
            exit(2);
        }
        snprintf(item, sizeof(item), "%.*s", (int)(l < sizeof(item) ? l : sizeof(item) - 1), s);
        int64_t mult = 1, v;
        if (l > 1 && l < sizeof(item) && (item[l - 1] == 'k' || item[l - 1] == 'K')) {
            mult = 1000;
            item[l - 1] = 0;
        }
        OPT_CHECK(cli_int64("catanet-train", opt, l < sizeof(item) ? item : s, lo, hi / mult, &v));
        out[n++] = v * mult;
        s += l;
        if (*s == ',' && !*++s) { /* a trailing comma */
            fprintf(stderr, "catanet-train: %s: empty entry\n", opt);
            exit(2);
        }
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

/* one option (name without dashes, value: NULL for a flag) of the command line or a --config file */
static void set_opt(TrainCfg *c, ArchOpts *ao, const char *k, const char *v, int *extra_flag)
{
    static const char P[] = "catanet-train";
    char o[64];
    snprintf(o, sizeof(o), "--%s", k);
    int iv;
    int64_t lv;
    if (!strcmp(k, "quiet"))
        c->quiet = 1;
    else if (!strcmp(k, "new-data"))
        c->new_data = 1;
    else if (!strcmp(k, "first-step"))
        *extra_flag = 1;
    else if (!v) {
        fprintf(stderr, "%s: %s needs a value\n", P, o);
        exit(2);
    } else if (!strcmp(k, "data") || !strcmp(k, "val")) {
        int *n = k[0] == 'd' ? &c->n_data : &c->n_val;
        if (*n >= MAX_DIRS) {
            fprintf(stderr, "%s: %s: at most %d folders\n", P, o, MAX_DIRS);
            exit(2);
        }
        (k[0] == 'd' ? c->data : c->val)[(*n)++] = v;
    } else if (!strcmp(k, "scale"))
        OPT_CHECK(cli_int(P, o, v, 1, 4, &ao->scale));
    else if (!strcmp(k, "arch")) {
        if (strcmp(v, "L")) {
            fprintf(stderr, "%s: --arch: only L (the official CATANet-L); use --dim/--groups/... for others\n", P);
            exit(2);
        }
    } else if (!strcmp(k, "dim"))
        OPT_CHECK(cli_int(P, o, v, 1, 4096, &ao->dim));
    else if (!strcmp(k, "qk-dim"))
        OPT_CHECK(cli_int(P, o, v, 1, 4096, &ao->qk));
    else if (!strcmp(k, "heads"))
        OPT_CHECK(cli_int(P, o, v, 1, 4096, &ao->heads));
    else if (!strcmp(k, "mlp-dim"))
        OPT_CHECK(cli_int(P, o, v, 1, 65536, &ao->mlp));
    else if (!strcmp(k, "groups"))
        OPT_CHECK(cli_int(P, o, v, 1, CATANET_MAX_GROUPS, &ao->groups));
    else if (!strcmp(k, "tokens"))
        ao->nt = parse_list(o, v, 1, 65536, ao->tokens, 64);
    else if (!strcmp(k, "group-size"))
        ao->ng = parse_list(o, v, 1, 65536, ao->gsz, 64);
    else if (!strcmp(k, "patch-size"))
        ao->np = parse_list(o, v, 1, 65536, ao->psz, 64);
    else if (!strcmp(k, "from"))
        c->from = v;
    else if (!strcmp(k, "batch"))
        OPT_CHECK(cli_int(P, o, v, 1, TRAIN_MAX_BATCH, &c->batch));
    else if (!strcmp(k, "patch"))
        OPT_CHECK(cli_int(P, o, v, 1, TRAIN_MAX_PATCH, &c->patch));
    else if (!strcmp(k, "iters") || !strcmp(k, "steps")) /* 0: set up (data, device) and stop */
        OPT_CHECK(cli_int64(P, o, v, 0, TRAIN_MAX_STEPS, &c->iters));
    else if (!strcmp(k, "lr")) /* 0: no update at all (a control run) */
        OPT_CHECK(cli_double(P, o, v, 0, DBL_MAX, &c->lr));
    else if (!strcmp(k, "milestones"))
        c->n_milestones = parse_list(o, v, 0, TRAIN_MAX_STEPS, c->milestones, MAX_MILESTONES);
    else if (!strcmp(k, "gamma"))
        OPT_CHECK(cli_double(P, o, v, DBL_MIN, 1, &c->gamma));
    else if (!strcmp(k, "clip"))
        OPT_CHECK(cli_double(P, o, v, 0, DBL_MAX, &c->clip));
    else if (!strcmp(k, "seed")) {
        OPT_CHECK(cli_int64(P, o, v, 0, INT64_MAX, &lv));
        c->seed = (uint64_t)lv;
    } else if (!strcmp(k, "threads"))
        OPT_CHECK(cli_int(P, o, v, 0, TRAIN_MAX_THREADS, &c->threads));
    else if (!strcmp(k, "device")) {
        if (strcmp(v, "cpu") && strcmp(v, "cuda")) {
            fprintf(stderr, "%s: --device cpu|cuda, not '%s'\n", P, v);
            exit(2);
        }
        c->cuda = !strcmp(v, "cuda");
    } else if (!strcmp(k, "val-every"))
        OPT_CHECK(cli_int64(P, o, v, 0, TRAIN_MAX_STEPS, &c->val_every));
    else if (!strcmp(k, "ckpt"))
        c->ckpt = v;
    else if (!strcmp(k, "ckpt-every"))
        OPT_CHECK(cli_int64(P, o, v, 0, TRAIN_MAX_STEPS, &c->ckpt_every));
    else if (!strcmp(k, "ckpt-secs"))
        OPT_CHECK(cli_double(P, o, v, 0, TRAIN_MAX_SECONDS, &c->ckpt_secs));
    else if (!strcmp(k, "time-limit"))
        OPT_CHECK(cli_double(P, o, v, 0, TRAIN_MAX_SECONDS, &c->time_limit));
    else if (!strcmp(k, "log")) {
        c->log = v;
        c->log_from_ckpt = 0;
    } else if (!strcmp(k, "max-bad")) {
        OPT_CHECK(cli_int(P, o, v, 1, TRAIN_MAX_BAD, &iv));
        c->max_bad = iv;
    } else if (!strcmp(k, "cache"))
        c->cache = v;
    else {
        fprintf(stderr, "%s: unknown option %s\n", P, o);
        exit(2);
    }
    ao->set = 1;
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
        char *val = *v ? strdup(v) : NULL;
        if (*v && !val)
            die("out of memory");
        set_opt(c, ao, k, val, flag); /* the value lives as long as the program (cfg points at it) */
    }
    fclose(f);
}

/* a subcommand's command line, read by getopt_long; the options are applied in their order later
 * (resume first loads the checkpoint they override) */
#define MAX_OPTS 512
typedef struct Args {
    const char *k[MAX_OPTS], *v[MAX_OPTS];
    int n;
    const char *pos[4];
    int npos;
    const char *model, *in, *tgt, *out;
} Args;

static void parse_args(int argc, char **argv, Args *a)
{
    static const struct option lo[] = {
        { "data", 1, 0, 0 },       { "val", 1, 0, 0 },        { "scale", 1, 0, 0 },      { "arch", 1, 0, 0 },
        { "dim", 1, 0, 0 },        { "qk-dim", 1, 0, 0 },     { "heads", 1, 0, 0 },      { "mlp-dim", 1, 0, 0 },
        { "groups", 1, 0, 0 },     { "tokens", 1, 0, 0 },     { "group-size", 1, 0, 0 }, { "patch-size", 1, 0, 0 },
        { "from", 1, 0, 0 },       { "batch", 1, 0, 0 },      { "patch", 1, 0, 0 },      { "iters", 1, 0, 0 },
        { "steps", 1, 0, 0 },      { "lr", 1, 0, 0 },         { "milestones", 1, 0, 0 }, { "gamma", 1, 0, 0 },
        { "clip", 1, 0, 0 },       { "seed", 1, 0, 0 },       { "threads", 1, 0, 0 },    { "device", 1, 0, 0 },
        { "val-every", 1, 0, 0 },  { "ckpt", 1, 0, 0 },       { "ckpt-every", 1, 0, 0 }, { "ckpt-secs", 1, 0, 0 },
        { "time-limit", 1, 0, 0 }, { "log", 1, 0, 0 },        { "max-bad", 1, 0, 0 },    { "cache", 1, 0, 0 },
        { "config", 1, 0, 0 },     { "quiet", 0, 0, 0 },      { "new-data", 0, 0, 0 },   { "first-step", 0, 0, 0 },
        { "model", 1, 0, 'm' },    { "input", 1, 0, 'i' },    { "target", 1, 0, 't' },   { "out", 1, 0, 'o' },
        { "help", 0, 0, 'h' },     { "version", 0, 0, 'V' },  { 0, 0, 0, 0 }
    };
    memset(a, 0, sizeof(*a));
    optind = 1;
    int c, idx;
    while ((c = getopt_long(argc, argv, "m:h", lo, &idx)) != -1) {
        switch (c) {
        case 0:
            if (a->n >= MAX_OPTS)
                die("more than %d options", MAX_OPTS);
            a->k[a->n] = lo[idx].name;
            a->v[a->n++] = optarg;
            break;
        case 'm': a->model = optarg; break;
        case 'i': a->in = optarg; break;
        case 't': a->tgt = optarg; break;
        case 'o': a->out = optarg; break;
        case 'h': usage(stdout, 0); break;
        case 'V':
            cli_version("catanet-train");
            exit(0);
        default: /* getopt_long has named the option */
            fprintf(stderr, "catanet-train: see catanet-train --help\n");
            exit(2);
        }
    }
    for (; optind < argc; optind++) {
        if (a->npos >= (int)(sizeof(a->pos) / sizeof(a->pos[0])))
            die("unexpected argument '%s'", argv[optind]);
        a->pos[a->npos++] = argv[optind];
    }
}

static void apply_opts(const Args *a, TrainCfg *c, ArchOpts *ao, int *flag)
{
    for (int i = 0; i < a->n; i++)
        if (!strcmp(a->k[i], "config"))
            load_config_file(c, ao, a->v[i], flag);
        else
            set_opt(c, ao, a->k[i], a->v[i], flag);
}

/* the subcommand takes exactly npos arguments */
static void need_pos(const Args *a, const char *cmd, int npos)
{
    if (a->npos != npos) {
        fprintf(stderr, "catanet-train: %s takes %d argument%s, not %d (see catanet-train --help)\n", cmd, npos,
                npos == 1 ? "" : "s", a->npos);
        exit(2);
    }
}

/* A checkpoint write killed part-way leaves CKPT.tmpXXXXXX beside the checkpoint (catanet_st_write
 * writes there, then renames): a run on that checkpoint removes them when it starts. */
static void remove_stale_tmp(const char *ckpt)
{
    const char *slash = strrchr(ckpt, '/'), *base = slash ? slash + 1 : ckpt;
    char dir[4096];
    snprintf(dir, sizeof(dir), "%.*s", slash ? (int)(slash - ckpt) + 1 : 2, slash ? ckpt : "./");
    DIR *d = opendir(dir);
    if (!d)
        return;
    size_t bl = strlen(base);
    struct dirent *e;
    while ((e = readdir(d))) {
        const char *n = e->d_name;
        if (strlen(n) != bl + 10 || strncmp(n, base, bl) || strncmp(n + bl, ".tmp", 4))
            continue;
        int ok = 1;
        for (int i = 0; i < 6; i++)
            ok &= isalnum((unsigned char)n[bl + 4 + i]) != 0;
        char path[8400];
        struct stat sb;
        snprintf(path, sizeof(path), "%s%s", dir, n);
        if (ok && lstat(path, &sb) == 0 && S_ISREG(sb.st_mode)) {
            if (unlink(path) == 0)
                fprintf(stderr, "catanet-train: removed %s, left by a checkpoint write that was stopped\n", path);
            else
                fprintf(stderr, "catanet-train: cannot remove %s: %s\n", path, strerror(errno));
        }
    }
    closedir(d);
}

/* ---- commands ---- */

static int cmd_grad(const char *model_path, const char *in, const char *tgt, const char *out, int first_step,
                    int threads)
{
    char err[1024];
    CatanetModel *m, *g;
    if (!model_path || !in || !tgt || !out) {
        fprintf(stderr, "catanet-train: grad needs -m MODEL --input X.npy --target Y.npy --out G.safetensors\n");
        exit(2);
    }
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

/* export: the model of a checkpoint (or of any model file) for the engine; a checkpoint's metadata is
 * checked as resume checks it, and a model whose weights or output are not finite is not exported */
static int cmd_export(const char *in, const char *out, const TrainCfg *cfg)
{
    char err[1024];
    CatanetModel *m;
    if (catanet_model_load(&m, in, err, sizeof(err)) < 0)
        die("%s", err);
    CatanetSt *st;
    char step[64] = "", prov[CATANET_KD_PROV_KEYS][PROV_MAX] = { "" };
    TrainCfg tc = *cfg;
    int64_t nstep = 0;
    if (catanet_st_open(&st, in, err, sizeof(err)) == 0) {
        prov_read(st, prov);
        if (catanet_st_meta(st, "train_config") || catanet_st_meta(st, "step")) {
            CkptProgress p;
            if (read_ckpt_meta(st, &tc, &p, err, sizeof(err)) < 0)
                die("%s: %s", in, err);
            nstep = p.step;
            snprintf(step, sizeof(step), "%lld", (long long)nstep);
        }
        catanet_st_close(st);
    }
    const char *bad;
    if (!catanet_ckpt_finite(m, &bad))
        die("%s: tensor %s holds NaN or Inf: not exported", in, bad);
    /* weights grown huge are finite and still give NaN: the output of a probe image must be finite */
    int side = catanet_min_side(&m->info) > 16 ? catanet_min_side(&m->info) : 16;
    float *img = malloc(sizeof(float) * 3 * side * side);
    if (!img)
        die("out of memory");
    for (int i = 0; i < 3 * side * side; i++)
        img[i] = 0.5f + 0.4f * sinf(0.37f * i);
    int r = output_finite(m, img, side, side, cfg->threads ? cfg->threads : 1, err, sizeof(err)); /* a small image */
    free(img);
    if (r < 0)
        die("%s: cannot run the model: %s", in, err);
    if (!r)
        die("%s: the network's output holds NaN or Inf (the training diverged): not exported", in);
    char *note = prov[CATANET_KD_PROV_NOTE];
    if (note[0] && step[0]) { /* a student trained further: the stage joins its note */
        size_t l = strlen(note);
        snprintf(note + l, PROV_MAX - l, "; then train --from it: %s iterations, batch %d of %d LR, lr %g", step,
                 tc.batch, tc.patch, tc.lr);
        for (int i = 0; i < tc.n_milestones && tc.milestones[i] < nstep; i++) {
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
    if (catanet_model_save(m, out, k, v, nk, err, sizeof(err)) < 0)
        die("%s", err);
    catanet_model_free(m);
    catanet_ckpt_cfg_release(&tc);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        usage(stderr, 2);
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help"))
        usage(stdout, 0);
    if (!strcmp(cmd, "--version")) {
        cli_version("catanet-train");
        return 0;
    }
    TrainCfg cfg;
    ArchOpts ao = { .scale = 0 }; /* 0: not given (x2, or the --from model's scale) */
    defaults(&cfg);
    cfg.t_start = now_s(); /* --time-limit counts the data loading and the device setup too */
    int flag = 0;
    char err[1024];
    if (!strcmp(cmd, "prune") || !strcmp(cmd, "extract") || !strcmp(cmd, "distill")) { /* training/prune.c, distill.c */
        int (*sub)(int, char **, CatanetLogFn, void *) = !strcmp(cmd, "prune")     ? catanet_prune_main
                                                         : !strcmp(cmd, "extract") ? catanet_extract_main
                                                                                   : catanet_distill_main;
        for (int i = 2; i < argc; i++)
            if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
                /* the subcommand without options answers with its usage: printed to stdout */
                char *only[] = { argv[1], NULL };
                sub(1, only, help_log, NULL);
                return 0;
            }
        return sub(argc - 1, argv + 1, kd_log, NULL) < 0;
    }
    if (strcmp(cmd, "grad") && strcmp(cmd, "bench") && strcmp(cmd, "export") && strcmp(cmd, "resume") &&
        strcmp(cmd, "train")) {
        fprintf(stderr, "catanet-train: unknown command '%s' (see catanet-train --help)\n", cmd);
        return 2;
    }
    /* getopt_long over the subcommand's arguments, its messages under the program's name */
    char **av = calloc((size_t)argc, sizeof(*av));
    if (!av)
        die("out of memory");
    av[0] = "catanet-train";
    for (int i = 2; i < argc; i++)
        av[i - 1] = argv[i];
    Args args;
    parse_args(argc - 1, av, &args);
    free(av); /* args points at argv's strings, not into av */
    /* a run that meets a full disk must report it, not die of SIGXFSZ half-way through a write */
    signal(SIGXFSZ, SIG_IGN);
    if (!strcmp(cmd, "grad")) {
        need_pos(&args, cmd, 0);
        apply_opts(&args, &cfg, &ao, &flag);
        return cmd_grad(args.model, args.in, args.tgt, args.out, flag, cfg.threads);
    }
    if (!strcmp(cmd, "bench")) {
        cfg.batch = 4;
        cfg.patch = 32;
        cfg.iters = 5;
        need_pos(&args, cmd, 0);
        apply_opts(&args, &cfg, &ao, &flag);
        return cmd_bench(&cfg, &ao);
    }
    if (!strcmp(cmd, "export")) {
        need_pos(&args, cmd, 2);
        apply_opts(&args, &cfg, &ao, &flag);
        return cmd_export(args.pos[0], args.pos[1], &cfg);
    }
    TrainState ts;
    memset(&ts, 0, sizeof(ts));
    if (!strcmp(cmd, "resume")) {
        /* the checkpoint's config, then the command line on top (e.g. a longer --iters) */
        need_pos(&args, cmd, 1);
        const char *ckpt = args.pos[0];
        remove_stale_tmp(ckpt);
        load_ckpt(ckpt, &cfg, &ts);
        cfg.ckpt = ckpt;
        cfg.resumed = 1;
        cfg.log_from_ckpt = cfg.log != NULL; /* --log on the command line replaces it (set_opt) */
        /* --data/--val on the command line replace the checkpoint's lists (another machine's paths) */
        TrainCfg saved = cfg;
        cfg.n_data = cfg.n_val = 0;
        apply_opts(&args, &cfg, &ao, &flag);
        if (!cfg.n_data) {
            cfg.n_data = saved.n_data;
            memcpy(cfg.data, saved.data, sizeof(cfg.data));
        }
        if (!cfg.n_val) {
            cfg.n_val = saved.n_val;
            memcpy(cfg.val, saved.val, sizeof(cfg.val));
        }
        if (strcmp(cfg.ckpt, ckpt))
            die("resume writes its checkpoint %s: --ckpt does not apply", ckpt);
        fprintf(stderr, "catanet-train: resuming %s at step %lld of %lld\n", ckpt, (long long)ts.step,
                (long long)cfg.iters);
    } else { /* train */
        need_pos(&args, cmd, 0);
        apply_opts(&args, &cfg, &ao, &flag);
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
            const char *bad;
            if (!catanet_ckpt_finite(ts.model, &bad))
                die("%s: tensor %s holds NaN or Inf", cfg.from, bad);
        } else {
            apply_arch(&ao, &cfg.arch);
            if (catanet_model_create(&ts.model, &cfg.arch, err, sizeof(err)) < 0)
                die("%s", err);
            catanet_train_init_weights(ts.model, cfg.seed);
        }
        ts.grads = new_like(ts.model);
        ts.adam_m = new_like(ts.model);
        ts.adam_v = new_like(ts.model);
        if (cfg.ckpt) {
            remove_stale_tmp(cfg.ckpt);
            if (access(cfg.ckpt, F_OK) == 0)
                die("%s exists: use 'catanet-train resume %s' or remove it", cfg.ckpt, cfg.ckpt);
        }
        fprintf(stderr, "catanet-train: %lld parameters, x%d, %d groups, batch %d of %dx%d LR patches, %lld iterations\n",
                (long long)ts.model->info.num_params, ts.model->info.upscale, ts.model->info.num_groups, cfg.batch,
                cfg.patch, cfg.patch, (long long)cfg.iters);
    }
    int ret = train_loop(&cfg, &ts);
    catanet_model_free(ts.model);
    catanet_model_free(ts.grads);
    catanet_model_free(ts.adam_m);
    catanet_model_free(ts.adam_v);
    catanet_ckpt_cfg_release(&cfg);
    if (g_stop) {
        signal(g_stop, SIG_DFL);
        raise(g_stop);
    }
    return ret;
}
