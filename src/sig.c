/* Operation signatures and mismatches (sig.h): every call is numbered and hashed alike on every
 * rank, published to the peers of the domain, carried by every message; a difference found by
 * any rank is named with both calls and told to the others at once. */
#include "src/sig.h"

#include "src/wait.h"

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
    return pc_fmix64(h);
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

int pc_sig_of(podcclComm_t comm, int rank, uint64_t seq, pc_sig *out) {
    if (!seq) return 0;
    if (rank == comm->rank) {
        *out = comm->ex->hist[seq % PC_SIG_HIST];
        return out->seq == seq;
    }
    int l = comm->topo->local_idx[rank];
    return l >= 0 && comm->tr->md && comm->tr->md->sig_get(comm->tr->shm, l, seq, out);
}

/* The two calls to name for a mismatch between rank ra (a) and rank rb (b): calls of different
 * numbers are replaced by the two ranks' calls of one number where known; two identical
 * calls whose hashes differ (the chain: an earlier mismatch nobody could see) are replaced by the
 * earliest pair of the history that differs. */
static void explain(podcclComm_t comm, int ra, pc_sig *a, int rb, pc_sig *b) {
    pc_sig x, y;
    if (b->seq && b->seq != a->seq && pc_sig_of(comm, ra, b->seq, &x))
        *a = x;
    else if (a->seq && a->seq != b->seq && pc_sig_of(comm, rb, a->seq, &y))
        *b = y;
    if (!same_call(a, b) || a->seq != b->seq) return;
    for (uint64_t s = a->seq - 1; a->seq && s > 0 && s + PC_SIG_HIST > a->seq; s--) {
        if (!pc_sig_of(comm, ra, s, &x) || !pc_sig_of(comm, rb, s, &y) || x.hash == y.hash) break;
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
    if (comm->tr->md)
        comm->tr->md->mismatch_publish(comm->tr->shm, reporter, culprit, mine, theirs);
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
    if (culprit == comm->rank && cul.coll < 0 && !pc_sig_of(comm, culprit, rep.seq, &cul))
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
    for (int l = 0; comm->tr->md && l < comm->topo->nlocal; l++)
        if (l != comm->topo->local_rank &&
            comm->tr->md->mismatch_get(comm->tr->shm, l, &reporter, &culprit, &rep, &cul)) {
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
    if (comm->tr->md) comm->tr->md->sig_publish(comm->tr->shm, g);
    return local_report(comm);
}

void pc_op_p2p(podcclComm_t comm) {
    pc_sig *g = &comm->ex->cur;
    *g = (pc_sig){.coll = PC_SEND};
    g->hash = sig_hash(g, 0);
}

/* A mismatch notice that came over the bootstrap ring (other hosts): it names both calls, as the
 * network transport's notice does, whichever of the two arrives first. */
static podcclResult_t ring_report(podcclComm_t comm) {
    int culprit, rc, reporter;
    pc_sig rep, cul;
    char why[256];
    if (!comm->tr->net || !boot_poll_notice(&comm->boot, &culprit, &rc, why, sizeof(why)) ||
        rc != podcclInvalidUsage || !boot_notice_calls(&comm->boot, &reporter, &rep, &cul))
        return podcclSuccess;
    return pc_mismatch_notice(comm, reporter, culprit, &rep, &cul);
}

podcclResult_t pc_sig_idle_check(podcclComm_t comm, const pc_wait *w) {
    /* Not while spinning, and then every 16th idle pass: the peers' lines stay where they are. */
    if (w && (w->polls < (unsigned)comm->ex->spin || (w->polls & 15))) return podcclSuccess;
    PCCHECK(ring_report(comm));
    if (!comm->tr->shm) return podcclSuccess;
    const pc_sig *me = &comm->ex->cur;
    for (int l = 0; me->seq && l < comm->topo->nlocal; l++) {
        pc_sig t;
        if (l != comm->topo->local_rank &&
            pc_sig_of(comm, comm->topo->local_ranks[l], me->seq, &t) && t.hash != me->hash)
            return pc_mismatch(comm, comm->topo->local_ranks[l], &t);
    }
    return local_report(comm);
}
