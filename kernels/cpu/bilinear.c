/*
 * bilinear.c: F.interpolate(mode='bilinear', align_corners=False) by an integer factor, no antialias.
 * defines: catanet_bilinear_fwd_ref
 */
#include <math.h>

#include "kernels.h"

/* source coordinate of output index d (PyTorch's area_pixel_compute_source_index):
 * src = (d + 0.5)/s - 0.5, clamped at 0; i0 = floor, i1 = min(i0+1, n-1), weight = fraction */
static void src_index(int d, int s, int n, int *i0, int *i1, float *l1)
{
    float src = ((float)d + 0.5f) / (float)s - 0.5f;
    if (src < 0.0f)
        src = 0.0f;
    int lo = (int)src;
    if (lo > n - 1)
        lo = n - 1;
    *i0 = lo;
    *i1 = lo + 1 < n ? lo + 1 : n - 1;
    *l1 = src - (float)lo;
}

/* in [P][H][W] -> out [P][sH][sW] */
void catanet_bilinear_fwd_ref(int planes, int h, int w, int s, const float *in, float *out)
{
    int oh = h * s, ow = w * s;
    for (int p = 0; p < planes; p++) {
        const float *ip = in + (size_t)p * h * w;
        float *op = out + (size_t)p * oh * ow;
        for (int y = 0; y < oh; y++) {
            int y0, y1;
            float ly;
            src_index(y, s, h, &y0, &y1, &ly);
            for (int x = 0; x < ow; x++) {
                int x0, x1;
                float lx;
                src_index(x, s, w, &x0, &x1, &lx);
                float top = (1.0f - lx) * ip[(size_t)y0 * w + x0] + lx * ip[(size_t)y0 * w + x1];
                float bot = (1.0f - lx) * ip[(size_t)y1 * w + x0] + lx * ip[(size_t)y1 * w + x1];
                op[(size_t)y * ow + x] = (1.0f - ly) * top + ly * bot;
            }
        }
    }
}
