/*
 * catanet-mkmodel: write a random-weight CATANet model (for benchmarks and GPU checks, where no
 * trained weights of the wanted shape exist). PyTorch-like initialisation: weights uniform in
 * +-1/sqrt(fan_in), biases N(0, 0.02), LayerNorm weights 1 + N(0, 0.1), token centers 0.97 x random
 * unit rows, every `initted` True.
 *   catanet-mkmodel -o OUT.safetensors [-s SCALE (2)] [-g GROUPS] [--seed N]
 *   GROUPS: a count (the first N of CATANet-L's 8 group configurations, default 8) or a comma list
 *   of configuration indices 0..7, e.g. 0,3,6 (patch 16/28/24, centers 16/128/64).
 */
#include <getopt.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "model.h"

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static double uniform01(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return ((rng_state >> 11) + 0.5) / 9007199254740992.0;
}

static double normal(void)
{
    return sqrt(-2.0 * log(uniform01())) * cos(6.283185307179586 * uniform01());
}

#define PROG "catanet-mkmodel"

static int usage(FILE *f, int rc)
{
    fprintf(f, "usage: catanet-mkmodel -o OUT.safetensors [-s SCALE (1..4, default 2)] [-g N | -g i,j,k] [--seed N]\n"
               "       [--help] [--version]\n"
               "  -g N: the first N (0..8) of CATANet-L's group configurations; i,j,k: configuration indices 0..7\n");
    return rc;
}

static int write_model(const char *tmp, void *opaque, char *err, size_t es)
{
    const char *keys[] = { "provenance" }, *vals[] = { "catanet-mkmodel: random weights (benchmarks only)" };
    return catanet_model_save(opaque, tmp, keys, vals, 1, err, es);
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = { { "seed", required_argument, NULL, 'S' },
                                              { "help", no_argument, NULL, 'h' },
                                              { "version", no_argument, NULL, 'V' },
                                              { NULL, 0, NULL, 0 } };
    const char *outp = NULL, *groups = "8";
    int scale = 2, c;
    int64_t seed = 1;
    while ((c = getopt_long(argc, argv, "o:s:g:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'o': outp = optarg; break;
        case 's':
            if (cli_int(PROG, "-s", optarg, 1, 4, &scale) < 0)
                return 2;
            break;
        case 'g': groups = optarg; break;
        case 'S':
            if (cli_int64(PROG, "--seed", optarg, 0, INT64_MAX, &seed) < 0)
                return 2;
            break;
        case 'h': return usage(stdout, 0);
        case 'V': cli_version(PROG); return 0;
        default: return usage(stderr, 2);
        }
    }
    if (!outp || optind != argc) {
        fprintf(stderr, PROG ": %s\n", !outp ? "-o OUT is required" : "unexpected argument");
        return usage(stderr, 2);
    }
    rng_state ^= (uint64_t)seed * 0xD1B54A32D192ED03ull;
    CatanetModelInfo full, info;
    catanet_arch_default(&full, scale);
    info = full;
    if (strchr(groups, ',')) {
        info.num_groups = 0;
        for (const char *p = groups; *p;) {
            char *end;
            long k = strtol(p, &end, 10);
            if (end == p || k < 0 || k > 7 || info.num_groups >= CATANET_MAX_GROUPS) {
                fprintf(stderr, "catanet-mkmodel: bad group list '%s' (indices 0..7)\n", groups);
                return 2;
            }
            info.groups[info.num_groups++] = full.groups[k];
            p = *end == ',' ? end + 1 : end;
        }
    } else {
        if (cli_int(PROG, "-g", groups, 0, 8, &info.num_groups) < 0)
            return 2;
    }
    char err[512];
    CatanetModel *m;
    if (catanet_arch_validate(&info, err, sizeof(err)) < 0 || catanet_model_create(&m, &info, err, sizeof(err)) < 0) {
        fprintf(stderr, "catanet-mkmodel: %s\n", err);
        return 1;
    }
    for (int t = 0; t < m->n_tensors; t++) {
        const CatanetTensorDef *d = &m->tensors[t];
        float *x = m->arena + d->offset;
        size_t fan_in = 1;
        for (int k = 1; k < d->ndim; k++)
            fan_in *= (size_t)d->shape[k];
        if (strstr(d->name, ".means")) {
            size_t rows = (size_t)d->shape[0], c = (size_t)d->shape[1];
            for (size_t r = 0; r < rows; r++) {
                double s = 0;
                for (size_t j = 0; j < c; j++) {
                    x[r * c + j] = (float)normal();
                    s += (double)x[r * c + j] * x[r * c + j];
                }
                for (size_t j = 0; j < c; j++)
                    x[r * c + j] = (float)(0.97 * x[r * c + j] / sqrt(s));
            }
        } else if (d->ndim >= 2) {
            double bound = 1.0 / sqrt((double)fan_in);
            for (size_t i = 0; i < d->numel; i++)
                x[i] = (float)((2 * uniform01() - 1) * bound);
        } else if (strstr(d->name, "norm.weight")) {
            for (size_t i = 0; i < d->numel; i++)
                x[i] = (float)(1.0 + 0.1 * normal());
        } else {
            for (size_t i = 0; i < d->numel; i++)
                x[i] = (float)(0.02 * normal());
        }
    }
    if (cli_write_atomic(outp, write_model, m, err, sizeof(err)) < 0) {
        fprintf(stderr, "catanet-mkmodel: %s\n", err);
        catanet_model_free(m);
        return 1;
    }
    printf("catanet-mkmodel: wrote %s: x%d, %d groups, %lld parameters\n", outp, scale, info.num_groups,
           (long long)m->info.num_params);
    catanet_model_free(m);
    return 0;
}
