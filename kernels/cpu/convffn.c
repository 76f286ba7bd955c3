/*
 * convffn.c: CATANet's ConvFFN under PreNorm with its residual, as one op:
 *   x += fc2(a + gelu(dwconv5x5(a))),  a = gelu(fc1(LayerNorm(x)))
 * (spec section 2: ConvFFN; the depthwise conv zero-pads a, its input). The reference composes the
 * reference ops in the order the official forward runs them; it is the twin of the fused CUDA kernel
 * (kernels/cuda/convffn.cu) and the CPU forward's reference path.
 * defines: catanet_convffn_fwd_ref, catanet_convffn_work, catanet_convffn_fwd_cpu
 */
#include "blas.h"
#include <omp.h>
#include <string.h>

#include "kernels.h"

void catanet_convffn_fwd_ref(const CatanetConvffnArgs *a, const CatanetConvffnWeights *w, float *x, float *t,
                             float *h, float *hd)
{
    int n = a->h * a->w, d = a->dim, mlp = a->hidden;
    size_t nh = (size_t)n * mlp, nd = (size_t)n * d;
    catanet_layernorm_fwd_ref(n, d, x, w->norm_w, w->norm_b, t, NULL, NULL);
    catanet_linear_fwd_ref(n, d, mlp, t, w->fc1_w, w->fc1_b, h);
    catanet_gelu_fwd_ref(nh, h, h);
    CatanetDwconvArgs da = { 1, a->h, a->w, mlp, 5 };
    catanet_dwconv_fwd_ref(&da, h, w->dw_w, w->dw_b, hd);
    catanet_gelu_fwd_ref(nh, hd, hd);
    for (size_t i = 0; i < nh; i++)
        h[i] += hd[i];
    catanet_linear_fwd_ref(n, mlp, d, h, w->fc2_w, w->fc2_b, t);
    for (size_t i = 0; i < nd; i++)
        x[i] += t[i];
}

/* per thread: a LayerNorm'd row chunk, then one image row of the hidden and of fc2's output */
size_t catanet_convffn_work(const CatanetConvffnArgs *a)
{
    size_t chunk = (size_t)CATANET_ROW_CHUNK * a->dim, row = (size_t)a->w * (a->hidden + a->dim);
    return chunk > row ? chunk : row;
}

/* Every value is computed by one task of a fixed partition (row chunks, then image rows), so the
 * result does not depend on the thread count. */
int catanet_convffn_fwd_cpu(const CatanetCpu *cpu, const CatanetConvffnArgs *a, const CatanetConvffnWeights *w,
                            float *x, float *h)
{
    int n = a->h * a->w, d = a->dim, mlp = a->hidden;
    CatanetDwconvArgs da = { 1, a->h, a->w, mlp, 5 };
    float wtt[CATANET_DW_MAX_WEIGHTS];
    if (catanet_dwconv_taps(&da, w->dw_w, wtt))
        return -1;
    int nchunks = (n + CATANET_ROW_CHUNK - 1) / CATANET_ROW_CHUNK;
#pragma omp parallel num_threads(cpu->threads)
    {
        CATANET_BLAS_SERIAL();
        float *work = cpu->work + (size_t)omp_get_thread_num() * cpu->work_per_thread;
        CatanetCpu one = { 1, NULL, 0 };
        /* a = gelu(fc1(LN(x))) by row chunks */
#pragma omp for schedule(static)
        for (int ch = 0; ch < nchunks; ch++) {
            int r0 = ch * CATANET_ROW_CHUNK, rows = n - r0 < CATANET_ROW_CHUNK ? n - r0 : CATANET_ROW_CHUNK;
            float *hc = h + (size_t)r0 * mlp;
            catanet_layernorm_fwd_cpu(&one, rows, d, x + (size_t)r0 * d, w->norm_w, w->norm_b, work);
            for (int r = 0; r < rows; r++)
                memcpy(hc + (size_t)r * mlp, w->fc1_b, sizeof(float) * mlp);
            catanet_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, mlp, d, 1.0f, work, d, w->fc1_w, d, 1.0f,
                          hc, mlp);
            catanet_gelu_fwd_cpu((size_t)rows * mlp, hc, hc);
        }
        /* x += fc2(a + gelu(dw(a))) by image rows (the conv reads a's rows y-2..y+2) */
        float *dr = work, *yr = work + (size_t)a->w * mlp;
#pragma omp for schedule(static)
        for (int y = 0; y < a->h; y++) {
            const float *ar = h + (size_t)y * a->w * mlp;
            catanet_dwconv_row_cpu(&da, y, h, wtt, w->dw_b, dr);
            catanet_gelu_fwd_cpu((size_t)a->w * mlp, dr, dr);
            for (size_t i = 0; i < (size_t)a->w * mlp; i++)
                dr[i] += ar[i];
            for (int r = 0; r < a->w; r++)
                memcpy(yr + (size_t)r * d, w->fc2_b, sizeof(float) * d);
            catanet_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, a->w, d, mlp, 1.0f, dr, mlp, w->fc2_w, mlp, 1.0f,
                          yr, d);
            float *xr = x + (size_t)y * a->w * d;
            for (size_t i = 0; i < (size_t)a->w * d; i++)
                xr[i] += yr[i];
        }
    }
    return 0;
}
