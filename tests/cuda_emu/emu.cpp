/*
 * emu.cpp: a host emulator of the CUDA pieces kernels/cuda and engine/backend_cuda.c use, so that
 * `make check` (tests/t_cuda_emu.sh) and `make check-emu` can run tests/test_twins.c (every CUDA twin
 * against its CPU twin, then the whole CUDA engine against the reference cases) on a machine without
 * a GPU. This file runs kernels; emu_runtime.cpp is the host API (memory, streams, graph capture,
 * driver contexts, cuBLAS). Test infrastructure only: nothing here is linked into libcatanet.
 *
 * What it emulates:
 * - kernels: each .cu file is compiled as C++ by g++ after prep.sh rewrites its `<<<...>>>`
 *   launches and `extern __shared__` arrays; include/emu_device.h maps __global__/__device__,
 *   threadIdx/blockIdx/blockDim/gridDim and the intrinsics the kernels call.
 * - a launch: the blocks of the grid run one after another; inside a block every CUDA thread is a
 *   fiber with its own stack (x86-64: a few instructions switch stacks, see emu_switch; elsewhere
 *   and under ASan, ucontext). A fiber runs until it reaches a barrier (__syncthreads,
 *   __syncwarp, or a warp intrinsic: __shfl_xor_sync, __match_any_sync), which releases when every
 *   live thread of the block (of the warp) has arrived, as on the GPU; a barrier that can never
 *   release (threads waiting at different barriers, or a __syncthreads some threads skip before
 *   exiting while others wait) aborts with "deadlock". Even blocks run their threads in
 *   increasing order between barriers, odd blocks in decreasing order, so a missing barrier
 *   between a write and another thread's read shows up as a wrong result in one of the two.
 * - dynamic shared memory (<= 48 KB, or up to 227 KB for a kernel raised by cudaFuncSetAttribute's
 *   cudaFuncAttributeMaxDynamicSharedMemorySize, as an sm_90 allows) is refilled with 0xff bytes
 *   (NaN floats, -1 ints) before every block, and cudaMalloc memory is filled the same way:
 *   reading what was never written gives NaN / -1 instead of a plausible zero.
 * - bad launch configurations (block > 1024 threads or beyond 1024 x 1024 x 64, grid.y or grid.z
 *   > 65535, dynamic shared memory above the kernel's limit) are returned by the next
 *   cudaGetLastError, as on the GPU.
 * - the runtime (emu_runtime.cpp): cudaMalloc is malloc, copies are memmove; one device 0
 *   ("host emulation" sm_90; cudaSetDevice of another fails; cudaMemGetInfo reports a nominal 80 GiB).
 *   Work on a stream (launches, cudaMemcpyAsync/cudaMemsetAsync, cuBLAS on a handle bound to the
 *   stream) is queued and runs when something waits for the stream (cudaStreamSynchronize,
 *   cudaDeviceSynchronize, cudaFree, ...); a synchronous cudaMemcpy does not wait for it, as on the
 *   GPU with non-blocking streams, so a read-back without synchronizing its stream gets stale data
 *   (EMU_STREAMS=eager runs stream work when issued). Streams are real handles (use after destroy fails).
 * - CUDA graphs with capture semantics: between cudaStreamBeginCapture and cudaStreamEndCapture the
 *   stream's work is recorded as closures holding their arguments by value (a kernel's arguments,
 *   a copy's pointers, a GEMM's alpha/beta) and does not run; cudaGraphLaunch replays it in order.
 *   The calls ThreadLocal capture forbids (cudaMalloc, cudaFree, synchronous copies/memsets,
 *   synchronizing the capturing stream or the device) and work on the legacy stream fail and
 *   invalidate the capture, as on the GPU (emu_runtime.cpp's opening comment has the details).
 * - the driver entry points engine/backend_cuda.c resolves through cudaGetDriverEntryPointByVersion
 *   (cuCtxGetCurrent, cuCtxPushCurrent, cuCtxPopCurrent): one fake primary context; pushing another
 *   fails; emu_ctx_depth() (cuda.h) counts pushes minus pops, so a missing pop shows.
 * - cuBLAS: cublasSgemm and cublasGemmEx as a naive column-major fp32 GEMM (leading dimensions
 *   checked) on the handle's stream; the accumulation order differs from cuBLAS's, so cuBLAS-based
 *   results match the GPU's to rounding, not bit for bit.
 * - tensor cores through nvcuda::wmma (include/mma.h: m16n16k16, __half A/B, float accumulators)
 *   and __half (include/cuda_fp16.h: every float -> half conversion rounds to nearest even, as the
 *   GPU's). load/store/mma_sync are warp-collective ops (warp_collective below): a warp barrier that
 *   aborts unless all 32 lanes of the warp are in the same op with the same pointer/ldm/layout; the
 *   fragment elements are mapped to lanes by a scrambled permutation, so code assuming a layout
 *   computes garbage; pointers and ldm are checked for wmma's alignment rules. PTX mma.sync
 *   m16n8k16 (kernels/cuda/mma_16816.cuh), whose layout is documented, with that layout, also a
 *   warp-collective op. Checked by wmma_selftest.cu (run by tests/t_cuda_emu.sh).
 * - cudaMalloc and dynamic shared memory are aligned as on the GPU (256 and 128 bytes).
 *
 * What it cannot catch: real concurrency (races are only exposed through the two thread orders
 * above; blocks never overlap, so inter-block races and missing atomics go unseen; streams never
 * overlap either and events are no-ops, so a missing event between two streams goes unseen, and a
 * device synchronisation stands in for an event's); captures that fork into other streams (one capture at
 * a time, of one stream); graph updates and conditional nodes; several devices or contexts; the memory
 * model (fences, visibility, volatile); warp-synchronous code that relies on lockstep execution
 * without a __syncwarp; out-of-bounds accesses that stay inside a host allocation (build with
 * EMU_SANITIZE=-fsanitize=address to catch the others); static __shared__ variables persist
 * between blocks (zero at start), so their uninitialised reads are not caught; performance,
 * occupancy, register or shared-memory limits beyond the checks above; cuBLAS's numerics (its fp16
 * GEMMs run in fp32 here: cublasGemmEx is fp32 only); the tensor cores' summation order and internal
 * rounding (wmma's mma_sync sums exact half products in fp32, in k order); __half arithmetic
 * (not provided: kernels convert to float); device-side printf/assert/trap semantics;
 * float intrinsics whose GPU rounding differs from the host's (expf, erff, rsqrtf are the host's).
 */
#include <ucontext.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <vector>

#include "cublas_v2.h"
#include "cuda_runtime.h"

namespace emu {
uint3 g_bid;
dim3 g_bdim, g_gdim;
uint3 *g_tid;

/* Fiber switches. glibc's swapcontext makes a sigprocmask system call at every switch: that was
 * ~90% of the time of an emulated engine forward. On x86-64, emu_switch saves the callee-saved
 * registers on the current stack, stores its stack pointer in *save and continues on the stack
 * `to` (the kernels never change the MXCSR or the x87 control word, so those are not switched).
 * Elsewhere, under AddressSanitizer (whose swapcontext interceptor keeps its stack shadow right)
 * and with -DEMU_UCONTEXT (emu_switch is not CET shadow-stack aware: where the kernel and glibc
 * enforce shadow stacks, it faults), ucontext does the switching. */
#if defined(__x86_64__) && !defined(__SANITIZE_ADDRESS__) && !defined(EMU_UCONTEXT)
#define EMU_FAST_SWITCH 1
extern "C" void emu_switch(void **save, void *to);
asm(".text\n"
    ".globl emu_switch\n"
    ".type emu_switch, @function\n"
    "emu_switch:\n"
    "    pushq %rbp\n    pushq %rbx\n    pushq %r12\n    pushq %r13\n    pushq %r14\n    pushq %r15\n"
    "    movq %rsp, (%rdi)\n"
    "    movq %rsi, %rsp\n"
    "    popq %r15\n    popq %r14\n    popq %r13\n    popq %r12\n    popq %rbx\n    popq %rbp\n"
    "    ret\n"
    ".size emu_switch, .-emu_switch\n");
#else
#define EMU_FAST_SWITCH 0
#endif

struct Fiber {
    ucontext_t ctx;
    void *sp; /* EMU_FAST_SWITCH: the saved stack pointer */
    uint3 tid;
    bool done;
    int wait; /* 0 running, 1 at a block barrier, 2 at a warp barrier */
    unsigned gen;
};
static std::vector<Fiber> F;
static std::vector<char *> stacks;
static int cur, nthreads;
#if EMU_FAST_SWITCH
static void *sched_sp;
#else
static ucontext_t sched_ctx;
#endif
static std::function<void()> *g_body;
static unsigned blk_gen, blk_arrived;
static std::vector<unsigned> warp_gen, warp_arrived;
static std::vector<uint64_t> slots;
static std::vector<const WarpOp *> wops; /* per thread: the warp-collective op it waits in, or null */
struct alignas(128) SmemChunk { char b[128]; }; /* dynamic shared memory 128-byte aligned, as on the GPU */
static std::vector<SmemChunk> smem_buf;
static size_t smem_bytes;
cudaError_t last_err; /* cudaGetLastError's (emu_runtime.cpp) */
static const size_t STACK = 512 * 1024;
/* the fiber stacks are kept from launch to launch and freed at exit (LeakSanitizer-clean) */
static struct StackPool {
    ~StackPool()
    {
        for (char *st : stacks)
            free(st);
        stacks.clear();
    }
} stack_pool;

/* from the running fiber back to the scheduler loop in run() */
static void to_scheduler()
{
#if EMU_FAST_SWITCH
    emu_switch(&F[cur].sp, sched_sp);
#else
    swapcontext(&F[cur].ctx, &sched_ctx);
#endif
}

static int live_block()
{
    int n = 0;
    for (int i = 0; i < nthreads; i++)
        n += !F[i].done;
    return n;
}

static int live_warp(int w)
{
    int n = 0;
    for (int i = w * 32; i < nthreads && i < w * 32 + 32; i++)
        n += !F[i].done;
    return n;
}

/* a warp barrier releases: if its lanes wait in a warp-collective op (wmma), all 32 lanes must be
 * there, in the same op; the op runs once, on every lane's arguments, while they all wait */
static void release_warp(int w)
{
    int n = 0, base = w * 32;
    const WarpOp *lanes[32] = { 0 };
    for (int l = 0; l < 32 && base + l < nthreads; l++)
        if ((lanes[l] = wops[base + l]))
            n++;
    if (n) {
        const WarpOp *op = 0;
        for (int l = 0; l < 32; l++)
            if (lanes[l])
                op = lanes[l];
        if (n != 32 || live_warp(w) != 32) {
            fprintf(stderr, "emu: %s in block (%u,%u,%u) warp %d: %d of 32 lanes called it (the others %s); "
                    "warp-collective ops need the whole warp, converged\n", op->name, g_bid.x, g_bid.y, g_bid.z, w,
                    n, live_warp(w) < 32 ? "exited or do not exist" : "wait at another barrier");
            abort();
        }
        for (int l = 0; l < 32; l++)
            if (strcmp(lanes[l]->name, op->name)) {
                fprintf(stderr, "emu: block (%u,%u,%u) warp %d: lanes in different warp-collective ops (%s, %s)\n",
                        g_bid.x, g_bid.y, g_bid.z, w, op->name, lanes[l]->name);
                abort();
            }
        op->release(lanes);
        for (int l = 0; l < 32; l++)
            wops[base + l] = 0;
    }
    warp_gen[w]++;
    warp_arrived[w] = 0;
}

/* a thread exited: the barriers it no longer takes part in may now be complete */
static void check_release()
{
    if (blk_arrived && (int)blk_arrived == live_block()) {
        blk_gen++;
        blk_arrived = 0;
    }
    for (size_t w = 0; w < warp_gen.size(); w++)
        if (warp_arrived[w] && (int)warp_arrived[w] == live_warp((int)w))
            release_warp((int)w);
}

void syncthreads()
{
    blk_arrived++;
    if ((int)blk_arrived == live_block()) {
        blk_gen++;
        blk_arrived = 0;
        return;
    }
    F[cur].wait = 1;
    F[cur].gen = blk_gen;
    to_scheduler();
    F[cur].wait = 0;
}

static void warp_barrier()
{
    int w = cur / 32;
    warp_arrived[w]++;
    if ((int)warp_arrived[w] == live_warp(w)) {
        release_warp(w);
        return;
    }
    F[cur].wait = 2;
    F[cur].gen = warp_gen[w];
    to_scheduler();
    F[cur].wait = 0;
}

void syncwarp() { warp_barrier(); }

void warp_collective(const WarpOp *op)
{
    wops[cur] = op;
    warp_barrier();
}

int lane_id() { return cur & 31; }

uint64_t xchg(uint64_t v, int o)
{
    int me = cur;
    slots[me] = v;
    warp_barrier();
    int src = (me & ~31) | ((me & 31) ^ (o & 31));
    uint64_t r = src < nthreads && !F[src].done ? slots[src] : v;
    warp_barrier();
    return r;
}

unsigned match_any(uint64_t v)
{
    int me = cur, base = me & ~31;
    slots[me] = v;
    warp_barrier();
    unsigned m = 0;
    for (int l = 0; l < 32 && base + l < nthreads; l++)
        if (!F[base + l].done && slots[base + l] == v)
            m |= 1u << l;
    warp_barrier();
    return m;
}

void *dyn_smem() { return smem_buf.data(); }

static void tramp()
{
    (*g_body)();
    F[cur].done = true;
    check_release();
#if EMU_FAST_SWITCH
    void *dead;
    emu_switch(&dead, sched_sp); /* a finished fiber is never resumed */
    __builtin_unreachable();
#endif
}

/* a fresh fiber i that starts in tramp() */
static void fiber_init(int i)
{
#if EMU_FAST_SWITCH
    /* the frame emu_switch pops: r15 r14 r13 r12 rbx rbp (zero), then tramp as the return address,
     * then a dummy return address for tramp, so that it starts with the stack aligned as after a call */
    uintptr_t top = ((uintptr_t)stacks[i] + STACK) & ~(uintptr_t)15;
    void **sp = (void **)(top - 64);
    for (int k = 0; k < 6; k++)
        sp[k] = 0;
    sp[6] = (void *)tramp;
    sp[7] = 0;
    F[i].sp = sp;
#else
    Fiber &f = F[i];
    getcontext(&f.ctx);
    f.ctx.uc_stack.ss_sp = stacks[i];
    f.ctx.uc_stack.ss_size = STACK;
    f.ctx.uc_link = &sched_ctx;
    makecontext(&f.ctx, tramp, 0);
#endif
}

static void to_fiber(int i)
{
#if EMU_FAST_SWITCH
    emu_switch(&sched_sp, F[i].sp);
#else
    swapcontext(&sched_ctx, &F[i].ctx);
#endif
}

/* the GPU's launch checks: false, with the error left for cudaGetLastError, when it would refuse */
/* the emulated device is an sm_90: 227 KB of dynamic shared memory a block once a kernel opts in
 * (cudaFuncSetAttribute), 48 KB before */
static const int smem_optin = 227 * 1024;
static std::map<const void *, int> kernel_smem; /* cudaFuncAttributeMaxDynamicSharedMemorySize */

size_t kernel_smem_limit(const void *kernel)
{
    auto it = kernel_smem.find(kernel);
    return it != kernel_smem.end() && it->second > 48 * 1024 ? (size_t)it->second : 48 * 1024;
}

int func_set_attribute(const void *kernel, int attr, int value)
{
    if (attr != cudaFuncAttributeMaxDynamicSharedMemorySize || value < 0 || value > smem_optin)
        return 1; /* cudaErrorInvalidValue */
    kernel_smem[kernel] = value;
    return 0;
}

int device_smem_optin() { return smem_optin; }

bool launch_config_ok(dim3 grid, dim3 block, size_t smem, size_t smem_limit)
{
    long long nt = (long long)block.x * block.y * block.z;
    if (nt < 1 || nt > 1024 || block.x > 1024 || block.y > 1024 || block.z > 64 || grid.x < 1 || grid.y < 1 ||
        grid.z < 1 || grid.x > 0x7fffffffu || grid.y > 65535 || grid.z > 65535) {
        fprintf(stderr, "emu: invalid launch configuration: grid (%u,%u,%u), block (%u,%u,%u)\n", grid.x, grid.y,
                grid.z, block.x, block.y, block.z);
        last_err = 9; /* cudaErrorInvalidConfiguration */
        return false;
    }
    if (smem > smem_limit) {
        fprintf(stderr, "emu: dynamic shared memory %zu bytes > the kernel's limit, %zu\n", smem, smem_limit);
        last_err = 9;
        return false;
    }
    return true;
}

/* one kernel, now: the grid's blocks one after another (emu_runtime.cpp's launch() decides when) */
void run(dim3 grid, dim3 block, size_t smem, size_t smem_limit, std::function<void()> body)
{
    long long nt = (long long)block.x * block.y * block.z;
    if (!launch_config_ok(grid, block, smem, smem_limit))
        return;
    g_body = &body;
    g_gdim = grid;
    g_bdim = block;
    nthreads = (int)nt;
    F.resize(nthreads);
    while ((int)stacks.size() < nthreads) {
        char *s = (char *)malloc(STACK);
        if (!s) {
            fprintf(stderr, "emu: out of memory for fiber stacks\n");
            abort();
        }
        stacks.push_back(s);
    }
    int nw = (nthreads + 31) / 32;
    warp_gen.assign(nw, 0);
    warp_arrived.assign(nw, 0);
    slots.assign((size_t)nw * 32, 0);
    wops.assign((size_t)nw * 32, nullptr);
    smem_bytes = smem ? smem : 16;
    smem_buf.resize((smem_bytes + 127) / 128);
    unsigned long long nblk = 0;
    for (unsigned bz = 0; bz < grid.z; bz++)
        for (unsigned by = 0; by < grid.y; by++)
            for (unsigned bx = 0; bx < grid.x; bx++, nblk++) {
                g_bid = { bx, by, bz };
                blk_gen = blk_arrived = 0;
                memset(smem_buf.data(), 0xff, smem_bytes);
                for (int i = 0; i < nthreads; i++) {
                    Fiber &f = F[i];
                    f.tid = { (unsigned)(i % block.x), (unsigned)(i / block.x % block.y),
                              (unsigned)(i / (block.x * block.y)) };
                    f.done = false;
                    f.wait = 0;
                    fiber_init(i);
                }
                int rev = (int)(nblk & 1); /* odd blocks: threads in decreasing order */
                for (;;) {
                    bool any = false, progress = false;
                    for (int k = 0; k < nthreads; k++) {
                        int i = rev ? nthreads - 1 - k : k;
                        Fiber &f = F[i];
                        if (f.done)
                            continue;
                        any = true;
                        if (f.wait == 1 && f.gen == blk_gen)
                            continue;
                        if (f.wait == 2 && f.gen == warp_gen[i / 32])
                            continue;
                        cur = i;
                        g_tid = &f.tid;
                        to_fiber(i);
                        progress = true;
                    }
                    if (!any)
                        break;
                    if (!progress) {
                        fprintf(stderr, "emu: deadlock in block (%u,%u,%u): threads wait at barriers that cannot release\n",
                                bx, by, bz);
                        abort();
                    }
                }
            }
}
} // namespace emu
