/* Waiting and liveness (wait.h). */
#include "src/wait.h"

#include <sched.h>
#include <time.h>

#define CHECK_PERIOD 0.005 /* seconds between liveness/timeout checks while idle */
#define NET_NAP_NS 20000   /* one nap */

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

void pc_publish_failure(podcclComm_t comm, int culprit, podcclResult_t rc) {
    if (comm->live) comm->live->publish_failure(comm->live_dom, culprit, rc);
}

void pc_heartbeat(podcclComm_t comm) {
    if (comm->live) comm->live->heartbeat(comm->live_dom, (uint64_t)(pc_now() * 1e3));
}

podcclResult_t pc_wait_gone(podcclComm_t comm, const pc_wait *w) {
    pc_publish_failure(comm, w->gone, podcclRemoteError);
    if (comm->topo->host_of[w->gone] != comm->topo->host)
        return pc_err(comm, podcclRemoteError,
                      "rank %d: peer rank %d (pid %d on another host) has exited or its host is "
                      "unreachable (its bootstrap connection closed)",
                      comm->rank, w->gone, (int)comm->topo->pids[w->gone]);
    return pc_err(comm, podcclRemoteError, "rank %d: peer rank %d (pid %d) has exited", comm->rank,
                  w->gone, (int)comm->topo->pids[w->gone]);
}

static int peer_gone(podcclComm_t comm, int peer) {
    if (comm->live && comm->live->peer_dead(comm->live_dom, peer)) return 1;
    return comm->topo->local_idx[peer] < 0 && boot_peer_gone(&comm->boot, peer);
}

podcclResult_t pc_wait_idle(podcclComm_t comm, pc_wait *w, const int *peers, int npeers) {
    if (w->polls++ < (unsigned)comm->ex->spin) {
        cpu_relax();
        return podcclSuccess;
    }
    /* Across hosts, a rank idle for more than PODCCL_NET_NAP_US sleeps briefly instead of
     * only yielding: the kernel's network processing (softirq threads, TCP, tbf) needs the cores
     * that spinning ranks would take, and on a machine with more ranks than cores it starved
     * the links (docs/multihost.md). Short waits, where latency matters, still spin. */
    if (comm->tr->net && comm->ex->nap_after >= 0 && w->idle_since > 0 &&
        w->last_now - w->idle_since > comm->ex->nap_after) {
        struct timespec ts = {0, NET_NAP_NS};
        nanosleep(&ts, NULL);
    } else {
        sched_yield();
    }
    if ((w->polls & 63) != 0 && !(comm->tr->net && w->idle_since > 0)) return podcclSuccess;
    double now = pc_now();
    w->last_now = now;
    if (w->idle_since == 0) {
        w->idle_since = now;
        w->next_check = now;
    }
    if (now < w->next_check) return podcclSuccess;
    w->next_check = now + CHECK_PERIOD;
    pc_heartbeat(comm);
    if (atomic_load(&comm->aborted)) {
        pc_publish_failure(comm, comm->rank, podcclRemoteError);
        return pc_err(comm, podcclRemoteError, "rank %d: communicator aborted", comm->rank);
    }
    for (int i = 0; i < npeers; i++)
        if (peer_gone(comm, peers[i])) {
            /* Not an error yet: the peer may have delivered everything and exited after our
             * last look. The caller checks once more, then calls pc_wait_gone. */
            w->gone = peers[i];
            return podcclInProgress;
        }
    int culprit, reporter;
    podcclResult_t rc;
    if (comm->live && comm->live->failure_seen(comm->live_dom, &culprit, &reporter, &rc)) {
        pc_publish_failure(comm, culprit, rc);
        return pc_err(comm, rc == podcclTimeout ? podcclTimeout : podcclRemoteError,
                      "rank %d: rank %d failed (%s; reported by rank %d)", comm->rank, culprit,
                      rc == podcclTimeout ? "stopped making progress" : "exited or aborted",
                      reporter);
    }
    if (now - w->idle_since > comm->timeout) {
        int culprit = comm->live ? comm->live->stalest(comm->live_dom, now) : -1;
        if (culprit < 0) culprit = npeers ? peers[0] : -1;
        pc_publish_failure(comm, culprit, podcclTimeout);
        return pc_err(comm, podcclTimeout,
                      "rank %d: no progress for %.0f s waiting for rank %d (PODCCL_TIMEOUT=%.0f)",
                      comm->rank, now - w->idle_since, culprit, comm->timeout);
    }
    return podcclSuccess;
}
