#include "ckpt.h"

#include <errno.h>
#include <float.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data.h"

#define PATH_LEN_MAX 4096

const char *const catanet_ckpt_meta_keys[CKPT_META_N] = { "train_config", "step", "adam_t", "skipped",
                                                          "elapsed_s", "data_state" };

static int fail(char *err, size_t es, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, es, fmt, ap);
    va_end(ap);
    return -1;
}

char *catanet_ckpt_config_json(const TrainCfg *c)
{
    json_t *o = json_object(), *d = json_array(), *v = json_array(), *ms = json_array();
    if (!o || !d || !v || !ms) {
        json_decref(o);
        json_decref(d);
        json_decref(v);
        json_decref(ms);
        return NULL;
    }
    for (int i = 0; i < c->n_data; i++)
        json_array_append_new(d, json_string(c->data[i]));
    for (int i = 0; i < c->n_val; i++)
        json_array_append_new(v, json_string(c->val[i]));
    for (int i = 0; i < c->n_milestones; i++)
        json_array_append_new(ms, json_integer(c->milestones[i]));
    json_object_set_new(o, "batch", json_integer(c->batch));
    json_object_set_new(o, "patch", json_integer(c->patch));
    json_object_set_new(o, "iters", json_integer(c->iters));
    json_object_set_new(o, "lr", json_real(c->lr));
    json_object_set_new(o, "gamma", json_real(c->gamma));
    json_object_set_new(o, "clip", json_real(c->clip));
    json_object_set_new(o, "milestones", ms);
    json_object_set_new(o, "seed", json_integer((json_int_t)c->seed));
    json_object_set_new(o, "data", d);
    json_object_set_new(o, "val", v);
    json_object_set_new(o, "val_every", json_integer(c->val_every));
    json_object_set_new(o, "ckpt_every", json_integer(c->ckpt_every));
    json_object_set_new(o, "ckpt_secs", json_real(c->ckpt_secs));
    json_object_set_new(o, "max_bad", json_integer(c->max_bad));
    if (c->log)
        json_object_set_new(o, "log", json_string(c->log));
    if (c->cache)
        json_object_set_new(o, "cache", json_string(c->cache));
    char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    return s;
}

static int get_int(json_t *o, const char *key, int64_t lo, int64_t hi, int64_t *out, char *err, size_t es)
{
    json_t *x = json_object_get(o, key);
    if (!json_is_integer(x))
        return fail(err, es, "train_config: '%s' %s", key, x ? "is not an integer" : "is missing");
    json_int_t v = json_integer_value(x);
    if (v < lo || v > hi)
        return fail(err, es, "train_config: '%s' = %lld is out of range [%lld, %lld]", key, (long long)v,
                    (long long)lo, (long long)hi);
    *out = v;
    return 0;
}

static int get_num(json_t *o, const char *key, double lo, double hi, double *out, char *err, size_t es)
{
    json_t *x = json_object_get(o, key);
    if (!json_is_number(x))
        return fail(err, es, "train_config: '%s' %s", key, x ? "is not a number" : "is missing");
    double v = json_number_value(x);
    if (!isfinite(v) || v < lo || v > hi)
        return fail(err, es, "train_config: '%s' = %g is out of range [%g, %g]", key, v, lo, hi);
    *out = v;
    return 0;
}

/* a path the run reads or writes: a non-empty string of bounded length, kept by cfg */
static int get_path(TrainCfg *c, json_t *x, const char *what, const char **out, char *err, size_t es)
{
    const char *s = json_string_value(x);
    if (!s || !*s || strlen(s) >= PATH_LEN_MAX || strlen(s) != json_string_length(x))
        return fail(err, es, "train_config: '%s' is not a path", what);
    if (c->n_owned >= (int)(sizeof(c->owned) / sizeof(c->owned[0])))
        return fail(err, es, "train_config: too many paths");
    char *d = strdup(s);
    if (!d)
        return fail(err, es, "out of memory");
    c->owned[c->n_owned++] = d;
    *out = d;
    return 0;
}

static int get_paths(TrainCfg *c, json_t *o, const char *key, const char **out, int *n, int min, char *err,
                     size_t es)
{
    json_t *a = json_object_get(o, key), *x;
    size_t i;
    if (!json_is_array(a))
        return fail(err, es, "train_config: '%s' %s", key, a ? "is not a list" : "is missing");
    if (json_array_size(a) > MAX_DIRS || json_array_size(a) < (size_t)min)
        return fail(err, es, "train_config: '%s' has %zu entries (%d to %d)", key, json_array_size(a), min, MAX_DIRS);
    *n = 0;
    json_array_foreach(a, i, x) {
        if (get_path(c, x, key, &out[*n], err, es) < 0)
            return -1;
        (*n)++;
    }
    return 0;
}

int catanet_ckpt_parse_config(const char *text, TrainCfg *c, char *err, size_t es)
{
    json_error_t je;
    json_t *o = json_loads(text, JSON_REJECT_DUPLICATES, &je);
    if (!o)
        return fail(err, es, "train_config is not JSON: %s", je.text);
    int ret = -1;
    int64_t batch = 0, patch = 0, seed = 0, max_bad = 0;
    if (!json_is_object(o)) {
        fail(err, es, "train_config is not a JSON object");
        goto out;
    }
    if (get_int(o, "batch", 1, TRAIN_MAX_BATCH, &batch, err, es) < 0 ||
        get_int(o, "patch", 1, TRAIN_MAX_PATCH, &patch, err, es) < 0 ||
        get_int(o, "iters", 0, TRAIN_MAX_STEPS, &c->iters, err, es) < 0 ||
        get_num(o, "lr", 0, DBL_MAX, &c->lr, err, es) < 0 || get_num(o, "gamma", DBL_MIN, 1, &c->gamma, err, es) < 0 ||
        get_num(o, "clip", 0, DBL_MAX, &c->clip, err, es) < 0 ||
        get_int(o, "seed", 0, INT64_MAX, &seed, err, es) < 0 ||
        get_int(o, "val_every", 0, TRAIN_MAX_STEPS, &c->val_every, err, es) < 0 ||
        get_int(o, "ckpt_every", 0, TRAIN_MAX_STEPS, &c->ckpt_every, err, es) < 0 ||
        get_num(o, "ckpt_secs", 0, TRAIN_MAX_SECONDS, &c->ckpt_secs, err, es) < 0 ||
        get_int(o, "max_bad", 1, TRAIN_MAX_BAD, &max_bad, err, es) < 0)
        goto out;
    c->batch = (int)batch;
    c->patch = (int)patch;
    c->seed = (uint64_t)seed;
    c->max_bad = (int)max_bad;
    json_t *a = json_object_get(o, "milestones"), *x;
    size_t i;
    if (!json_is_array(a) || json_array_size(a) > MAX_MILESTONES) {
        fail(err, es, "train_config: 'milestones' is not a list of at most %d steps", MAX_MILESTONES);
        goto out;
    }
    c->n_milestones = 0;
    json_array_foreach(a, i, x) {
        json_int_t v = json_integer_value(x);
        if (!json_is_integer(x) || v < 0 || v > TRAIN_MAX_STEPS) {
            fail(err, es, "train_config: 'milestones' entry %zu is not a step in [0, %lld]", i,
                 (long long)TRAIN_MAX_STEPS);
            goto out;
        }
        c->milestones[c->n_milestones++] = v;
    }
    if (get_paths(c, o, "data", c->data, &c->n_data, 1, err, es) < 0 ||
        get_paths(c, o, "val", c->val, &c->n_val, 0, err, es) < 0)
        goto out;
    /* optional: absent means none */
    c->log = c->cache = NULL;
    if ((x = json_object_get(o, "log")) && get_path(c, x, "log", &c->log, err, es) < 0)
        goto out;
    if ((x = json_object_get(o, "cache")) && get_path(c, x, "cache", &c->cache, err, es) < 0)
        goto out;
    ret = 0;
out:
    json_decref(o);
    return ret;
}

/* a whole decimal integer in [lo, hi] ("-5", "1x", "" and overflow refused) */
static int parse_count(const char *key, const char *s, int64_t lo, int64_t hi, int64_t *out, char *err, size_t es)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (!*s || *end || s[0] == ' ' || s[0] == '+')
        return fail(err, es, "metadata '%s' = '%.40s' is not an integer", key, s);
    if (errno == ERANGE || v < lo || v > hi)
        return fail(err, es, "metadata '%s' = '%.40s' is out of range [%lld, %lld]", key, s, (long long)lo,
                    (long long)hi);
    *out = v;
    return 0;
}

int catanet_ckpt_parse_meta(const char *const meta[CKPT_META_N], TrainCfg *cfg, CkptProgress *p, char *err,
                            size_t es)
{
    static const int required[] = { CKPT_TRAIN_CONFIG, CKPT_STEP, CKPT_ADAM_T, CKPT_DATA_STATE };
    for (size_t i = 0; i < sizeof(required) / sizeof(required[0]); i++)
        if (!meta[required[i]])
            return fail(err, es, "not a catanet-train checkpoint (metadata '%s' missing)",
                        catanet_ckpt_meta_keys[required[i]]);
    memset(p, 0, sizeof(*p));
    if (catanet_ckpt_parse_config(meta[CKPT_TRAIN_CONFIG], cfg, err, es) < 0 ||
        parse_count("step", meta[CKPT_STEP], 0, TRAIN_MAX_STEPS, &p->step, err, es) < 0 ||
        parse_count("adam_t", meta[CKPT_ADAM_T], 0, p->step, &p->adam_t, err, es) < 0 ||
        (meta[CKPT_SKIPPED] &&
         parse_count("skipped", meta[CKPT_SKIPPED], 0, p->step - p->adam_t, &p->skipped, err, es) < 0))
        return -1;
    if (meta[CKPT_ELAPSED]) {
        const char *s = meta[CKPT_ELAPSED];
        char *end;
        p->elapsed = strtod(s, &end);
        if (!*s || *end || !isfinite(p->elapsed) || p->elapsed < 0)
            return fail(err, es, "metadata 'elapsed_s' = '%.40s' is not a finite number of seconds >= 0", s);
    }
    if (strlen(meta[CKPT_DATA_STATE]) >= CATANET_DATA_STATE_MAX)
        return fail(err, es, "metadata 'data_state' is longer than %d bytes", CATANET_DATA_STATE_MAX - 1);
    p->data_state = meta[CKPT_DATA_STATE];
    return 0;
}

void catanet_ckpt_cfg_release(TrainCfg *c)
{
    for (int i = 0; i < c->n_owned; i++)
        free(c->owned[i]);
    c->n_owned = 0;
}

int catanet_ckpt_finite(const CatanetModel *m, const char **bad_tensor)
{
    for (int i = 0; i < m->n_tensors; i++) {
        const CatanetTensorDef *d = &m->tensors[i];
        const float *x = m->arena + d->offset;
        for (size_t k = 0; k < d->numel; k++)
            if (!isfinite(x[k])) {
                if (bad_tensor)
                    *bad_tensor = d->name;
                return 0;
            }
    }
    return 1;
}
