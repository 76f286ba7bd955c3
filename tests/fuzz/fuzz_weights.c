/*
 * fuzz_weights.c: libFuzzer target over the weight readers: a zip input goes through the .pth
 * reader (zip layer + restricted pickle interpreter + tensor extraction), anything else through the
 * safetensors parser; whatever parses is read as float32 and built into a model (architecture from
 * catanet_arch metadata or inferred from shapes, every tensor checked). Small inputs that look like
 * JSON also go through the catanet_arch parser. Build: make fuzz (clang, ASan + UBSan).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"
#include "pth.h"
#include "safetensors.h"

#define MAX_READ_BYTES (64u << 20) /* float copies the target makes per input */

/* an error must come with a message: a silent failure is a finding too */
static void require_message(int ret, const char *err)
{
    if (ret < 0 && (!err[0] || !memchr(err, 0, 512)))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[512];
    CatanetSt *st = NULL;
    int ret;
    err[0] = 0;
    if (catanet_pth_is_zip(data, size))
        ret = catanet_pth_parse(&st, data, size, CATANET_PTH_NO_CRC, err, sizeof(err));
    else
        ret = catanet_st_parse(&st, data, size, err, sizeof(err));
    require_message(ret, err);
    if (ret == 0) {
        size_t budget = MAX_READ_BYTES;
        for (int i = 0; i < st->n; i++) {
            const CatanetStTensor *t = &st->tensors[i];
            size_t nb = (size_t)t->numel * sizeof(float);
            if (t->numel < 0 || nb > budget)
                continue;
            budget -= nb;
            float *x = malloc(nb ? nb : 1);
            if (x) {
                int r = catanet_st_read_f32(t, x);
                (void)r;
                free(x);
            }
            (void)catanet_st_get(st, t->name);
        }
        CatanetModel *m = NULL;
        err[0] = 0;
        ret = catanet_model_from_st(&m, st, "fuzz", err, sizeof(err));
        require_message(ret, err);
        catanet_model_free(m);
        catanet_st_close(st);
    }
    if (size && size < 4096 && data[0] == '{') {
        char *text = malloc(size + 1);
        if (text) {
            memcpy(text, data, size);
            text[size] = 0;
            CatanetModelInfo info;
            err[0] = 0;
            ret = catanet_arch_from_json(&info, text, err, sizeof(err));
            require_message(ret, err);
            if (ret == 0) {
                char *again = catanet_arch_to_json(&info);
                CatanetModelInfo back;
                if (!again || catanet_arch_from_json(&back, again, err, sizeof(err)) < 0 ||
                    memcmp(&back.groups, &info.groups, sizeof(info.groups)) || back.dim != info.dim)
                    abort(); /* a valid architecture must survive its own JSON round trip */
                free(again);
            }
            free(text);
        }
    }
    return 0;
}
