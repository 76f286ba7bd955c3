/* testutil.c: helpers for the test programs. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "safetensors.h"
#include "testutil.h"

static int n_pass, n_fail;

void test_check(int ok, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("%s: ", ok ? "PASS" : "FAIL");
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
    fflush(stdout);
    if (ok)
        n_pass++;
    else
        n_fail++;
}

int test_failures(void)
{
    return n_fail;
}

int test_finish(void)
{
    printf("%d passed, %d failed\n", n_pass, n_fail);
    return n_fail ? 1 : 0;
}

const char *shared_path(char *buf, size_t n, const char *rel)
{
    const char *base = getenv("CATANET_SHARED");
    snprintf(buf, n, "%s/%s", base && *base ? base : "../shared", rel);
    return buf;
}

const char *ref_path(char *buf, size_t n, const char *file)
{
    char rel[512];
    snprintf(rel, sizeof(rel), "reference/catanet/%s", file);
    return shared_path(buf, n, rel);
}

int ref_cases_present(void)
{
    char probe[512];
    FILE *f = fopen(ref_path(probe, sizeof(probe), "cases.json"), "r");
    if (!f) {
        printf("FAIL: reference cases not found at %s (set CATANET_SHARED)\n", probe);
        return 0;
    }
    fclose(f);
    return 1;
}

float *load_tensor(const char *path, const char *name, int64_t *shape, int *ndim)
{
    CatanetSt *st;
    char err[512];
    if (catanet_st_open(&st, path, err, sizeof(err)) < 0) {
        printf("cannot load %s: %s\n", path, err);
        return NULL;
    }
    const CatanetStTensor *t = catanet_st_get(st, name);
    float *x = NULL;
    if (!t)
        printf("%s: no tensor %s\n", path, name);
    else if ((x = malloc(sizeof(float) * (t->numel ? t->numel : 1))) && catanet_st_read_f32(t, x) == 0) {
        if (shape)
            for (int i = 0; i < t->ndim; i++)
                shape[i] = t->shape[i];
        if (ndim)
            *ndim = t->ndim;
    } else {
        free(x);
        x = NULL;
    }
    catanet_st_close(st);
    return x;
}

double max_abs_diff(const float *a, const float *b, size_t n, size_t *where)
{
    double m = 0.0;
    size_t w = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (d > m || isnan(d)) {
            m = isnan(d) ? INFINITY : d;
            w = i;
        }
    }
    if (where)
        *where = w;
    return m;
}

double max_abs(const float *a, size_t n)
{
    double m = 0.0;
    for (size_t i = 0; i < n; i++)
        m = fabs(a[i]) > m ? fabs(a[i]) : m;
    return m;
}

uint32_t rng_u32(Rng *r)
{
    /* xorshift64* */
    r->s ^= r->s >> 12;
    r->s ^= r->s << 25;
    r->s ^= r->s >> 27;
    return (uint32_t)((r->s * 2685821657736338717ull) >> 32);
}

float rng_uniform(Rng *r)
{
    return (rng_u32(r) >> 8) * (1.0f / 16777216.0f);
}

float rng_normal(Rng *r)
{
    float u1 = rng_uniform(r) + 1e-7f, u2 = rng_uniform(r);
    return sqrtf(-2.0f * logf(u1)) * cosf(6.2831853f * u2);
}

void fill_normal(Rng *r, float *x, size_t n, float scale)
{
    for (size_t i = 0; i < n; i++)
        x[i] = scale * rng_normal(r);
}
