/*
 * activation.c: exact (erf) GELU and LeakyReLU(0.1), elementwise.
 * defines: catanet_gelu, catanet_gelu_fwd_ref, catanet_gelu_fwd_cpu, catanet_gelu_bwd_ref,
 *          catanet_lrelu_fwd_ref, catanet_lrelu_bwd_ref
 */
#include <math.h>

#include "fastmath.h"
#include "kernels.h"

/* nn.GELU(): 0.5 x (1 + erf(x / sqrt 2)) */
float catanet_gelu(float x)
{
    return 0.5f * x * (1.0f + erff(x * 0.70710678118654752f));
}

void catanet_gelu_fwd_ref(size_t n, const float *x, float *y)
{
    for (size_t i = 0; i < n; i++)
        y[i] = catanet_gelu(x[i]);
}

CLONES void catanet_gelu_fwd_cpu(size_t n, const float *x, float *y)
{
    for (size_t i = 0; i < n; i++) {
        float e;
        ERF_POLY(e, x[i] * 0.70710678118654752f);
        y[i] = 0.5f * x[i] * (1.0f + e);
    }
}

/* d/dx gelu = Phi(x) + x phi(x) */
void catanet_gelu_bwd_ref(size_t n, const float *x, const float *dy, float *dx)
{
    for (size_t i = 0; i < n; i++) {
        float cdf = 0.5f * (1.0f + erff(x[i] * 0.70710678118654752f));
        float pdf = expf(-0.5f * x[i] * x[i]) * 0.39894228040143268f;
        dx[i] += dy[i] * (cdf + x[i] * pdf);
    }
}

void catanet_lrelu_fwd_ref(size_t n, const float *x, float *y)
{
    for (size_t i = 0; i < n; i++)
        y[i] = x[i] >= 0.0f ? x[i] : CATANET_LRELU_SLOPE * x[i];
}

/* the output's sign equals the input's, so backward needs only y (in-place forward is fine) */
void catanet_lrelu_bwd_ref(size_t n, const float *y, const float *dy, float *dx)
{
    for (size_t i = 0; i < n; i++)
        dx[i] += y[i] > 0.0f ? dy[i] : CATANET_LRELU_SLOPE * dy[i];
}

/* the fast GELU backward: dx += dy (Phi(x) + x phi(x)) with the vectorisable erf and exp */
CLONES void catanet_gelu_bwd_cpu(size_t n, const float *x, const float *dy, float *dx)
{
    for (size_t i = 0; i < n; i++) {
        float e, p;
        ERF_POLY(e, x[i] * 0.70710678118654752f);
        EXP_POLY(p, -0.5f * x[i] * x[i]);
        dx[i] += dy[i] * (0.5f * (1.0f + e) + x[i] * p * 0.39894228040143268f);
    }
}
