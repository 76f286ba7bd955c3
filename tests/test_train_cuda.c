/*
 * test_train_cuda.c: one CUDA training step (training/model_train_cuda.c: forward in training mode,
 * L1 loss, backward) against the CPU training step (training/model_train.c, fast ops) and the
 * official reference, on the reference cases train_x2_random_initted and
 * train_x2_random_first_step: output, loss, every parameter gradient and the EMA-updated centers.
 * Tolerance: 1e-3 relative to each tensor's largest magnitude, the bound test_train.c holds the CPU
 * step to against the float64 reference. The CUDA ops differ from the CPU's only in summation order
 * (cuBLAS, tree reductions; test_twins: <= 1e-4 per op, the center ops bit-exact), so the two fp32
 * steps differ by accumulated rounding; the discrete decisions (k-means buckets, cluster order,
 * LeakyReLU branches) agree on these cases unless a value sits within rounding of a tie, and the
 * one such place test_train.c knows (upconv pre-activations within 1e-6 of 0) is masked the same
 * way here. Exit 77 with the reason when there is no CUDA build or no GPU. Under tests/cuda_emu
 * (make check-emu) it runs on the host emulator.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "testutil.h"

#if !HAVE_CUDA
int main(void)
{
    printf("SKIP: test_train_cuda: this build has no CUDA backend (configure found no nvcc/cuBLAS, or --disable-cuda)\n");
    return SKIP_CODE;
}
#else

#include <cuda_runtime.h>

#include "imageio.h"
#include "model.h"
#include "model_train.h"
#include "model_train_cuda.h"

#define REL_TOL 1e-3

static double rel_err(const float *a, const float *ref, size_t n, size_t *where)
{
    double d = max_abs_diff(a, ref, n, where), s = max_abs(ref, n);
    return d / (s > 1e-30 ? s : 1e-30);
}

/* upconv.weight rows whose LeakyReLU pre-activation is within 1e-6 of the kink (test_train.c) */
static void mask_kinks(const CatanetModel *m, const CatanetTrainPlan *cpu, const CatanetTensorDef *d, float *a, float *b)
{
    int C = m->info.dim, rr = m->info.upscale, hh = cpu->h * rr, ww = cpu->w * rr;
    size_t row = d->numel / d->shape[0];
    for (size_t e = 0; e < (size_t)cpu->batch * hh * ww * C; e++)
        if (fabsf(cpu->up_s[0][e]) < 1e-6f) {
            size_t pix = e / C;
            int c = (int)(e % C), X = (int)(pix % ww), Y = (int)(pix / ww % hh);
            int ch = c * rr * rr + (Y % rr) * rr + X % rr;
            printf("  upconv.weight row %d left out: lrelu pre-activation %.3g at a kink\n", ch, cpu->up_s[0][e]);
            memset(a + ch * row, 0, sizeof(float) * row);
            memset(b + ch * row, 0, sizeof(float) * row);
        }
}

static void check_case(const char *case_file, int first_step)
{
    char wpath[512], cpath[512], err[512];
    ref_path(wpath, sizeof(wpath), "weights_x2_random.safetensors");
    ref_path(cpath, sizeof(cpath), case_file);
    CatanetModel *mc = NULL, *gc = NULL, *mg = NULL, *gg = NULL;
    CatanetTrainPlan *cpu = NULL;
    CatanetTrainCuda *dev = NULL;
    float *x = NULL, *t = NULL, *out = NULL, *ref_out = NULL, *ref_loss = NULL;
    int64_t sx[8], st[8], sh[8];
    int nx, nt, nd;
    if (catanet_model_load(&mc, wpath, err, sizeof(err)) < 0 || catanet_model_load(&mg, wpath, err, sizeof(err)) < 0 ||
        catanet_model_create(&gc, &mc->info, err, sizeof(err)) < 0 ||
        catanet_model_create(&gg, &mc->info, err, sizeof(err)) < 0) {
        test_check(0, "load %s: %s", wpath, err);
        goto done;
    }
    if (first_step)
        for (int g = 0; g < mc->info.num_groups; g++)
            mc->initted[g] = mg->initted[g] = 0;
    x = load_tensor(cpath, "input", sx, &nx);
    t = load_tensor(cpath, "target", st, &nt);
    ref_out = load_tensor(cpath, "output", sh, &nd);
    ref_loss = load_tensor(cpath, "loss", sh, &nd);
    if (!x || !t || !ref_out || !ref_loss || nx != 4 || nt != 4) {
        test_check(0, "%s: input/target/output/loss missing", cpath);
        goto done;
    }
    int B = (int)sx[0], h = (int)sx[2], w = (int)sx[3];
    size_t no = (size_t)B * 3 * h * w * mc->info.upscale * mc->info.upscale, where;
    /* the CPU step */
    if (catanet_train_plan_create(&cpu, mc, B, h, w, 2, 0, err, sizeof(err)) < 0) {
        test_check(0, "CPU plan: %s", err);
        goto done;
    }
    catanet_model_zero(gc);
    catanet_train_forward(cpu, x, t);
    catanet_train_backward(cpu, t, gc);
    /* the CUDA step */
    int rc = catanet_train_cuda_create(&dev, mg, B, h, w, err, sizeof(err));
    if (rc < 0) {
        test_check(0, "CUDA plan: %s", err);
        goto done;
    }
    out = malloc(sizeof(float) * no);
    double loss = 0;
    if (catanet_train_cuda_zero_grads(dev) < 0 || catanet_train_cuda_forward(dev, x, t, out, &loss) < 0 ||
        catanet_train_cuda_backward(dev) < 0 || catanet_train_cuda_get_grads(dev, gg) < 0 ||
        catanet_train_cuda_get_weights(dev, mg) < 0) {
        test_check(0, "%s: CUDA step failed: %s", case_file, catanet_train_cuda_error(dev));
        goto done;
    }
    double e = rel_err(out, cpu->out, no, &where);
    test_check(e <= REL_TOL, "%s: CUDA vs CPU output rel err %.3g at %zu", case_file, e, where);
    e = rel_err(out, ref_out, no, &where);
    test_check(e <= REL_TOL, "%s: CUDA vs reference output rel err %.3g at %zu", case_file, e, where);
    double le = fabs(loss - cpu->loss) / fabs(cpu->loss), lr_ = fabs(loss - ref_loss[0]) / fabs(ref_loss[0]);
    test_check(le <= REL_TOL && lr_ <= REL_TOL, "%s: loss CUDA %.7g, CPU %.7g, reference %.7g (rel %.3g, %.3g)", case_file,
               loss, cpu->loss, ref_loss[0], le, lr_);
    double worst = 0;
    char worst_name[192] = "";
    size_t worst_at = 0;
    int n_checked = 0;
    for (int i = 0; i < mc->n_tensors; i++) {
        const CatanetTensorDef *d = &mc->tensors[i];
        const float *src_c = d->is_buffer ? mc->arena + d->offset : gc->arena + d->offset;
        const float *src_g = d->is_buffer ? mg->arena + d->offset : gg->arena + d->offset;
        float *a = malloc(sizeof(float) * d->numel), *b = malloc(sizeof(float) * d->numel);
        memcpy(a, src_g, sizeof(float) * d->numel);
        memcpy(b, src_c, sizeof(float) * d->numel);
        if (!strcmp(d->name, "upconv.weight"))
            mask_kinks(mc, cpu, d, a, b);
        double te = rel_err(a, b, d->numel, &where);
        if (te > REL_TOL)
            printf("  %s %s: CUDA vs CPU rel err %.3g at %zu\n", d->is_buffer ? "means_after" : "grad", d->name, te, where);
        if (te > worst || !n_checked) {
            worst = te;
            worst_at = where;
            snprintf(worst_name, sizeof(worst_name), "%s %s", d->is_buffer ? "means_after" : "grad", d->name);
        }
        n_checked++;
        free(a);
        free(b);
    }
    test_check(worst <= REL_TOL, "%s: %d grad/means_after tensors, CUDA vs CPU worst %s rel err %.3g at %zu", case_file,
               n_checked, worst_name, worst, worst_at);
    int all_init = 1;
    for (int g = 0; g < mg->info.num_groups; g++)
        all_init &= mg->initted[g];
    test_check(all_init, "%s: initted is True after the CUDA step", case_file);
done:
    catanet_train_cuda_free(dev);
    catanet_train_plan_free(cpu);
    catanet_model_free(mc);
    catanet_model_free(gc);
    catanet_model_free(mg);
    catanet_model_free(gg);
    free(x);
    free(t);
    free(out);
    free(ref_out);
    free(ref_loss);
}

int main(void)
{
    int n = 0;
    cudaError_t st = cudaGetDeviceCount(&n);
    if (st != cudaSuccess || n < 1) {
        printf("SKIP: test_train_cuda: no usable CUDA device (%s)\n",
               st != cudaSuccess ? cudaGetErrorString(st) : "cudaGetDeviceCount found none");
        return SKIP_CODE;
    }
    struct cudaDeviceProp prop;
    cudaGetDeviceProperties(&prop, 0);
    printf("device: %s\n", prop.name);
    if (!ref_cases_present())
        return 1;
    check_case("train_x2_random_initted.safetensors", 0);
    check_case("train_x2_random_first_step.safetensors", 1);
    return test_finish();
}
#endif
