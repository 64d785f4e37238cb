/* Waiting and liveness: how a rank waits without burning a core, and how it learns that a peer
 * died, stopped, or broke. The executor, the memory-semantic algorithms and the shared-memory
 * domain wait through this module; a domain that can see peers (shared memory: heartbeats,
 * pidfds, failure words) plugs in through pc_live_ops (transports/transport.h). */
#ifndef PODCCL_WAIT_H
#define PODCCL_WAIT_H

#include "src/comm.h"

/* Waiting without progress: spin briefly, then yield the core (runs with more ranks than
 * cores stay fast); every few milliseconds check abort, the peers' liveness and the timeout. */
typedef struct {
    unsigned polls;
    double idle_since, next_check, last_now;
    int gone; /* the peer found dead by the last pc_wait_idle */
} pc_wait;

static inline void pc_wait_reset(pc_wait *w) {
    w->polls = 0, w->idle_since = 0, w->last_now = 0;
}
/* Call when a poll found nothing to do. Returns podcclRemoteError (comm aborted, or a failure
 * another rank published) or podcclTimeout (no progress for comm->timeout seconds, or another
 * rank's published timeout), naming the rank; podcclInProgress when one of peers has exited: the
 * caller must look at its condition once more (the peer may have finished its part just before
 * exiting) and, if it still cannot go on, return pc_wait_gone(). A failure a peer published
 * comes first: a peer that reported the first cause and then exited is never the culprit. */
podcclResult_t pc_wait_idle(podcclComm_t comm, pc_wait *w, const int *peers, int npeers);
/* w->gone exited while we needed it. If some peer (w->gone included) published a failure before,
 * reports that first cause (its error, naming its culprit); else publishes and reports that
 * w->gone exited (podcclRemoteError). */
podcclResult_t pc_wait_gone(podcclComm_t comm, const pc_wait *w);
/* During init, local peer has died: waits up to 100 ms for a cause it or another rank reported
 * (an abort notice, a published failure: the peer may have exited after failing), and returns
 * that; else publishes that peer died and returns podcclRemoteError "rank R: rank P (pid N on
 * host H) died during init". */
podcclResult_t pc_init_peer_died(podcclComm_t comm, int peer);
/* During init: 1 with *peer when a local peer has died (its pidfd), 0 otherwise. Never blocks. */
int pc_init_dead_peer(podcclComm_t comm, int *peer);
/* During init, in every wait loop: podcclSuccess, or podcclRemoteError/podcclTimeout when init
 * failed elsewhere (an abort notice on the bootstrap ring, a local peer that died, a cause a
 * local peer published), naming the rank to blame. Never blocks. */
podcclResult_t pc_init_check(podcclComm_t comm);
/* The rank to blame for this rank's failed init (rc, with the last error message in this
 * thread): the cause this rank published, else an abort notice received, else a cause a local
 * peer published, else a local peer found dead, else this rank itself when the error is its own
 * (not RemoteError or Timeout), else -1 (unknown). Never blocks. */
int pc_init_culprit(podcclComm_t comm, podcclResult_t rc);
/* Publishes a failure to the liveness domain (nothing without one). */
void pc_publish_failure(podcclComm_t comm, int culprit, podcclResult_t rc);
/* Refreshes this rank's heartbeat (nothing without a liveness domain). */
void pc_heartbeat(podcclComm_t comm);

#endif
