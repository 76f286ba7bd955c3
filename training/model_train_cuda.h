/*
 * model_train_cuda.h: the device twin of model_train.h's CatanetTrainPlan: CATANet's training-mode
 * forward (spec §1.3, §1.7: center init on the first step, 4 no-grad k-means refinements pooled
 * over the batch, the differentiable fifth, grouping and IRCA from the refined centers, EMA of the
 * means), the L1 loss and the backward on one CUDA device, with the kernels of kernels_cuda.h in
 * the same order as model_train.c. Weights, `means`, gradients and activations live on the device;
 * the host model keeps the architecture and the `initted` flags.
 * catanet-train's train/resume --device cuda loop (training/main.c) runs on catanet_train_cuda_step,
 * _adam (with the clipping factor) and _undo, and reads weights and Adam moments back for checkpoints.
 * Not covered: the pruning/distillation hooks (gates, feature gradients, KD target).
 * The code lives in the CUDA plugin (engine/cuda_plugin.h; training/train_cuda_dl.c forwards): without
 * it, or without the CUDA runtime, catanet_train_cuda_create fails with CATANET_ERR_NO_DEVICE and the reason.
 */
#ifndef CATANET_MODEL_TRAIN_CUDA_H
#define CATANET_MODEL_TRAIN_CUDA_H

#include <stddef.h>
#include <stdint.h>

#include "model.h"

typedef struct CatanetTrainCuda CatanetTrainCuda;

/* A plan for batches of `batch` x 3 x h x w on device 0 (own stream, cuBLAS handle, scratch),
 * with m's weights and `means` uploaded. m must outlive the plan (its `initted` flags are read and
 * set by the forward). Returns 0 or a negative CATANET_ERR_* with a message in err. */
int catanet_train_cuda_create(CatanetTrainCuda **out, CatanetModel *m, int batch, int h, int w, char *err,
                              size_t es);
void catanet_train_cuda_free(CatanetTrainCuda *p);

/* Training-mode forward of lr [B,3,h,w] (host, NCHW): *loss gets the L1 loss against hr
 * [B,3,sh,sw] (host, required; also kept on the device for the backward). out (host, may be NULL) gets the
 * network output [B,3,sh,sw]. Updates the device `means` and m->initted. */
int catanet_train_cuda_forward(CatanetTrainCuda *p, const float *lr, const float *hr, float *out, double *loss);

/* Backward of the last forward's L1 loss: gradients accumulate into the device gradient arena
 * (zeroed by catanet_train_cuda_zero_grads; the `means` slots stay 0). */
int catanet_train_cuda_backward(CatanetTrainCuda *p);
int catanet_train_cuda_zero_grads(CatanetTrainCuda *p);

/* A training step's device work with one synchronisation at its end: saves the weights and means
 * (for catanet_train_cuda_undo), zeroes the gradients, runs the forward (the means' EMA included)
 * and the backward (also when the loss is not finite: the caller decides), and, when gnorm is not
 * NULL, the L2 norm of all gradients. *loss: as catanet_train_cuda_forward's. *gnorm: NaN or Inf
 * when a gradient is not finite, or (rarely) when 1024 consecutive gradient floats have a norm above
 * FLT_MAX: the caller tells the two apart with catanet_train_cuda_get_grads. */
int catanet_train_cuda_step(CatanetTrainCuda *p, const float *lr, const float *hr, double *loss, double *gnorm);
/* puts back the weights and means of before the last catanet_train_cuda_step (a step not applied;
 * the host model's `initted` flags are the caller's to restore) */
int catanet_train_cuda_undo(CatanetTrainCuda *p);

/* One torch.optim.Adam step (t >= 1) of every learnable tensor from the device gradients times
 * gscale (1: as they are; else gradient clipping's factor, applied as one float product per
 * element like the CPU loop's), the `means` buffers left alone, with the moments kept on the
 * device (zero at creation): catanet_adam_update_cuda, the same bits as catanet_adam_update_ref. */
int catanet_train_cuda_adam(CatanetTrainCuda *p, float lr, float b1, float b2, float eps, int64_t t, float gscale);
/* host <-> device copies of the Adam moments (models of the plan's architecture, same offsets) */
int catanet_train_cuda_get_adam(CatanetTrainCuda *p, CatanetModel *m, CatanetModel *v);
int catanet_train_cuda_set_adam(CatanetTrainCuda *p, const CatanetModel *m, const CatanetModel *v);

/* host <-> device copies of the whole arenas (weights with `means`; gradients, same offsets) */
int catanet_train_cuda_get_weights(CatanetTrainCuda *p, CatanetModel *m);
int catanet_train_cuda_set_weights(CatanetTrainCuda *p, const CatanetModel *m);
int catanet_train_cuda_get_grads(CatanetTrainCuda *p, CatanetModel *grads);

/* waits for the plan's stream (for timing) */
int catanet_train_cuda_sync(CatanetTrainCuda *p);
/* the device's name (cudaGetDeviceProperties) */
const char *catanet_train_cuda_device(const CatanetTrainCuda *p);

/* the last failure's detail */
const char *catanet_train_cuda_error(const CatanetTrainCuda *p);

#endif
