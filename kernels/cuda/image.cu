/*
 * image.cu: strided 8/10/12/16-bit RGB, grey and YUV device images <-> planar float RGB on the GPU
 * (twin of engine/image.c, same formulas in the same order): BT.601/709/2020 matrices, limited and
 * full range, chroma bilinearly interpolated and decimated ([1 2 1] / [1 1]) at the image's siting.
 * defines: catanet_image_to_rgb_cuda, catanet_image_from_rgb_cuda
 */
#include <string.h>

#include "cuda_common.cuh"

/* the image and its layout, passed to the kernels by value */
struct Img {
    int planar_rgb, packed, yuv, gray, semi, is_float;
    int sx, sy, wide, shift, order[3];
    int w, h, cw, ch;
    unsigned char *data[3];
    ptrdiff_t ls[3];
    float maxv, kr, kb, kg;
    float y_off, y_scale, c_off, c_scale;
    int hcos, vcos;
};

/* engine/image.c's layout_of + matrix_coefs + range_of */
static int img_of(const CatanetImage *im, Img *l)
{
    memset(l, 0, sizeof(*l));
    int bits = im->bits;
    if (im->width < 1 || im->height < 1 || !im->data[0])
        return CATANET_ERR_INVALID_ARG;
    if (im->format != CATANET_PIX_FLOAT_RGBP && (bits < 8 || bits > 16))
        return CATANET_ERR_UNSUPPORTED;
    l->wide = bits > 8;
    switch (im->format) {
    case CATANET_PIX_RGB24: l->packed = 1; l->order[0] = 0; l->order[1] = 1; l->order[2] = 2; l->wide = 0;
        if (bits != 8) return CATANET_ERR_UNSUPPORTED;
        break;
    case CATANET_PIX_BGR24: l->packed = 1; l->order[0] = 2; l->order[1] = 1; l->order[2] = 0; l->wide = 0;
        if (bits != 8) return CATANET_ERR_UNSUPPORTED;
        break;
    case CATANET_PIX_RGB48: l->packed = 1; l->order[0] = 0; l->order[1] = 1; l->order[2] = 2; l->wide = 1; break;
    case CATANET_PIX_RGBP: l->planar_rgb = 1; break;
    case CATANET_PIX_GRAY: l->gray = 1; break;
    case CATANET_PIX_YUV420P: l->yuv = 1; l->sx = 1; l->sy = 1; break;
    case CATANET_PIX_YUV422P: l->yuv = 1; l->sx = 1; break;
    case CATANET_PIX_YUV444P: l->yuv = 1; break;
    case CATANET_PIX_NV12: l->yuv = l->semi = 1; l->sx = l->sy = 1; l->wide = 0;
        if (bits != 8) return CATANET_ERR_UNSUPPORTED;
        break;
    case CATANET_PIX_P010: l->yuv = l->semi = 1; l->sx = l->sy = 1; l->wide = 1; l->shift = 16 - bits;
        if (bits <= 8) return CATANET_ERR_UNSUPPORTED;
        break;
    case CATANET_PIX_FLOAT_RGBP: l->planar_rgb = 1; l->is_float = 1; break;
    default: return CATANET_ERR_UNSUPPORTED;
    }
    int nplanes = (l->planar_rgb || (l->yuv && !l->semi)) ? 3 : l->semi ? 2 : 1;
    for (int p = 0; p < nplanes; p++)
        if (!im->data[p])
            return CATANET_ERR_INVALID_ARG;
    for (int p = 0; p < 3; p++) {
        l->data[p] = (unsigned char *)im->data[p];
        l->ls[p] = im->linesize[p];
    }
    l->w = im->width;
    l->h = im->height;
    l->cw = (l->w + (1 << l->sx) - 1) >> l->sx;
    l->ch = (l->h + (1 << l->sy) - 1) >> l->sy;
    l->maxv = l->is_float ? 1.0f : (float)((1 << bits) - 1);
    switch (im->matrix) {
    case CATANET_MATRIX_BT709: l->kr = 0.2126f; l->kb = 0.0722f; break;
    case CATANET_MATRIX_BT2020: l->kr = 0.2627f; l->kb = 0.0593f; break;
    default: l->kr = 0.299f; l->kb = 0.114f; break;
    }
    l->kg = 1.0f - l->kr - l->kb;
    if (!l->is_float) {
        float m = (float)(1 << (bits - 8));
        if (im->range == CATANET_RANGE_FULL) {
            l->y_off = 0.0f;
            l->y_scale = l->maxv;
            l->c_off = 128.0f * m;
            l->c_scale = l->maxv;
        } else {
            l->y_off = 16.0f * m;
            l->y_scale = 219.0f * m;
            l->c_off = 128.0f * m;
            l->c_scale = 224.0f * m;
        }
    }
    l->hcos = im->chroma_loc != CATANET_CHROMA_CENTER;
    l->vcos = im->chroma_loc == CATANET_CHROMA_TOPLEFT;
    return 0;
}

__device__ static inline float get(const Img &l, int plane, int x, int y, int st, int off)
{
    const unsigned char *row = l.data[plane] + (ptrdiff_t)y * l.ls[plane];
    size_t i = (size_t)x * st + off;
    if (l.wide)
        return (float)(((const unsigned short *)row)[i] >> l.shift);
    return (float)row[i];
}

__device__ static inline void put(const Img &l, int plane, int x, int y, int st, int off, float v)
{
    unsigned char *row = l.data[plane] + (ptrdiff_t)y * l.ls[plane];
    size_t i = (size_t)x * st + off;
    v = v < 0.0f ? 0.0f : v > l.maxv ? l.maxv : v;
    unsigned q = (unsigned)rintf(v); /* lrintf: nearest, ties to even */
    if (l.wide)
        ((unsigned short *)row)[i] = (unsigned short)(q << l.shift);
    else
        row[i] = (unsigned char)q;
}

__device__ static inline float clamp01(float v)
{
    return v < 0.0f ? 0.0f : v > 1.0f ? 1.0f : v;
}

__device__ static inline float chroma_pos(int x, int sub, int cosited)
{
    if (!sub)
        return (float)x;
    return cosited ? x * 0.5f : (x - 0.5f) * 0.5f;
}

__device__ static float chroma_at(const Img &l, int comp, float cx, float cy)
{
    int cw = l.cw, ch = l.ch;
    cx = cx < 0 ? 0 : cx > cw - 1 ? (float)(cw - 1) : cx;
    cy = cy < 0 ? 0 : cy > ch - 1 ? (float)(ch - 1) : cy;
    int x0 = (int)cx, y0 = (int)cy;
    int x1 = x0 + 1 < cw ? x0 + 1 : x0, y1 = y0 + 1 < ch ? y0 + 1 : y0;
    float fx = cx - x0, fy = cy - y0;
    int plane = l.semi ? 1 : 1 + comp, st = l.semi ? 2 : 1, off = l.semi ? comp : 0;
    float a = get(l, plane, x0, y0, st, off), b = get(l, plane, x1, y0, st, off);
    float c = get(l, plane, x0, y1, st, off), d = get(l, plane, x1, y1, st, off);
    return (1 - fy) * ((1 - fx) * a + fx * b) + fy * ((1 - fx) * c + fx * d);
}

/* one thread per pixel -> rgb [3][h][w] */
__global__ void to_rgb_kernel(Img l, float *rgb)
{
    size_t plane = (size_t)l.w * l.h;
    GRID_STRIDE(i, plane) {
        int x = (int)(i % l.w), y = (int)(i / l.w);
        if (l.is_float) {
            for (int c = 0; c < 3; c++)
                rgb[c * plane + i] = ((const float *)(l.data[c] + (ptrdiff_t)y * l.ls[c]))[x];
        } else if (!l.yuv) {
            for (int c = 0; c < 3; c++) {
                float v = l.packed ? get(l, 0, x, y, 3, l.order[c]) : l.gray ? get(l, 0, x, y, 1, 0) :
                                                                             get(l, c, x, y, 1, 0);
                rgb[c * plane + i] = v / l.maxv;
            }
        } else {
            float cy = chroma_pos(y, l.sy, l.vcos), cx = chroma_pos(x, l.sx, l.hcos);
            float Y = (get(l, 0, x, y, 1, 0) - l.y_off) / l.y_scale;
            float U = (chroma_at(l, 0, cx, cy) - l.c_off) / l.c_scale;
            float V = (chroma_at(l, 1, cx, cy) - l.c_off) / l.c_scale;
            float R = Y + 2.0f * (1.0f - l.kr) * V;
            float B = Y + 2.0f * (1.0f - l.kb) * U;
            float G = (Y - l.kr * R - l.kb * B) / l.kg;
            /* the network's input domain is [0,1]: out-of-range codes are clipped (as image.c does) */
            rgb[i] = clamp01(R);
            rgb[plane + i] = clamp01(G);
            rgb[2 * plane + i] = clamp01(B);
        }
    }
}

/* rgb [3][h][w] -> every format's first stage: all of RGB/grey/float, the luma of YUV */
__global__ void from_rgb_kernel(Img l, const float *rgb)
{
    size_t plane = (size_t)l.w * l.h;
    GRID_STRIDE(i, plane) {
        int x = (int)(i % l.w), y = (int)(i / l.w);
        if (l.is_float) {
            for (int c = 0; c < 3; c++)
                ((float *)(l.data[c] + (ptrdiff_t)y * l.ls[c]))[x] = rgb[c * plane + i];
        } else if (l.packed || l.planar_rgb) {
            for (int c = 0; c < 3; c++) {
                float v = clamp01(rgb[c * plane + i]) * l.maxv;
                if (l.packed)
                    put(l, 0, x, y, 3, l.order[c], v);
                else
                    put(l, c, x, y, 1, 0, v);
            }
        } else {
            float Y = l.kr * clamp01(rgb[i]) + l.kg * clamp01(rgb[plane + i]) + l.kb * clamp01(rgb[2 * plane + i]);
            if (l.gray)
                put(l, 0, x, y, 1, 0, Y * l.maxv);
            else
                put(l, 0, x, y, 1, 0, l.y_off + Y * l.y_scale);
        }
    }
}

/* engine/image.c's taps */
__device__ static int taps(int i, int sub, int cosited, int n, int *pos, float *wt)
{
    if (!sub) {
        pos[0] = i;
        wt[0] = 1.0f;
        return 1;
    }
    if (cosited) {
        pos[0] = 2 * i - 1 < 0 ? 0 : 2 * i - 1;
        pos[1] = 2 * i < n ? 2 * i : n - 1;
        pos[2] = 2 * i + 1 < n ? 2 * i + 1 : n - 1;
        wt[0] = 0.25f; wt[1] = 0.5f; wt[2] = 0.25f;
        return 3;
    }
    pos[0] = 2 * i < n ? 2 * i : n - 1;
    pos[1] = 2 * i + 1 < n ? 2 * i + 1 : n - 1;
    wt[0] = wt[1] = 0.5f;
    return 2;
}

/* one thread per chroma sample */
__global__ void from_rgb_chroma_kernel(Img l, const float *rgb)
{
    size_t plane = (size_t)l.w * l.h;
    GRID_STRIDE(j, (size_t)l.cw * l.ch) {
        int cx = (int)(j % l.cw), cy = (int)(j / l.cw);
        int py[3], px[3];
        float wy[3], wx[3];
        int ny = taps(cy, l.sy, l.vcos, l.h, py, wy);
        int nx = taps(cx, l.sx, l.hcos, l.w, px, wx);
        float U = 0.0f, V = 0.0f;
        for (int a = 0; a < ny; a++)
            for (int b = 0; b < nx; b++) {
                size_t i = (size_t)py[a] * l.w + px[b];
                float R = clamp01(rgb[i]), G = clamp01(rgb[plane + i]), B = clamp01(rgb[2 * plane + i]);
                float Y = l.kr * R + l.kg * G + l.kb * B;
                U += wy[a] * wx[b] * (B - Y) / (2.0f * (1.0f - l.kb));
                V += wy[a] * wx[b] * (R - Y) / (2.0f * (1.0f - l.kr));
            }
        if (l.semi) {
            put(l, 1, cx, cy, 2, 0, l.c_off + U * l.c_scale);
            put(l, 1, cx, cy, 2, 1, l.c_off + V * l.c_scale);
        } else {
            put(l, 1, cx, cy, 1, 0, l.c_off + U * l.c_scale);
            put(l, 2, cx, cy, 1, 0, l.c_off + V * l.c_scale);
        }
    }
}

int catanet_image_to_rgb_cuda(CatanetCudaCtx *cx, const CatanetImage *im, float *rgb)
{
    Img l;
    CUDA_REQUIRE(cx, im && rgb, "image_to_rgb_cuda");
    int ret = img_of(im, &l);
    if (ret < 0)
        return cuda_fail(cx, ret, "image_to_rgb_cuda: unsupported image (format %d, %d bits, %dx%d)",
                         (int)im->format, im->bits, im->width, im->height);
    to_rgb_kernel<<<grid_for((size_t)l.w * l.h, CUDA_THREADS), CUDA_THREADS, 0, cx->stream>>>(l, rgb);
    CUDA_LAUNCHED(cx, "image_to_rgb");
    return 0;
}

int catanet_image_from_rgb_cuda(CatanetCudaCtx *cx, const float *rgb, const CatanetImage *im)
{
    Img l;
    CUDA_REQUIRE(cx, im && rgb, "image_from_rgb_cuda");
    int ret = img_of(im, &l);
    if (ret < 0)
        return cuda_fail(cx, ret, "image_from_rgb_cuda: unsupported image (format %d, %d bits, %dx%d)",
                         (int)im->format, im->bits, im->width, im->height);
    from_rgb_kernel<<<grid_for((size_t)l.w * l.h, CUDA_THREADS), CUDA_THREADS, 0, cx->stream>>>(l, rgb);
    CUDA_LAUNCHED(cx, "image_from_rgb");
    if (l.yuv) {
        from_rgb_chroma_kernel<<<grid_for((size_t)l.cw * l.ch, CUDA_THREADS), CUDA_THREADS, 0, cx->stream>>>(l,
                                                                                                          rgb);
        CUDA_LAUNCHED(cx, "image_from_rgb chroma");
    }
    return 0;
}
