/* Bad arguments to every public function: the call must fail with the documented code and a
 * message, and a live communicator must stay usable (a correct all-reduce after every bad call).
 * Root/peer range checks that need two ranks run in a 2-rank job through the harness, first,
 * before this process creates threads of its own; so do absurd counts (InvalidArgument on every
 * rank, promptly: the harness watchdog fails a rank that waits for the other) and all-to-all-v
 * with a self block that disagrees. Then the communicator's life: calls on a destroyed or
 * aborted communicator (recognised without reading freed memory: clean under ASan), and
 * podcclCommDestroy/podcclCommAbort inside an open group, on this thread or another (a hang
 * ends the test with SIGALRM). */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "harness.h"

#define BAD_TYPE ((podcclDataType_t)99)
#define BAD_OP ((podcclRedOp_t)99)
#define HUGE_COUNT (SIZE_MAX / 2)
#define N 64

static podcclComm_t comm1; /* 1-rank communicator */
static float a[N], b[N];

/* The call returned want and left a message; the communicator (if any) still works. Returns 0
 * or prints why not and returns 1 (usable from forked ranks, where cmocka cannot fail). */
static int bad_call(podcclComm_t comm, int rank, int nranks, podcclResult_t got,
                    podcclResult_t want, const char *what, int line) {
    const char *msg = podcclGetLastError(comm);
    int bad = 0;
    if (got != want) {
        fprintf(stderr, "line %d: rank %d: %s returned %d (%s), want %d\n", line, rank, what, got,
                podcclGetErrorString(got), want);
        bad = 1;
    } else if (!msg || !*msg) {
        fprintf(stderr, "line %d: %s: podcclGetLastError is empty\n", line, what);
        bad = 1;
    }
    if (comm && harness_allreduce_ok(comm, rank, nranks, 7)) {
        fprintf(stderr, "line %d: communicator unusable after %s\n", line, what);
        bad = 1;
    }
    return bad;
}

#define EXPECT(want, call)                                                                         \
    assert_int_equal(bad_call(comm1, 0, 1, (call), (want), #call, __LINE__), 0)
#define EXPECT_NOCOMM(want, call)                                                                  \
    assert_int_equal(bad_call(NULL, 0, 1, (call), (want), #call, __LINE__), 0)

/* ---- every collective through one signature ------------------------------------------------ */

typedef podcclResult_t (*coll_fn)(const void *s, void *r, size_t n, podcclDataType_t t,
                                  podcclRedOp_t op, int root, podcclComm_t c);
static podcclResult_t w_allreduce(const void *s, void *r, size_t n, podcclDataType_t t,
                                  podcclRedOp_t op, int root, podcclComm_t c) {
    return (void)root, podcclAllReduce(s, r, n, t, op, c, NULL);
}
static podcclResult_t w_allgather(const void *s, void *r, size_t n, podcclDataType_t t,
                                  podcclRedOp_t op, int root, podcclComm_t c) {
    return (void)op, (void)root, podcclAllGather(s, r, n, t, c, NULL);
}
static podcclResult_t w_reducescatter(const void *s, void *r, size_t n, podcclDataType_t t,
                                      podcclRedOp_t op, int root, podcclComm_t c) {
    return (void)root, podcclReduceScatter(s, r, n, t, op, c, NULL);
}
static podcclResult_t w_broadcast(const void *s, void *r, size_t n, podcclDataType_t t,
                                  podcclRedOp_t op, int root, podcclComm_t c) {
    return (void)op, podcclBroadcast(s, r, n, t, root, c, NULL);
}
static podcclResult_t w_reduce(const void *s, void *r, size_t n, podcclDataType_t t,
                               podcclRedOp_t op, int root, podcclComm_t c) {
    return podcclReduce(s, r, n, t, op, root, c, NULL);
}
static podcclResult_t w_alltoall(const void *s, void *r, size_t n, podcclDataType_t t,
                                 podcclRedOp_t op, int root, podcclComm_t c) {
    return (void)op, (void)root, podcclAllToAll(s, r, n, t, c, NULL);
}
static podcclResult_t w_send(const void *s, void *r, size_t n, podcclDataType_t t, podcclRedOp_t op,
                             int root, podcclComm_t c) {
    return (void)r, (void)op, podcclSend(s, n, t, root, c, NULL);
}
static podcclResult_t w_recv(const void *s, void *r, size_t n, podcclDataType_t t, podcclRedOp_t op,
                             int root, podcclComm_t c) {
    return (void)s, (void)op, podcclRecv(r, n, t, root, c, NULL);
}

static const struct {
    const char *name;
    coll_fn fn;
    int send, recv, op, root; /* which arguments it uses */
} colls[] = {
    {"allreduce", w_allreduce, 1, 1, 1, 0},
    {"allgather", w_allgather, 1, 1, 0, 0},
    {"reducescatter", w_reducescatter, 1, 1, 1, 0},
    {"broadcast", w_broadcast, 1, 1, 0, 1},
    {"reduce", w_reduce, 1, 1, 1, 1},
    {"alltoall", w_alltoall, 1, 1, 0, 0},
    {"send", w_send, 1, 0, 0, 1},
    {"recv", w_recv, 0, 1, 0, 1},
};
#define NCOLLS (int)(sizeof(colls) / sizeof(colls[0]))

/* Root/peer out of range on an nranks communicator; every rank runs it. */
static int bad_roots(podcclComm_t c, int rank, int nranks) {
    int bad = 0;
    for (int i = 0; i < NCOLLS; i++) {
        for (int root = -1; colls[i].root && root <= nranks; root += nranks + 1) {
            char what[64];
            snprintf(what, sizeof(what), "%s with root/peer %d", colls[i].name, root);
            bad +=
                bad_call(c, rank, nranks, colls[i].fn(a, b, 4, podcclFloat32, podcclSum, root, c),
                         podcclInvalidArgument, what, __LINE__);
        }
    }
    return bad;
}

/* Counts whose bytes cannot exist in memory (over 2^47 bytes), or that would need more pipeline
 * chunks than a schedule may have: InvalidArgument on every rank, decided before anything moves
 * (so no rank waits for another, and no schedule is built), with a message about the count (not
 * about overlapping buffers); the communicator stays usable. Every rank runs it; the buffers
 * are small, as nothing may touch them. */
static int absurd_counts(podcclComm_t c, int rank, int nranks) {
    static const struct {
        size_t count;
        podcclDataType_t type;
        const char *name;
    } cases[] = {
        {0x1fffffffffffffffull, podcclUint8, "uint8"}, /* 2^61 B; x nranks still fits size_t */
        {(size_t)1 << 45, podcclFloat64, "float64"},   /* 2^48 bytes */
        {(size_t)1 << 40, podcclFloat32, "float32"},   /* 4 TiB: below 2^47, above the chunks */
        {(size_t)1 << 40, podcclUint8, "uint8"},
    };
    int bad = 0;
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++)
        for (int i = 0; i < NCOLLS; i++) {
            int p2p = !strcmp(colls[i].name, "send") || !strcmp(colls[i].name, "recv");
            char what[96];
            snprintf(what, sizeof(what), "%s with count %zu %s", colls[i].name, cases[k].count,
                     cases[k].name);
            podcclResult_t rc = colls[i].fn(a, b, cases[k].count, cases[k].type, podcclSum,
                                            p2p ? (rank + 1) % nranks : 0, c);
            const char *msg = podcclGetLastError(c);
            if (rc == podcclInvalidArgument && (strstr(msg, "overlap") || !strstr(msg, "count"))) {
                fprintf(stderr, "rank %d: %s: the message does not name the count: %s\n", rank,
                        what, msg);
                bad++;
            }
            bad += bad_call(c, rank, nranks, rc, podcclInvalidArgument, what, __LINE__);
        }
    return bad;
}

/* All-to-all-v whose self block disagrees (sendcounts[me] != recvcounts[me]: the self copy would
 * write sendcounts[me] elements into a region of recvcounts[me]): InvalidArgument on this rank,
 * naming the counts, before anything moves (every rank passes such counts here, so none waits).
 * Receive regions are 2 blocks apart, so an overrun would land in a gap; nothing may change. */
static int alltoallv_self(podcclComm_t c, int rank, int nranks) {
    enum { BLK = 4, MAXR = 4, LEN = 2 * BLK * MAXR + BLK };
    float src[LEN], dst[LEN];
    size_t sc[MAXR], sd[MAXR], rc[MAXR], rd[MAXR];
    int bad = 0;
    if (nranks > MAXR) return 1;
    for (int bigger = 0; bigger < 2; bigger++) {
        for (int i = 0; i < LEN; i++) src[i] = (float)(i + 1), dst[i] = -7;
        for (int p = 0; p < nranks; p++) sc[p] = rc[p] = BLK, sd[p] = rd[p] = (size_t)p * 2 * BLK;
        if (bigger)
            sc[rank] = 2 * BLK; /* sends itself more than it receives */
        else
            rc[rank] = 2 * BLK; /* expects more from itself than it sends */
        podcclResult_t r = podcclAllToAllv(src, sc, sd, dst, rc, rd, podcclFloat32, c, NULL);
        char want[32];
        snprintf(want, sizeof(want), "sendcounts[%d]", rank);
        if (r == podcclInvalidArgument && !strstr(podcclGetLastError(c), want)) {
            fprintf(stderr, "rank %d: alltoallv self mismatch: message does not name %s: %s\n",
                    rank, want, podcclGetLastError(c));
            bad++;
        }
        bad += bad_call(c, rank, nranks, r, podcclInvalidArgument, "alltoallv self mismatch",
                        __LINE__);
        for (int i = 0; i < LEN; i++)
            if (dst[i] != -7) {
                fprintf(stderr, "rank %d: alltoallv self mismatch wrote recvbuff[%d] = %g\n", rank,
                        i, (double)dst[i]);
                bad++;
                break;
            }
    }
    return bad;
}

/* ---- 2 ranks -------------------------------------------------------------------------------- */

static int two_rank_body(podcclComm_t c, int rank, int nranks, void *arg) {
    size_t cnt[2] = {4, 4}, sd[2] = {0, 4}, rd[2] = {0, 2}; /* receive regions overlap */
    (void)arg;
    int bad = bad_roots(c, rank, nranks);
    bad +=
        bad_call(c, rank, nranks, podcclAllToAllv(a, cnt, sd, b, cnt, rd, podcclFloat32, c, NULL),
                 podcclInvalidArgument, "alltoallv with overlapping receive regions", __LINE__);
    bad += alltoallv_self(c, rank, nranks);
    bad += absurd_counts(c, rank, nranks);
    return bad != 0;
}

static void test_two_ranks(void **state) {
    harness_opts o = {.timeout_sec = 60}; /* a rank that waits for the other fails the test */
    (void)state;
    assert_int_equal(harness_run_opts(2, two_rank_body, NULL, &o), 0);
}

/* Two ranks made to look like two hosts (PODCCL_HOSTID), so they need a network transport.
 * arg: the PODCCL_NET value; "bogus" must be refused at init, "ofi" must carry an all-reduce
 * and name itself in podcclCommTransportInfo. */
static int two_host_body(podcclComm_t unused, int rank, int nranks, void *arg) {
    const char *net = arg;
    podcclComm_t c;
    (void)unused;
    setenv("PODCCL_HOSTID", rank ? "badarg-host-b" : "badarg-host-a", 1);
    setenv("PODCCL_NET", net, 1);
    podcclResult_t r = podcclCommInitRank(&c, nranks, harness_unique_id(), rank);
    if (strcmp(net, "bogus") == 0) {
        const char *msg = podcclGetLastError(NULL);
        if (r == podcclInvalidArgument && strstr(msg, "PODCCL_NET=bogus")) return 0;
        printf("rank %d: PODCCL_NET=bogus: got %d (%s)\n", rank, (int)r, msg);
        if (r == podcclSuccess) podcclCommDestroy(c);
        return 1;
    }
    if (r != podcclSuccess) {
        printf("rank %d: init with PODCCL_NET=%s: %s\n", rank, net, podcclGetLastError(NULL));
        return 1;
    }
    char info[256] = "";
    int bad = harness_allreduce_ok(c, rank, nranks, 100003);
    if (podcclCommTransportInfo(c, info, sizeof(info)) != podcclSuccess ||
        !strstr(info, "ofi to 1 remote rank on 1 other host")) {
        printf("rank %d: transport info '%s' does not name ofi\n", rank, info);
        bad = 1;
    }
    char tiny[8];
    if (podcclCommTransportInfo(c, tiny, sizeof(tiny)) != podcclSuccess ||
        strlen(tiny) != sizeof(tiny) - 1)
        bad = 1, printf("rank %d: transport info not truncated to its buffer\n", rank);
    if (podcclCommTransportInfo(c, NULL, 8) != podcclInvalidArgument ||
        podcclCommTransportInfo(c, tiny, 0) != podcclInvalidArgument)
        bad = 1, printf("rank %d: transport info accepted a NULL or empty buffer\n", rank);
    return podcclCommDestroy(c) != podcclSuccess || bad;
}

static void test_two_hosts(void **state) {
    harness_opts o = {.no_comm = 1};
    (void)state;
    assert_int_equal(harness_run_opts(2, two_host_body, "bogus", &o), 0);
#ifdef HAVE_OFI
    harness_opts o2 = {.no_comm = 1};
    assert_int_equal(harness_run_opts(2, two_host_body, "ofi", &o2), 0);
#else
    printf("skipped the ofi half: this build has no libfabric\n");
#endif
}

/* ---- 1 rank --------------------------------------------------------------------------------- */

static int setup(void **state) {
    podcclUniqueId id;
    (void)state;
    if (podcclGetUniqueId(&id) != podcclSuccess) return -1;
    return podcclCommInitRank(&comm1, 1, id, 0) == podcclSuccess ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    return podcclCommDestroy(comm1) == podcclSuccess ? 0 : -1;
}

static void test_version_and_strings(void **state) {
    int v = 0;
    (void)state;
    EXPECT_NOCOMM(podcclInvalidArgument, podcclGetVersion(NULL));
    assert_int_equal(podcclGetVersion(&v), podcclSuccess);
    assert_int_equal(v, PODCCL_VERSION_CODE);
    for (int r = -1; r <= podcclNumResults + 1; r++) {
        const char *s = podcclGetErrorString((podcclResult_t)r);
        assert_non_null(s);
        assert_true(s[0] != '\0');
    }
}

static void test_collectives(void **state) {
    (void)state;
    for (int i = 0; i < NCOLLS; i++) {
        coll_fn f = colls[i].fn;
        EXPECT_NOCOMM(podcclInvalidArgument, f(a, b, 4, podcclFloat32, podcclSum, 0, NULL));
        if (colls[i].send)
            EXPECT(podcclInvalidArgument, f(NULL, b, 4, podcclFloat32, podcclSum, 0, comm1));
        if (colls[i].recv)
            EXPECT(podcclInvalidArgument, f(a, NULL, 4, podcclFloat32, podcclSum, 0, comm1));
        EXPECT(podcclInvalidArgument, f(a, b, 4, BAD_TYPE, podcclSum, 0, comm1));
        EXPECT(podcclInvalidArgument, f(a, b, 4, (podcclDataType_t)-1, podcclSum, 0, comm1));
        if (colls[i].op) {
            EXPECT(podcclInvalidArgument, f(a, b, 4, podcclFloat32, BAD_OP, 0, comm1));
            EXPECT(podcclInvalidArgument, f(a, b, 4, podcclFloat32, (podcclRedOp_t)-1, 0, comm1));
        }
        EXPECT(podcclInvalidArgument, f(a, b, HUGE_COUNT, podcclFloat32, podcclSum, 0, comm1));
        if (colls[i].send && colls[i].recv) /* overlapping, not the in-place layout */
            EXPECT(podcclInvalidArgument, f(a, a + 1, 16, podcclFloat32, podcclSum, 0, comm1));
        if (colls[i].send) /* a buffer that runs past the end of the address space */
            EXPECT(podcclInvalidArgument,
                   f((const void *)(UINTPTR_MAX - 7), b, 4, podcclFloat32, podcclSum, 0, comm1));
    }
    assert_int_equal(bad_roots(comm1, 0, 1), 0);
    assert_int_equal(absurd_counts(comm1, 0, 1), 0);
}

static void test_alltoallv(void **state) {
    size_t one[1] = {4}, zero[1] = {0}, huge[1] = {HUGE_COUNT};
    (void)state;
    EXPECT_NOCOMM(podcclInvalidArgument,
                  podcclAllToAllv(a, one, zero, b, one, zero, podcclFloat32, NULL, NULL));
    EXPECT(podcclInvalidArgument,
           podcclAllToAllv(NULL, one, zero, b, one, zero, podcclFloat32, comm1, NULL));
    EXPECT(podcclInvalidArgument,
           podcclAllToAllv(a, one, zero, NULL, one, zero, podcclFloat32, comm1, NULL));
    EXPECT(podcclInvalidArgument,
           podcclAllToAllv(a, NULL, zero, b, one, zero, podcclFloat32, comm1, NULL));
    EXPECT(podcclInvalidArgument,
           podcclAllToAllv(a, one, NULL, b, one, zero, podcclFloat32, comm1, NULL));
    EXPECT(podcclInvalidArgument,
           podcclAllToAllv(a, one, zero, b, NULL, zero, podcclFloat32, comm1, NULL));
    EXPECT(podcclInvalidArgument,
           podcclAllToAllv(a, one, zero, b, one, NULL, podcclFloat32, comm1, NULL));
    EXPECT(podcclInvalidArgument,
           podcclAllToAllv(a, one, zero, b, one, zero, BAD_TYPE, comm1, NULL));
    EXPECT(podcclInvalidArgument,
           podcclAllToAllv(a, huge, zero, b, huge, zero, podcclFloat32, comm1, NULL));
    EXPECT(podcclInvalidArgument, /* no in-place for alltoallv */
           podcclAllToAllv(a, one, zero, a, one, zero, podcclFloat32, comm1, NULL));
    size_t far[1] = {(size_t)1 << 45}; /* a displacement whose region ends beyond 2^47 bytes */
    EXPECT(podcclInvalidArgument,
           podcclAllToAllv(a, one, zero, b, one, far, podcclFloat32, comm1, NULL));
    assert_int_equal(alltoallv_self(comm1, 0, 1), 0);
}

/* ---- communicator life ---------------------------------------------------------------------- */

static podcclComm_t new_comm(void) {
    podcclUniqueId id;
    podcclComm_t c = NULL;
    assert_int_equal(podcclGetUniqueId(&id), podcclSuccess);
    assert_int_equal(podcclCommInitRank(&c, 1, id, 0), podcclSuccess);
    return c;
}

/* A destroyed (or aborted) communicator is recognised without reading its freed memory (ASan
 * would report heap-use-after-free): every entry point returns InvalidArgument "not a live
 * communicator (destroyed?)". */
#define DEAD(call)                                                                                 \
    do {                                                                                           \
        EXPECT_NOCOMM(podcclInvalidArgument, (call));                                              \
        if (!strstr(podcclGetLastError(NULL), "not a live communicator (destroyed?)"))             \
            fail_msg("%s: message '%s'", #call, podcclGetLastError(NULL));                         \
    } while (0)

static void test_use_after_destroy(void **state) {
    podcclComm_t c;
    podcclStream_t s;
    podcclResult_t e;
    int n;
    size_t one[1] = {4}, zero[1] = {0}, bytes;
    char buf[64];
    (void)state;
    for (int abort = 0; abort < 2; abort++) {
        c = new_comm();
        assert_int_equal(abort ? podcclCommAbort(c) : podcclCommDestroy(c), podcclSuccess);
        DEAD(podcclAllReduce(a, b, 4, podcclFloat32, podcclSum, c, NULL));
        DEAD(podcclAllGather(a, b, 4, podcclFloat32, c, NULL));
        DEAD(podcclBroadcast(a, b, 4, podcclFloat32, 0, c, NULL));
        DEAD(podcclSend(a, 4, podcclFloat32, 0, c, NULL));
        DEAD(podcclBarrier(c, NULL));
        DEAD(podcclAllToAllv(a, one, zero, b, one, zero, podcclFloat32, c, NULL));
        DEAD(podcclCommCount(c, &n));
        DEAD(podcclCommUserRank(c, &n));
        DEAD(podcclCommGetAsyncError(c, &e));
        DEAD(podcclCommMemoryUsage(c, &bytes, &bytes));
        DEAD(podcclCommTransportInfo(c, buf, sizeof(buf)));
        DEAD(podcclCommTopoInfo(c, buf, sizeof(buf)));
        DEAD(podcclCommExplain(c, "allreduce", 4, podcclFloat32, podcclSum, buf, sizeof(buf)));
        podcclComm_t child = (podcclComm_t)1;
        DEAD(podcclCommSplit(c, 0, 0, &child, NULL));
        assert_null(child);
        DEAD(podcclCommDestroy(c));
        DEAD(podcclCommAbort(c));
        /* the thread's message, not the freed communicator's */
        assert_ptr_equal(podcclGetLastError(c), podcclGetLastError(NULL));
        assert_int_equal(podcclGroupStart(), podcclSuccess);
        DEAD(podcclAllReduce(a, b, 4, podcclFloat32, podcclSum, c, NULL));
        assert_int_equal(podcclGroupEnd(), podcclSuccess);
        assert_int_equal(podcclStreamCreate(&s), podcclSuccess);
        DEAD(podcclAllReduce(a, b, 4, podcclFloat32, podcclSum, c, s));
        assert_int_equal(podcclStreamDestroy(s), podcclSuccess);
    }
}

static void check_sum(const float *y, const float *x, int n) {
    for (int i = 0; i < n; i++)
        if (y[i] != x[i]) fail_msg("element %d: %g, expected %g", i, (double)y[i], (double)x[i]);
}

static void check_untouched(const float *y, int n) {
    for (int i = 0; i < n; i++)
        if (y[i] != -1)
            fail_msg("element %d changed to %g: a dropped operation ran", i, (double)y[i]);
}

/* podcclCommDestroy inside an open group that holds an operation on that communicator used to
 * wait forever (the operation runs only at podcclGroupEnd): now InvalidUsage naming the count,
 * nothing freed, and the group still runs. podcclCommAbort drops the thread's queued operations
 * on it (they never run) and returns. Both with and without a stream. A hang ends the test by
 * SIGALRM (set in main), instead of blocking CI. */
static void test_destroy_abort_in_group(void **state) {
    float x[4] = {1, 2, 3, 4}, y[4], y2[4];
    podcclStream_t st;
    (void)state;
    assert_int_equal(podcclStreamCreate(&st), podcclSuccess);
    for (int on_stream = 0; on_stream < 2; on_stream++) {
        podcclStream_t s = on_stream ? st : NULL;
        podcclComm_t c = new_comm(), other = new_comm();
        memset(y, 0, sizeof(y));
        assert_int_equal(podcclGroupStart(), podcclSuccess);
        assert_int_equal(podcclAllReduce(x, y, 4, podcclFloat32, podcclSum, c, s), podcclSuccess);
        assert_int_equal(podcclAllReduce(x, y, 4, podcclFloat32, podcclMax, c, s), podcclSuccess);
        assert_int_equal(podcclCommDestroy(c), podcclInvalidUsage);
        assert_non_null(strstr(podcclGetLastError(c), "2 operations"));
        assert_int_equal(podcclGroupEnd(), podcclSuccess);
        assert_int_equal(podcclStreamSynchronize(st), podcclSuccess);
        check_sum(y, x, 4); /* the group ran on the communicator that was not freed */
        assert_int_equal(podcclCommDestroy(c), podcclSuccess);

        c = new_comm();
        for (int i = 0; i < 4; i++) y[i] = y2[i] = -1;
        assert_int_equal(podcclGroupStart(), podcclSuccess);
        assert_int_equal(podcclGroupStart(), podcclSuccess); /* nested */
        assert_int_equal(podcclAllReduce(x, y, 4, podcclFloat32, podcclSum, c, s), podcclSuccess);
        assert_int_equal(podcclAllReduce(x, y2, 4, podcclFloat32, podcclSum, other, s),
                         podcclSuccess);
        assert_int_equal(podcclAllReduce(x, y, 4, podcclFloat32, podcclSum, c, s), podcclSuccess);
        assert_int_equal(podcclCommAbort(c), podcclSuccess);
        assert_int_equal(podcclGroupEnd(), podcclSuccess);
        assert_int_equal(podcclGroupEnd(), podcclSuccess);
        assert_int_equal(podcclStreamSynchronize(st), podcclSuccess);
        check_untouched(y, 4);
        check_sum(y2, x, 4); /* the other communicator's operation still ran */
        assert_int_equal(podcclCommDestroy(other), podcclSuccess);
    }
    assert_int_equal(podcclStreamDestroy(st), podcclSuccess);
}

/* Another thread's open group holds an operation on c; this thread destroys or aborts c. That
 * group holds no reference (destroy and abort do not wait for a podcclGroupEnd that may never
 * come), and its podcclGroupEnd drops the operation: InvalidArgument, nothing written. */
typedef struct {
    podcclComm_t c;
    atomic_int step; /* 1: operation queued, 2: c is gone */
    podcclResult_t queued, end;
    float y[4];
} group_thread_arg;

static void *group_thread(void *p) {
    group_thread_arg *g = p;
    float x[4] = {1, 2, 3, 4};
    podcclGroupStart();
    g->queued = podcclAllReduce(x, g->y, 4, podcclFloat32, podcclSum, g->c, NULL);
    atomic_store(&g->step, 1);
    while (atomic_load(&g->step) != 2) usleep(1000);
    g->end = podcclGroupEnd();
    return NULL;
}

static void test_destroy_while_other_thread_groups(void **state) {
    (void)state;
    for (int abort = 0; abort < 2; abort++) {
        group_thread_arg g = {.c = new_comm(), .y = {-1, -1, -1, -1}};
        pthread_t t;
        assert_int_equal(pthread_create(&t, NULL, group_thread, &g), 0);
        while (atomic_load(&g.step) != 1) usleep(1000);
        assert_int_equal(abort ? podcclCommAbort(g.c) : podcclCommDestroy(g.c), podcclSuccess);
        atomic_store(&g.step, 2);
        pthread_join(t, NULL);
        assert_int_equal(g.queued, podcclSuccess);
        assert_int_equal(g.end, podcclInvalidArgument);
        check_untouched(g.y, 4);
    }
}

static void test_comm_queries(void **state) {
    podcclResult_t e;
    int n;
    (void)state;
    EXPECT_NOCOMM(podcclInvalidArgument, podcclCommDestroy(NULL));
    EXPECT_NOCOMM(podcclInvalidArgument, podcclCommAbort(NULL));
    EXPECT_NOCOMM(podcclInvalidArgument, podcclCommGetAsyncError(NULL, &e));
    EXPECT(podcclInvalidArgument, podcclCommGetAsyncError(comm1, NULL));
    EXPECT_NOCOMM(podcclInvalidArgument, podcclCommCount(NULL, &n));
    EXPECT(podcclInvalidArgument, podcclCommCount(comm1, NULL));
    EXPECT_NOCOMM(podcclInvalidArgument, podcclCommUserRank(NULL, &n));
    EXPECT(podcclInvalidArgument, podcclCommUserRank(comm1, NULL));
    EXPECT_NOCOMM(podcclInvalidArgument, podcclBarrier(NULL, NULL));
    size_t shm = 0, host = 0;
    EXPECT_NOCOMM(podcclInvalidArgument, podcclCommMemoryUsage(NULL, &shm, &host));
    assert_int_equal(podcclCommMemoryUsage(comm1, NULL, NULL), podcclSuccess);
    assert_int_equal(podcclCommMemoryUsage(comm1, &shm, &host), podcclSuccess);
    assert_true(shm >= 4096);  /* a 1-rank communicator still has its segment */
    assert_int_equal(host, 0); /* scratch grows with the first schedule that needs it */
    assert_int_equal(podcclCommGetAsyncError(comm1, &e), podcclSuccess);
    assert_int_equal(e, podcclSuccess);
    char info[128];
    EXPECT_NOCOMM(podcclInvalidArgument, podcclCommTransportInfo(NULL, info, sizeof(info)));
    EXPECT(podcclInvalidArgument, podcclCommTransportInfo(comm1, NULL, sizeof(info)));
    EXPECT(podcclInvalidArgument, podcclCommTransportInfo(comm1, info, 0));
    char big[4096];
    EXPECT_NOCOMM(podcclInvalidArgument, podcclCommTopoInfo(NULL, big, sizeof(big)));
    EXPECT(podcclInvalidArgument, podcclCommTopoInfo(comm1, NULL, sizeof(big)));
    EXPECT(podcclInvalidArgument, podcclCommTopoInfo(comm1, big, 0));
    assert_int_equal(podcclCommTopoInfo(comm1, big, sizeof(big)), podcclSuccess);
    assert_non_null(strstr(big, "level 0 host"));
    EXPECT(podcclInvalidArgument,
           podcclCommExplain(comm1, "allscatter", 1, podcclFloat32, podcclSum, big, sizeof(big)));
    EXPECT(podcclInvalidArgument,
           podcclCommExplain(comm1, NULL, 1, podcclFloat32, podcclSum, big, sizeof(big)));
    EXPECT(podcclInvalidArgument,
           podcclCommExplain(comm1, "allreduce", 1, (podcclDataType_t)42, podcclSum, big, 9));
    EXPECT(podcclInvalidArgument,
           podcclCommExplain(comm1, "allreduce", 1, podcclFloat32, podcclSum, NULL, 9));
    assert_int_equal(
        podcclCommExplain(comm1, "allreduce", 2, podcclFloat32, podcclSum, big, sizeof(big)),
        podcclSuccess);
    assert_non_null(strstr(big, "-> direct")); /* one rank, 8 bytes: one-shot */
    assert_int_equal(podcclCommExplain(comm1, "allreduce", 2, podcclFloat32, podcclSum, big, 20),
                     podcclSuccess); /* truncated, still terminated */
    assert_true(strlen(big) < 20);
    assert_int_equal(podcclCommTransportInfo(comm1, info, sizeof(info)), podcclSuccess);
    assert_string_equal(info, "shm to 0 local peers (shared memory)");
}

static void test_streams_and_groups(void **state) {
    podcclStream_t s;
    (void)state;
    EXPECT_NOCOMM(podcclInvalidArgument, podcclStreamCreate(NULL));
    EXPECT_NOCOMM(podcclInvalidArgument, podcclStreamSynchronize(NULL));
    EXPECT_NOCOMM(podcclInvalidArgument, podcclStreamDestroy(NULL));
    EXPECT_NOCOMM(podcclInvalidUsage, podcclGroupEnd());
    /* rejected on a stream: nothing is queued, the stream stays clean */
    assert_int_equal(podcclStreamCreate(&s), podcclSuccess);
    EXPECT(podcclInvalidArgument, podcclAllReduce(NULL, b, 4, podcclFloat32, podcclSum, comm1, s));
    assert_int_equal(podcclStreamSynchronize(s), podcclSuccess);
    assert_int_equal(podcclStreamDestroy(s), podcclSuccess);
    /* rejected inside a group: reported when issued; the group still closes */
    assert_int_equal(podcclGroupStart(), podcclSuccess);
    podcclResult_t rc = podcclAllReduce(a, b, 4, BAD_TYPE, podcclSum, comm1, NULL);
    podcclResult_t end = podcclGroupEnd();
    assert_int_equal(rc, podcclInvalidArgument);
    assert_true(end == podcclSuccess || end == podcclInvalidArgument);
    EXPECT_NOCOMM(podcclInvalidUsage, podcclGroupEnd());
    assert_int_equal(harness_allreduce_ok(comm1, 0, 1, 7), 0);
}

/* podcclCommInitRank(Config) rejections; none of these may create a communicator. */
static void expect_init_refused(podcclComm_t *c, int nranks, int rank, podcclConfig_t *cfg,
                                int corrupt_id, const char *what) {
    podcclUniqueId id;
    podcclComm_t made = NULL;
    assert_int_equal(podcclGetUniqueId(&id), podcclSuccess);
    if (corrupt_id) memset(id.internal, 0, 8); /* magic */
    podcclResult_t rc = podcclCommInitRankConfig(c ? &made : NULL, nranks, id, rank, cfg);
    if (rc == podcclSuccess) podcclCommDestroy(made);
    if (rc != podcclInvalidArgument || !*podcclGetLastError(NULL))
        fail_msg("%s: podcclCommInitRankConfig returned %d, want podcclInvalidArgument with a "
                 "message",
                 what, rc);
}

static void test_init(void **state) {
    podcclComm_t c;
    podcclUniqueId id;
    podcclConfig_t ok = PODCCL_CONFIG_INITIALIZER, cfg;
    (void)state;
    EXPECT_NOCOMM(podcclInvalidArgument, podcclGetUniqueId(NULL));
    expect_init_refused(NULL, 1, 0, NULL, 0, "NULL comm");
    expect_init_refused(&c, 0, 0, NULL, 0, "nranks 0");
    expect_init_refused(&c, -3, 0, NULL, 0, "nranks -3");
    expect_init_refused(&c, 1, 1, NULL, 0, "rank == nranks");
    expect_init_refused(&c, 2, -1, NULL, 0, "rank -1");
    expect_init_refused(&c, 1, 0, NULL, 1, "id with a wrong magic");
    cfg = ok, cfg.magic ^= 1;
    expect_init_refused(&c, 1, 0, &cfg, 0, "config magic");
    cfg = ok, cfg.size = 3;
    expect_init_refused(&c, 1, 0, &cfg, 0, "config size");
    cfg = ok, cfg.version = 0;
    expect_init_refused(&c, 1, 0, &cfg, 0, "config version");
    cfg = ok, cfg.timeoutSec = 0;
    expect_init_refused(&c, 1, 0, &cfg, 0, "config timeoutSec 0");
    cfg = ok, cfg.timeoutSec = -5;
    expect_init_refused(&c, 1, 0, &cfg, 0, "config timeoutSec -5");
    /* podcclCommInitRank without a config, and a valid config, both work */
    assert_int_equal(podcclGetUniqueId(&id), podcclSuccess);
    EXPECT_NOCOMM(podcclInvalidArgument, podcclCommInitRank(NULL, 1, id, 0));
    cfg = ok, cfg.timeoutSec = 5, cfg.name = "badarg";
    assert_int_equal(podcclGetUniqueId(&id), podcclSuccess);
    assert_int_equal(podcclCommInitRankConfig(&c, 1, id, 0, &cfg), podcclSuccess);
    assert_int_equal(harness_allreduce_ok(c, 0, 1, 7), 0);
    assert_int_equal(podcclCommDestroy(c), podcclSuccess);
}

static void test_init_from_env(void **state) {
    static const char *const vars[] = {
        "PODCCL_RANK", "PODCCL_NRANKS", "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE",
        "PMI_RANK",    "PMI_SIZE",      "SLURM_PROCID",         "SLURM_NTASKS",
        "RANK",        "WORLD_SIZE"};
    podcclComm_t c;
    (void)state;
    EXPECT_NOCOMM(podcclInvalidArgument, podcclCommInitFromEnv(NULL, NULL));
    for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++) unsetenv(vars[i]);
    EXPECT_NOCOMM(podcclInvalidArgument, podcclCommInitFromEnv(&c, NULL));
    setenv("PODCCL_RANK", "3", 1); /* rank out of range */
    setenv("PODCCL_NRANKS", "2", 1);
    EXPECT_NOCOMM(podcclInvalidArgument, podcclCommInitFromEnv(&c, NULL));
    unsetenv("PODCCL_RANK");
    unsetenv("PODCCL_NRANKS");
}

int main(void) {
    const struct CMUnitTest forked[] = {cmocka_unit_test(test_two_ranks),
                                        cmocka_unit_test(test_two_hosts)};
    const struct CMUnitTest local[] = {
        cmocka_unit_test(test_version_and_strings),
        cmocka_unit_test(test_collectives),
        cmocka_unit_test(test_alltoallv),
        cmocka_unit_test(test_comm_queries),
        cmocka_unit_test(test_streams_and_groups),
        cmocka_unit_test(test_init),
        cmocka_unit_test(test_init_from_env),
        cmocka_unit_test(test_use_after_destroy),
        cmocka_unit_test(test_destroy_abort_in_group),
        cmocka_unit_test(test_destroy_while_other_thread_groups),
    };
    setenv("PODCCL_TIMEOUT", "20", 0);
    /* the harness forks: run it before this process has podccl threads */
    int fails = cmocka_run_group_tests_name("badarg, 2 ranks", forked, NULL, NULL);
    alarm(120); /* a call that hangs kills the 1-rank tests (SIGALRM) instead of blocking CI */
    fails += cmocka_run_group_tests_name("badarg, 1 rank", local, setup, teardown);
    return fails != 0;
}
