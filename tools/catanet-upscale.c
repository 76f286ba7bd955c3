/*
 * catanet-upscale: upscale images with a CATANet model: one file, or every image of a folder.
 *   catanet-upscale -m MODEL [-f png|jpg|npy] [-q QUALITY] [--bits 8|16] [--suffix S]
 *                   [-d cpu|cuda|auto] [-p auto|fp32|fp16] [-t THREADS] [--tile N] IN OUT
 * IN: PNG (8/16-bit, grey, RGB, palette, with or without alpha), JPEG, BMP or NPY (float32 [3,H,W] or
 * [1,3,H,W] in [0,1]), or a folder of them. OUT: a file, or a folder (files keep their base names).
 * Everything that can be refused without the pixels (the output format, names that would overwrite an
 * input or each other) is refused before the model is opened. Alpha is upscaled with bicubic (the
 * network is trained on colour, not on opacity) and written to PNG; JPEG and NPY have none.
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "catanet.h"
#include "cli.h"
#include "imageio.h"

#define PROG "catanet-upscale"

static int usage(FILE *f, int rc)
{
    fprintf(f,
            "usage: catanet-upscale -m MODEL [-f png|jpg|npy] [-q QUALITY] [--bits 8|16] [--suffix S]\n"
            "                       [-d cpu|cuda|auto] [-p auto|fp32|fp16] [-t THREADS] [--tile N] IN OUT\n"
            "  IN   an image: .png (8/16-bit; grey, RGB, palette; with or without alpha), .jpg/.jpeg, .bmp,\n"
            "       .npy (float32 [3,H,W] or [1,3,H,W] in [0,1]); or a folder: each such file in it, by name\n"
            "       (other files and sub-folders are skipped)\n"
            "  OUT  a file: its extension gives the format (.png, .jpg/.jpeg, .npy);\n"
            "       or a folder (made when missing; an existing one when IN is a file): OUT/NAME.EXT, NAME\n"
            "       the input's base name without its extension, EXT the format's (default png)\n"
            "  -f, --format png|jpg|npy  the output format (default: OUT's extension, png for a folder);\n"
            "              an OUT extension that disagrees, or one that cannot be written (.bmp), is refused\n"
            "  -q, --quality N  JPEG quality 1..100 (default %d; from 90 up, chroma is kept at full resolution)\n"
            "  --bits 8|16 PNG output depth (default: the input's: a 16-bit PNG gives a 16-bit PNG)\n"
            "  --suffix S  appended to each output's base name (a folder: NAME + S + .EXT)\n"
            "  -t THREADS  0..1024 (0: all cores)   --tile N  0..32768 (0: no tiling)\n"
            CLI_MODEL_HELP
            "  --help, --version\n"
            "Alpha: the colour goes through the network, the alpha plane is upscaled with bicubic (MATLAB's\n"
            "  imresize); it is written to PNG (RGBA); JPEG and NPY have no alpha: it is dropped, with a warning.\n"
            "NPY output is the raw float result (unclamped); PNG and JPEG are clamped and rounded.\n"
            "Folders: one line per image on stderr ([3/17] name.png 512x384 -> 1024x768 1.2 s), a summary at\n"
            "  the end; an image that fails is named with the reason and skipped, the others still run.\n"
            "Never overwritten: an input. OUT may be the IN folder only when the names differ (-f, --suffix).\n"
            "The format, the names and the folders are checked before the model is opened; each output is\n"
            "written whole or not at all (a temporary file, then renamed).\n"
            "Exit status: 0; 1 when an image (or the model) failed: its output is not written; 2 on bad usage\n"
            "  (nothing read or written).\n",
            IMAGE_JPEG_QUALITY);
    return rc;
}

static void log_stderr(void *opaque, int level, const char *msg)
{
    fprintf(stderr, "%s\n", msg);
}

typedef struct Options {
    int format;        /* IMAGE_PNG, IMAGE_JPEG, IMAGE_NPY; IMAGE_UNKNOWN: not given */
    int bits;          /* 8, 16; 0: the input's */
    int quality;
    const char *suffix;
} Options;

typedef struct Job {
    char *in, *out;
    const char *name;  /* in's base name, for the progress line */
    int failed;
} Job;

typedef struct Output {
    const float *px;
    int w, h, alpha, bits, format, quality;
} Output;

static int write_image(const char *tmp, void *opaque, char *err, size_t es)
{
    const Output *o = opaque;
    return image_write_as(tmp, o->format, o->px, o->w, o->h, o->alpha, o->bits, o->quality, err, es);
}

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* One image: read, upscale (the colour with the network, alpha with bicubic), write. 0, or <0 with err. */
static int upscale_one(CatanetEngine *e, const Job *j, const Options *o, int dims[2], char *err, size_t es)
{
    float *in = NULL, *out = NULL;
    int w, h, bits, alpha, s = catanet_engine_scale(e);
    int ret = image_read_alpha(j->in, &in, &w, &h, &bits, &alpha, err, es);
    if (ret < 0)
        return ret;
    dims[0] = w;
    dims[1] = h;
    /* an output the format cannot hold is refused before the network runs for it */
    const char *why = image_write_refusal(o->format, w * s, h * s);
    if (why) {
        snprintf(err, es, "'%s': the output, %dx%d, cannot be written as %s: %s", j->in, w * s, h * s,
                 o->format == IMAGE_JPEG ? "JPEG" : "PNG", why);
        ret = CATANET_ERR_INVALID_ARG;
        goto done;
    }
    size_t plane = (size_t)w * h * s * s;
    out = malloc(sizeof(float) * (3 + alpha) * plane);
    if (!out) {
        snprintf(err, es, "'%s': out of memory", j->in);
        ret = CATANET_ERR_NOMEM;
        goto done;
    }
    if ((ret = catanet_engine_prepare(e, w, h)) >= 0)
        ret = catanet_engine_process(e, in, out);
    if (ret < 0) {
        /* a non-finite frame is an error too (CATANET_ERR_NONFINITE): no black PNG, no NPY of NaN */
        snprintf(err, es, "'%s': %s (%s); '%s' not written", j->in, catanet_engine_last_error(e),
                 catanet_strerror(ret), j->out);
        goto done;
    }
    if (alpha && (ret = image_alpha_upscale(in + 3 * (size_t)w * h, w, h, s, out + 3 * plane)) < 0) {
        snprintf(err, es, "'%s': out of memory", j->in);
        goto done;
    }
    if (alpha && o->format != IMAGE_PNG)
        fprintf(stderr, PROG ": warning: '%s': its alpha channel is not kept: %s has none\n", j->in,
                o->format == IMAGE_JPEG ? "JPEG" : "NPY");
    Output res = { out, w * s, h * s, alpha, o->bits ? o->bits : bits, o->format, o->quality };
    ret = cli_write_atomic(j->out, write_image, &res, err, es);
done:
    free(in);
    free(out);
    return ret;
}

/* ---- planning: every job's names, checked before any pixel is read ---- */

static char *join(const char *dir, const char *name, size_t name_len, const char *suffix, const char *ext)
{
    size_t n = strlen(dir) + name_len + strlen(suffix) + (ext ? strlen(ext) : 0) + 3;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s%s%.*s%s%s%s", dir, dir[0] && dir[strlen(dir) - 1] != '/' ? "/" : "", (int)name_len, name,
                 suffix, ext ? "." : "", ext ? ext : "");
    return p;
}

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

/* OUT_DIR/STEM SUFFIX.EXT for the input path in */
static char *out_in_folder(const char *out_dir, const char *in, const Options *o)
{
    const char *b = base_name(in), *dot = strrchr(b, '.');
    return join(out_dir, b, dot && dot > b ? (size_t)(dot - b) : strlen(b), o->suffix, image_format_ext(o->format));
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* the images of folder dir, sorted by name: their paths in *list. 0, or -1 after printing why. */
static int list_folder(const char *dir, char ***list, int *count)
{
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, PROG ": cannot read the folder '%s': %s\n", dir, strerror(errno));
        return -1;
    }
    char **v = NULL;
    int n = 0, cap = 0, bad = 0;
    struct dirent *de;
    while (!bad && (de = readdir(d))) {
        struct stat st;
        if (de->d_name[0] == '.' || image_format(de->d_name) == IMAGE_UNKNOWN)
            continue;
        char *p = join(dir, de->d_name, strlen(de->d_name), "", NULL);
        if (p && (stat(p, &st) != 0 || !S_ISREG(st.st_mode))) {
            free(p);
            continue;
        }
        if (p && n == cap) {
            char **nv = realloc(v, sizeof(char *) * (cap = cap ? 2 * cap : 64));
            if (nv)
                v = nv;
            else
                cap = n;
        }
        if (!p || n == cap) {
            free(p);
            bad = 1;
            fprintf(stderr, PROG ": out of memory\n");
        } else
            v[n++] = p;
    }
    closedir(d);
    if (!bad)
        qsort(v, (size_t)n, sizeof(char *), cmp_name);
    *list = v;
    *count = n;
    return bad ? -1 : 0;
}

static int same_file(const struct stat *a, const struct stat *b)
{
    return a->st_dev == b->st_dev && a->st_ino == b->st_ino;
}

/* No output may be an input (of any job: a.png -> a.jpg while a.jpg is an input too) or another job's
 * output. 0, or 2 after printing which. */
static int check_names(const Job *jobs, int n)
{
    struct stat *ins = malloc(sizeof(struct stat) * (size_t)n);
    const char **outs = malloc(sizeof(char *) * (size_t)n);
    int rc = !ins || !outs;
    if (rc)
        fprintf(stderr, PROG ": out of memory\n");
    for (int i = 0; !rc && i < n; i++) {
        outs[i] = jobs[i].out;
        if (stat(jobs[i].in, &ins[i]) != 0)
            memset(&ins[i], 0, sizeof(ins[i]));
    }
    for (int i = 0; !rc && i < n; i++) {
        struct stat st;
        if (stat(jobs[i].out, &st) != 0)
            continue;
        for (int k = 0; k < n && !rc; k++)
            if (ins[k].st_ino && same_file(&st, &ins[k])) {
                fprintf(stderr, PROG ": '%s', the output of '%s', is %s: an input is never overwritten "
                                "(choose another OUT, -f or --suffix)\n", jobs[i].out, jobs[i].in,
                        k == i ? "that input itself" : "an input too");
                rc = 2;
            }
    }
    if (!rc) {
        qsort(outs, (size_t)n, sizeof(char *), cmp_name);
        for (int i = 1; i < n && !rc; i++)
            if (!strcmp(outs[i - 1], outs[i])) {
                fprintf(stderr, PROG ": two inputs would both be written to '%s' (same base name): rename one "
                                "or upscale them apart\n", outs[i]);
                rc = 2;
            }
    }
    free(ins);
    free(outs);
    return rc;
}

/* A folder that does not exist yet: its parent must. */
static int check_out_folder(const char *dir)
{
    struct stat st;
    if (stat(dir, &st) == 0) {
        if (!S_ISDIR(st.st_mode)) {
            fprintf(stderr, PROG ": '%s' is not a folder (IN is a folder, so OUT must be one)\n", dir);
            return 2;
        }
        if (access(dir, W_OK | X_OK) != 0) {
            fprintf(stderr, PROG ": cannot write into the folder '%s': %s\n", dir, strerror(errno));
            return 2;
        }
        return 0;
    }
    char *parent = strdup(dir);
    if (!parent)
        return 1;
    size_t n = strlen(parent);
    while (n > 1 && parent[n - 1] == '/')
        parent[--n] = 0;
    char *slash = strrchr(parent, '/');
    const char *p = slash ? (slash == parent ? "/" : (*slash = 0, parent)) : ".";
    int rc = access(p, W_OK | X_OK) != 0;
    if (rc)
        fprintf(stderr, PROG ": cannot make the folder '%s': '%s': %s\n", dir, p, strerror(errno));
    free(parent);
    return rc ? 2 : 0;
}

/* The output format of a single file's OUT: its extension, which -f (when given) must match; -f alone
 * when OUT has none. 0, or 2 after printing why not. */
static int file_format(const char *out, Options *o)
{
    const char *b = base_name(out), *dot = strrchr(b, '.');
    int ext = image_format(out);
    if (dot && dot > b && (ext == IMAGE_UNKNOWN || ext == IMAGE_BMP)) {
        fprintf(stderr, PROG ": '%s': cannot write '%s' files: the output formats are .png, .jpg/.jpeg and .npy\n",
                out, dot);
        return 2;
    }
    if (dot && dot > b && o->format && ext != o->format) {
        fprintf(stderr, PROG ": '%s': the extension '%s' does not match -f %s\n", out, dot,
                image_format_ext(o->format));
        return 2;
    }
    if (dot && dot > b)
        o->format = ext;
    if (!o->format) {
        fprintf(stderr, PROG ": '%s': no extension: end OUT with .png, .jpg/.jpeg or .npy, or give -f\n", out);
        return 2;
    }
    return 0;
}

/* IN and OUT to jobs. 0, 1 (IN unreadable) or 2 (usage: nothing will be read or written). */
static int plan(const char *in, const char *out, Options *o, Job **jobs_out, int *count, int *folder)
{
    struct stat si, so;
    if (stat(in, &si) != 0) {
        fprintf(stderr, PROG ": cannot open '%s': %s\n", in, strerror(errno));
        return 1;
    }
    int out_is_dir = stat(out, &so) == 0 && S_ISDIR(so.st_mode);
    *folder = S_ISDIR(si.st_mode);
    char **ins = NULL;
    int n = 0, rc = 0;
    if (*folder) {
        if (!o->format)
            o->format = IMAGE_PNG;
        if ((rc = check_out_folder(out)))
            return rc;
        if (list_folder(in, &ins, &n) < 0) {
            rc = 1;
            goto fail;
        }
        if (!n) {
            fprintf(stderr, PROG ": no images (.png, .jpg, .jpeg, .bmp, .npy) in the folder '%s'\n", in);
            rc = 1;
            goto fail;
        }
    } else {
        if (image_format(in) == IMAGE_UNKNOWN) {
            fprintf(stderr, PROG ": '%s': input must be .png, .jpg/.jpeg, .bmp or .npy\n", in);
            return 2;
        }
        if (out_is_dir && !o->format)
            o->format = IMAGE_PNG;
        if (!out_is_dir && (rc = file_format(out, o)))
            return rc;
        if (!(ins = malloc(sizeof(char *))) || !(ins[0] = strdup(in))) {
            fprintf(stderr, PROG ": out of memory\n");
            rc = 1;
            goto fail;
        }
        n = 1;
    }
    if (o->format == IMAGE_JPEG && o->bits == 16) {
        fprintf(stderr, PROG ": --bits 16: JPEG is 8-bit (16-bit output needs PNG)\n");
        rc = 2;
        goto fail;
    }
    Job *jobs = calloc((size_t)n, sizeof(Job));
    if (!jobs) {
        fprintf(stderr, PROG ": out of memory\n");
        rc = 1;
        goto fail;
    }
    for (int i = 0; i < n; i++) {
        jobs[i].in = ins[i];
        jobs[i].name = base_name(ins[i]);
        jobs[i].out = *folder || out_is_dir ? out_in_folder(out, ins[i], o) : strdup(out);
        if (!jobs[i].out)
            rc = 1;
    }
    free(ins);
    if (rc)
        fprintf(stderr, PROG ": out of memory\n");
    else
        rc = check_names(jobs, n);
    *jobs_out = jobs;
    *count = n;
    return rc;
fail:
    for (int i = 0; ins && i < n; i++)
        free(ins[i]);
    free(ins);
    return rc;
}

int main(int argc, char **argv)
{
    static const char *const bit_names[] = { "8", "16", NULL }, *const format_names[] = { "png", "jpg", "npy", NULL };
    static const int formats[] = { IMAGE_PNG, IMAGE_JPEG, IMAGE_NPY };
    static const struct option longopts[] = { { "tile", required_argument, NULL, CLI_OPT_TILE },
                                              { "bits", required_argument, NULL, 'b' },
                                              { "list-models", no_argument, NULL, CLI_OPT_LIST_MODELS },
                                              { "format", required_argument, NULL, 'f' },
                                              { "quality", required_argument, NULL, 'q' },
                                              { "suffix", required_argument, NULL, 'S' },
                                              { "help", no_argument, NULL, 'h' },
                                              { "version", no_argument, NULL, 'V' },
                                              { NULL, 0, NULL, 0 } };
    const char *model = NULL;
    CatanetConfig cfg;
    catanet_config_default(&cfg);
    cfg.log = log_stderr;
    cfg.log_level = CATANET_LOG_WARNING;
    Options o = { IMAGE_UNKNOWN, 0, IMAGE_JPEG_QUALITY, "" };
    int k, c;
    while ((c = getopt_long(argc, argv, "m:d:p:t:f:q:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'm': model = optarg; break;
        case 'd': case 'p': case 't': case CLI_OPT_TILE:
            if (cli_engine_option(PROG, c, optarg, &cfg) < 0)
                return 2;
            break;
        case 'b':
            if (cli_choice(PROG, "--bits", optarg, bit_names, &k) < 0)
                return 2;
            o.bits = k ? 16 : 8;
            break;
        case 'f':
            /* "jpeg" is the same format as "jpg" */
            if (cli_choice(PROG, "-f", strcmp(optarg, "jpeg") ? optarg : "jpg", format_names, &k) < 0)
                return 2;
            o.format = formats[k];
            break;
        case 'q':
            if (cli_int(PROG, "-q", optarg, 1, 100, &o.quality) < 0)
                return 2;
            break;
        case 'S':
            if (strchr(optarg, '/')) {
                fprintf(stderr, PROG ": --suffix: '%s' holds a '/'\n", optarg);
                return 2;
            }
            o.suffix = optarg;
            break;
        case 'h': return usage(stdout, 0);
        case 'V': cli_version(PROG); return 0;
        case CLI_OPT_LIST_MODELS: return cli_list_models(PROG);
        default: return usage(stderr, 2);
        }
    }
    if (!model || argc - optind != 2) {
        fprintf(stderr, PROG ": %s\n", !model ? "-m MODEL is required" : "needs IN and OUT");
        return usage(stderr, 2);
    }
    const char *in_path = argv[optind], *out_path = argv[optind + 1];
    Job *jobs = NULL;
    int n = 0, folder = 0;
    int rc = plan(in_path, out_path, &o, &jobs, &n, &folder);
    char err[1024];
    CatanetEngine *e = NULL;
    if (!rc && catanet_engine_open(&e, model, &cfg, err, sizeof(err)) < 0) {
        fprintf(stderr, PROG ": %s\n", err);
        rc = 1;
    }
    if (!rc && folder && mkdir(out_path, 0777) != 0 && errno != EEXIST) {
        fprintf(stderr, PROG ": cannot make the folder '%s': %s\n", out_path, strerror(errno));
        rc = 1;
    }
    int failed = 0, s = e ? catanet_engine_scale(e) : 1;
    double t_all = now();
    for (int i = 0; !rc && i < n; i++) {
        int dims[2] = { 0, 0 };
        double t0 = now();
        if (upscale_one(e, &jobs[i], &o, dims, err, sizeof(err)) < 0) {
            jobs[i].failed = 1;
            failed++;
            if (folder)
                fprintf(stderr, "[%d/%d] %s: error: %s\n", i + 1, n, jobs[i].name, err);
            else
                fprintf(stderr, PROG ": %s\n", err);
        } else if (folder)
            fprintf(stderr, "[%d/%d] %s %dx%d -> %dx%d %.1f s\n", i + 1, n, jobs[i].name, dims[0], dims[1],
                    dims[0] * s, dims[1] * s, now() - t0);
    }
    if (!rc && folder) {
        fprintf(stderr, PROG ": %d of %d images written to '%s' in %.1f s", n - failed, n, out_path, now() - t_all);
        if (failed)
            fprintf(stderr, "; %d failed:", failed);
        for (int i = 0, shown = 0; i < n && shown <= 10; i++)
            if (jobs[i].failed)
                fprintf(stderr, " %s", shown++ < 10 ? jobs[i].name : "...");
        fputc('\n', stderr);
    }
    catanet_engine_close(&e);
    for (int i = 0; jobs && i < n; i++) {
        free(jobs[i].in);
        free(jobs[i].out);
    }
    free(jobs);
    return rc ? rc : failed ? 1 : 0;
}
