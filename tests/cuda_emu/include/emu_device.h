/* tests/cuda_emu: the device side of CUDA C++ as plain C++ (see ../emu.cpp for what is emulated and
 * what is not). Included by the stub cuda_runtime.h when compiled as C++. */
#ifndef EMU_DEVICE_H
#define EMU_DEVICE_H
#include <stdint.h>
#include <string.h>
#include <functional>
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __align__(n) __attribute__((aligned(n)))
/* a function-scope __shared__ variable is one object shared by every thread of every block (blocks
 * run one after another): zero at program start, it keeps what the previous block wrote */
#define __shared__ static
struct uint3 { unsigned x, y, z; };
struct dim3 {
    unsigned x, y, z;
    dim3(unsigned a = 1, unsigned b = 1, unsigned c = 1) : x(a), y(b), z(c) {}
};
struct float2 { float x, y; };
struct float4 { float x, y, z, w; };
static inline float4 make_float4(float x, float y, float z, float w) { return float4{ x, y, z, w }; }
namespace emu {
extern uint3 g_bid;
extern dim3 g_bdim, g_gdim;
extern uint3 *g_tid;
void syncthreads();
void syncwarp();
uint64_t xchg(uint64_t v, int lane_src_xor);
unsigned match_any(uint64_t v);
/* a warp-collective op (mma.h's wmma calls): every lane calls warp_collective with its own WarpOp
 * (same name, its own arguments) and waits at a warp barrier; when all 32 lanes are there, one call
 * of release(lanes) (lanes[l]: lane l's WarpOp) does the op for the whole warp, then they all go on.
 * A lane missing (exited, diverged to another barrier, a partial warp) aborts. */
struct WarpOp {
    const char *name; /* compared by address: one string literal per op */
    void (*release)(const WarpOp *const *lanes);
};
void warp_collective(const WarpOp *op);
int lane_id();
void *dyn_smem();
/* smem_limit: the kernel's dynamic shared memory limit (48 KB unless cudaFuncSetAttribute raised it) */
int func_set_attribute(const void *kernel, int attr, int value);
int device_smem_optin();
void run(dim3 grid, dim3 block, size_t smem, size_t smem_limit, std::function<void()> body);
/* a launch on a stream (emu_runtime.cpp): queued on the stream (stream 0: runs now), recorded while it is captured */
void launch(dim3 grid, dim3 block, size_t smem, void *stream, const void *kernel, const char *name,
            std::function<void()> body);
/* what prep.sh turns `kernel<<<g, b, smem, stream>>>(args)` into:
 * Launcher(g, b, smem, stream).bind(kernel, "kernel")(args); the arguments are held by value, as a
 * captured graph holds a kernel node's; the name, as written at the launch, is for the launch census */
struct Launcher {
    dim3 g, b;
    size_t smem;
    void *stream;
    Launcher(dim3 g_, dim3 b_, size_t s = 0, void *st = 0) : g(g_), b(b_), smem(s), stream(st) {}
    template <class... P> auto bind(void (*k)(P...), const char *name)
    {
        dim3 g_ = g, b_ = b;
        size_t s_ = smem;
        void *st_ = stream;
        return [=](P... args) { launch(g_, b_, s_, st_, (const void *)k, name, [=] { k(args...); }); };
    }
};
template <class T> static inline uint64_t bits_of(T v)
{
    static_assert(sizeof(T) <= 8, "warp exchange of more than 8 bytes");
    uint64_t u = 0;
    memcpy(&u, &v, sizeof(T));
    return u;
}
template <class T> static inline T of_bits(uint64_t u)
{
    T v;
    memcpy(&v, &u, sizeof(T));
    return v;
}
} // namespace emu
#define threadIdx (*emu::g_tid)
#define blockIdx (emu::g_bid)
#define blockDim (emu::g_bdim)
#define gridDim (emu::g_gdim)
#define __syncthreads() emu::syncthreads()
#define __syncwarp(...) emu::syncwarp()
/* warp intrinsics: the full-warp forms only (the mask is ignored; every live lane of the warp takes part) */
template <class T> static inline T __shfl_xor_sync(unsigned, T v, int o) { return emu::of_bits<T>(emu::xchg(emu::bits_of(v), o)); }
template <class T> static inline unsigned __match_any_sync(unsigned, T v) { return emu::match_any(emu::bits_of(v)); }
static inline int __popc(unsigned v) { return __builtin_popcount(v); }
static inline int __clz(unsigned v) { return v ? __builtin_clz(v) : 32; }
/* bit casts */
static inline int __float_as_int(float v) { int i; memcpy(&i, &v, sizeof(i)); return i; }
static inline float __int_as_float(int i) { float v; memcpy(&v, &i, sizeof(v)); return v; }
/* the _rn intrinsics: IEEE round-to-nearest, which the host's SSE arithmetic is (built with -ffp-contract=off) */
static inline float __fmul_rn(float a, float b) { return a * b; }
static inline float __fadd_rn(float a, float b) { return a + b; }
static inline float __fsub_rn(float a, float b) { return a - b; }
static inline float __fdiv_rn(float a, float b) { return a / b; }
static inline float __fsqrt_rn(float a) { return sqrtf(a); }
static inline double __dmul_rn(double a, double b) { return a * b; }
static inline double __dadd_rn(double a, double b) { return a + b; }
static inline float rsqrtf(float a) { return 1.0f / sqrtf(a); }
/* fibers switch only at barriers, so a read-modify-write is atomic here */
template <class T> static inline T atomicAdd(T *p, T v) { T o = *p; *p += v; return o; }
#endif
