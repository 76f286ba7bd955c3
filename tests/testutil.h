/* testutil.h: small helpers shared by the test programs (not part of the library). */
#ifndef CATANET_TESTUTIL_H
#define CATANET_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>

#define SKIP_CODE 77

/* counts results; test programs exit with test_finish() */
void test_check(int ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int test_finish(void);
int test_failures(void);

/* ../shared (or $CATANET_SHARED) path joined with rel; static buffer per call site is not used: caller's buf */
const char *shared_path(char *buf, size_t n, const char *rel);
/* the reference case folder */
const char *ref_path(char *buf, size_t n, const char *file);
/* 1 when the reference cases are there; else prints a FAIL line naming where they were looked for */
int ref_cases_present(void);

/* a float tensor from a safetensors file (malloc'd, NULL on failure with a message printed) */
float *load_tensor(const char *path, const char *name, int64_t *shape, int *ndim);

/* max |a-b| over n, and its index */
double max_abs_diff(const float *a, const float *b, size_t n, size_t *where);
double max_abs(const float *a, size_t n);

/* deterministic random numbers */
typedef struct Rng { uint64_t s; } Rng;
uint32_t rng_u32(Rng *r);
float rng_uniform(Rng *r);      /* [0,1) */
float rng_normal(Rng *r);
void fill_normal(Rng *r, float *x, size_t n, float scale);

#endif
