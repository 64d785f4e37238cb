#ifndef PODCCL_ENQUEUE_H
#define PODCCL_ENQUEUE_H
#include "algorithms/algo.h"
#include "src/comm.h"
/* Runs one checked collective now, on the calling thread. */
podcclResult_t pc_run(podcclComm_t comm, const pc_args *a);
/* Operations on comm (registration `serial`) that the calling thread has queued in its open
 * group: podcclCommDestroy refuses to free comm while there are any. */
int pc_group_pending(podcclComm_t comm, uint64_t serial);
/* Removes them from the open group (they will never run); returns how many (podcclCommAbort). */
int pc_group_drop(podcclComm_t comm, uint64_t serial);
#endif
