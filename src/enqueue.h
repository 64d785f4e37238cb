#ifndef PODCCL_ENQUEUE_H
#define PODCCL_ENQUEUE_H
#include "algorithms/algo.h"
#include "src/comm.h"
/* Runs one checked collective now, on the calling thread. */
podcclResult_t pc_run(podcclComm_t comm, const pc_args *a);
#endif
