/*
 * distill.c: `catanet-train distill` (see distill.h). The teacher is frozen: its training-mode
 * forward gives the features and the output, and its `means` are restored after every step.
 */
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "data.h"
#include "distill.h"
#include "error.h"
#include "kernels.h"
#include "model_train.h"
#include "prune.h"

#define MAX_DIRS 16

typedef struct DistillOpts {
    const char *teacher, *student, *out, *map;
    const char *data[MAX_DIRS], *val[MAX_DIRS];
    int n_data, n_val, batch, patch, threads, log_every;
    int64_t iters;
    double lr, beta, w_hr, w_kd, clip;
    uint64_t seed;
} DistillOpts;

/* a number of an option through tools/cli.h (which says why on stderr), else an error naming it */
#define PROG "catanet-train distill"
#define NUM(x) do { if ((x) < 0) return catanet_errf(err, es, CATANET_ERR_INVALID_ARG, "distill: bad value for %s", o_); } while (0)

static int distill_opts(int argc, char **argv, DistillOpts *o, char *err, size_t es)
{
    memset(o, 0, sizeof(*o));
    int64_t seed = 3407;
    char o_[64];
    o->batch = 4;
    o->patch = 32;
    o->threads = 1;
    o->log_every = 25;
    o->iters = 500;
    o->lr = 2e-4;
    o->beta = 0.04;
    o->w_hr = 0.5;
    o->w_kd = 0.5;
    o->clip = 0;
    for (int i = 1; i < argc; i++) {
        const char *k = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strncmp(k, "--", 2) || !v)
            return catanet_errf(err, es, CATANET_ERR_INVALID_ARG, "distill: expected --option value, got '%s'", k);
        snprintf(o_, sizeof(o_), "%.60s", k);
        k += 2;
        i++;
        if (!strcmp(k, "teacher"))
            o->teacher = v;
        else if (!strcmp(k, "student"))
            o->student = v;
        else if (!strcmp(k, "out"))
            o->out = v;
        else if (!strcmp(k, "map"))
            o->map = v;
        else if (!strcmp(k, "data") && o->n_data < MAX_DIRS)
            o->data[o->n_data++] = v;
        else if (!strcmp(k, "val") && o->n_val < MAX_DIRS)
            o->val[o->n_val++] = v;
        else if (!strcmp(k, "batch"))
            NUM(cli_int(PROG, o_, v, 1, 4096, &o->batch));
        else if (!strcmp(k, "patch"))
            NUM(cli_int(PROG, o_, v, 1, 4096, &o->patch));
        else if (!strcmp(k, "threads"))
            NUM(cli_int(PROG, o_, v, 0, 1024, &o->threads));
        else if (!strcmp(k, "log-every"))
            NUM(cli_int(PROG, o_, v, 0, INT_MAX, &o->log_every));
        else if (!strcmp(k, "iters"))
            NUM(cli_int64(PROG, o_, v, 0, INT64_C(1000000000000), &o->iters));
        else if (!strcmp(k, "lr"))
            NUM(cli_double(PROG, o_, v, 0, DBL_MAX, &o->lr));
        else if (!strcmp(k, "beta"))
            NUM(cli_double(PROG, o_, v, 0, DBL_MAX, &o->beta));
        else if (!strcmp(k, "hr-weight"))
            NUM(cli_double(PROG, o_, v, 0, DBL_MAX, &o->w_hr));
        else if (!strcmp(k, "kd-weight"))
            NUM(cli_double(PROG, o_, v, 0, DBL_MAX, &o->w_kd));
        else if (!strcmp(k, "clip"))
            NUM(cli_double(PROG, o_, v, 0, DBL_MAX, &o->clip));
        else if (!strcmp(k, "seed"))
            NUM(cli_int64(PROG, o_, v, 0, INT64_MAX, &seed));
        else
            return catanet_errf(err, es, CATANET_ERR_INVALID_ARG, "distill: unknown option --%s", k);
    }
    o->seed = (uint64_t)seed;
    if (!o->teacher || !o->student || !o->out || !o->n_data)
        return catanet_errf(err, es, CATANET_ERR_INVALID_ARG,
                            "usage: catanet-train distill --teacher T --student S --out OUT --data DIR [--val SET]"
                            " [--map a,b,c] [--iters N (500)] [--batch B (4)] [--patch P (32)] [--lr X (2e-4)]"
                            " [--beta B (0.04)] [--hr-weight 0.5] [--kd-weight 0.5] [--clip X] [--seed N]"
                            " [--threads T] [--log-every N]");
    if (o->batch < 1 || o->iters < 0)
        return catanet_errf(err, es, CATANET_ERR_INVALID_ARG, "distill: bad batch or iters");
    return 0;
}
#undef NUM
#undef PROG

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

int catanet_distill_main(int argc, char **argv, CatanetLogFn log, void *op)
{
    char err[1024];
    DistillOpts o;
    CatanetModel *T = NULL, *S = NULL, *grads = NULL, *am = NULL, *av = NULL;
    CatanetTrainPlan *pt = NULL, *ps = NULL;
    CatanetData *data = NULL;
    float *lr = NULL, *hr = NULL, *tmeans = NULL, *work = NULL, *tbody = NULL, *sbody = NULL;
    float *dfeat[CATANET_MAX_GROUPS + 1] = { 0 };
    int keep[CATANET_MAX_GROUPS], K = 0;
    int ret = distill_opts(argc, argv, &o, err, sizeof(err));
    if (ret < 0)
        goto fail;
    if ((ret = catanet_model_load(&T, o.teacher, err, sizeof(err))) < 0 ||
        (ret = catanet_model_load(&S, o.student, err, sizeof(err))) < 0)
        goto fail;
    K = o.map ? catanet_kd_parse_ints(o.map, keep, CATANET_MAX_GROUPS)
              : catanet_kd_read_kept(o.student, keep, CATANET_MAX_GROUPS);
    if (K != S->info.num_groups) {
        ret = catanet_errf(err, sizeof(err), CATANET_ERR_INVALID_ARG,
                           "distill: need the teacher group of each of the student's %d groups (--map or the student's "
                           "catanet_kept_groups metadata); got %d",
                           S->info.num_groups, K);
        goto fail;
    }
    for (int j = 0; j < K; j++)
        if (keep[j] < 0 || keep[j] >= T->info.num_groups || (j && keep[j] <= keep[j - 1])) {
            ret = catanet_errf(err, sizeof(err), CATANET_ERR_INVALID_ARG, "distill: bad group map entry %d", keep[j]);
            goto fail;
        }
    if (T->info.upscale != S->info.upscale) {
        /* fine-tuning the student to the teacher's scale: a new upsampler, everything else carried over
         * (for x2 -> x4 the x2 upsampler becomes x4's first stage: catanet_model_copy_matching) */
        CatanetModelInfo info = S->info;
        info.upscale = T->info.upscale;
        CatanetModel *S2;
        if ((ret = catanet_model_create(&S2, &info, err, sizeof(err))) < 0)
            goto fail;
        catanet_train_init_weights(S2, o.seed);
        int copied = catanet_model_copy_matching(S2, S);
        catanet_kd_log(log, op, CATANET_LOG_INFO, "distill: student x%d -> x%d (teacher's scale): %d of %d tensors carried over",
                       S->info.upscale, info.upscale, copied, S2->n_tensors);
        catanet_model_free(S);
        S = S2;
    }
    int B = o.batch, s = T->info.upscale, N = o.patch * o.patch, Cs = S->info.dim, Ct = T->info.dim;
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
    size_t nlr = (size_t)B * 3 * N, nhr = nlr * s * s, nf = (size_t)B * N * Cs;
    lr = malloc(sizeof(float) * nlr);
    hr = malloc(sizeof(float) * nhr);
    tmeans = malloc(sizeof(float) * T->arena_floats);
    work = malloc(sizeof(float) * catanet_fakd_work(N, Cs, Ct, ps->cpu.threads));
    tbody = malloc(sizeof(float) * (size_t)B * N * Ct);
    sbody = malloc(sizeof(float) * nf);
    if (!lr || !hr || !tmeans || !work || !tbody || !sbody) {
        ret = catanet_errf(err, sizeof(err), CATANET_ERR_NOMEM, "out of memory");
        goto fail;
    }
    /* alignment points: student group j's input vs teacher group keep[j]'s input (j >= 1), and the body end */
    int use_fakd = o.beta != 0;
    for (int j = 1; j <= K && use_fakd; j++)
        if (!(dfeat[j] = malloc(sizeof(float) * nf))) {
            ret = catanet_errf(err, sizeof(err), CATANET_ERR_NOMEM, "out of memory");
            goto fail;
        }
    memcpy(tmeans, T->arena, sizeof(float) * T->arena_floats);
    uint8_t tinit[CATANET_MAX_GROUPS];
    memcpy(tinit, T->initted, sizeof(tinit));
    pt->body_out = tbody;
    ps->body_out = sbody;
    ps->dfeat = use_fakd ? dfeat : NULL;
    ps->kd_target = pt->out;
    ps->hr_weight = (float)o.w_hr;
    ps->kd_weight = (float)o.w_kd;
    char kept[128] = "";
    for (int j = 0; j < K; j++)
        snprintf(kept + strlen(kept), sizeof(kept) - strlen(kept), "%s%d", j ? "," : "", keep[j]);
    catanet_kd_log(log, op, CATANET_LOG_INFO,
                   "distill: student %s (%d groups = teacher groups {%s}, %lld params) from %s; %lld iterations, batch "
                   "%d of %dx%d, lr %g, loss %g L1(S,HR) + %g L1(S,T) + %g sum FAKD over %d points",
                   o.student, K, kept, (long long)S->info.num_params, o.teacher, (long long)o.iters, B, o.patch, o.patch,
                   o.lr, o.w_hr, o.w_kd, o.beta, use_fakd ? K : 0);
    double t0 = now_s(), lavg = NAN, favg = 0;
    for (int64_t step = 0; step < o.iters; step++) {
        if ((ret = catanet_data_next(data, lr, hr)) < 0) {
            ret = catanet_errf(err, sizeof(err), ret, "data: %s", catanet_data_last_error(data));
            goto fail;
        }
        catanet_train_forward(pt, lr, NULL);
        memcpy(T->arena, tmeans, sizeof(float) * T->arena_floats);
        memcpy(T->initted, tinit, sizeof(tinit));
        double lhr = catanet_train_forward(ps, lr, hr);
        double lkd = catanet_l1_loss_fwd_ref(nhr, ps->out, pt->out);
        double lf = 0;
        for (int j = 1; j <= K && use_fakd; j++) {
            memset(dfeat[j], 0, sizeof(float) * nf);
            for (int b = 0; b < B; b++) {
                const float *fs = (j < K ? ps->g[j].tab_in : sbody) + (size_t)b * N * Cs;
                const float *ft = (j < K ? pt->g[keep[j]].tab_in : tbody) + (size_t)b * N * Ct;
                lf += catanet_fakd_fwd_cpu(ps->cpu.threads, N, Cs, Ct, fs, ft, work) / B;
                catanet_fakd_bwd_cpu(ps->cpu.threads, N, Cs, Ct, fs, ft, (float)(o.beta / B),
                                     dfeat[j] + (size_t)b * N * Cs, work);
            }
        }
        double loss = o.w_hr * lhr + o.w_kd * lkd + o.beta * lf;
        if (!isfinite(loss)) {
            catanet_kd_log(log, op, CATANET_LOG_WARNING, "distill: step %lld: non-finite loss, skipped",
                           (long long)step);
            continue;
        }
        catanet_model_zero(grads);
        catanet_train_backward(ps, hr, grads);
        catanet_kd_clip(grads, o.clip);
        catanet_kd_adam(S, grads, am, av, (float)o.lr, step + 1);
        lavg = isnan(lavg) ? loss : 0.9 * lavg + 0.1 * loss;
        favg = step ? 0.9 * favg + 0.1 * o.beta * lf : o.beta * lf;
        if ((step + 1) % o.log_every == 0 || step + 1 == o.iters)
            catanet_kd_log(log, op, CATANET_LOG_INFO,
                           "distill: step %lld loss %.5f (L1 hr %.5f, L1 teacher %.5f, beta*FAKD %.5f = %.0f%%) %.2f s/step",
                           (long long)step + 1, lavg, lhr, lkd, favg, lavg > 0 ? 100 * favg / lavg : 0,
                           (now_s() - t0) / (double)(step + 1));
    }
    char note[256];
    snprintf(note, sizeof(note), "distill: %lld iterations, batch %d of %d LR, lr %g, beta %g", (long long)o.iters, B,
             o.patch, o.lr, o.beta);
    if ((ret = catanet_kd_save_student(S, o.out, keep, K, o.teacher, note, err, sizeof(err))) < 0)
        goto fail;
    catanet_kd_log(log, op, CATANET_LOG_INFO, "distill: wrote %s", o.out);
    for (int i = 0; i < o.n_val; i++) {
        double psnr, ssim;
        if ((ret = catanet_kd_eval(S, o.val[i], o.threads, &psnr, &ssim, err, sizeof(err))) < 0)
            goto fail;
        catanet_kd_log(log, op, CATANET_LOG_INFO, "distill: %s: PSNR %.3f dB, SSIM %.4f", o.val[i], psnr, ssim);
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
    free(lr);
    free(hr);
    free(tmeans);
    free(work);
    free(tbody);
    free(sbody);
    for (int j = 0; j <= CATANET_MAX_GROUPS; j++)
        free(dfeat[j]);
    return ret;
}
