/* Communicator life after errors, on 2 forked ranks (tests/harness.c):
 *
 * 1. Error chain: rank 1 leaves; rank 0's all-reduce fails (RemoteError or Timeout) and breaks
 *    the communicator. A harmless InvalidArgument afterwards must not become the blamed cause:
 *    every later call names the first breaking error's message, once ("broken by an earlier
 *    error: ..." never nests).
 * 2. Mismatch mid-operation: forced ring all-reduce with counts that differ between the ranks.
 *    Whatever a rank gets (InvalidUsage from a peer that sent more than it posted, or
 *    RemoteError/Timeout), data may have moved, so the communicator must be broken (podccl.h: only
 *    InvalidArgument leaves it usable) and the next call must say so.
 * 3. Abort with work queued on a stream and an open group, while the peer never joins: the
 *    running operation fails when it sees the abort, the queued ones fail without moving data,
 *    the group's operation is dropped, and podcclCommAbort returns. PODCCL timeout is 120 s and
 *    the watchdog 45 s, so an abort that waits for a timeout fails the test. */
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

typedef struct {     /* in harness_scratch() */
    atomic_int gone; /* case 1: rank 1 has destroyed its communicator */
    atomic_int done; /* case 3: rank 0 has finished */
} shared_state;

static shared_state *st(void) {
    return harness_scratch();
}

static int count_of(const char *s, const char *what) {
    int k = 0;
    for (const char *p = s; (p = strstr(p, what)); p += strlen(what)) k++;
    return k;
}

/* The call failed with rc on a broken communicator: its message names `first` once. */
static int names_first_once(int rank, const char *call, podcclResult_t rc, podcclResult_t want,
                            const char *msg, const char *first) {
    int bad = 0;
    if (rc != want) {
        fprintf(stderr, "rank %d: %s on the broken communicator returned %d, want %d: %s\n", rank,
                call, (int)rc, (int)want, msg);
        bad = 1;
    }
    if (count_of(msg, "broken by an earlier error") != 1 || !strstr(msg, first) ||
        strstr(msg, "count is NULL")) {
        fprintf(stderr,
                "rank %d: %s: message '%s' must name the first cause '%s' once, and not the "
                "later harmless error\n",
                rank, call, msg, first);
        bad = 1;
    }
    return bad;
}

/* ---- 1. error chain -------------------------------------------------------------------------- */

static int chain_body(podcclComm_t c, int rank, int nranks, void *arg) {
    (void)nranks, (void)arg;
    if (rank == 1) {
        podcclResult_t r = podcclCommDestroy(c);
        harness_comm_freed();
        atomic_store(&st()->gone, 1);
        return r != podcclSuccess;
    }
    while (!atomic_load(&st()->gone)) harness_sleep_ms(1);
    int32_t x[16] = {0}, y[16];
    int n, bad = 0;
    /* a harmless error before the break: not the cause either */
    if (podcclCommCount(c, NULL) != podcclInvalidArgument) bad = 1;
    podcclResult_t r1 = podcclAllReduce(x, y, 16, podcclInt32, podcclSum, c, NULL);
    char first[512];
    snprintf(first, sizeof(first), "%s", podcclGetLastError(c));
    if (r1 != podcclRemoteError && r1 != podcclTimeout) {
        fprintf(stderr, "rank 0: all-reduce without rank 1 returned %d: %s\n", (int)r1, first);
        return 1;
    }
    for (int k = 0; k < 3; k++) {
        /* harmless, after the break: it must not become the blamed cause; without it in
         * between (k = 1), the message must not nest the previous "broken by" message */
        if (k != 1 && podcclCommCount(c, NULL) != podcclInvalidArgument) bad = 1;
        podcclResult_t r = k == 2 ? podcclBarrier(c, NULL)
                                  : podcclAllReduce(x, y, 16, podcclInt32, podcclSum, c, NULL);
        bad |= names_first_once(0, k == 2 ? "barrier" : "all-reduce", r, r1, podcclGetLastError(c),
                                first);
    }
    podcclResult_t async = podcclSuccess;
    if (podcclCommGetAsyncError(c, &async) != podcclSuccess || async != r1) {
        fprintf(stderr, "rank 0: podcclCommGetAsyncError gave %d, want %d\n", (int)async, (int)r1);
        bad = 1;
    }
    if (podcclCommCount(c, &n) != podcclSuccess || n != 2) bad = 1; /* queries still work */
    return bad;
}

/* ---- 2. mismatch mid-operation -------------------------------------------------------------- */

static int mismatch_body(podcclComm_t c, int rank, int nranks, void *arg) {
    enum { COUNT0 = 1000, COUNT1 = 3000 }; /* blocks of 2000 and 6000 bytes */
    int32_t x[COUNT1], y[COUNT1];
    (void)nranks, (void)arg;
    for (int i = 0; i < COUNT1; i++) x[i] = i;
    podcclResult_t r =
        podcclAllReduce(x, y, rank ? COUNT1 : COUNT0, podcclInt32, podcclSum, c, NULL);
    char first[512];
    snprintf(first, sizeof(first), "%s", podcclGetLastError(c));
    if (r == podcclSuccess || r == podcclInvalidArgument) {
        fprintf(stderr, "rank %d: all-reduce with mismatched counts returned %d: %s\n", rank,
                (int)r, first);
        return 1;
    }
    podcclResult_t async = podcclSuccess;
    podcclCommGetAsyncError(c, &async);
    if (async != r) {
        fprintf(stderr,
                "rank %d: the all-reduce failed with %d after data may have moved (%s), but "
                "podcclCommGetAsyncError gives %d: the communicator must be broken\n",
                rank, (int)r, first, (int)async);
        return 1;
    }
    podcclResult_t again = podcclAllReduce(x, y, 4, podcclInt32, podcclSum, c, NULL);
    return names_first_once(rank, "all-reduce after the mismatch", again, r, podcclGetLastError(c),
                            first);
}

/* ---- 3. abort with a stream and an open group ---------------------------------------------- */

enum { BIG = 1 << 16, QUEUED = 3 };

static int untouched(const int32_t *y, const char *what) {
    for (int i = 0; i < BIG; i++)
        if (y[i] != -1) {
            fprintf(stderr, "rank 0: %s wrote element %d (%d): it should never have run\n", what, i,
                    (int)y[i]);
            return 1;
        }
    return 0;
}

static int abort_body(podcclComm_t c, int rank, int nranks, void *arg) {
    int in_group = *(const int *)arg, bad = 0;
    (void)nranks;
    if (rank == 1) { /* never joins; waits until rank 0 is done */
        for (int ms = 0; ms < 40000 && !atomic_load(&st()->done); ms += 5) harness_sleep_ms(5);
        return 0;
    }
    int32_t *x = malloc(sizeof(int32_t) * BIG), *y = malloc(sizeof(int32_t) * BIG * (QUEUED + 2));
    podcclStream_t s;
    if (!x || !y || podcclStreamCreate(&s) != podcclSuccess) return 1;
    for (size_t i = 0; i < (size_t)BIG * (QUEUED + 2); i++) y[i] = -1;
    for (int i = 0; i < BIG; i++) x[i] = 1;
    /* the first waits for rank 1; the others wait behind it on the stream */
    for (int k = 0; k <= QUEUED; k++)
        if (podcclAllReduce(x, y + (size_t)k * BIG, BIG, podcclInt32, podcclSum, c, s) !=
            podcclSuccess)
            bad = 1;
    if (in_group) {
        podcclGroupStart();
        if (podcclAllReduce(x, y + (size_t)(QUEUED + 1) * BIG, BIG, podcclInt32, podcclSum, c, s) !=
            podcclSuccess)
            bad = 1;
    }
    harness_sleep_ms(300);
    podcclResult_t r = podcclCommAbort(c);
    harness_comm_freed();
    if (r != podcclSuccess) {
        fprintf(stderr, "rank 0: podcclCommAbort returned %d\n", (int)r);
        bad = 1;
    }
    if (in_group && podcclGroupEnd() != podcclSuccess) bad = 1;
    r = podcclStreamSynchronize(s);
    if (r == podcclSuccess) {
        fprintf(stderr, "rank 0: the aborted stream work reported success\n");
        bad = 1;
    }
    for (int k = 1; k <= QUEUED; k++) bad |= untouched(y + (size_t)k * BIG, "a queued all-reduce");
    if (in_group) bad |= untouched(y + (size_t)(QUEUED + 1) * BIG, "the group's all-reduce");
    podcclStreamDestroy(s);
    free(x), free(y);
    atomic_store(&st()->done, 1);
    return bad;
}

int main(void) {
    int fails = 0;
    podcclConfig_t cfg = PODCCL_CONFIG_INITIALIZER;
    cfg.timeoutSec = 20;
    harness_opts o1 = {.timeout_sec = 45, .config = &cfg};
    if (harness_run_opts(2, chain_body, NULL, &o1)) fails++, fprintf(stderr, "FAIL: chain\n");

    podcclConfig_t ring = PODCCL_CONFIG_INITIALIZER;
    ring.timeoutSec = 10;
    ring.algo = "allreduce:ring";
    harness_opts o2 = {.timeout_sec = 45, .config = &ring};
    if (harness_run_opts(2, mismatch_body, NULL, &o2)) fails++, fprintf(stderr, "FAIL: mismatch\n");

    podcclConfig_t slow = PODCCL_CONFIG_INITIALIZER;
    slow.timeoutSec = 120; /* an abort that waits for the timeout trips the watchdog */
    for (int in_group = 0; in_group < 2; in_group++) {
        harness_opts o3 = {.timeout_sec = 45, .config = &slow};
        if (harness_run_opts(2, abort_body, &in_group, &o3))
            fails++, fprintf(stderr, "FAIL: abort with a stream%s\n",
                             in_group ? " and an open group" : "");
    }
    printf("%s\n", fails ? "test_life: FAILED" : "test_life: all passed");
    return fails != 0;
}
