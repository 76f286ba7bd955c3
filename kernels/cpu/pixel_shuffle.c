/*
 * pixel_shuffle.c: PixelShuffle(r) on NHWC tensors (a permutation).
 * defines: catanet_pixel_shuffle_fwd_ref, catanet_pixel_shuffle_bwd_ref
 */
#include "kernels.h"

/* in [B,H,W,C*r*r] -> out [B,H*r,W*r,C]; out[b][h*r+i][w*r+j][c] = in[b][h][w][c*r*r+i*r+j] */
void catanet_pixel_shuffle_fwd_ref(const CatanetShuffleArgs *a, const float *in, float *out)
{
    int r = a->r, c = a->c, ow = a->w * r;
    for (int b = 0; b < a->batch; b++)
        for (int h = 0; h < a->h; h++)
            for (int w = 0; w < a->w; w++) {
                const float *src = in + (((size_t)b * a->h + h) * a->w + w) * c * r * r;
                for (int i = 0; i < r; i++)
                    for (int j = 0; j < r; j++) {
                        float *dst = out + (((size_t)b * a->h * r + h * r + i) * ow + w * r + j) * c;
                        for (int ch = 0; ch < c; ch++)
                            dst[ch] = src[ch * r * r + i * r + j];
                    }
            }
}

/* the inverse permutation, accumulated */
void catanet_pixel_shuffle_bwd_ref(const CatanetShuffleArgs *a, const float *dout, float *din)
{
    int r = a->r, c = a->c, ow = a->w * r;
    for (int b = 0; b < a->batch; b++)
        for (int h = 0; h < a->h; h++)
            for (int w = 0; w < a->w; w++) {
                float *dst = din + (((size_t)b * a->h + h) * a->w + w) * c * r * r;
                for (int i = 0; i < r; i++)
                    for (int j = 0; j < r; j++) {
                        const float *src =
                            dout + (((size_t)b * a->h * r + h * r + i) * ow + w * r + j) * c;
                        for (int ch = 0; ch < c; ch++)
                            dst[ch * r * r + i * r + j] += src[ch];
                    }
            }
}
