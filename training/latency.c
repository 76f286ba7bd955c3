/*
 * latency.c: a measured latency model for pruning under a latency budget (training-spec: "best, a
 * measured latency budget on a target device"). The device here is this machine's CPU engine on
 * one thread. Time is the calling thread's CPU time (CLOCK_THREAD_CPUTIME_ID), the minimum over a
 * few runs, so that other processes on the machine (a training run beside it) barely move it.
 * The residual groups run one after the other, so a student's time is the time without groups
 * plus each kept group's own increment; each group is measured in a one-group model made by
 * catanet_model_extract, so its own num_tokens, group_size and patch_size are what is timed.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "error.h"
#include "forward_cpu.h"
#include "latency.h"

static double thread_cpu_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

int catanet_latency_ms(const CatanetModel *m, int w, int h, int reps, double *ms, char *err, size_t es)
{
    CatanetCpuPlan *p;
    int ret = catanet_cpu_plan_create(&p, m, w, h, 1, err, es);
    if (ret < 0)
        return ret;
    int s = m->info.upscale;
    float *in = malloc(sizeof(float) * 3 * w * h), *out = malloc(sizeof(float) * 3 * (size_t)w * h * s * s);
    if (!in || !out) {
        free(in);
        free(out);
        catanet_cpu_plan_free(p);
        return catanet_errf(err, es, CATANET_ERR_NOMEM, "out of memory");
    }
    /* a smooth test card: clustering and attention do the same work on any content */
    for (int c = 0; c < 3; c++)
        for (int i = 0; i < w * h; i++)
            in[c * w * h + i] = (float)((i % w) * (c + 1) + (i / w) * 3 % 17) / (float)(w * 3 + 17);
    catanet_cpu_forward(p, in, out); /* warm: first touch of the plan's memory */
    double best = 0;
    for (int r = 0; r < (reps > 0 ? reps : 1); r++) {
        double t0 = thread_cpu_ms();
        catanet_cpu_forward(p, in, out);
        double t = thread_cpu_ms() - t0;
        best = r == 0 || t < best ? t : best;
    }
    free(in);
    free(out);
    catanet_cpu_plan_free(p);
    *ms = best;
    return 0;
}

int catanet_latency_groups(const CatanetModel *m, int w, int h, int reps, double *base_ms, double *group_ms,
                           char *err, size_t es)
{
    CatanetModel *x;
    int ret = catanet_model_extract(&x, m, NULL, 0, err, es);
    if (ret < 0)
        return ret;
    ret = catanet_latency_ms(x, w, h, reps, base_ms, err, es);
    catanet_model_free(x);
    for (int g = 0; g < m->info.num_groups && ret == 0; g++) {
        double t;
        if ((ret = catanet_model_extract(&x, m, &g, 1, err, es)) < 0)
            break;
        ret = catanet_latency_ms(x, w, h, reps, &t, err, es);
        catanet_model_free(x);
        group_ms[g] = t - *base_ms;
    }
    /* groups with the same num_tokens, group_size and patch_size do the same work: each gets the
     * least time measured for any of them (the noise is all upwards) */
    const CatanetGroupInfo *gi = m->info.groups;
    for (int g = 0; g < m->info.num_groups && ret == 0; g++)
        for (int o = 0; o < m->info.num_groups; o++)
            if (gi[o].num_tokens == gi[g].num_tokens && gi[o].group_size == gi[g].group_size &&
                gi[o].patch_size == gi[g].patch_size && group_ms[o] < group_ms[g])
                group_ms[g] = group_ms[o];
    return ret;
}

double catanet_latency_predict(double base_ms, const double *group_ms, const int *keep, int n_keep)
{
    double t = base_ms;
    for (int j = 0; j < n_keep; j++)
        t += group_ms[keep[j]];
    return t;
}

double catanet_latency_cheapest(double base_ms, const double *group_ms, const int *keep, int n_keep, int k)
{
    double v[64];
    int n = n_keep < 64 ? n_keep : 64;
    for (int j = 0; j < n; j++)
        v[j] = group_ms[keep[j]];
    /* insertion sort: a handful of groups */
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && v[j] < v[j - 1]; j--) {
            double t = v[j];
            v[j] = v[j - 1];
            v[j - 1] = t;
        }
    double t = base_ms;
    for (int j = 0; j < k && j < n; j++)
        t += v[j];
    return t;
}
