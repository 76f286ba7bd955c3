/*
 * emu_runtime.cpp: the host side of tests/cuda_emu (see emu.cpp's opening comment for the whole
 * emulator): device memory, copies, streams with CUDA-graph capture, graphs, the driver entry points
 * the engine resolves (CUcontext push/pop), and cuBLAS. The kernels themselves run in emu.cpp.
 *
 * Streams and capture, as the GPU does them, because engine/backend_cuda.c captures its whole forward:
 * every operation on a stream (a kernel launch, cudaMemcpyAsync, cudaMemsetAsync, a cuBLAS GEMM on
 * a handle bound to the stream) goes through enqueue(). Outside a capture it is queued on its stream
 * and runs, in order, only when something waits for the stream: cudaStreamSynchronize of it,
 * cudaDeviceSynchronize, cudaFree (which synchronizes the device), cudaEventSynchronize (it waits
 * for every stream), cudaStreamDestroy. A recorded event takes the host clock when its stream's work
 * reaches it (cudaEventElapsedTime: the emulator's own time). A synchronous cudaMemcpy/cudaMemset
 * runs at once on the legacy stream, which does not wait for the (non-blocking) streams, as on the
 * GPU: a result read back without synchronizing its stream is stale here (never-written device
 * memory reads as NaN). Work on the legacy stream (stream 0) runs at once. EMU_STREAMS=eager in the
 * environment runs stream work when issued instead (to tell a missing synchronisation from other
 * faults). Between cudaStreamBeginCapture and cudaStreamEndCapture on a stream, its operations are recorded as closures holding their
 * arguments by value (a GEMM's alpha/beta included, as cuBLAS's host pointer mode reads them at the
 * call) and nothing runs; cudaGraphLaunch replays them in order. So a result read before the graph
 * is launched, or a host value captured that should change per frame, is wrong here as on a GPU.
 * During a capture (one at a time; the engine uses ThreadLocal mode) the calls that ThreadLocal
 * capture forbids on the GPU (cudaMalloc, cudaFree, cudaMemcpy, cudaMemset, cudaStreamSynchronize of
 * the capturing stream, cudaDeviceSynchronize) fail and invalidate the capture, so
 * cudaStreamEndCapture returns cudaErrorStreamCaptureInvalidated; work on the legacy stream (stream
 * 0) fails the same way (stricter than a GPU when the capturing stream is non-blocking: there it
 * would run once, outside the graph, which is never what the engine means). Other streams queue
 * their work as outside a capture. A stream used after cudaStreamDestroy is an invalid handle.
 */
#include <dlfcn.h>

#include <cstdio>
#include <cstdlib>
#include <chrono>
#include <cstring>
#include <functional>
#include <memory>
#include <set>
#include <vector>

#include "cublas_v2.h"
#include "cuda_profiler_api.h"
#include "cuda.h"
#include "cuda_runtime.h"

typedef std::vector<std::function<void()>> Ops;
struct CUstream_st {
    bool invalidated;
    std::shared_ptr<Ops> ops; /* what the capture recorded */
    Ops pending;              /* issued, not yet waited for */
};
struct CUgraph_st {
    std::shared_ptr<const Ops> ops;
};
struct CUgraphExec_st {
    std::shared_ptr<const Ops> ops; /* a snapshot: the graph may be destroyed after instantiation */
};
struct cublasContext {
    cudaStream_t stream;
};
struct CUctx_st {
    int device;
};
struct CUevent_st {
    bool recorded;
    double ms; /* host steady clock when the stream reached the record */
};

namespace emu {
extern cudaError_t last_err;
bool launch_config_ok(dim3 grid, dim3 block, size_t smem, size_t smem_limit);
size_t kernel_smem_limit(const void *kernel);

static std::set<cudaStream_t> streams; /* live streams (stream 0 is always valid) */
static cudaStream_t capturing;           /* the stream being captured, or null */

enum { ErrInvalidValue = 1, ErrMemoryAllocation = 2, ErrInvalidDevice = 101, ErrIllegalState = 401,
       ErrInvalidHandle = 400, ErrCaptureUnsupported = 900, ErrCaptureInvalidated = 901, ErrCaptureImplicit = 906 };

static bool eager()
{
    static int e = -1;
    if (e < 0) {
        const char *v = getenv("EMU_STREAMS");
        e = v && !strcmp(v, "eager");
    }
    return e;
}

/* something waits for stream s: its queued work runs, in issue order */
static void flush(cudaStream_t s)
{
    Ops ops;
    ops.swap(s->pending);
    for (auto &op : ops)
        op();
}
static void flush_all()
{
    for (cudaStream_t s : streams)
        flush(s);
}

static void invalidate(const char *what)
{
    fprintf(stderr, "emu: %s during stream capture: not permitted (ThreadLocal capture); the capture is invalidated\n",
            what);
    capturing->invalidated = true;
}

/* the calls ThreadLocal capture forbids: an error, and the capture is invalidated */
static bool forbidden_in_capture(const char *what)
{
    if (!capturing)
        return false;
    invalidate(what);
    return true;
}

static cudaError_t enqueue(cudaStream_t s, std::function<void()> op, const char *what)
{
    if (s && !streams.count(s)) {
        fprintf(stderr, "emu: %s on a stream that does not exist (destroyed?)\n", what);
        return ErrInvalidHandle;
    }
    if (capturing && s == capturing) {
        if (!capturing->invalidated)
            capturing->ops->push_back(std::move(op));
        return 0;
    }
    if (capturing && !s) {
        invalidate(what); /* "on the legacy stream" */
        return ErrCaptureImplicit;
    }
    if (s && !eager())
        s->pending.push_back(std::move(op));
    else
        op();
    return 0;
}

/* the launch census (emu_census, tests/cuda_emu/census.c): each kernel, GEMM, copy and memset is
 * written as one tab-separated line when it runs (so a graph's work once per replay); a dry census
 * runs no kernel and no GEMM and leaves new device memory unfilled: the shapes of a frame's work at
 * sizes the emulator could not compute in time, which is all it is for */
static FILE *census_out;
static bool census_dry;
/* the profiler range (cudaProfilerStart .. Stop): kernels run inside it, or -1 outside, and the
 * graphs instantiated inside it (a profiled frame should replay a graph made before, not make one) */
static long profiled_kernels = -1, profiled_graphs;
static void census_op(const char *what, size_t bytes)
{
    if (census_out)
        fprintf(census_out, "%s\t%zu\n", what, bytes);
}

/* a kernel launch (emu_device.h's Launcher): the configuration is checked now, as the GPU does at
 * the launch (the error goes to cudaGetLastError), the kernel runs now or when the graph runs */
void launch(dim3 grid, dim3 block, size_t smem, void *stream, const void *kernel, const char *name,
            std::function<void()> body)
{
    size_t limit = kernel_smem_limit(kernel);
    if (!launch_config_ok(grid, block, smem, limit))
        return;
    cudaError_t e = enqueue(
        (cudaStream_t)stream,
        [=] {
            if (census_out) {
                /* the kernel's symbol (linked with -rdynamic): g++ mangles a kernel as nvcc does,
                 * so it names the very instantiation ptxas reports */
                Dl_info di;
                const char *sym = dladdr(kernel, &di) && di.dli_sname ? di.dli_sname : "-";
                fprintf(census_out, "kernel\t%s\t%llu\t%u\t%zu\t%ux%ux%u\t%ux%ux%u\t%s\n", name,
                        (unsigned long long)grid.x * grid.y * grid.z, block.x * block.y * block.z, smem, grid.x,
                        grid.y, grid.z, block.x, block.y, block.z, sym);
            }
            if (profiled_kernels >= 0)
                profiled_kernels++;
            if (!census_dry)
                run(grid, block, smem, limit, body);
        },
        "a kernel launch");
    if (e)
        last_err = e;
}

/* the driver's contexts: one, the primary context of device 0; push/pop keep a count so that
 * tests can check every push has its pop */
static CUctx_st primary = { 0 };
static int ctx_depth;

static CUresult cu_ctx_get_current(CUcontext *c)
{
    *c = &primary;
    return CUDA_SUCCESS;
}
static CUresult cu_ctx_push_current(CUcontext c)
{
    if (c != &primary) {
        fprintf(stderr, "emu: cuCtxPushCurrent of a context that is not the emulated primary context\n");
        return CUDA_ERROR_INVALID_CONTEXT;
    }
    ctx_depth++;
    return CUDA_SUCCESS;
}
static CUresult cu_ctx_pop_current(CUcontext *c)
{
    if (ctx_depth <= 0) {
        fprintf(stderr, "emu: cuCtxPopCurrent with no context pushed\n");
        ctx_depth--; /* stays visible to emu_ctx_depth() */
        return CUDA_ERROR_INVALID_CONTEXT;
    }
    ctx_depth--;
    if (c)
        *c = &primary;
    return CUDA_SUCCESS;
}

/* column-major C = alpha op(A) op(B) + beta C, naive fp32 */
static void sgemm_now(cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, float alpha, const float *A,
                      int lda, const float *B, int ldb, float beta, float *C, int ldc)
{
    for (int j = 0; j < n; j++)
        for (int i = 0; i < m; i++) {
            float acc = 0.0f;
            for (int l = 0; l < k; l++) {
                float a = ta == CUBLAS_OP_N ? A[i + (size_t)l * lda] : A[l + (size_t)i * lda];
                float b = tb == CUBLAS_OP_N ? B[l + (size_t)j * ldb] : B[j + (size_t)l * ldb];
                acc += a * b;
            }
            float *c = C + i + (size_t)j * ldc;
            *c = beta == 0.0f ? alpha * acc : alpha * acc + beta * *c; /* beta 0: C is not read (NaN-safe) */
        }
}
} // namespace emu

using namespace emu;

extern "C" {
cudaError_t cudaMalloc(void **p, size_t n)
{
    if (forbidden_in_capture("cudaMalloc"))
        return ErrCaptureUnsupported;
    /* 256-byte aligned, as cudaMalloc's (wmma needs 32); the exact size, so ASan sees overruns */
    if (posix_memalign(p, 256, n ? n : 4))
        return ErrMemoryAllocation;
    if (!census_dry)
        memset(*p, 0xff, n); /* never-written device memory reads as NaN floats, -1 ints */
    return 0;
}
cudaError_t cudaFree(void *p)
{
    if (forbidden_in_capture("cudaFree"))
        return ErrCaptureUnsupported;
    flush_all();
    free(p);
    return 0;
}
cudaError_t cudaMemcpy(void *d, const void *s, size_t n, enum cudaMemcpyKind)
{
    if (forbidden_in_capture("cudaMemcpy (synchronous)"))
        return ErrCaptureUnsupported;
    memmove(d, s, n);
    return 0;
}
cudaError_t cudaMemset(void *d, int v, size_t n)
{
    if (forbidden_in_capture("cudaMemset (synchronous)"))
        return ErrCaptureUnsupported;
    memset(d, v, n);
    return 0;
}
/* pitched allocations (catanet-gpubench's device frames): rows padded to 512 bytes, as a GPU may */
cudaError_t cudaMallocPitch(void **p, size_t *pitch, size_t width, size_t height)
{
    *pitch = (width + 511) & ~(size_t)511;
    return cudaMalloc(p, *pitch * (height ? height : 1));
}
cudaError_t cudaMemset2D(void *d, size_t pitch, int v, size_t width, size_t height)
{
    if (forbidden_in_capture("cudaMemset2D (synchronous)"))
        return ErrCaptureUnsupported;
    for (size_t r = 0; r < height; r++)
        memset((char *)d + r * pitch, v, width);
    return 0;
}
cudaError_t cudaMemcpyAsync(void *d, const void *s, size_t n, enum cudaMemcpyKind, cudaStream_t st)
{
    return enqueue(st, [=] { census_op("memcpy", n); memmove(d, s, n); }, "cudaMemcpyAsync");
}
cudaError_t cudaMemsetAsync(void *d, int v, size_t n, cudaStream_t st)
{
    return enqueue(st, [=] { census_op("memset", n); memset(d, v, n); }, "cudaMemsetAsync");
}
cudaError_t cudaMemGetInfo(size_t *fr, size_t *total)
{
    *total = (size_t)80 << 30; /* nominal: host memory is what really limits the emulator */
    *fr = *total;
    return 0;
}
cudaError_t cudaStreamSynchronize(cudaStream_t s)
{
    if (s && !streams.count(s))
        return ErrInvalidHandle;
    if (capturing && (s == capturing || !s)) {
        invalidate("cudaStreamSynchronize of the capturing (or legacy) stream");
        return ErrCaptureUnsupported;
    }
    if (s)
        flush(s);
    return 0;
}
cudaError_t cudaDeviceSynchronize(void)
{
    if (forbidden_in_capture("cudaDeviceSynchronize"))
        return ErrCaptureUnsupported;
    flush_all();
    return 0;
}
/* the work queued before the start runs before it, the work queued before the stop inside it */
cudaError_t cudaProfilerStart(void)
{
    flush_all();
    profiled_kernels = profiled_graphs = 0;
    return 0;
}
cudaError_t cudaProfilerStop(void)
{
    flush_all();
    if (profiled_kernels >= 0)
        fprintf(stderr, "emu: %ld kernel launches and %ld graphs instantiated between cudaProfilerStart and cudaProfilerStop\n",
                profiled_kernels, profiled_graphs);
    profiled_kernels = -1;
    return 0;
}
cudaError_t cudaGetLastError(void)
{
    cudaError_t e = last_err;
    last_err = 0;
    return e;
}
const char *cudaGetErrorString(cudaError_t e)
{
    switch (e) {
    case 0: return "no error (emulated)";
    case 9: return "invalid configuration (emulated)";
    case ErrInvalidDevice: return "invalid device ordinal (emulated)";
    case ErrInvalidHandle: return "invalid resource handle (emulated)";
    case ErrIllegalState: return "illegal state (emulated)";
    case ErrCaptureUnsupported: return "operation not permitted when stream is capturing (emulated)";
    case ErrCaptureInvalidated: return "operation failed due to a previous error during capture (emulated)";
    case ErrCaptureImplicit: return "operation would make the legacy stream depend on a capturing blocking stream (emulated)";
    default: return "error (emulated)";
    }
}
cudaError_t cudaGetDeviceCount(int *n) { *n = 1; return 0; }
cudaError_t cudaSetDevice(int d) { return d == 0 ? 0 : ErrInvalidDevice; }
cudaError_t cudaGetDevice(int *d) { *d = 0; return 0; }
cudaError_t cudaDeviceGetAttribute(int *v, enum cudaDeviceAttr a, int d)
{
    if (d != 0)
        return ErrInvalidDevice;
    if (a != cudaDevAttrMaxSharedMemoryPerBlockOptin)
        return 1; /* cudaErrorInvalidValue: no other attribute is emulated */
    *v = emu::device_smem_optin();
    return 0;
}
cudaError_t cudaGetDeviceProperties(struct cudaDeviceProp *p, int d)
{
    if (d != 0)
        return ErrInvalidDevice;
    memset(p, 0, sizeof(*p));
    strcpy(p->name, "host emulation (tests/cuda_emu)");
    p->major = 9;
    p->minor = 0;
    return 0;
}
cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned)
{
    *s = new CUstream_st();
    streams.insert(*s);
    return 0;
}
cudaError_t cudaStreamDestroy(cudaStream_t s)
{
    if (!s || !streams.count(s))
        return ErrInvalidHandle;
    if (s == capturing) {
        invalidate("cudaStreamDestroy of the capturing stream");
        return ErrIllegalState;
    }
    flush(s); /* the work already issued still completes */
    streams.erase(s);
    delete s;
    return 0;
}
cudaError_t cudaStreamBeginCapture(cudaStream_t s, enum cudaStreamCaptureMode)
{
    if (!s)
        return ErrCaptureUnsupported; /* the legacy stream cannot be captured */
    if (!streams.count(s))
        return ErrInvalidHandle;
    if (capturing) {
        fprintf(stderr, "emu: cudaStreamBeginCapture while another capture is active (the emulator does one at a time)\n");
        return ErrIllegalState;
    }
    capturing = s;
    s->invalidated = false;
    s->ops = std::make_shared<Ops>();
    return 0;
}
cudaError_t cudaStreamEndCapture(cudaStream_t s, cudaGraph_t *g)
{
    *g = NULL;
    if (!s || s != capturing)
        return ErrIllegalState;
    capturing = NULL;
    std::shared_ptr<Ops> ops = std::move(s->ops);
    if (s->invalidated)
        return ErrCaptureInvalidated;
    *g = new CUgraph_st{ ops };
    return 0;
}
cudaError_t cudaStreamIsCapturing(cudaStream_t s, enum cudaStreamCaptureStatus *st)
{
    *st = s && s == capturing ? (s->invalidated ? cudaStreamCaptureStatusInvalidated : cudaStreamCaptureStatusActive)
                              : cudaStreamCaptureStatusNone;
    return 0;
}
cudaError_t cudaGraphInstantiate(cudaGraphExec_t *x, cudaGraph_t g, unsigned long long)
{
    if (!g)
        return ErrInvalidValue;
    *x = new CUgraphExec_st{ g->ops };
    if (profiled_kernels >= 0)
        profiled_graphs++;
    return 0;
}
cudaError_t cudaGraphLaunch(cudaGraphExec_t x, cudaStream_t s)
{
    if (!x)
        return ErrInvalidValue;
    std::shared_ptr<const Ops> ops = x->ops;
    return enqueue(s, [ops] { for (const auto &op : *ops) op(); }, "cudaGraphLaunch");
}
cudaError_t cudaGraphDestroy(cudaGraph_t g) { delete g; return 0; }
cudaError_t cudaGraphExecDestroy(cudaGraphExec_t x) { delete x; return 0; }
/* events: a recorded event takes the host clock when the stream's work reaches it, so the time
 * between two events is how long the emulator took to run the work between them (what the engine's
 * kernel timing at prepare measures here: real, if nothing like a GPU's) */
cudaError_t cudaEventCreate(cudaEvent_t *e)
{
    *e = new CUevent_st{ false, 0.0 };
    return 0;
}
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s)
{
    if (!e)
        return ErrInvalidHandle;
    return enqueue(s, [e] {
        e->recorded = true;
        e->ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now().time_since_epoch()).count();
    }, "cudaEventRecord");
}
cudaError_t cudaEventSynchronize(cudaEvent_t)
{
    flush_all();
    return 0;
}
cudaError_t cudaEventElapsedTime(float *ms, cudaEvent_t a, cudaEvent_t b)
{
    if (!a || !b || !a->recorded || !b->recorded)
        return ErrInvalidHandle; /* cudaErrorInvalidResourceHandle/NotReady on a GPU: an error either way */
    *ms = (float)(b->ms - a->ms);
    return 0;
}
cudaError_t cudaEventDestroy(cudaEvent_t e)
{
    delete e;
    return 0;
}

/* the driver functions the engine and test_twins resolve (no libcuda): the others are not found */
cudaError_t cudaGetDriverEntryPointByVersion(const char *sym, void **fn, unsigned, unsigned long long,
                                             enum cudaDriverEntryPointQueryResult *q)
{
    *fn = !strcmp(sym, "cuCtxGetCurrent")    ? (void *)cu_ctx_get_current
          : !strcmp(sym, "cuCtxPushCurrent") ? (void *)cu_ctx_push_current
          : !strcmp(sym, "cuCtxPopCurrent")  ? (void *)cu_ctx_pop_current
                                             : NULL;
    if (q)
        *q = *fn ? cudaDriverEntryPointSuccess : cudaDriverEntryPointSymbolNotFound;
    return 0;
}
int emu_ctx_depth(void) { return ctx_depth; }
void emu_census(FILE *f, int dry)
{
    census_out = f;
    census_dry = dry;
}

cublasStatus_t cublasCreate(cublasHandle_t *h)
{
    *h = new cublasContext();
    return 0;
}
cublasStatus_t cublasDestroy(cublasHandle_t h)
{
    if (!h)
        return CUBLAS_STATUS_NOT_INITIALIZED;
    delete h;
    return 0;
}
cublasStatus_t cublasSetStream(cublasHandle_t h, cudaStream_t s)
{
    if (!h)
        return CUBLAS_STATUS_NOT_INITIALIZED;
    h->stream = s;
    return 0;
}
cublasStatus_t cublasSetWorkspace(cublasHandle_t h, void *, size_t) { return h ? 0 : CUBLAS_STATUS_NOT_INITIALIZED; }
cublasStatus_t cublasSetMathMode(cublasHandle_t h, cublasMath_t) { return h ? 0 : CUBLAS_STATUS_NOT_INITIALIZED; }
cublasStatus_t cublasSgemm(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                           const float *alpha, const float *A, int lda, const float *B, int ldb, const float *beta,
                           float *C, int ldc)
{
    if (!h)
        return CUBLAS_STATUS_NOT_INITIALIZED;
    if (m < 0 || n < 0 || k < 0 || (ta == CUBLAS_OP_N ? lda < m : lda < k) || (tb == CUBLAS_OP_N ? ldb < k : ldb < n) ||
        ldc < m || lda < 1 || ldb < 1 || ldc < 1) {
        fprintf(stderr, "emu: cublasSgemm: invalid sizes or leading dimensions\n");
        return CUBLAS_STATUS_INVALID_VALUE;
    }
    float al = *alpha, be = *beta; /* host pointer mode: read at the call, also when captured */
    cudaError_t e = enqueue(
        h->stream,
        [=] {
            if (census_out)
                fprintf(census_out, "gemm\t%d\t%d\t%d\n", m, n, k);
            if (!census_dry)
                sgemm_now(ta, tb, m, n, k, al, A, lda, B, ldb, be, C, ldc);
        },
        "cublasSgemm");
    return e ? CUBLAS_STATUS_EXECUTION_FAILED : 0;
}
cublasStatus_t cublasGemmEx(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                            const void *alpha, const void *A, cudaDataType at, int lda, const void *B, cudaDataType bt,
                            int ldb, const void *beta, void *C, cudaDataType ct, int ldc, cublasComputeType_t,
                            cublasGemmAlgo_t)
{
    if (at != CUDA_R_32F || bt != CUDA_R_32F || ct != CUDA_R_32F) {
        fprintf(stderr, "emu: cublasGemmEx: only fp32 matrices are emulated\n");
        return CUBLAS_STATUS_NOT_SUPPORTED;
    }
    return cublasSgemm(h, ta, tb, m, n, k, (const float *)alpha, (const float *)A, lda, (const float *)B, ldb,
                       (const float *)beta, (float *)C, ldc);
}
}
