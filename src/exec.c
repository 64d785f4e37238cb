/* Schedule executor. Steps are posted in schedule order per (peer, direction), so both ends of
 * a connection agree on message order without tags; steps on different connections, or waiting
 * on different dependencies, overtake each other. Sends and receives each have their own bound
 * on steps in flight, so a rank can never fill its window with sends that wait for a peer whose
 * window is full of sends too. */
#include "src/exec.h"

#include <errno.h>
#include <sched.h>

#include "transports/shm/shm.h"

#define SCAN_WINDOW 64
#define CHECK_PERIOD 0.005 /* seconds between liveness/timeout checks while idle */

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

podcclResult_t pc_wait_idle(podcclComm_t comm, pc_wait *w, const int *peers, int npeers) {
    static long spin = -1;
    if (spin < 0) spin = (long)pc_param_int("PODCCL_SHM_SPIN");
    if (w->polls++ < (unsigned)spin) {
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
    if (atomic_load(&comm->aborted)) {
        shm_publish_failure(comm, comm->rank, podcclRemoteError);
        return pc_err(comm, podcclRemoteError, "rank %d: communicator aborted", comm->rank);
    }
    for (int i = 0; i < npeers; i++)
        if (shm_peer_dead(comm, peers[i])) {
            shm_publish_failure(comm, peers[i], podcclRemoteError);
            return pc_err(comm, podcclRemoteError, "rank %d: peer rank %d (pid %d) has exited",
                          comm->rank, peers[i], (int)comm->pids[peers[i]]);
        }
    int culprit, reporter;
    podcclResult_t rc;
    if (shm_failure_seen(comm, &culprit, &reporter, &rc)) {
        shm_publish_failure(comm, culprit, rc);
        return pc_err(comm, rc == podcclTimeout ? podcclTimeout : podcclRemoteError,
                      "rank %d: rank %d failed (%s; reported by rank %d)", comm->rank, culprit,
                      rc == podcclTimeout ? "stopped making progress" : "exited or aborted", reporter);
    }
    if (now - w->idle_since > comm->timeout) {
        int culprit = npeers ? peers[0] : -1;
        shm_publish_failure(comm, culprit, podcclTimeout);
        return pc_err(comm, podcclTimeout,
                      "rank %d: no progress for %.0f s waiting for rank %d (PODCCL_TIMEOUT=%.0f)",
                      comm->rank, now - w->idle_since, culprit, comm->timeout);
    }
    return podcclSuccess;
}

enum { ST_WAIT = 0, ST_POSTED, ST_DONE };

typedef struct {
    pc_sched *s;
    char *state;
    void **req;
    int *scratch_of; /* scratch slot of a posted RECV_REDUCE */
    int *free_scratch, nfree;
    int *inflight, ninflight; /* indices of posted steps */
    int nsend, nrecv;         /* posted, by direction */
    int *mark_send, *mark_recv; /* per peer: scan id that found this direction blocked */
} exec_t;

static int is_send(const pc_step *st) { return st->kind == PC_STEP_SEND; }

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
    if (is_send(st)) e->nsend++;
    else e->nrecv++;
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
    if (is_send(st)) e->nsend--;
    else e->nrecv--;
    e->state[i] = ST_DONE;
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
    e.state = calloc(n, 1);
    e.req = calloc(n, sizeof(void *));
    e.scratch_of = calloc(n, sizeof(int));
    e.free_scratch = malloc(sizeof(int) * maxin);
    e.inflight = malloc(sizeof(int) * 2 * maxin);
    e.mark_send = calloc(comm->nranks, sizeof(int));
    e.mark_recv = calloc(comm->nranks, sizeof(int));
    int *peers = malloc(sizeof(int) * 2 * maxin);
    if (!e.state || !e.req || !e.scratch_of || !e.free_scratch || !e.inflight || !e.mark_send ||
        !e.mark_recv || !peers) {
        res = pc_err(comm, podcclSystemError, "out of memory in the executor");
        goto out;
    }
    for (int i = 0; i < maxin; i++) e.free_scratch[e.nfree++] = i;

    int first = 0, ndone = 0, scan = 0;
    pc_wait w;
    pc_wait_reset(&w);
    while (ndone < n) {
        int progress = 0;
        /* Post what can be posted in a window of not-yet-posted steps. */
        scan++;
        int seen = 0;
        while (first < n && e.state[first] != ST_WAIT) first++;
        for (int i = first; i < n && seen < SCAN_WINDOW; i++) {
            if (e.state[i] != ST_WAIT) continue;
            seen++;
            pc_step *st = &s->steps[i];
            if (st->kind == PC_STEP_COPY) {
                if (st->dep >= 0 && e.state[st->dep] != ST_DONE) continue;
                if (st->bytes) memmove(st->dst, st->src, st->bytes);
                e.state[i] = ST_DONE;
                ndone++, progress = 1;
                continue;
            }
            int *mark = is_send(st) ? &e.mark_send[st->peer] : &e.mark_recv[st->peer];
            if (*mark == scan) continue; /* an earlier step on this connection waits */
            int full = is_send(st) ? e.nsend >= maxin
                                   : (e.nrecv >= maxin || (st->kind == PC_STEP_RECV_REDUCE && e.nfree == 0));
            if (full || (st->dep >= 0 && e.state[st->dep] != ST_DONE)) {
                *mark = scan;
                continue;
            }
            int posted;
            PCCHECKGOTO(post_step(comm, &e, i, &posted), res, out);
            if (!posted) *mark = scan;
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
        } else {
            for (int k = 0; k < e.ninflight; k++) peers[k] = s->steps[e.inflight[k]].peer;
            PCCHECKGOTO(pc_wait_idle(comm, &w, peers, e.ninflight), res, out);
        }
    }
out:
    free(e.state), free(e.req), free(e.scratch_of), free(e.free_scratch), free(e.inflight);
    free(e.mark_send), free(e.mark_recv), free(peers);
    return res;
}
