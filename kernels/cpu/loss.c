/*
 * loss.c: the L1 training loss (mean absolute error, nn.L1Loss(reduction='mean')).
 * defines: catanet_l1_loss_fwd_ref, catanet_l1_loss_bwd_ref
 */
#include <math.h>

#include "kernels.h"

/* mean |out - target| over n values, accumulated in double */
double catanet_l1_loss_fwd_ref(size_t n, const float *out, const float *target)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++)
        s += fabs((double)out[i] - target[i]);
    return n ? s / (double)n : 0.0;
}

/* forward: L = (1/n) sum |out - target|
 * dout += scale * sign(out - target) / n  (sign(0) = 0, as torch.sign in the L1 backward) */
void catanet_l1_loss_bwd_ref(size_t n, const float *out, const float *target, float scale,
                             float *dout)
{
    float g = n ? scale / (float)n : 0.0f;
    for (size_t i = 0; i < n; i++) {
        float d = out[i] - target[i];
        dout[i] += d > 0.0f ? g : d < 0.0f ? -g : 0.0f;
    }
}
