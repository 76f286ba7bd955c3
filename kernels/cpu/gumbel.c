/*
 * gumbel.c: the pieces of learnable depth masks (TinyFusion / TinySR, training-spec §2.1, §5.7):
 *   - Gumbel noise from a caller-owned splitmix64 state (no global RNG);
 *   - the hard Gumbel-softmax with the straight-through gradient:
 *       y_soft = softmax((s*g + G) / tau), forward value y_hard = onehot(argmax y_soft),
 *       backward: the gradient w.r.t. y_hard is passed to y_soft (PyTorch's
 *       y_hard - y_soft.detach() + y_soft), dg += (s/tau) * y_soft * (dy - <y_soft, dy>);
 *   - mask composition m = y^T opt (opt [K options][L layers]) and its transpose;
 *   - the gated residual y = x + m (gx - x) per image (gx = the group's output), and its branch
 *     form y = x + m r (r = gx - x, the residual branch: what the network computes).
 *
 * defines: catanet_gumbel_noise, catanet_gumbel_softmax_fwd_ref, catanet_gumbel_softmax_bwd_ref,
 *          catanet_mask_compose_fwd_ref, catanet_mask_compose_bwd_ref, catanet_gated_residual_fwd_ref,
 *          catanet_gated_residual_bwd_ref, catanet_gate_branch_fwd_ref, catanet_gate_branch_bwd_ref
 */
#include <math.h>
#include <string.h>

#include "kernels.h"

void catanet_gumbel_noise(uint64_t *state, int k, float *g)
{
    for (int i = 0; i < k; i++) {
        uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        z ^= z >> 31;
        double u = ((z >> 11) + 0.5) * (1.0 / 9007199254740992.0); /* (0,1), never 0 or 1 */
        g[i] = (float)-log(-log(u));
    }
}

/* logits [k], noise [k] (NULL: none) -> y_soft [k]; returns argmax (first on ties) = the hard one-hot */
int catanet_gumbel_softmax_fwd_ref(int k, const float *logits, const float *noise, float scale, float tau,
                                   float *y_soft)
{
    double mx = -INFINITY;
    int best = 0;
    for (int i = 0; i < k; i++) {
        double z = ((double)scale * logits[i] + (noise ? noise[i] : 0.0)) / tau;
        y_soft[i] = (float)z;
        if (z > mx) {
            mx = z;
            best = i;
        }
    }
    double sum = 0;
    for (int i = 0; i < k; i++)
        sum += exp((double)y_soft[i] - mx);
    for (int i = 0; i < k; i++)
        y_soft[i] = (float)(exp((double)y_soft[i] - mx) / sum);
    return best;
}

/* dlogits [k] += (scale/tau) J_softmax^T dy, dy = the gradient w.r.t. the (hard) sample */
void catanet_gumbel_softmax_bwd_ref(int k, const float *y_soft, const float *dy, float scale, float tau,
                                    float *dlogits)
{
    double d = 0;
    for (int i = 0; i < k; i++)
        d += (double)y_soft[i] * dy[i];
    for (int i = 0; i < k; i++)
        dlogits[i] += (float)((double)scale / tau * y_soft[i] * (dy[i] - d));
}

/* m [l] = sum_k y[k] opt[k][l] */
void catanet_mask_compose_fwd_ref(int k, int l, const float *y, const float *opt, float *m)
{
    for (int j = 0; j < l; j++) {
        double s = 0;
        for (int i = 0; i < k; i++)
            s += (double)y[i] * opt[(size_t)i * l + j];
        m[j] = (float)s;
    }
}

/* dy [k] += opt dm */
void catanet_mask_compose_bwd_ref(int k, int l, const float *opt, const float *dm, float *dy)
{
    for (int i = 0; i < k; i++) {
        double s = 0;
        for (int j = 0; j < l; j++)
            s += (double)opt[(size_t)i * l + j] * dm[j];
        dy[i] += (float)s;
    }
}

/* batch images of n values: y = x + m[b] (gx - x) */
void catanet_gated_residual_fwd_ref(int batch, size_t n, const float *m, const float *x, const float *gx, float *y)
{
    for (int b = 0; b < batch; b++)
        for (size_t i = (size_t)b * n; i < (size_t)(b + 1) * n; i++)
            y[i] = x[i] + m[b] * (gx[i] - x[i]);
}

/* dx += (1 - m) dy; dgx += m dy; dm[b] += sum dy (gx - x)  (any output may be NULL) */
void catanet_gated_residual_bwd_ref(int batch, size_t n, const float *m, const float *x, const float *gx,
                                    const float *dy, float *dx, float *dgx, float *dm)
{
    for (int b = 0; b < batch; b++) {
        double s = 0;
        for (size_t i = (size_t)b * n; i < (size_t)(b + 1) * n; i++) {
            if (dx)
                dx[i] += (1.0f - m[b]) * dy[i];
            if (dgx)
                dgx[i] += m[b] * dy[i];
            s += (double)dy[i] * (gx[i] - x[i]);
        }
        if (dm)
            dm[b] += (float)s;
    }
}

/* branch form: y = x + m[b] r. With m = 0 the result is x bit for bit (x + 0 = x), which is what
 * makes a one-hot mask reproduce the extracted student exactly. */
void catanet_gate_branch_fwd_ref(int batch, size_t n, const float *m, const float *x, const float *r, float *y)
{
    for (int b = 0; b < batch; b++)
        for (size_t i = (size_t)b * n; i < (size_t)(b + 1) * n; i++)
            y[i] = x[i] + m[b] * r[i];
}

/* dr [batch*n] = m dy (overwritten); dm[b] += sum dy r (the x path, dx += dy, is the caller's) */
void catanet_gate_branch_bwd_ref(int batch, size_t n, const float *m, const float *r, const float *dy, float *dr,
                                 float *dm)
{
    for (int b = 0; b < batch; b++) {
        double s = 0;
        for (size_t i = (size_t)b * n; i < (size_t)(b + 1) * n; i++) {
            if (dr)
                dr[i] = m[b] * dy[i];
            s += (double)dy[i] * r[i];
        }
        if (dm)
            dm[b] += (float)s;
    }
}
