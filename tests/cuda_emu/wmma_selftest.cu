/*
 * wmma_selftest.cu: the emulator's nvcuda::wmma and fp16 (tests/cuda_emu/include/mma.h, cuda_fp16.h)
 * against host arithmetic; built by `make emu-build` (prep.sh + g++ + emu.o), run by
 * tests/t_cuda_emu.sh. PASS/FAIL lines, exit 1 on any FAIL.
 *   1. float -> half rounding: every half round-trips; ties go to even; overflow, subnormals.
 *   2. one 16x16x16 product (A row-major, B col-major, C loaded, D stored column-major) and a
 *      32x48 (K = 32) product tiled over 6 warps through shared memory, against a host fp32 product
 *      of the half-rounded inputs (the emulator sums in k order from C, as the host loop does, so
 *      they agree to 1e-5 or better); the same product of the unrounded inputs must differ by more
 *      (the inputs really are rounded to fp16).
 *   3. code that assumes an element layout (x[i] of lane l = row l/2 ...) gets a wrong product.
 *   4. run in a child, each must abort: a divergent mma_sync (half the warp), one in a 16-thread
 *      block, a load of shared memory that the other lanes wrote without a __syncwarp before it.
 *   5. PTX mma.m16n8k16 (kernels/cuda/mma_16816.cuh) with fragments built from the PTX ISA's layout
 *      formulas, against the host product; a divergent one must abort.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <mma.h>

#include "mma_16816.cuh"

using namespace nvcuda;

static int fails;
static void check(bool ok, const char *what, double got, double bound)
{
    printf("%s: wmma selftest: %-58s %.3g (bound %.3g)\n", ok ? "PASS" : "FAIL", what, got, bound);
    fails += !ok;
}
/* a measured error that must stay within its bound, or (a wrong layout, an unrounded product) exceed it */
static void check_at_most(double err, double bound, const char *what) { check(err <= bound, what, err, bound); }
static void check_above(double err, double bound, const char *what) { check(err > bound, what, err, bound); }

/* one tile: D = A B + C; A [16][16] row-major, B stored column-major, C row-major, D column-major */
__global__ void one_tile(const __half *a, const __half *b, const float *c, float *d)
{
    wmma::fragment<wmma::matrix_a, 16, 16, 16, __half, wmma::row_major> fa;
    wmma::fragment<wmma::matrix_b, 16, 16, 16, __half, wmma::col_major> fb;
    wmma::fragment<wmma::accumulator, 16, 16, 16, float> fc;
    wmma::load_matrix_sync(fa, a, 16);
    wmma::load_matrix_sync(fb, b, 16);
    wmma::load_matrix_sync(fc, c, 16, wmma::mem_row_major);
    wmma::mma_sync(fc, fa, fb, fc);
    wmma::store_matrix_sync(d, fc, 16, wmma::mem_col_major);
}

/* C [32][48] = A [32][32] B [32][48], fp32 inputs rounded to half in shared memory; warp w owns the
 * output tile (w / 3, w % 3) */
__global__ void tiled(const float *a, const float *b, float *c)
{
    __shared__ __align__(32) __half as[32 * 32];
    __shared__ __align__(32) __half bs[32 * 48];
    for (int i = threadIdx.x; i < 32 * 32; i += blockDim.x)
        as[i] = __float2half_rn(a[i]);
    for (int i = threadIdx.x; i < 32 * 48; i += blockDim.x)
        bs[i] = __float2half_rn(b[i]);
    __syncthreads();
    int w = threadIdx.x / 32, tr = w / 3, tc = w % 3;
    wmma::fragment<wmma::matrix_a, 16, 16, 16, __half, wmma::row_major> fa;
    wmma::fragment<wmma::matrix_b, 16, 16, 16, __half, wmma::row_major> fb;
    wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
    wmma::fill_fragment(acc, 0.0f);
    for (int k = 0; k < 32; k += 16) {
        wmma::load_matrix_sync(fa, as + tr * 16 * 32 + k, 32);
        wmma::load_matrix_sync(fb, bs + k * 48 + tc * 16, 48);
        wmma::mma_sync(acc, fa, fb, acc);
    }
    wmma::store_matrix_sync(c + tr * 16 * 48 + tc * 16, acc, 48, wmma::mem_row_major);
}

/* wrong on purpose: writes the accumulator as if lane l held row l / 2, columns (l % 2) * 8 + i */
__global__ void assumes_layout(const __half *a, const __half *b, float *d)
{
    wmma::fragment<wmma::matrix_a, 16, 16, 16, __half, wmma::row_major> fa;
    wmma::fragment<wmma::matrix_b, 16, 16, 16, __half, wmma::row_major> fb;
    wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
    wmma::fill_fragment(acc, 0.0f);
    wmma::load_matrix_sync(fa, a, 16);
    wmma::load_matrix_sync(fb, b, 16);
    wmma::mma_sync(acc, fa, fb, acc);
    int l = threadIdx.x;
    for (int i = 0; i < acc.num_elements; i++)
        d[(l / 2) * 16 + (l % 2) * 8 + i] = acc.x[i];
}

/* wrong on purpose: each lane writes its share of A to shared memory, no __syncwarp before the load */
__global__ void missing_sync(const __half *a, const __half *b, float *d)
{
    __shared__ __align__(32) __half t[256];
    for (int i = threadIdx.x; i < 256; i += 32)
        t[i] = a[i];
    wmma::fragment<wmma::matrix_a, 16, 16, 16, __half, wmma::row_major> fa;
    wmma::fragment<wmma::matrix_b, 16, 16, 16, __half, wmma::row_major> fb;
    wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
    wmma::fill_fragment(acc, 0.0f);
    wmma::load_matrix_sync(fa, t, 16);
    wmma::load_matrix_sync(fb, b, 16);
    wmma::mma_sync(acc, fa, fb, acc);
    wmma::store_matrix_sync(d, acc, 16, wmma::mem_row_major);
}

/* illegal: only lanes < 16 (or a 16-thread block) reach mma_sync */
__global__ void divergent(const __half *a, const __half *b, float *d)
{
    wmma::fragment<wmma::matrix_a, 16, 16, 16, __half, wmma::row_major> fa;
    wmma::fragment<wmma::matrix_b, 16, 16, 16, __half, wmma::row_major> fb;
    wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
    wmma::fill_fragment(acc, 0.0f);
    wmma::fill_fragment(fa, 1.0f);
    wmma::fill_fragment(fb, 1.0f);
    if (threadIdx.x < 16)
        wmma::mma_sync(acc, fa, fb, acc);
    __syncwarp();
    wmma::store_matrix_sync(d, acc, 16, wmma::mem_row_major);
}

/* PTX mma.m16n8k16 (kernels/cuda/mma_16816.cuh): D = A B + C with A [16][16], B [16][8], C and D
 * [16][8] row-major floats; each lane builds its fragments element by element from the PTX ISA's
 * formulas, written out here a second time (independently of mma.h's) */
__global__ void ptx_16816(const float *a, const float *b, const float *c, float *d)
{
    int lane = threadIdx.x, groupID = lane >> 2, tig = lane % 4;
    float ae[8], be[4], acc[4];
    for (int i = 0; i < 8; i++) {
        int row = (i < 2 || (i >= 4 && i < 6)) ? groupID : groupID + 8;
        int col = i < 4 ? tig * 2 + (i & 1) : tig * 2 + (i & 1) + 8;
        ae[i] = a[row * 16 + col];
    }
    for (int i = 0; i < 4; i++) {
        int row = i < 2 ? tig * 2 + (i & 1) : tig * 2 + (i & 1) + 8, col = groupID;
        be[i] = b[row * 8 + col];
    }
    for (int i = 0; i < 4; i++)
        acc[i] = c[(i < 2 ? groupID : groupID + 8) * 8 + tig * 2 + (i & 1)];
    uint32_t ar[4], br[2];
    for (int r = 0; r < 4; r++)
        ar[r] = mma_pack_half2(ae[2 * r], ae[2 * r + 1]);
    for (int r = 0; r < 2; r++)
        br[r] = mma_pack_half2(be[2 * r], be[2 * r + 1]);
    mma_16816(acc, ar, br);
    for (int i = 0; i < 4; i++)
        d[(i < 2 ? groupID : groupID + 8) * 8 + tig * 2 + (i & 1)] = acc[i];
}

/* illegal: only lanes < 16 reach the mma */
__global__ void ptx_divergent(float *d)
{
    uint32_t ar[4] = { 0, 0, 0, 0 }, br[2] = { 0, 0 };
    float acc[4] = { 0, 0, 0, 0 };
    if (threadIdx.x < 16)
        mma_16816(acc, ar, br);
    __syncwarp();
    d[threadIdx.x] = acc[0];
}

static float *dev_floats(const float *h, size_t n)
{
    float *d;
    cudaMalloc((void **)&d, sizeof(float) * n);
    if (h)
        cudaMemcpy(d, h, sizeof(float) * n, cudaMemcpyHostToDevice);
    return d;
}

static __half *dev_halves(const float *h, size_t n)
{
    __half *tmp = (__half *)malloc(sizeof(__half) * n), *d;
    for (size_t i = 0; i < n; i++)
        tmp[i] = __float2half_rn(h[i]);
    cudaMalloc((void **)&d, sizeof(__half) * n);
    cudaMemcpy(d, tmp, sizeof(__half) * n, cudaMemcpyHostToDevice);
    free(tmp);
    return d;
}

static float rnd(unsigned *s)
{
    *s = *s * 1664525u + 1013904223u;
    return (float)((*s >> 8) & 0xffff) / 32768.0f - 1.0f;
}

static float h(float x) { return __half2float(__float2half_rn(x)); }

/* max |got - ref| over m x n, ref = sum_k A B (+ C) in k order, inputs optionally half-rounded */
static double prod_err(const float *got, int got_col_major, const float *a, const float *b, int b_col_major,
                       const float *c, int m, int n, int k, int round)
{
    double e = 0;
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            float s = c ? c[i * n + j] : 0.0f;
            for (int l = 0; l < k; l++) {
                float av = a[i * k + l], bv = b_col_major ? b[j * k + l] : b[l * n + j];
                s += (round ? h(av) : av) * (round ? h(bv) : bv);
            }
            float g = got_col_major ? got[j * m + i] : got[i * n + j];
            e = fmax(e, fabs((double)g - s));
        }
    return e;
}

static void rounding(void)
{
    int bad = 0;
    for (unsigned u = 0; u < 65536; u++) { /* every non-NaN half survives half -> float -> half */
        __half x = __ushort_as_half((unsigned short)u);
        float f = __half2float(x);
        if (f == f && __half_as_ushort(__float2half_rn(f)) != u)
            bad++;
    }
    check(bad == 0, "every half round-trips through float (mismatches)", bad, 0);
    struct { float in; unsigned short out; } t[] = {
        { 1.0f, 0x3c00 }, { 1.0f + 1.0f / 2048, 0x3c00 } /* tie -> even */, { 1.0f + 3.0f / 2048, 0x3c02 } /* tie -> even (up) */,
        { 1.0f + 1.0f / 2048 + 1.0f / 65536, 0x3c01 }, { -2.5f, 0xc100 }, { 65504.0f, 0x7bff }, { 65519.0f, 0x7bff },
        { 65520.0f, 0x7c00 } /* overflow: inf */, { 5.9604644775390625e-08f, 0x0001 } /* 2^-24 */,
        { 2.98023223876953125e-08f, 0x0000 } /* 2^-25: tie -> even 0 */, { 4.5e-08f, 0x0001 },
        { 6.103515625e-05f, 0x0400 } /* smallest normal */, { 1e-10f, 0x0000 }, { -0.0f, 0x8000 },
    };
    bad = 0;
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
        if (__half_as_ushort(__float2half_rn(t[i].in)) != t[i].out) {
            printf("    %.9g -> 0x%04x, want 0x%04x\n", t[i].in, __half_as_ushort(__float2half_rn(t[i].in)), t[i].out);
            bad++;
        }
    check(bad == 0, "float -> half: ties to even, overflow, subnormals (wrong)", bad, 0);
}

/* run an illegal kernel in a child: the emulator must abort it (kernel 0: divergent, 1: missing_sync,
 * 2: ptx_divergent) */
static void must_abort(int kernel, int threads, const char *what, const __half *a, const __half *b, float *d)
{
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        if (!freopen("/dev/null", "w", stderr))
            _exit(2);
        if (kernel == 0)
            divergent<<<1, threads>>>(a, b, d);
        else if (kernel == 1)
            missing_sync<<<1, threads>>>(a, b, d);
        else
            ptx_divergent<<<1, threads>>>(d);
        _exit(0);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    check(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT, what, WIFSIGNALED(st) ? WTERMSIG(st) : -1, SIGABRT);
}

int main(void)
{
    rounding();
    unsigned s = 7;
    float a[32 * 32], b[32 * 48], c[256], got[32 * 48];
    for (float &x : a)
        x = rnd(&s);
    for (float &x : b)
        x = rnd(&s);
    for (float &x : c)
        x = rnd(&s);
    __half *da = dev_halves(a, 256), *db = dev_halves(b, 256);
    float *dc = dev_floats(c, 256), *dd = dev_floats(NULL, 32 * 48);
    one_tile<<<1, 32>>>(da, db, dc, dd);
    cudaMemcpy(got, dd, sizeof(float) * 256, cudaMemcpyDeviceToHost);
    check_at_most(prod_err(got, 1, a, b, 1, c, 16, 16, 16, 1), 1e-5, "16x16x16: D = A B + C vs host (max abs)");
    check_above(prod_err(got, 1, a, b, 1, c, 16, 16, 16, 0), 2e-4, "16x16x16 vs the unrounded product: differs");

    float *fa = dev_floats(a, 32 * 32), *fb = dev_floats(b, 32 * 48);
    tiled<<<1, 6 * 32>>>(fa, fb, dd);
    cudaMemcpy(got, dd, sizeof(float) * 32 * 48, cudaMemcpyDeviceToHost);
    check_at_most(prod_err(got, 0, a, b, 0, NULL, 32, 48, 32, 1), 1e-5,
                  "32x48, K 32, 6 warps: C = A B vs host (max abs)");

    __half *db16 = dev_halves(b, 256);
    assumes_layout<<<1, 32>>>(da, db16, dd);
    cudaMemcpy(got, dd, sizeof(float) * 256, cudaMemcpyDeviceToHost);
    check_above(prod_err(got, 0, a, b, 0, NULL, 16, 16, 16, 1), 0.1,
                "code assuming an element layout: wrong (max abs)");

    /* mma.m16n8k16 with the documented layout: A = a[0..255], B = b[0..127] as [16][8], C = c[0..127] */
    float *pa = dev_floats(a, 256), *pb = dev_floats(b, 128), *pc = dev_floats(c, 128);
    ptx_16816<<<1, 32>>>(pa, pb, pc, dd);
    cudaMemcpy(got, dd, sizeof(float) * 128, cudaMemcpyDeviceToHost);
    check_at_most(prod_err(got, 0, a, b, 0, c, 16, 8, 16, 1), 1e-5,
                  "mma.m16n8k16 (PTX layout): D = A B + C vs host (max abs)");
    check_above(prod_err(got, 0, a, b, 0, c, 16, 8, 16, 0), 2e-4, "mma.m16n8k16 vs the unrounded product: differs");
    must_abort(2, 32, "mma.m16n8k16 in half a warp aborts (signal)", da, db16, dd);
    cudaFree(pa); cudaFree(pb); cudaFree(pc);

    must_abort(0, 32, "mma_sync in half a warp aborts (signal)", da, db16, dd);
    must_abort(0, 16, "mma_sync in a 16-thread block aborts (signal)", da, db16, dd);
    /* the lanes holding an element's two copies load it at different times: they disagree */
    must_abort(1, 32, "a load missing its __syncwarp aborts (signal)", da, db16, dd);
    cudaFree(da); cudaFree(db); cudaFree(dc); cudaFree(dd); cudaFree(fa); cudaFree(fb); cudaFree(db16);
    return fails ? 1 : 0;
}
