/* One-shot collectives for a domain with memory semantics (the ranks of one host): each rank
 * writes its input into its own direct buffer and publishes the operation's sequence number;
 * every rank then reads what it needs straight from its peers' buffers (the small-message
 * design of Open MPI XHC and MPICH's shared-memory collectives). No data crosses a FIFO, and a
 * rank waits only for the peers whose data it reads.
 *
 * Reuse: D buffers rotate (slot seq % D), so before writing operation seq a rank waits until
 * every peer finished reading operation seq-D from the same buffer; senders of broadcast and
 * reduce can run D operations ahead of their readers. */
#include "algorithms/flat.h"

static size_t direct_bytes_needed(const pc_args *a, int n) {
    size_t es = pc_type_size(a->dtype);
    switch (a->coll) {
    case PC_ALLREDUCE:
    case PC_REDUCE:
    case PC_ALLGATHER:
    case PC_BROADCAST:
        return a->count * es;
    case PC_REDUCESCATTER:
    case PC_ALLTOALL:
        return a->count * es * (size_t)n;
    case PC_BARRIER:
        return 0;
    default:
        return (size_t)-1;
    }
}

/* The buffer's first 8 bytes hold the sequence number of the data after them: a reader that
 * sees seq there sees the data (release/acquire), and a payload of up to 48 bytes arrives in
 * the same cache line as its flag. The next 8 bytes are the hash of the call's signature
 * (pc_sig: collective, count, type, op, root and the operation's number on the communicator): a
 * reader that finds a different one knows the ranks called different operations, and says so,
 * naming both, instead of computing garbage. */
#define HDR 16
static _Atomic uint64_t *seq_word(pc_md *m, int r, uint64_t seq) {
    return (_Atomic uint64_t *)m->ops->direct_buf(m, r, seq);
}
static const char *data_of(pc_md *m, int r, uint64_t seq) {
    return m->ops->direct_buf(m, r, seq) + HDR;
}

static uint64_t *print_of(pc_md *m, int r, uint64_t seq) {
    return (uint64_t *)(m->ops->direct_buf(m, r, seq) + 8);
}

/* A peer that posted another operation into this slot is named with its call (found by the
 * hash in the slot among the signatures it published). */
static podcclResult_t wait_posted(pc_md *m, int r, uint64_t seq, uint64_t fp) {
    PCCHECK(m->ops->wait_ge(m, r, seq_word(m, r, seq), seq));
    uint64_t got = atomic_load_explicit(seq_word(m, r, seq), memory_order_acquire);
    if (got != seq || *print_of(m, r, seq) != fp)
        return m->ops->mismatch(m, r, *print_of(m, r, seq));
    return podcclSuccess;
}

static podcclResult_t wait_all_posted(pc_md *m, uint64_t seq, uint64_t fp) {
    for (int i = 1; i < m->n; i++) PCCHECK(wait_posted(m, (m->me + i) % m->n, seq, fp));
    *m->direct_synced = seq;
    return podcclSuccess;
}

static podcclResult_t direct_run(pc_md *m, const pc_args *a) {
    int n = m->n, me = m->me;
    size_t es = pc_type_size(a->dtype), bytes = direct_bytes_needed(a, n);
    uint64_t seq = ++*m->direct_seq;
    /* This slot was last read in operation seq-D. A rank that posted seq-D+1 had finished
     * seq-D; if this rank did not see every peer post that, ask for their done words. */
    uint64_t D = (uint64_t)m->slots;
    if (seq > D && *m->direct_synced < seq - D + 1)
        for (int i = 1; i < n; i++)
            PCCHECK(m->ops->wait(m, (me + i) % n, MD_W_DIRECT_DONE, seq - D));
    int writes = a->coll != PC_BARRIER && (a->coll != PC_BROADCAST || me == a->root);
    uint64_t fp = m->hash;
    if (writes && bytes) memcpy(m->ops->direct_buf(m, me, seq) + HDR, a->sendbuff, bytes);
    *print_of(m, me, seq) = fp;
    atomic_store_explicit(seq_word(m, me, seq), seq, memory_order_release);

    const char *srcs[64];
    const char **src = n <= 64 ? srcs : malloc(sizeof(char *) * (size_t)n);
    if (!src) return pc_err(m->comm, podcclSystemError, "out of memory");
    podcclResult_t res = podcclSuccess;
    switch (a->coll) {
    case PC_REDUCE:
        if (me != a->root) break;
        /* fall through */
    case PC_ALLREDUCE:
    case PC_REDUCESCATTER: {
        size_t off = a->coll == PC_REDUCESCATTER ? (size_t)me * a->count * es : 0;
        PCCHECKGOTO(wait_all_posted(m, seq, fp), res, out);
        /* Same source order on every rank: identical bits everywhere, also for floats. */
        for (int i = 0; i < n; i++) src[i] = data_of(m, i, seq) + off;
        if (a->count)
            pc_reduce_n(a->recvbuff, (const void *const *)src, n, a->count, a->dtype, a->op);
        break;
    }
    case PC_ALLGATHER:
    case PC_ALLTOALL: {
        size_t B = a->count * es, from = a->coll == PC_ALLTOALL ? (size_t)me * B : 0;
        for (int i = 1; i <= n; i++) {
            int p = (me + i) % n;
            if (p != me) PCCHECKGOTO(wait_posted(m, p, seq, fp), res, out);
            if (B) memcpy((char *)a->recvbuff + (size_t)p * B, data_of(m, p, seq) + from, B);
        }
        *m->direct_synced = seq;
        break;
    }
    case PC_BROADCAST:
        if (me != a->root) PCCHECKGOTO(wait_posted(m, a->root, seq, fp), res, out);
        if (bytes && a->recvbuff != data_of(m, a->root, seq))
            memmove(a->recvbuff, data_of(m, a->root, seq), bytes);
        break;
    case PC_BARRIER:
        PCCHECKGOTO(wait_all_posted(m, seq, fp), res, out);
        break;
    default:
        res = pc_err(m->comm, podcclInternalError, "direct: collective %d unsupported", a->coll);
    }
    m->ops->set(m, MD_W_DIRECT_DONE, seq);
out:
    if (src != srcs) free(src);
    return res;
}

static int can_run(const pc_env *e, const pc_args *a, char *why, size_t len) {
    if (!can_memsem(e, a, why, len)) return 0;
    size_t need = direct_bytes_needed(a, e->lv->nranks);
    if (need > e->direct_bytes) {
        snprintf(why, len,
                 "this call publishes %zu bytes per rank and the one-shot buffer holds %zu "
                 "(PODCCL_SHM_DIRECT_BYTES)",
                 need, e->direct_bytes);
        return 0;
    }
    return 1;
}

static double cost(const pc_env *e, const pc_args *a) {
    double t = cost_table(e, a, "direct");
    if (t >= 0) return t;
    /* A memory-semantic domain wider than one host: one load of every peer's data. */
    const pc_levels *lv = e->lv;
    int top = lv->nlevels - 1;
    double S = cost_bytes(lv, a);
    return 2 * cost_alpha(lv, top) + S / cost_beta(lv, top, 1) + cost_gamma(e, a, S);
}

#define DIRECT(C, c)                                                                               \
    const pc_algo_desc pc_algo_##c##_direct = {                                                    \
        .name = "direct",                                                                          \
        .coll = C,                                                                                 \
        .desc = "one-shot through shared memory: publish, then read every peer's data "            \
                "(MPICH/Open MPI XHC shared-memory collectives)",                                  \
        .can_run = can_run,                                                                        \
        .cost = cost,                                                                              \
        .run = direct_run,                                                                         \
    };
DIRECT(PC_ALLREDUCE, allreduce)
DIRECT(PC_ALLGATHER, allgather)
DIRECT(PC_REDUCESCATTER, reducescatter)
DIRECT(PC_BROADCAST, broadcast)
DIRECT(PC_REDUCE, reduce)
DIRECT(PC_ALLTOALL, alltoall)
DIRECT(PC_BARRIER, barrier)
