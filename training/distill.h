/*
 * distill.h: `catanet-train distill`: recovery of a depth-pruned student from its teacher
 * (training-spec §5.5):
 *
 *   L = w_hr L1(S, HR) + w_kd L1(S, T) + beta * sum_l mean_b FAKD(h^S_l, h^T_l)
 *
 * with w_hr = w_kd = 0.5 and beta = 0.04 by default (FAKD's weight 10 on [0,255] images), and the
 * re-mapped alignment points: the student's input to kept group j against the teacher's input to
 * the same original group s_j (j = 1..K-1), plus the end of the body (before the long skip).
 * The kept indices s_j come from the student file's "catanet_kept_groups" metadata (written by
 * prune/extract) or from --map.
 *
 * defines: catanet_distill_main
 */
#ifndef CATANET_TRAINING_DISTILL_H
#define CATANET_TRAINING_DISTILL_H

#include "catanet.h"

/* argv[0] is the subcommand name; returns 0 or a negative CatanetError (the reason went to log) */
int catanet_distill_main(int argc, char **argv, CatanetLogFn log, void *opaque);

#endif
