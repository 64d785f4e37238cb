/* Schedule executor. Steps are posted in schedule order per (peer, direction), so both ends of
 * a connection agree on message order without tags; steps on different connections, or waiting
 * on different dependencies, overtake each other. */
#include "src/exec.h"

#include <errno.h>
#include <sched.h>

#include "transports/shm/shm.h"

#define CHECK_PERIOD 0.005 /* seconds between liveness/timeout checks while idle */

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

/* The local rank that stopped refreshing its heartbeat longest ago (more than a second):
 * stopped, or not calling the collective at all. -1 if every rank is waiting with us. */
static int stalest_peer(podcclComm_t comm, double now) {
    int who = -1;
    double worst = 1.0;
    for (int i = 0; i < comm->nlocal && comm->shm; i++) {
        if (i == comm->local_rank) continue;
        double age = now - (double)shm_word_get(comm, i, SHM_W_HEARTBEAT) * 1e-3;
        if (age > worst) worst = age, who = comm->local_ranks[i];
    }
    return who;
}

podcclResult_t pc_wait_gone(podcclComm_t comm, const pc_wait *w) {
    shm_publish_failure(comm, w->gone, podcclRemoteError);
    if (comm->host_of[w->gone] != comm->host)
        return pc_err(comm, podcclRemoteError,
                      "rank %d: peer rank %d (pid %d on another host) has exited or its host is "
                      "unreachable (its bootstrap connection closed)",
                      comm->rank, w->gone, (int)comm->pids[w->gone]);
    return pc_err(comm, podcclRemoteError, "rank %d: peer rank %d (pid %d) has exited", comm->rank,
                  w->gone, (int)comm->pids[w->gone]);
}

podcclResult_t pc_wait_idle(podcclComm_t comm, pc_wait *w, const int *peers, int npeers) {
    if (w->polls++ < (unsigned)comm->spin) {
        cpu_relax();
        return podcclSuccess;
    }
    sched_yield();
    if ((w->polls & 63) != 0) return podcclSuccess;
    double now = pc_now();
    if (w->idle_since == 0) {
        w->idle_since = now;
        w->next_check = now;
    }
    if (now < w->next_check) return podcclSuccess;
    w->next_check = now + CHECK_PERIOD;
    if (comm->shm) shm_word_set(comm, SHM_W_HEARTBEAT, (uint64_t)(now * 1e3));
    if (atomic_load(&comm->aborted)) {
        shm_publish_failure(comm, comm->rank, podcclRemoteError);
        return pc_err(comm, podcclRemoteError, "rank %d: communicator aborted", comm->rank);
    }
    for (int i = 0; i < npeers; i++)
        if (shm_peer_dead(comm, peers[i]) ||
            (comm->host_of[peers[i]] != comm->host && boot_peer_gone(&comm->boot, peers[i]))) {
            /* Not an error yet: the peer may have delivered everything and exited after our
             * last look. The caller checks once more, then calls pc_wait_gone. */
            w->gone = peers[i];
            return podcclInProgress;
        }
    int culprit, reporter;
    podcclResult_t rc;
    if (shm_failure_seen(comm, &culprit, &reporter, &rc)) {
        shm_publish_failure(comm, culprit, rc);
        return pc_err(comm, rc == podcclTimeout ? podcclTimeout : podcclRemoteError,
                      "rank %d: rank %d failed (%s; reported by rank %d)", comm->rank, culprit,
                      rc == podcclTimeout ? "stopped making progress" : "exited or aborted",
                      reporter);
    }
    if (now - w->idle_since > comm->timeout) {
        int culprit = stalest_peer(comm, now);
        if (culprit < 0) culprit = npeers ? peers[0] : -1;
        shm_publish_failure(comm, culprit, podcclTimeout);
        return pc_err(comm, podcclTimeout,
                      "rank %d: no progress for %.0f s waiting for rank %d (PODCCL_TIMEOUT=%.0f)",
                      comm->rank, now - w->idle_since, culprit, comm->timeout);
    }
    return podcclSuccess;
}

enum { ST_WAIT = 0, ST_POSTED, ST_DONE };

/* A connection direction: steps to one peer (sends) or from one peer (receives and
 * receive-reduces), kept in schedule order; copies form a list of their own. */
typedef struct {
    int *steps, n, next; /* step indices, next to post */
    int inflight;
} lane_t;

typedef struct {
    pc_sched *s;
    char *state;
    void **req;
    int *scratch_of; /* scratch slot of a posted RECV_REDUCE */
    int *free_scratch, nfree;
    int *inflight, ninflight; /* indices of posted steps */
    int *lane_of;             /* lane index of each step */
    lane_t *lanes;
    int nlanes;
} exec_t;

static podcclResult_t post_step(podcclComm_t comm, exec_t *e, int i, int *posted) {
    pc_step *st = &e->s->steps[i];
    const pc_transport *tp = comm->tp[st->peer];
    void *conn = comm->conn[st->peer], *req = NULL;
    *posted = 0;
    if (st->kind == PC_STEP_SEND) {
        PCCHECK(tp->isend(conn, st->src, st->bytes, 0, NULL, &req));
    } else if (st->kind == PC_STEP_RECV) {
        PCCHECK(tp->irecv(conn, st->dst, st->bytes, 0, NULL, &req));
    } else {
        int slot = e->free_scratch[e->nfree - 1];
        PCCHECK(tp->irecv(conn, comm->scratch + (size_t)slot * comm->chunk_bytes, st->bytes, 0,
                          NULL, &req));
        if (req) e->scratch_of[i] = slot, e->nfree--;
    }
    if (!req) return podcclSuccess; /* transport busy: retry on a later pass */
    e->req[i] = req;
    e->state[i] = ST_POSTED;
    e->inflight[e->ninflight++] = i;
    e->lanes[e->lane_of[i]].inflight++;
    *posted = 1;
    return podcclSuccess;
}

static void complete_step(podcclComm_t comm, exec_t *e, int i) {
    pc_step *st = &e->s->steps[i];
    if (st->kind == PC_STEP_RECV_REDUCE) {
        int slot = e->scratch_of[i];
        size_t es = pc_type_size(e->s->dtype);
        pc_reduce2(st->dst, st->src, comm->scratch + (size_t)slot * comm->chunk_bytes,
                   st->bytes / es, e->s->dtype, e->s->op);
        e->free_scratch[e->nfree++] = slot;
    }
    e->lanes[e->lane_of[i]].inflight--;
    e->state[i] = ST_DONE;
}

/* Lanes: 2 per peer (send, receive) plus one for copies. Each lane posts in schedule order and
 * has its own bound on steps in flight, so a lane waiting for its peer never blocks another:
 * two ranks that list their peers in different orders still progress. */
static int build_lanes(exec_t *e, int nranks) {
    pc_sched *s = e->s;
    e->nlanes = 2 * nranks + 1;
    e->lanes = calloc((size_t)e->nlanes, sizeof(lane_t));
    e->lane_of = malloc(sizeof(int) * (size_t)s->n);
    int *all = malloc(sizeof(int) * (size_t)s->n);
    if (!e->lanes || !e->lane_of || !all) return free(all), -1;
    for (int i = 0; i < s->n; i++) {
        const pc_step *st = &s->steps[i];
        int l = st->kind == PC_STEP_COPY ? 2 * nranks : 2 * st->peer + (st->kind != PC_STEP_SEND);
        e->lane_of[i] = l;
        e->lanes[l].n++;
    }
    int off = 0;
    for (int l = 0; l < e->nlanes; l++)
        e->lanes[l].steps = all + off, off += e->lanes[l].n, e->lanes[l].n = 0;
    for (int i = 0; i < s->n; i++) {
        lane_t *ln = &e->lanes[e->lane_of[i]];
        ln->steps[ln->n++] = i;
    }
    return 0;
}

podcclResult_t pc_exec(podcclComm_t comm, pc_sched *s) {
    podcclResult_t res = podcclSuccess;
    int n = s->n;
    if (n == 0) return podcclSuccess;
    if (s->max_reduce_bytes > comm->chunk_bytes)
        return pc_err(comm, podcclInternalError, "schedule reduces %zu bytes per step > chunk %zu",
                      s->max_reduce_bytes, comm->chunk_bytes);
    exec_t e = {.s = s};
    int maxin = comm->max_inflight;
    /* Receives from the network run deeper than sends (comm->scratch_slots, 4 x): a receive is
     * what grants the sender its clear-to-send, and that grant travels behind the data already
     * queued towards the peer (socket buffers, the NIC's or switch's queue), so the granted
     * window must exceed that queue or the link idles between grants. Measured on 1 Gbit/s
     * links with 10 ms queues (docs/multihost.md): all-reduce 64 MiB at 85% of the link with
     * receives as deep as sends, 89% at 2 x, 95% at 4 x, 94% at 8 x. Sends to the network keep
     * comm->net_send_depth in flight (the transport's advice, PODCCL_NET_SEND_DEPTH): over
     * sockets, a write completes once the kernel holds it, and writes queued in the provider
     * hold back the clear-to-sends this rank owes the peer. */
    int nscratch = comm->scratch_slots;
    e.state = calloc((size_t)n, 1);
    e.req = calloc((size_t)n, sizeof(void *));
    e.scratch_of = calloc((size_t)n, sizeof(int));
    e.free_scratch = malloc(sizeof(int) * (size_t)nscratch);
    e.inflight = malloc(sizeof(int) * (size_t)n);
    int *peers = malloc(sizeof(int) * (size_t)n);
    if (!e.state || !e.req || !e.scratch_of || !e.free_scratch || !e.inflight || !peers ||
        build_lanes(&e, comm->nranks)) {
        res = pc_err(comm, podcclSystemError, "out of memory in the executor");
        goto out;
    }
    for (int i = 0; i < nscratch; i++) e.free_scratch[e.nfree++] = i;

    int ndone = 0, gone_seen = 0;
    pc_wait w;
    pc_wait_reset(&w);
    while (ndone < n) {
        int progress = 0;
        for (int l = 0; l < e.nlanes; l++) {
            lane_t *ln = &e.lanes[l];
            while (ln->next < ln->n) {
                int i = ln->steps[ln->next];
                pc_step *st = &s->steps[i];
                if (st->dep >= 0 && e.state[st->dep] != ST_DONE) break;
                if (st->kind == PC_STEP_COPY) {
                    if (st->bytes) memmove(st->dst, st->src, st->bytes);
                    e.state[i] = ST_DONE;
                    ndone++, progress = 1, ln->next++;
                    continue;
                }
                int depth = comm->tp[st->peer] != comm->net ? maxin
                            : st->kind == PC_STEP_SEND      ? comm->net_send_depth
                                                            : comm->scratch_slots;
                if (ln->inflight >= depth || (st->kind == PC_STEP_RECV_REDUCE && e.nfree == 0))
                    break;
                int posted;
                PCCHECKGOTO(post_step(comm, &e, i, &posted), res, out);
                if (!posted) break;
                ln->next++;
            }
        }
        /* Drive posted steps. */
        for (int k = 0; k < e.ninflight;) {
            int i = e.inflight[k], done = 0;
            PCCHECKGOTO(comm->tp[s->steps[i].peer]->test(e.req[i], &done, NULL), res, out);
            if (done) {
                complete_step(comm, &e, i);
                e.inflight[k] = e.inflight[--e.ninflight];
                ndone++, progress = 1;
            } else {
                k++;
            }
        }
        if (progress) {
            pc_wait_reset(&w);
            gone_seen = 0;
        } else {
            for (int k = 0; k < e.ninflight; k++) peers[k] = s->steps[e.inflight[k]].peer;
            res = pc_wait_idle(comm, &w, peers, e.ninflight);
            if (res == podcclInProgress) {
                /* A peer exited: fail only if one more pass over the steps moves nothing. */
                if (!gone_seen) {
                    gone_seen = 1;
                    res = podcclSuccess;
                    continue;
                }
                res = pc_wait_gone(comm, &w);
            }
            if (res != podcclSuccess) goto out;
        }
    }
out:
    free(e.state), free(e.req), free(e.scratch_of), free(e.free_scratch), free(e.inflight);
    if (e.lanes) free(e.lanes[0].steps);
    free(e.lanes), free(e.lane_of), free(peers);
    return res;
}
