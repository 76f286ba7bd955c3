/*
 * linear.c: fully connected layer on token rows (nn.Linear).
 * defines: catanet_linear_fwd_ref, catanet_linear_fwd_cpu, catanet_linear_bwd_ref
 */
#include "blas.h"
#include <string.h>

#include "kernels.h"

/* x [n,in], w [out,in], b [out] or NULL -> y [n,out] */
void catanet_linear_fwd_ref(int n, int in, int out, const float *x, const float *w,
                            const float *b, float *y)
{
    for (int r = 0; r < n; r++)
        for (int o = 0; o < out; o++) {
            float acc = b ? b[o] : 0.0f;
            for (int i = 0; i < in; i++)
                acc += x[(size_t)r * in + i] * w[(size_t)o * in + i];
            y[(size_t)r * out + o] = acc;
        }
}

/* Same contract; one sgemm per fixed chunk of rows (OpenBLAS runs single-threaded
 * inside our parallel region), so the result is the same for any thread count. */
void catanet_linear_fwd_cpu(const CatanetCpu *cpu, int n, int in, int out, const float *x,
                            const float *w, const float *b, float *y)
{
    int nchunks = (n + CATANET_ROW_CHUNK - 1) / CATANET_ROW_CHUNK;
#pragma omp parallel num_threads(cpu->threads)
    {
    CATANET_BLAS_SERIAL();
#pragma omp for schedule(static)
    for (int ch = 0; ch < nchunks; ch++) {
        int r0 = ch * CATANET_ROW_CHUNK;
        int rows = n - r0 < CATANET_ROW_CHUNK ? n - r0 : CATANET_ROW_CHUNK;
        float *yc = y + (size_t)r0 * out;
        float beta = 0.0f;
        if (b) {
            for (int r = 0; r < rows; r++)
                memcpy(yc + (size_t)r * out, b, sizeof(*b) * out);
            beta = 1.0f;
        }
        catanet_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, out, in, 1.0f,
                    x + (size_t)r0 * in, in, w, in, beta, yc, out);
    }
    }
}

/* forward: y = x w^T + b
 * dx[n][i] += sum_o dy[n][o] w[o][i];  dw[o][i] += sum_n dy[n][o] x[n][i];  db[o] += sum_n dy[n][o] */
void catanet_linear_bwd_ref(int n, int in, int out, const float *x, const float *w,
                            const float *dy, float *dx, float *dw, float *db)
{
    for (int r = 0; r < n; r++)
        for (int o = 0; o < out; o++) {
            float g = dy[(size_t)r * out + o];
            if (db)
                db[o] += g;
            for (int i = 0; i < in; i++) {
                if (dx)
                    dx[(size_t)r * in + i] += g * w[(size_t)o * in + i];
                if (dw)
                    dw[(size_t)o * in + i] += g * x[(size_t)r * in + i];
            }
        }
}

/* output rows of dw per task in the fast backward: fixed, so every dw element comes from the
 * same GEMM call whatever the thread count */
#define LIN_DW_SLICE 16

/* Same contract as the reference. dx: sgemm per fixed row chunk; dw: one sgemm over all rows per
 * fixed slice of output features; db: per output, a double sum in row order. */
void catanet_linear_bwd_cpu(const CatanetCpu *cpu, int n, int in, int out, const float *x,
                            const float *w, const float *dy, float *dx, float *dw, float *db)
{
    int nchunks = (n + CATANET_ROW_CHUNK - 1) / CATANET_ROW_CHUNK;
    int nslices = (out + LIN_DW_SLICE - 1) / LIN_DW_SLICE;
#pragma omp parallel num_threads(cpu->threads)
    {
    CATANET_BLAS_SERIAL();
    if (dx) {
#pragma omp for schedule(static)
        for (int ch = 0; ch < nchunks; ch++) {
            int r0 = ch * CATANET_ROW_CHUNK;
            int rows = n - r0 < CATANET_ROW_CHUNK ? n - r0 : CATANET_ROW_CHUNK;
            catanet_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, in, out, 1.0f,
                        dy + (size_t)r0 * out, out, w, in, 1.0f, dx + (size_t)r0 * in, in);
        }
    }
    if (dw) {
#pragma omp for schedule(dynamic, 1)
        for (int s = 0; s < nslices; s++) {
            int o0 = s * LIN_DW_SLICE;
            int cnt = out - o0 < LIN_DW_SLICE ? out - o0 : LIN_DW_SLICE;
            catanet_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, cnt, in, n, 1.0f, dy + o0, out, x,
                        in, 1.0f, dw + (size_t)o0 * in, in);
        }
    }
    if (db) {
#pragma omp for schedule(static)
        for (int o = 0; o < out; o++) {
            double s = 0.0;
            for (int r = 0; r < n; r++)
                s += dy[(size_t)r * out + o];
            db[o] += (float)s;
        }
    }
    }
}
