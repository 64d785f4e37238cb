/* The planner: for each call, the algorithm with the lowest predicted time among those that
 * can run it (the registry, algorithms/registry.c), cached per call shape; PODCCL_ALGO overrides
 * it per collective; explain prints every candidate. */
#ifndef PODCCL_TUNE_H
#define PODCCL_TUNE_H

#include "algorithms/algo.h"
#include "src/comm.h"

/* Creates comm->tune from the override spec (PODCCL_ALGO syntax: "ring", or
 * "allreduce:hier,allgather:bruck"); podcclInvalidArgument naming what is wrong. */
podcclResult_t tune_init(podcclComm_t comm, const char *spec);
/* What the memory-semantic domain offers (after the transports connected). */
void tune_set_domain(podcclComm_t comm, size_t direct_bytes, int cma);
/* Every rank's measured reduction speed: the planner uses the slowest, so that all ranks
 * predict the same times and choose the same algorithms. Collective. */
podcclResult_t tune_agree(podcclComm_t comm);
void tune_free(podcclComm_t comm);
/* The algorithm for a (checked) call; podcclInvalidUsage when a forced one cannot run it. */
podcclResult_t tune_pick(podcclComm_t comm, const pc_args *a, const pc_algo_desc **algo);
/* Every candidate for a with its predicted time (or why it cannot run), and the choice. */
void tune_explain(podcclComm_t comm, const pc_args *a, char *buf, size_t len);
/* The planner's environment (levels and domain facts) of comm. */
const pc_env *tune_env(podcclComm_t comm);

#endif
