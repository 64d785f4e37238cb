/* Schedule executor. Steps are posted in schedule order per (peer, direction), so both ends of
 * a connection agree on message order without tags; steps on different connections, or waiting
 * on different dependencies, overtake each other. Local steps (copies, joins) run as soon as
 * their dependencies have completed, in any order. */
#include "src/exec.h"

#include "src/memdom.h"
#include "src/sig.h"
#include "src/trace.h"

enum { ST_WAIT = 0, ST_POSTED, ST_DONE };

/* A connection direction: steps to one peer (sends) or from one peer (receives and
 * receive-reduces), kept in schedule order. A lane that receive-reduces owns scratch slots of
 * its own, so one lane can never starve another of them (stages of a hierarchical schedule
 * receive from several peers at once). */
typedef struct {
    int *steps, n, next; /* step indices, next to post */
    int head;            /* oldest posted step not yet complete */
    int inflight;
    int *free_slot, nfree; /* scratch slots of this lane */
} lane_t;

typedef struct {
    pc_sched *s;
    char *state;
    void **req;
    int *slot_of;       /* scratch slot of a posted RECV_REDUCE */
    int *cursor;        /* dependencies of each step known to be done */
    int *lane_of;       /* lane index of each step, -1 local */
    int *local, nlocal; /* local steps not yet done */
    lane_t *lanes;
    int nlanes;
    int *slots;
} exec_t;

/* Whether step i's dependencies are done. Steps stay done, so each dependency is looked at
 * until it is done and never again (a join may wait for hundreds of steps, and this runs on
 * every pass). */
static int deps_done(exec_t *e, int i) {
    const pc_step *st = &e->s->steps[i];
    int k = e->cursor[i];
    while (k < st->ndep && e->state[e->s->deps[st->dep0 + k]] == ST_DONE) k++;
    e->cursor[i] = k;
    return k == st->ndep;
}

static int lane_depth(podcclComm_t comm, const pc_step *st) {
    if (comm->tr->tp[st->peer] != comm->tr->net) return comm->ex->max_inflight;
    return st->kind == PC_STEP_SEND ? comm->ex->net_send_depth : comm->ex->recv_depth;
}

static podcclResult_t post_step(podcclComm_t comm, exec_t *e, int i, int *posted) {
    pc_step *st = &e->s->steps[i];
    lane_t *ln = &e->lanes[e->lane_of[i]];
    const pc_transport *tp = comm->tr->tp[st->peer];
    void *conn = comm->tr->conn[st->peer], *req = NULL;
    *posted = 0;
    const pc_sig *sig = &comm->ex->cur;
    if (st->kind == PC_STEP_SEND) {
        PCCHECK(tp->isend(conn, st->src, st->bytes, sig, &req));
    } else if (st->kind == PC_STEP_RECV) {
        PCCHECK(tp->irecv(conn, st->dst, st->bytes, sig, &req));
    } else {
        int slot = ln->free_slot[ln->nfree - 1];
        PCCHECK(tp->irecv(conn, comm->ex->scratch + (size_t)slot * comm->ex->chunk_bytes, st->bytes,
                          sig, &req));
        if (req) e->slot_of[i] = slot, ln->nfree--;
    }
    if (!req) return podcclSuccess; /* transport busy: retry on a later pass */
    e->req[i] = req;
    e->state[i] = ST_POSTED;
    ln->inflight++;
    *posted = 1;
    return podcclSuccess;
}

static void complete_step(podcclComm_t comm, exec_t *e, int i) {
    pc_step *st = &e->s->steps[i];
    lane_t *ln = &e->lanes[e->lane_of[i]];
    if (st->kind == PC_STEP_RECV_REDUCE) {
        int slot = e->slot_of[i];
        size_t es = pc_type_size(e->s->dtype);
        pc_reduce2(st->dst, st->src, comm->ex->scratch + (size_t)slot * comm->ex->chunk_bytes,
                   st->bytes / es, e->s->dtype, e->s->op);
        ln->free_slot[ln->nfree++] = slot;
    }
    ln->inflight--;
    e->state[i] = ST_DONE;
}

/* Lanes: 2 per peer (send, receive). Each lane posts in schedule order and has its own bound on
 * steps in flight, so a lane waiting for its peer never blocks another: two ranks that list
 * their peers in different orders still progress. Scratch: each receiving lane with
 * RECV_REDUCE steps gets as many slots as it may have in flight. */
static podcclResult_t build_lanes(podcclComm_t comm, exec_t *e) {
    pc_sched *s = e->s;
    int nr = comm->nranks;
    e->nlanes = 2 * nr;
    e->lanes = calloc((size_t)e->nlanes, sizeof(lane_t));
    e->lane_of = malloc(sizeof(int) * (size_t)s->n);
    e->local = malloc(sizeof(int) * (size_t)s->n);
    int *all = malloc(sizeof(int) * (size_t)s->n), nslots = 0;
    int *want = calloc((size_t)e->nlanes, sizeof(int));
    if (!e->lanes || !e->lane_of || !e->local || !all || !want) {
        free(all), free(want);
        return pc_err(comm, podcclSystemError, "out of memory in the executor");
    }
    for (int i = 0; i < s->n; i++) {
        const pc_step *st = &s->steps[i];
        if (st->kind == PC_STEP_COPY || st->kind == PC_STEP_NOP) {
            e->lane_of[i] = -1;
            e->local[e->nlocal++] = i;
            continue;
        }
        int l = 2 * st->peer + (st->kind != PC_STEP_SEND);
        e->lane_of[i] = l;
        e->lanes[l].n++;
        if (st->kind == PC_STEP_RECV_REDUCE && want[l] < lane_depth(comm, st)) want[l]++;
    }
    int off = 0;
    for (int l = 0; l < e->nlanes; l++)
        e->lanes[l].steps = all + off, off += e->lanes[l].n, e->lanes[l].n = 0, nslots += want[l];
    for (int i = 0; i < s->n; i++)
        if (e->lane_of[i] >= 0) {
            lane_t *ln = &e->lanes[e->lane_of[i]];
            ln->steps[ln->n++] = i;
        }
    size_t need = (size_t)nslots * comm->ex->chunk_bytes;
    if (need > comm->ex->scratch_bytes) {
        char *p = realloc(comm->ex->scratch, need);
        if (!p) {
            free(want);
            return pc_err(comm, podcclSystemError, "cannot allocate %zu bytes of scratch", need);
        }
        comm->ex->scratch = p, comm->ex->scratch_bytes = need;
    }
    e->slots = malloc(sizeof(int) * (size_t)(nslots + 1));
    if (!e->slots) {
        free(want);
        return pc_err(comm, podcclSystemError, "out of memory in the executor");
    }
    for (int l = 0, k = 0; l < e->nlanes; l++) {
        e->lanes[l].free_slot = e->slots + k;
        for (int j = 0; j < want[l]; j++) e->slots[k] = k, k++;
        e->lanes[l].nfree = want[l];
    }
    free(want);
    return podcclSuccess;
}

/* Posts what each lane may post; runs local steps whose dependencies are done. */
static podcclResult_t post_ready(podcclComm_t comm, exec_t *e, int *ndone, int *progress) {
    for (int k = 0; k < e->nlocal;) {
        int i = e->local[k];
        pc_step *st = &e->s->steps[i];
        if (!deps_done(e, i)) {
            k++;
            continue;
        }
        if (st->kind == PC_STEP_COPY && st->bytes) memmove(st->dst, st->src, st->bytes);
        e->state[i] = ST_DONE;
        e->local[k] = e->local[--e->nlocal];
        (*ndone)++, *progress = 1;
    }
    for (int l = 0; l < e->nlanes; l++) {
        lane_t *ln = &e->lanes[l];
        while (ln->next < ln->n) {
            int i = ln->steps[ln->next];
            pc_step *st = &e->s->steps[i];
            if (!deps_done(e, i)) break;
            if (ln->inflight >= lane_depth(comm, st) ||
                (st->kind == PC_STEP_RECV_REDUCE && ln->nfree == 0))
                break;
            int posted;
            PCCHECK(post_step(comm, e, i, &posted));
            if (!posted) break;
            ln->next++;
        }
    }
    return podcclSuccess;
}

static void exec_free(exec_t *e) {
    free(e->state), free(e->req), free(e->slot_of), free(e->cursor), free(e->local);
    if (e->lanes) free(e->lanes[0].steps);
    free(e->lanes), free(e->lane_of), free(e->slots);
}

/* Tests the oldest posted step of every lane, and the next ones while they complete: requests
 * of a connection complete in posting order (transport.h), so a younger one cannot be done
 * before it, and testing only lane heads keeps a pass's cost to the number of busy lanes (each
 * test may poll the network). Collects the peers still owed something into peers. */
static podcclResult_t test_lanes(podcclComm_t comm, exec_t *e, int *ndone, int *progress,
                                 int *peers, int *npeers) {
    *npeers = 0;
    for (int l = 0; l < e->nlanes; l++) {
        lane_t *ln = &e->lanes[l];
        while (ln->inflight > 0) {
            int i = ln->steps[ln->head], done = 0;
            const pc_step *st = &e->s->steps[i];
            size_t got = st->bytes;
            PCCHECK(comm->tr->tp[st->peer]->test(e->req[i], &done, &got));
            if (!done) {
                peers[(*npeers)++] = st->peer;
                break;
            }
            /* A shorter message of the same operation: counts differ (point-to-point,
             * all-to-all-v) or the ranks cut the call differently. */
            if (st->kind != PC_STEP_SEND && got != st->bytes)
                return pc_size_mismatch(comm, st->peer, &comm->ex->cur, got, st->bytes);
            complete_step(comm, e, i);
            ln->head++;
            (*ndone)++, *progress = 1;
        }
    }
    return podcclSuccess;
}

podcclResult_t pc_exec(podcclComm_t comm, pc_sched *s) {
    podcclResult_t res = podcclSuccess;
    int n = s->n;
    if (n == 0) return podcclSuccess;
    if (s->max_reduce_bytes > comm->ex->chunk_bytes)
        return pc_err(comm, podcclInternalError, "schedule reduces %zu bytes per step > chunk %zu",
                      s->max_reduce_bytes, comm->ex->chunk_bytes);
    exec_t e = {.s = s};
    e.state = calloc((size_t)n, 1);
    e.req = calloc((size_t)n, sizeof(void *));
    e.slot_of = calloc((size_t)n, sizeof(int));
    e.cursor = calloc((size_t)n, sizeof(int));
    int *peers = malloc(sizeof(int) * 2 * (size_t)comm->nranks), npeers = 0;
    if (!e.state || !e.req || !e.slot_of || !e.cursor || !peers) {
        res = pc_err(comm, podcclSystemError, "out of memory in the executor");
        goto out;
    }
    PCCHECKGOTO(build_lanes(comm, &e), res, out);
    int ndone = 0, gone_seen = 0;
    pc_wait w;
    pc_wait_reset(&w);
    while (ndone < n) {
        int progress = 0;
        PCCHECKGOTO(post_ready(comm, &e, &ndone, &progress), res, out);
        PCCHECKGOTO(test_lanes(comm, &e, &ndone, &progress, peers, &npeers), res, out);
        if (progress) {
            pc_wait_reset(&w);
            gone_seen = 0;
            continue;
        }
        PCCHECKGOTO(pc_sig_idle_check(comm, &w), res, out);
        trace_step(comm, ndone, n, peers, npeers);
        res = pc_wait_idle(comm, &w, peers, npeers);
        if (res == podcclInProgress) {
            /* A peer exited: fail only if one more pass over the steps moves nothing. */
            if (!gone_seen) {
                gone_seen = 1;
                res = podcclSuccess;
                continue;
            }
            res = pc_wait_gone(comm, &w);
        }
        /* A mismatch found meanwhile is the cause, not the peer that left after finding it. */
        if (res != podcclSuccess && pc_sig_idle_check(comm, NULL) != podcclSuccess)
            res = podcclInvalidUsage;
        if (res != podcclSuccess) goto out;
    }
out:
    exec_free(&e);
    free(peers);
    return res;
}

/* Pipeline chunk. On one host, PODCCL_CHUNK_BYTES. Across hosts, a collective's per-peer block
 * is cut into at least 8 chunks (down to 16 KiB): a small collective's chunks then fit the
 * network transport's eager path (no clear-to-send round trip, and no wait for a receiver that
 * enters the call late), a large one's take the one-sided path in chunks of PODCCL_CHUNK_BYTES.
 * Every rank computes the same value: it depends only on arguments that all ranks pass alike
 * (all-to-all-v, whose counts differ between ranks, keeps PODCCL_CHUNK_BYTES). */
static size_t chunk_for(podcclComm_t comm, const pc_args *a) {
    size_t chunk = comm->ex->chunk_bytes, es = pc_type_size(a->dtype), block;
    if (!comm->tr->net) return chunk;
    switch (a->coll) {
    case PC_ALLREDUCE:
        block = a->count * es / (size_t)comm->nranks;
        break;
    case PC_ALLGATHER:
    case PC_REDUCESCATTER:
    case PC_ALLTOALL:
    case PC_BROADCAST:
    case PC_REDUCE:
        block = a->count * es;
        break;
    default:
        return chunk;
    }
    size_t c = block / 8 / 64 * 64;
    if (c < 16384) c = 16384;
    return c < chunk ? c : chunk;
}

/* Builds the schedule of a registered algorithm: its temporary, the pipeline chunk and the
 * segments of hierarchical plans are the same on every rank. */
static podcclResult_t build(podcclComm_t comm, const pc_algo_desc *d, const pc_args *a,
                            pc_sched *s) {
    const pc_levels *lv = &comm->topo->lv;
    size_t chunk = chunk_for(comm, a);
    s->dtype = a->dtype, s->op = a->op;
    if (d->tmp_bytes) PCCHECK(pc_comm_tmp(comm, d->tmp_bytes(lv, a)));
    size_t es = pc_type_size(a->dtype), whole = a->count * es;
    if (a->coll == PC_ALLGATHER || a->coll == PC_REDUCESCATTER || a->coll == PC_ALLTOALL)
        whole *= (size_t)comm->nranks;
    pc_build_ctx ctx = {
        .lv = lv,
        .chunk = chunk,
        .tmp = comm->ex->tmp,
        .segments = hier_segments_max(lv, whole, chunk, (int)pc_param_int("PODCCL_HIER_SEGMENTS"))};
    return d->build(s, a, &ctx);
}

podcclResult_t pc_exec_call(podcclComm_t comm, const pc_algo_desc *d, const pc_args *a,
                            int *started) {
    if (d->run) {
        pc_md m;
        md_view(comm, &m);
        *started = 1;
        return d->run(&m, a);
    }
    pc_sched s = {0};
    podcclResult_t res = build(comm, d, a, &s);
    if (res == podcclSuccess) *started = 1, res = pc_exec(comm, &s);
    sched_free(&s);
    return res;
}
