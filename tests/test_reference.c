/*
 * test_reference.c: the whole eval-mode forward against the official model's reference cases
 * (../shared/reference/catanet): output max abs error <= 1e-4, every act.* activation, x2/x3/x4,
 * batch 2 (eval samples are independent, so each runs alone); the fast path and the plain
 * reference path; 1 and 2 threads bit for bit.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "forward_cpu.h"
#include "model.h"
#include "safetensors.h"
#include "testutil.h"

#define OUT_TOL 1e-4
#define ACT_TOL 1e-4 /* relative to the activation's largest magnitude (the residual stream grows) */

#define MAX_ACTS 128

typedef struct ActCheck {
    const char *case_path;
    int sample;
    int checked;                   /* distinct act.* tensors of the case the hooks were compared with */
    int repeated;                  /* hook calls for a name already checked */
    double worst;
    char worst_name[96];
    char seen[MAX_ACTS][80];
} ActCheck;

/* the act.* tensors a case file holds: what the hooks must all reach */
static int count_acts(const char *case_path)
{
    CatanetSt *st;
    char err[256];
    int n = 0;
    if (catanet_st_open(&st, case_path, err, sizeof(err)) < 0)
        return -1;
    for (int i = 0; i < st->n; i++)
        n += !strncmp(st->tensors[i].name, "act.", 4);
    catanet_st_close(st);
    return n;
}

static int total_acts_checked;

static void act_hook(void *opaque, const char *name, const float *x, int h, int w, int c)
{
    ActCheck *ac = opaque;
    char key[80];
    snprintf(key, sizeof(key), "act.%s", name);
    int64_t shape[8];
    int nd;
    CatanetSt *st;
    char err[256];
    if (catanet_st_open(&st, ac->case_path, err, sizeof(err)) < 0)
        return;
    int present = catanet_st_get(st, key) != NULL;
    catanet_st_close(st);
    if (!present)
        return;
    for (int i = 0; i < ac->checked && i < MAX_ACTS; i++)
        if (!strcmp(ac->seen[i], key)) {
            ac->repeated++;
            return;
        }
    if (ac->checked < MAX_ACTS)
        snprintf(ac->seen[ac->checked], sizeof(ac->seen[0]), "%s", key);
    float *ref = load_tensor(ac->case_path, key, shape, &nd);
    if (!ref)
        return;
    if (nd != 4 || shape[1] != c || shape[2] != h || shape[3] != w) {
        test_check(0, "%s: %s shape mismatch", ac->case_path, key);
        free(ref);
        return;
    }
    const float *r = ref + (size_t)ac->sample * c * h * w;
    double worst = 0.0, scale = 0.0;
    for (int ch = 0; ch < c; ch++)
        for (int i = 0; i < h * w; i++) {
            double d = (double)x[(size_t)i * c + ch] - r[(size_t)ch * h * w + i];
            worst = d < 0 ? (-d > worst ? -d : worst) : (d > worst ? d : worst);
            scale = r[(size_t)ch * h * w + i] > scale ? r[(size_t)ch * h * w + i] :
                    -r[(size_t)ch * h * w + i] > scale ? -r[(size_t)ch * h * w + i] : scale;
        }
    double rel = worst / (scale > 1.0 ? scale : 1.0);
    if (rel > ac->worst) {
        ac->worst = rel;
        snprintf(ac->worst_name, sizeof(ac->worst_name), "%s", key);
    }
    ac->checked++;
    free(ref);
}

static int run_case(const char *name, int use_ref, int with_acts)
{
    char cpath[512], wpath[512], wfile[128];
    int s;
    char wkind[32];
    if (sscanf(name, "eval_x%d_%31[a-z]_", &s, wkind) != 2)
        return -1;
    snprintf(wfile, sizeof(wfile), "weights_x%d_%s.safetensors", s, wkind);
    ref_path(wpath, sizeof(wpath), wfile);
    snprintf(wfile, sizeof(wfile), "%s.safetensors", name);
    ref_path(cpath, sizeof(cpath), wfile);

    CatanetModel *m;
    char err[512];
    if (catanet_model_load(&m, wpath, err, sizeof(err)) < 0) {
        test_check(0, "%s: load %s", name, err);
        return -1;
    }
    int64_t is[8], os[8];
    int nd;
    float *in = load_tensor(cpath, "input", is, &nd), *ref = load_tensor(cpath, "output", os, &nd);
    if (!in || !ref) {
        test_check(0, "%s: case tensors missing", name);
        return -1;
    }
    int B = (int)is[0], H = (int)is[2], W = (int)is[3];
    test_check(os[2] == H * s && os[3] == W * s && m->info.upscale == s, "%s: model scale %d matches the case",
               name, m->info.upscale);
    CatanetCpuPlan *p;
    if (catanet_cpu_plan_create(&p, m, W, H, 2, err, sizeof(err)) < 0) {
        test_check(0, "%s: plan %s", name, err);
        return -1;
    }
    p->use_ref = use_ref;
    size_t out_n = (size_t)3 * H * s * W * s;
    float *out = malloc(sizeof(float) * out_n);
    int n_acts = with_acts ? count_acts(cpath) : 0;
    if (n_acts < 0)
        test_check(0, "%s: cannot read %s to count its act.* tensors", name, cpath);
    ActCheck ac;
    for (int b = 0; b < B; b++) {
        memset(&ac, 0, sizeof(ac));
        ac.case_path = cpath;
        ac.sample = b;
        catanet_cpu_forward_hooked(p, in + (size_t)b * 3 * H * W, out, with_acts ? act_hook : NULL, &ac);
        size_t where;
        double e = max_abs_diff(out, ref + (size_t)b * out_n, out_n, &where);
        test_check(e <= OUT_TOL, "%s [%s] sample %d: output max abs error %.3g (tolerance %g, at %zu)", name,
                   use_ref ? "reference ops" : "fast ops", b, e, OUT_TOL, where);
        /* every act.* tensor of the case must have been reached by a hook: a renamed or missing
         * hook is a failure, not a silently smaller check */
        if (with_acts && n_acts > 0) {
            test_check(ac.checked == n_acts && !ac.repeated && ac.worst <= ACT_TOL,
                       "%s [%s] sample %d: %d of the case's %d activations checked (%d repeated hook calls), "
                       "worst relative error %.3g (%s)", name, use_ref ? "reference ops" : "fast ops", b,
                       ac.checked, n_acts, ac.repeated, ac.worst, ac.worst_name);
            total_acts_checked += ac.checked;
        }
    }
    /* same output bit for bit with 1 and 2 threads */
    if (!use_ref) {
        float *out1 = malloc(sizeof(float) * out_n);
        catanet_cpu_forward(p, in, out);
        p->cpu.threads = 1;
        catanet_cpu_forward(p, in, out1);
        test_check(memcmp(out, out1, sizeof(float) * out_n) == 0, "%s: 1 and 2 threads give identical bits", name);
        free(out1);
    }
    free(out);
    free(in);
    free(ref);
    catanet_cpu_plan_free(p);
    catanet_model_free(m);
    return 0;
}

int main(void)
{
    static const char *cases[] = {
        "eval_x2_random_1x31x45", "eval_x2_random_2x28x30", "eval_x2_random_1x64x64",
        "eval_x3_random_1x33x40", "eval_x4_random_1x45x31", "eval_x2_trained_1x48x56",
    };
    if (!ref_cases_present())
        return 1;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        run_case(cases[i], 0, 1);
    /* the plain reference ops too, on the cases that hit the LRSA 0.75 quirk (31, 45) and x3 */
    run_case("eval_x2_random_1x31x45", 1, 1);
    run_case("eval_x3_random_1x33x40", 1, 0);
    /* the activation comparison is this test's claim: cases without act.* data cannot make it vacuous */
    test_check(total_acts_checked > 0, "activations compared with the reference cases: %d in all",
               total_acts_checked);
    return test_finish();
}
