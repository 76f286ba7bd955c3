/*
 * train_cuda_dl.c: model_train_cuda.h's entry points in catanet-train and the tests, forwarded to
 * the CUDA plugin (engine/cuda_plugin.h), which holds model_train_cuda.c. Without the plugin (or
 * the CUDA runtime) creating a plan fails with the loader's reason; the rest need a plan.
 */
#include "cuda_plugin.h"
#include "error.h"
#include "model_train_cuda.h"

int catanet_train_cuda_create(CatanetTrainCuda **out, CatanetModel *m, int batch, int h, int w, char *err,
                              size_t es)
{
    *out = NULL;
    char why[1024];
    const CatanetCudaPlugin *p = catanet_cuda_plugin(why, sizeof(why));
    if (!p)
        return catanet_errf(err, es, CATANET_ERR_NO_DEVICE, "CUDA is not available: %s", why);
    return p->train_create(out, m, batch, h, w, err, es);
}

/* every other entry point takes a plan, which only exists when the plugin loaded */
static const CatanetCudaPlugin *P(void)
{
    return catanet_cuda_plugin(NULL, 0);
}

void catanet_train_cuda_free(CatanetTrainCuda *p)
{
    if (p)
        P()->train_free(p);
}
int catanet_train_cuda_forward(CatanetTrainCuda *p, const float *lr, const float *hr, float *out, double *loss)
{
    return P()->train_forward(p, lr, hr, out, loss);
}
int catanet_train_cuda_backward(CatanetTrainCuda *p) { return P()->train_backward(p); }
int catanet_train_cuda_zero_grads(CatanetTrainCuda *p) { return P()->train_zero_grads(p); }
int catanet_train_cuda_get_weights(CatanetTrainCuda *p, CatanetModel *m) { return P()->train_get_weights(p, m); }
int catanet_train_cuda_set_weights(CatanetTrainCuda *p, const CatanetModel *m) { return P()->train_set_weights(p, m); }
int catanet_train_cuda_get_grads(CatanetTrainCuda *p, CatanetModel *g) { return P()->train_get_grads(p, g); }
int catanet_train_cuda_adam(CatanetTrainCuda *p, float lr, float b1, float b2, float eps, int64_t t, float gscale)
{
    return P()->train_adam(p, lr, b1, b2, eps, t, gscale);
}
int catanet_train_cuda_step(CatanetTrainCuda *p, const float *lr, const float *hr, double *loss, double *gnorm)
{
    return P()->train_step(p, lr, hr, loss, gnorm);
}
int catanet_train_cuda_undo(CatanetTrainCuda *p) { return P()->train_undo(p); }
int catanet_train_cuda_get_adam(CatanetTrainCuda *p, CatanetModel *m, CatanetModel *v) { return P()->train_get_adam(p, m, v); }
int catanet_train_cuda_set_adam(CatanetTrainCuda *p, const CatanetModel *m, const CatanetModel *v)
{
    return P()->train_set_adam(p, m, v);
}
int catanet_train_cuda_sync(CatanetTrainCuda *p) { return P()->train_sync(p); }
const char *catanet_train_cuda_device(const CatanetTrainCuda *p) { return p ? P()->train_device(p) : "none"; }
const char *catanet_train_cuda_error(const CatanetTrainCuda *p) { return p ? P()->train_error(p) : "no plan"; }
