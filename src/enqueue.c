/* The public collective calls: check, then run now (NULL stream), gather into the calling
 * thread's group, or queue on a stream. */
#include "src/enqueue.h"

#include <pthread.h>

#include "src/exec.h"
#include "src/tune.h"

/* ---- checks ------------------------------------------------------------------------------ */

static podcclResult_t check_comm(podcclComm_t comm, const char *fn) {
    if (!comm) return pc_err(NULL, podcclInvalidArgument, "%s: comm is NULL", fn);
    if (comm->magic != PC_COMM_MAGIC)
        return pc_err(NULL, podcclInvalidArgument,
                      "%s: comm is not a live communicator (destroyed?)", fn);
    int e = atomic_load(&comm->async_err);
    if (e != podcclSuccess)
        return pc_err(comm, (podcclResult_t)e, "%s: communicator is broken by an earlier error: %s",
                      fn, comm->last_err);
    return podcclSuccess;
}

static int overlap(const void *a, size_t alen, const void *b, size_t blen) {
    uintptr_t x = (uintptr_t)a, y = (uintptr_t)b;
    return alen && blen && x < y + blen && y < x + alen;
}

static const char *fname[PC_NCOLL] = {"podcclAllReduce", "podcclAllGather", "podcclReduceScatter",
                                      "podcclBroadcast", "podcclReduce",    "podcclAllToAll",
                                      "podcclAllToAllv", "podcclSend",      "podcclRecv",
                                      "podcclBarrier"};

/* Sizes in bytes of the send and receive buffers this rank passes, or an error. */
static podcclResult_t check_args(podcclComm_t comm, const pc_args *a) {
    const char *fn = fname[a->coll];
    int n = comm->nranks, me = comm->rank;
    if (a->coll == PC_BARRIER) return podcclSuccess;
    size_t es = pc_type_size(a->dtype);
    if ((unsigned)a->dtype >= podcclNumTypes || es == 0)
        return pc_err(comm, podcclInvalidArgument, "%s: unknown datatype %d", fn, (int)a->dtype);
    int reduces = a->coll == PC_ALLREDUCE || a->coll == PC_REDUCE || a->coll == PC_REDUCESCATTER;
    if (reduces && (unsigned)a->op >= podcclNumOps)
        return pc_err(comm, podcclInvalidArgument, "%s: unknown reduction op %d", fn, (int)a->op);
    int rooted =
        a->coll == PC_BROADCAST || a->coll == PC_REDUCE || a->coll == PC_SEND || a->coll == PC_RECV;
    if (rooted && (a->root < 0 || a->root >= n))
        return pc_err(comm, podcclInvalidArgument, "%s: %s %d not in [0, %d)", fn,
                      a->coll == PC_SEND || a->coll == PC_RECV ? "peer" : "root", a->root, n);
    if (a->coll == PC_ALLTOALLV) {
        const size_t *c = a->counts;
        size_t send_end = 0;
        for (int p = 0; p < n; p++)
            for (int side = 0; side < 2; side++) {
                size_t cnt = c[2 * side * n + p], dsp = c[(2 * side + 1) * n + p];
                if (cnt > SIZE_MAX / es || dsp > SIZE_MAX / es - cnt)
                    return pc_err(comm, podcclInvalidArgument,
                                  "%s: %s count/displacement for rank %d overflow", fn,
                                  side ? "receive" : "send", p);
                if (cnt && !(side ? a->recvbuff : a->sendbuff))
                    return pc_err(comm, podcclInvalidArgument, "%s: %sbuff is NULL with counts > 0",
                                  fn, side ? "recv" : "send");
                if (!side && cnt && (dsp + cnt) * es > send_end) send_end = (dsp + cnt) * es;
            }
        const size_t *rc = c + 2 * n, *rd = c + 3 * n;
        for (int p = 0; p < n; p++) {
            const char *rp = (const char *)a->recvbuff + rd[p] * es;
            if (overlap(rp, rc[p] * es, a->sendbuff, send_end))
                return pc_err(comm, podcclInvalidArgument,
                              "%s: receive region of rank %d overlaps sendbuff", fn, p);
            for (int q = p + 1; q < n; q++)
                if (overlap(rp, rc[p] * es, (const char *)a->recvbuff + rd[q] * es, rc[q] * es))
                    return pc_err(comm, podcclInvalidArgument,
                                  "%s: receive regions of ranks %d and %d overlap", fn, p, q);
        }
        return podcclSuccess;
    }
    /* Element counts of the two buffers, by the API's definitions. */
    int per_rank_recv = a->coll == PC_ALLGATHER || a->coll == PC_ALLTOALL;
    int per_rank_send = a->coll == PC_REDUCESCATTER || a->coll == PC_ALLTOALL;
    size_t lim = SIZE_MAX / es / ((per_rank_recv || per_rank_send) ? (size_t)n : 1);
    if (a->count > lim)
        return pc_err(comm, podcclInvalidArgument,
                      "%s: count %zu times %zu-byte elements overflows size_t", fn, a->count, es);
    size_t B = a->count * es;
    size_t sbytes = per_rank_send ? B * n : B, rbytes = per_rank_recv ? B * n : B;
    int uses_send = a->coll != PC_RECV && (a->coll != PC_BROADCAST || me == a->root);
    int uses_recv = a->coll != PC_SEND && (a->coll != PC_REDUCE || me == a->root);
    if (!uses_send) sbytes = 0;
    if (!uses_recv) rbytes = 0;
    if ((sbytes && !a->sendbuff) || (rbytes && !a->recvbuff))
        return pc_err(comm, podcclInvalidArgument, "%s: %s is NULL with count %zu", fn,
                      sbytes && !a->sendbuff ? "sendbuff" : "recvbuff", a->count);
    const char *s = a->sendbuff, *r = a->recvbuff;
    int in_place = 0;
    switch (a->coll) {
    case PC_ALLGATHER:
        in_place = s == r + (size_t)me * B;
        break;
    case PC_REDUCESCATTER:
        in_place = r == s + (size_t)me * B;
        break;
    case PC_SEND:
    case PC_RECV:
        in_place = 1;
        break;
    default:
        in_place = s == r;
    }
    if (!in_place && overlap(s, sbytes, r, rbytes))
        return pc_err(comm, podcclInvalidArgument,
                      "%s: sendbuff and recvbuff overlap but are not the in-place layout", fn);
    return podcclSuccess;
}

/* ---- running ----------------------------------------------------------------------------- */

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

static int breaks_comm(podcclResult_t r) {
    return r != podcclSuccess && r != podcclInvalidArgument && r != podcclInvalidUsage;
}

podcclResult_t pc_run(podcclComm_t comm, const pc_args *a) {
    podcclResult_t res;
    pthread_mutex_lock(&comm->use_lock);
    res = check_comm(comm, fname[a->coll]);
    if (res == podcclSuccess && atomic_load(&comm->aborted))
        res = pc_err(comm, podcclRemoteError, "%s: communicator aborted", fname[a->coll]);
    const pc_algo_desc *algo = NULL;
    /* count 0 is the same on every rank (counts must match), so nobody needs anybody: done,
     * as in NCCL. All-to-all-v and barrier still synchronise. */
    int empty = a->count == 0 && a->coll != PC_ALLTOALLV && a->coll != PC_BARRIER;
    if (res == podcclSuccess && !empty) res = tune_pick(comm, a, &algo);
    if (empty) {
        pthread_mutex_unlock(&comm->use_lock);
        return res;
    }
    if (res == podcclSuccess) {
        if (algo->run) {
            res = algo->run(comm, a);
        } else {
            pc_sched s = {0};
            res = build(comm, algo, a, &s);
            if (res == podcclSuccess) res = pc_exec(comm, &s);
            sched_free(&s);
        }
    }
    if (res == podcclSuccess && a->op == podcclAvg) {
        if (a->coll == PC_ALLREDUCE || a->coll == PC_REDUCESCATTER ||
            (a->coll == PC_REDUCE && comm->rank == a->root))
            pc_avg_finish(a->recvbuff, a->count, a->dtype, comm->nranks);
    }
    if (breaks_comm(res)) pc_comm_fail(comm, res);
    pthread_mutex_unlock(&comm->use_lock);
    return res;
}

/* ---- batches: a group's operations, or one operation -------------------------------------- */

typedef struct pc_item {
    podcclComm_t comm;
    pc_args a;
    struct pc_item *next;
} pc_item;

static void items_free(pc_item *it) {
    for (pc_item *n; it; it = n) {
        n = it->next;
        free(it->a.counts);
        free(it);
    }
}

static podcclResult_t run_p2p(podcclComm_t comm, pc_item *items) {
    pc_sched s = {0};
    podcclResult_t res = podcclSuccess;
    pthread_mutex_lock(&comm->use_lock);
    res = check_comm(comm, "podcclGroupEnd");
    for (pc_item *it = items; it && res == podcclSuccess; it = it->next)
        if (it->comm == comm && (it->a.coll == PC_SEND || it->a.coll == PC_RECV))
            res = p2p_add(&s, &it->a, comm->rank, comm->ex->chunk_bytes);
    if (res == podcclSuccess) res = pc_exec(comm, &s);
    if (breaks_comm(res)) pc_comm_fail(comm, res);
    pthread_mutex_unlock(&comm->use_lock);
    sched_free(&s);
    return res;
}

/* Collectives in issue order, then the point-to-point operations of each communicator as one
 * schedule. */
static podcclResult_t run_batch(pc_item *items) {
    podcclResult_t first = podcclSuccess, r;
    for (pc_item *it = items; it; it = it->next) {
        if (it->a.coll == PC_SEND || it->a.coll == PC_RECV) continue;
        r = pc_run(it->comm, &it->a);
        if (first == podcclSuccess) first = r;
    }
    for (pc_item *it = items; it; it = it->next) {
        if (it->a.coll != PC_SEND && it->a.coll != PC_RECV) continue;
        int seen = 0;
        for (pc_item *p = items; p != it; p = p->next)
            if (p->comm == it->comm && (p->a.coll == PC_SEND || p->a.coll == PC_RECV)) seen = 1;
        if (seen) continue;
        r = run_p2p(it->comm, items);
        if (first == podcclSuccess) first = r;
    }
    return first;
}

static void batch_release(pc_item *items) {
    for (pc_item *it = items; it; it = it->next) atomic_fetch_sub(&it->comm->active, 1);
}

/* ---- streams ----------------------------------------------------------------------------- */

typedef struct pc_batch {
    pc_item *items;
    struct pc_batch *next;
} pc_batch;

struct podcclStream {
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t work, idle;
    pc_batch *head, *tail;
    int busy, stop;
    podcclResult_t err;
};

static void *stream_main(void *arg) {
    podcclStream_t st = arg;
    pthread_mutex_lock(&st->lock);
    for (;;) {
        while (!st->head && !st->stop) pthread_cond_wait(&st->work, &st->lock);
        if (!st->head) break;
        pc_batch *b = st->head;
        st->head = b->next;
        if (!st->head) st->tail = NULL;
        st->busy = 1;
        pthread_mutex_unlock(&st->lock);
        podcclResult_t r = run_batch(b->items);
        batch_release(b->items);
        items_free(b->items);
        free(b);
        pthread_mutex_lock(&st->lock);
        if (st->err == podcclSuccess) st->err = r;
        st->busy = 0;
        if (!st->head) pthread_cond_broadcast(&st->idle);
    }
    pthread_mutex_unlock(&st->lock);
    return NULL;
}

podcclResult_t podcclStreamCreate(podcclStream_t *stream) {
    if (!stream) return pc_err(NULL, podcclInvalidArgument, "podcclStreamCreate: stream is NULL");
    podcclStream_t st = calloc(1, sizeof(*st));
    if (!st) return pc_err(NULL, podcclSystemError, "out of memory");
    pthread_mutex_init(&st->lock, NULL);
    pthread_cond_init(&st->work, NULL);
    pthread_cond_init(&st->idle, NULL);
    int e = pthread_create(&st->thread, NULL, stream_main, st);
    if (e) {
        free(st);
        return pc_err(NULL, podcclSystemError, "podcclStreamCreate: pthread_create: %s",
                      strerror(e));
    }
    *stream = st;
    return podcclSuccess;
}

podcclResult_t podcclStreamSynchronize(podcclStream_t st) {
    if (!st) return pc_err(NULL, podcclInvalidArgument, "podcclStreamSynchronize: stream is NULL");
    pthread_mutex_lock(&st->lock);
    while (st->head || st->busy) pthread_cond_wait(&st->idle, &st->lock);
    podcclResult_t r = st->err;
    st->err = podcclSuccess;
    pthread_mutex_unlock(&st->lock);
    return r;
}

podcclResult_t podcclStreamDestroy(podcclStream_t st) {
    if (!st) return pc_err(NULL, podcclInvalidArgument, "podcclStreamDestroy: stream is NULL");
    podcclResult_t r = podcclStreamSynchronize(st);
    pthread_mutex_lock(&st->lock);
    st->stop = 1;
    pthread_cond_broadcast(&st->work);
    pthread_mutex_unlock(&st->lock);
    pthread_join(st->thread, NULL);
    pthread_cond_destroy(&st->work);
    pthread_cond_destroy(&st->idle);
    pthread_mutex_destroy(&st->lock);
    free(st);
    return r;
}

static podcclResult_t stream_push(podcclStream_t st, pc_item *items) {
    pc_batch *b = calloc(1, sizeof(*b));
    if (!b) {
        batch_release(items);
        items_free(items);
        return pc_err(NULL, podcclSystemError, "out of memory");
    }
    b->items = items;
    pthread_mutex_lock(&st->lock);
    if (st->tail)
        st->tail->next = b;
    else
        st->head = b;
    st->tail = b;
    pthread_cond_signal(&st->work);
    pthread_mutex_unlock(&st->lock);
    return podcclSuccess;
}

/* ---- groups ------------------------------------------------------------------------------ */

static __thread int group_depth;
static __thread pc_item *group_head, *group_tail;
static __thread podcclStream_t group_stream;

podcclResult_t podcclGroupStart(void) {
    group_depth++;
    return podcclSuccess;
}

podcclResult_t podcclGroupEnd(void) {
    if (group_depth == 0)
        return pc_err(NULL, podcclInvalidUsage,
                      "podcclGroupEnd without a matching podcclGroupStart");
    if (--group_depth > 0) return podcclSuccess;
    pc_item *items = group_head;
    podcclStream_t st = group_stream;
    group_head = group_tail = NULL;
    group_stream = NULL;
    if (!items) return podcclSuccess;
    if (st) return stream_push(st, items);
    podcclResult_t r = run_batch(items);
    batch_release(items);
    items_free(items);
    return r;
}

/* Checks, then runs, groups or queues one operation. */
static podcclResult_t submit(podcclComm_t comm, pc_args *a, podcclStream_t stream) {
    PCCHECK(check_comm(comm, fname[a->coll]));
    PCCHECK(check_args(comm, a));
    if (!group_depth && !stream) {
        atomic_fetch_add(&comm->active, 1);
        podcclResult_t r = a->coll == PC_SEND || a->coll == PC_RECV
                               ? run_batch(&(pc_item){.comm = comm, .a = *a})
                               : pc_run(comm, a);
        atomic_fetch_sub(&comm->active, 1);
        return r;
    }
    pc_item *it = calloc(1, sizeof(*it));
    if (!it) return pc_err(comm, podcclSystemError, "out of memory");
    it->comm = comm;
    it->a = *a;
    if (a->counts) {
        /* The caller may reuse its count arrays as soon as the call returns. */
        size_t bytes = sizeof(size_t) * 4 * (size_t)comm->nranks;
        it->a.counts = malloc(bytes);
        if (!it->a.counts) {
            free(it);
            return pc_err(comm, podcclSystemError, "out of memory");
        }
        memcpy(it->a.counts, a->counts, bytes);
    }
    atomic_fetch_add(&comm->active, 1);
    if (group_depth) {
        if (group_tail)
            group_tail->next = it;
        else
            group_head = it;
        group_tail = it;
        if (!group_stream) group_stream = stream;
        return podcclSuccess;
    }
    return stream_push(stream, it);
}

/* ---- the API ----------------------------------------------------------------------------- */

podcclResult_t podcclAllReduce(const void *sendbuff, void *recvbuff, size_t count,
                               podcclDataType_t datatype, podcclRedOp_t op, podcclComm_t comm,
                               podcclStream_t stream) {
    pc_args a = {.coll = PC_ALLREDUCE,
                 .sendbuff = sendbuff,
                 .recvbuff = recvbuff,
                 .count = count,
                 .dtype = datatype,
                 .op = op};
    return submit(comm, &a, stream);
}

podcclResult_t podcclAllGather(const void *sendbuff, void *recvbuff, size_t sendcount,
                               podcclDataType_t datatype, podcclComm_t comm,
                               podcclStream_t stream) {
    pc_args a = {.coll = PC_ALLGATHER,
                 .sendbuff = sendbuff,
                 .recvbuff = recvbuff,
                 .count = sendcount,
                 .dtype = datatype};
    return submit(comm, &a, stream);
}

podcclResult_t podcclReduceScatter(const void *sendbuff, void *recvbuff, size_t recvcount,
                                   podcclDataType_t datatype, podcclRedOp_t op, podcclComm_t comm,
                                   podcclStream_t stream) {
    pc_args a = {.coll = PC_REDUCESCATTER,
                 .sendbuff = sendbuff,
                 .recvbuff = recvbuff,
                 .count = recvcount,
                 .dtype = datatype,
                 .op = op};
    return submit(comm, &a, stream);
}

podcclResult_t podcclBroadcast(const void *sendbuff, void *recvbuff, size_t count,
                               podcclDataType_t datatype, int root, podcclComm_t comm,
                               podcclStream_t stream) {
    pc_args a = {.coll = PC_BROADCAST,
                 .sendbuff = sendbuff,
                 .recvbuff = recvbuff,
                 .count = count,
                 .dtype = datatype,
                 .root = root};
    return submit(comm, &a, stream);
}

podcclResult_t podcclReduce(const void *sendbuff, void *recvbuff, size_t count,
                            podcclDataType_t datatype, podcclRedOp_t op, int root,
                            podcclComm_t comm, podcclStream_t stream) {
    pc_args a = {.coll = PC_REDUCE,
                 .sendbuff = sendbuff,
                 .recvbuff = recvbuff,
                 .count = count,
                 .dtype = datatype,
                 .op = op,
                 .root = root};
    return submit(comm, &a, stream);
}

podcclResult_t podcclAllToAll(const void *sendbuff, void *recvbuff, size_t count,
                              podcclDataType_t datatype, podcclComm_t comm, podcclStream_t stream) {
    pc_args a = {.coll = PC_ALLTOALL,
                 .sendbuff = sendbuff,
                 .recvbuff = recvbuff,
                 .count = count,
                 .dtype = datatype};
    return submit(comm, &a, stream);
}

podcclResult_t podcclAllToAllv(const void *sendbuff, const size_t sendcounts[],
                               const size_t sdispls[], void *recvbuff, const size_t recvcounts[],
                               const size_t rdispls[], podcclDataType_t datatype, podcclComm_t comm,
                               podcclStream_t stream) {
    PCCHECK(check_comm(comm, "podcclAllToAllv"));
    if (!sendcounts || !sdispls || !recvcounts || !rdispls)
        return pc_err(comm, podcclInvalidArgument,
                      "podcclAllToAllv: a count or displacement array is NULL");
    int n = comm->nranks;
    size_t *c = malloc(sizeof(size_t) * 4 * (size_t)n);
    if (!c) return pc_err(comm, podcclSystemError, "out of memory");
    memcpy(c, sendcounts, sizeof(size_t) * n);
    memcpy(c + n, sdispls, sizeof(size_t) * n);
    memcpy(c + 2 * n, recvcounts, sizeof(size_t) * n);
    memcpy(c + 3 * n, rdispls, sizeof(size_t) * n);
    pc_args a = {.coll = PC_ALLTOALLV,
                 .sendbuff = sendbuff,
                 .recvbuff = recvbuff,
                 .dtype = datatype,
                 .counts = c};
    podcclResult_t r = submit(comm, &a, stream);
    free(c);
    return r;
}

podcclResult_t podcclSend(const void *sendbuff, size_t count, podcclDataType_t datatype, int peer,
                          podcclComm_t comm, podcclStream_t stream) {
    pc_args a = {
        .coll = PC_SEND, .sendbuff = sendbuff, .count = count, .dtype = datatype, .root = peer};
    return submit(comm, &a, stream);
}

podcclResult_t podcclRecv(void *recvbuff, size_t count, podcclDataType_t datatype, int peer,
                          podcclComm_t comm, podcclStream_t stream) {
    pc_args a = {
        .coll = PC_RECV, .recvbuff = recvbuff, .count = count, .dtype = datatype, .root = peer};
    return submit(comm, &a, stream);
}

podcclResult_t podcclBarrier(podcclComm_t comm, podcclStream_t stream) {
    pc_args a = {.coll = PC_BARRIER, .dtype = podcclUint8};
    return submit(comm, &a, stream);
}
