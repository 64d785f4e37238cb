/* Algorithm choice: a cost model per collective and size, and the PODCCL_ALGO override. */
#ifndef PODCCL_TUNE_H
#define PODCCL_TUNE_H

#include "algorithms/algo.h"
#include "src/comm.h"

/* Parses PODCCL_ALGO syntax ("ring", "allreduce:direct,alltoall:pairwise") into comm->forced. */
podcclResult_t tune_parse_override(podcclComm_t comm, const char *spec);
/* The algorithm for a (checked) call; podcclInvalidUsage when a forced one cannot run it. */
podcclResult_t tune_pick(podcclComm_t comm, const pc_args *a, pc_algo *algo);
const char *tune_algo_name(pc_algo a);
const char *tune_coll_name(int coll);

#endif
