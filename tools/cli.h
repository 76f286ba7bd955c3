/*
 * cli: the one way every catanet program reads its command line's numbers and prints --version.
 * Options themselves are parsed with glibc's getopt_long; these check what the option's text means.
 * Each parse function accepts the whole string or nothing (no trailing text, no empty string, no
 * overflow, the value within [lo, hi]); on refusal it prints "PROG: OPTION: why" to stderr and
 * returns -1, leaving *out unchanged.
 */
#ifndef CATANET_CLI_H
#define CATANET_CLI_H

#include <stddef.h>
#include <stdint.h>

int cli_int(const char *prog, const char *opt, const char *s, long lo, long hi, int *out);
int cli_int64(const char *prog, const char *opt, const char *s, int64_t lo, int64_t hi, int64_t *out);
/* finite values only (no "nan", "inf") */
int cli_double(const char *prog, const char *opt, const char *s, double lo, double hi, double *out);
/* one of names (a NULL-terminated list): *out = its index */
int cli_choice(const char *prog, const char *opt, const char *s, const char *const *names, int *out);
/* "WxH", each side in [1, max] */
int cli_size(const char *prog, const char *opt, const char *s, int max, int *w, int *h);
/* The engine options of every tool that runs the network: -d cpu|cuda|auto, -p auto|fp32|fp16, -t THREADS
 * (0..1024, 0 = all cores) and --tile N (0..32768; its getopt code is CLI_OPT_TILE). Returns 1 when
 * opt is one of them (cfg updated), 0 when it is not, -1 after printing why its value is refused. */
#define CLI_OPT_TILE 'T'
struct CatanetConfig;
int cli_engine_option(const char *prog, int opt, const char *arg, struct CatanetConfig *cfg);

/* --list-models (getopt code CLI_OPT_LIST_MODELS), shared by every tool that takes -m: prints to stdout
 * one line per model a name reaches (catanet_model_list: CATANET_MODEL_PATH, then the installed
 * folder): NAME, xSCALE, parameters, path; with none, says on stderr where it looked. Returns the
 * program's exit status: 0, or 1 when a model file could not be read (its line says why). */
#define CLI_OPT_LIST_MODELS 0x101
#define CLI_MODEL_HELP \
    "  -m MODEL  a model name (e.g. catanet_xs_x2: looked up in CATANET_MODEL_PATH, then the installed\n" \
    "            model folder) or the path of a .safetensors or official PyTorch .pth file\n" \
    "  --list-models  list the models a name finds (name, scale, parameters, path) and exit\n"
int cli_list_models(const char *prog);

/* prints "PROG (catanet) VERSION" to stdout */
void cli_version(const char *prog);

/* Writes a program's output file whole or not at all: write(tmp, opaque, err, es) is called with a
 * fresh temporary name in path's folder, which is renamed to path when it returns 0 and removed when it
 * fails, so a failed write (disk full, file-size limit, a bad frame) never leaves a partial file or
 * clobbers an earlier good one. Returns write's result, or CATANET_ERR_IO with err set. */
typedef int (*CliWriteFn)(const char *tmp, void *opaque, char *err, size_t es);
int cli_write_atomic(const char *path, CliWriteFn write, void *opaque, char *err, size_t es);

#endif
