/*
 * adam.c: the Adam update (torch.optim.Adam, weight_decay 0, amsgrad off), elementwise.
 * defines: catanet_adam_update_ref
 */
#include <math.h>

#include "kernels.h"

/* step t >= 1 (after incrementing):
 *   m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2
 *   p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)     (PyTorch's formulation) */
void catanet_adam_update_ref(size_t n, float *p, const float *g, float *m, float *v, float lr,
                             float b1, float b2, float eps, int64_t t)
{
    double bc1 = 1.0 - pow(b1, (double)t), bc2 = 1.0 - pow(b2, (double)t);
    float step = (float)(lr / bc1), inv_sqrt_bc2 = (float)(1.0 / sqrt(bc2));
    for (size_t i = 0; i < n; i++) {
        m[i] = b1 * m[i] + (1.0f - b1) * g[i];
        v[i] = b2 * v[i] + (1.0f - b2) * g[i] * g[i];
        p[i] -= step * m[i] / (sqrtf(v[i]) * inv_sqrt_bc2 + eps);
    }
}
