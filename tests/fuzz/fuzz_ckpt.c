/*
 * fuzz_ckpt.c: libFuzzer target over catanet-train's checkpoint metadata reader (training/ckpt.c):
 * the input is the metadata values, NUL-separated, in the order of catanet_ckpt_meta_keys
 * (train_config JSON, step, adam_t, skipped, elapsed_s, data_state); missing trailing values are
 * absent keys. A refusal must come with a message; an accepted config must survive a round trip
 * through the writer (catanet_ckpt_config_json, then the reader again, to the same JSON).
 * Build and run: make fuzz-ckpt (clang, ASan + UBSan).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size + 1);
    if (!buf)
        return 0;
    memcpy(buf, data, size);
    buf[size] = 0;
    const char *meta[CKPT_META_N] = { 0 };
    size_t at = 0;
    for (int k = 0; k < CKPT_META_N && at <= size; k++) {
        meta[k] = buf + at;
        at += strlen(buf + at) + 1;
    }
    TrainCfg cfg, again;
    memset(&cfg, 0, sizeof(cfg));
    memset(&again, 0, sizeof(again));
    CkptProgress p;
    char err[512] = "";
    if (catanet_ckpt_parse_meta(meta, &cfg, &p, err, sizeof(err)) < 0) {
        if (!err[0] || !memchr(err, 0, sizeof(err)))
            abort(); /* a refusal without its reason */
    } else {
        if (p.step < 0 || p.adam_t < 0 || p.adam_t > p.step || p.skipped < 0 || !(p.elapsed >= 0) ||
            cfg.batch < 1 || cfg.patch < 1 || cfg.n_data < 1 || cfg.n_data > MAX_DIRS || cfg.n_val > MAX_DIRS ||
            !(cfg.lr >= 0) || cfg.max_bad < 1)
            abort(); /* accepted out of range */
        char *j1 = catanet_ckpt_config_json(&cfg);
        if (j1) {
            if (catanet_ckpt_parse_config(j1, &again, err, sizeof(err)) < 0)
                abort(); /* the writer's own output refused */
            char *j2 = catanet_ckpt_config_json(&again);
            if (j2 && strcmp(j1, j2))
                abort(); /* not the same config after a round trip */
            free(j2);
        }
        free(j1);
    }
    catanet_ckpt_cfg_release(&cfg);
    catanet_ckpt_cfg_release(&again);
    free(buf);
    return 0;
}
