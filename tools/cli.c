#include "cli.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "catanet.h"

static int refuse(const char *prog, const char *opt, const char *s, const char *why)
{
    fprintf(stderr, "%s: %s: '%s' %s\n", prog, opt, s ? s : "", why);
    return -1;
}

int cli_int64(const char *prog, const char *opt, const char *s, int64_t lo, int64_t hi, int64_t *out)
{
    if (!s || !*s)
        return refuse(prog, opt, s, "is not a number");
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (*end)
        return refuse(prog, opt, s, "is not an integer");
    if (errno == ERANGE || v < lo || v > hi) {
        fprintf(stderr, "%s: %s: '%s' is out of range [%" PRId64 ", %" PRId64 "]\n", prog, opt, s, lo, hi);
        return -1;
    }
    *out = v;
    return 0;
}

int cli_int(const char *prog, const char *opt, const char *s, long lo, long hi, int *out)
{
    int64_t v;
    if (cli_int64(prog, opt, s, lo, hi, &v) < 0)
        return -1;
    *out = (int)v;
    return 0;
}

int cli_double(const char *prog, const char *opt, const char *s, double lo, double hi, double *out)
{
    if (!s || !*s)
        return refuse(prog, opt, s, "is not a number");
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (*end)
        return refuse(prog, opt, s, "is not a number");
    if (!isfinite(v) || errno == ERANGE)
        return refuse(prog, opt, s, "is not a finite number");
    if (v < lo || v > hi) {
        fprintf(stderr, "%s: %s: '%s' is out of range [%g, %g]\n", prog, opt, s, lo, hi);
        return -1;
    }
    *out = v;
    return 0;
}

void cli_version(const char *prog)
{
    printf("%s (catanet) %s\n", prog, catanet_version());
}
