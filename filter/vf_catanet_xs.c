/*
 * catanet_xs: CATANet-XS neural super-resolution through libcatanet
 *
 * This file is part of FFmpeg.
 *
 * FFmpeg is free software; you can redistribute it and/or
 * modify it under the terms of the GNU Lesser General Public
 * License as published by the Free Software Foundation; either
 * version 2.1 of the License, or (at your option) any later version.
 *
 * FFmpeg is distributed in the hope that it will be useful,
 * but WITHOUT ANY WARRANTY; without even the implied warranty of
 * MERCHANTABILITY or FITNESS FOR A PARTICULAR PURPOSE.  See the GNU
 * Lesser General Public License for more details.
 *
 * You should have received a copy of the GNU Lesser General Public
 * License along with FFmpeg; if not, write to the Free Software
 * Foundation, Inc., 51 Franklin Street, Fifth Floor, Boston, MA 02110-1301 USA
 */

/**
 * @file
 * Upscale video with a CATANet model. All numerical work (colour conversion, the network)
 * happens in libcatanet; this file maps frames, options and errors between the two.
 *
 * One frame in, one frame out, no frames held: the filter adds no latency. Engines are
 * created in config_props and kept in a small process-wide pool so that a graph re-created
 * for a resolution change does not reload the model.
 *
 * One source for FFmpeg 5.1 (lavfi 8), 7.1 (lavfi 10) and 8.x+ (lavfi 11+, FFFilter).
 */

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <catanet.h>

#include "config.h"
#include "config_components.h"

#include "libavutil/avassert.h"
#include "libavutil/avstring.h"
#include "libavutil/imgutils.h"
#include "libavutil/mem.h"
#include "libavutil/opt.h"
#include "libavutil/pixdesc.h"
#include "libavutil/thread.h"
#include "libswscale/swscale.h"

#include "libavfilter/version.h"
#include "avfilter.h"
#include "formats.h"
#include "video.h"

#if LIBAVFILTER_VERSION_INT >= AV_VERSION_INT(10, 4, 100)
#include "filters.h"
#define LINK_HWFC(link) (ff_filter_link(link)->hw_frames_ctx)
#else
#include "internal.h"
#define LINK_HWFC(link) ((link)->hw_frames_ctx)
#endif

#if CONFIG_CUDA
#include "libavutil/hwcontext.h"
#include "libavutil/hwcontext_cuda_internal.h"
#include "libavutil/cuda_check.h"
#define CHECK_CU(x) FF_CUDA_CHECK_DL(ctx, s->cu, x)
#endif

/* a model name: libcatanet looks it up in CATANET_MODEL_PATH, then in its installed model folder */
#define DEFAULT_MODEL "catanet_xs_x2"

enum { DEV_AUTO = -1, DEV_CPU = CATANET_DEVICE_CPU, DEV_CUDA = CATANET_DEVICE_CUDA };
enum { MATRIX_AUTO = -1 };
enum { NONFINITE_FAIL, NONFINITE_BICUBIC };
enum { HDR_FAIL, HDR_PASS };

typedef struct PoolEntry PoolEntry;

typedef struct CatanetXSContext {
    const AVClass *class;

    /* options */
    char *model;
    int device;
    int gpu;
    int precision;
    int cpu_threads;
    int tile;
    int matrix;
    int nonfinite;
    int hdr;

    /* state */
    char *model_path;               ///< the file the model option resolves to
    PoolEntry *entry;               ///< the engine this instance holds (from the pool)
    CatanetEngine *eng;
    int scale;
    int on_device;                  ///< input frames are AV_PIX_FMT_CUDA
    enum AVPixelFormat sw_format;   ///< layout of the frames (sw_format for CUDA frames)
    struct SwsContext *sws;         ///< bicubic: while the timeline disables the filter, nonfinite=bicubic
    struct SwsContext *alpha_sws;   ///< bicubic of the alpha plane (formats with alpha)
    const struct FormatMap *fmt;    ///< how the library sees sw_format
    int warned_siting, warned_matrix, warned_cuda_timeline, warned_hdr;
    int64_t nb_frames;              ///< input frames so far
    int64_t nb_nonfinite;           ///< of those, frames whose output held NaN or Inf
#if CONFIG_CUDA
    AVCUDADeviceContext *hwctx;
    CudaFunctions *cu;
#endif
} CatanetXSContext;

/*
 * The engine pool: the one piece of process-wide state. FFmpeg destroys the old graph
 * before it builds the new one on a resolution change, so a plain refcount would drop to
 * zero and the model would be read again; instead an engine released by a filter stays
 * here, idle, and the next filter with the same key (model, device, gpu, precision,
 * threads, tile) takes it. An engine is used by one filter at a time (it holds per-size
 * buffers). Engines bound to an external CUDA context are closed on release, since that
 * context may be destroyed after the graph.
 */
#define POOL_MAX_IDLE 2

struct PoolEntry {
    PoolEntry *next;
    char *key;
    CatanetEngine *eng;
    int in_use;
    int keep;                      ///< may stay idle after release
    int64_t last_used;             ///< release order, for eviction
    void *log_owner;               ///< the AVFilterContext holding it, for log messages
};

static AVMutex pool_lock = AV_MUTEX_INITIALIZER;
static PoolEntry *pool_head;
static int64_t pool_clock;

static void engine_log(void *opaque, int level, const char *msg)
{
    PoolEntry *pe = opaque;
    static const int levels[] = { AV_LOG_ERROR, AV_LOG_WARNING, AV_LOG_VERBOSE, AV_LOG_DEBUG };
    int l = level >= 0 && level < (int)FF_ARRAY_ELEMS(levels) ? levels[level] : AV_LOG_DEBUG;
    av_log(pe->log_owner, l, "libcatanet: %s\n", msg);
}

/* the engine's level from FFmpeg's (-v), read when an engine is opened: -v verbose shows its INFO
 * lines (device, kernel picks, memory plan), -v debug its DEBUG lines too */
static int engine_log_level(void)
{
    int l = av_log_get_level();
    return l >= AV_LOG_DEBUG ? CATANET_LOG_DEBUG : l >= AV_LOG_VERBOSE ? CATANET_LOG_INFO :
           l >= AV_LOG_WARNING ? CATANET_LOG_WARNING : CATANET_LOG_ERROR;
}

static int catanet_to_averror(int err)
{
    switch (err) {
    case CATANET_ERR_INVALID_ARG: return AVERROR(EINVAL);
    case CATANET_ERR_NOMEM:       return AVERROR(ENOMEM);
    case CATANET_ERR_IO:          return AVERROR(EIO);
    case CATANET_ERR_FORMAT:      return AVERROR_INVALIDDATA;
    case CATANET_ERR_UNSUPPORTED: return AVERROR(ENOSYS);
    case CATANET_ERR_NO_DEVICE:   return AVERROR(ENODEV);
    case CATANET_ERR_CUDA:
    case CATANET_ERR_CUBLAS:      return AVERROR_EXTERNAL;
    case CATANET_ERR_STATE:       return AVERROR_BUG;
    case CATANET_ERR_NONFINITE:   return AVERROR(ERANGE);
    }
    return err < 0 ? AVERROR_EXTERNAL : err;
}

/* caller holds pool_lock */
static void pool_evict_idle(void)
{
    int idle = 0;
    for (PoolEntry *p = pool_head; p; p = p->next)
        idle += !p->in_use;
    while (idle > POOL_MAX_IDLE) {
        PoolEntry **oldest = NULL, *victim;
        for (PoolEntry **pp = &pool_head; *pp; pp = &(*pp)->next)
            if (!(*pp)->in_use && (!oldest || (*pp)->last_used < (*oldest)->last_used))
                oldest = pp;
        victim = *oldest;
        *oldest = victim->next;
        catanet_engine_close(&victim->eng);
        av_freep(&victim->key);
        av_free(victim);
        idle--;
    }
}

static int pool_acquire(AVFilterContext *ctx, const CatanetConfig *cfg, int keep, PoolEntry **out,
                        char *err, size_t err_size)
{
    CatanetXSContext *s = ctx->priv;
    PoolEntry *pe;
    CatanetConfig c;
    int ret = 0;
    char *key = av_asprintf("%s|%d|%d|%d|%d|%d|%p", s->model_path, (int)cfg->device, cfg->gpu,
                            (int)cfg->precision, cfg->threads, cfg->tile, cfg->cuda_context);
    if (!key)
        return AVERROR(ENOMEM);
    *out = NULL;
    ff_mutex_lock(&pool_lock);
    for (PoolEntry *p = pool_head; p; p = p->next) {
        if (!p->in_use && p->keep && !strcmp(p->key, key)) {
            p->in_use = 1;
            p->log_owner = ctx;
            *out = p;
            av_log(ctx, AV_LOG_VERBOSE, "reusing the cached engine for '%s'\n", s->model_path);
            goto done;
        }
    }
    pe = av_mallocz(sizeof(*pe));
    if (!pe) {
        ret = AVERROR(ENOMEM);
        goto done;
    }
    pe->key = key;
    key = NULL;
    pe->keep = keep;
    pe->in_use = 1;
    pe->log_owner = ctx;
    c = *cfg;
    c.log = engine_log;
    c.log_opaque = pe;
    c.log_level = engine_log_level();
    /* opening reads the model file while holding the lock: simple, and graphs are
     * configured one at a time in practice */
    ret = catanet_engine_open(&pe->eng, s->model_path, &c, err, err_size);
    if (ret < 0) {
        av_free(pe->key);
        av_free(pe);
        goto done;
    }
    pe->next = pool_head;
    pool_head = pe;
    *out = pe;
done:
    ff_mutex_unlock(&pool_lock);
    av_free(key);
    return ret;
}

static void pool_release(PoolEntry *pe)
{
    if (!pe)
        return;
    ff_mutex_lock(&pool_lock);
    pe->in_use = 0;
    pe->log_owner = NULL;
    pe->last_used = ++pool_clock;
    if (!pe->keep) {
        for (PoolEntry **pp = &pool_head; *pp; pp = &(*pp)->next)
            if (*pp == pe) {
                *pp = pe->next;
                break;
            }
        catanet_engine_close(&pe->eng);
        av_freep(&pe->key);
        av_free(pe);
    } else {
        pool_evict_idle();
    }
    ff_mutex_unlock(&pool_lock);
}

/* Every software format the filter takes, and how the library reads it: output has the input's
 * format (4:2:2 stays 4:2:2, 10-bit stays 10-bit). A format not listed is converted by FFmpeg's
 * negotiation to the closest listed one. Alpha: the network sees the colour planes; the alpha
 * plane (plane 3) is upscaled with bicubic (swscale) beside it, never dropped. */
typedef struct FormatMap {
    enum AVPixelFormat av;
    CatanetPixelFormat fmt;
    int bits;
    int full_range;                 ///< JPEG formats: full range whatever the tag says
    int gbr;                        ///< FFmpeg's G,B,R planes: reordered to R,G,B
    enum AVPixelFormat alpha;       ///< format of the alpha plane alone, or AV_PIX_FMT_NONE
} FormatMap;

#define NO_A AV_PIX_FMT_NONE
static const FormatMap formats[] = {
    { AV_PIX_FMT_YUV420P,     CATANET_PIX_YUV420P,  8, 0, 0, NO_A },
    { AV_PIX_FMT_YUVJ420P,    CATANET_PIX_YUV420P,  8, 1, 0, NO_A },
    { AV_PIX_FMT_YUV422P,     CATANET_PIX_YUV422P,  8, 0, 0, NO_A },
    { AV_PIX_FMT_YUVJ422P,    CATANET_PIX_YUV422P,  8, 1, 0, NO_A },
    { AV_PIX_FMT_YUV444P,     CATANET_PIX_YUV444P,  8, 0, 0, NO_A },
    { AV_PIX_FMT_YUVJ444P,    CATANET_PIX_YUV444P,  8, 1, 0, NO_A },
    { AV_PIX_FMT_NV12,        CATANET_PIX_NV12,     8, 0, 0, NO_A },
    { AV_PIX_FMT_RGB24,       CATANET_PIX_RGB24,    8, 0, 0, NO_A },
    { AV_PIX_FMT_BGR24,       CATANET_PIX_BGR24,    8, 0, 0, NO_A },
    { AV_PIX_FMT_GBRP,        CATANET_PIX_RGBP,     8, 0, 1, NO_A },
    { AV_PIX_FMT_GRAY8,       CATANET_PIX_GRAY,     8, 0, 0, NO_A },
    { AV_PIX_FMT_YUV420P10LE, CATANET_PIX_YUV420P, 10, 0, 0, NO_A },
    { AV_PIX_FMT_YUV422P10LE, CATANET_PIX_YUV422P, 10, 0, 0, NO_A },
    { AV_PIX_FMT_YUV444P10LE, CATANET_PIX_YUV444P, 10, 0, 0, NO_A },
    { AV_PIX_FMT_YUV420P12LE, CATANET_PIX_YUV420P, 12, 0, 0, NO_A },
    { AV_PIX_FMT_YUV422P12LE, CATANET_PIX_YUV422P, 12, 0, 0, NO_A },
    { AV_PIX_FMT_YUV444P12LE, CATANET_PIX_YUV444P, 12, 0, 0, NO_A },
    { AV_PIX_FMT_P010LE,      CATANET_PIX_P010,    10, 0, 0, NO_A },
    { AV_PIX_FMT_GRAY10LE,    CATANET_PIX_GRAY,    10, 0, 0, NO_A },
    { AV_PIX_FMT_GRAY16LE,    CATANET_PIX_GRAY,    16, 0, 0, NO_A },
    { AV_PIX_FMT_RGB48LE,     CATANET_PIX_RGB48,   16, 0, 0, NO_A },
    { AV_PIX_FMT_GBRP10LE,    CATANET_PIX_RGBP,    10, 0, 1, NO_A },
    { AV_PIX_FMT_GBRP16LE,    CATANET_PIX_RGBP,    16, 0, 1, NO_A },
    { AV_PIX_FMT_YUVA420P,    CATANET_PIX_YUV420P,  8, 0, 0, AV_PIX_FMT_GRAY8 },
    { AV_PIX_FMT_YUVA422P,    CATANET_PIX_YUV422P,  8, 0, 0, AV_PIX_FMT_GRAY8 },
    { AV_PIX_FMT_YUVA444P,    CATANET_PIX_YUV444P,  8, 0, 0, AV_PIX_FMT_GRAY8 },
    { AV_PIX_FMT_GBRAP,       CATANET_PIX_RGBP,     8, 0, 1, AV_PIX_FMT_GRAY8 },
    { AV_PIX_FMT_YUVA420P10LE, CATANET_PIX_YUV420P, 10, 0, 0, AV_PIX_FMT_GRAY10LE },
    { AV_PIX_FMT_YUVA422P10LE, CATANET_PIX_YUV422P, 10, 0, 0, AV_PIX_FMT_GRAY10LE },
    { AV_PIX_FMT_YUVA444P10LE, CATANET_PIX_YUV444P, 10, 0, 0, AV_PIX_FMT_GRAY10LE },
    { AV_PIX_FMT_GBRAP16LE,   CATANET_PIX_RGBP,    16, 0, 1, AV_PIX_FMT_GRAY16LE },
};

static const enum AVPixelFormat pix_fmts[] = {
    AV_PIX_FMT_YUV420P, AV_PIX_FMT_YUVJ420P, AV_PIX_FMT_YUV422P, AV_PIX_FMT_YUVJ422P, AV_PIX_FMT_YUV444P,
    AV_PIX_FMT_YUVJ444P, AV_PIX_FMT_NV12, AV_PIX_FMT_RGB24, AV_PIX_FMT_BGR24, AV_PIX_FMT_GBRP, AV_PIX_FMT_GRAY8,
    AV_PIX_FMT_YUV420P10LE, AV_PIX_FMT_YUV422P10LE, AV_PIX_FMT_YUV444P10LE, AV_PIX_FMT_YUV420P12LE,
    AV_PIX_FMT_YUV422P12LE, AV_PIX_FMT_YUV444P12LE, AV_PIX_FMT_P010LE, AV_PIX_FMT_GRAY10LE, AV_PIX_FMT_GRAY16LE,
    AV_PIX_FMT_RGB48LE, AV_PIX_FMT_GBRP10LE, AV_PIX_FMT_GBRP16LE,
    AV_PIX_FMT_YUVA420P, AV_PIX_FMT_YUVA422P, AV_PIX_FMT_YUVA444P, AV_PIX_FMT_GBRAP,
    AV_PIX_FMT_YUVA420P10LE, AV_PIX_FMT_YUVA422P10LE, AV_PIX_FMT_YUVA444P10LE, AV_PIX_FMT_GBRAP16LE,
#if CONFIG_CUDA
    AV_PIX_FMT_CUDA,
#endif
    AV_PIX_FMT_NONE
};

static const FormatMap *find_format(enum AVPixelFormat f)
{
    for (int i = 0; i < FF_ARRAY_ELEMS(formats); i++)
        if (formats[i].av == f)
            return &formats[i];
    return NULL;
}

#if CONFIG_CUDA
static const enum AVPixelFormat cuda_sw_formats[] = {
    AV_PIX_FMT_NV12, AV_PIX_FMT_P010, AV_PIX_FMT_YUV444P,
};
#endif

static av_cold int init(AVFilterContext *ctx)
{
    CatanetXSContext *s = ctx->priv;
    char path[4096], err[1024];
    FILE *f;
    int ret;

    /* AVFilterContext's own `threads` (slice threading, which this filter does not do) would
     * take a value meant for the network and silently do nothing: refuse it, name the option */
    if (ctx->nb_threads) {
        av_log(ctx, AV_LOG_ERROR, "threads=%d is FFmpeg's generic slice-threading option, which catanet_xs "
               "does not use; set the network's CPU threads with cpu_threads=N\n", ctx->nb_threads);
        return AVERROR(EINVAL);
    }
    /* the two lists of software formats agree (a format in pix_fmts the table lacks would fail
     * at the first frame) */
    for (int i = 0; pix_fmts[i] != AV_PIX_FMT_NONE; i++)
        if (pix_fmts[i] != AV_PIX_FMT_CUDA && !find_format(pix_fmts[i])) {
            av_log(ctx, AV_LOG_ERROR, "%s is listed but has no entry in the format table\n",
                   av_get_pix_fmt_name(pix_fmts[i]));
            return AVERROR_BUG;
        }
    /* fail here, with the reason, before any graph is configured: a name the library cannot
     * find (the message lists the folders it looked in), a file that cannot be read */
    ret = catanet_model_resolve(s->model, path, sizeof(path), err, sizeof(err));
    if (ret < 0) {
        av_log(ctx, AV_LOG_ERROR, "model=%s: %s%s\n", s->model ? s->model : "", err,
               s->model && strcmp(s->model, DEFAULT_MODEL) ? "" :
               " (this is the default model: install libcatanet's models, set CATANET_MODEL_PATH to the "
               "folder that holds them, or pass model=NAME|FILE)");
        return catanet_to_averror(ret);
    }
    f = fopen(path, "rb");
    if (!f) {
        ret = errno;
        av_log(ctx, AV_LOG_ERROR, "cannot open model file '%s': %s\n", path, strerror(ret));
        return AVERROR(ret);
    }
    /* a directory opens but does not read (EISDIR): say so here too */
    if (getc(f) == EOF && ferror(f)) {
        ret = errno;
        fclose(f);
        av_log(ctx, AV_LOG_ERROR, "cannot read model file '%s': %s\n", path, strerror(ret));
        return AVERROR(ret);
    }
    fclose(f);
    s->model_path = av_strdup(path);
    return s->model_path ? 0 : AVERROR(ENOMEM);
}

static av_cold void uninit(AVFilterContext *ctx)
{
    CatanetXSContext *s = ctx->priv;

    if (s->nb_nonfinite)
        av_log(ctx, AV_LOG_WARNING, "%"PRId64" of %"PRId64" frames had non-finite network output and were "
               "passed through bicubic (nonfinite=bicubic)\n", s->nb_nonfinite, s->nb_frames);
    sws_freeContext(s->sws);
    s->sws = NULL;
    sws_freeContext(s->alpha_sws);
    s->alpha_sws = NULL;
#if CONFIG_CUDA
    if (s->entry && s->on_device && s->cu) {
        CUcontext dummy;
        /* the engine's device resources belong to FFmpeg's context: free them inside it */
        if (CHECK_CU(s->cu->cuCtxPushCurrent(s->hwctx->cuda_ctx)) >= 0) {
            pool_release(s->entry);
            CHECK_CU(s->cu->cuCtxPopCurrent(&dummy));
            s->entry = NULL;
        }
    }
#endif
    pool_release(s->entry);
    s->entry = NULL;
    s->eng = NULL;
    av_freep(&s->model_path);
}

static CatanetColorMatrix pick_matrix(AVFilterContext *ctx, enum AVColorSpace cs, int height)
{
    CatanetXSContext *s = ctx->priv;

    if (s->matrix != MATRIX_AUTO)
        return s->matrix;
    switch (cs) {
    case AVCOL_SPC_BT709:
        return CATANET_MATRIX_BT709;
    case AVCOL_SPC_BT470BG:
    case AVCOL_SPC_SMPTE170M:
        return CATANET_MATRIX_BT601;
    case AVCOL_SPC_BT2020_NCL:
        return CATANET_MATRIX_BT2020;
    case AVCOL_SPC_UNSPECIFIED:
    case AVCOL_SPC_RGB:
    case AVCOL_SPC_RESERVED:
        break;
    default:
        if (!s->warned_matrix++)
            av_log(ctx, AV_LOG_WARNING, "colour matrix '%s' is not supported; using the default for "
                   "the frame height\n", av_color_space_name(cs));
        break;
    }
    /* untagged: HD content is BT.709, SD content BT.601 (what players assume) */
    return height >= 720 ? CATANET_MATRIX_BT709 : CATANET_MATRIX_BT601;
}

static CatanetChromaLoc pick_siting(AVFilterContext *ctx, enum AVChromaLocation loc)
{
    CatanetXSContext *s = ctx->priv;

    switch (loc) {
    case AVCHROMA_LOC_LEFT:    return CATANET_CHROMA_LEFT;
    case AVCHROMA_LOC_CENTER:  return CATANET_CHROMA_CENTER;
    case AVCHROMA_LOC_TOPLEFT: return CATANET_CHROMA_TOPLEFT;
    case AVCHROMA_LOC_UNSPECIFIED:
        /* JPEG-style full-range formats site chroma at the centre; video formats at the left */
        return s->fmt && s->fmt->full_range ? CATANET_CHROMA_CENTER : CATANET_CHROMA_LEFT;
    default:
        if (!s->warned_siting++)
            av_log(ctx, AV_LOG_WARNING, "chroma location '%s' is approximated by the nearest supported one\n",
                   av_chroma_location_name(loc));
        return loc == AVCHROMA_LOC_BOTTOMLEFT ? CATANET_CHROMA_LEFT : CATANET_CHROMA_CENTER;
    }
}

/* The library's view of a frame: same planes, same strides, the colour tags of the input
 * frame `tags` (whose height decides the matrix of untagged frames, for the output too). */
static int frame_to_image(AVFilterContext *ctx, const AVFrame *f, int w, int h, const AVFrame *tags,
                          CatanetImage *im)
{
    CatanetXSContext *s = ctx->priv;
    enum AVPixelFormat fmt = s->sw_format;

    memset(im, 0, sizeof(*im));
    im->width = w;
    im->height = h;
    im->bits = 8;
    im->on_device = s->on_device;
    for (int i = 0; i < 3; i++) {
        im->data[i] = f->data[i];
        im->linesize[i] = f->linesize[i];
    }
    if (!s->fmt) {
        av_log(ctx, AV_LOG_ERROR, "unsupported pixel format %s\n", av_get_pix_fmt_name(fmt));
        return AVERROR(ENOSYS);
    }
    im->format = s->fmt->fmt;
    im->bits = s->fmt->bits;
    if (s->fmt->gbr) {
        /* FFmpeg stores the planes G, B, R; the library wants R, G, B */
        im->data[0] = f->data[2]; im->linesize[0] = f->linesize[2];
        im->data[1] = f->data[0]; im->linesize[1] = f->linesize[0];
        im->data[2] = f->data[1]; im->linesize[2] = f->linesize[1];
    }
    im->matrix = pick_matrix(ctx, tags->colorspace, tags->height);
    im->range = tags->color_range == AVCOL_RANGE_JPEG || s->fmt->full_range ? CATANET_RANGE_FULL :
                CATANET_RANGE_LIMITED;
    im->chroma_loc = pick_siting(ctx, tags->chroma_location);
    return 0;
}

#if CONFIG_CUDA
static int config_cuda_output(AVFilterContext *ctx, AVFilterLink *inlink, AVFilterLink *outlink)
{
    CatanetXSContext *s = ctx->priv;
    AVBufferRef *in_ref = LINK_HWFC(inlink), *out_ref;
    AVHWFramesContext *in_fc, *out_fc;
    int i, ret;

    if (!in_ref) {
        av_log(ctx, AV_LOG_ERROR, "CUDA frames without a hardware frames context\n");
        return AVERROR(EINVAL);
    }
    in_fc = (AVHWFramesContext *)in_ref->data;
    for (i = 0; i < FF_ARRAY_ELEMS(cuda_sw_formats); i++)
        if (in_fc->sw_format == cuda_sw_formats[i])
            break;
    if (i == FF_ARRAY_ELEMS(cuda_sw_formats)) {
        av_log(ctx, AV_LOG_ERROR, "CUDA frames of %s are not supported (nv12, p010le, yuv444p are)\n",
               av_get_pix_fmt_name(in_fc->sw_format));
        return AVERROR(ENOSYS);
    }
    s->sw_format = in_fc->sw_format;
    s->fmt = find_format(s->sw_format);
    s->hwctx = in_fc->device_ctx->hwctx;
    s->cu = s->hwctx->internal->cuda_dl;

    out_ref = av_hwframe_ctx_alloc(in_fc->device_ref);
    if (!out_ref)
        return AVERROR(ENOMEM);
    out_fc = (AVHWFramesContext *)out_ref->data;
    out_fc->format = AV_PIX_FMT_CUDA;
    out_fc->sw_format = in_fc->sw_format;
    out_fc->width = outlink->w;
    out_fc->height = outlink->h;
    av_buffer_unref(&LINK_HWFC(outlink));
    LINK_HWFC(outlink) = out_ref;
    ret = ff_filter_init_hw_frames(ctx, outlink, 4);
    if (ret < 0)
        return ret;
    return av_hwframe_ctx_init(out_ref);
}
#endif

static int config_output(AVFilterLink *outlink)
{
    AVFilterContext *ctx = outlink->src;
    CatanetXSContext *s = ctx->priv;
    AVFilterLink *inlink = ctx->inputs[0];
    CatanetConfig cfg;
    char err[512];
    int ret, device = s->device, keep = 1;

    pool_release(s->entry);
    s->entry = NULL;
    s->eng = NULL;
    sws_freeContext(s->sws);
    s->sws = NULL;
    sws_freeContext(s->alpha_sws);
    s->alpha_sws = NULL;

    s->on_device = inlink->format == AV_PIX_FMT_CUDA;
    s->sw_format = inlink->format;
    s->fmt = find_format(s->sw_format);
    catanet_config_default(&cfg);
    cfg.gpu = s->gpu;
    cfg.threads = s->cpu_threads;
    cfg.tile = s->tile;
    cfg.precision = s->precision;

    if (s->on_device) {
        if (device == DEV_CPU) {
            av_log(ctx, AV_LOG_ERROR, "device=cpu cannot take CUDA frames: insert hwdownload,format=... "
                   "before the filter, or use device=cuda\n");
            return AVERROR(EINVAL);
        }
        device = DEV_CUDA;
        if (s->nonfinite == NONFINITE_BICUBIC) {
            av_log(ctx, AV_LOG_ERROR, "nonfinite=bicubic needs software frames (no bicubic scaler for CUDA "
                   "frames here): use nonfinite=fail, or hwdownload before the filter\n");
            return AVERROR(ENOSYS);
        }
    } else if (device == DEV_AUTO) {
        device = catanet_cuda_device_count() > 0 ? DEV_CUDA : DEV_CPU;
    }
    if (device == DEV_CPU && s->precision == CATANET_PRECISION_FP16) {
        av_log(ctx, AV_LOG_ERROR, "precision=fp16 needs device=cuda (the CPU path is fp32)\n");
        return AVERROR(EINVAL);
    }

#if CONFIG_CUDA
    if (s->on_device) {
        CUcontext dummy;
        ret = config_cuda_output(ctx, inlink, outlink);
        if (ret < 0)
            return ret;
        cfg.cuda_context = s->hwctx->cuda_ctx;
        cfg.cuda_stream = s->hwctx->stream;
        keep = 0;
        cfg.device = CATANET_DEVICE_CUDA;
        ret = CHECK_CU(s->cu->cuCtxPushCurrent(s->hwctx->cuda_ctx));
        if (ret < 0)
            return ret;
        ret = pool_acquire(ctx, &cfg, keep, &s->entry, err, sizeof(err));
        CHECK_CU(s->cu->cuCtxPopCurrent(&dummy));
        if (ret < 0) {
            av_log(ctx, AV_LOG_ERROR, "cannot open model '%s' on the CUDA device of the frames: %s\n",
                   s->model_path, err);
            return catanet_to_averror(ret);
        }
        goto opened;
    }
#endif

    cfg.device = device;
    ret = pool_acquire(ctx, &cfg, keep, &s->entry, err, sizeof(err));
    if (ret == CATANET_ERR_NO_DEVICE && s->device == DEV_AUTO) {
        av_log(ctx, AV_LOG_WARNING, "no usable CUDA device (%s); falling back to the CPU\n", err);
        cfg.device = device = DEV_CPU;
        if (cfg.precision == CATANET_PRECISION_FP16)
            cfg.precision = CATANET_PRECISION_AUTO;
        ret = pool_acquire(ctx, &cfg, keep, &s->entry, err, sizeof(err));
    }
    if (ret < 0) {
        if (ret == CATANET_ERR_NO_DEVICE)
            av_log(ctx, AV_LOG_ERROR, "device=cuda: no usable CUDA GPU: %s\n", err);
        else
            av_log(ctx, AV_LOG_ERROR, "cannot open model '%s': %s\n", s->model_path, err);
        return catanet_to_averror(ret);
    }
#if CONFIG_CUDA
opened:
#endif
    s->eng = s->entry->eng;
    s->scale = catanet_engine_scale(s->eng);

    if (inlink->w > INT_MAX / s->scale || inlink->h > INT_MAX / s->scale ||
        av_image_check_size(inlink->w * s->scale, inlink->h * s->scale, 0, ctx) < 0) {
        av_log(ctx, AV_LOG_ERROR, "output size %dx%d times %d is too large\n", inlink->w, inlink->h, s->scale);
        return AVERROR(EINVAL);
    }
    outlink->w = inlink->w * s->scale;
    outlink->h = inlink->h * s->scale;
    outlink->sample_aspect_ratio = inlink->sample_aspect_ratio;

    {
#if CONFIG_CUDA
        CUcontext dummy;
        if (s->on_device && (ret = CHECK_CU(s->cu->cuCtxPushCurrent(s->hwctx->cuda_ctx))) < 0)
            return ret;
#endif
        ret = catanet_engine_prepare(s->eng, inlink->w, inlink->h);
#if CONFIG_CUDA
        if (s->on_device)
            CHECK_CU(s->cu->cuCtxPopCurrent(&dummy));
#endif
    }
    if (ret < 0) {
        av_log(ctx, AV_LOG_ERROR, "cannot prepare the engine for %dx%d: %s\n", inlink->w, inlink->h,
               catanet_engine_last_error(s->eng));
        return catanet_to_averror(ret);
    }

    /* timeline: while disabled, frames are scaled by bicubic so the output size never changes;
     * nonfinite=bicubic replaces a frame the network could not give by the same */
    if ((ctx->enable_str || s->nonfinite == NONFINITE_BICUBIC) && !s->on_device) {
        s->sws = sws_getContext(inlink->w, inlink->h, inlink->format, outlink->w, outlink->h, outlink->format,
                                SWS_BICUBIC | SWS_ACCURATE_RND | SWS_BITEXACT, NULL, NULL, NULL);
        if (!s->sws) {
            av_log(ctx, AV_LOG_ERROR, "cannot create the bicubic scaler\n");
            return AVERROR(ENOMEM);
        }
    }
    /* the network has no alpha: the alpha plane is upscaled with bicubic beside it */
    if (s->fmt && s->fmt->alpha != AV_PIX_FMT_NONE) {
        s->alpha_sws = sws_getContext(inlink->w, inlink->h, s->fmt->alpha, outlink->w, outlink->h, s->fmt->alpha,
                                      SWS_BICUBIC | SWS_ACCURATE_RND | SWS_BITEXACT, NULL, NULL, NULL);
        if (!s->alpha_sws) {
            av_log(ctx, AV_LOG_ERROR, "cannot create the bicubic scaler of the alpha plane\n");
            return AVERROR(ENOMEM);
        }
    }

    av_log(ctx, AV_LOG_VERBOSE, "%dx%d %s -> %dx%d on %s (%s), model '%s'\n", inlink->w, inlink->h,
           av_get_pix_fmt_name(s->sw_format), outlink->w, outlink->h,
           catanet_engine_device(s->eng) == CATANET_DEVICE_CUDA ? "CUDA" : "CPU",
           catanet_engine_precision(s->eng) == CATANET_PRECISION_FP16 ? "fp16" : "fp32", s->model_path);
    if (s->device == DEV_AUTO)
        av_log(ctx, AV_LOG_INFO, "device=auto chose %s\n",
               catanet_engine_device(s->eng) == CATANET_DEVICE_CUDA ? "cuda" : "cpu");
    return 0;
}

static int filter_frame(AVFilterLink *inlink, AVFrame *in)
{
    AVFilterContext *ctx = inlink->dst;
    CatanetXSContext *s = ctx->priv;
    AVFilterLink *outlink = ctx->outputs[0];
    CatanetImage src, dst;
    AVFrame *out;
    int64_t n = s->nb_frames++;     /* this frame's index, for messages */
    int ret;

    if (in->color_trc == AVCOL_TRC_SMPTE2084 || in->color_trc == AVCOL_TRC_ARIB_STD_B67) {
        if (s->hdr == HDR_FAIL) {
            av_log(ctx, AV_LOG_ERROR, "frame %"PRId64": HDR input (transfer %s): the network was trained on SDR "
                   "video and would treat these code values as SDR; tone-map to SDR before the filter, or set "
                   "hdr=pass to upscale the coded values anyway\n", n, av_color_transfer_name(in->color_trc));
            av_frame_free(&in);
            return AVERROR(EINVAL);
        }
        if (!s->warned_hdr++)
            av_log(ctx, AV_LOG_WARNING, "hdr=pass: HDR input (transfer %s) is upscaled as if it were SDR: the "
                   "network was trained on SDR video, so expect colour and detail errors; the output keeps the "
                   "input's HDR tags\n", av_color_transfer_name(in->color_trc));
    }

    if (in->width != inlink->w || in->height != inlink->h) {
        av_log(ctx, AV_LOG_ERROR, "frame size changed from %dx%d to %dx%d but the filter graph was not "
               "re-configured (e.g. -reinit_filter 0); this filter needs a constant input size\n",
               inlink->w, inlink->h, in->width, in->height);
        av_frame_free(&in);
        return AVERROR(EINVAL);
    }

    out = ff_get_video_buffer(outlink, outlink->w, outlink->h);
    if (!out) {
        av_frame_free(&in);
        return AVERROR(ENOMEM);
    }
    ret = av_frame_copy_props(out, in);
    if (ret < 0)
        goto fail;
    out->width = outlink->w;
    out->height = outlink->h;

    if (ctx->is_disabled && s->sws) {
        sws_scale(s->sws, (const uint8_t *const *)in->data, in->linesize, 0, in->height, out->data, out->linesize);
        av_frame_free(&in);
        return ff_filter_frame(outlink, out);
    }
    if (ctx->is_disabled && s->on_device && !s->warned_cuda_timeline++)
        av_log(ctx, AV_LOG_WARNING, "timeline disable is not implemented for CUDA frames; frames are still "
               "upscaled by the network\n");

    if ((ret = frame_to_image(ctx, in, inlink->w, inlink->h, in, &src)) < 0 ||
        (ret = frame_to_image(ctx, out, outlink->w, outlink->h, in, &dst)) < 0)
        goto fail;

#if CONFIG_CUDA
    if (s->on_device) {
        CUcontext dummy;
        ret = CHECK_CU(s->cu->cuCtxPushCurrent(s->hwctx->cuda_ctx));
        if (ret < 0)
            goto fail;
        ret = catanet_engine_process_image(s->eng, &src, &dst);
        CHECK_CU(s->cu->cuCtxPopCurrent(&dummy));
    } else
#endif
        ret = catanet_engine_process_image(s->eng, &src, &dst);
    if (ret == CATANET_ERR_NONFINITE) {
        s->nb_nonfinite++;
        if (s->nonfinite == NONFINITE_BICUBIC && s->sws) {
            av_log(ctx, AV_LOG_WARNING, "frame %"PRId64": the network's output holds NaN or Inf; passing the "
                   "input through bicubic instead (%"PRId64" such frames so far)\n", n, s->nb_nonfinite);
            sws_scale(s->sws, (const uint8_t *const *)in->data, in->linesize, 0, in->height, out->data,
                      out->linesize);
            av_frame_free(&in);
            return ff_filter_frame(outlink, out);
        }
        av_log(ctx, AV_LOG_ERROR, "frame %"PRId64": the network's output holds NaN or Inf (%s): the model's "
               "weights or this input are out of range; nonfinite=bicubic passes such frames through "
               "bicubic instead of failing\n", n, catanet_engine_last_error(s->eng));
        ret = catanet_to_averror(ret);
        goto fail;
    }
    if (ret < 0) {
        av_log(ctx, AV_LOG_ERROR, "upscaling failed: %s\n", catanet_engine_last_error(s->eng));
        ret = catanet_to_averror(ret);
        goto fail;
    }
    if (s->alpha_sws)
        sws_scale(s->alpha_sws, (const uint8_t *const *)&in->data[3], &in->linesize[3], 0, in->height,
                  &out->data[3], &out->linesize[3]);
    av_frame_free(&in);
    return ff_filter_frame(outlink, out);

fail:
    av_frame_free(&in);
    av_frame_free(&out);
    return ret;
}

static const AVFilterPad catanet_xs_inputs[] = {
    {
        .name         = "default",
        .type         = AVMEDIA_TYPE_VIDEO,
        .filter_frame = filter_frame,
    },
};

static const AVFilterPad catanet_xs_outputs[] = {
    {
        .name         = "default",
        .type         = AVMEDIA_TYPE_VIDEO,
        .config_props = config_output,
    },
};

#define OFFSET(x) offsetof(CatanetXSContext, x)
#define FLAGS (AV_OPT_FLAG_FILTERING_PARAM | AV_OPT_FLAG_VIDEO_PARAM)

static const AVOption catanet_xs_options[] = {
    { "model", "a model name (looked up in CATANET_MODEL_PATH, then libcatanet's installed model folder) or "
      "a .safetensors or .pth file; the scale comes from the model", OFFSET(model),
      AV_OPT_TYPE_STRING, { .str = DEFAULT_MODEL }, 0, 0, FLAGS },
    { "device", "where the network runs", OFFSET(device), AV_OPT_TYPE_INT, { .i64 = DEV_AUTO }, DEV_AUTO, DEV_CUDA,
      FLAGS, "device" },
        { "auto", "CUDA frames or a usable GPU: cuda, else cpu", 0, AV_OPT_TYPE_CONST, { .i64 = DEV_AUTO }, 0, 0, FLAGS,
          "device" },
        { "cpu",  "the CPU (fp32)",           0, AV_OPT_TYPE_CONST, { .i64 = DEV_CPU },  0, 0, FLAGS, "device" },
        { "cuda", "a CUDA GPU, or fail",      0, AV_OPT_TYPE_CONST, { .i64 = DEV_CUDA }, 0, 0, FLAGS, "device" },
    { "gpu", "CUDA device index (software frames; CUDA frames use their own device)", OFFSET(gpu),
      AV_OPT_TYPE_INT, { .i64 = 0 }, 0, 255, FLAGS },
    { "precision", "arithmetic precision", OFFSET(precision), AV_OPT_TYPE_INT, { .i64 = CATANET_PRECISION_AUTO },
      CATANET_PRECISION_AUTO, CATANET_PRECISION_FP16, FLAGS, "precision" },
        { "auto", "fp16 on CUDA, fp32 on CPU", 0, AV_OPT_TYPE_CONST, { .i64 = CATANET_PRECISION_AUTO }, 0, 0, FLAGS,
          "precision" },
        { "fp32", NULL, 0, AV_OPT_TYPE_CONST, { .i64 = CATANET_PRECISION_FP32 }, 0, 0, FLAGS, "precision" },
        { "fp16", "CUDA only", 0, AV_OPT_TYPE_CONST, { .i64 = CATANET_PRECISION_FP16 }, 0, 0, FLAGS, "precision" },
    /* not "threads": every filter already has a generic option of that name (slice threading) */
    { "cpu_threads", "CPU threads of the network (0: all cores)", OFFSET(cpu_threads), AV_OPT_TYPE_INT,
      { .i64 = 0 }, 0, 1024, FLAGS },
    { "tile", "largest input tile side in pixels (0: automatic)", OFFSET(tile), AV_OPT_TYPE_INT, { .i64 = 0 },
      0, 32768, FLAGS },
    { "matrix", "YUV matrix for untagged frames", OFFSET(matrix), AV_OPT_TYPE_INT, { .i64 = MATRIX_AUTO },
      MATRIX_AUTO, CATANET_MATRIX_BT2020, FLAGS, "matrix" },
        { "auto", "the frame's tag; untagged: bt709 from 720 lines up, bt601 below", 0, AV_OPT_TYPE_CONST,
          { .i64 = MATRIX_AUTO }, 0, 0, FLAGS, "matrix" },
        { "bt601",  NULL, 0, AV_OPT_TYPE_CONST, { .i64 = CATANET_MATRIX_BT601 },  0, 0, FLAGS, "matrix" },
        { "bt709",  NULL, 0, AV_OPT_TYPE_CONST, { .i64 = CATANET_MATRIX_BT709 },  0, 0, FLAGS, "matrix" },
        { "bt2020", NULL, 0, AV_OPT_TYPE_CONST, { .i64 = CATANET_MATRIX_BT2020 }, 0, 0, FLAGS, "matrix" },
    { "nonfinite", "a frame whose network output holds NaN or Inf", OFFSET(nonfinite), AV_OPT_TYPE_INT,
      { .i64 = NONFINITE_FAIL }, NONFINITE_FAIL, NONFINITE_BICUBIC, FLAGS, "nonfinite" },
        { "fail", "stop with an error", 0, AV_OPT_TYPE_CONST, { .i64 = NONFINITE_FAIL }, 0, 0, FLAGS, "nonfinite" },
        { "bicubic", "pass the input through bicubic instead, logged and counted", 0, AV_OPT_TYPE_CONST,
          { .i64 = NONFINITE_BICUBIC }, 0, 0, FLAGS, "nonfinite" },
    { "hdr", "HDR input (PQ or HLG transfer): the network was trained on SDR", OFFSET(hdr), AV_OPT_TYPE_INT,
      { .i64 = HDR_FAIL }, HDR_FAIL, HDR_PASS, FLAGS, "hdr" },
        { "fail", "stop with an error at the first HDR frame", 0, AV_OPT_TYPE_CONST, { .i64 = HDR_FAIL }, 0, 0,
          FLAGS, "hdr" },
        { "pass", "upscale the coded values as if SDR, with a warning", 0, AV_OPT_TYPE_CONST, { .i64 = HDR_PASS },
          0, 0, FLAGS, "hdr" },
    { NULL }
};

AVFILTER_DEFINE_CLASS(catanet_xs);

#if LIBAVFILTER_VERSION_MAJOR >= 11
#define PUB(field) .p.field
const FFFilter ff_vf_catanet_xs = {
#else
#define PUB(field) .field
const AVFilter ff_vf_catanet_xs = {
#endif
    PUB(name)        = "catanet_xs",
    PUB(description) = NULL_IF_CONFIG_SMALL("Upscale video with the CATANet-XS super-resolution network."),
    PUB(priv_class)  = &catanet_xs_class,
    PUB(flags)       = AVFILTER_FLAG_SUPPORT_TIMELINE_INTERNAL,
    .priv_size       = sizeof(CatanetXSContext),
    .init            = init,
    .uninit          = uninit,
    FILTER_INPUTS(catanet_xs_inputs),
    FILTER_OUTPUTS(catanet_xs_outputs),
    FILTER_PIXFMTS_ARRAY(pix_fmts),
    .flags_internal  = FF_FILTER_FLAG_HWFRAME_AWARE,
};
