/*
 * test_train.c: the training-mode model against the official reference cases
 * (train_x2_random_initted, train_x2_random_first_step): output, loss, every parameter gradient
 * and the updated centers within 1e-3 relative to each tensor's largest magnitude; the fast and
 * the reference paths; gradients bit-identical for 1 and 2 threads.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"
#include "model_train.h"
#include "safetensors.h"
#include "imageio.h"
#include "testutil.h"

#define REL_TOL 1e-3

/* max |a - ref| / max |ref|, with the worst index */
static double rel_err(const float *a, const float *ref, size_t n, size_t *where)
{
    double d = max_abs_diff(a, ref, n, where), s = max_abs(ref, n);
    return d / (s > 1e-30 ? s : 1e-30);
}

typedef struct Result {
    CatanetModel *model, *grads;
    CatanetTrainPlan *plan;
} Result;

static int run_case(const char *case_file, int first_step, int threads, int use_ref, Result *res)
{
    char wpath[512], cpath[512], err[512];
    ref_path(wpath, sizeof(wpath), "weights_x2_random.safetensors");
    ref_path(cpath, sizeof(cpath), case_file);
    memset(res, 0, sizeof(*res));
    if (catanet_model_load(&res->model, wpath, err, sizeof(err)) < 0 ||
        catanet_model_create(&res->grads, &res->model->info, err, sizeof(err)) < 0) {
        test_check(0, "load %s: %s", wpath, err);
        return -1;
    }
    if (first_step)
        for (int g = 0; g < res->model->info.num_groups; g++)
            res->model->initted[g] = 0;
    int64_t sx[8], st[8];
    int nx, nt;
    float *x = load_tensor(cpath, "input", sx, &nx), *t = load_tensor(cpath, "target", st, &nt);
    if (!x || !t || nx != 4 || nt != 4) {
        test_check(0, "%s: input/target missing", cpath);
        free(x);
        free(t);
        return -1;
    }
    if (catanet_train_plan_create(&res->plan, res->model, (int)sx[0], (int)sx[2], (int)sx[3], threads, use_ref, err,
                                  sizeof(err)) < 0) {
        test_check(0, "plan: %s", err);
        free(x);
        free(t);
        return -1;
    }
    catanet_model_zero(res->grads);
    catanet_train_forward(res->plan, x, t);
    catanet_train_backward(res->plan, t, res->grads);
    free(x);
    free(t);
    return 0;
}

static void free_result(Result *r)
{
    catanet_train_plan_free(r->plan);
    catanet_model_free(r->model);
    catanet_model_free(r->grads);
}

static void check_case(const char *case_file, int first_step, int use_ref)
{
    char cpath[512];
    ref_path(cpath, sizeof(cpath), case_file);
    Result r;
    if (run_case(case_file, first_step, 2, use_ref, &r) < 0)
        return;
    const char *path = use_ref ? "reference ops" : "fast ops";
    int64_t sh[8];
    int nd;
    float *out = load_tensor(cpath, "output", sh, &nd), *loss = load_tensor(cpath, "loss", sh, &nd);
    size_t no = (size_t)r.plan->batch * 3 * r.plan->h * r.plan->w * 4, where;
    if (out && loss) {
        double e = rel_err(r.plan->out, out, no, &where);
        test_check(e <= REL_TOL, "%s (%s): output rel err %.3g at %zu", case_file, path, e, where);
        double le = fabs(r.plan->loss - loss[0]) / fabs(loss[0]);
        test_check(le <= REL_TOL, "%s (%s): loss %.7g vs %.7g (rel %.3g)", case_file, path, r.plan->loss, loss[0], le);
    } else
        test_check(0, "%s: output/loss missing", case_file);
    free(out);
    free(loss);
    double worst = 0;
    char worst_name[192] = "";
    size_t worst_at = 0;
    int n_checked = 0, missing = 0;
    for (int i = 0; i < r.model->n_tensors; i++) {
        const CatanetTensorDef *d = &r.model->tensors[i];
        char key[160];
        snprintf(key, sizeof(key), "%s.%s", d->is_buffer ? "means_after" : "grad", d->name);
        float *ref = load_tensor(cpath, key, sh, &nd);
        if (!ref) {
            missing++;
            continue;
        }
        const float *mine = d->is_buffer ? r.model->arena + d->offset : r.grads->arena + d->offset;
        /* A LeakyReLU pre-activation within 1e-6 of zero takes its branch by rounding: float32
         * and the float64 reference may disagree, changing that output channel's upconv weight
         * gradient by a whole pixel's contribution. Such rows (reported) are left out. */
        float *masked = NULL;
        if (!strcmp(d->name, "upconv.weight")) {
            int C = r.model->info.dim, rr = r.model->info.upscale, hh = r.plan->h * rr, ww = r.plan->w * rr;
            size_t row = d->numel / d->shape[0];
            masked = malloc(sizeof(float) * d->numel * 2);
            memcpy(masked, mine, sizeof(float) * d->numel);
            memcpy(masked + d->numel, ref, sizeof(float) * d->numel);
            for (size_t e = 0; e < (size_t)r.plan->batch * hh * ww * C; e++)
                if (fabsf(r.plan->up_s[0][e]) < 1e-6f) {
                    size_t pix = e / C;
                    int c = (int)(e % C), X = (int)(pix % ww), Y = (int)(pix / ww % hh);
                    int ch = c * rr * rr + (Y % rr) * rr + X % rr;
                    printf("  upconv.weight row %d left out: lrelu pre-activation %.3g at a kink\n", ch,
                           r.plan->up_s[0][e]);
                    memset(masked + ch * row, 0, sizeof(float) * row);
                    memset(masked + d->numel + ch * row, 0, sizeof(float) * row);
                }
            mine = masked;
            memcpy(ref, masked + d->numel, sizeof(float) * d->numel);
        }
        double e = rel_err(mine, ref, d->numel, &where);
        free(masked);
        if (e > worst || !n_checked) {
            worst = e;
            worst_at = where;
            snprintf(worst_name, sizeof(worst_name), "%s", key);
        }
        if (e > REL_TOL)
            printf("  %s: rel err %.3g at %zu\n", key, e, where);
        n_checked++;
        free(ref);
    }
    test_check(!missing && worst <= REL_TOL, "%s (%s): %d grad/means_after tensors, %d missing, worst %s rel err %.3g at %zu",
               case_file, path, n_checked, missing, worst_name, worst, worst_at);
    int all_init = 1;
    for (int g = 0; g < r.model->info.num_groups; g++)
        all_init &= r.model->initted[g];
    test_check(all_init, "%s: initted is True after the step", case_file);
    free_result(&r);
}

static void check_threads(void)
{
    Result a, b;
    if (run_case("train_x2_random_first_step.safetensors", 1, 1, 0, &a) < 0)
        return;
    if (run_case("train_x2_random_first_step.safetensors", 1, 2, 0, &b) < 0) {
        free_result(&a);
        return;
    }
    int same = !memcmp(a.grads->arena, b.grads->arena, sizeof(float) * a.grads->arena_floats) &&
               !memcmp(a.model->arena, b.model->arena, sizeof(float) * a.model->arena_floats) &&
               a.plan->loss == b.plan->loss;
    test_check(same, "training step: gradients, centers and loss bit-identical with 1 and 2 threads");
    free_result(&a);
    free_result(&b);
}

/* Overfitting one 48x48 HR patch (24x24 LR, 2x2 box-averaged from it) for 200 Adam steps must
 * bring the L1 loss below 25% of its start. The official model needs LR sides >= 28 (its
 * largest LRSA patch), so a small one: dim 16, 2 heads, 2 groups, 8 centers, patch 12/16. */
static void check_overfit(void)
{
    char path[512], err[512];
    shared_path(path, sizeof(path), "data/eval/Set5/HR/butterfly.png");
    float *img;
    int iw, ih, bits;
    if (image_read(path, &img, &iw, &ih, &bits, err, sizeof(err)) < 0) {
        test_check(0, "overfit: %s", err);
        return;
    }
    CatanetModelInfo a;
    catanet_arch_default(&a, 2);
    a.dim = 16;
    a.qk_dim = 16;
    a.heads = 2;
    a.mlp_dim = 32;
    a.num_groups = 2;
    for (int g = 0; g < 2; g++) {
        a.groups[g].num_tokens = 8;
        a.groups[g].group_size = 72;
        a.groups[g].patch_size = g ? 16 : 12;
    }
    CatanetModel *m, *gr, *am, *av;
    if (catanet_model_create(&m, &a, err, sizeof(err)) < 0 || catanet_model_create(&gr, &a, err, sizeof(err)) < 0 ||
        catanet_model_create(&am, &a, err, sizeof(err)) < 0 || catanet_model_create(&av, &a, err, sizeof(err)) < 0) {
        test_check(0, "overfit: %s", err);
        return;
    }
    Rng r = { 99 };
    for (int i = 0; i < m->n_tensors; i++) {
        const CatanetTensorDef *d = &m->tensors[i];
        float *x = m->arena + d->offset;
        int is_norm_w = strstr(d->name, "norm.weight") != NULL;
        for (size_t k = 0; k < d->numel; k++)
            x[k] = is_norm_w ? 1.0f : d->is_buffer ? rng_normal(&r) : 0.05f * rng_normal(&r);
    }
    for (int g = 0; g < 2; g++)
        m->initted[g] = 0;
    float hr[3 * 48 * 48], lr[3 * 24 * 24];
    int x0 = iw / 2 - 24, y0 = ih / 2 - 24;
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < 48; y++)
            for (int x = 0; x < 48; x++)
                hr[(c * 48 + y) * 48 + x] = img[((size_t)c * ih + y0 + y) * iw + x0 + x];
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < 24; y++)
            for (int x = 0; x < 24; x++)
                lr[(c * 24 + y) * 24 + x] = 0.25f * (hr[(c * 48 + 2 * y) * 48 + 2 * x] + hr[(c * 48 + 2 * y) * 48 + 2 * x + 1] +
                                                     hr[(c * 48 + 2 * y + 1) * 48 + 2 * x] +
                                                     hr[(c * 48 + 2 * y + 1) * 48 + 2 * x + 1]);
    CatanetTrainPlan *p;
    if (catanet_train_plan_create(&p, m, 1, 24, 24, 2, 0, err, sizeof(err)) < 0) {
        test_check(0, "overfit: %s", err);
        return;
    }
    double first = 0, last = 0;
    for (int step = 1; step <= 200; step++) {
        catanet_model_zero(gr);
        last = catanet_train_forward(p, lr, hr);
        if (step == 1)
            first = last;
        catanet_train_backward(p, hr, gr);
        for (int i = 0; i < m->n_tensors; i++) {
            const CatanetTensorDef *d = &m->tensors[i];
            if (!d->is_buffer)
                catanet_adam_update_ref(d->numel, m->arena + d->offset, gr->arena + d->offset, am->arena + d->offset,
                                        av->arena + d->offset, 1e-3f, 0.9f, 0.99f, 1e-8f, step);
        }
    }
    test_check(last < 0.25 * first, "overfit one 48x48 patch (small model, Adam lr 1e-3): L1 %.5f -> %.5f after 200 steps (%.1f%%)",
               first, last, 100.0 * last / first);
    catanet_train_plan_free(p);
    catanet_model_free(m);
    catanet_model_free(gr);
    catanet_model_free(am);
    catanet_model_free(av);
    free(img);
}

/* Whole-model central differences for tiny x1/x3/x4 models (no reference case exists for them):
 * the loss is re-evaluated with the centers restored each time (the forward's EMA moves them).
 * The float forward makes L (of order 1) noisy at ~1e-7, i.e. ~1e-4 in a difference quotient with
 * h = 1e-3, hence the absolute tolerance 3e-4; LeakyReLU kinks and center flips inside [w-h, w+h]
 * are why h is not larger. (The per-op tests in test_grad.c are the tight ones.) */
static double loss_at(CatanetTrainPlan *p, CatanetModel *m, const float *saved, const uint8_t *init,
                      const float *x, const float *t)
{
    memcpy(m->arena, saved, sizeof(float) * m->arena_floats);
    memcpy(m->initted, init, sizeof(m->initted));
    return catanet_train_forward(p, x, t);
}

static void check_model_fd(int scale)
{
    char err[256];
    CatanetModelInfo a;
    catanet_arch_default(&a, scale);
    a.dim = 8;
    a.qk_dim = 8;
    a.heads = 2;
    a.mlp_dim = 12;
    a.num_groups = 2;
    for (int g = 0; g < 2; g++) {
        a.groups[g].num_tokens = 4;
        a.groups[g].group_size = 40;
        a.groups[g].patch_size = g ? 10 : 8;
    }
    CatanetModel *m, *gr;
    if (catanet_model_create(&m, &a, err, sizeof(err)) < 0 || catanet_model_create(&gr, &a, err, sizeof(err)) < 0) {
        test_check(0, "model fd: %s", err);
        return;
    }
    Rng r = { 7u + scale };
    for (int i = 0; i < m->n_tensors; i++) {
        const CatanetTensorDef *d = &m->tensors[i];
        float *w = m->arena + d->offset;
        for (size_t k = 0; k < d->numel; k++)
            w[k] = strstr(d->name, "norm.weight") ? 1.0f + 0.1f * rng_normal(&r) : (d->is_buffer ? 1.0f : 0.2f) * rng_normal(&r);
    }
    int B = 2, H = 12, W = 11, s = scale;
    size_t nx = (size_t)B * 3 * H * W, nt = nx * s * s;
    float *x = malloc(sizeof(float) * nx), *t = malloc(sizeof(float) * nt);
    float *saved = malloc(sizeof(float) * m->arena_floats);
    for (size_t i = 0; i < nx; i++)
        x[i] = rng_uniform(&r);
    for (size_t i = 0; i < nt; i++)
        t[i] = rng_uniform(&r) * 4.0f - 1.5f; /* far from the outputs: no L1 kinks */
    memcpy(saved, m->arena, sizeof(float) * m->arena_floats);
    uint8_t init[CATANET_MAX_GROUPS];
    memcpy(init, m->initted, sizeof(init));
    CatanetTrainPlan *p;
    if (catanet_train_plan_create(&p, m, B, H, W, 2, 0, err, sizeof(err)) < 0) {
        test_check(0, "model fd: %s", err);
        return;
    }
    catanet_model_zero(gr);
    loss_at(p, m, saved, init, x, t);
    catanet_train_backward(p, t, gr);
    const char *names[] = { "first_conv.weight", "blocks.0.0.iasa_attn.to_q.weight", "blocks.1.0.irca_attn.to_k.weight",
                            "blocks.1.1.layer.0.fn.to_v.weight", "blocks.0.1.layer.1.fn.fc1.bias", "mid_convs.1.weight",
                            "upconv.weight", "upconv1.weight", "upconv2.bias", "last_conv.weight" };
    double worst = -1;
    char wname[128] = "";
    double wa = 0, wn = 0;
    int checked = 0, skipped = 0;
    for (size_t ni = 0; ni < sizeof(names) / sizeof(names[0]); ni++) {
        const CatanetTensorDef *d = catanet_model_find(m, names[ni]);
        if (!d)
            continue;
        for (int c = 0; c < 6; c++) {
            size_t k = rng_u32(&r) % d->numel;
            float *w = saved + d->offset, w0 = w[k], h = 1e-3f;
            double l0 = loss_at(p, m, saved, init, x, t);
            w[k] = w0 + h;
            double lp = loss_at(p, m, saved, init, x, t);
            w[k] = w0 - h;
            double lm = loss_at(p, m, saved, init, x, t);
            w[k] = w0;
            /* a center assignment that flips inside [w-h, w+h] makes L jump: the two one-sided
             * differences then disagree; such points are not differentiable and are skipped */
            double d1 = lp - l0, d2 = l0 - lm;
            if (fabs(d1 - d2) > 0.2 * fmax(fabs(d1), fabs(d2)) + 1e-6) {
                skipped++;
                continue;
            }
            double num = (lp - lm) / (2.0 * h), an = gr->arena[d->offset + k];
            double ex = fabs(an - num) - (1e-2 * fmax(fabs(an), fabs(num)) + 3e-4);
            if (ex > worst) {
                worst = ex;
                snprintf(wname, sizeof(wname), "%s[%zu]", d->name, k);
                wa = an;
                wn = num;
            }
            checked++;
        }
    }
    if (getenv("FD_DEBUG") && worst > 0) {
        char tn[128];
        size_t k;
        sscanf(wname, "%127[^[][%zu]", tn, &k);
        const CatanetTensorDef *d = catanet_model_find(m, tn);
        for (float h = 8e-3f; h > 5e-5f; h *= 0.5f) {
            float *w = saved + d->offset, w0 = w[k];
            w[k] = w0 + h;
            double lp = loss_at(p, m, saved, init, x, t);
            w[k] = w0 - h;
            double lm = loss_at(p, m, saved, init, x, t);
            w[k] = w0;
            printf("  h %.2e: numeric %.6g (analytic %.6g)\n", h, (lp - lm) / (2.0 * h), gr->arena[d->offset + k]);
        }
    }
    test_check(worst <= 0 && checked >= 30,
               "x%d tiny model: whole-step central differences, %d weights (%d skipped at jumps), worst %s analytic %.6g numeric %.6g",
               scale, checked, skipped, wname, wa, wn);
    catanet_train_plan_free(p);
    catanet_model_free(m);
    catanet_model_free(gr);
    free(x);
    free(t);
    free(saved);
}

/* Spec §1.5 initialisation, by its statistics */
static void check_init(void)
{
    char err[256];
    CatanetModelInfo a;
    catanet_arch_default(&a, 2);
    CatanetModel *m, *m2;
    if (catanet_model_create(&m, &a, err, sizeof(err)) < 0 || catanet_model_create(&m2, &a, err, sizeof(err)) < 0) {
        test_check(0, "init: %s", err);
        return;
    }
    catanet_train_init_weights(m, 3407);
    catanet_train_init_weights(m2, 3407);
    test_check(!memcmp(m->arena, m2->arena, sizeof(float) * m->arena_floats), "init: deterministic in the seed");
    double lin_ss = 0, lin_n = 0, means_ss = 0, means_n = 0;
    int bad = 0, convs = 0;
    char what[256] = "";
    for (int i = 0; i < m->n_tensors; i++) {
        const CatanetTensorDef *d = &m->tensors[i];
        const float *x = m->arena + d->offset;
        const char *n = d->name;
        int linear = strstr(n, ".fc1.") || strstr(n, ".fc2.") || strstr(n, ".to_q.") || strstr(n, ".to_k.") ||
                     strstr(n, ".to_v.") || strstr(n, ".proj.");
        int is_w = strstr(n, ".weight") != NULL;
        if (d->is_buffer) {
            for (size_t k = 0; k < d->numel; k++, means_n++)
                means_ss += (double)x[k] * x[k];
        } else if (strstr(n, "norm.")) {
            for (size_t k = 0; k < d->numel; k++)
                if (x[k] != (is_w ? 1.0f : 0.0f) && !bad++)
                    snprintf(what, sizeof(what), "%s[%zu] = %g", n, k, x[k]);
        } else if (linear) {
            for (size_t k = 0; k < d->numel; k++) {
                if (is_w) {
                    lin_ss += (double)x[k] * x[k];
                    lin_n++;
                } else if (x[k] != 0.0f && !bad++)
                    snprintf(what, sizeof(what), "%s[%zu] = %g", n, k, x[k]);
            }
        } else {
            char wn[CATANET_NAME_MAX + 8];
            snprintf(wn, sizeof(wn), "%.*s.weight", (int)(strlen(n) - (is_w ? 7 : 5)), n);
            const CatanetTensorDef *w = catanet_model_find(m, wn);
            double bound = 1.0 / sqrt((double)w->shape[1] * w->shape[2] * w->shape[3]), mxv = 0, ss = 0;
            for (size_t k = 0; k < d->numel; k++) {
                mxv = fmax(mxv, fabs(x[k]));
                ss += (double)x[k] * x[k];
            }
            double sd = sqrt(ss / d->numel);
            /* U(-b, b): max close to b, std b/sqrt(3) (checked where the tensor is large) */
            if (mxv > bound || (d->numel >= 1000 && (mxv < 0.95 * bound || fabs(sd / (bound / sqrt(3.0)) - 1) > 0.06))) {
                if (!bad++)
                    snprintf(what, sizeof(what), "%s: max %g std %g, bound %g", n, mxv, sd, bound);
            }
            convs++;
        }
    }
    double lin_sd = sqrt(lin_ss / lin_n), means_sd = sqrt(means_ss / means_n);
    test_check(!bad, "init: LayerNorm 1/0, Linear biases 0, %d conv tensors U(+-1/sqrt(fan_in)) %s", convs, what);
    test_check(fabs(lin_sd - 0.02) < 0.0005, "init: Linear weights std %.5f (0.02)", lin_sd);
    test_check(fabs(means_sd - 1.0) < 0.03, "init: means randn, std %.3f", means_sd);
    int any_init = 0;
    for (int g = 0; g < m->info.num_groups; g++)
        any_init |= m->initted[g];
    test_check(!any_init, "init: initted False");
    catanet_model_free(m);
    catanet_model_free(m2);
}

int main(int argc, char **argv)
{
    check_init();
    check_model_fd(1);
    check_model_fd(3);
    check_model_fd(4);
    check_overfit();
    check_case("train_x2_random_initted.safetensors", 0, 0);
    check_case("train_x2_random_first_step.safetensors", 1, 0);
    /* the plain reference ops end to end (slow: about a minute of CPU), on one case */
    if (!(argc > 1 && !strcmp(argv[1], "--fast-only")))
        check_case("train_x2_random_first_step.safetensors", 1, 1);
    check_threads();
    return test_finish();
}
