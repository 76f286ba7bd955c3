/*
 * libcatanet: CATANet super-resolution (Liu et al., CVPR 2025) in C, CPU and CUDA.
 *
 * The one public header. C99, no CUDA types. Every function that can fail
 * returns 0 or a negative CatanetError; the engine keeps a detail message for
 * the last failure (catanet_engine_last_error). The library never prints,
 * exits or aborts; it reports through the optional log callback.
 *
 * Typical use:
 *     CatanetConfig cfg;
 *     catanet_config_default(&cfg);
 *     cfg.device = CATANET_DEVICE_CPU;
 *     CatanetEngine *e;
 *     if (catanet_engine_open(&e, "model.safetensors", &cfg) < 0) ...
 *     catanet_engine_prepare(e, w, h);          // plans all memory for w x h
 *     catanet_engine_process(e, in, out);       // per frame, no allocation
 *     catanet_engine_close(&e);
 */
#ifndef CATANET_H
#define CATANET_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define CATANET_VERSION_MAJOR 0
#define CATANET_VERSION_MINOR 2
#define CATANET_VERSION_MICRO 0
#define CATANET_VERSION_STR2_(x) #x
#define CATANET_VERSION_STR_(a, b, c) CATANET_VERSION_STR2_(a) "." CATANET_VERSION_STR2_(b) "." CATANET_VERSION_STR2_(c)
/** "MAJOR.MINOR.MICRO" of this header (catanet_version() gives the linked library's). */
#define CATANET_VERSION_STRING \
    CATANET_VERSION_STR_(CATANET_VERSION_MAJOR, CATANET_VERSION_MINOR, CATANET_VERSION_MICRO)

/* Marks the public API: the only symbols libcatanet.so exports (it is built with -fvisibility=hidden). */
#if defined(__GNUC__)
#define CATANET_API __attribute__((visibility("default")))
#else
#define CATANET_API
#endif

/** Error codes: 0 is success, every error is negative. Values are stable. */
typedef enum CatanetError {
    CATANET_OK = 0,
    CATANET_ERR_INVALID_ARG = -1,  /**< a NULL, a size out of range, a bad option */
    CATANET_ERR_NOMEM = -2,        /**< host or device allocation failed */
    CATANET_ERR_IO = -3,           /**< a file could not be opened, read or written */
    CATANET_ERR_FORMAT = -4,       /**< a weight file or checkpoint is malformed */
    CATANET_ERR_UNSUPPORTED = -5,  /**< a valid request this build cannot serve */
    CATANET_ERR_NO_DEVICE = -6,    /**< CUDA asked for but no usable GPU (never a silent fallback) */
    CATANET_ERR_CUDA = -7,         /**< a CUDA runtime or driver call failed */
    CATANET_ERR_CUBLAS = -8,       /**< a cuBLAS call failed */
    CATANET_ERR_STATE = -9,        /**< call order: process before prepare, ... */
    CATANET_ERR_NONFINITE = -10,   /**< the network's output holds NaN or Inf (weights or input out of range) */
} CatanetError;

/** A static string for an error code (never NULL). */
CATANET_API const char *catanet_strerror(int err);

/** "MAJOR.MINOR.MICRO" of the library that is linked. */
CATANET_API const char *catanet_version(void);

typedef enum CatanetDevice {
    CATANET_DEVICE_CPU = 0,
    CATANET_DEVICE_CUDA = 1,
    CATANET_DEVICE_AUTO = 2,       /**< CUDA when the CUDA plugin loads and a device is present, else the CPU;
                                        the choice is logged at INFO (catanet_engine_device tells it) */
} CatanetDevice;

typedef enum CatanetPrecision {
    CATANET_PRECISION_AUTO = 0,    /**< fp16 on CUDA, fp32 on CPU */
    CATANET_PRECISION_FP32 = 1,
    CATANET_PRECISION_FP16 = 2,    /**< CUDA only; LayerNorm, softmax, similarity stay fp32 */
} CatanetPrecision;

/** Where two kernels compute the same op (each checked against the CPU reference: tests/test_twins.c),
 *  which one a CUDA engine runs. The CPU engine ignores it. */
typedef enum CatanetKernels {
    CATANET_KERNELS_AUTO = 0,      /**< time both at prepare on this GPU and size, run the faster
                                        (the choice is logged at INFO; results may differ in the last
                                        bits between engines that chose differently) */
    CATANET_KERNELS_PRIMARY = 1,   /**< the fused/tiled/tensor-core kernels, untimed: the same choice
                                        on every run */
    CATANET_KERNELS_FALLBACK = 2,  /**< the simpler kernels they replaced (im2col + cuBLAS convs,
                                        separate token-layer passes, CUDA-core attention) */
} CatanetKernels;

typedef enum CatanetLogLevel {
    CATANET_LOG_ERROR = 0,
    CATANET_LOG_WARNING = 1,
    CATANET_LOG_INFO = 2,
    CATANET_LOG_DEBUG = 3,
} CatanetLogLevel;

typedef void (*CatanetLogFn)(void *opaque, int level, const char *msg);

/** Engine configuration. Fill with catanet_config_default, then set fields. */
typedef struct CatanetConfig {
    CatanetDevice device;          /**< CUDA never falls back to the CPU by itself; AUTO chooses once, at open */
    int gpu;                       /**< CUDA device index (ignored on CPU) */
    int threads;                   /**< CPU threads; 0 = all available */
    CatanetPrecision precision;
    int tile;                      /**< largest input tile side in pixels; 0 = automatic
                                        (no tiling on CPU, bounded workspace on CUDA) */
    void *cuda_context;            /**< CUcontext to run in (e.g. FFmpeg's), or NULL: primary context */
    void *cuda_stream;             /**< cudaStream_t/CUstream to run on, or NULL: the engine's own */
    CatanetLogFn log;              /**< optional; called from the calling thread */
    void *log_opaque;
    int log_level;                 /**< highest CatanetLogLevel passed to log */
    CatanetKernels kernels;        /**< CUDA: which kernel of a pair runs an op (default AUTO) */
} CatanetConfig;

CATANET_API void catanet_config_default(CatanetConfig *cfg);

/** Number of usable CUDA devices; 0 when the CUDA plugin (libcatanet-cuda.so), the CUDA runtime
 *  or a device is missing. The first call loads the plugin (once per process). */
CATANET_API int catanet_cuda_device_count(void);

/** The network a weight file describes (read from its metadata or its tensor shapes). */
#define CATANET_MAX_GROUPS 64
typedef struct CatanetGroupInfo {
    int num_tokens;                /**< token centers M */
    int group_size;                /**< IASA subgroup size */
    int patch_size;                /**< LRSA patch side */
} CatanetGroupInfo;

typedef struct CatanetModelInfo {
    int dim, qk_dim, heads, mlp_dim;
    int upscale;                   /**< 1, 2, 3 or 4 */
    int in_chans;                  /**< 3 */
    int num_groups;
    CatanetGroupInfo groups[CATANET_MAX_GROUPS];
    int64_t num_params;            /**< learnable parameters (buffers excluded) */
} CatanetModelInfo;

/* ---- models by name ---- */

/** Longest model name catanet_model_resolve accepts (bytes, without the NUL). */
#define CATANET_MODEL_NAME_MAX 128

/**
 * Resolve a model argument (what every tool's -m and the filter's model= take) to a file path.
 * An argument with a '/' or a '.' is a path: copied to path unchanged (it is checked when opened).
 * Anything else is a model name (letters, digits, '_', '-'; e.g. "catanet_s_x4"), looked up as
 * NAME.safetensors, then NAME.pth, in each folder of the environment variable CATANET_MODEL_PATH
 * (colon-separated, empty entries ignored), then in the installed model folder (catanet_model_dir).
 * A file without an extension in the current folder is therefore given as ./FILE.
 * Returns 0 with the path (NUL-terminated, at most path_size bytes); CATANET_ERR_INVALID_ARG for a
 * malformed name or a path that does not fit; CATANET_ERR_IO when no folder holds the name, with
 * err (when not NULL) listing the folders looked in. catanet_engine_open applies the same rule.
 */
CATANET_API int catanet_model_resolve(const char *model, char *path, size_t path_size, char *err, size_t err_size);

/** The installed model folder, last in the lookup (PREFIX/share/catanet unless configured). */
CATANET_API const char *catanet_model_dir(void);

/** Called by catanet_model_list for each model; a non-zero return stops the listing. */
typedef int (*CatanetModelFn)(void *opaque, const char *name, const char *path);

/**
 * Enumerate the models a name reaches: the folders in lookup order, each folder's NAME.safetensors
 * and NAME.pth files by name, each reported only where catanet_model_resolve would resolve NAME to
 * it (a copy shadowed by an earlier folder, or NAME.pth beside NAME.safetensors, is left out).
 * Missing folders are skipped. The files are not opened: catanet_model_probe reads one. Each
 * folder is read with scandir (allocated and freed while the call runs; nothing is kept).
 * Returns 0 after the last one, fn's non-zero value when it stopped, or CATANET_ERR_INVALID_ARG.
 */
CATANET_API int catanet_model_list(CatanetModelFn fn, void *opaque);

/**
 * Read the architecture of a model (a name or a path, as catanet_model_resolve resolves it; safetensors
 * or an official PyTorch .pth checkpoint) without creating an engine. The whole file is read and
 * checked as catanet_engine_open would; err (when not NULL) gets the reason of a failure.
 */
CATANET_API int catanet_model_probe(const char *model, CatanetModelInfo *info, char *err, size_t err_size);

typedef struct CatanetEngine CatanetEngine;

/**
 * Open a model and create an engine on cfg->device. model_path is a model name or a path, resolved
 * by catanet_model_resolve; the file is safetensors or an official PyTorch checkpoint (.pth, read
 * without Python: the pickle is parsed, never executed), told apart by its content.
 * On failure *out is NULL; when err_msg is not NULL it receives a detail message
 * (up to err_msg_size bytes, NUL-terminated).
 */
CATANET_API int catanet_engine_open(CatanetEngine **out, const char *model_path, const CatanetConfig *cfg,
                        char *err_msg, size_t err_msg_size);

/** Close and free; NULL-safe; sets *e to NULL. */
CATANET_API void catanet_engine_close(CatanetEngine **e);

CATANET_API const CatanetModelInfo *catanet_engine_model(const CatanetEngine *e);
CATANET_API int catanet_engine_scale(const CatanetEngine *e);
CATANET_API CatanetDevice catanet_engine_device(const CatanetEngine *e);
/** The precision actually used (never AUTO). */
CATANET_API CatanetPrecision catanet_engine_precision(const CatanetEngine *e);

/** What runs the network: "cpu (N threads)" or the GPU's name. */
CATANET_API const char *catanet_engine_device_name(const CatanetEngine *e);

/** Detail of the last error on this engine ("" when none). */
CATANET_API const char *catanet_engine_last_error(const CatanetEngine *e);

/**
 * Plan and allocate every buffer for inputs of width x height (any size >= 1).
 * Call again when the size changes; process never allocates.
 */
CATANET_API int catanet_engine_prepare(CatanetEngine *e, int width, int height);

/** Bytes of working memory planned for the prepared size (device memory on CUDA, host on CPU), weights included. */
CATANET_API int64_t catanet_engine_memory_bytes(const CatanetEngine *e);

/**
 * CUDA engines, after prepare: run the forward once, eagerly (not the graph), with a timing event
 * after each of its steps, and write a table of the steps to report (summed over the residual
 * groups: calls, ms, share of the frame, largest first). A benchmarking diagnostic: it creates
 * events (allocates) and leaves the prepared plan as it was. CPU engines: CATANET_ERR_UNSUPPORTED.
 */
CATANET_API int catanet_engine_profile(CatanetEngine *e, char *report, size_t report_size);

/**
 * Upscale one frame. in: planar float RGB [3][height][width] in [0,1];
 * out: planar float RGB [3][scale*height][scale*width], not clamped (the raw
 * network output). Host memory on a CPU engine; on a CUDA engine host memory
 * too (the engine copies); see catanet_engine_process_image for device frames.
 */
CATANET_API int catanet_engine_process(CatanetEngine *e, const float *in, float *out);

/* ---- images: the strided 8/10/16-bit formats a video filter meets ---- */

typedef enum CatanetPixelFormat {
    CATANET_PIX_RGB24 = 0,         /**< packed R,G,B, 8 bit */
    CATANET_PIX_BGR24,             /**< packed B,G,R, 8 bit */
    CATANET_PIX_RGB48,             /**< packed R,G,B, 16-bit samples (native endian), `bits` significant */
    CATANET_PIX_RGBP,              /**< planes R,G,B; 8 bit when bits == 8, else 16-bit samples */
    CATANET_PIX_GRAY,              /**< one luma plane (full range grey), 8 or 16-bit samples */
    CATANET_PIX_YUV420P,           /**< planes Y,U,V, chroma halved both ways; 8 or 16-bit samples */
    CATANET_PIX_YUV422P,           /**< chroma halved horizontally */
    CATANET_PIX_YUV444P,
    CATANET_PIX_NV12,              /**< plane Y, plane interleaved U,V (4:2:0); 8 bit */
    CATANET_PIX_P010,              /**< as NV12 with 16-bit samples, value in the high 10 bits */
    CATANET_PIX_FLOAT_RGBP,        /**< planes R,G,B of float in [0,1] (the network's own) */
} CatanetPixelFormat;

typedef enum CatanetColorMatrix {
    CATANET_MATRIX_BT601 = 0,
    CATANET_MATRIX_BT709 = 1,
    CATANET_MATRIX_BT2020 = 2,     /**< non-constant luminance */
} CatanetColorMatrix;

typedef enum CatanetColorRange {
    CATANET_RANGE_LIMITED = 0,     /**< "tv": Y 16..235, C 16..240 (scaled by 2^(bits-8)) */
    CATANET_RANGE_FULL = 1,        /**< "pc" */
} CatanetColorRange;

typedef enum CatanetChromaLoc {
    CATANET_CHROMA_LEFT = 0,       /**< MPEG-2/H.264 default: co-sited horizontally, centred vertically */
    CATANET_CHROMA_CENTER = 1,     /**< MPEG-1/JPEG: centred both ways */
    CATANET_CHROMA_TOPLEFT = 2,    /**< co-sited both ways (BT.2020 UHD) */
} CatanetChromaLoc;

/** A strided image, on the host (or on the device for CUDA engines when on_device is set). */
typedef struct CatanetImage {
    CatanetPixelFormat format;
    int bits;                      /**< significant bits per sample: 8, 10, 12 or 16 (float: ignored) */
    int width, height;
    void *data[3];                 /**< planes in the order the format names them */
    ptrdiff_t linesize[3];         /**< bytes from one row to the next, per plane */
    CatanetColorMatrix matrix;     /**< YUV formats only */
    CatanetColorRange range;       /**< YUV formats only (RGB and GRAY are always full range) */
    CatanetChromaLoc chroma_loc;   /**< subsampled formats only */
    int on_device;                 /**< planes are CUDA device pointers */
} CatanetImage;

/** Convert a host image to planar float RGB [3][h][w] in [0,1] (YUV with its matrix and range). */
CATANET_API int catanet_image_to_rgb(const CatanetImage *src, float *rgb);

/**
 * Convert planar float RGB [3][h][w] to a host image of the same size: clamp to [0,1],
 * convert, round to nearest. Subsampled chroma is filtered at the format's siting.
 */
CATANET_API int catanet_image_from_rgb(const float *rgb, CatanetImage *dst);

/**
 * Upscale one frame from any supported format to any supported format (usually the
 * same one): in is width x height as prepared, out is scale times that. A CUDA engine
 * accepts device images (on_device = 1) and never copies them to the host.
 */
CATANET_API int catanet_engine_process_image(CatanetEngine *e, const CatanetImage *in, CatanetImage *out);

#ifdef __cplusplus
}
#endif

#endif /* CATANET_H */
