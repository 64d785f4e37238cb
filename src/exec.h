/* The executor: walks a schedule, posts each step on the connection to its peer, polls
 * completions, keeps a bounded number of chunks in flight, and turns a dead or silent peer
 * into an error instead of a hang. */
#ifndef PODCCL_EXEC_H
#define PODCCL_EXEC_H

#include "algorithms/algo.h"
#include "src/comm.h"

/* Waiting without progress: spin briefly, then yield the core (runs with more ranks than
 * cores stay fast); every few milliseconds check abort, the peers' liveness and the timeout. */
typedef struct {
    unsigned polls;
    double idle_since, next_check;
    int gone; /* the peer found dead by the last pc_wait_idle */
} pc_wait;

static inline void pc_wait_reset(pc_wait *w) {
    w->polls = 0, w->idle_since = 0;
}
/* Call when a poll found nothing to do. Returns podcclRemoteError (comm aborted, or a failure
 * another rank published) or podcclTimeout (no progress for comm->timeout seconds), naming the
 * rank; podcclInProgress when one of peers has exited: the caller must look at its condition
 * once more (the peer may have finished its part just before exiting) and, if it still cannot
 * go on, return pc_wait_gone(). */
podcclResult_t pc_wait_idle(podcclComm_t comm, pc_wait *w, const int *peers, int npeers);
/* Records and publishes that w->gone exited; returns podcclRemoteError. */
podcclResult_t pc_wait_gone(podcclComm_t comm, const pc_wait *w);

/* Runs the schedule to completion. */
podcclResult_t pc_exec(podcclComm_t comm, pc_sched *s);

#endif
