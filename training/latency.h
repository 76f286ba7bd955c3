/*
 * latency.h: measured CPU latency of models and of each residual group, for pruning under a
 * latency budget (latency.c explains the measurement).
 * defines: catanet_latency_ms, catanet_latency_groups, catanet_latency_predict, catanet_latency_cheapest
 */
#ifndef CATANET_TRAINING_LATENCY_H
#define CATANET_TRAINING_LATENCY_H

#include "model.h"

/* ms of one w x h (LR) forward of m on one thread: thread CPU time, the minimum of reps runs after
 * a warm-up run. Returns 0 or a negative CatanetError. */
int catanet_latency_ms(const CatanetModel *m, int w, int h, int reps, double *ms, char *err, size_t es);

/* base_ms: m without its groups; group_ms[g]: what group g adds (its one-group model minus base;
 * groups of identical hyperparameters share the least of their times). */
int catanet_latency_groups(const CatanetModel *m, int w, int h, int reps, double *base_ms, double *group_ms,
                           char *err, size_t es);

/* the additive model: base + the kept groups' increments */
double catanet_latency_predict(double base_ms, const double *group_ms, const int *keep, int n_keep);

/* base + the k cheapest of the kept groups: the fastest k-group student a later stage could still make */
double catanet_latency_cheapest(double base_ms, const double *group_ms, const int *keep, int n_keep, int k);

#endif
