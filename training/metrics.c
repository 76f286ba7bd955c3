/* metrics.c: PSNR/SSIM on Y (the paper's protocol) and validation sets. */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "bicubic.h"
#include "catanet.h"
#include "error.h"
#include "imgload.h"
#include "metrics.h"

#define PSNR_EPS 1e-8          /* calculate_psnr_pt: 10 log10(1 / (mse + 1e-8)), so identical images give 80 dB */
#define SSIM_WIN 11
#define SSIM_SIGMA 1.5
#define SSIM_C1 ((0.01 * 255.0) * (0.01 * 255.0))
#define SSIM_C2 ((0.03 * 255.0) * (0.03 * 255.0))

void catanet_rgb_to_y(const float *rgb, size_t n, double *y)
{
    const float *r = rgb, *g = rgb + n, *b = rgb + 2 * n;
    for (size_t i = 0; i < n; i++)
        y[i] = (65.481 * r[i] + 128.553 * g[i] + 24.966 * b[i] + 16.0) / 255.0;
}

/* Y of the cropped window: out [(h-2b)][(w-2b)] */
static double *crop_y(const float *rgb, int w, int h, int border)
{
    int cw = w - 2 * border, chh = h - 2 * border;
    size_t n = (size_t)w * h;
    double *y = malloc(sizeof(double) * (size_t)cw * chh);
    if (!y)
        return NULL;
    for (int i = 0; i < chh; i++)
        for (int j = 0; j < cw; j++) {
            size_t k = (size_t)(i + border) * w + j + border;
            y[(size_t)i * cw + j] =
                (65.481 * rgb[k] + 128.553 * rgb[n + k] + 24.966 * rgb[2 * n + k] + 16.0) / 255.0;
        }
    return y;
}

int catanet_psnr_y(const float *sr, const float *hr, int w, int h, int border, double *psnr)
{
    if (!sr || !hr || !psnr || border < 0 || w - 2 * border < 1 || h - 2 * border < 1)
        return CATANET_ERR_INVALID_ARG;
    int cw = w - 2 * border, chh = h - 2 * border;
    double *a = crop_y(sr, w, h, border), *b = crop_y(hr, w, h, border);
    if (!a || !b) {
        free(a);
        free(b);
        return CATANET_ERR_NOMEM;
    }
    double se = 0.0;
    size_t n = (size_t)cw * chh;
    for (size_t i = 0; i < n; i++)
        se += (a[i] - b[i]) * (a[i] - b[i]);
    free(a);
    free(b);
    *psnr = 10.0 * log10(1.0 / (se / (double)n + PSNR_EPS));
    return 0;
}

/* valid 11x11 Gaussian filtering, separable: in [h][w] -> out [h-10][w-10]; tmp [h][w-10] */
static void gauss_valid(const double *in, int w, int h, const double *g, double *tmp, double *out)
{
    int ow = w - SSIM_WIN + 1, oh = h - SSIM_WIN + 1;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < ow; x++) {
            double s = 0.0;
            for (int k = 0; k < SSIM_WIN; k++)
                s += g[k] * in[(size_t)y * w + x + k];
            tmp[(size_t)y * ow + x] = s;
        }
    for (int y = 0; y < oh; y++)
        for (int x = 0; x < ow; x++) {
            double s = 0.0;
            for (int k = 0; k < SSIM_WIN; k++)
                s += g[k] * tmp[(size_t)(y + k) * ow + x];
            out[(size_t)y * ow + x] = s;
        }
}

int catanet_ssim_y(const float *sr, const float *hr, int w, int h, int border, double *ssim)
{
    if (!sr || !hr || !ssim || border < 0 || w - 2 * border < SSIM_WIN || h - 2 * border < SSIM_WIN)
        return CATANET_ERR_INVALID_ARG;
    int cw = w - 2 * border, chh = h - 2 * border;
    int ow = cw - SSIM_WIN + 1, oh = chh - SSIM_WIN + 1;
    size_t n = (size_t)cw * chh, on = (size_t)ow * oh;
    double *a = crop_y(sr, w, h, border), *b = crop_y(hr, w, h, border);
    double *prod = malloc(sizeof(double) * n), *tmp = malloc(sizeof(double) * (size_t)chh * ow);
    double *mu1 = malloc(sizeof(double) * on), *mu2 = malloc(sizeof(double) * on);
    double *s11 = malloc(sizeof(double) * on), *s22 = malloc(sizeof(double) * on), *s12 = malloc(sizeof(double) * on);
    int ret = CATANET_ERR_NOMEM;
    if (!a || !b || !prod || !tmp || !mu1 || !mu2 || !s11 || !s22 || !s12)
        goto done;
    /* cv2.getGaussianKernel(11, 1.5): exp(-(i-5)^2 / (2 sigma^2)), normalised to sum 1 */
    double g[SSIM_WIN], gs = 0.0;
    for (int k = 0; k < SSIM_WIN; k++) {
        double d = k - (SSIM_WIN - 1) / 2;
        g[k] = exp(-d * d / (2.0 * SSIM_SIGMA * SSIM_SIGMA));
        gs += g[k];
    }
    for (int k = 0; k < SSIM_WIN; k++)
        g[k] /= gs;
    for (size_t i = 0; i < n; i++) {   /* the protocol works on Y * 255 */
        a[i] *= 255.0;
        b[i] *= 255.0;
    }
    gauss_valid(a, cw, chh, g, tmp, mu1);
    gauss_valid(b, cw, chh, g, tmp, mu2);
    for (size_t i = 0; i < n; i++)
        prod[i] = a[i] * a[i];
    gauss_valid(prod, cw, chh, g, tmp, s11);
    for (size_t i = 0; i < n; i++)
        prod[i] = b[i] * b[i];
    gauss_valid(prod, cw, chh, g, tmp, s22);
    for (size_t i = 0; i < n; i++)
        prod[i] = a[i] * b[i];
    gauss_valid(prod, cw, chh, g, tmp, s12);
    double sum = 0.0;
    for (size_t i = 0; i < on; i++) {
        double m1 = mu1[i], m2 = mu2[i];
        double v1 = s11[i] - m1 * m1, v2 = s22[i] - m2 * m2, v12 = s12[i] - m1 * m2;
        double cs = (2.0 * v12 + SSIM_C2) / (v1 + v2 + SSIM_C2);
        sum += (2.0 * m1 * m2 + SSIM_C1) / (m1 * m1 + m2 * m2 + SSIM_C1) * cs;
    }
    *ssim = sum / (double)on;
    ret = 0;
done:
    free(a);
    free(b);
    free(prod);
    free(tmp);
    free(mu1);
    free(mu2);
    free(s11);
    free(s22);
    free(s12);
    return ret;
}

/* ---- validation sets ---- */

static int is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static int is_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted image file names of dir (malloc'd array of malloc'd strings). */
static int list_images(const char *dir, char ***names, int *count, char *err, size_t es)
{
    DIR *d = opendir(dir);
    if (!d)
        return catanet_errf(err, es, CATANET_ERR_IO, "cannot open folder '%s'", dir);
    char **v = NULL;
    int n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.' || !catanet_is_image_file(e->d_name))
            continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            char **nv = realloc(v, sizeof(char *) * cap);
            if (!nv)
                goto nomem;
            v = nv;
        }
        if (!(v[n] = strdup(e->d_name)))
            goto nomem;
        n++;
    }
    closedir(d);
    if (n)
        qsort(v, n, sizeof(char *), cmp_str);
    *names = v;
    *count = n;
    return 0;
nomem:
    closedir(d);
    for (int i = 0; i < n; i++)
        free(v[i]);
    free(v);
    return catanet_errf(err, es, CATANET_ERR_NOMEM, "out of memory listing '%s'", dir);
}

static void strip_ext(char *dst, size_t n, const char *name)
{
    snprintf(dst, n, "%s", name);
    char *dot = strrchr(dst, '.');
    if (dot)
        *dot = 0;
}

/* The LR file for HR image `stem` in the set's LR folders, or "" when none. */
static void find_lr(char *out, size_t n, const char *dir, const char *stem, int s)
{
    static const char *const patterns[] = { "%s/LR_bicubic/X%d/%sx%d.png", "%s/LR_bicubic/X%d/%s.png",
                                            "%s/LRbicx%d/%s.png" };
    out[0] = 0;
    snprintf(out, n, patterns[0], dir, s, stem, s);
    if (is_file(out))
        return;
    snprintf(out, n, patterns[1], dir, s, stem);
    if (is_file(out))
        return;
    snprintf(out, n, patterns[2], dir, s, stem);
    if (is_file(out))
        return;
    out[0] = 0;
}

void catanet_evalset_close(CatanetEvalSet *set)
{
    if (!set)
        return;
    for (int i = 0; i < set->n; i++) {
        free(set->images[i].hr);
        free(set->images[i].lr);
    }
    free(set->images);
    free(set);
}

/* HR modcropped to s (top-left kept, as BasicSR's modcrop) */
static void modcrop(CatanetRaster *r, int s)
{
    int w = r->w - r->w % s, h = r->h - r->h % s;
    if (w == r->w && h == r->h)
        return;
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < h; y++)
            memmove(r->px + ((size_t)c * h + y) * w, r->px + ((size_t)c * r->h + y) * r->w, sizeof(uint16_t) * w);
    r->w = w;
    r->h = h;
}

int catanet_evalset_open(CatanetEvalSet **out, const char *dir, int scale, char *err, size_t es)
{
    *out = NULL;
    if (!dir || scale < 1 || scale > 8)
        return catanet_errf(err, es, CATANET_ERR_INVALID_ARG, "bad evaluation set arguments");
    char hrdir[4096], path[8192], lrpath[8192], stem[256];
    if (strlen(dir) > 3000)
        return catanet_errf(err, es, CATANET_ERR_INVALID_ARG, "folder name too long");
    /* GTmod12 first: Set14's LRbicx files are made from it, not from HR */
    snprintf(hrdir, sizeof(hrdir), "%s/GTmod12", dir);
    if (!is_dir(hrdir)) {
        snprintf(hrdir, sizeof(hrdir), "%s/HR", dir);
        if (!is_dir(hrdir))
            snprintf(hrdir, sizeof(hrdir), "%s", dir);
    }
    char **names = NULL;
    int n = 0, ret = list_images(hrdir, &names, &n, err, es);
    if (ret < 0)
        return ret;
    CatanetEvalSet *set = calloc(1, sizeof(*set));
    if (!set || (n && !(set->images = calloc(n, sizeof(CatanetEvalImage))))) {
        ret = catanet_errf(err, es, CATANET_ERR_NOMEM, "out of memory");
        goto done;
    }
    if (!n) {
        ret = catanet_errf(err, es, CATANET_ERR_INVALID_ARG, "'%s': no PNG/JPEG/BMP images", hrdir);
        goto done;
    }
    set->scale = scale;
    {
        size_t len = strlen(dir);
        while (len > 1 && dir[len - 1] == '/')
            len--;
        const char *base = dir + len;
        while (base > dir && base[-1] != '/')
            base--;
        snprintf(set->name, sizeof(set->name), "%.*s", (int)(dir + len - base), base);
    }
    int given = 0;
    for (int i = 0; i < n; i++) {
        CatanetEvalImage *im = &set->images[i];
        CatanetRaster hr = { 0 }, lr = { 0 };
        snprintf(path, sizeof(path), "%s/%s", hrdir, names[i]);
        if ((ret = catanet_raster_load(path, &hr, err, es)) < 0)
            goto done;
        modcrop(&hr, scale);
        if (hr.w < 1 || hr.h < 1) {
            catanet_raster_free(&hr);
            ret = catanet_errf(err, es, CATANET_ERR_INVALID_ARG, "'%s' is smaller than the scale", path);
            goto done;
        }
        strip_ext(stem, sizeof(stem), names[i]);
        snprintf(im->name, sizeof(im->name), "%.127s", stem);
        find_lr(lrpath, sizeof(lrpath), dir, stem, scale);
        if (lrpath[0] && dir != NULL && strcmp(hrdir, dir) != 0) {
            if ((ret = catanet_raster_load(lrpath, &lr, err, es)) < 0) {
                catanet_raster_free(&hr);
                goto done;
            }
            if (lr.w * scale != hr.w || lr.h * scale != hr.h) {
                ret = catanet_errf(err, es, CATANET_ERR_FORMAT, "'%s' is %dx%d, expected %dx%d (HR %dx%d / %d)",
                                   lrpath, lr.w, lr.h, hr.w / scale, hr.h / scale, hr.w, hr.h, scale);
                catanet_raster_free(&hr);
                catanet_raster_free(&lr);
                goto done;
            }
            given++;
        } else if ((ret = catanet_imresize(&hr, 1.0 / scale, &lr)) < 0) {
            catanet_raster_free(&hr);
            ret = catanet_errf(err, es, ret, "'%s': bicubic downscale failed", path);
            goto done;
        }
        im->w = hr.w;
        im->h = hr.h;
        im->hr = malloc(sizeof(float) * 3 * (size_t)hr.w * hr.h);
        im->lr = malloc(sizeof(float) * 3 * (size_t)lr.w * lr.h);
        if (im->hr && im->lr) {
            catanet_raster_to_float(&hr, im->hr);
            catanet_raster_to_float(&lr, im->lr);
        }
        catanet_raster_free(&hr);
        catanet_raster_free(&lr);
        set->n = i + 1;
        if (!im->hr || !im->lr) {
            ret = catanet_errf(err, es, CATANET_ERR_NOMEM, "out of memory");
            goto done;
        }
    }
    if (given && given != n) {
        ret = catanet_errf(err, es, CATANET_ERR_FORMAT, "'%s': LR images given for %d of %d HR images", dir, given, n);
        goto done;
    }
    set->lr_given = given == n;
    ret = 0;
done:
    for (int i = 0; i < n; i++)
        free(names[i]);
    free(names);
    if (ret < 0)
        catanet_evalset_close(set);
    else
        *out = set;
    return ret;
}

int catanet_eval_set(const CatanetEvalSet *set, CatanetUpscaleFn fn, void *opaque, CatanetEvalResult *res,
                     char *err, size_t es)
{
    if (!set || !fn || !res)
        return catanet_errf(err, es, CATANET_ERR_INVALID_ARG, "catanet_eval_set: NULL argument");
    size_t maxn = 0;
    for (int i = 0; i < set->n; i++)
        if ((size_t)set->images[i].w * set->images[i].h > maxn)
            maxn = (size_t)set->images[i].w * set->images[i].h;
    float *sr = malloc(sizeof(float) * 3 * (maxn ? maxn : 1));
    if (!sr)
        return catanet_errf(err, es, CATANET_ERR_NOMEM, "out of memory");
    double psum = 0.0, ssum = 0.0;
    int ret = 0, s = set->scale;
    for (int i = 0; i < set->n; i++) {
        const CatanetEvalImage *im = &set->images[i];
        double p, q;
        if ((ret = fn(opaque, im->lr, im->w / s, im->h / s, sr)) < 0) {
            ret = catanet_errf(err, es, ret, "%s/%s: upscaling failed (%s)", set->name, im->name, catanet_strerror(ret));
            break;
        }
        if ((ret = catanet_psnr_y(sr, im->hr, im->w, im->h, s, &p)) < 0 ||
            (ret = catanet_ssim_y(sr, im->hr, im->w, im->h, s, &q)) < 0) {
            ret = catanet_errf(err, es, ret, "%s/%s: %dx%d is too small to measure", set->name, im->name, im->w, im->h);
            break;
        }
        if (res->psnr_each)
            res->psnr_each[i] = p;
        if (res->ssim_each)
            res->ssim_each[i] = q;
        psum += p;
        ssum += q;
    }
    free(sr);
    if (ret < 0)
        return ret;
    res->n = set->n;
    res->psnr = set->n ? psum / set->n : 0.0;
    res->ssim = set->n ? ssum / set->n : 0.0;
    return 0;
}

int catanet_eval_bicubic(void *opaque, const float *lr, int w, int h, float *sr)
{
    int s = opaque ? *(const int *)opaque : 0;
    if (s < 1 || !lr || !sr || w < 1 || h < 1)
        return CATANET_ERR_INVALID_ARG;
    CatanetRaster in, out;
    int ret = catanet_raster_alloc(&in, w, h, 255);
    if (ret < 0)
        return ret;
    catanet_raster_from_float(lr, &in);
    ret = catanet_imresize(&in, (double)s, &out);
    catanet_raster_free(&in);
    if (ret < 0)
        return ret;
    if (out.w != s * w || out.h != s * h)
        ret = CATANET_ERR_INVALID_ARG;
    else
        catanet_raster_to_float(&out, sr);
    catanet_raster_free(&out);
    return ret;
}
