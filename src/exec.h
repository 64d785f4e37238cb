/* The executor: walks a schedule, posts each step on the connection to its peer, polls
 * completions, keeps a bounded number of chunks in flight, and turns a dead or silent peer
 * into an error instead of a hang (through src/wait.h). */
#ifndef PODCCL_EXEC_H
#define PODCCL_EXEC_H

#include "algorithms/algo.h"
#include "src/comm.h"

/* Runs a (checked, planned) call with algorithm d: its run function over the memory-semantic
 * domain, or its schedule, built here (pipeline chunk, temporary, segments: the same on every
 * rank). *started is set once data may move (errors after that break the communicator). */
podcclResult_t pc_exec_call(podcclComm_t comm, const pc_algo_desc *d, const pc_args *a,
                            int *started);
/* Runs the schedule to completion. Its messages carry comm->ex->cur (pc_op_begin, pc_op_p2p). */
podcclResult_t pc_exec(podcclComm_t comm, pc_sched *s);

#endif
