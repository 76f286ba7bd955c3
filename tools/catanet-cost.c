/*
 * catanet-cost: the work of one frame, counted from the architecture (no run): FLOPs per part of
 * the network and the bytes it must move, and from them the roofline time on a GPU.
 *   catanet-cost -m MODEL [-s WxH]... [--json]
 *
 * Bytes are counted two ways, for activations stored in fp32 and in fp16:
 *   op-by-op   every op reads its inputs from memory and writes its output (what a kernel per op,
 *              with attention fused, moves; the CUDA backend is close to this today)
 *   fused      the floor for this network: the clustering is global, so a group cannot be one
 *              pass; it needs 6 passes over the N x C features (cluster; IASA+IRCA+proj+residual;
 *              ConvFFN; LRSA; ConvFFN; mid_conv+residual): about 12 N x C reads and writes a group,
 *              plus the first conv, the upsampler and the output (weights are < 1 MB)
 * The roofline time is max(bytes / bandwidth, FLOPs / peak) with the datasheet figures of an H100
 * SXM (3.35 TB/s; 989 TFLOP/s fp16 tensor cores, 67 TFLOP/s fp32) and an H200 (4.8 TB/s, same
 * compute). FLOPs count a multiply-add as 2; exp and other element-wise work is not counted.
 */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "forward_cpu.h"
#include "kernels.h"
#include "model.h"

typedef struct Cost {
    const char *name;
    double flops, bytes_op; /* bytes_op: op-by-op, in activation elements (times 4 or 2 later) */
} Cost;

enum { FIRST, TAB_CLUSTER, TAB_QKV, TAB_ATTN, TAB_PROJ, FFN, LRSA_QKV, LRSA_ATTN, LRSA_PROJ, MID, UP, LAST, NPART };
static const char *part_name[NPART] = { "first_conv", "tab_cluster", "tab_qkv", "tab_iasa_irca", "tab_proj_conv1x1",
                                        "convffn", "lrsa_qkv", "lrsa_attention", "lrsa_proj", "mid_conv",
                                        "upsampler", "last_conv_bilinear" };

static void count(const CatanetModelInfo *a, int W, int H, Cost *c, double *fused_elems)
{
    double N = (double)W * H, C = a->dim, q = a->qk_dim, m = a->mlp_dim, s = a->upscale;
    for (int i = 0; i < NPART; i++)
        c[i] = (Cost){ part_name[i], 0, 0 };
    c[FIRST].flops = 2 * N * C * 3 * 9;
    c[FIRST].bytes_op = 3 * N + C * N;
    double fused = 3 * N + C * N; /* first conv */
    for (int g = 0; g < a->num_groups; g++) {
        const CatanetGroupInfo *gi = &a->groups[g];
        double M = gi->num_tokens, gs = gi->group_size < N ? gi->group_size : N, ps = gi->patch_size;
        double Np = ceil(N / gs) * gs;
        /* TAB: LayerNorm, similarity to the centers, argmax, sort (ints counted as elements) */
        c[TAB_CLUSTER].flops += 2 * N * C * M;
        c[TAB_CLUSTER].bytes_op += 2 * C * N + C * N + 3 * N;
        c[TAB_QKV].flops += 2 * N * C * (2 * q + C);
        c[TAB_QKV].bytes_op += C * N + (2 * q + C) * N;
        /* IASA: each query against its own and the next subgroup (2gs keys); IRCA: against M centers */
        c[TAB_ATTN].flops += 2 * Np * 2 * gs * (q + C) + 2 * Np * M * (q + C);
        c[TAB_ATTN].bytes_op += (2 * q + C) * N * 2 + N + C * N; /* q,k,v (k,v twice: own + next), ord, out */
        c[TAB_PROJ].flops += 2 * 2 * N * C * C;
        c[TAB_PROJ].bytes_op += 2 * (C * N + C * N) + 3 * C * N; /* proj, conv1x1, residual */
        /* LRSA over overlapping ps x ps patches */
        int rs[4096], cs[4096];
        int nr = catanet_lrsa_starts(H, (int)ps, rs, 4096), nc = catanet_lrsa_starts(W, (int)ps, cs, 4096);
        double P = (double)nr * nc, T = ps * ps;
        c[LRSA_QKV].flops += 2 * P * T * C * (2 * q + C);
        c[LRSA_QKV].bytes_op += 2 * P * T * C + P * T * (2 * q + C); /* gather + LN, q/k/v out */
        c[LRSA_ATTN].flops += 2 * P * T * T * (q + C);
        c[LRSA_ATTN].bytes_op += P * T * (2 * q + C) + P * T * C;
        c[LRSA_PROJ].flops += 2 * P * T * C * C;
        c[LRSA_PROJ].bytes_op += P * T * C + 2 * P * T * C + 2 * C * N; /* proj, scatter-add, band scale */
        /* two ConvFFNs (TAB's and LRSA's): LN, fc1, GELU, 5x5 depthwise, GELU + add, fc2, residual */
        for (int k = 0; k < 2; k++) {
            c[FFN].flops += 2 * N * C * m + 2 * N * m * 25 + 2 * N * m * C;
            c[FFN].bytes_op += 2 * C * N + (C * N + m * N) + 2 * m * N + 2 * m * N + 3 * m * N + (m * N + C * N) +
                               3 * C * N;
        }
        c[MID].flops += 2 * N * C * C * 9;
        c[MID].bytes_op += 2 * C * N + 2 * C * N; /* conv, then the group's residual */
        /* the fused floor: 6 passes, 12 N x C reads and writes (header comment), LRSA's overlap on top */
        double ovl = P * T / N;
        fused += (1 + 2 + 2 + (ovl + 1) + 2 + 3) * C * N + 3 * N;
    }
    if (s == 4) {
        c[UP].flops = 2 * N * C * 4 * C * 9 + 2 * 4 * N * C * 4 * C * 9;
        c[UP].bytes_op = C * N + 4 * C * N + 4 * C * N + 16 * C * N;
        fused += C * N + 4 * C * N * 2; /* one intermediate at 2x; the 4x features are consumed in place */
    } else if (s > 1) {
        c[UP].flops = 2 * N * C * s * s * C * 9;
        c[UP].bytes_op = C * N + s * s * C * N;
        fused += C * N;
    }
    c[LAST].flops = 2 * s * s * N * C * 3 * 9;
    c[LAST].bytes_op = s * s * C * N + 3 * N + 3 * s * s * N;
    fused += 3 * N + 3 * s * s * N; /* the input again for the bilinear base, the output */
    *fused_elems = fused;
}

#define PROG "catanet-cost"

static int usage(FILE *f, int rc)
{
    fprintf(f, "usage: catanet-cost -m MODEL [-s WxH]... (default 960x540, at most 16, sides up to 32768) [--json]\n"
               "       [--help] [--version]\n" CLI_MODEL_HELP);
    return rc;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = { { "json", no_argument, NULL, 'J' },
                                              { "list-models", no_argument, NULL, CLI_OPT_LIST_MODELS },
                                              { "help", no_argument, NULL, 'h' },
                                              { "version", no_argument, NULL, 'V' },
                                              { NULL, 0, NULL, 0 } };
    const char *model = NULL;
    int json = 0, ns = 0, sizes[16][2], c;
    while ((c = getopt_long(argc, argv, "m:s:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'm': model = optarg; break;
        case 's':
            if (ns == 16) {
                fprintf(stderr, PROG ": at most 16 sizes\n");
                return 2;
            }
            if (cli_size(PROG, "-s", optarg, 32768, &sizes[ns][0], &sizes[ns][1]) < 0)
                return 2;
            ns++;
            break;
        case 'J': json = 1; break;
        case 'h': return usage(stdout, 0);
        case 'V': cli_version(PROG); return 0;
        case CLI_OPT_LIST_MODELS: return cli_list_models(PROG);
        default: return usage(stderr, 2);
        }
    }
    if (!model || optind != argc) {
        fprintf(stderr, PROG ": %s\n", !model ? "-m MODEL is required" : "unexpected argument");
        return usage(stderr, 2);
    }
    if (!ns) {
        sizes[0][0] = 960;
        sizes[0][1] = 540;
        ns = 1;
    }
    CatanetModel *m;
    char err[512];
    if (catanet_model_load(&m, model, err, sizeof(err)) < 0) {
        fprintf(stderr, "catanet-cost: %s\n", err);
        return 1;
    }
    const CatanetModelInfo *a = &m->info;
    for (int k = 0; k < ns; k++) {
        int W = sizes[k][0], H = sizes[k][1];
        if (W < catanet_min_side(a) || H < catanet_min_side(a)) {
            fprintf(stderr, "catanet-cost: %dx%d is below the smallest side (%d)\n", W, H, catanet_min_side(a));
            catanet_model_free(m);
            return 1;
        }
        Cost c[NPART];
        double fused, flops = 0, op = 0;
        count(a, W, H, c, &fused);
        for (int i = 0; i < NPART; i++) {
            flops += c[i].flops;
            op += c[i].bytes_op;
        }
        /* roofline ms: memory at the bandwidth, compute at the peak for that precision */
        const double bw_h100 = 3.35e12, bw_h200 = 4.8e12, tc16 = 989e12, fp32 = 67e12;
        double roof16_h100 = fmax(fused * 2 / bw_h100, flops / tc16) * 1e3;
        double roof16_h200 = fmax(fused * 2 / bw_h200, flops / tc16) * 1e3;
        double roof32_h100 = fmax(fused * 4 / bw_h100, flops / fp32) * 1e3;
        if (json) {
            printf("{\"model\":\"%s\",\"groups\":%d,\"dim\":%d,\"scale\":%d,\"in\":\"%dx%d\",\"gflops\":%.2f,"
                   "\"gbytes_op_fp32\":%.3f,\"gbytes_op_fp16\":%.3f,\"gbytes_fused_fp16\":%.3f,"
                   "\"roofline_ms_fp16_h100\":%.3f,\"roofline_ms_fp16_h200\":%.3f,\"roofline_ms_fp32_h100\":%.3f,\"parts\":{",
                   model, a->num_groups, a->dim, a->upscale, W, H, flops / 1e9, op * 4 / 1e9, op * 2 / 1e9,
                   fused * 2 / 1e9, roof16_h100, roof16_h200, roof32_h100);
            for (int i = 0; i < NPART; i++)
                printf("%s\"%s\":{\"gflops\":%.3f,\"gbytes_op_fp32\":%.4f}", i ? "," : "", c[i].name, c[i].flops / 1e9,
                       c[i].bytes_op * 4 / 1e9);
            printf("}}\n");
            continue;
        }
        printf("%s: %d groups, dim %d, x%d, %dx%d -> %dx%d\n", model, a->num_groups, a->dim, a->upscale, W, H,
               W * a->upscale, H * a->upscale);
        printf("  %-20s %10s %14s\n", "part", "GFLOP", "GB op-by-op fp32");
        for (int i = 0; i < NPART; i++)
            printf("  %-20s %10.2f %14.3f\n", c[i].name, c[i].flops / 1e9, c[i].bytes_op * 4 / 1e9);
        printf("  %-20s %10.2f %14.3f\n", "total", flops / 1e9, op * 4 / 1e9);
        printf("  bytes per frame: op-by-op %.2f GB (fp32) / %.2f GB (fp16); fused floor %.2f GB (fp16)\n", op * 4 / 1e9,
               op * 2 / 1e9, fused * 2 / 1e9);
        printf("  roofline: fp16 %.2f ms on an H100 SXM, %.2f ms on an H200 (%s-bound); fp32 on CUDA cores %.2f ms (H100)\n",
               roof16_h100, roof16_h200, fused * 2 / bw_h100 > flops / tc16 ? "memory" : "compute", roof32_h100);
    }
    catanet_model_free(m);
    return 0;
}
