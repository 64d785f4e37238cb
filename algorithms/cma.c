/* Single-copy collectives for the ranks of one host, with Linux Cross-Memory Attach
 * (process_vm_readv): a rank reads its peers' user buffers directly, so large messages cross
 * memory once instead of twice through a shared staging buffer (the design of Open MPI's
 * btl/sm single copy and XHC, and of MPICH's CMA path).
 *
 * All-reduce is reduce-scatter by slices then all-gather (Rabenseifner's decomposition, done
 * in memory): rank r reduces slice r, reading the peers' pieces of it into a cache-sized
 * buffer, then every rank copies the other slices from their owners' receive buffers as soon
 * as the owner publishes them (a per-piece progress word), so gathering overlaps reducing.
 *
 * Every operation: publish buffer addresses, their sizes and the operation's signature, and
 * enter seq; wait for the peers this rank reads and check that they called the same operation;
 * work; publish done seq; wait until the peers that read this rank's buffers are done, because
 * the caller may reuse them as soon as the call returns. Reads never reach past the size a peer
 * declared (md_cma_read), whatever count this rank was given. */
#include "algorithms/flat.h"
#include "src/comm.h"
#include "src/memdom.h"

#define PIECE_SHIFT 24 /* progress word: (seq << 24) | pieces done */

static podcclResult_t wait_all(podcclComm_t comm, int word, uint64_t v) {
    for (int i = 1; i < comm->nranks; i++)
        PCCHECK(md_word_wait(comm, (comm->rank + i) % comm->nranks, word, v));
    return podcclSuccess;
}

/* Waits until rank p published its buffers for single-copy operation seq, and checks that they
 * belong to the same call as ours. p stays in this operation while anyone may read it (it waits
 * for its readers' done words), so what it published cannot change under us. */
static podcclResult_t enter(podcclComm_t comm, int p, uint64_t seq) {
    PCCHECK(md_word_wait(comm, p, MD_W_CMA_ENTER, seq));
    uint64_t s, h;
    md_cma_op(comm, p, &s, &h);
    if (h == comm->ex->cur.hash) return podcclSuccess;
    pc_sig theirs;
    if (!md_sig_get(comm, p, s, &theirs)) theirs = (pc_sig){.hash = h, .seq = s, .coll = -1};
    return pc_mismatch(comm, comm->topo->local_ranks[p], &theirs);
}

static podcclResult_t enter_all(podcclComm_t comm, uint64_t seq) {
    for (int i = 1; i < comm->nranks; i++)
        PCCHECK(enter(comm, (comm->rank + i) % comm->nranks, seq));
    return podcclSuccess;
}

/* Elements per piece: the n-1 peer pieces plus this rank's stay in L2 while being reduced. */
static size_t piece_elems(podcclComm_t comm, size_t es) {
    size_t bytes = (size_t)512 * 1024 / (size_t)comm->nranks;
    if (bytes > comm->ex->chunk_bytes) bytes = comm->ex->chunk_bytes;
    if (bytes < 16384) bytes = 16384;
    return bytes / es;
}

/* dst[0, len) = op over ranks of their `which` buffer at element `first`, for this rank's
 * slice; publishes progress per piece when `progress` is set. */
static podcclResult_t reduce_slice(podcclComm_t comm, const pc_args *a, const char *mine, char *dst,
                                   size_t first, size_t len, uint64_t seq, int progress) {
    int n = comm->nranks, me = comm->rank;
    size_t es = pc_type_size(a->dtype), pe = piece_elems(comm, es);
    const void *srcs[64];
    if (n > 64) return pc_err(comm, podcclInternalError, "cma: more than 64 local ranks");
    char *buf = comm->ex->tmp; /* (n-1) pieces */
    size_t k = 0;
    for (size_t off = 0; off < len; off += pe, k++) {
        size_t m = len - off < pe ? len - off : pe;
        srcs[0] = mine + (first + off) * es; /* first: dst may alias it (in place) */
        for (int i = 1; i < n; i++) {
            int p = (me + i) % n;
            char *b = buf + (size_t)(i - 1) * pe * es;
            PCCHECK(md_cma_read(comm, p, 0, (first + off) * es, b, m * es));
            srcs[i] = b;
        }
        pc_reduce_n(dst + off * es, srcs, n, m, a->dtype, a->op);
        if (progress) md_word_set(comm, MD_W_CMA_PROGRESS, (seq << PIECE_SHIFT) | (k + 1));
    }
    return podcclSuccess;
}

/* Copies peer p's reduced slice [first, first+len) from its buffer `which` into dst as its
 * pieces become ready. */
static podcclResult_t gather_slice(podcclComm_t comm, int p, int which, char *dst, size_t first,
                                   size_t len, size_t es, uint64_t seq) {
    size_t pe = piece_elems(comm, es), npieces = (len + pe - 1) / pe, got = 0;
    uint64_t base = seq << PIECE_SHIFT;
    while (got < npieces) {
        PCCHECK(md_word_wait(comm, p, MD_W_CMA_PROGRESS, base | (got + 1)));
        uint64_t ready = md_word_get(comm, p, MD_W_CMA_PROGRESS);
        size_t upto =
            ready >> PIECE_SHIFT > seq ? npieces : (size_t)(ready & ((1u << PIECE_SHIFT) - 1));
        if (upto > npieces) upto = npieces;
        size_t from = got * pe, to = upto * pe < len ? upto * pe : len;
        PCCHECK(
            md_cma_read(comm, p, which, (first + from) * es, dst + from * es, (to - from) * es));
        got = upto;
    }
    return podcclSuccess;
}

static size_t cma_tmp_bytes(podcclComm_t comm, const pc_args *a) {
    size_t es = pc_type_size(a->dtype), n = (size_t)comm->nranks;
    size_t pieces = (n - 1) * piece_elems(comm, es) * es;
    switch (a->coll) {
    case PC_REDUCE:
        return pieces + (a->count / n + 1) * es;
    case PC_ALLTOALL:
        return a->sendbuff == a->recvbuff ? a->count * es * n : 0;
    case PC_ALLREDUCE:
    case PC_REDUCESCATTER:
        return pieces;
    default:
        return 0;
    }
}

/* Bytes of the send, receive and aux buffers this rank publishes: what its peers may read. */
static void declared(podcclComm_t comm, const pc_args *a, size_t len[3]) {
    int n = comm->nranks, me = comm->rank;
    size_t es = pc_type_size(a->dtype), B = a->count * es, N = (size_t)n;
    len[0] = len[1] = len[2] = 0;
    switch (a->coll) {
    case PC_ALLREDUCE:
        len[0] = len[1] = B;
        break;
    case PC_REDUCE:
        len[0] = B, len[1] = me == a->root ? B : 0, len[2] = (a->count / N + 1) * es;
        break;
    case PC_REDUCESCATTER:
        len[0] = B * N, len[1] = B;
        break;
    case PC_ALLGATHER:
        len[0] = B, len[1] = B * N;
        break;
    case PC_BROADCAST:
        len[0] = me == a->root ? B : 0, len[1] = B;
        break;
    case PC_ALLTOALL:
        len[0] = len[1] = B * N;
        break;
    case PC_ALLTOALLV:
        for (int p = 0; p < n; p++) {
            const size_t *c = a->counts;
            size_t s = (c[n + p] + c[p]) * es, r = (c[3 * n + p] + c[2 * n + p]) * es;
            if (c[p] && s > len[0]) len[0] = s;
            if (c[2 * n + p] && r > len[1]) len[1] = r;
        }
        break;
    default:
        break;
    }
}

podcclResult_t cma_run(podcclComm_t comm, const pc_args *a) {
    int n = comm->nranks, me = comm->rank;
    size_t es = pc_type_size(a->dtype), count = a->count;
    const char *send = a->sendbuff;
    char *recv = a->recvbuff, *aux = NULL;
    PCCHECK(pc_comm_tmp(comm, cma_tmp_bytes(comm, a)));
    uint64_t seq = ++comm->ex->cma_seq;
    if (a->coll == PC_ALLTOALL && send == recv) {
        memcpy(comm->ex->tmp, send, count * es * (size_t)n); /* in place: peers read the old data */
        send = comm->ex->tmp;
    }
    if (a->coll == PC_REDUCE) aux = comm->ex->tmp + (size_t)(n - 1) * piece_elems(comm, es) * es;
    const size_t *cnt = a->counts;
    size_t decl[3];
    declared(comm, a, decl);
    md_cma_publish(comm, (const void *const[3]){send, recv, aux}, decl, cnt, cnt ? cnt + n : NULL);
    md_word_set(comm, MD_W_CMA_ENTER, seq);

    switch (a->coll) {
    case PC_ALLREDUCE: {
        size_t first = blk_off(count, n, me), len = blk_off(count, n, me + 1) - first;
        PCCHECK(enter_all(comm, seq));
        PCCHECK(reduce_slice(comm, a, send, recv + first * es, first, len, seq, 1));
        for (int i = 1; i < n; i++) {
            int p = (me + i) % n;
            size_t f = blk_off(count, n, p);
            PCCHECK(
                gather_slice(comm, p, 1, recv + f * es, f, blk_off(count, n, p + 1) - f, es, seq));
        }
        break;
    }
    case PC_REDUCE: {
        size_t first = blk_off(count, n, me), len = blk_off(count, n, me + 1) - first;
        PCCHECK(enter_all(comm, seq));
        char *dst = me == a->root ? recv + first * es : aux;
        PCCHECK(reduce_slice(comm, a, send, dst, first, len, seq, 1));
        if (me == a->root)
            for (int i = 1; i < n; i++) {
                int p = (me + i) % n;
                size_t f = blk_off(count, n, p);
                /* The peer reduced into its aux buffer, which starts at its slice. */
                PCCHECK(gather_slice(comm, p, 2, recv + f * es, 0, blk_off(count, n, p + 1) - f, es,
                                     seq));
            }
        break;
    }
    case PC_REDUCESCATTER:
        PCCHECK(enter_all(comm, seq));
        PCCHECK(reduce_slice(comm, a, send, recv, (size_t)me * count, count, seq, 0));
        break;
    case PC_ALLGATHER: {
        size_t B = count * es;
        if (send != recv + (size_t)me * B) memcpy(recv + (size_t)me * B, send, B);
        for (int i = 1; i < n; i++) {
            int p = (me + i) % n;
            PCCHECK(enter(comm, p, seq));
            PCCHECK(md_cma_read(comm, p, 0, 0, recv + (size_t)p * B, B));
        }
        break;
    }
    case PC_BROADCAST:
        if (me == a->root) {
            if (send != recv) memcpy(recv, send, count * es);
        } else {
            PCCHECK(enter(comm, a->root, seq));
            PCCHECK(md_cma_read(comm, a->root, 0, 0, recv, count * es));
        }
        break;
    case PC_ALLTOALL:
    case PC_ALLTOALLV:
        for (int i = 0; i < n; i++) {
            int p = (me + i) % n;
            size_t c, d, rc = cnt ? cnt[2 * n + p] : count,
                         rd = cnt ? cnt[3 * n + p] : count * (size_t)p;
            if (p != me) PCCHECK(enter(comm, p, seq));
            if (cnt) {
                if (p == me)
                    c = cnt[me], d = cnt[n + me];
                else
                    md_cma_counts(comm, p, me, &c, &d);
                if (c != rc) /* both sides' counts, in bytes */
                    return pc_size_mismatch(comm, p, &comm->ex->cur, c * es, rc * es);
            } else {
                d = count * (size_t)me;
            }
            if (p == me)
                memcpy(recv + rd * es, send + d * es, rc * es);
            else
                PCCHECK(md_cma_read(comm, p, 0, d * es, recv + rd * es, rc * es));
        }
        break;
    default:
        return pc_err(comm, podcclInternalError, "cma: collective %d unsupported", a->coll);
    }
    md_word_set(comm, MD_W_CMA_DONE, seq);
    /* Peers may still be reading this rank's buffers: wait for the ones that do. */
    if (a->coll == PC_BROADCAST && me != a->root) return podcclSuccess;
    return wait_all(comm, MD_W_CMA_DONE, seq);
}

static int can_run(const pc_env *e, const pc_args *a, char *why, size_t len) {
    if (!can_memsem(e, a, why, len)) return 0;
    if (!e->cma) {
        snprintf(why, len,
                 "the kernel does not let ranks read each other with process_vm_readv "
                 "(ptrace permission, seccomp, pid namespaces) or PODCCL_SHM_CMA=0");
        return 0;
    }
    return 1;
}

static double cost(const pc_env *e, const pc_args *a) {
    double t = cost_table(e, a, "cma");
    return t >= 0 ? t : PC_COST_UNMEASURED; /* measured rows only: see cost.c */
}

#define CMA(C, c)                                                                                  \
    const pc_algo_desc pc_algo_##c##_cma = {                                                       \
        .name = "cma",                                                                             \
        .coll = C,                                                                                 \
        .desc = "single copy with process_vm_readv (Open MPI btl/sm CMA, XHC)",                    \
        .can_run = can_run,                                                                        \
        .cost = cost,                                                                              \
        .run = cma_run,                                                                            \
    };
CMA(PC_ALLREDUCE, allreduce)
CMA(PC_ALLGATHER, allgather)
CMA(PC_REDUCESCATTER, reducescatter)
CMA(PC_BROADCAST, broadcast)
CMA(PC_REDUCE, reduce)
CMA(PC_ALLTOALL, alltoall)
CMA(PC_ALLTOALLV, alltoallv)
