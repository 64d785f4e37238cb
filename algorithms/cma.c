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

#define PIECE_SHIFT 24 /* progress word: (seq << 24) | pieces done */

static podcclResult_t wait_all(pc_md *m, int word, uint64_t v) {
    for (int i = 1; i < m->n; i++) PCCHECK(m->ops->wait(m, (m->me + i) % m->n, word, v));
    return podcclSuccess;
}

/* Waits until every peer published its buffers for single-copy operation seq, and checks that
 * they belong to the same call as ours (m->ops->enter). A peer stays in this operation while
 * anyone may read it (it waits for its readers' done words), so what it published cannot change
 * under us. */
static podcclResult_t enter_all(pc_md *m, uint64_t seq) {
    for (int i = 1; i < m->n; i++) PCCHECK(m->ops->enter(m, (m->me + i) % m->n, seq));
    return podcclSuccess;
}

/* Elements per piece: the n-1 peer pieces plus this rank's stay in L2 while being reduced. */
static size_t piece_elems(const pc_md *m, size_t es) {
    size_t bytes = (size_t)512 * 1024 / (size_t)m->n;
    if (bytes > m->chunk) bytes = m->chunk;
    if (bytes < 16384) bytes = 16384;
    return bytes / es;
}

/* dst[0, len) = op over ranks of their send buffer at element `first`, for this rank's slice;
 * publishes progress per piece when `progress` is set. tmp holds (n-1) pieces. */
static podcclResult_t reduce_slice(pc_md *m, const pc_args *a, const char *mine, char *dst,
                                   size_t first, size_t len, uint64_t seq, int progress,
                                   char *tmp) {
    int n = m->n, me = m->me;
    size_t es = pc_type_size(a->dtype), pe = piece_elems(m, es);
    const void *few[64], **srcs = n <= 64 ? few : malloc(sizeof(void *) * (size_t)n);
    if (!srcs) return pc_err(m->comm, podcclSystemError, "out of memory");
    podcclResult_t res = podcclSuccess;
    size_t k = 0;
    for (size_t off = 0; off < len && res == podcclSuccess; off += pe, k++) {
        size_t cnt = len - off < pe ? len - off : pe;
        srcs[0] = mine + (first + off) * es; /* first: dst may alias it (in place) */
        for (int i = 1; i < n && res == podcclSuccess; i++) {
            char *b = tmp + (size_t)(i - 1) * pe * es;
            res = m->ops->read(m, (me + i) % n, 0, (first + off) * es, b, cnt * es);
            srcs[i] = b;
        }
        if (res != podcclSuccess) break;
        pc_reduce_n(dst + off * es, srcs, n, cnt, a->dtype, a->op);
        if (progress) m->ops->set(m, MD_W_CMA_PROGRESS, (seq << PIECE_SHIFT) | (k + 1));
    }
    if (srcs != few) free(srcs);
    return res;
}

/* Copies peer p's reduced slice [first, first+len) from its buffer `which` into dst as its
 * pieces become ready. */
static podcclResult_t gather_slice(pc_md *m, int p, int which, char *dst, size_t first, size_t len,
                                   size_t es, uint64_t seq) {
    size_t pe = piece_elems(m, es), npieces = (len + pe - 1) / pe, got = 0;
    uint64_t base = seq << PIECE_SHIFT;
    while (got < npieces) {
        PCCHECK(m->ops->wait(m, p, MD_W_CMA_PROGRESS, base | (got + 1)));
        uint64_t ready = m->ops->get(m, p, MD_W_CMA_PROGRESS);
        size_t upto =
            ready >> PIECE_SHIFT > seq ? npieces : (size_t)(ready & ((1u << PIECE_SHIFT) - 1));
        if (upto > npieces) upto = npieces;
        size_t from = got * pe, to = upto * pe < len ? upto * pe : len;
        PCCHECK(m->ops->read(m, p, which, (first + from) * es, dst + from * es, (to - from) * es));
        got = upto;
    }
    return podcclSuccess;
}

static size_t cma_tmp_bytes(const pc_md *m, const pc_args *a) {
    size_t es = pc_type_size(a->dtype), n = (size_t)m->n;
    size_t pieces = (n - 1) * piece_elems(m, es) * es;
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
static void declared(const pc_md *m, const pc_args *a, size_t len[3]) {
    int n = m->n, me = m->me;
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

/* The buffers of one operation: what this rank reads from and writes to. */
typedef struct {
    const char *send;
    char *recv, *aux, *tmp;
    size_t es;
    uint64_t seq;
} cma_op;

/* All-reduce (rooted = 0) and reduce: this rank reduces its slice, then the ranks that need the
 * whole result (all, or the root) gather the other slices as they are reduced. */
static podcclResult_t reduce_gather(pc_md *m, const pc_args *a, const cma_op *o, int rooted) {
    int n = m->n, me = m->me;
    size_t es = o->es, count = a->count;
    size_t first = blk_off(count, n, me), len = blk_off(count, n, me + 1) - first;
    PCCHECK(enter_all(m, o->seq));
    int whole = !rooted || me == a->root;
    char *dst = whole ? o->recv + first * es : o->aux;
    PCCHECK(reduce_slice(m, a, o->send, dst, first, len, o->seq, 1, o->tmp));
    for (int i = 1; whole && i < n; i++) {
        int p = (me + i) % n;
        size_t f = blk_off(count, n, p), l = blk_off(count, n, p + 1) - f;
        /* A reduce's peer reduced into its aux buffer, which starts at its slice. */
        PCCHECK(
            gather_slice(m, p, rooted ? 2 : 1, o->recv + f * es, rooted ? 0 : f, l, es, o->seq));
    }
    return podcclSuccess;
}

/* All-to-all and all-to-all-v: each rank reads its block from every peer's send buffer; counts
 * that differ between the two sides are a mismatch naming both sizes. */
static podcclResult_t alltoall(pc_md *m, const pc_args *a, const cma_op *o) {
    int n = m->n, me = m->me;
    size_t es = o->es, count = a->count;
    const size_t *cnt = a->counts;
    for (int i = 0; i < n; i++) {
        int p = (me + i) % n;
        size_t c, d, rc = cnt ? cnt[2 * n + p] : count,
                     rd = cnt ? cnt[3 * n + p] : count * (size_t)p;
        if (p != me) PCCHECK(m->ops->enter(m, p, o->seq));
        if (cnt) {
            if (p == me)
                c = cnt[me], d = cnt[n + me];
            else
                m->ops->counts(m, p, me, &c, &d);
            if (c != rc) return m->ops->size_mismatch(m, p, c * es, rc * es);
        } else {
            d = count * (size_t)me;
        }
        if (p == me)
            memcpy(o->recv + rd * es, o->send + d * es, rc * es);
        else
            PCCHECK(m->ops->read(m, p, 0, d * es, o->recv + rd * es, rc * es));
    }
    return podcclSuccess;
}

static podcclResult_t cma_work(pc_md *m, const pc_args *a, const cma_op *o) {
    int n = m->n, me = m->me;
    size_t es = o->es, B = a->count * es;
    switch (a->coll) {
    case PC_ALLREDUCE:
    case PC_REDUCE:
        return reduce_gather(m, a, o, a->coll == PC_REDUCE);
    case PC_REDUCESCATTER:
        PCCHECK(enter_all(m, o->seq));
        return reduce_slice(m, a, o->send, o->recv, (size_t)me * a->count, a->count, o->seq, 0,
                            o->tmp);
    case PC_ALLGATHER:
        if (o->send != o->recv + (size_t)me * B) memcpy(o->recv + (size_t)me * B, o->send, B);
        for (int i = 1; i < n; i++) {
            int p = (me + i) % n;
            PCCHECK(m->ops->enter(m, p, o->seq));
            PCCHECK(m->ops->read(m, p, 0, 0, o->recv + (size_t)p * B, B));
        }
        return podcclSuccess;
    case PC_BROADCAST:
        if (me == a->root) {
            if (o->send != o->recv) memcpy(o->recv, o->send, B);
            return podcclSuccess;
        }
        PCCHECK(m->ops->enter(m, a->root, o->seq));
        return m->ops->read(m, a->root, 0, 0, o->recv, B);
    case PC_ALLTOALL:
    case PC_ALLTOALLV:
        return alltoall(m, a, o);
    default:
        return pc_err(m->comm, podcclInternalError, "cma: collective %d unsupported", a->coll);
    }
}

static podcclResult_t cma_run(pc_md *m, const pc_args *a) {
    int n = m->n;
    cma_op o = {.send = a->sendbuff, .recv = a->recvbuff, .es = pc_type_size(a->dtype)};
    size_t need = cma_tmp_bytes(m, a);
    o.tmp = m->ops->tmp(m, need);
    if (need && !o.tmp) return podcclSystemError;
    o.seq = ++*m->cma_seq;
    if (a->coll == PC_ALLTOALL && o.send == o.recv) {
        /* In place: peers read the old data. */
        memcpy(o.tmp, o.send, a->count * o.es * (size_t)n);
        o.send = o.tmp;
    }
    if (a->coll == PC_REDUCE) o.aux = o.tmp + (size_t)(n - 1) * piece_elems(m, o.es) * o.es;
    const size_t *cnt = a->counts;
    size_t decl[3];
    declared(m, a, decl);
    m->ops->publish(m, (const void *const[3]){o.send, o.recv, o.aux}, decl, cnt,
                    cnt ? cnt + n : NULL);
    m->ops->set(m, MD_W_CMA_ENTER, o.seq);
    PCCHECK(cma_work(m, a, &o));
    m->ops->set(m, MD_W_CMA_DONE, o.seq);
    /* Peers may still be reading this rank's buffers: wait for the ones that do. */
    if (a->coll == PC_BROADCAST && m->me != a->root) return podcclSuccess;
    return wait_all(m, MD_W_CMA_DONE, o.seq);
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
