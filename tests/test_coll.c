/* Every collective x type x op x count x in-place/out-of-place against refcheck's reference.
 *
 *   test_coll [--nranks N] [--quick] [--algo-forced-direct] [-v]
 *
 * Each case is a job: prepare (allocate with guard elements, poison, fill inputs), issue (on the
 * NULL stream, a stream, or inside a group), verify (results, untouched inputs and guards). With
 * --algo-forced-direct (PODCCL_ALGO=direct), a call whose message cannot fit the one-shot buffer
 * (PODCCL_SHM_DIRECT_BYTES) must return podcclInvalidUsage and leave the communicator usable.
 * -v prints every call before it is issued (to find a hang). */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "refcheck.h"

#define GUARD 8           /* poisoned elements after every buffer */
#define MOVE_OP podcclMax /* pattern for data movement: distinct per rank at every index */

typedef enum {
    ALLREDUCE,
    ALLGATHER,
    REDUCESCATTER,
    BROADCAST,
    REDUCE,
    ALLTOALL,
    ALLTOALLV,
    SHIFT,
    PAIRS,
    BARRIER
} coll_t;
static const char *const coll_names[] = {
    "allreduce", "allgather", "reducescatter",  "broadcast",      "reduce",
    "alltoall",  "alltoallv", "sendrecv-shift", "sendrecv-pairs", "barrier"};

typedef struct {
    int quick, forced_direct, verbose;
    int env; /* ranks started by a launcher, maybe on other hosts: no shared counters */
    size_t direct_bytes;
} options;

typedef struct { /* one rank's state */
    podcclComm_t comm;
    int rank, n;
    const options *o;
    uint64_t salt;
    int fails, fatal, barriers;
} rank_state;

typedef struct {
    char *base, *p; /* p: first element, base + 1 element when misaligned */
    size_t n;       /* elements in use (guards follow) */
} buffer;

typedef struct {
    coll_t coll;
    podcclDataType_t ty;
    podcclRedOp_t op;
    size_t count;
    int inplace, mis, root, shift;
    uint64_t salt;
    harness_ctx ctx;
    buffer sb, rb;     /* rb unused when in place */
    void *send, *recv; /* what the call gets */
    size_t lo, hi;     /* bytes: the message is at least lo and at most hi (forced direct) */
    size_t sc[HARNESS_MAX_RANKS], sd[HARNESS_MAX_RANKS], rc[HARNESS_MAX_RANKS],
        rd[HARNESS_MAX_RANKS]; /* alltoallv */
    int skipped;               /* accepted podcclInvalidUsage */
} job;

static size_t es(const job *j) {
    return rc_type_size(j->ty);
}

static void balloc(buffer *b, size_t n, const job *j) {
    size_t bytes = (n + 1 + GUARD) * es(j);
    b->base = aligned_alloc(64, (bytes + 63) / 64 * 64);
    if (!b->base) {
        fprintf(stderr, "out of memory (%zu bytes)\n", bytes);
        exit(2);
    }
    rc_poison(b->base, n + 1 + GUARD, j->ty);
    b->p = b->base + (j->mis ? es(j) : 0);
    b->n = n;
}

static char *at(const job *j, const buffer *b, size_t i) {
    return b->p + i * es(j);
}

/* ---- expected values ------------------------------------------------------------------------ */

typedef struct {
    int reduced, rank, n;
    podcclRedOp_t op;
    size_t first;
    uint64_t salt;
} expect;

static double expect_fn(size_t i, const void *arg) {
    const expect *e = arg;
    return e->reduced ? rc_reduced(e->op, e->n, e->first + i, e->salt)
                      : rc_value(e->op, e->rank, e->n, e->first + i, e->salt);
}

static double poison_value(podcclDataType_t t) {
    unsigned char p[8];
    rc_poison(p, 1, t);
    return rc_load(p, 0, t);
}
static double poison_fn(size_t i, const void *arg) {
    return (void)i, *(const double *)arg;
}

/* Checks n elements at ptr: a rank's input (reduced == 0, from rank `src`) or the reduction. A
 * label that ends in "from" gets the source rank appended. */
static size_t check(const rank_state *s, const job *j, const char *what, const void *ptr, size_t n,
                    int reduced, podcclRedOp_t op, int src, size_t first) {
    expect e = {reduced, src, s->n, op, first, j->salt};
    char label[96];
    size_t len = strlen(what);
    if (len >= 4 && !strcmp(what + len - 4, "from"))
        snprintf(label, sizeof(label), "%s rank %d", what, src);
    else
        snprintf(label, sizeof(label), "%s", what);
    return harness_check(&j->ctx, label, ptr, n, rc_load, expect_fn, &e);
}

static size_t check_poison(const job *j, const char *what, const void *ptr, size_t n) {
    double pv = poison_value(j->ty);
    return harness_check(&j->ctx, what, ptr, n, rc_load, poison_fn, &pv);
}

static size_t check_guards(const job *j, const buffer *b, const char *name) {
    char what[64];
    snprintf(what, sizeof(what), "%s: written past the end", name);
    size_t bad = check_poison(j, what, at(j, b, b->n), GUARD);
    if (j->mis) bad += check_poison(j, "written before the start", b->base, 1);
    return bad;
}

/* ---- prepare / issue / verify --------------------------------------------------------------- */

static size_t v_count(const job *j, int s, int d) { /* alltoallv: s sends to d; zeros included */
    return (size_t)((s * 7 + d * 3 + (int)(j->salt % 4)) % 4) * j->count / 2;
}
static size_t v_first(const job *j, int d) {
    return (size_t)d * (2 * j->count + 2);
}
/* sendrecv-pairs: message m (0: count, 1: count/2+1 elements) between two ranks */
static size_t pair_off(const job *j, int peer, int m) {
    return (size_t)peer * (2 * j->count + 2) + (size_t)m * (j->count + 1);
}
static size_t pair_len(const job *j, int m) {
    return m == 0 ? j->count : j->count / 2 + 1;
}

static void prepare_alltoallv(const rank_state *s, job *j, size_t *sn, size_t *rn) {
    size_t maxb = 0;
    for (int r = 0; r < s->n; r++) {
        size_t out = 0, in = 0;
        for (int p = 0; p < s->n; p++) out += v_count(j, r, p), in += v_count(j, p, r);
        maxb = out > maxb ? out : maxb;
        maxb = in > maxb ? in : maxb;
    }
    j->lo = 0, j->hi = maxb * es(j);
    *sn = *rn = 0;
    for (int p = 0; p < s->n; p++) { /* send in peer order, receive in reverse; 1-element gaps */
        j->sc[p] = v_count(j, s->rank, p), j->sd[p] = *sn, *sn += j->sc[p] + 1;
        int q = s->n - 1 - p;
        j->rc[q] = v_count(j, q, s->rank), j->rd[q] = *rn, *rn += j->rc[q] + 1;
    }
}

static void prepare(rank_state *s, job *j) {
    int n = s->n, me = s->rank;
    size_t c = j->count, sn = c, rn = c;
    j->salt = ++s->salt;
    j->lo = j->hi = c * es(j);
    switch (j->coll) {
    case ALLGATHER:
        rn = n * c, j->hi = rn * es(j);
        break;
    case REDUCESCATTER:
        sn = n * c, j->hi = sn * es(j);
        break;
    case ALLTOALL:
        sn = rn = n * c, j->hi = sn * es(j);
        break;
    case ALLTOALLV:
        prepare_alltoallv(s, j, &sn, &rn);
        break;
    case PAIRS:
        sn = rn = pair_off(j, n, 0); /* fall through */
    case SHIFT:
        j->lo = j->hi = 0;
        break;
    case BARRIER:
        sn = rn = 0, j->lo = j->hi = 0;
        break;
    default:
        break;
    }
    balloc(&j->sb, j->inplace ? (sn > rn ? sn : rn) : sn, j);
    if (!j->inplace) balloc(&j->rb, rn, j);
    buffer *rb = j->inplace ? &j->sb : &j->rb;
    j->send = j->sb.p, j->recv = rb->p;
    int red = j->coll == ALLREDUCE || j->coll == REDUCESCATTER || j->coll == REDUCE;
    podcclRedOp_t fop = red ? j->op : MOVE_OP;
    switch (j->coll) {
    case ALLGATHER:
        if (j->inplace) j->send = at(j, rb, me * c);
        rc_fill(j->send, c, j->ty, fop, me, n, 0, j->salt);
        break;
    case REDUCESCATTER:
        if (j->inplace) j->recv = at(j, &j->sb, me * c);
        rc_fill(j->send, sn, j->ty, fop, me, n, 0, j->salt);
        break;
    case BROADCAST:
        if (me == j->root) rc_fill(j->send, c, j->ty, fop, me, n, 0, j->salt);
        break;
    case ALLTOALLV:
        for (int p = 0; p < n; p++)
            rc_fill(at(j, &j->sb, j->sd[p]), j->sc[p], j->ty, fop, me, n, v_first(j, p), j->salt);
        break;
    case PAIRS:
        for (int p = 0; p < n; p++)
            for (int m = 0; m < 2; m++)
                rc_fill(at(j, &j->sb, pair_off(j, p, m)), pair_len(j, m), j->ty, fop, me, n,
                        pair_off(j, p, m), j->salt);
        break;
    case BARRIER:
        break;
    default:
        rc_fill(j->send, sn, j->ty, fop, me, n, 0, j->salt);
        break;
    }
    if (c == 0 && (j->salt & 1) && j->coll != ALLTOALLV) j->send = j->recv = NULL;
    if (j->coll == REDUCE && me != j->root && !j->inplace && (j->salt & 2)) j->recv = NULL;
    j->ctx = (harness_ctx){.coll = coll_names[j->coll],
                           .rank = me,
                           .type = j->ty,
                           .op = red ? (int)j->op : -1,
                           .count = c,
                           .inplace = j->inplace,
                           .root = (j->coll == BROADCAST || j->coll == REDUCE) ? j->root : -1};
}

static podcclResult_t issue_p2p(const rank_state *s, job *j, podcclStream_t st) {
    podcclResult_t rc = podcclGroupStart(), r2;
    int n = s->n, me = s->rank;
    if (j->coll == SHIFT) {
        if (rc == podcclSuccess)
            rc = podcclRecv(j->recv, j->count, j->ty, (me - j->shift + n) % n, s->comm, st);
        if (rc == podcclSuccess)
            rc = podcclSend(j->send, j->count, j->ty, (me + j->shift) % n, s->comm, st);
    }
    for (int i = 0; j->coll == PAIRS && i < n && rc == podcclSuccess; i++) {
        int p = (me % 2) ? n - 1 - i : i; /* odd ranks post in the other order */
        for (int m = 0; m < 2 && rc == podcclSuccess; m++) {
            rc =
                podcclSend(at(j, &j->sb, pair_off(j, p, m)), pair_len(j, m), j->ty, p, s->comm, st);
            if (rc == podcclSuccess)
                rc = podcclRecv(at(j, &j->rb, pair_off(j, p, m)), pair_len(j, m), j->ty, p, s->comm,
                                st);
        }
    }
    r2 = podcclGroupEnd();
    return rc != podcclSuccess ? rc : r2;
}

static podcclResult_t issue(const rank_state *s, job *j, podcclStream_t st) {
    podcclComm_t cm = s->comm;
    switch (j->coll) {
    case ALLREDUCE:
        return podcclAllReduce(j->send, j->recv, j->count, j->ty, j->op, cm, st);
    case ALLGATHER:
        return podcclAllGather(j->send, j->recv, j->count, j->ty, cm, st);
    case REDUCESCATTER:
        return podcclReduceScatter(j->send, j->recv, j->count, j->ty, j->op, cm, st);
    case BROADCAST:
        return podcclBroadcast(j->send, j->recv, j->count, j->ty, j->root, cm, st);
    case REDUCE:
        return podcclReduce(j->send, j->recv, j->count, j->ty, j->op, j->root, cm, st);
    case ALLTOALL:
        return podcclAllToAll(j->send, j->recv, j->count, j->ty, cm, st);
    case ALLTOALLV:
        return podcclAllToAllv(j->send, j->sc, j->sd, j->recv, j->rc, j->rd, j->ty, cm, st);
    case BARRIER:
        if (!s->o->env) atomic_fetch_add((atomic_int *)harness_scratch(), 1);
        return podcclBarrier(cm, st);
    default:
        return issue_p2p(s, j, st);
    }
}

static size_t verify_alltoallv(const rank_state *s, const job *j) {
    size_t bad = 0;
    for (int p = 0; p < s->n; p++) {
        bad += check(s, j, "block from", at(j, &j->rb, j->rd[p]), j->rc[p], 0, MOVE_OP, p,
                     v_first(j, s->rank));
        bad += check_poison(j, "gap between blocks", at(j, &j->rb, j->rd[p] + j->rc[p]), 1);
        bad += check(s, j, "sendbuff changed", at(j, &j->sb, j->sd[p]), j->sc[p], 0, MOVE_OP,
                     s->rank, v_first(j, p));
    }
    return bad;
}

/* Returns the number of wrong elements (0: pass). */
static size_t verify(rank_state *s, job *j) {
    int n = s->n, me = s->rank, red = j->ctx.op >= 0;
    size_t c = j->count, bad = 0;
    podcclRedOp_t fop = red ? j->op : MOVE_OP;
    const buffer *rb = j->inplace ? &j->sb : &j->rb;
    switch (j->coll) {
    case ALLREDUCE:
        bad += check(s, j, "result", j->recv, c, 1, fop, 0, 0);
        break;
    case REDUCE:
        if (me == j->root)
            bad += check(s, j, "result at root", j->recv, c, 1, fop, 0, 0);
        else if (j->recv && !j->inplace)
            bad += check_poison(j, "non-root recvbuff written", j->recv, c);
        else if (j->inplace)
            bad += check(s, j, "non-root buffer changed", j->recv, c, 0, fop, me, 0);
        break;
    case REDUCESCATTER:
        bad += check(s, j, "result", j->recv, c, 1, fop, 0, me * c);
        break;
    case BROADCAST:
        bad += check(s, j, "result", j->recv, c, 0, fop, j->root, 0);
        break;
    case ALLGATHER:
    case ALLTOALL:
        for (int r = 0; r < n; r++)
            bad += check(s, j, "block from", at(j, rb, r * c), c, 0, fop, r,
                         j->coll == ALLTOALL ? me * c : 0);
        break;
    case SHIFT:
        bad += check(s, j, "received", j->recv, c, 0, fop, (me - j->shift + n) % n, 0);
        break;
    case PAIRS:
        for (int p = 0; p < n; p++)
            for (int m = 0; m < 2; m++)
                bad += check(s, j, m ? "second message from" : "first message from",
                             at(j, &j->rb, pair_off(j, p, m)), pair_len(j, m), 0, fop, p,
                             pair_off(j, me, m));
        break;
    case ALLTOALLV:
        bad += verify_alltoallv(s, j);
        break;
    case BARRIER: {
        if (s->o->env) break; /* arrivals are counted in shared memory: forked runs only */
        int seen = atomic_load((atomic_int *)harness_scratch());
        if (seen < n * ++s->barriers) {
            harness_fail(&j->ctx, "returned when only %d of %d arrivals happened", seen,
                         n * s->barriers);
            bad++;
        }
        break;
    }
    }
    if (!j->inplace && j->coll != ALLTOALLV && j->coll != PAIRS && j->coll != BARRIER && j->send &&
        (j->coll != BROADCAST || me == j->root)) /* out of place: inputs must be intact */
        bad += check(s, j, "sendbuff changed", j->send, j->sb.n, 0, fop, me, 0);
    if (j->coll != PAIRS && j->coll != ALLTOALLV) bad += check_guards(j, rb, "recvbuff");
    return bad;
}

static void release(job *j) {
    free(j->sb.base);
    if (!j->inplace) free(j->rb.base);
}

/* A small all-reduce that must work: the communicator is still usable. */
static int sanity(rank_state *s);

/* Judges a call's return code. 0: check the results; 1: accepted podcclInvalidUsage;
 * -1: failure (the communicator may be broken: stop). */
static int judge(rank_state *s, job *j, podcclResult_t rc) {
    int may_refuse = s->o->forced_direct && j->hi > s->o->direct_bytes;
    int must_refuse = s->o->forced_direct && j->lo > s->o->direct_bytes && s->n > 1;
    if (rc == podcclInvalidUsage && may_refuse) {
        j->skipped = 1;
        return sanity(s) ? -1 : 1;
    }
    if (harness_expect_rc(&j->ctx, rc, must_refuse ? podcclInvalidUsage : podcclSuccess, s->comm))
        return -1;
    return 0;
}

/* Runs jobs[0..k) together: each on the NULL stream, all on one stream, or in one group. */
enum { ONE_BY_ONE, ON_STREAM, IN_GROUP };
static void run_jobs(rank_state *s, job *jobs, int k, int how) {
    if (s->fatal) return;
    podcclStream_t st = NULL;
    podcclResult_t rc = podcclSuccess;
    for (int i = 0; i < k; i++) prepare(s, &jobs[i]);
    if (how == ON_STREAM) rc = podcclStreamCreate(&st);
    if (how == IN_GROUP) rc = podcclGroupStart();
    for (int i = 0; i < k && !s->fatal; i++) {
        if (s->o->verbose)
            harness_fail(&jobs[i].ctx, "call %llu", (unsigned long long)jobs[i].salt);
        podcclResult_t r = rc == podcclSuccess ? issue(s, &jobs[i], st) : rc;
        if (how == ONE_BY_ONE && judge(s, &jobs[i], r) < 0) s->fatal = 1;
        if (how != ONE_BY_ONE && harness_expect_rc(&jobs[i].ctx, r, podcclSuccess, s->comm))
            s->fatal = 1;
    }
    if (how == IN_GROUP) rc = podcclGroupEnd();
    if (how == ON_STREAM && st) {
        rc = podcclStreamSynchronize(st);
        if (podcclStreamDestroy(st) != podcclSuccess && rc == podcclSuccess) rc = podcclSystemError;
    }
    if (!s->fatal && harness_expect_rc(&jobs[0].ctx, rc, podcclSuccess, s->comm)) s->fatal = 1;
    for (int i = 0; i < k; i++) {
        if (!s->fatal && !jobs[i].skipped && verify(s, &jobs[i])) s->fails++;
        release(&jobs[i]);
    }
}

static void run1(rank_state *s, coll_t coll, podcclDataType_t ty, podcclRedOp_t op, size_t count,
                 int inplace, int root) {
    static unsigned seq;
    job j = {.coll = coll,
             .ty = ty,
             .op = op,
             .count = count,
             .inplace = inplace,
             .mis = (++seq % 3) == 0,
             .root = root,
             .shift = root};
    run_jobs(s, &j, 1, ONE_BY_ONE);
}

static int sanity(rank_state *s) {
    job j = {.coll = ALLREDUCE, .ty = podcclInt32, .op = podcclSum, .count = 7};
    prepare(s, &j);
    podcclResult_t rc = issue(s, &j, NULL);
    int bad = harness_expect_rc(&j.ctx, rc, podcclSuccess, s->comm) || verify(s, &j);
    if (bad) fprintf(stderr, "rank %d: communicator unusable after podcclInvalidUsage\n", s->rank);
    release(&j);
    return bad;
}

/* ---- the matrix ----------------------------------------------------------------------------- */

static const podcclDataType_t all_types[] = {
    podcclInt8,   podcclUint8,   podcclInt32,   podcclUint32,  podcclInt64,
    podcclUint64, podcclFloat16, podcclFloat32, podcclFloat64, podcclBfloat16};
static const podcclDataType_t quick_types[] = {podcclInt8, podcclFloat16, podcclBfloat16,
                                               podcclFloat32, podcclUint64};

/* Counts for type t: tiny and odd ones and one just above the one-shot threshold (*full of them,
 * run with every op and layout), then ~300000 elements and ~1.1 MB (a subset). */
static int counts_for(const rank_state *s, podcclDataType_t t, size_t *out, int *full) {
    size_t e = rc_type_size(t), k = 0, small[] = {0, 1, 2, 7, 1003};
    for (size_t i = 0; i < 5; i++)
        if (!s->o->quick || i != 2) out[k++] = small[i];
    out[k++] = s->o->direct_bytes / e + 3;
    *full = (int)k;
    if (!s->o->quick) out[k++] = 300007, out[k++] = 1100003 / e;
    return (int)k;
}

static void matrix(rank_state *s, podcclDataType_t t) {
    size_t counts[8];
    int full, nc = counts_for(s, t, counts, &full), n = s->n;
    for (int ci = 0; ci < nc; ci++) {
        size_t c = counts[ci];
        int all = ci < full, r0 = (int)(c % (size_t)n), nroots = c <= 1003 ? n : 1;
        size_t per =
            all ? c : c / (size_t)n + 1; /* larger sizes: c elements in all, not per rank */
        for (int ip = 0; ip < 2; ip++) {
            if (!all && ip != (int)(t + ci) % 2) continue; /* one layout at the larger sizes */
            for (int op = 0; op < podcclNumOps; op++) {
                if (!all && op != podcclSum && op != 1 + (int)t % 4) continue;
                run1(s, ALLREDUCE, t, op, c, ip, -1);
                run1(s, REDUCESCATTER, t, op, per, ip, -1);
                for (int k = 0; k < nroots; k++) run1(s, REDUCE, t, op, c, ip, (r0 + k) % n);
            }
            run1(s, ALLGATHER, t, podcclSum, per, ip, -1);
            run1(s, ALLTOALL, t, podcclSum, per, ip, -1);
            for (int k = 0; k < nroots; k++) run1(s, BROADCAST, t, podcclSum, c, ip, (r0 + k) % n);
        }
        run1(s, ALLTOALLV, t, podcclSum, per, 0, -1);
        run1(s, PAIRS, t, podcclSum, per, 0, -1);
        for (int k = 0; k < n; k++) /* self, right neighbour, left neighbour */
            if (k == 1 || (all && (k == 0 || k == n - 1))) run1(s, SHIFT, t, podcclSum, c, 0, k);
    }
}

/* ~6 MiB buffers, float32 sum and int8 max only. */
static void large(rank_state *s) {
    const size_t bytes = 6u << 20;
    struct {
        podcclDataType_t t;
        podcclRedOp_t op;
    } cases[] = {{podcclFloat32, podcclSum}, {podcclInt8, podcclMax}};
    for (int i = 0; i < 2; i++) {
        size_t c = bytes / rc_type_size(cases[i].t) + 1, per = c / (size_t)s->n;
        podcclDataType_t t = cases[i].t;
        run1(s, ALLREDUCE, t, cases[i].op, c, i, -1);
        run1(s, REDUCESCATTER, t, cases[i].op, per, !i, -1);
        run1(s, REDUCE, t, cases[i].op, c, i, s->n - 1);
        run1(s, ALLGATHER, t, podcclSum, per, i, -1);
        run1(s, BROADCAST, t, podcclSum, c, !i, 0);
        run1(s, ALLTOALL, t, podcclSum, per, i, -1);
        run1(s, ALLTOALLV, t, podcclSum, per, 0, -1);
        run1(s, SHIFT, t, podcclSum, c, 0, 1);
        run1(s, PAIRS, t, podcclSum, per, 0, -1);
    }
}

/* Several operations queued on one stream, and collectives inside one group. */
static void batched(rank_state *s) {
    int n = s->n;
    size_t big = s->o->forced_direct ? 1003 : 100003;
    job jobs[] = {
        {.coll = ALLREDUCE, .ty = podcclFloat32, .op = podcclSum, .count = 1003, .mis = 1},
        {.coll = ALLGATHER, .ty = podcclInt32, .count = 7},
        {.coll = BROADCAST, .ty = podcclFloat32, .count = big, .root = n - 1},
        {.coll = REDUCESCATTER, .ty = podcclBfloat16, .op = podcclMax, .count = 2000, .inplace = 1},
        {.coll = BARRIER},
        {.coll = ALLTOALL, .ty = podcclUint8, .count = 1003},
        {.coll = REDUCE, .ty = podcclFloat64, .op = podcclMin, .count = big, .root = 0},
        {.coll = ALLREDUCE, .ty = podcclInt8, .op = podcclAvg, .count = 5, .inplace = 1},
        {.coll = SHIFT, .ty = podcclFloat16, .count = 1003, .shift = 1},
    };
    int k = (int)(sizeof(jobs) / sizeof(jobs[0]));
    job copy[sizeof(jobs) / sizeof(jobs[0])];
    memcpy(copy, jobs, sizeof(jobs));
    run_jobs(s, copy, k, ON_STREAM);
    memcpy(copy, jobs, sizeof(jobs));
    run_jobs(s, copy, k, ON_STREAM); /* a second batch on a fresh stream */
    job group[] = {jobs[0], jobs[1], jobs[6], jobs[7]};
    run_jobs(s, group, 4, IN_GROUP);
}

static int body(podcclComm_t comm, int rank, int nranks, void *arg) {
    rank_state s = {.comm = comm, .rank = rank, .n = nranks, .o = arg};
    double t0 = harness_now();
    int nt = s.o->quick ? 5 : 10;
    for (int i = 0; i < 3; i++) run1(&s, BARRIER, podcclInt8, podcclSum, 0, 0, -1);
    for (int i = 0; i < nt && !s.fatal; i++) matrix(&s, s.o->quick ? quick_types[i] : all_types[i]);
    if (!s.o->quick) large(&s);
    batched(&s);
    if (rank == 0 || s.fails || s.fatal)
        printf("rank %d: %llu calls, %d wrong%s, %.1f s\n", rank, (unsigned long long)s.salt,
               s.fails, s.fatal ? ", stopped at an error" : "", harness_now() - t0);
    return s.fails || s.fatal;
}

int main(int argc, char **argv) {
    options o = {0};
    int nranks = 4, env = 0;
    const char *db = getenv("PODCCL_SHM_DIRECT_BYTES");
    o.direct_bytes = db && atol(db) > 0 ? (size_t)atol(db) : 32768; /* the library's default */
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--nranks") && i + 1 < argc)
            nranks = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--quick"))
            o.quick = 1;
        else if (!strcmp(argv[i], "--algo-forced-direct"))
            o.forced_direct = 1;
        else if (!strcmp(argv[i], "-v"))
            o.verbose = 1;
        else if (!strcmp(argv[i], "--env"))
            env = o.env = 1;
        else {
            fprintf(stderr,
                    "usage: %s [--nranks N | --env] [--quick] [--algo-forced-direct] [-v]\n"
                    "  --env: this process is one rank of a job started by a launcher (mpirun, "
                    "srun, torchrun, or PODCCL_RANK/PODCCL_NRANKS/PODCCL_COMM_ID)\n",
                    argv[0]);
            return 2;
        }
    }
    if (env) {
        /* One rank of a job across hosts: the communicator comes from the launcher's
         * environment; every rank reports its own verdict. */
        podcclComm_t comm;
        podcclResult_t r = podcclCommInitFromEnv(&comm, NULL);
        if (r != podcclSuccess) {
            printf("test_coll --env: init failed: %s: %s\n", podcclGetErrorString(r),
                   podcclGetLastError(NULL));
            return 1;
        }
        int rank, n;
        podcclCommUserRank(comm, &rank);
        podcclCommCount(comm, &n);
        int rc = body(comm, rank, n, &o);
        if (podcclCommDestroy(comm) != podcclSuccess) rc = 1;
        printf("test_coll --env: rank %d of %d%s (PODCCL_ALGO=%s): %s\n", rank, n,
               o.quick ? " quick" : "", getenv("PODCCL_ALGO") ? getenv("PODCCL_ALGO") : "",
               rc ? "FAIL" : "PASS");
        return rc;
    }
    if (nranks < 1 || nranks > HARNESS_MAX_RANKS) {
        fprintf(stderr, "test_coll: nranks must be 1..%d\n", HARNESS_MAX_RANKS);
        return 2;
    }
    int rc = harness_run(nranks, body, &o);
    printf("test_coll: nranks %d%s%s (PODCCL_ALGO=%s): %s\n", nranks, o.quick ? " quick" : "",
           o.forced_direct ? " forced-direct" : "",
           getenv("PODCCL_ALGO") ? getenv("PODCCL_ALGO") : "", rc ? "FAIL" : "PASS");
    return rc;
}
