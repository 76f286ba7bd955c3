/* data.c: training images in memory, deterministic random patch batches, a prefetch thread pool. */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "bicubic.h"
#include "catanet.h"
#include "data.h"
#include "error.h"
#include "imgload.h"

#define STATE_MAGIC "catanet-data 1"
#define PHOTO_MAX_SHORT_SIDE 1000   /* automatic photo downscale: smallest factor in 2..4 reaching this */
#define PHOTO_MIN_FACTOR 2
#define PHOTO_MAX_FACTOR 4
#define MAX_PREFETCH_THREADS 16
#define DEFAULT_SEED 3407           /* the official configs' manual_seed */

/* one training pair in memory, planar uint8 [3][h][w] */
typedef struct DataImage {
    char name[256];                 /* folder/file, for messages */
    int w, h;                       /* HR, modcropped to the scale */
    uint8_t *hr, *lr;               /* lr is [3][h/s][w/s] */
} DataImage;

/* what one thread needs to make samples: the image order of one epoch, cached */
typedef struct Sampler {
    int64_t epoch;                  /* -1: none cached */
    int *perm;
} Sampler;

typedef enum { SLOT_EMPTY = 0, SLOT_BUSY, SLOT_READY } SlotState;

typedef struct Slot {
    SlotState state;
    int64_t batch;                  /* batch number since the last set_state/open */
    float *lr, *hr;
} Slot;

struct CatanetData {
    CatanetDataConfig cfg;
    int n;
    DataImage *img;
    int64_t pixels;
    uint64_t hash;                  /* names and sizes of the image set, for set_state */
    double load_seconds;
    char err[512];

    /* position: batch b covers samples base + b*B .. base + b*B + B-1 */
    int64_t base;
    int64_t consumed;               /* batches handed to the caller since base */
    int64_t served;                 /* batches handed out in total (informational) */

    Sampler sync_sampler;           /* prefetch_threads == 0 */

    /* prefetch pool */
    int nthreads, nslots;
    pthread_t threads[MAX_PREFETCH_THREADS];
    Sampler samplers[MAX_PREFETCH_THREADS];
    Slot *slots;
    pthread_mutex_t mu;
    pthread_cond_t work_cv, ready_cv;
    int64_t produce_next;           /* next batch number a worker will claim */
    int busy;
    int stop;
    int sync_ok;                    /* mutex and conds initialised */
};

/* ---- counter-based random numbers: every draw depends only on (seed, stream, index) ---- */

static uint64_t splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

enum { STREAM_EPOCH = 1, STREAM_SAMPLE = 2 };

static uint64_t rng_seed(uint64_t seed, uint64_t stream, uint64_t index)
{
    uint64_t s = seed;
    uint64_t a = splitmix64(&s) ^ (stream * 0xD1B54A32D192ED03ull);
    s = a;
    uint64_t b = splitmix64(&s) ^ index;
    s = b;
    return splitmix64(&s);
}

/* the high 64 bits of a 64x64-bit product, in plain C (no 128-bit integer type needed) */
static uint64_t mulhi64(uint64_t a, uint64_t b)
{
    uint64_t al = (uint32_t)a, ah = a >> 32, bl = (uint32_t)b, bh = b >> 32;
    uint64_t p0 = al * bl, p1 = al * bh, p2 = ah * bl, p3 = ah * bh;
    uint64_t mid = (p0 >> 32) + (uint32_t)p1 + (uint32_t)p2;
    return p3 + (p1 >> 32) + (p2 >> 32) + (mid >> 32);
}

/* uniform in [0, n), n >= 1: the high bits of a 64x64 product (bias below n / 2^64) */
static int64_t rng_below(uint64_t *s, int64_t n)
{
    return (int64_t)mulhi64(splitmix64(s), (uint64_t)n);
}

/* the image order of epoch e: a Fisher-Yates shuffle seeded by (seed, e) */
static void sampler_epoch(const CatanetData *d, Sampler *sm, int64_t epoch)
{
    if (sm->epoch == epoch)
        return;
    uint64_t s = rng_seed(d->cfg.seed, STREAM_EPOCH, (uint64_t)epoch);
    for (int i = 0; i < d->n; i++)
        sm->perm[i] = i;
    for (int i = d->n - 1; i > 0; i--) {
        int j = (int)rng_below(&s, i + 1);
        int t = sm->perm[i];
        sm->perm[i] = sm->perm[j];
        sm->perm[j] = t;
    }
    sm->epoch = epoch;
}

/*
 * Copy a P x P crop at (top, left) of a planar uint8 image [3][h][w] into float [3][P][P],
 * augmented as BasicSR's augment(): hflip, then vflip, then transpose (rot90).
 * out[y][x] = crop[sy][sx] with (sy, sx) = rot ? (x, y) : (y, x), then sy mirrored by vflip, sx by hflip.
 */
static void put_patch(const uint8_t *src, int w, int h, int top, int left, int P, int hflip, int vflip, int rot,
                      float *dst)
{
    size_t plane = (size_t)w * h;
    for (int c = 0; c < 3; c++) {
        const uint8_t *sp = src + c * plane;
        float *dp = dst + (size_t)c * P * P;
        for (int y = 0; y < P; y++)
            for (int x = 0; x < P; x++) {
                int sy = rot ? x : y, sx = rot ? y : x;
                if (vflip)
                    sy = P - 1 - sy;
                if (hflip)
                    sx = P - 1 - sx;
                dp[(size_t)y * P + x] = (float)sp[(size_t)(top + sy) * w + left + sx] / 255.0f;
            }
    }
}

/* sample `index` of the stream into lr [3][p][p] and hr [3][sp][sp] */
static void make_sample(const CatanetData *d, Sampler *sm, int64_t index, float *lr, float *hr)
{
    int s = d->cfg.scale, p = d->cfg.lr_patch;
    int64_t epoch = index / d->n;
    sampler_epoch(d, sm, epoch);
    const DataImage *im = &d->img[sm->perm[index % d->n]];
    int lw = im->w / s, lh = im->h / s;
    uint64_t r = rng_seed(d->cfg.seed, STREAM_SAMPLE, (uint64_t)index);
    int top = (int)rng_below(&r, lh - p + 1), left = (int)rng_below(&r, lw - p + 1);
    uint64_t bits = splitmix64(&r);
    int hflip = bits & 1, vflip = (bits >> 1) & 1, rot = (bits >> 2) & 1;
    put_patch(im->lr, lw, lh, top, left, p, hflip, vflip, rot, lr);
    put_patch(im->hr, im->w, im->h, top * s, left * s, s * p, hflip, vflip, rot, hr);
}

static void make_batch(const CatanetData *d, Sampler *sm, int64_t batch, float *lr, float *hr)
{
    int B = d->cfg.batch, p = d->cfg.lr_patch, sp = d->cfg.scale * p;
    int64_t first = d->base + batch * B;
    for (int b = 0; b < B; b++)
        make_sample(d, sm, first + b, lr + (size_t)b * 3 * p * p, hr + (size_t)b * 3 * sp * sp);
}

/* ---- prefetch pool ---- */

static void *worker_main(void *arg)
{
    void **a = arg;
    CatanetData *d = a[0];
    Sampler *sm = a[1];
    free(arg);
    pthread_mutex_lock(&d->mu);
    for (;;) {
        while (!d->stop && (d->produce_next >= d->consumed + d->nslots ||
                            d->slots[d->produce_next % d->nslots].state != SLOT_EMPTY))
            pthread_cond_wait(&d->work_cv, &d->mu);
        if (d->stop)
            break;
        int64_t b = d->produce_next++;
        Slot *sl = &d->slots[b % d->nslots];
        sl->state = SLOT_BUSY;
        sl->batch = b;
        d->busy++;
        pthread_mutex_unlock(&d->mu);
        make_batch(d, sm, b, sl->lr, sl->hr);
        pthread_mutex_lock(&d->mu);
        sl->state = SLOT_READY;
        d->busy--;
        pthread_cond_broadcast(&d->ready_cv);
    }
    pthread_mutex_unlock(&d->mu);
    return NULL;
}

static void pool_stop(CatanetData *d)
{
    if (!d->sync_ok)
        return;
    pthread_mutex_lock(&d->mu);
    d->stop = 1;
    pthread_cond_broadcast(&d->work_cv);
    pthread_mutex_unlock(&d->mu);
    for (int i = 0; i < d->nthreads; i++)
        pthread_join(d->threads[i], NULL);
    d->nthreads = 0;
}

/* ---- loading ---- */

typedef struct LoadJob {
    CatanetData *d;
    char **paths;
    int n;
    int next;                       /* next file to load (under mu) */
    int done;                       /* files finished (under mu) */
    int cache_failures;             /* cache files that could not be written (under mu) */
    char cache_err[256];            /* the first such failure */
    pthread_mutex_t mu;
    int *status;                    /* per file: 0 ok, 1 skipped (too small), <0 error */
    char (*errs)[512];
} LoadJob;

static void logf_(const CatanetData *d, int level, const char *fmt, ...) CATANET_PRINTF(3, 4);
static void logf_(const CatanetData *d, int level, const char *fmt, ...)
{
    if (!d->cfg.log)
        return;
    char msg[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    d->cfg.log(d->cfg.log_opaque, level, msg);
}

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

/* the photo downscale factor for a JPEG of w x h */
static int photo_factor(const CatanetDataConfig *cfg, int w, int h)
{
    if (cfg->photo_downscale >= 1)
        return cfg->photo_downscale;
    int shorter = w < h ? w : h;
    int f = (shorter + PHOTO_MAX_SHORT_SIDE - 1) / PHOTO_MAX_SHORT_SIDE;
    return f < PHOTO_MIN_FACTOR ? PHOTO_MIN_FACTOR : f > PHOTO_MAX_FACTOR ? PHOTO_MAX_FACTOR : f;
}

/* crop to the top-left w x h (w, h not larger than the image) */
static void crop_to(CatanetRaster *r, int w, int h)
{
    if (w == r->w && h == r->h)
        return;
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < h; y++)
            memmove(r->px + ((size_t)c * h + y) * w, r->px + ((size_t)c * r->h + y) * r->w, sizeof(uint16_t) * w);
    r->w = w;
    r->h = h;
}

/* A JPEG photograph, downscaled by its factor, from the cache when it is there. */
static int load_photo(const CatanetData *d, LoadJob *job, const char *path, CatanetRaster *out, char *err, size_t es)
{
    const CatanetDataConfig *cfg = &d->cfg;
    char cpath[4096] = "";
    struct stat st;
    if (cfg->cache_dir && stat(path, &st) == 0) {
        /* the factor is not known before decoding; a fixed factor or the automatic one is part of the key */
        snprintf(cpath, sizeof(cpath), "%s/%s-%lld-%lld-d%d.png", cfg->cache_dir, base_name(path),
                 (long long)st.st_size, (long long)st.st_mtime, cfg->photo_downscale);
        if (catanet_raster_load(cpath, out, err, es) == 0)
            return 0;
    }
    CatanetRaster full;
    int ret = catanet_raster_load(path, &full, err, es);
    if (ret < 0)
        return ret;
    int f = photo_factor(cfg, full.w, full.h);
    if (f <= 1) {
        *out = full;
    } else {
        crop_to(&full, full.w - full.w % f, full.h - full.h % f);
        if (full.w < f || full.h < f) {
            catanet_raster_free(&full);
            return catanet_errf(err, es, CATANET_ERR_INVALID_ARG, "'%s' is too small to downscale by %d", path, f);
        }
        ret = catanet_imresize(&full, 1.0 / f, out);
        catanet_raster_free(&full);
        if (ret < 0)
            return catanet_errf(err, es, ret, "'%s': downscale failed", path);
    }
    if (cpath[0]) {
        /* a cache that cannot be written only costs time next run: counted and reported, not an error */
        mkdir(cfg->cache_dir, 0777);
        char e2[256];
        if (catanet_raster_save_png(cpath, out, e2, sizeof(e2)) < 0) {
            pthread_mutex_lock(&job->mu);
            if (!job->cache_failures++)
                snprintf(job->cache_err, sizeof(job->cache_err), "%s", e2);
            pthread_mutex_unlock(&job->mu);
        }
    }
    return 0;
}

/* decode, downscale photos, modcrop, make LR, store as uint8; 1 when too small for the patch */
static int load_one(const CatanetData *d, LoadJob *job, const char *path, DataImage *im, char *err, size_t es)
{
    const CatanetDataConfig *cfg = &d->cfg;
    int s = cfg->scale, ret;
    CatanetRaster hr, lr;
    if (catanet_is_image_file(path) == CATANET_IMG_JPEG)
        ret = load_photo(d, job, path, &hr, err, es);
    else
        ret = catanet_raster_load(path, &hr, err, es);
    if (ret < 0)
        return ret;
    if (hr.maxval != 255) {   /* 16-bit PNG: to 8 bit, rounded */
        for (size_t i = 0; i < 3 * (size_t)hr.w * hr.h; i++)
            hr.px[i] = (uint16_t)(((uint32_t)hr.px[i] * 255 + hr.maxval / 2) / hr.maxval);
        hr.maxval = 255;
    }
    crop_to(&hr, hr.w - hr.w % s, hr.h - hr.h % s);
    if (hr.w / s < cfg->lr_patch || hr.h / s < cfg->lr_patch) {
        catanet_raster_free(&hr);
        return 1;
    }
    if ((ret = catanet_imresize_ex(&hr, 1.0 / s, CATANET_RESIZE_MATLAB, cfg->lr_resize_flags, &lr)) < 0) {
        catanet_raster_free(&hr);
        return catanet_errf(err, es, ret, "'%s': bicubic downscale failed", path);
    }
    size_t nh = 3 * (size_t)hr.w * hr.h, nl = 3 * (size_t)lr.w * lr.h;
    im->hr = malloc(nh);
    im->lr = malloc(nl);
    if (!im->hr || !im->lr) {
        catanet_raster_free(&hr);
        catanet_raster_free(&lr);
        return catanet_errf(err, es, CATANET_ERR_NOMEM, "out of memory loading '%s'", path);
    }
    for (size_t i = 0; i < nh; i++)
        im->hr[i] = (uint8_t)hr.px[i];
    for (size_t i = 0; i < nl; i++)
        im->lr[i] = (uint8_t)lr.px[i];
    im->w = hr.w;
    im->h = hr.h;
    catanet_raster_free(&hr);
    catanet_raster_free(&lr);
    return 0;
}

/* the calling thread logs progress (the log callback is only ever called from it) */
static void load_images(LoadJob *job, int log_progress)
{
    int reported = 0;
    for (;;) {
        pthread_mutex_lock(&job->mu);
        int done = job->done;
        int i = job->next < job->n ? job->next++ : -1;
        pthread_mutex_unlock(&job->mu);
        if (log_progress && done * 10 / job->n > reported) {
            reported = done * 10 / job->n;
            logf_(job->d, CATANET_LOG_INFO, "loading training images: %d of %d", done, job->n);
        }
        if (i < 0)
            break;
        DataImage *im = &job->d->img[i];
        const char *p = job->paths[i];
        const char *slash = strrchr(p, '/');
        const char *dirend = slash;
        if (slash)
            while (dirend > p && dirend[-1] != '/')
                dirend--;
        snprintf(im->name, sizeof(im->name), "%s", dirend ? dirend : p);
        job->status[i] = load_one(job->d, job, p, im, job->errs[i], sizeof(job->errs[i]));
        pthread_mutex_lock(&job->mu);
        job->done++;
        pthread_mutex_unlock(&job->mu);
    }
}

static void *loader_main(void *arg)
{
    load_images(arg, 0);
    return NULL;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* appends the image files of dir, sorted by name, to *paths */
static int add_dir(const char *dir, char ***paths, int *n, int *cap, char *err, size_t es)
{
    DIR *dp = opendir(dir);
    if (!dp)
        return catanet_errf(err, es, CATANET_ERR_IO, "cannot open folder '%s' (%s)", dir, strerror(errno));
    int first = *n;
    struct dirent *e;
    while ((e = readdir(dp))) {
        if (e->d_name[0] == '.' || !catanet_is_image_file(e->d_name))
            continue;
        if (*n == *cap) {
            int nc = *cap ? 2 * *cap : 256;
            char **np = realloc(*paths, sizeof(char *) * nc);
            if (!np)
                goto nomem;
            *paths = np;
            *cap = nc;
        }
        size_t len = strlen(dir) + strlen(e->d_name) + 2;
        char *s = malloc(len);
        if (!s)
            goto nomem;
        snprintf(s, len, "%s/%s", dir, e->d_name);
        (*paths)[(*n)++] = s;
    }
    closedir(dp);
    if (*n > first)
        qsort(*paths + first, *n - first, sizeof(char *), cmp_str);
    return 0;
nomem:
    closedir(dp);
    return catanet_errf(err, es, CATANET_ERR_NOMEM, "out of memory listing '%s'", dir);
}

static uint64_t fnv1a(uint64_t h, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 0x100000001B3ull;
    return h;
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

void catanet_data_config_default(CatanetDataConfig *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->scale = 2;
    cfg->lr_patch = 64;
    cfg->batch = 16;
    cfg->seed = DEFAULT_SEED;
    cfg->prefetch_threads = 1;
    cfg->photo_downscale = 0;
    cfg->load_threads = 2;
}

void catanet_data_close(CatanetData *d)
{
    if (!d)
        return;
    pool_stop(d);
    if (d->sync_ok) {
        pthread_mutex_destroy(&d->mu);
        pthread_cond_destroy(&d->work_cv);
        pthread_cond_destroy(&d->ready_cv);
    }
    if (d->slots)
        for (int i = 0; i < d->nslots; i++) {
            free(d->slots[i].lr);
            free(d->slots[i].hr);
        }
    free(d->slots);
    for (int i = 0; i < MAX_PREFETCH_THREADS; i++)
        free(d->samplers[i].perm);
    free(d->sync_sampler.perm);
    for (int i = 0; i < d->n; i++) {
        free(d->img[i].hr);
        free(d->img[i].lr);
    }
    free(d->img);
    free(d);
}

int catanet_data_open(CatanetData **out, const char *const *dirs, int n_dirs, const CatanetDataConfig *cfg,
                      char *err, size_t es)
{
    *out = NULL;
    if (!cfg || !dirs || n_dirs < 1)
        return catanet_errf(err, es, CATANET_ERR_INVALID_ARG, "catanet_data_open: no folders");
    if (cfg->scale < 1 || cfg->scale > 8 || cfg->lr_patch < 1 || cfg->lr_patch > 4096 || cfg->batch < 1 ||
        cfg->batch > 65536 || cfg->prefetch_threads < 0 || cfg->prefetch_threads > MAX_PREFETCH_THREADS ||
        cfg->photo_downscale < 0 || cfg->photo_downscale > 8 || cfg->load_threads < 0 || cfg->load_threads > 64 ||
        (cfg->lr_resize_flags & ~(CATANET_RESIZE_ROUND_BETWEEN | CATANET_RESIZE_TIES_AWAY)))
        return catanet_errf(err, es, CATANET_ERR_INVALID_ARG,
                            "bad data config (scale %d, patch %d, batch %d, prefetch %d, photo downscale %d)",
                            cfg->scale, cfg->lr_patch, cfg->batch, cfg->prefetch_threads, cfg->photo_downscale);
    double t0 = now_seconds();
    CatanetData *d = calloc(1, sizeof(*d));
    if (!d)
        return catanet_errf(err, es, CATANET_ERR_NOMEM, "out of memory");
    d->cfg = *cfg;
    d->cfg.cache_dir = NULL;   /* the caller's string need not outlive open */
    char **paths = NULL;
    int np = 0, cap = 0, ret = 0;
    LoadJob job = { 0 };
    for (int i = 0; i < n_dirs && ret == 0; i++)
        ret = add_dir(dirs[i], &paths, &np, &cap, err, es);
    if (ret < 0)
        goto fail;
    if (np == 0) {
        ret = catanet_errf(err, es, CATANET_ERR_INVALID_ARG, "no PNG/JPEG/BMP images in the %d folder(s) given", n_dirs);
        goto fail;
    }
    d->img = calloc(np, sizeof(DataImage));
    job.status = calloc(np, sizeof(int));
    job.errs = calloc(np, sizeof(*job.errs));
    if (!d->img || !job.status || !job.errs) {
        ret = catanet_errf(err, es, CATANET_ERR_NOMEM, "out of memory");
        goto fail;
    }
    d->n = np;   /* so that close frees whatever got loaded */
    job.d = d;
    job.paths = paths;
    job.n = np;
    pthread_mutex_init(&job.mu, NULL);
    {
        CatanetDataConfig *c = &d->cfg;
        c->cache_dir = cfg->cache_dir;   /* used only while loading, in these threads */
        int nt = cfg->load_threads ? cfg->load_threads : 2;
        pthread_t th[64];
        int started = 0;
        for (int i = 0; i < nt - 1; i++)
            if (pthread_create(&th[started], NULL, loader_main, &job) == 0)
                started++;
        load_images(&job, 1);
        for (int i = 0; i < started; i++)
            pthread_join(th[i], NULL);
        c->cache_dir = NULL;
    }
    pthread_mutex_destroy(&job.mu);
    if (job.cache_failures)
        logf_(d, CATANET_LOG_WARNING, "photo cache: %d file(s) not written, first: %s", job.cache_failures,
              job.cache_err);
    /* errors in file order, so the message does not depend on thread timing */
    for (int i = 0; i < np; i++)
        if (job.status[i] < 0) {
            ret = catanet_errf(err, es, job.status[i], "%s", job.errs[i]);
            goto fail;
        }
    /* keep the loaded images in file order, drop the skipped ones */
    int kept = 0, skipped = 0;
    uint64_t h = 0xCBF29CE484222325ull;
    h = fnv1a(h, &cfg->scale, sizeof(cfg->scale));
    if (cfg->lr_resize_flags)   /* (0 hashes as before the option existed) */
        h = fnv1a(h, &cfg->lr_resize_flags, sizeof(cfg->lr_resize_flags));
    for (int i = 0; i < np; i++) {
        if (job.status[i] == 1) {
            logf_(d, CATANET_LOG_WARNING, "skipped %s: smaller than the %dx%d LR patch at x%d", paths[i],
                  cfg->lr_patch, cfg->lr_patch, cfg->scale);
            skipped++;
            continue;
        }
        d->img[kept++] = d->img[i];
        DataImage *im = &d->img[kept - 1];
        h = fnv1a(h, im->name, strlen(im->name) + 1);
        h = fnv1a(h, &im->w, sizeof(im->w));
        h = fnv1a(h, &im->h, sizeof(im->h));
        d->pixels += (int64_t)im->w * im->h;
    }
    for (int i = kept; i < np; i++)
        d->img[i].hr = d->img[i].lr = NULL;
    d->n = kept;
    d->hash = h;
    if (kept == 0) {
        ret = catanet_errf(err, es, CATANET_ERR_INVALID_ARG,
                           "all %d images are smaller than the %dx%d LR patch at x%d", np, cfg->lr_patch,
                           cfg->lr_patch, cfg->scale);
        goto fail;
    }
    /* batch generation state */
    d->sync_sampler.epoch = -1;
    if (!(d->sync_sampler.perm = malloc(sizeof(int) * d->n))) {
        ret = catanet_errf(err, es, CATANET_ERR_NOMEM, "out of memory");
        goto fail;
    }
    if (pthread_mutex_init(&d->mu, NULL) || pthread_cond_init(&d->work_cv, NULL) ||
        pthread_cond_init(&d->ready_cv, NULL)) {
        ret = catanet_errf(err, es, CATANET_ERR_NOMEM, "cannot create a mutex");
        goto fail;
    }
    d->sync_ok = 1;
    if (cfg->prefetch_threads > 0) {
        int p = cfg->lr_patch, sp = cfg->scale * p;
        d->nslots = cfg->prefetch_threads + 1;
        d->slots = calloc(d->nslots, sizeof(Slot));
        if (!d->slots) {
            ret = catanet_errf(err, es, CATANET_ERR_NOMEM, "out of memory");
            goto fail;
        }
        for (int i = 0; i < d->nslots; i++) {
            d->slots[i].lr = malloc(sizeof(float) * (size_t)cfg->batch * 3 * p * p);
            d->slots[i].hr = malloc(sizeof(float) * (size_t)cfg->batch * 3 * sp * sp);
            if (!d->slots[i].lr || !d->slots[i].hr) {
                ret = catanet_errf(err, es, CATANET_ERR_NOMEM, "out of memory for %d prefetch buffers", d->nslots);
                goto fail;
            }
        }
        for (int i = 0; i < cfg->prefetch_threads; i++) {
            d->samplers[i].epoch = -1;
            if (!(d->samplers[i].perm = malloc(sizeof(int) * d->n))) {
                ret = catanet_errf(err, es, CATANET_ERR_NOMEM, "out of memory");
                goto fail;
            }
        }
        for (int i = 0; i < cfg->prefetch_threads; i++) {
            void **arg = malloc(2 * sizeof(void *));
            if (!arg) {
                ret = catanet_errf(err, es, CATANET_ERR_NOMEM, "out of memory");
                goto fail;
            }
            arg[0] = d;
            arg[1] = &d->samplers[i];
            if (pthread_create(&d->threads[i], NULL, worker_main, arg) != 0) {
                free(arg);
                ret = catanet_errf(err, es, CATANET_ERR_NOMEM, "cannot start a prefetch thread");
                goto fail;
            }
            d->nthreads++;
        }
    }
    d->load_seconds = now_seconds() - t0;
    logf_(d, CATANET_LOG_INFO, "training data: %d images (%d skipped), %.1f MP HR, loaded in %.1f s", d->n, skipped,
          d->pixels / 1e6, d->load_seconds);
    for (int i = 0; i < np; i++)
        free(paths[i]);
    free(paths);
    free(job.status);
    free(job.errs);
    *out = d;
    return 0;
fail:
    for (int i = 0; i < np; i++)
        free(paths[i]);
    free(paths);
    free(job.status);
    free(job.errs);
    catanet_data_close(d);
    return ret;
}

int catanet_data_next(CatanetData *d, float *lr, float *hr)
{
    if (!d || !lr || !hr)
        return CATANET_ERR_INVALID_ARG;
    int B = d->cfg.batch, p = d->cfg.lr_patch, sp = d->cfg.scale * p;
    if (d->nthreads == 0) {
        make_batch(d, &d->sync_sampler, d->consumed, lr, hr);
        d->consumed++;
        d->served++;
        return 0;
    }
    pthread_mutex_lock(&d->mu);
    int64_t b = d->consumed;
    Slot *sl = &d->slots[b % d->nslots];
    while (!(sl->state == SLOT_READY && sl->batch == b))
        pthread_cond_wait(&d->ready_cv, &d->mu);
    pthread_mutex_unlock(&d->mu);
    /* the slot stays READY (no worker touches it) until it is released below */
    memcpy(lr, sl->lr, sizeof(float) * (size_t)B * 3 * p * p);
    memcpy(hr, sl->hr, sizeof(float) * (size_t)B * 3 * sp * sp);
    pthread_mutex_lock(&d->mu);
    sl->state = SLOT_EMPTY;
    d->consumed++;
    d->served++;
    pthread_cond_broadcast(&d->work_cv);
    pthread_mutex_unlock(&d->mu);
    return 0;
}

int catanet_data_get_state(const CatanetData *d, char *buf, size_t n)
{
    if (!d || !buf)
        return CATANET_ERR_INVALID_ARG;
    /* consumed is only written by the caller's thread (next/set_state), so no lock is needed */
    int64_t sample = d->base + d->consumed * d->cfg.batch;
    int len = snprintf(buf, n, STATE_MAGIC " seed=%" PRIu64 " sample=%" PRId64 " images=%d hash=%016" PRIx64,
                       d->cfg.seed, sample, d->n, d->hash);
    return len < 0 || (size_t)len >= n ? CATANET_ERR_INVALID_ARG : 0;
}

int catanet_data_set_state(CatanetData *d, const char *state)
{
    return catanet_data_set_state_ex(d, state, 0);
}

int catanet_data_set_state_ex(CatanetData *d, const char *state, int allow_other_images)
{
    if (!d || !state)
        return CATANET_ERR_INVALID_ARG;
    uint64_t seed, hash;
    int64_t sample;
    int images, used = 0;
    if (strncmp(state, STATE_MAGIC " ", sizeof(STATE_MAGIC)) != 0 ||
        sscanf(state + sizeof(STATE_MAGIC), "seed=%" SCNu64 " sample=%" SCNd64 " images=%d hash=%" SCNx64 "%n", &seed,
               &sample, &images, &hash, &used) != 4 ||
        state[sizeof(STATE_MAGIC) + used] != 0 || sample < 0)
        return catanet_errf(d->err, sizeof(d->err), CATANET_ERR_FORMAT, "not a data position: '%.80s'", state);
    if (seed != d->cfg.seed)
        return catanet_errf(d->err, sizeof(d->err), CATANET_ERR_STATE,
                            "data position is for seed %" PRIu64 ", this run uses %" PRIu64, seed, d->cfg.seed);
    if ((images != d->n || hash != d->hash) && !allow_other_images)
        return catanet_errf(d->err, sizeof(d->err), CATANET_ERR_STATE,
                            "data position is for another image set (%d images, hash %016" PRIx64
                            "; now %d images, hash %016" PRIx64 ")",
                            images, hash, d->n, d->hash);
    if (d->nthreads) {
        /* let the batches being made finish, then forget every prefetched one */
        pthread_mutex_lock(&d->mu);
        while (d->busy > 0)
            pthread_cond_wait(&d->ready_cv, &d->mu);
        for (int i = 0; i < d->nslots; i++)
            d->slots[i].state = SLOT_EMPTY;
        d->base = sample;
        d->consumed = 0;
        d->produce_next = 0;
        pthread_cond_broadcast(&d->work_cv);
        pthread_mutex_unlock(&d->mu);
    } else {
        d->base = sample;
        d->consumed = 0;
    }
    d->err[0] = 0;
    return 0;
}

const char *catanet_data_last_error(const CatanetData *d)
{
    return d ? d->err : "";
}

int catanet_data_num_images(const CatanetData *d)
{
    return d ? d->n : 0;
}

int64_t catanet_data_num_pixels(const CatanetData *d)
{
    return d ? d->pixels : 0;
}

int64_t catanet_data_batches_served(const CatanetData *d)
{
    return d ? d->served : 0;
}

double catanet_data_load_seconds(const CatanetData *d)
{
    return d ? d->load_seconds : 0.0;
}
