/* Waiting and liveness (wait.h). */
#include "src/wait.h"
#include "src/trace.h"

#include <sched.h>
#include <time.h>
#include <unistd.h>

#define CHECK_PERIOD 0.005 /* seconds between liveness/timeout checks while idle */
#define NET_NAP_NS 20000   /* one nap */

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

void pc_publish_failure(podcclComm_t comm, int culprit, podcclResult_t rc) {
    if (comm->live) comm->live->publish_failure(comm->live_dom, culprit, rc);
    /* Other hosts learn it over the bootstrap ring, hop by hop (each rank passes it on once). */
    if (comm->nranks > 1 && comm->boot.next_fd >= 0 && !comm->boot.aborted) {
        char why[160];
        snprintf(why, sizeof(why), "rank %d %s (reported by rank %d)", culprit,
                 rc == podcclTimeout ? "stopped making progress" : "exited or aborted", comm->rank);
        boot_send_abort_rc(&comm->boot, culprit,
                           rc == podcclTimeout ? podcclTimeout : podcclRemoteError, why);
    }
}

/* A failure another host reported over the bootstrap ring (an abort notice; a neighbour's
 * closed socket only matters for a peer this rank waits on, see peer_gone). */
static podcclResult_t ring_cause(podcclComm_t comm) {
    int culprit, rc;
    char why[256];
    if (!comm->tr || !comm->tr->net ||
        !boot_poll_notice(&comm->boot, &culprit, &rc, why, sizeof(why)))
        return podcclSuccess;
    if (rc != podcclInvalidUsage && rc != podcclTimeout) rc = podcclRemoteError;
    /* A mismatch notice names both calls, as the network transport's notice does. */
    int reporter;
    pc_sig rep, cul;
    if (rc == podcclInvalidUsage && boot_notice_calls(&comm->boot, &reporter, &rep, &cul))
        return pc_mismatch_notice(comm, reporter, culprit, &rep, &cul);
    if (comm->live && culprit >= 0 && rc != podcclInvalidUsage)
        comm->live->publish_failure(comm->live_dom, culprit, (podcclResult_t)rc);
    return pc_err(comm, (podcclResult_t)rc, "rank %d: %s", comm->rank, why);
}

void pc_heartbeat(podcclComm_t comm) {
    if (comm->live) comm->live->heartbeat(comm->live_dom, (uint64_t)(pc_now() * 1e3));
}

/* The first cause a peer published (in the liveness domain, readable even after that peer
 * exited): adopt it, publish it on, and report it. podcclSuccess when there is none. */
static podcclResult_t published_cause(podcclComm_t comm) {
    int culprit, reporter;
    podcclResult_t rc;
    if (!comm->live || !comm->live->failure_seen(comm->live_dom, &culprit, &reporter, &rc))
        return podcclSuccess;
    pc_publish_failure(comm, culprit, rc);
    return pc_err(comm, rc == podcclTimeout ? podcclTimeout : podcclRemoteError,
                  "rank %d: rank %d failed (%s; reported by rank %d)", comm->rank, culprit,
                  rc == podcclTimeout ? "stopped making progress" : "exited or aborted", reporter);
}

podcclResult_t pc_wait_gone(podcclComm_t comm, const pc_wait *w) {
    /* A peer that published a failure and then left (w->gone among them) is not the cause. */
    podcclResult_t first = published_cause(comm);
    if (first != podcclSuccess) return first;
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
     * the links (docs/multihost.md). On one host, after PODCCL_SHM_NAP_US: a rank that waits
     * long for a late peer leaves its core to computation that overlaps the collective (DDP's
     * backward pass runs beside the all-reduce of earlier buckets). Short waits still spin. */
    const double nap_after = comm->tr->net ? comm->ex->nap_after : comm->ex->shm_nap_after;
    if (nap_after >= 0 && w->idle_since > 0 && w->last_now - w->idle_since > nap_after) {
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
    /* Published failures before exits: a survivor that reported the first cause may have exited
     * already, and must not be taken for the cause. */
    podcclResult_t first = published_cause(comm);
    if (first == podcclSuccess) first = ring_cause(comm);
    if (first != podcclSuccess) return first;
    for (int i = 0; i < npeers; i++)
        if (peer_gone(comm, peers[i])) {
            /* Not an error yet: the peer may have delivered everything and exited after our
             * last look. The caller checks once more, then calls pc_wait_gone. */
            w->gone = peers[i];
            return podcclInProgress;
        }
    if (now - w->idle_since > comm->timeout) {
        int culprit = comm->live ? comm->live->stalest(comm->live_dom, now) : -1;
        if (culprit < 0) culprit = npeers ? peers[0] : -1;
        pc_publish_failure(comm, culprit, podcclTimeout);
        trace_timeout(comm, culprit, peers, npeers);
        return pc_err(
            comm, podcclTimeout,
            "rank %d: no progress for %.0f s waiting for rank %d (timeout %.0f s, from %s)",
            comm->rank, now - w->idle_since, culprit, comm->timeout, comm->timeout_src);
    }
    return podcclSuccess;
}

/* ---- init ---------------------------------------------------------------------------------- */

static podcclResult_t peer_died_now(podcclComm_t comm, int peer) {
    char host[64] = "?";
    gethostname(host, sizeof(host) - 1);
    pc_publish_failure(comm, peer, podcclRemoteError);
    return pc_err(comm, podcclRemoteError, "rank %d: rank %d (pid %d on host %s) died during init",
                  comm->rank, peer, (int)comm->topo->pids[peer], host);
}

/* A peer that failed init exits right after telling the others why: give its notice (bootstrap
 * ring or shared memory) a moment to arrive before blaming its exit. */
podcclResult_t pc_init_peer_died(podcclComm_t comm, int peer) {
    char why[256];
    for (double end = pc_now() + 0.1; pc_now() < end; usleep(1000)) {
        int c2;
        if (boot_poll_abort(&comm->boot, &c2, why, sizeof(why))) {
            if (c2 >= 0) pc_publish_failure(comm, c2, podcclRemoteError);
            return pc_err(comm, podcclRemoteError, "rank %d: init aborted: %s", comm->rank, why);
        }
        podcclResult_t pub = published_cause(comm);
        if (pub != podcclSuccess) return pub;
    }
    return peer_died_now(comm, peer);
}

int pc_init_dead_peer(podcclComm_t comm, int *peer) {
    if (!comm->live || !comm->topo) return 0;
    for (int i = 0; i < comm->topo->nlocal; i++) {
        int p = comm->topo->local_ranks[i];
        if (p != comm->rank && comm->live->peer_dead(comm->live_dom, p)) {
            *peer = p;
            return 1;
        }
    }
    return 0;
}

podcclResult_t pc_init_check(podcclComm_t comm) {
    int culprit;
    char why[256];
    if (boot_poll_abort(&comm->boot, &culprit, why, sizeof(why))) {
        if (culprit >= 0) pc_publish_failure(comm, culprit, podcclRemoteError);
        return pc_err(comm, podcclRemoteError, "rank %d: init aborted: %s", comm->rank, why);
    }
    /* A cause a peer published first: a peer that exits after publishing is not the culprit. */
    podcclResult_t pub = published_cause(comm);
    if (pub != podcclSuccess) return pub;
    if (pc_init_dead_peer(comm, &culprit)) return pc_init_peer_died(comm, culprit);
    return podcclSuccess;
}

int pc_init_culprit(podcclComm_t comm, podcclResult_t rc) {
    int culprit, reporter;
    podcclResult_t prc;
    char why[8];
    if (comm->live && comm->live->published(comm->live_dom, &culprit, &prc)) return culprit;
    if (boot_poll_abort(&comm->boot, &culprit, why, sizeof(why))) return culprit;
    if (comm->live && comm->live->failure_seen(comm->live_dom, &culprit, &reporter, &prc))
        return culprit;
    if (pc_init_dead_peer(comm, &culprit)) return culprit;
    return rc == podcclRemoteError || rc == podcclTimeout ? -1 : comm->rank;
}
