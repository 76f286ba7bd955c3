/*
 * convffn.cu: the fp16 mode's ConvFFN, PreNorm and residual included, in one kernel (twin of
 * kernels/cpu/convffn.c):  y = x + fc2(a + gelu(dwconv5x5(a))),  a = gelu(fc1(LN(x))).
 * defines: catanet_convffn_fp16_smem, catanet_convffn_fp16_setup, catanet_convffn_fp16_fwd_cuda
 *
 * Why one kernel: run as separate passes, the two [N, hidden] intermediates (hidden = 96 for
 * CATANet) go through DRAM three times, ~1,100 of the ~1,250 bytes a token the ConvFFN moves even
 * with fp16 intermediates, twice per residual group (docs/roofline.md). Here a block takes an
 * 8 x 16 tile of output tokens and keeps everything between x and y in shared memory: it reads x
 * for the tile and its 2-token halo and writes y once, ~320 bytes a token.
 *
 * A block (8 warps):
 *   1. x for the 12 x 20 halo tokens, staged in fp32 (in the space a takes later) by all threads
 *      with independent float4 loads, so that the tile's DRAM reads are in flight together rather
 *      than a token at a time; then LayerNorm (fp32, a warp per token), rounded to fp16 -> xs;
 *      tokens outside the image are zero rows.
 *   2. fc1 + bias + GELU on the tensor cores (mma.sync m16n8k16, fp32 accumulation): 15 m-tiles of
 *      16 halo tokens over the warps -> a, stored as fp16 (as the separate passes store it). Tokens
 *      outside the image get a = 0: the depthwise conv zero-pads its input, which is a.
 *   3. 5x5 depthwise conv + bias, GELU, + a (fp32 arithmetic, one channel pair per thread) for the
 *      128 interior tokens -> dd, fp16, in the space xs held.
 *   4. fc2 + bias + x on the tensor cores: warp w takes the tile's row w (16 tokens, one m-tile);
 *      fp32 out.
 * x may be stored as fp16 (x_fp16: the engine's fp16 mode, where TAB's proj pass and LRSA's combine
 * write it so: 80 bytes a token less to write and to read at d = 40); it is widened to fp32 where it
 * is loaded, so the kernel computes the same from the same values. y may be stored as fp16 too
 * (y_fp16: the residual stream in fp16), rounded from the same fp32 sum.
 * The rounding points are those of the fp16 mode's separate passes (LN(x), a, dd and the two
 * weight matrices in fp16; every sum in fp32), so the result matches them to within fp32 ordering.
 * The fc1 work of the halo (240 tokens for 128) is recomputed: tensor-core time is cheap here.
 *
 * Shared memory, d = 40, hidden = 96: 96 KB a block (two blocks an SM on sm_90; one on sm_80, sm_86,
 * sm_89; fc2's weights are read from L1, which keeps it below sm_86's 99 KB), above the default
 * 48 KB: catanet_convffn_fp16_setup raises the kernel's limit once, outside any graph capture, and
 * says CATANET_ERR_UNSUPPORTED where the device cannot give that much (then the engine keeps the
 * separate passes). Row strides are the padded widths + 8 halves, an odd multiple of 4 words, so the
 * fragment loads (8 rows x 4 words a warp) hit 32 different banks.
 */
#include "cuda_common.cuh"
#include "mma_16816.cuh"
#include "reduce.cuh"

#define CF_TH 8 /* output tile: 8 rows of 16 tokens, a row per warp in fc2 */
#define CF_TW 16
#define CF_K 5
#define CF_P (CF_K / 2)
#define CF_HH (CF_TH + CF_K - 1)  /* 12 */
#define CF_HW (CF_TW + CF_K - 1)  /* 20 */
#define CF_HALO (CF_HH * CF_HW)   /* 240 tokens: 15 m-tiles */
#define CF_OUT (CF_TH * CF_TW)    /* 128 tokens */
#define CF_THREADS 256
#define CF_MAX_DIM 64             /* fc1: at most 4 k-steps, fc2: at most 8 n-tiles */
#define CF_MAX_HIDDEN 128

/* the shared-memory plan, in halves then floats; the same on the host and the device */
struct CfLayout {
    int dk, sk;  /* dim padded to 16 (fc1's k), xs's row stride */
    int mk, sm;  /* hidden padded to 16, the row stride of a and dd */
    int dn;      /* dim padded to 8 (fc2's n) */
    int xs, a, w1; /* halves: xs (and later dd), a, fc1_w [mk][sk] */
    size_t bytes;
};

__host__ __device__ static inline CfLayout cf_layout(int dim, int hidden)
{
    CfLayout L;
    L.dk = (dim + 15) & ~15;
    L.sk = L.dk + 8;
    L.mk = (hidden + 15) & ~15;
    L.sm = L.mk + 8;
    L.dn = (dim + 7) & ~7;
    L.xs = CF_HALO * L.sk > CF_OUT * L.sm ? CF_HALO * L.sk : CF_OUT * L.sm;
    L.a = CF_HALO * (L.sm > 2 * dim ? L.sm : 2 * dim); /* a [CF_HALO][sm], or before it x in fp32 */
    L.w1 = L.mk * L.sk;
    /* floats after the halves: dw weights [25][mk], dw bias, fc1 bias [mk], fc2 bias [dn] */
    L.bytes = sizeof(__half) * (size_t)(L.xs + L.a + L.w1) + sizeof(float) * (size_t)(27 * L.mk + L.dn);
    return L;
}

/* A fragment (rows r0.., columns k0.. of a row-major fp16 matrix, stride s) and B fragment of
 * B[k][n] = W[n][k] (W row-major [n][s], k contiguous): mma_16816.cuh's layout */
__device__ static inline void cf_load_a(uint32_t a[4], const __half *m, int s, int r0, int k0, int g, int t)
{
    const __half *p = m + (size_t)(r0 + g) * s + k0 + 2 * t;
    a[0] = *(const uint32_t *)p;
    a[1] = *(const uint32_t *)(p + 8 * s);
    a[2] = *(const uint32_t *)(p + 8);
    a[3] = *(const uint32_t *)(p + 8 * s + 8);
}
__device__ static inline void cf_load_b(uint32_t b[2], const __half *w, int s, int n0, int k0, int g, int t)
{
    const __half *p = w + (size_t)(n0 + g) * s + k0 + 2 * t;
    b[0] = *(const uint32_t *)p;
    b[1] = *(const uint32_t *)(p + 8);
}

/* the same B fragment straight from fp32 weights in global memory (W [n][ld], k < kmax valid, rows
 * n < nmax), rounded as the shared copy would be: fc2's 15 KB stay in L1, and the 8 KB a shared copy
 * would take keep the block within the 99 KB an sm_86/sm_89 block may have */
__device__ static inline void cf_load_b_global(uint32_t b[2], const float *w, int ld, int nmax, int kmax, int n0,
                                               int k0, int g, int t)
{
    const int n = n0 + g, k = k0 + 2 * t;
    const float *p = w + (size_t)n * ld + k;
    const bool row = n < nmax;
    b[0] = mma_pack_half2(row && k < kmax ? p[0] : 0.0f, row && k + 1 < kmax ? p[1] : 0.0f);
    b[1] = mma_pack_half2(row && k + 8 < kmax ? p[8] : 0.0f, row && k + 9 < kmax ? p[9] : 0.0f);
}

__device__ static inline bool cf_inside(int r, int y0, int x0, int h, int w)
{
    int gy = y0 + r / CF_HW - CF_P, gx = x0 + r % CF_HW - CF_P;
    return (unsigned)gy < (unsigned)h && (unsigned)gx < (unsigned)w;
}

template <typename TX, typename TY>
__global__ void __launch_bounds__(CF_THREADS) convffn_fp16_kernel(int h, int w, int d, int hidden, const TX *x,
                                                                  CatanetConvffnWeights wt, TY *y)
{
    extern __shared__ float4 cf_smem[];
    const CfLayout L = cf_layout(d, hidden);
    __half *xs = (__half *)cf_smem;  /* [CF_HALO][sk], then dd [CF_OUT][sm] */
    __half *dd = xs;
    __half *a = xs + L.xs;           /* [CF_HALO][sm] */
    __half *w1 = a + L.a;            /* [mk][sk] */
    float *dww = (float *)(w1 + L.w1); /* [25][mk]: a channel pair's taps are adjacent */
    float *dwb = dww + 25 * L.mk, *b1 = dwb + L.mk, *b2 = b1 + L.mk;
    const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, g = lane >> 2, t = lane & 3;
    const int x0 = blockIdx.x * CF_TW, y0 = blockIdx.y * CF_TH;

    /* the weights, zero-padded; the matrices rounded to fp16 as the fp16 mode's GEMMs round them */
    for (int i = tid; i < L.mk * L.sk; i += CF_THREADS) {
        int n = i / L.sk, k = i - n * L.sk;
        w1[i] = __float2half_rn(n < hidden && k < d ? wt.fc1_w[(size_t)n * d + k] : 0.0f);
    }
    for (int i = tid; i < 25 * L.mk; i += CF_THREADS) {
        int tap = i / L.mk, c = i - tap * L.mk;
        dww[i] = c < hidden ? wt.dw_w[(size_t)c * 25 + tap] : 0.0f;
    }
    for (int i = tid; i < L.mk; i += CF_THREADS) {
        dwb[i] = i < hidden ? wt.dw_b[i] : 0.0f;
        b1[i] = i < hidden ? wt.fc1_b[i] : 0.0f;
    }
    for (int i = tid; i < L.dn; i += CF_THREADS)
        b2[i] = i < d ? wt.fc2_b[i] : 0.0f;

    /* 1. the halo tokens' x (zeros outside the image), then their LayerNorm (two passes in fp32, as
     * layernorm.cu), rounded to fp16 */
    float *xt = (float *)a; /* [CF_HALO][d] */
    const int q4 = d / 4;
    for (int i = tid; i < CF_HALO * q4; i += CF_THREADS) {
        int r = i / q4, q = i - r * q4;
        float4 v = { 0.0f, 0.0f, 0.0f, 0.0f };
        if (cf_inside(r, y0, x0, h, w))
            v = ld_act4(x + ((size_t)(y0 + r / CF_HW - CF_P) * w + x0 + r % CF_HW - CF_P) * d + 4 * q);
        ((float4 *)xt)[i] = v;
    }
    __syncthreads();
    for (int r = warp; r < CF_HALO; r += 8) {
        __half *row = xs + (size_t)r * L.sk;
        if (!cf_inside(r, y0, x0, h, w)) { /* warp-uniform */
            for (int ch = lane; ch < L.sk; ch += 32)
                row[ch] = __float2half_rn(0.0f);
            continue;
        }
        const float *xr = xt + (size_t)r * d;
        float s = 0.0f;
        for (int ch = lane; ch < d; ch += 32)
            s += xr[ch];
        float mean = warp_sum(s) / d, q = 0.0f;
        for (int ch = lane; ch < d; ch += 32) {
            float v = xr[ch] - mean;
            q += v * v;
        }
        float rstd = rsqrtf(warp_sum(q) / d + CATANET_LN_EPS);
        for (int ch = lane; ch < L.sk; ch += 32)
            row[ch] = __float2half_rn(ch < d ? (xr[ch] - mean) * rstd * wt.norm_w[ch] + wt.norm_b[ch] : 0.0f);
    }
    __syncthreads(); /* xt is read for the last time above: a takes its place */

    /* 2. a = gelu(fc1(xs) + b1), zero outside the image */
    const int ks1 = L.dk / 16, nt1 = L.mk / 8;
    for (int mt = warp; mt < CF_HALO / 16; mt += 8) {
        const int r0 = mt * 16;
        uint32_t af[CF_MAX_DIM / 16][4];
#pragma unroll
        for (int ks = 0; ks < CF_MAX_DIM / 16; ks++)
            if (ks < ks1)
                cf_load_a(af[ks], xs, L.sk, r0, ks * 16, g, t);
        const bool in0 = cf_inside(r0 + g, y0, x0, h, w), in1 = cf_inside(r0 + g + 8, y0, x0, h, w);
        for (int nt = 0; nt < nt1; nt++) {
            float acc[4] = { 0.0f, 0.0f, 0.0f, 0.0f };
#pragma unroll
            for (int ks = 0; ks < CF_MAX_DIM / 16; ks++)
                if (ks < ks1) {
                    uint32_t bf[2];
                    cf_load_b(bf, w1, L.sk, nt * 8, ks * 16, g, t);
                    mma_16816(acc, af[ks], bf);
                }
            const int c = nt * 8 + 2 * t;
            __half2 v0 = __floats2half2_rn(in0 ? gelu_exact(acc[0] + b1[c]) : 0.0f,
                                           in0 ? gelu_exact(acc[1] + b1[c + 1]) : 0.0f);
            __half2 v1 = __floats2half2_rn(in1 ? gelu_exact(acc[2] + b1[c]) : 0.0f,
                                           in1 ? gelu_exact(acc[3] + b1[c + 1]) : 0.0f);
            *(__half2 *)(a + (size_t)(r0 + g) * L.sm + c) = v0;
            *(__half2 *)(a + (size_t)(r0 + g + 8) * L.sm + c) = v1;
        }
    }
    __syncthreads(); /* xs is read for the last time above: dd takes its place */

    /* 3. dd = a + gelu(dwconv5x5(a) + bias) for the interior tokens; the taps in the CPU twin's order */
    const int np = L.mk / 2;
    for (int e = tid; e < CF_OUT * np; e += CF_THREADS) {
        int p = e / np, c = 2 * (e - p * np), py = p / CF_TW, px = p - py * CF_TW;
        float s0 = dwb[c], s1 = dwb[c + 1];
#pragma unroll
        for (int ky = 0; ky < CF_K; ky++)
#pragma unroll
            for (int kx = 0; kx < CF_K; kx++) {
                float2 v = __half22float2(*(const __half2 *)(a + (size_t)((py + ky) * CF_HW + px + kx) * L.sm + c));
                const float *wk = dww + (ky * CF_K + kx) * L.mk + c;
                s0 += v.x * wk[0];
                s1 += v.y * wk[1];
            }
        float2 ctr = __half22float2(*(const __half2 *)(a + (size_t)((py + CF_P) * CF_HW + px + CF_P) * L.sm + c));
        *(__half2 *)(dd + (size_t)p * L.sm + c) = __floats2half2_rn(ctr.x + gelu_exact(s0), ctr.y + gelu_exact(s1));
    }
    __syncthreads();

    /* 4. y = x + fc2(dd) + b2: warp w, the tile's row w */
    const int ks2 = L.mk / 16, nt2 = L.dn / 8;
    float acc[CF_MAX_DIM / 8][4];
#pragma unroll
    for (int nt = 0; nt < CF_MAX_DIM / 8; nt++)
        acc[nt][0] = acc[nt][1] = acc[nt][2] = acc[nt][3] = 0.0f;
    for (int ks = 0; ks < ks2; ks++) {
        uint32_t af[4];
        cf_load_a(af, dd, L.sm, warp * 16, ks * 16, g, t);
#pragma unroll
        for (int nt = 0; nt < CF_MAX_DIM / 8; nt++)
            if (nt < nt2) {
                uint32_t bf[2];
                cf_load_b_global(bf, wt.fc2_w, hidden, d, hidden, nt * 8, ks * 16, g, t);
                mma_16816(acc[nt], af, bf);
            }
    }
    const int gy = y0 + warp;
    if (gy >= h)
        return; /* no barrier follows */
#pragma unroll
    for (int half = 0; half < 2; half++) {
        int gx = x0 + g + 8 * half;
        if (gx >= w)
            continue;
        size_t at = ((size_t)gy * w + gx) * d;
#pragma unroll
        for (int nt = 0; nt < CF_MAX_DIM / 8; nt++)
#pragma unroll
            for (int j = 0; j < 2; j++) {
                int o = nt * 8 + 2 * t + j;
                if (nt < nt2 && o < d)
                    st_act(y + at + o, acc[nt][2 * half + j] + b2[o] + ld_act(x + at + o));
            }
    }
}

size_t catanet_convffn_fp16_smem(int dim, int hidden)
{
    return cf_layout(dim, hidden).bytes;
}

int catanet_convffn_fp16_setup(CatanetCudaCtx *cx, int dim, int hidden)
{
    CUDA_REQUIRE(cx, dim > 0 && dim <= CF_MAX_DIM && dim % 4 == 0 && hidden > 0 && hidden <= CF_MAX_HIDDEN,
                 "convffn_fp16_setup");
    size_t smem = catanet_convffn_fp16_smem(dim, hidden);
    int dev = 0, optin = 0;
    CUDA_TRY(cx, cudaGetDevice(&dev));
    CUDA_TRY(cx, cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev));
    if (smem > (size_t)optin)
        return cuda_fail(cx, CATANET_ERR_UNSUPPORTED,
                         "convffn_fp16: needs %zu bytes of shared memory a block, the device allows %d", smem, optin);
    CUDA_TRY(cx, cudaFuncSetAttribute(convffn_fp16_kernel<float, float>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                      (int)smem));
    CUDA_TRY(cx, cudaFuncSetAttribute(convffn_fp16_kernel<__half, float>,
                                      cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem));
    CUDA_TRY(cx, cudaFuncSetAttribute(convffn_fp16_kernel<__half, __half>,
                                      cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem));
    return 0;
}

int catanet_convffn_fp16_fwd_cuda(CatanetCudaCtx *cx, const CatanetConvffnArgs *a, const CatanetConvffnWeights *w,
                                  const float *x, int x_fp16, float *y, int y_fp16)
{
    CUDA_REQUIRE(cx, a && w && x && y && a->h >= 0 && a->w >= 0, "convffn_fp16_fwd_cuda");
    CUDA_REQUIRE(cx, a->dim > 0 && a->dim <= CF_MAX_DIM && a->dim % 4 == 0 && a->hidden > 0 &&
                     a->hidden <= CF_MAX_HIDDEN, "convffn_fp16_fwd_cuda");
    CUDA_REQUIRE(cx, ((uintptr_t)x & (x_fp16 ? 7 : 15)) == 0, "convffn_fp16_fwd_cuda"); /* 4-channel loads */
    CUDA_REQUIRE(cx, w->norm_w && w->norm_b && w->fc1_w && w->fc1_b && w->dw_w && w->dw_b && w->fc2_w && w->fc2_b,
                 "convffn_fp16_fwd_cuda");
    /* other blocks read x around their tiles while this one writes y: never in place */
    CUDA_REQUIRE(cx, (const float *)y != x, "convffn_fp16_fwd_cuda");
    CUDA_REQUIRE(cx, (a->h + CF_TH - 1) / CF_TH <= 65535, "convffn_fp16_fwd_cuda");
    if (a->h == 0 || a->w == 0)
        return 0;
    dim3 grid((unsigned)((a->w + CF_TW - 1) / CF_TW), (unsigned)((a->h + CF_TH - 1) / CF_TH));
    size_t smem = catanet_convffn_fp16_smem(a->dim, a->hidden);
    /* the three forms the engine uses: fp32 -> fp32, fp16 -> fp32, fp16 -> fp16 */
    CUDA_REQUIRE(cx, x_fp16 || !y_fp16, "convffn_fp16_fwd_cuda (fp32 x, fp16 y: not a form the engine uses)");
    const __half *xh = (const __half *)x;
    if (y_fp16)
        convffn_fp16_kernel<__half, __half><<<grid, CF_THREADS, smem, cx->stream>>>(a->h, a->w, a->dim, a->hidden, xh,
                                                                                    *w, (__half *)y);
    else if (x_fp16)
        convffn_fp16_kernel<__half, float><<<grid, CF_THREADS, smem, cx->stream>>>(a->h, a->w, a->dim, a->hidden, xh,
                                                                                   *w, y);
    else
        convffn_fp16_kernel<float, float><<<grid, CF_THREADS, smem, cx->stream>>>(a->h, a->w, a->dim, a->hidden, x,
                                                                                  *w, y);
    CUDA_LAUNCHED(cx, "convffn_fp16 (after catanet_convffn_fp16_setup)");
    return 0;
}
