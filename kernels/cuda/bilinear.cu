/*
 * bilinear.cu: F.interpolate(bilinear, align_corners=False) by an integer factor on planar images
 * (twin of kernels/cpu/bilinear.c), and the network's tail fused with it: base + last_conv output,
 * back to planar, cropped.
 * defines: catanet_bilinear_fwd_cuda, catanet_bilinear_add_fwd_cuda
 */
#include "cuda_common.cuh"

/* the CPU twin's src_index, same float arithmetic */
__device__ static inline void src_index(int d, int s, int n, int *i0, int *i1, float *l1)
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

__device__ static inline float bilinear_at(const float *ip, int h, int w, int s, int y, int x)
{
    int y0, y1, x0, x1;
    float ly, lx;
    src_index(y, s, h, &y0, &y1, &ly);
    src_index(x, s, w, &x0, &x1, &lx);
    float top = (1.0f - lx) * ip[(size_t)y0 * w + x0] + lx * ip[(size_t)y0 * w + x1];
    float bot = (1.0f - lx) * ip[(size_t)y1 * w + x0] + lx * ip[(size_t)y1 * w + x1];
    return (1.0f - ly) * top + ly * bot;
}

/* in [P][H][W] -> out [P][sH][sW]; x over threads, rows over grid.y (strided), planes over grid.z */
__global__ void bilinear_kernel(int h, int w, int s, const float *in, float *out)
{
    int oh = h * s, ow = w * s, x = blockIdx.x * blockDim.x + threadIdx.x, p = blockIdx.z;
    if (x >= ow)
        return;
    for (int y = blockIdx.y; y < oh; y += gridDim.y)
        out[((size_t)p * oh + y) * ow + x] = bilinear_at(in + (size_t)p * h * w, h, w, s, y, x);
}

/* out [3][ch][cw] = bilinear(in)[3][..crop] + res NHWC [s h][s w][3] */
/* nonfinite (NULL or a device counter): each NaN or Inf written adds 1, so the engine can refuse
 * the frame without reading it back; the atomic runs only for such values */
__global__ void bilinear_add_kernel(int h, int w, int s, const float *in, const float *res, int crop_h,
                                    int crop_w, float *out, unsigned *nonfinite)
{
    int ow = w * s, x = blockIdx.x * blockDim.x + threadIdx.x, c = blockIdx.z;
    if (x >= crop_w)
        return;
    for (int y = blockIdx.y; y < crop_h; y += gridDim.y) {
        float v = bilinear_at(in + (size_t)c * h * w, h, w, s, y, x) + res[((size_t)y * ow + x) * 3 + c];
        out[((size_t)c * crop_h + y) * crop_w + x] = v;
        if (nonfinite && !isfinite(v))
            atomicAdd(nonfinite, 1u);
    }
}

static dim3 grid_2d(int w, int h, int planes)
{
    return dim3((unsigned)((w + CUDA_THREADS - 1) / CUDA_THREADS), (unsigned)(h < 65535 ? h : 65535), (unsigned)planes);
}

int catanet_bilinear_fwd_cuda(CatanetCudaCtx *cx, int planes, int h, int w, int s, const float *in,
                              float *out)
{
    CUDA_REQUIRE(cx, planes > 0 && planes <= 65535 && h > 0 && w > 0 && s > 0, "bilinear_fwd_cuda");
    bilinear_kernel<<<grid_2d(w * s, h * s, planes), CUDA_THREADS, 0, cx->stream>>>(h, w, s, in, out);
    CUDA_LAUNCHED(cx, "bilinear");
    return 0;
}

int catanet_bilinear_add_fwd_cuda(CatanetCudaCtx *cx, int h, int w, int s, const float *in,
                                  const float *res, int crop_h, int crop_w, float *out, unsigned *nonfinite)
{
    CUDA_REQUIRE(cx, h > 0 && w > 0 && s > 0, "bilinear_add_fwd_cuda");
    CUDA_REQUIRE(cx, crop_h > 0 && crop_w > 0 && crop_h <= h * s && crop_w <= w * s, "bilinear_add_fwd_cuda");
    bilinear_add_kernel<<<grid_2d(crop_w, crop_h, 3), CUDA_THREADS, 0, cx->stream>>>(h, w, s, in, res, crop_h,
                                                                                   crop_w, out, nonfinite);
    CUDA_LAUNCHED(cx, "bilinear_add");
    return 0;
}
