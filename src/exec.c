/* Schedule executor. Steps are posted in schedule order per (peer, direction), so both ends of
 * a connection agree on message order without tags; steps on different connections, or waiting
 * on different dependencies, overtake each other. Local steps (copies, joins) run as soon as
 * their dependencies have completed, in any order. */
#include "src/exec.h"
#include "src/trace.h"

#include "src/memdom.h"

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
        PCCHECK(tp->isend(conn, st->src, st->bytes, sig, NULL, &req));
    } else if (st->kind == PC_STEP_RECV) {
        PCCHECK(tp->irecv(conn, st->dst, st->bytes, sig, NULL, &req));
    } else {
        int slot = ln->free_slot[ln->nfree - 1];
        PCCHECK(tp->irecv(conn, comm->ex->scratch + (size_t)slot * comm->ex->chunk_bytes, st->bytes,
                          sig, NULL, &req));
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

/* ---- operation signatures ------------------------------------------------------------------ */

static const char *const coll_fn[PC_NCOLL] = {
    "podcclAllReduce", "podcclAllGather", "podcclReduceScatter", "podcclBroadcast",
    "podcclReduce",    "podcclAllToAll",  "podcclAllToAllv",     "podcclSend",
    "podcclRecv",      "podcclBarrier"};

/* Every call hashes: independent products of the fields (they run in parallel) and the previous
 * hash, then one finaliser (MurmurHash3's fmix64): a few nanoseconds. */
static uint64_t sig_hash(const pc_sig *g, uint64_t prev) {
    uint64_t kind = (uint64_t)(uint8_t)g->coll | (uint64_t)(uint8_t)g->dtype << 8 |
                    (uint64_t)(uint8_t)g->op << 16 | (uint64_t)(uint32_t)g->root << 32;
    uint64_t h = g->seq * 0x9e3779b97f4a7c15ull ^ g->count * 0xc2b2ae3d27d4eb4full ^
                 kind * 0x165667b19e3779f9ull ^ (prev << 23 | prev >> 41);
    h ^= h >> 33, h *= 0xff51afd7ed558ccdull, h ^= h >> 33, h *= 0xc4ceb9fe1a85ec53ull;
    return h ^ h >> 33;
}

static int same_call(const pc_sig *a, const pc_sig *b) {
    return a->coll >= 0 && b->coll >= 0 && a->coll == b->coll && a->count == b->count &&
           a->dtype == b->dtype && a->op == b->op && a->root == b->root;
}

const char *pc_sig_str(const pc_sig *g, char *buf, size_t len) {
    const char *ty = pc_type_name((podcclDataType_t)g->dtype);
    const char *op = pc_op_name((podcclRedOp_t)g->op);
    unsigned long long n = (unsigned long long)g->count;
    switch (g->coll) {
    case PC_ALLREDUCE:
    case PC_REDUCESCATTER:
        snprintf(buf, len, "%s(count %llu, %s, %s)", coll_fn[g->coll], n, ty, op);
        break;
    case PC_REDUCE:
        snprintf(buf, len, "%s(count %llu, %s, %s, root %d)", coll_fn[g->coll], n, ty, op, g->root);
        break;
    case PC_BROADCAST:
        snprintf(buf, len, "%s(count %llu, %s, root %d)", coll_fn[g->coll], n, ty, g->root);
        break;
    case PC_ALLGATHER:
    case PC_ALLTOALL:
        snprintf(buf, len, "%s(count %llu, %s)", coll_fn[g->coll], n, ty);
        break;
    case PC_ALLTOALLV:
        snprintf(buf, len, "%s(%s)", coll_fn[g->coll], ty);
        break;
    case PC_SEND:
    case PC_RECV:
        snprintf(buf, len, "podcclSend/podcclRecv");
        break;
    case PC_BARRIER:
        snprintf(buf, len, "podcclBarrier()");
        break;
    default:
        snprintf(buf, len, "another operation");
    }
    return buf;
}

/* "CALL as operation #N" (first) or "CALL (#N)". */
static const char *call_str(const pc_sig *g, int first, char *buf, size_t len) {
    char c[160];
    pc_sig_str(g, c, sizeof(c));
    if (!g->seq) return snprintf(buf, len, "%s", c), buf;
    snprintf(buf, len, first ? "%s as operation #%llu" : "%s (#%llu)", c,
             (unsigned long long)g->seq);
    return buf;
}

/* rank's signature of operation seq: this rank's own history, or a peer's on this host. */
static int sig_at(podcclComm_t comm, int rank, uint64_t seq, pc_sig *out) {
    if (!seq) return 0;
    if (rank == comm->rank) {
        *out = comm->ex->hist[seq % PC_SIG_HIST];
        return out->seq == seq;
    }
    int l = comm->topo->local_idx[rank];
    return l >= 0 && md_sig_get(comm, l, seq, out);
}

/* The two calls to name for a mismatch between rank ra (a) and rank rb (b): calls of different
 * numbers are replaced by the two ranks' calls of one number where known; two identical
 * calls whose hashes differ (the chain: an earlier mismatch nobody could see) are replaced by the
 * earliest pair of the history that differs. */
static void explain(podcclComm_t comm, int ra, pc_sig *a, int rb, pc_sig *b) {
    pc_sig x, y;
    if (b->seq && b->seq != a->seq && sig_at(comm, ra, b->seq, &x))
        *a = x;
    else if (a->seq && a->seq != b->seq && sig_at(comm, rb, a->seq, &y))
        *b = y;
    if (!same_call(a, b) || a->seq != b->seq) return;
    for (uint64_t s = a->seq - 1; a->seq && s > 0 && s + PC_SIG_HIST > a->seq; s--) {
        if (!sig_at(comm, ra, s, &x) || !sig_at(comm, rb, s, &y) || x.hash == y.hash) break;
        if (!same_call(&x, &y)) *a = x, *b = y;
    }
}

/* Breaks the communicator and tells the other ranks that reporter found culprit's call (theirs)
 * different from its own (mine): those of this host through the mismatch record in the control
 * block (peers read it while they wait, and at their next call), those elsewhere through the
 * network transport when `net` is set. Not through the failure publication (wait.h): its readers
 * report a peer that "exited or aborted" (podcclRemoteError); only a network transport without
 * notices falls back to it, so that no remote rank waits for the timeout. */
static podcclResult_t fail_and_tell(podcclComm_t comm, int reporter, int culprit,
                                    const pc_sig *mine, const pc_sig *theirs, int net) {
    md_mismatch_publish(comm, reporter, culprit, mine, theirs);
    pc_comm_fail(comm, podcclInvalidUsage);
    const pc_conns *tr = comm->tr;
    if (net && !comm->ex->told && tr && tr->net && tr->net_listen) {
        if (tr->net->notify)
            tr->net->notify(tr->net_listen, culprit, mine, theirs);
        else
            pc_publish_failure(comm, culprit, podcclInvalidUsage);
    }
    if (net && !comm->ex->told && tr && tr->net && comm->boot.next_fd >= 0) {
        /* The bootstrap ring as well: it reaches every host even when the transport's notice
         * does not (a peer not connected yet, an endpoint closing). */
        char why[200];
        snprintf(why, sizeof(why),
                 "rank %d found rank %d's call different from its own (collective, count, "
                 "datatype, op or root): every rank must call the same collectives in the same "
                 "order",
                 reporter, culprit);
        boot_send_mismatch(&comm->boot, culprit, mine, theirs, why);
    }
    comm->ex->told |= net;
    return podcclInvalidUsage;
}

static const char *const same_calls =
    "every rank must call the same collectives, with the same count, datatype, op and root, in "
    "the same order";

/* "rank A called X as operation #n, but rank B called Y (#n): ..." */
static void calls_text(podcclComm_t comm, int ra, const pc_sig *a, int rb, const pc_sig *b,
                       const char *suffix) {
    char x[200], y[200];
    pc_err(comm, podcclInvalidUsage, "rank %d called %s, but rank %d called %s: %s%s", ra,
           call_str(a, 1, x, sizeof(x)), rb, call_str(b, 0, y, sizeof(y)), same_calls, suffix);
}

podcclResult_t pc_mismatch(podcclComm_t comm, int peer, const pc_sig *theirs) {
    pc_sig mine = comm->ex->cur, t = *theirs;
    explain(comm, comm->rank, &mine, peer, &t);
    calls_text(comm, comm->rank, &mine, peer, &t, "");
    return fail_and_tell(comm, comm->rank, peer, &mine, &t, 1);
}

podcclResult_t pc_size_mismatch(podcclComm_t comm, int peer, const pc_sig *g, size_t peer_bytes,
                                size_t my_bytes) {
    char a[200];
    pc_err(comm, podcclInvalidUsage,
           "rank %d and rank %d both called %s, but rank %d's piece of it is %zu bytes and rank "
           "%d's is %zu bytes: their counts differ (point-to-point, all-to-all-v) or they cut the "
           "call differently (set the same PODCCL_CHUNK_BYTES, PODCCL_ALGO and PODCCL_SHM_* on "
           "every rank)",
           comm->rank, peer, call_str(g, 1, a, sizeof(a)), peer, peer_bytes, comm->rank, my_bytes);
    return fail_and_tell(comm, comm->rank, peer, g, g, 1);
}

/* The message of a mismatch that rank `reporter` found with `culprit` (this rank or another). */
static void reported(podcclComm_t comm, int reporter, int culprit, pc_sig rep, pc_sig cul) {
    char by[96] = "", a[200];
    if (culprit != comm->rank) snprintf(by, sizeof(by), " (reported by rank %d)", reporter);
    if (culprit == comm->rank && cul.coll < 0 && !sig_at(comm, culprit, rep.seq, &cul))
        cul = comm->ex->cur;
    explain(comm, reporter, &rep, culprit, &cul);
    if (rep.coll >= 0 && rep.hash == cul.hash)
        pc_err(comm, podcclInvalidUsage,
               "rank %d found that its piece of %s and rank %d's differ in size: their counts "
               "differ (point-to-point, all-to-all-v) or they cut the call differently (set the "
               "same PODCCL_CHUNK_BYTES, PODCCL_ALGO and PODCCL_SHM_* on every rank)%s",
               reporter, call_str(&rep, 1, a, sizeof(a)), culprit, by);
    else
        calls_text(comm, reporter, &rep, culprit, &cul, by);
}

podcclResult_t pc_mismatch_notice(podcclComm_t comm, int reporter, int culprit, const pc_sig *rep,
                                  const pc_sig *cul) {
    reported(comm, reporter, culprit, *rep, *cul);
    return fail_and_tell(comm, reporter, culprit, rep, cul, 0);
}

/* A mismatch that a peer of this host found or learnt of (its record in the control block). */
static podcclResult_t local_report(podcclComm_t comm) {
    int culprit, reporter;
    pc_sig rep, cul;
    for (int l = 0; l < comm->topo->nlocal; l++)
        if (l != comm->topo->local_rank &&
            md_mismatch_get(comm, l, &reporter, &culprit, &rep, &cul)) {
            reported(comm, reporter, culprit, rep, cul);
            return fail_and_tell(comm, reporter, culprit, &rep, &cul, 0);
        }
    return podcclSuccess;
}

podcclResult_t pc_op_begin(podcclComm_t comm, const pc_args *a) {
    int c = a->coll;
    int reduces = c == PC_ALLREDUCE || c == PC_REDUCE || c == PC_REDUCESCATTER;
    pc_exec_state *ex = comm->ex;
    pc_sig *g = &ex->cur;
    *g = (pc_sig){.seq = ++ex->op_seq,
                  .count = c == PC_ALLTOALLV || c == PC_BARRIER ? 0 : a->count,
                  .coll = c,
                  .dtype = c == PC_BARRIER ? 0 : (int32_t)a->dtype,
                  .op = reduces ? (int32_t)a->op : 0,
                  .root = c == PC_BROADCAST || c == PC_REDUCE ? a->root : 0};
    g->hash = ex->chain = sig_hash(g, ex->chain);
    ex->hist[g->seq % PC_SIG_HIST] = *g;
    md_sig_publish(comm, g);
    return local_report(comm);
}

void pc_op_p2p(podcclComm_t comm) {
    pc_sig *g = &comm->ex->cur;
    *g = (pc_sig){.coll = PC_SEND};
    g->hash = sig_hash(g, 0);
}

podcclResult_t pc_sig_idle_check(podcclComm_t comm, const pc_wait *w) {
    /* Not while spinning, and then every 16th idle pass: the peers' lines stay where they are. */
    if (!comm->tr->shm || (w && (w->polls < (unsigned)comm->ex->spin || (w->polls & 15))))
        return podcclSuccess;
    const pc_sig *me = &comm->ex->cur;
    for (int l = 0; me->seq && l < comm->topo->nlocal; l++) {
        pc_sig t;
        if (l != comm->topo->local_rank && md_sig_get(comm, l, me->seq, &t) && t.hash != me->hash)
            return pc_mismatch(comm, comm->topo->local_ranks[l], &t);
    }
    return local_report(comm);
}
