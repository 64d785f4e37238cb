/* Symbolic execution of schedules: for many topologies, every collective, every registered
 * algorithm that builds a schedule, and several counts, this test builds every rank's schedule
 * in one process and runs them all together on an event loop that models src/exec.c:
 *
 *  - one lane per (rank, peer, direction); a lane posts its head step only when the step's
 *    dependencies are done and fewer than DEPTH steps of the lane are in flight (several send
 *    and receive depths, including the network's send depth of 1 over sockets);
 *  - the k-th SEND from A to B matches the k-th receive (RECV or RECV_REDUCE) at B from A; a
 *    posted pair completes together (RECV: dst = data; RECV_REDUCE: dst = src op data), after
 *    the pair before it (a connection completes requests in posting order, transport.h);
 *  - local steps (COPY, NOP) run whenever their dependencies are done;
 *  - among all events that may fire, a seeded pseudo-random one fires next.
 *
 * Checks: sends and receives pair up with equal sizes; steps stay inside their rank's buffers;
 * no deadlock (else the first blocked step of each rank is printed); the bytes a SEND reads do
 * not change while it is in flight, and (up to 64 ranks) no step touches the destination of a
 * RECV while its data may be arriving (both ends posted) nor writes the source of a posted
 * SEND (missing dependencies: races in the real library); every rank's output equals a
 * reference computed with plain loops, send buffers are left alone; and in a barrier every
 * rank has heard, directly or through others, from every rank before it leaves.
 *
 * Usage: test_sched [-v] [topology-substring] */
#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "algorithms/algo.h"
#include "src/core.h"
#include "src/levels.h"

#define MAX_TOPOS 32
#define MAX_VARS 96
#define ERRS_SHOWN 8

static int verbose;
static long long n_sets, n_ranks, n_steps, n_runs;
static int case_errs, total_fail;
static char case_desc[512], run_desc[96];

/* ---- failures -------------------------------------------------------------------------------- */

__attribute__((format(printf, 1, 2))) static void fail(const char *fmt, ...) {
    if (case_errs++ == 0) printf("FAIL %s\n", case_desc);
    if (case_errs > (verbose ? 100 : ERRS_SHOWN)) return;
    va_list ap;
    va_start(ap, fmt);
    printf("    [%s] ", run_desc);
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
}

static uint64_t mix64(uint64_t x) {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/* ---- elements: small integers, so that every reduction order gives the same bits ------------- */

static int64_t norm(int dt, int64_t x) {
    if (dt == podcclInt8) return (int8_t)(uint8_t)(uint64_t)x;
    if (dt == podcclInt32) return (int32_t)(uint32_t)(uint64_t)x;
    return x;
}

static int64_t ref_op(int dt, int op, int64_t a, int64_t b) {
    switch (op) {
    case podcclProd:
        return norm(dt, (int64_t)((uint64_t)a * (uint64_t)b));
    case podcclMax:
        return a > b ? a : b;
    case podcclMin:
        return a < b ? a : b;
    default:
        return norm(dt, (int64_t)((uint64_t)a + (uint64_t)b));
    }
}

/* Element i of rank r's send buffer: in [-1000, 1000] (odd for products, so they never vanish);
 * sums over 1,024 ranks stay exact in float32. */
static int64_t val(int r, size_t i, int dt, int op) {
    int64_t v = (int64_t)(mix64(((uint64_t)r << 40) ^ i) % 2001) - 1000;
    if (op == podcclProd) v |= 1;
    return norm(dt, v);
}

static void put(void *b, size_t i, int dt, int64_t v) {
    if (dt == podcclInt8)
        ((int8_t *)b)[i] = (int8_t)v;
    else if (dt == podcclInt32)
        ((int32_t *)b)[i] = (int32_t)v;
    else
        ((float *)b)[i] = (float)v;
}

static int64_t get(const void *b, size_t i, int dt) {
    if (dt == podcclInt8) return ((const int8_t *)b)[i];
    if (dt == podcclInt32) return ((const int32_t *)b)[i];
    float f = ((const float *)b)[i];
    if (!(f >= -1e9f && f <= 1e9f) || (float)(int64_t)f != f) return INT64_MIN;
    return (int64_t)f;
}

static const char *dt_name(int dt) {
    return dt == podcclInt8    ? "int8"
           : dt == podcclInt32 ? "int32"
           : dt == podcclUint8 ? "uint8"
                               : "float32";
}

static const char *op_name(int op) {
    static const char *nm[] = {"sum", "prod", "max", "min", "avg"};
    return op >= 0 && op < 5 ? nm[op] : "?";
}

static const char *kind_name(int k) {
    static const char *nm[] = {"SEND", "RECV", "RECV_REDUCE", "COPY", "NOP"};
    return k >= 0 && k < 5 ? nm[k] : "?";
}

/* ---- topologies: per-level unit arrays ------------------------------------------------------- */

typedef struct {
    char name[96];
    int n, nlv;
    int *unit[PC_MAX_LEVELS];
    const char *skip; /* algorithms not run here (" ring pairwise "), for time */
} topo_t;

static topo_t *topo_alloc(const char *name, int n) {
    topo_t *t = calloc(1, sizeof(*t));
    if (!t || !(t->unit[0] = calloc((size_t)n, sizeof(int)))) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    snprintf(t->name, sizeof(t->name), "%s", name);
    t->n = n, t->nlv = 1;
    return t;
}

static void topo_free(topo_t *t) {
    for (int l = 0; l < t->nlv; l++) free(t->unit[l]);
    free(t);
}

/* Hosts of ppn[h] ranks each, ranks numbered host after host. */
static topo_t *topo_hosts(const char *name, int nh, const int *ppn) {
    int n = 0;
    for (int h = 0; h < nh; h++) n += ppn[h];
    topo_t *t = topo_alloc(name, n);
    for (int h = 0, r = 0; h < nh; h++)
        for (int i = 0; i < ppn[h]; i++) t->unit[0][r++] = h;
    return t;
}

static topo_t *topo_uniform(const char *name, int nh, int ppn) {
    int *p = malloc(sizeof(int) * (size_t)nh);
    if (!p) exit(1);
    for (int h = 0; h < nh; h++) p[h] = ppn;
    topo_t *t = topo_hosts(name, nh, p);
    free(p);
    return t;
}

/* Rank r on host r % nh: topology order differs from rank order. */
static topo_t *topo_rr(const char *name, int n, int nh) {
    topo_t *t = topo_alloc(name, n);
    for (int r = 0; r < n; r++) t->unit[0][r] = r % nh;
    return t;
}

/* A level above the last one: unit u of the last level goes into group_of[u]. */
static void topo_level(topo_t *t, const int *group_of) {
    int l = t->nlv++;
    if (!(t->unit[l] = malloc(sizeof(int) * (size_t)t->n))) exit(1);
    for (int r = 0; r < t->n; r++) t->unit[l][r] = group_of[t->unit[l - 1][r]];
}

/* Same tree, ranks permuted (seeded Fisher-Yates). */
static void topo_shuffle(topo_t *t, uint64_t seed) {
    int *perm = malloc(sizeof(int) * (size_t)t->n), *tmp = malloc(sizeof(int) * (size_t)t->n);
    if (!perm || !tmp) exit(1);
    for (int r = 0; r < t->n; r++) perm[r] = r;
    for (int r = t->n - 1; r > 0; r--) {
        int j = (int)(mix64(seed + (uint64_t)r) % (uint64_t)(r + 1)), x = perm[r];
        perm[r] = perm[j], perm[j] = x;
    }
    for (int l = 0; l < t->nlv; l++) {
        for (int r = 0; r < t->n; r++) tmp[r] = t->unit[l][perm[r]];
        memcpy(t->unit[l], tmp, sizeof(int) * (size_t)t->n);
    }
    free(perm), free(tmp);
}

static topo_t *topo_grouped(const char *name, int nh, int ppn, int per_group) {
    topo_t *t = topo_uniform(name, nh, ppn);
    int *g = malloc(sizeof(int) * (size_t)nh);
    if (!g) exit(1);
    for (int h = 0; h < nh; h++) g[h] = h / per_group;
    topo_level(t, g);
    free(g);
    return t;
}

static topo_t *topo_uneven_tree(const char *name, int shuffle) {
    static const int ppn[] = {1, 4, 2, 3, 2, 4, 1}, cab[] = {0, 0, 0, 1, 2, 2, 3},
                     pod[] = {0, 0, 1, 1};
    topo_t *t = topo_hosts(name, 7, ppn);
    topo_level(t, cab);
    topo_level(t, pod);
    if (shuffle) topo_shuffle(t, 12345);
    return t;
}

static int make_topos(topo_t **T) {
    int k = 0;
    char nm[96];
    T[k++] = topo_uniform("1 rank", 1, 1);
    T[k++] = topo_uniform("2 ranks on 1 host", 1, 2);
    T[k++] = topo_uniform("3 ranks on 1 host", 1, 3);
    T[k++] = topo_uniform("5 ranks on 1 host", 1, 5);
    static const int flat[] = {2, 3, 7, 8, 16};
    for (int i = 0; i < 5; i++) {
        snprintf(nm, sizeof(nm), "%d hosts x 1 rank", flat[i]);
        T[k++] = topo_uniform(nm, flat[i], 1);
    }
    T[k++] = topo_uniform("4 hosts x 2 ranks", 4, 2);
    static const int ppn3122[] = {3, 1, 2, 2}, cab2[] = {0, 0, 1, 1}, cab_rr[] = {0, 1, 0, 1};
    T[k] = topo_hosts("hosts of 3+1+2+2 ranks in 2 cabinets", 4, ppn3122);
    topo_level(T[k++], cab2);
    T[k++] = topo_grouped("2 cabinets x 2 hosts x 2 ranks", 4, 2, 2);
    T[k++] = topo_rr("8 ranks round-robin over 3 hosts", 8, 3);
    T[k] = topo_rr("12 ranks round-robin over 4 hosts, cabinets {h0,h2} {h1,h3}", 12, 4);
    topo_level(T[k++], cab_rr);
    T[k++] = topo_uneven_tree("17 ranks: hosts of 1+4+2, 3, 2+4, 1 ranks in 4 cabinets, 2 pods", 0);
    T[k++] = topo_uneven_tree("17 ranks: same uneven tree, ranks shuffled", 1);
    T[k++] = topo_grouped("2 cabinets x 4 hosts x 8 ranks (64)", 8, 8, 4);
    T[k++] = topo_grouped("48 hosts x 8 ranks in 4 supernodes (384)", 48, 8, 12);
    /* 1,024 ranks: the hierarchical and log-step algorithms on the tree; the flat ones (whose
     * schedules do not depend on the tree) on hosts of one rank. */
    T[k] = topo_grouped("4 cabinets x 32 hosts x 8 ranks (1024)", 128, 8, 32);
    T[k++]->skip = " ring rd pairwise ";
    T[k] = topo_uniform("1024 hosts x 1 rank", 1024, 1);
    T[k++]->skip = " hier ";
    return k;
}

static int topo_levels(const topo_t *t, pc_levels *L) {
    char names[PC_MAX_LEVELS][PC_TOPO_NAME_BYTES], why[256];
    pc_link_class links[PC_MAX_LEVELS];
    for (int l = 0; l < t->nlv; l++) {
        snprintf(names[l], sizeof(names[l]), l ? "level%d" : "host", l);
        links[l] = (pc_link_class){.bw_GBps = l ? 25 : 100, .lat_us = l ? 5 : 0.5, .memsem = !l};
    }
    if (levels_build(L, t->n, 0, t->nlv, t->unit, (const char(*)[PC_TOPO_NAME_BYTES])names, links,
                     why, sizeof(why))) {
        printf("FAIL levels_build(%s): %s\n", t->name, why);
        return -1;
    }
    return 0;
}

/* ---- one collective call on every rank ------------------------------------------------------- */

typedef struct {
    size_t count, chunk;
    int dtype, op, root, inplace;
} var_t;

typedef struct {
    const topo_t *t;
    pc_levels *L;
    const pc_algo_desc *d;
    int coll;
    var_t v;
} case_t;

typedef struct {
    char *sbase, *rbase, *tmp, *saved; /* saved: the send allocation after filling */
    size_t sbytes, rbytes, tbytes;
    pc_args a;
    size_t *counts; /* all-to-all-v: sendcounts, sdispls, recvcounts, rdispls */
    pc_sched s;
} rank_t;

/* All-to-all-v: elements rank s sends to rank d (some zero). */
static size_t v_cnt(size_t c, int s, int d) {
    return (size_t)((s * 3 + d * 5 + (int)c) % 4) * c;
}

/* Counts and displacements of rank r; returns the send and receive sizes in elements. Send
 * blocks lie in ascending peer order with one element of gap after each, receive blocks in
 * descending peer order with two. */
static void v_setup(const case_t *c, int r, rank_t *R, size_t *sel, size_t *rel) {
    int n = c->t->n;
    size_t *sc = R->counts, *sd = sc + n, *rc = sc + 2 * n, *rd = sc + 3 * n, k = c->v.count;
    *sel = *rel = 0;
    for (int p = 0; p < n; p++) {
        sc[p] = v_cnt(k, r, p), sd[p] = *sel, *sel += sc[p] + 1;
        rc[p] = v_cnt(k, p, r);
    }
    for (int p = n - 1; p >= 0; p--) rd[p] = *rel, *rel += rc[p] + 2;
}

/* Element sizes of the send and receive allocations of rank r (0: none). */
static void buf_sizes(const case_t *c, int r, size_t *sel, size_t *rel) {
    size_t k = c->v.count, nk = k * (size_t)c->t->n;
    int ip = c->v.inplace, root = r == c->v.root;
    switch (c->coll) {
    case PC_ALLREDUCE:
        *sel = k, *rel = ip ? 0 : k;
        break;
    case PC_ALLGATHER:
        *sel = ip ? 0 : k, *rel = nk;
        break;
    case PC_REDUCESCATTER:
        *sel = nk, *rel = ip ? 0 : k;
        break;
    case PC_BROADCAST:
        *sel = root && !ip ? k : 0, *rel = k;
        break;
    case PC_REDUCE:
        *sel = k, *rel = root && !ip ? k : 0;
        break;
    case PC_ALLTOALL:
        *sel = nk, *rel = ip ? 0 : nk;
        break;
    default:
        *sel = *rel = 0;
    }
}

/* The buffers each rank passes, by the API's layouts. */
static void set_pointers(const case_t *c, int r, rank_t *R) {
    size_t off = (size_t)r * c->v.count * pc_type_size(c->v.dtype);
    int ip = c->v.inplace, root = r == c->v.root;
    char *s = R->sbase, *d = R->rbase;
    switch (c->coll) {
    case PC_ALLREDUCE:
    case PC_ALLTOALL:
        d = ip ? s : d;
        break;
    case PC_ALLGATHER:
        s = ip ? d + off : s;
        break;
    case PC_REDUCESCATTER:
        d = ip ? s + off : d;
        break;
    case PC_BROADCAST:
        s = ip ? d : root ? s : NULL;
        break;
    case PC_REDUCE:
        d = !root ? NULL : ip ? s : d;
        break;
    default:
        break;
    }
    R->a.sendbuff = s, R->a.recvbuff = d;
}

static char *xmalloc(size_t bytes) {
    if (!bytes) return NULL;
    char *p = malloc(bytes);
    if (!p) {
        fprintf(stderr, "out of memory (%zu bytes)\n", bytes);
        exit(1);
    }
    return p;
}

/* Allocates rank r's buffers and temporary and fills in its arguments. */
static void rank_setup(const case_t *c, int r, rank_t *R) {
    int n = c->t->n;
    size_t es = pc_type_size(c->v.dtype), sel = 0, rel = 0;
    memset(R, 0, sizeof(*R));
    R->a = (pc_args){.coll = c->coll,
                     .count = c->coll == PC_ALLTOALLV ? 0 : c->v.count,
                     .dtype = c->v.dtype,
                     .op = c->v.op,
                     .root = c->v.root};
    if (c->coll == PC_ALLTOALLV) {
        R->counts = malloc(sizeof(size_t) * 4 * (size_t)n);
        if (!R->counts) exit(1);
        v_setup(c, r, R, &sel, &rel);
        R->a.counts = R->counts;
    } else {
        buf_sizes(c, r, &sel, &rel);
    }
    R->sbytes = sel * es, R->rbytes = rel * es;
    R->sbase = xmalloc(R->sbytes), R->rbase = xmalloc(R->rbytes);
    R->saved = xmalloc(R->sbytes);
    set_pointers(c, r, R);
    if (c->coll == PC_ALLTOALLV) R->a.sendbuff = R->sbase, R->a.recvbuff = R->rbase;
    levels_set_rank(c->L, r);
    R->tbytes = c->d->tmp_bytes ? c->d->tmp_bytes(c->L, &R->a) : 0;
    R->tmp = xmalloc(R->tbytes);
}

static void rank_free(rank_t *R) {
    free(R->sbase), free(R->rbase), free(R->tmp), free(R->saved), free(R->counts);
    sched_free(&R->s);
}

/* Input elements: garbage everywhere, then the pattern where the API says input lives. */
static void rank_fill(const case_t *c, int r, rank_t *R) {
    int n = c->t->n, dt = c->v.dtype, op = c->v.op;
    size_t k = c->v.count, m = 0;
    if (R->sbytes) memset(R->sbase, 0xA5, R->sbytes);
    if (R->rbytes) memset(R->rbase, 0x5A, R->rbytes);
    if (R->tbytes) memset(R->tmp, 0xC3, R->tbytes);
    char *in = (char *)R->a.sendbuff;
    switch (c->coll) {
    case PC_ALLREDUCE:
    case PC_ALLGATHER:
    case PC_REDUCE:
        m = k;
        break;
    case PC_BROADCAST:
        m = r == c->v.root ? k : 0;
        break;
    case PC_REDUCESCATTER:
    case PC_ALLTOALL:
        m = k * (size_t)n;
        break;
    case PC_ALLTOALLV:
        for (int p = 0; p < n; p++)
            for (size_t i = 0; i < R->counts[p]; i++) {
                size_t at = R->counts[n + p] + i;
                put(in, at, dt, val(r, at, dt, op));
            }
        break;
    default:
        break;
    }
    for (size_t i = 0; i < m; i++) put(in, i, dt, val(r, i, dt, op));
    if (R->sbytes) memcpy(R->saved, R->sbase, R->sbytes);
}

/* ---- building every rank's schedule, and what can be checked without running it -------------- */

/* Which of rank R's buffers holds [p, p + bytes): 0 send, 1 recv, 2 tmp, -1 none. */
static int buf_of(const rank_t *R, const char *p, size_t bytes) {
    const char *base[3] = {R->sbase, R->rbase, R->tmp};
    size_t sz[3] = {R->sbytes, R->rbytes, R->tbytes};
    uintptr_t x = (uintptr_t)p;
    for (int b = 0; b < 3; b++) {
        uintptr_t lo = (uintptr_t)base[b];
        if (base[b] && x >= lo && x - lo <= sz[b] && bytes <= sz[b] - (x - lo)) return b;
    }
    return -1;
}

/* "send+12", "recv+0", "tmp+64": where p lies among rank R's buffers. */
static const char *where(const rank_t *R, const char *p, size_t bytes, char *buf, size_t len) {
    static const char *nm[3] = {"send", "recv", "tmp"};
    const char *base[3] = {R->sbase, R->rbase, R->tmp};
    int b = buf_of(R, p, bytes);
    if (b < 0)
        snprintf(buf, len, "%p (outside)", (const void *)p);
    else
        snprintf(buf, len, "%s+%zu", nm[b], (size_t)(p - base[b]));
    return buf;
}

static int check_step(const case_t *c, const rank_t *R, int r, int i) {
    const pc_sched *s = &R->s;
    const pc_step *st = &s->steps[i];
    int n = c->t->n, bad = 0, k = st->kind;
    size_t es = pc_type_size(s->dtype);
    for (int j = 0; j < st->ndep; j++) {
        int d = s->deps[st->dep0 + j];
        if (d < 0 || d >= s->n || d == i)
            fail("rank %d step %d (%s) depends on step %d of %d", r, i, kind_name(k), d, s->n),
                bad = 1;
    }
    if (k < PC_STEP_SEND || k > PC_STEP_NOP) return fail("rank %d step %d: kind %d", r, i, k), 1;
    if (k <= PC_STEP_RECV_REDUCE && (st->peer < 0 || st->peer >= n || st->peer == r))
        fail("rank %d step %d (%s): peer %d", r, i, kind_name(k), st->peer), bad = 1;
    if (k == PC_STEP_RECV_REDUCE && (st->bytes % es || st->bytes > c->v.chunk))
        fail("rank %d step %d RECV_REDUCE of %zu bytes (element %zu, chunk %zu)", r, i, st->bytes,
             es, c->v.chunk),
            bad = 1;
    if (!st->bytes || k == PC_STEP_NOP) return bad;
    int reads = k == PC_STEP_SEND || k == PC_STEP_COPY || k == PC_STEP_RECV_REDUCE;
    int writes = k != PC_STEP_SEND;
    if (reads && buf_of(R, st->src, st->bytes) < 0)
        fail("rank %d step %d (%s, peer %d): reads %zu bytes at %p outside its buffers", r, i,
             kind_name(k), st->peer, st->bytes, (const void *)st->src),
            bad = 1;
    if (writes && buf_of(R, st->dst, st->bytes) < 0)
        fail("rank %d step %d (%s, peer %d): writes %zu bytes at %p outside its buffers", r, i,
             kind_name(k), st->peer, st->bytes, (void *)st->dst),
            bad = 1;
    uintptr_t a = (uintptr_t)st->src, b = (uintptr_t)st->dst;
    if (k == PC_STEP_RECV_REDUCE && a != b && a < b + st->bytes && b < a + st->bytes)
        fail("rank %d step %d RECV_REDUCE: src and dst overlap partly", r, i), bad = 1;
    return bad;
}

/* Builds rank r's schedule as src/enqueue.c does; returns the number of problems. */
static int build_rank(const case_t *c, int r, rank_t *R) {
    size_t es = pc_type_size(c->v.dtype), whole = R->a.count * es;
    if (c->coll == PC_ALLGATHER || c->coll == PC_REDUCESCATTER || c->coll == PC_ALLTOALL)
        whole *= (size_t)c->t->n;
    levels_set_rank(c->L, r);
    R->s = (pc_sched){.dtype = R->a.dtype, .op = R->a.op};
    pc_build_ctx ctx = {.lv = c->L,
                        .chunk = c->v.chunk,
                        .tmp = R->tmp,
                        .segments = hier_segments(c->L, whole, c->v.chunk)};
    podcclResult_t res = c->d->build(&R->s, &R->a, &ctx);
    if (res != podcclSuccess || R->s.oom)
        return fail("rank %d: build returned %d (oom %d)", r, (int)res, R->s.oom), 1;
    int bad = 0;
    for (int i = 0; i < R->s.n; i++) bad += check_step(c, R, r, i);
    if (R->s.max_reduce_bytes > c->v.chunk)
        fail("rank %d: max_reduce_bytes %zu > chunk %zu", r, R->s.max_reduce_bytes, c->v.chunk),
            bad++;
    n_steps += R->s.n;
    return bad;
}

/* ---- the simulated executor ------------------------------------------------------------------ */

enum { ST_WAIT = 0, ST_POSTED, ST_DONE };
enum { EV_LOCAL, EV_POST, EV_MATCH };

typedef struct {
    int rank, peer, dir; /* dir 0: sends to peer; 1: receives from peer */
    int start, n, next, inflight, partner, queued;
    int ndone; /* messages completed (a connection completes them in posting order) */
} lane_t;

typedef struct {
    int type, a, b;
} ev_t;

/* What the event loop touches of a step, packed (one cache miss per step on big runs). */
typedef struct {
    int unmet, lane, seq; /* dependencies not done yet; lane (-1: local), index in the lane */
    unsigned char state;
} node_t;

typedef struct {
    const case_t *c;
    rank_t *R;
    int n, total, nlanes;
    int *base;           /* [n + 1] global index of each rank's step 0 */
    node_t *node;        /* [total] */
    int *ndeps;          /* [total] number of dependencies */
    int *dstart, *dlist; /* the steps that depend on each step */
    size_t *snapoff;     /* [total] where in arena a SEND keeps the bytes it read when posted */
    char *arena;
    lane_t *lanes;
    int *lsteps; /* steps of each lane, in schedule order */
    ev_t *ev;
    int nev, cap;
    int sdepth, rdepth, done;
    uint64_t rng;
    int track;                   /* check steps against posted SENDs and RECVs */
    int *pool, *nposted, *pslot; /* posted SENDs, RECVs with data coming, per rank */
    uint64_t *know;              /* barrier: ranks each step has heard from */
    int words;
} sim_t;

static pc_step *gstep(const sim_t *S, int r, int g) {
    return &S->R[r].s.steps[g - S->base[r]];
}

static void *xcalloc(size_t n, size_t sz) {
    void *p = calloc(n ? n : 1, sz);
    if (!p) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    return p;
}

/* The lane (r, p, dir) in an open-addressing table; created when missing if create. */
static int lane_get(sim_t *S, int *tab, size_t mask, int r, int p, int dir, int create) {
    uint64_t key = ((uint64_t)r * (uint64_t)S->n + (uint64_t)p) * 2 + (uint64_t)dir;
    for (size_t h = (size_t)(mix64(key) & mask);; h = (h + 1) & mask) {
        int l = tab[h];
        if (l < 0) {
            if (!create) return -1;
            S->lanes[S->nlanes] = (lane_t){.rank = r, .peer = p, .dir = dir, .partner = -1};
            return tab[h] = S->nlanes++;
        }
        const lane_t *x = &S->lanes[l];
        if (x->rank == r && x->peer == p && x->dir == dir) return l;
    }
}

static void sim_lanes(sim_t *S) {
    int nl = 0;
    for (int r = 0; r < S->n; r++)
        for (int i = 0; i < S->R[r].s.n; i++) nl += S->R[r].s.steps[i].kind <= PC_STEP_RECV_REDUCE;
    size_t sz = 16;
    while (sz < 2 * (size_t)nl + 2) sz *= 2;
    int *tab = xcalloc(sz, sizeof(int));
    memset(tab, 0xff, sz * sizeof(int));
    S->lanes = xcalloc((size_t)nl, sizeof(lane_t));
    S->lsteps = xcalloc((size_t)nl, sizeof(int));
    for (int r = 0; r < S->n; r++)
        for (int i = 0, g = S->base[r]; i < S->R[r].s.n; i++, g++) {
            const pc_step *st = &S->R[r].s.steps[i];
            S->node[g].lane = -1;
            if (st->kind > PC_STEP_RECV_REDUCE) continue;
            int l = lane_get(S, tab, sz - 1, r, st->peer, st->kind != PC_STEP_SEND, 1);
            S->node[g].lane = l, S->node[g].seq = S->lanes[l].n++;
        }
    for (int l = 0, at = 0; l < S->nlanes; l++) S->lanes[l].start = at, at += S->lanes[l].n;
    for (int g = 0; g < S->total; g++)
        if (S->node[g].lane >= 0) S->lsteps[S->lanes[S->node[g].lane].start + S->node[g].seq] = g;
    for (int l = 0; l < S->nlanes; l++) {
        lane_t *x = &S->lanes[l];
        x->partner = lane_get(S, tab, sz - 1, x->peer, x->rank, !x->dir, 0);
    }
    free(tab);
}

static void sim_deps(sim_t *S) {
    S->dstart = xcalloc((size_t)S->total + 1, sizeof(int));
    for (int r = 0; r < S->n; r++) {
        const pc_sched *s = &S->R[r].s;
        for (int i = 0; i < s->n; i++) {
            S->ndeps[S->base[r] + i] = s->steps[i].ndep;
            for (int j = 0; j < s->steps[i].ndep; j++)
                S->dstart[S->base[r] + s->deps[s->steps[i].dep0 + j] + 1]++;
        }
    }
    for (int g = 0; g < S->total; g++) S->dstart[g + 1] += S->dstart[g];
    S->dlist = xcalloc((size_t)S->dstart[S->total], sizeof(int));
    int *fill = xcalloc((size_t)S->total + 1, sizeof(int));
    memcpy(fill, S->dstart, sizeof(int) * (size_t)S->total);
    for (int r = 0; r < S->n; r++) {
        const pc_sched *s = &S->R[r].s;
        for (int i = 0; i < s->n; i++)
            for (int j = 0; j < s->steps[i].ndep; j++) {
                int d = S->base[r] + s->deps[s->steps[i].dep0 + j];
                S->dlist[fill[d]++] = S->base[r] + i;
            }
    }
    free(fill);
}

static void sim_init(sim_t *S, const case_t *c, rank_t *R) {
    memset(S, 0, sizeof(*S));
    S->c = c, S->R = R, S->n = c->t->n;
    S->base = xcalloc((size_t)S->n + 1, sizeof(int));
    for (int r = 0; r < S->n; r++) S->base[r + 1] = S->base[r] + R[r].s.n;
    S->total = S->base[S->n];
    size_t T = (size_t)S->total;
    S->node = xcalloc(T, sizeof(node_t));
    S->ndeps = xcalloc(T, sizeof(int));
    S->snapoff = xcalloc(T, sizeof(size_t));
    size_t bytes = 0;
    for (int r = 0; r < S->n; r++)
        for (int i = 0; i < R[r].s.n; i++)
            if (R[r].s.steps[i].kind == PC_STEP_SEND)
                S->snapoff[S->base[r] + i] = bytes, bytes += R[r].s.steps[i].bytes;
    S->arena = xcalloc(bytes, 1);
    sim_lanes(S);
    sim_deps(S);
    S->track = S->n <= 64 && c->coll != PC_BARRIER; /* a barrier's tokens carry no data */
    if (S->track) {
        S->pool = xcalloc(T, sizeof(int)), S->pslot = xcalloc(T, sizeof(int));
        S->nposted = xcalloc((size_t)S->n, sizeof(int));
    }
    if (c->coll == PC_BARRIER) {
        S->words = (S->n + 63) / 64;
        S->know = xcalloc(T * (size_t)S->words, sizeof(uint64_t));
    }
}

static void sim_free(sim_t *S) {
    free(S->base), free(S->node), free(S->ndeps), free(S->snapoff), free(S->arena);
    free(S->dstart), free(S->dlist), free(S->lanes), free(S->lsteps), free(S->ev);
    free(S->pool), free(S->nposted), free(S->pslot), free(S->know);
}

/* Every SEND has its receive, of the same size, in the same order. */
static int check_pairs(const sim_t *S) {
    int bad = 0;
    for (int l = 0; l < S->nlanes; l++) {
        const lane_t *A = &S->lanes[l];
        if (A->partner < 0) {
            fail("rank %d has %d %s rank %d, which has no %s rank %d", A->rank, A->n,
                 A->dir ? "receives from" : "sends to", A->peer,
                 A->dir ? "send to" : "receive from", A->rank);
            bad++;
            continue;
        }
        const lane_t *B = &S->lanes[A->partner];
        if (A->dir) continue;
        if (A->n != B->n)
            fail("rank %d sends %d messages to rank %d, which receives %d from it", A->rank, A->n,
                 A->peer, B->n),
                bad++;
        for (int k = 0; k < A->n && k < B->n; k++) {
            int gs = S->lsteps[A->start + k], gr = S->lsteps[B->start + k];
            const pc_step *ss = gstep(S, A->rank, gs), *rs = gstep(S, B->rank, gr);
            if (ss->bytes == rs->bytes) continue;
            fail("message %d from rank %d to rank %d: SEND (step %d) has %zu bytes, %s (step %d) "
                 "%zu",
                 k, A->rank, B->rank, gs - S->base[A->rank], ss->bytes, kind_name(rs->kind),
                 gr - S->base[B->rank], rs->bytes);
            bad++;
            break;
        }
    }
    return bad;
}

static void ev_push(sim_t *S, int type, int a, int b) {
    if (S->nev == S->cap) {
        S->cap = S->cap ? 2 * S->cap : 1024;
        ev_t *p = realloc(S->ev, sizeof(ev_t) * (size_t)S->cap);
        if (!p) exit(1);
        S->ev = p;
    }
    S->ev[S->nev++] = (ev_t){type, a, b};
}

/* Queues the post of lane l's head when the executor would post it now. */
static void lane_try(sim_t *S, int l) {
    lane_t *ln = &S->lanes[l];
    if (ln->queued || ln->next >= ln->n) return;
    int g = S->lsteps[ln->start + ln->next];
    if (S->node[g].unmet || ln->inflight >= (ln->dir ? S->rdepth : S->sdepth)) return;
    ln->queued = 1;
    ev_push(S, EV_POST, l, 0);
}

/* Barrier: step g has heard from its own rank, from what it depends on, and from the SEND it
 * received (from >= 0). */
static void know_step(sim_t *S, int r, int g, int from) {
    int w = S->words;
    uint64_t *k = S->know + (size_t)g * (size_t)w;
    memset(k, 0, sizeof(uint64_t) * (size_t)w);
    k[r / 64] |= 1ull << (r % 64);
    const pc_step *st = gstep(S, r, g);
    const int *deps = S->R[r].s.deps + st->dep0;
    for (int j = 0; j < st->ndep; j++)
        for (int x = 0; x < w; x++) k[x] |= S->know[(size_t)(S->base[r] + deps[j]) * w + x];
    for (int x = 0; from >= 0 && x < w; x++) k[x] |= S->know[(size_t)from * w + x];
}

static void step_done(sim_t *S, int r, int g, int from) {
    S->node[g].state = ST_DONE, S->done++;
    if (S->know) know_step(S, r, g, from);
    for (int k = S->dstart[g]; k < S->dstart[g + 1]; k++) {
        int h = S->dlist[k];
        if (--S->node[h].unmet) continue;
        if (S->node[h].lane < 0)
            ev_push(S, EV_LOCAL, h, r);
        else
            lane_try(S, S->node[h].lane);
    }
}

/* Step g of rank r reads (write = 0) or writes [p, p + bytes): a race if a RECV whose data
 * may be arriving (both ends posted) owns any of it, or if it writes what a posted SEND reads
 * (an eager transport reads at the post, a rendezvous one at the match). */
static void track_check(const sim_t *S, int r, int g, const char *p, size_t bytes, int write) {
    if (!S->track || !bytes) return;
    const int *posted = S->pool + S->base[r];
    for (int k = 0; k < S->nposted[r]; k++) {
        int h = posted[k];
        const pc_step *o = gstep(S, r, h), *st = gstep(S, r, g);
        const char *q = o->kind == PC_STEP_SEND ? o->src : o->dst;
        if (h == g || (o->kind == PC_STEP_SEND && !write)) continue;
        if (!o->bytes || p >= q + o->bytes || q >= p + bytes) continue;
        char w1[64], w2[64];
        fail("race at rank %d: step %d (%s, peer %d) %s %zu bytes at %s while step %d (%s, peer "
             "%d) is in flight on %zu bytes at %s: a dependency is missing",
             r, g - S->base[r], kind_name(st->kind), st->peer, write ? "writes" : "reads", bytes,
             where(&S->R[r], p, bytes, w1, sizeof(w1)), h - S->base[r], kind_name(o->kind), o->peer,
             o->bytes, where(&S->R[r], q, o->bytes, w2, sizeof(w2)));
        return;
    }
}

static void track_add(sim_t *S, int r, int g) {
    if (!S->track) return;
    S->pslot[g] = S->nposted[r];
    S->pool[S->base[r] + S->nposted[r]++] = g;
}

static void track_del(sim_t *S, int r, int g) {
    if (!S->track) return;
    int *posted = S->pool + S->base[r], k = S->pslot[g], last = posted[--S->nposted[r]];
    posted[k] = last, S->pslot[last] = k;
}

static void do_post(sim_t *S, int l) {
    lane_t *ln = &S->lanes[l];
    int g = S->lsteps[ln->start + ln->next], r = ln->rank, k = ln->next;
    pc_step *st = gstep(S, r, g);
    ln->queued = 0, ln->next++, ln->inflight++;
    S->node[g].state = ST_POSTED;
    if (st->kind == PC_STEP_SEND) {
        track_check(S, r, g, st->src, st->bytes, 0);
        if (st->bytes) memcpy(S->arena + S->snapoff[g], st->src, st->bytes);
        track_add(S, r, g);
    }
    const lane_t *P = &S->lanes[ln->partner];
    if (P->next > k) { /* the other end is posted: the data may move from now on */
        int rr = ln->dir ? r : P->rank, gr = ln->dir ? g : S->lsteps[P->start + k];
        const pc_step *rs = gstep(S, rr, gr);
        if (rs->kind == PC_STEP_RECV) {
            track_check(S, rr, gr, rs->dst, rs->bytes, 1);
            track_add(S, rr, gr);
        }
        if (S->lanes[l].ndone == k) ev_push(S, EV_MATCH, ln->dir ? ln->partner : l, k);
    }
    lane_try(S, l);
}

/* The k-th message of send lane sl: both ends complete together. */
static void do_match(sim_t *S, int sl, int k) {
    lane_t *A = &S->lanes[sl], *B = &S->lanes[A->partner];
    int gs = S->lsteps[A->start + k], gr = S->lsteps[B->start + k];
    const pc_step *ss = gstep(S, A->rank, gs), *rs = gstep(S, B->rank, gr);
    size_t bytes = ss->bytes, at = 0;
    const char *data = S->arena + S->snapoff[gs];
    while (at < bytes && data[at] == ss->src[at]) at++;
    if (at < bytes) {
        char w[64];
        fail("race at rank %d: step %d (SEND to rank %d, %zu bytes at %s) read bytes that changed "
             "(first at +%zu) before rank %d's step %d took them: a dependency is missing",
             A->rank, gs - S->base[A->rank], A->peer, bytes,
             where(&S->R[A->rank], ss->src, bytes, w, sizeof(w)), at, B->rank,
             gr - S->base[B->rank]);
    }
    if (rs->kind == PC_STEP_RECV) {
        if (bytes) memcpy(rs->dst, data, bytes);
    } else if (bytes) {
        const pc_sched *s = &S->R[B->rank].s;
        track_check(S, B->rank, gr, rs->src, bytes, 0);
        track_check(S, B->rank, gr, rs->dst, bytes, 1);
        pc_reduce2(rs->dst, rs->src, data, bytes / pc_type_size(s->dtype), s->dtype, s->op);
    }
    track_del(S, A->rank, gs);
    if (rs->kind == PC_STEP_RECV) track_del(S, B->rank, gr);
    A->inflight--, B->inflight--;
    A->ndone++, B->ndone++;
    if (A->next > k + 1 && B->next > k + 1) ev_push(S, EV_MATCH, sl, k + 1); /* in order */
    step_done(S, A->rank, gs, -1);
    step_done(S, B->rank, gr, gs);
    lane_try(S, sl);
    lane_try(S, A->partner);
}

static void do_local(sim_t *S, int g, int r) {
    const pc_step *st = gstep(S, r, g);
    if (st->kind == PC_STEP_COPY && st->bytes) {
        track_check(S, r, g, st->src, st->bytes, 0);
        track_check(S, r, g, st->dst, st->bytes, 1);
        memmove(st->dst, st->src, st->bytes);
    }
    step_done(S, r, g, -1);
}

/* The first step of rank r from step i on that is not posted, and what it waits for. */
static void print_waiting(const sim_t *S, int r, int i) {
    const pc_sched *s = &S->R[r].s;
    while (i < s->n && S->node[S->base[r] + i].state != ST_WAIT) i++;
    if (i == s->n) return;
    const pc_step *st = &s->steps[i];
    const node_t *nd = &S->node[S->base[r] + i];
    char deps[160] = "";
    size_t k = 0;
    for (int j = 0; j < st->ndep && k < sizeof(deps) - 24; j++) {
        int d = s->deps[st->dep0 + j];
        if (S->node[S->base[r] + d].state != ST_DONE)
            k += (size_t)snprintf(deps + k, sizeof(deps) - k, " %d(%s%s)", d,
                                  kind_name(s->steps[d].kind),
                                  S->node[S->base[r] + d].state == ST_POSTED ? ", posted" : "");
    }
    const lane_t *ln = nd->lane >= 0 ? &S->lanes[nd->lane] : NULL;
    printf("        first step not posted: %d %s peer %d, %zu bytes; unmet deps:%s", i,
           kind_name(st->kind), st->peer, st->bytes, k ? deps : " none");
    if (ln && S->lsteps[ln->start + ln->next] == S->base[r] + i && !nd->unmet)
        printf("; its lane is full (%d in flight)", ln->inflight);
    printf("\n");
}

/* Prints, for each rank that cannot finish, its first step not done and why it waits. */
static void report_deadlock(const sim_t *S) {
    fail("deadlock: %d of %d steps done and no step can proceed; first blocked step per rank:",
         S->done, S->total);
    int stuck = 0;
    for (int r = 0; r < S->n; r++) {
        int i = 0, g;
        while (i < S->R[r].s.n && S->node[S->base[r] + i].state == ST_DONE) i++;
        if (i == S->R[r].s.n || stuck++ >= 8) continue;
        g = S->base[r] + i;
        const pc_step *st = gstep(S, r, g);
        char deps[160] = "", why[160] = "";
        size_t k = 0;
        for (int j = 0; j < st->ndep && k < sizeof(deps) - 24; j++) {
            int d = S->R[r].s.deps[st->dep0 + j];
            if (S->node[S->base[r] + d].state != ST_DONE)
                k += (size_t)snprintf(deps + k, sizeof(deps) - k, " %d(%s)", d,
                                      kind_name(S->R[r].s.steps[d].kind));
        }
        if (S->node[g].lane >= 0) {
            const lane_t *ln = &S->lanes[S->node[g].lane], *P = &S->lanes[ln->partner];
            if (S->node[g].state == ST_POSTED)
                snprintf(why, sizeof(why), "posted; rank %d has posted %d of its %d matching steps",
                         ln->peer, P->next, P->n);
            else if (S->lsteps[ln->start + ln->next] != g)
                snprintf(why, sizeof(why), "behind step %d of its lane",
                         S->lsteps[ln->start + ln->next] - S->base[r]);
            else
                snprintf(why, sizeof(why), "not posted: %d of its lane in flight", ln->inflight);
        }
        printf("      rank %d: step %d %s peer %d, %zu bytes, %s; unmet deps:%s\n", r, i,
               kind_name(st->kind), st->peer, st->bytes, why, k ? deps : " none");
        if (S->node[g].state == ST_POSTED) print_waiting(S, r, i);
    }
    if (stuck > 8) printf("      ... %d ranks blocked in all\n", stuck);
}

static void sim_reset(sim_t *S, int sdepth, int rdepth, uint64_t seed) {
    for (int g = 0; g < S->total; g++) S->node[g].state = ST_WAIT, S->node[g].unmet = S->ndeps[g];
    S->done = S->nev = 0;
    S->sdepth = sdepth, S->rdepth = rdepth;
    S->rng = mix64(seed) | 1;
    for (int l = 0; l < S->nlanes; l++) {
        lane_t *ln = &S->lanes[l];
        ln->next = ln->inflight = ln->queued = ln->ndone = 0;
    }
    if (S->track) memset(S->nposted, 0, sizeof(int) * (size_t)S->n);
    for (int r = 0; r < S->n; r++)
        for (int g = S->base[r]; g < S->base[r + 1]; g++)
            if (S->node[g].lane < 0 && !S->node[g].unmet) ev_push(S, EV_LOCAL, g, r);
    for (int l = 0; l < S->nlanes; l++) lane_try(S, l);
}

/* Fires ready events in a seeded random order until none is left; 0 if every step ran. */
static int sim_run(sim_t *S) {
    while (S->nev) {
        S->rng ^= S->rng << 13, S->rng ^= S->rng >> 7, S->rng ^= S->rng << 17;
        int i = (int)(S->rng % (uint64_t)S->nev);
        ev_t e = S->ev[i];
        S->ev[i] = S->ev[--S->nev];
        if (e.type == EV_LOCAL)
            do_local(S, e.a, e.b);
        else if (e.type == EV_POST)
            do_post(S, e.a);
        else
            do_match(S, e.a, e.b);
    }
    int ok = S->done == S->total;
    if (!ok) report_deadlock(S);
    return ok ? 0 : -1;
}

/* ---- references, with plain loops ------------------------------------------------------------ */

/* ref[i] = op over ranks of element i of their send buffers, i < m. */
static int64_t *ref_reduced(const case_t *c, size_t m) {
    int64_t *ref = xcalloc(m, sizeof(int64_t));
    int dt = c->v.dtype, op = c->v.op;
    for (size_t i = 0; i < m; i++) {
        int64_t acc = val(0, i, dt, op);
        for (int r = 1; r < c->t->n; r++) acc = ref_op(dt, op, acc, val(r, i, dt, op));
        ref[i] = acc;
    }
    return ref;
}

static int check_elem(int r, const char *what, const void *buf, size_t i, int dt, int64_t want,
                      int *bad) {
    int64_t got = get(buf, i, dt);
    if (got == want) return 0;
    if ((*bad)++ < 3) fail("rank %d: %s[%zu] = %" PRId64 ", want %" PRId64, r, what, i, got, want);
    return 1;
}

static void verify_v(const case_t *c, int r, const rank_t *R, const rank_t *all, int *bad) {
    int n = c->t->n, dt = c->v.dtype, op = c->v.op;
    size_t es = pc_type_size(dt), m = R->rbytes / es;
    const size_t *rc = R->counts + 2 * n, *rd = R->counts + 3 * n;
    unsigned char *cov = xcalloc(m, 1);
    for (int p = 0; p < n; p++) {
        size_t sd = all[p].counts[n + r]; /* where rank p's block for r starts */
        for (size_t i = 0; i < rc[p]; i++) {
            check_elem(r, "recv", R->rbase, rd[p] + i, dt, val(p, sd + i, dt, op), bad);
            cov[rd[p] + i] = 1;
        }
    }
    for (size_t e = 0; e < m; e++)
        for (size_t b = 0; !cov[e] && b < es; b++)
            if ((unsigned char)R->rbase[e * es + b] != 0x5A) {
                if ((*bad)++ < 3) fail("rank %d: recv element %zu, a gap, was written", r, e);
                break;
            }
    free(cov);
}

/* Compares rank r's output with the reference; the send buffer must be as it was. */
static void verify_rank(const case_t *c, int r, const rank_t *R, const rank_t *all,
                        const int64_t *ref) {
    int n = c->t->n, dt = c->v.dtype, op = c->v.op, bad = 0;
    size_t k = c->v.count;
    const void *out = R->a.recvbuff;
    switch (c->coll) {
    case PC_ALLREDUCE:
        for (size_t i = 0; i < k; i++) check_elem(r, "recv", out, i, dt, ref[i], &bad);
        break;
    case PC_ALLGATHER:
        for (int q = 0; q < n; q++)
            for (size_t i = 0; i < k; i++)
                check_elem(r, "recv", out, q * k + i, dt, val(q, i, dt, op), &bad);
        break;
    case PC_REDUCESCATTER:
        for (size_t i = 0; i < k; i++) check_elem(r, "recv", out, i, dt, ref[r * k + i], &bad);
        break;
    case PC_BROADCAST:
        for (size_t i = 0; i < k; i++)
            check_elem(r, "recv", out, i, dt, val(c->v.root, i, dt, op), &bad);
        break;
    case PC_REDUCE:
        for (size_t i = 0; r == c->v.root && i < k; i++)
            check_elem(r, "recv", out, i, dt, ref[i], &bad);
        break;
    case PC_ALLTOALL:
        for (int p = 0; p < n; p++)
            for (size_t i = 0; i < k; i++)
                check_elem(r, "recv", out, p * k + i, dt, val(p, r * k + i, dt, op), &bad);
        break;
    case PC_ALLTOALLV:
        verify_v(c, r, R, all, &bad);
        break;
    default:
        break;
    }
    if (bad > 3) fail("rank %d: %d wrong elements in all", r, bad);
    int in_place = c->v.inplace && c->coll != PC_BROADCAST && c->coll != PC_REDUCE;
    in_place |= c->v.inplace && r == c->v.root;
    if (!in_place && R->sbytes && memcmp(R->saved, R->sbase, R->sbytes))
        fail("rank %d: the send buffer was modified", r);
}

/* Barrier: every rank must have heard from every rank by the time its last step is done. */
static void verify_barrier(const sim_t *S) {
    uint64_t *acc = xcalloc((size_t)S->words, sizeof(uint64_t));
    int early = 0;
    for (int r = 0; r < S->n; r++) {
        memset(acc, 0, sizeof(uint64_t) * (size_t)S->words);
        acc[r / 64] |= 1ull << (r % 64);
        for (int g = S->base[r]; g < S->base[r + 1]; g++)
            for (int x = 0; x < S->words; x++) acc[x] |= S->know[(size_t)g * S->words + x];
        for (int q = 0; q < S->n; q++)
            if (!(acc[q / 64] >> (q % 64) & 1)) {
                if (early++ < 3)
                    fail("barrier: rank %d may leave before rank %d has entered (no chain of "
                         "messages from rank %d's first step to rank %d's last)",
                         r, q, q, r);
                break;
            }
    }
    if (early > 3) fail("barrier: %d of %d ranks may leave too early", early, S->n);
    free(acc);
}

/* ---- cases ----------------------------------------------------------------------------------- */

/* Executor shapes: lane depths (sends, receives) and the seed of the event order. Depth 1 for
 * sends is the network transport's over sockets. */
static const struct {
    int sdepth, rdepth;
    uint64_t seed;
} cfgs[] = {{2, 2, 1}, {8, 8, 2}, {1, 8, 3}};

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void describe(const case_t *c) {
    const var_t *v = &c->v;
    snprintf(case_desc, sizeof(case_desc), "%s | %s %s | count %zu %s %s root %d%s chunk %zu",
             c->t->name, algo_coll_name(c->coll), c->d->name, v->count, dt_name(v->dtype),
             op_name(v->op), v->root, v->inplace ? " in-place" : "", v->chunk);
}

static int64_t *reference(const case_t *c) {
    size_t k = c->v.count, n = (size_t)c->t->n;
    if (c->coll == PC_ALLREDUCE || c->coll == PC_REDUCE) return ref_reduced(c, k);
    if (c->coll == PC_REDUCESCATTER) return ref_reduced(c, k * n);
    return NULL;
}

/* Runs the built schedules under every executor shape and checks the results. */
static void run_shapes(const case_t *c, rank_t *R, sim_t *S) {
    int n = c->t->n, nshape = n > 512 ? 1 : n > 64 ? 2 : 3;
    int64_t *ref = reference(c);
    for (int k = 0; k < nshape; k++) {
        int x = n > 64 ? 2 * k : k; /* big ones: depths 2/2 and 1/8 */
        snprintf(run_desc, sizeof(run_desc), "depth %d/%d seed %d", cfgs[x].sdepth, cfgs[x].rdepth,
                 (int)cfgs[x].seed);
        for (int r = 0; r < n; r++) rank_fill(c, r, &R[r]);
        sim_reset(S, cfgs[x].sdepth, cfgs[x].rdepth, cfgs[x].seed * 1000003 + (uint64_t)n_sets);
        n_runs++;
        if (sim_run(S)) break;
        for (int r = 0; r < n; r++) verify_rank(c, r, &R[r], R, ref);
        if (S->know) verify_barrier(S);
        if (case_errs) break;
    }
    free(ref);
}

/* One collective call: -1 if the algorithm cannot run it, else the number of errors. */
static int run_case(const case_t *c, const pc_env *env) {
    int n = c->t->n, bad = 0;
    char why[256] = "";
    rank_t *R = xcalloc((size_t)n, sizeof(rank_t));
    rank_setup(c, 0, &R[0]);
    if (!c->d->can_run(env, &R[0].a, why, sizeof(why))) {
        rank_free(&R[0]);
        free(R);
        return -1;
    }
    for (int r = 1; r < n; r++) rank_setup(c, r, &R[r]);
    describe(c);
    case_errs = 0;
    snprintf(run_desc, sizeof(run_desc), "build");
    for (int r = 0; r < n; r++) bad += build_rank(c, r, &R[r]);
    levels_set_rank(c->L, 0);
    n_sets++, n_ranks += n;
    if (!bad) {
        sim_t S;
        sim_init(&S, c, R);
        snprintf(run_desc, sizeof(run_desc), "matching");
        if (!check_pairs(&S)) run_shapes(c, R, &S);
        sim_free(&S);
    }
    for (int r = 0; r < n; r++) rank_free(&R[r]);
    free(R);
    return case_errs;
}

/* ---- what runs where ------------------------------------------------------------------------- */

static int add_var(var_t *v, int k, size_t count, size_t chunk, int dt, int op, int root, int ip) {
    if (k < MAX_VARS) v[k++] = (var_t){count, chunk, dt, op, root, ip};
    return k;
}

/* Counts: 1, 7, not multiples of n, straddling the 64-byte chunk (16 int32), and large enough
 * for hierarchical algorithms to pipeline 2 and 8 segments (whole-buffer collectives on more
 * than 17 ranks: 2); big communicators get 1 and 3 elements per rank block (1,024 ranks: 3). */
static int counts_for(int n, int coll, size_t *cnt) {
    size_t E = 16, N = (size_t)n;
    int big = n > 64, k = 0;
    if (coll == PC_ALLTOALLV) {
        cnt[k++] = 1;
        if (!big) cnt[k++] = 7, cnt[k++] = 20;
    } else if (coll == PC_ALLREDUCE || coll == PC_BROADCAST || coll == PC_REDUCE) {
        if (big) return cnt[0] = 3 * N + 1, cnt[1] = N, n > 512 ? 1 : 2;
        size_t c[] = {1, 7, 17, 3 * N + 1, 2 * E * N + 5, 9 * E * N + 3};
        for (k = 0; k < (n > 17 ? 5 : 6); k++) cnt[k] = c[k]; /* 64 ranks: 2 segments at most */
    } else {
        if (big) return cnt[0] = 3, cnt[1] = 1, n > 512 ? 1 : 2;
        size_t c[] = {1, 7, 17, 2 * E + 3, 9 * E + 1};
        for (k = 0; k < 5; k++) cnt[k] = c[k];
    }
    return k;
}

/* Other types and operations (exact: small integers; int8 and products wrap around). */
static int extra_vars(int n, int coll, const size_t *cnt, int nc, var_t *v, int k) {
    static const int red[][2] = {{podcclInt8, podcclSum},   {podcclFloat32, podcclSum},
                                 {podcclInt32, podcclMax},  {podcclInt32, podcclMin},
                                 {podcclInt32, podcclProd}, {podcclInt8, podcclMax}};
    int reduces = coll == PC_ALLREDUCE || coll == PC_REDUCESCATTER || coll == PC_REDUCE;
    int roots[4] = {0, n - 1, n / 2, 1 % n};
    for (int j = 0; j < (reduces ? 6 : 2); j++) {
        k = add_var(v, k, cnt[1], 64, red[j][0], red[j][1], roots[j % 4], 0);
        k = add_var(v, k, cnt[nc - 2], 64, red[j][0], red[j][1], roots[(j + 1) % 4], j % 2);
    }
    return k;
}

static int make_vars(const topo_t *t, int coll, var_t *v) {
    int n = t->n, big = n > 64, roots[4] = {0, n - 1, n / 2, 1 % n}, k = 0;
    size_t cnt[8];
    if (coll == PC_BARRIER) return add_var(v, 0, 0, 64, podcclUint8, podcclSum, 0, 0);
    int nc = counts_for(n, coll, cnt);
    for (int ci = 0; ci < nc; ci++)
        for (int ip = 0; ip < 2; ip++) {
            if ((coll == PC_ALLTOALLV && ip) || (big && ip != ci % 2)) continue;
            k = add_var(v, k, cnt[ci], 64, podcclInt32, podcclSum, roots[ci % 4], ip);
        }
    if (!big) /* a bigger chunk: fewer, larger pieces */
        for (int ip = 0; ip < (coll == PC_ALLTOALLV ? 1 : 2); ip++)
            k = add_var(v, k, cnt[nc - 1], 256, podcclInt32, podcclSum, roots[1 + ip], ip);
    if (n <= 17 && coll != PC_ALLTOALLV) k = extra_vars(n, coll, cnt, nc, v, k);
    return k;
}

static void run_algo(const topo_t *t, pc_levels *L, const pc_env *env, int coll,
                     const pc_algo_desc *d, const var_t *v, int nv) {
    int ran = 0, failed = 0;
    long long st0 = n_steps;
    double t0 = now();
    for (int i = 0; i < nv; i++) {
        case_t c = {.t = t, .L = L, .d = d, .coll = coll, .v = v[i]};
        int e = run_case(&c, env);
        ran += e >= 0, failed += e > 0;
    }
    total_fail += failed;
    if (failed || (verbose && ran))
        printf("%s %-58s %-13s %-13s %3d cases %9lld steps %6.2f s%s\n", failed ? "FAIL" : "ok  ",
               t->name, algo_coll_name(coll), d->name, ran, n_steps - st0, now() - t0,
               failed ? "  <-- FAILED" : "");
}

static void run_topo(const topo_t *t) {
    static const int colls[] = {PC_ALLREDUCE, PC_ALLGATHER, PC_REDUCESCATTER, PC_BROADCAST,
                                PC_REDUCE,    PC_ALLTOALL,  PC_ALLTOALLV,     PC_BARRIER};
    pc_levels L;
    if (topo_levels(t, &L)) {
        total_fail++;
        return;
    }
    pc_env env = {.lv = &L, .direct_bytes = 0, .cma = 0, .reduce_GBps = 5};
    var_t v[MAX_VARS];
    for (size_t ci = 0; ci < sizeof(colls) / sizeof(colls[0]); ci++) {
        int nv = make_vars(t, colls[ci], v);
        for (int a = 0; pc_algos[a]; a++) {
            char key[64];
            snprintf(key, sizeof(key), " %s ", pc_algos[a]->name);
            if (pc_algos[a]->coll == colls[ci] && pc_algos[a]->build &&
                !(t->skip && strstr(t->skip, key)))
                run_algo(t, &L, &env, colls[ci], pc_algos[a], v, nv);
        }
    }
    levels_free(&L);
}

int main(int argc, char **argv) {
    const char *filter = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-v"))
            verbose = 1;
        else
            filter = argv[i];
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    double t0 = now();
    topo_t *T[MAX_TOPOS];
    int nt = make_topos(T);
    for (int i = 0; i < nt; i++) {
        if (!filter || strstr(T[i]->name, filter)) run_topo(T[i]);
        topo_free(T[i]);
    }
    printf("test_sched: %lld executions of %lld schedule sets in %.1f s\n", n_runs, n_sets,
           now() - t0);
    printf("test_sched: %lld schedules (%lld ranks total, %lld steps) executed: %s\n", n_sets,
           n_ranks, n_steps, total_fail ? "FAIL" : "PASS");
    return total_fail ? 1 : 0;
}
