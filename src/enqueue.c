/* The public collective calls: check, then run now (NULL stream), gather into the calling
 * thread's group, or queue on a stream. */
#include "src/enqueue.h"

#include <pthread.h>

#include "src/exec.h"
#include "src/sig.h"
#include "src/trace.h"
#include "src/tune.h"

/* ---- checks ------------------------------------------------------------------------------ */

/* The largest buffer a call may describe: the x86-64 user address space (2^47 bytes). Bytes
 * beyond it cannot exist in memory. */
#define PC_MAX_BUFFER_BYTES ((size_t)1 << 47)
/* Pipeline chunks of PODCCL_CHUNK_BYTES that a call's largest buffer may span. Schedules have a
 * few steps per chunk (per peer and level), so this bounds their size and keeps their int step
 * indices far from overflow: 512 GiB at the default 128 KiB chunk, 16 GiB at the smallest. */
#define PC_MAX_CHUNKS ((size_t)1 << 22)

static const char *fname[PC_NCOLL] = {"podcclAllReduce", "podcclAllGather", "podcclReduceScatter",
                                      "podcclBroadcast", "podcclReduce",    "podcclAllToAll",
                                      "podcclAllToAllv", "podcclSend",      "podcclRecv",
                                      "podcclBarrier"};

/* Whether comm is broken; the caller holds a reference. Names the first breaking error, once. */
static podcclResult_t check_state(podcclComm_t comm, const char *fn) {
    int e = pc_comm_async(comm);
    if (e == podcclSuccess) return podcclSuccess;
    char first[512];
    pc_comm_first_err(comm, first, sizeof(first));
    return pc_err(comm, (podcclResult_t)e, "%s: communicator is broken by an earlier error: %s", fn,
                  first);
}

/* Takes a reference on comm if it is a live communicator (*serial: its registration), checked
 * in the registry without reading comm, then checks that it is not broken. */
static podcclResult_t enter(podcclComm_t comm, const char *fn, uint64_t *serial) {
    if (!comm) return pc_err(NULL, podcclInvalidArgument, "%s: comm is NULL", fn);
    if (!pc_comm_acquire(comm, 0, serial))
        return pc_err(NULL, podcclInvalidArgument,
                      "%s: comm is not a live communicator (destroyed?)", fn);
    podcclResult_t r = check_state(comm, fn);
    if (r != podcclSuccess) pc_comm_release(comm);
    return r;
}

/* Whether [a, a + alen) and [b, b + blen) share a byte. From the distance between the starts,
 * so that no sum wraps around the address space. */
static int overlap(const void *a, size_t alen, const void *b, size_t blen) {
    uintptr_t x = (uintptr_t)a, y = (uintptr_t)b;
    if (!alen || !blen) return 0;
    return x <= y ? y - x < alen : x - y < blen;
}

/* A buffer of len bytes at p must end inside the address space. */
static podcclResult_t check_span(podcclComm_t comm, const char *fn, const char *name, const void *p,
                                 size_t len) {
    if (len <= UINTPTR_MAX - (uintptr_t)p) return podcclSuccess;
    return pc_err(comm, podcclInvalidArgument,
                  "%s: %s %p + %zu bytes runs past the end of the address space", fn, name, p, len);
}

/* Pipeline chunks bound (PC_MAX_CHUNKS) in bytes. */
static size_t chunks_limit(podcclComm_t comm) {
    size_t chunk = comm->ex->chunk_bytes;
    return chunk > SIZE_MAX / PC_MAX_CHUNKS ? SIZE_MAX : chunk * PC_MAX_CHUNKS;
}

/* Counts whose bytes cannot exist in memory, or would need more than PC_MAX_CHUNKS pipeline
 * chunks. Decided from count, datatype and nranks (and PODCCL_CHUNK_BYTES), which every rank
 * passes alike, so that every rank rejects the call and none waits for another. *whole: the
 * bytes of the call's largest buffer (count x element x nranks where the API multiplies). */
static podcclResult_t check_count(podcclComm_t comm, const pc_args *a, size_t es, size_t *whole) {
    const char *fn = fname[a->coll];
    int per_rank = a->coll == PC_ALLGATHER || a->coll == PC_REDUCESCATTER || a->coll == PC_ALLTOALL;
    size_t mult = per_rank ? (size_t)comm->nranks : 1;
    char what[96];
    int k = snprintf(what, sizeof(what), "count %zu x %zu bytes", a->count, es);
    if (per_rank && k > 0 && (size_t)k < sizeof(what))
        snprintf(what + k, sizeof(what) - (size_t)k, " x %d rank%s", comm->nranks,
                 comm->nranks == 1 ? "" : "s");
    if (a->count > SIZE_MAX / es / mult)
        return pc_err(comm, podcclInvalidArgument,
                      "%s: %s overflows size_t: these bytes cannot exist in memory", fn, what);
    *whole = a->count * es * mult;
    if (*whole > PC_MAX_BUFFER_BYTES)
        return pc_err(comm, podcclInvalidArgument,
                      "%s: %s = %zu bytes cannot exist in memory (more than 2^47 bytes, the "
                      "x86-64 user address space)",
                      fn, what, *whole);
    if (*whole > chunks_limit(comm))
        return pc_err(comm, podcclInvalidArgument,
                      "%s: %s = %zu bytes is more than %zu pipeline chunks of %zu bytes "
                      "(PODCCL_CHUNK_BYTES): raise PODCCL_CHUNK_BYTES or split the call",
                      fn, what, *whole, PC_MAX_CHUNKS, comm->ex->chunk_bytes);
    return podcclSuccess;
}

/* All-to-all-v: counts differ between ranks, so only this rank's view can be checked: every
 * region inside the address space, the pipeline bound on what this rank moves, the block this
 * rank sends itself equal to the one it expects from itself (the self copy writes sendcounts[me]
 * elements into a region of recvcounts[me]), and receive regions disjoint. Displacements beyond
 * what the counts need are fine. */
static podcclResult_t check_alltoallv(podcclComm_t comm, const pc_args *a, size_t es) {
    const char *fn = fname[PC_ALLTOALLV];
    int n = comm->nranks, me = comm->rank;
    const size_t *c = a->counts;
    size_t end[2] = {0, 0}, moved[2] = {0, 0}, limit = chunks_limit(comm);
    for (int side = 0; side < 2; side++) {
        const char *buf = side ? a->recvbuff : a->sendbuff, *sname = side ? "receive" : "send";
        for (int p = 0; p < n; p++) {
            size_t cnt = c[2 * side * n + p], dsp = c[(2 * side + 1) * n + p];
            if (cnt > PC_MAX_BUFFER_BYTES / es || dsp > PC_MAX_BUFFER_BYTES / es - cnt)
                return pc_err(comm, podcclInvalidArgument,
                              "%s: %s region for rank %d (displacement %zu + count %zu elements "
                              "of %zu bytes) ends beyond 2^47 bytes: cannot exist in memory",
                              fn, sname, p, dsp, cnt, es);
            if (!cnt) continue;
            if (!buf)
                return pc_err(comm, podcclInvalidArgument, "%s: %sbuff is NULL with counts > 0", fn,
                              side ? "recv" : "send");
            if ((dsp + cnt) * es > end[side]) end[side] = (dsp + cnt) * es;
            if (cnt * es > limit - moved[side])
                return pc_err(comm, podcclInvalidArgument,
                              "%s: this rank's %s counts add up to more than %zu pipeline "
                              "chunks of %zu bytes (PODCCL_CHUNK_BYTES): raise "
                              "PODCCL_CHUNK_BYTES or split the call",
                              fn, sname, PC_MAX_CHUNKS, comm->ex->chunk_bytes);
            moved[side] += cnt * es;
        }
        PCCHECK(check_span(comm, fn, side ? "recvbuff" : "sendbuff", buf, end[side]));
    }
    if (c[me] != c[2 * n + me])
        return pc_err(comm, podcclInvalidArgument,
                      "%s: rank %d sends itself %zu elements (sendcounts[%d]) but expects %zu "
                      "from itself (recvcounts[%d]): they must be equal",
                      fn, me, c[me], me, c[2 * n + me], me);
    const size_t *rc = c + 2 * n, *rd = c + 3 * n;
    for (int p = 0; p < n; p++) {
        const char *rp = (const char *)a->recvbuff + rd[p] * es;
        if (overlap(rp, rc[p] * es, a->sendbuff, end[0]))
            return pc_err(comm, podcclInvalidArgument,
                          "%s: receive region of rank %d overlaps sendbuff", fn, p);
        for (int q = p + 1; q < n; q++)
            if (overlap(rp, rc[p] * es, (const char *)a->recvbuff + rd[q] * es, rc[q] * es))
                return pc_err(comm, podcclInvalidArgument,
                              "%s: receive regions of ranks %d and %d overlap", fn, p, q);
    }
    return podcclSuccess;
}

/* What every rank passes alike comes first (datatype, op, root, count), so that all ranks
 * reject a bad call together; then what is this rank's own (its buffers). */
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
    if (a->coll == PC_ALLTOALLV) return check_alltoallv(comm, a, es);
    size_t whole = 0;
    PCCHECK(check_count(comm, a, es, &whole));
    /* Bytes of the two buffers, by the API's definitions. */
    size_t B = a->count * es;
    size_t sbytes = a->coll == PC_REDUCESCATTER || a->coll == PC_ALLTOALL ? whole : B;
    size_t rbytes = a->coll == PC_ALLGATHER || a->coll == PC_ALLTOALL ? whole : B;
    int uses_send = a->coll != PC_RECV && (a->coll != PC_BROADCAST || me == a->root);
    int uses_recv = a->coll != PC_SEND && (a->coll != PC_REDUCE || me == a->root);
    if (!uses_send) sbytes = 0;
    if (!uses_recv) rbytes = 0;
    if ((sbytes && !a->sendbuff) || (rbytes && !a->recvbuff))
        return pc_err(comm, podcclInvalidArgument, "%s: %s is NULL with count %zu", fn,
                      sbytes && !a->sendbuff ? "sendbuff" : "recvbuff", a->count);
    PCCHECK(check_span(comm, fn, "sendbuff", a->sendbuff, sbytes));
    PCCHECK(check_span(comm, fn, "recvbuff", a->recvbuff, rbytes));
    uintptr_t s = (uintptr_t)a->sendbuff, r = (uintptr_t)a->recvbuff;
    int in_place;
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
    if (!in_place && overlap(a->sendbuff, sbytes, a->recvbuff, rbytes))
        return pc_err(comm, podcclInvalidArgument,
                      "%s: sendbuff and recvbuff overlap but are not the in-place layout", fn);
    return podcclSuccess;
}

/* ---- running ----------------------------------------------------------------------------- */

/* Whether an error breaks the communicator (podccl.h, NCCL's rule): every error but
 * InvalidArgument does once data may have moved (started: a mismatch found mid-operation is an
 * InvalidUsage that breaks it). Before that, InvalidUsage (a forced algorithm that cannot run
 * this call) leaves it usable, as nothing happened. */
static int breaks_comm(podcclResult_t r, int started) {
    if (r == podcclSuccess || r == podcclInvalidArgument) return 0;
    return started || r != podcclInvalidUsage;
}

podcclResult_t pc_run(podcclComm_t comm, const pc_args *a) {
    podcclResult_t res;
    int started = 0;
    pthread_mutex_lock(&comm->use_lock);
    res = check_state(comm, fname[a->coll]);
    if (res == podcclSuccess && atomic_load(&comm->aborted))
        res = pc_err(comm, podcclRemoteError, "%s: communicator aborted", fname[a->coll]);
    /* Every rank numbers every collective (mismatch checks), also one it has nothing to do in. */
    if (res == podcclSuccess) res = pc_op_begin(comm, a);
    const pc_algo_desc *algo = NULL;
    /* count 0 is the same on every rank (counts must match), so nobody needs anybody: done,
     * as in NCCL. All-to-all-v and barrier still synchronise. */
    int empty = a->count == 0 && a->coll != PC_ALLTOALLV && a->coll != PC_BARRIER;
    if (res == podcclSuccess && !empty) res = tune_pick(comm, a, &algo);
    trace_begin(comm, a, algo, res);
    if (empty) {
        pthread_mutex_unlock(&comm->use_lock);
        return res;
    }
    if (res == podcclSuccess) res = pc_exec_call(comm, algo, a, &started);
    if (res == podcclSuccess && a->op == podcclAvg) {
        if (a->coll == PC_ALLREDUCE || a->coll == PC_REDUCESCATTER ||
            (a->coll == PC_REDUCE && comm->rank == a->root))
            pc_avg_finish(a->recvbuff, a->count, a->dtype, comm->nranks);
    }
    if (breaks_comm(res, started)) pc_comm_fail(comm, res);
    trace_end(comm, res);
    pthread_mutex_unlock(&comm->use_lock);
    return res;
}

/* ---- batches: a group's operations, or one operation -------------------------------------- */

/* One queued operation. In an open group it holds no reference on comm (so that a destroy or
 * abort from another thread does not wait for this thread's podcclGroupEnd), and serial tells
 * at podcclGroupEnd whether comm is still the communicator it was queued on; on a stream, and
 * while a batch runs, it holds one. */
typedef struct pc_item {
    podcclComm_t comm;
    uint64_t serial;
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
    int started = 0;
    pthread_mutex_lock(&comm->use_lock);
    res = check_state(comm, "podcclGroupEnd");
    if (res == podcclSuccess && atomic_load(&comm->aborted))
        res = pc_err(comm, podcclRemoteError, "podcclGroupEnd: communicator aborted");
    for (pc_item *it = items; it && res == podcclSuccess; it = it->next)
        if (it->comm == comm && (it->a.coll == PC_SEND || it->a.coll == PC_RECV))
            res = p2p_add(&s, &it->a, comm->rank, comm->ex->chunk_bytes);
    if (res == podcclSuccess) pc_op_p2p(comm);
    trace_begin_p2p(comm, &s);
    if (res == podcclSuccess) started = 1, res = pc_exec(comm, &s);
    if (breaks_comm(res, started)) pc_comm_fail(comm, res);
    trace_end(comm, res);
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

/* Each item holds its own reference, so a communicator is never freed before the release of
 * the last item that uses it. */
static void batch_release(pc_item *items) {
    for (pc_item *it = items; it; it = it->next) pc_comm_release(it->comm);
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

int pc_group_pending(podcclComm_t comm, uint64_t serial) {
    int k = 0;
    for (pc_item *it = group_head; it; it = it->next) k += it->comm == comm && it->serial == serial;
    return k;
}

int pc_group_drop(podcclComm_t comm, uint64_t serial) {
    int k = 0;
    pc_item **pp = &group_head;
    group_tail = NULL;
    while (*pp) {
        pc_item *it = *pp;
        if (it->comm == comm && it->serial == serial) {
            *pp = it->next;
            free(it->a.counts);
            free(it);
            k++;
        } else {
            group_tail = it;
            pp = &it->next;
        }
    }
    if (!group_head) group_stream = NULL;
    return k;
}

/* Takes a reference on each item's communicator for the batch. An item whose communicator was
 * destroyed or aborted (by another thread) since it was queued is dropped: InvalidArgument, the
 * first such error is returned, and the other items still run. */
static podcclResult_t hold_items(pc_item **items) {
    podcclResult_t first = podcclSuccess;
    for (pc_item **pp = items; *pp;) {
        pc_item *it = *pp;
        if (pc_comm_acquire(it->comm, it->serial, NULL)) {
            pp = &it->next;
            continue;
        }
        podcclResult_t r = pc_err(NULL, podcclInvalidArgument,
                                  "podcclGroupEnd: the communicator of a queued %s is not a live "
                                  "communicator any more (destroyed?); that operation is dropped",
                                  fname[it->a.coll]);
        if (first == podcclSuccess) first = r;
        *pp = it->next;
        free(it->a.counts);
        free(it);
    }
    return first;
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
    podcclResult_t gone = hold_items(&items), r = podcclSuccess;
    if (!items) return gone;
    if (st) {
        r = stream_push(st, items);
    } else {
        r = run_batch(items);
        batch_release(items);
        items_free(items);
    }
    return gone != podcclSuccess ? gone : r;
}

/* Checks, then runs, groups or queues one operation; the caller holds a reference on comm
 * (registration serial) and keeps it. */
static podcclResult_t submit_held(podcclComm_t comm, const pc_args *a, podcclStream_t stream,
                                  uint64_t serial) {
    PCCHECK(check_args(comm, a));
    if (!group_depth && !stream)
        return a->coll == PC_SEND || a->coll == PC_RECV
                   ? run_batch(&(pc_item){.comm = comm, .serial = serial, .a = *a})
                   : pc_run(comm, a);
    pc_item *it = calloc(1, sizeof(*it));
    if (!it) return pc_err(comm, podcclSystemError, "out of memory");
    it->comm = comm;
    it->serial = serial;
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
    trace_queued(comm, a);
    if (group_depth) {
        if (group_tail)
            group_tail->next = it;
        else
            group_head = it;
        group_tail = it;
        if (!group_stream) group_stream = stream;
        return podcclSuccess;
    }
    atomic_fetch_add(&comm->active, 1); /* the stream item's own reference */
    return stream_push(stream, it);
}

static podcclResult_t submit(podcclComm_t comm, const pc_args *a, podcclStream_t stream) {
    uint64_t serial = 0;
    PCCHECK(enter(comm, fname[a->coll], &serial));
    podcclResult_t r = submit_held(comm, a, stream, serial);
    pc_comm_release(comm);
    return r;
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
    uint64_t serial = 0;
    PCCHECK(enter(comm, "podcclAllToAllv", &serial));
    podcclResult_t r;
    size_t n = (size_t)comm->nranks, *c = NULL;
    if (!sendcounts || !sdispls || !recvcounts || !rdispls) {
        r = pc_err(comm, podcclInvalidArgument,
                   "podcclAllToAllv: a count or displacement array is NULL");
        goto out;
    }
    c = malloc(sizeof(size_t) * 4 * n);
    if (!c) {
        r = pc_err(comm, podcclSystemError, "out of memory");
        goto out;
    }
    memcpy(c, sendcounts, sizeof(size_t) * n);
    memcpy(c + n, sdispls, sizeof(size_t) * n);
    memcpy(c + 2 * n, recvcounts, sizeof(size_t) * n);
    memcpy(c + 3 * n, rdispls, sizeof(size_t) * n);
    pc_args a = {.coll = PC_ALLTOALLV,
                 .sendbuff = sendbuff,
                 .recvbuff = recvbuff,
                 .dtype = datatype,
                 .counts = c};
    r = submit_held(comm, &a, stream, serial);
out:
    free(c);
    pc_comm_release(comm);
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
