/*
 * convffn.c: CATANet's ConvFFN under PreNorm with its residual, as one op:
 *   x += fc2(a + gelu(dwconv5x5(a))),  a = gelu(fc1(LayerNorm(x)))
 * (spec section 2: ConvFFN; the depthwise conv zero-pads a, its input). The reference composes the
 * reference ops in the order the official forward runs them; it is the twin of the fused CUDA kernel
 * (kernels/cuda/convffn.cu) and the CPU forward's reference path.
 * defines: catanet_convffn_fwd_ref
 */
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
