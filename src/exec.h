/* The executor: walks a schedule, posts each step on the connection to its peer, polls
 * completions, keeps a bounded number of chunks in flight, and turns a dead or silent peer
 * into an error instead of a hang (through src/wait.h). */
#ifndef PODCCL_EXEC_H
#define PODCCL_EXEC_H

#include "algorithms/algo.h"
#include "src/comm.h"

/* Runs the schedule to completion. */
podcclResult_t pc_exec(podcclComm_t comm, pc_sched *s);

#endif
