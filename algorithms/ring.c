/* Ring algorithms, pipelined in chunks (NCCL's ring; Patarasuk & Yuan, JPDC 2009, for the
 * bandwidth-optimal all-reduce as reduce-scatter then all-gather). Every rank sends to rank+1
 * and receives from rank-1; chunk c of a block can move on as soon as chunk c arrived, so copy
 * and reduction of different chunks overlap along the ring. */
#include <stdlib.h>
#include <string.h>

#include "algorithms/algo.h"
#include "src/core.h"

/* Block b of n over count elements: balanced, the first count % n blocks one element larger. */
static size_t blk_off(size_t count, int n, int b) {
    size_t q = count / (size_t)n, r = count % (size_t)n;
    return q * (size_t)b + ((size_t)b < r ? (size_t)b : r);
}
static size_t blk_len(size_t count, int n, int b) {
    return blk_off(count, n, b + 1) - blk_off(count, n, b);
}
static int mod(int a, int n) {
    return ((a % n) + n) % n;
}
static size_t nchunks(size_t bytes, size_t chunk) {
    return bytes ? (bytes + chunk - 1) / chunk : 0;
}

/* Chunk size rounded down to whole elements. */
static size_t elem_chunk(size_t chunk, size_t es) {
    size_t c = chunk / es * es;
    return c ? c : es;
}

/* dep indices of the receives of the previous ring step, per chunk. */
typedef struct {
    int *prev, *cur;
    size_t cap;
} deps_t;

static int deps_init(deps_t *d, size_t cap) {
    d->cap = cap ? cap : 1;
    d->prev = malloc(sizeof(int) * d->cap);
    d->cur = malloc(sizeof(int) * d->cap);
    if (!d->prev || !d->cur) return -1;
    for (size_t i = 0; i < d->cap; i++) d->prev[i] = d->cur[i] = -1;
    return 0;
}
static void deps_swap(deps_t *d) {
    int *t = d->prev;
    d->prev = d->cur, d->cur = t;
    for (size_t i = 0; i < d->cap; i++) d->cur[i] = -1;
}
static void deps_free(deps_t *d) {
    free(d->prev), free(d->cur);
}

static podcclResult_t finish(pc_sched *s, deps_t *d) {
    deps_free(d);
    return s->oom ? pc_err(NULL, podcclSystemError, "out of memory building a schedule")
                  : podcclSuccess;
}

/* One ring step: send block [sbase, sbytes) to next, receive [rbytes) from prev into rdst
 * (reducing with rsrc when rsrc != NULL). The send of chunk c waits on d->prev[c]. */
static void ring_step(pc_sched *s, deps_t *d, int next, int prev, const char *sbase, size_t sbytes,
                      const char *rsrc, char *rdst, size_t rbytes, size_t chunk) {
    size_t ns = nchunks(sbytes, chunk), nr = nchunks(rbytes, chunk);
    for (size_t c = 0; c < ns || c < nr; c++) {
        if (c < ns) {
            size_t len = sbytes - c * chunk < chunk ? sbytes - c * chunk : chunk;
            sched_add(s, PC_STEP_SEND, next, sbase + c * chunk, NULL, len, d->prev[c]);
        }
        if (c < nr) {
            size_t off = c * chunk, len = rbytes - off < chunk ? rbytes - off : chunk;
            d->cur[c] =
                rsrc ? sched_add(s, PC_STEP_RECV_REDUCE, prev, rsrc + off, rdst + off, len, -1)
                     : sched_add(s, PC_STEP_RECV, prev, NULL, rdst + off, len, -1);
        }
    }
    deps_swap(d);
}

podcclResult_t ring_allreduce(pc_sched *s, const pc_args *a, const pc_ring *rg, size_t chunk) {
    int rank = rg->ord[rg->pos], n = rg->n, pos = rg->pos;
    size_t es = pc_type_size(a->dtype), count = a->count;
    const char *send = a->sendbuff;
    char *recv = a->recvbuff;
    if (n == 1) {
        if (send != recv) sched_add(s, PC_STEP_COPY, rank, send, recv, count * es, -1);
        return s->oom ? pc_err(NULL, podcclSystemError, "out of memory") : podcclSuccess;
    }
    chunk = elem_chunk(chunk, es);
    deps_t d;
    if (deps_init(&d, nchunks(blk_len(count, n, 0) * es, chunk)))
        return pc_err(NULL, podcclSystemError, "out of memory");
    int next = rg->ord[mod(pos + 1, n)], prev = rg->ord[mod(pos - 1, n)];
    /* Blocks are numbered by ring position. Reduce-scatter: after n-1 steps this rank holds the
     * full reduction of block pos+1. */
    for (int st = 0; st < n - 1; st++) {
        int bs = mod(pos - st, n), br = mod(pos - st - 1, n);
        const char *sb = (st == 0 ? send : recv) + blk_off(count, n, bs) * es;
        size_t ro = blk_off(count, n, br) * es;
        ring_step(s, &d, next, prev, sb, blk_len(count, n, bs) * es, send + ro, recv + ro,
                  blk_len(count, n, br) * es, chunk);
    }
    /* All-gather of the reduced blocks, starting with block pos+1. */
    for (int st = 0; st < n - 1; st++) {
        int bs = mod(pos + 1 - st, n), br = mod(pos - st, n);
        ring_step(s, &d, next, prev, recv + blk_off(count, n, bs) * es, blk_len(count, n, bs) * es,
                  NULL, recv + blk_off(count, n, br) * es, blk_len(count, n, br) * es, chunk);
    }
    return finish(s, &d);
}

podcclResult_t ring_allgather(pc_sched *s, const pc_args *a, const pc_ring *rg, size_t chunk) {
    int rank = rg->ord[rg->pos], n = rg->n, pos = rg->pos;
    size_t B = a->count * pc_type_size(a->dtype);
    const char *send = a->sendbuff;
    char *recv = a->recvbuff;
    if (send != recv + (size_t)rank * B)
        sched_add(s, PC_STEP_COPY, rank, send, recv + (size_t)rank * B, B, -1);
    if (n == 1) return s->oom ? pc_err(NULL, podcclSystemError, "out of memory") : podcclSuccess;
    chunk = elem_chunk(chunk, pc_type_size(a->dtype));
    deps_t d;
    if (deps_init(&d, nchunks(B, chunk))) return pc_err(NULL, podcclSystemError, "out of memory");
    int next = rg->ord[mod(pos + 1, n)], prev = rg->ord[mod(pos - 1, n)];
    /* Blocks are numbered by rank: step st forwards the block of the rank st places back. */
    for (int st = 0; st < n - 1; st++) {
        int bs = rg->ord[mod(pos - st, n)], br = rg->ord[mod(pos - st - 1, n)];
        ring_step(s, &d, next, prev, st == 0 ? send : recv + (size_t)bs * B, B, NULL,
                  recv + (size_t)br * B, B, chunk);
    }
    return finish(s, &d);
}

podcclResult_t ring_reducescatter(pc_sched *s, const pc_args *a, const pc_ring *rg, size_t chunk,
                                  char *tmp) {
    int rank = rg->ord[rg->pos], n = rg->n, pos = rg->pos;
    size_t B = a->count * pc_type_size(a->dtype);
    const char *send = a->sendbuff;
    char *recv = a->recvbuff;
    if (n == 1) {
        if (send != recv) sched_add(s, PC_STEP_COPY, rank, send, recv, B, -1);
        return s->oom ? pc_err(NULL, podcclSystemError, "out of memory") : podcclSuccess;
    }
    chunk = elem_chunk(chunk, pc_type_size(a->dtype));
    deps_t d;
    if (deps_init(&d, nchunks(B, chunk))) return pc_err(NULL, podcclSystemError, "out of memory");
    int next = rg->ord[mod(pos + 1, n)], prev = rg->ord[mod(pos - 1, n)];
    /* Shifted by one block from all-reduce so that the last step completes block `rank` (the
     * block of ring position pos); partial sums of other blocks live in tmp. */
    for (int st = 0; st < n - 1; st++) {
        int bs = rg->ord[mod(pos - st - 1, n)], br = rg->ord[mod(pos - st - 2, n)];
        const char *sb = (st == 0 ? send : tmp) + (size_t)bs * B;
        char *rd = st == n - 2 ? recv : tmp + (size_t)br * B;
        ring_step(s, &d, next, prev, sb, B, send + (size_t)br * B, rd, B, chunk);
    }
    return finish(s, &d);
}

podcclResult_t ring_broadcast(pc_sched *s, const pc_args *a, const pc_ring *rg, size_t chunk) {
    int rank = rg->ord[rg->pos], n = rg->n, pos = rg->pos;
    size_t bytes = a->count * pc_type_size(a->dtype);
    const char *send = a->sendbuff;
    char *recv = a->recvbuff;
    int p = mod(pos - rg->pos_of[a->root], n), next = rg->ord[mod(pos + 1, n)],
        prev = rg->ord[mod(pos - 1, n)];
    if (p == 0 && send != recv) sched_add(s, PC_STEP_COPY, rank, send, recv, bytes, -1);
    chunk = elem_chunk(chunk, pc_type_size(a->dtype));
    for (size_t off = 0; off < bytes && n > 1; off += chunk) {
        size_t len = bytes - off < chunk ? bytes - off : chunk;
        int r = p > 0 ? sched_add(s, PC_STEP_RECV, prev, NULL, recv + off, len, -1) : -1;
        if (p < n - 1) sched_add(s, PC_STEP_SEND, next, (p == 0 ? send : recv) + off, NULL, len, r);
    }
    return s->oom ? pc_err(NULL, podcclSystemError, "out of memory") : podcclSuccess;
}

podcclResult_t ring_reduce(pc_sched *s, const pc_args *a, const pc_ring *rg, size_t chunk,
                           char *tmp) {
    int rank = rg->ord[rg->pos], n = rg->n, pos = rg->pos;
    size_t bytes = a->count * pc_type_size(a->dtype);
    const char *send = a->sendbuff;
    char *recv = a->recvbuff;
    /* A chain from the root's successor to the root: chain position 0 only sends, position n-1
     * (root) only receives. */
    int p = mod(pos - rg->pos_of[a->root] - 1, n), next = rg->ord[mod(pos + 1, n)],
        prev = rg->ord[mod(pos - 1, n)];
    if (n == 1) {
        if (send != recv) sched_add(s, PC_STEP_COPY, rank, send, recv, bytes, -1);
        return s->oom ? pc_err(NULL, podcclSystemError, "out of memory") : podcclSuccess;
    }
    chunk = elem_chunk(chunk, pc_type_size(a->dtype));
    char *acc = p == n - 1 ? recv : tmp;
    for (size_t off = 0; off < bytes; off += chunk) {
        size_t len = bytes - off < chunk ? bytes - off : chunk;
        if (p == 0) {
            sched_add(s, PC_STEP_SEND, next, send + off, NULL, len, -1);
            continue;
        }
        int r = sched_add(s, PC_STEP_RECV_REDUCE, prev, send + off, acc + off, len, -1);
        if (p < n - 1) sched_add(s, PC_STEP_SEND, next, acc + off, NULL, len, r);
    }
    return s->oom ? pc_err(NULL, podcclSystemError, "out of memory") : podcclSuccess;
}
