/* Soft-RoCE lane: point to point over the ib transport, two ranks (podcclCommInitFromEnv) on
 * two "hosts". Built by run.sh against the build tree and run by guest-tests.sh.
 *   1. sends of 0, 1, 4097 bytes and 1 MiB + 3 (many staging slots) arrive intact, both ways;
 *   2. a send longer than the matching receive fails on both ranks within seconds, not at
 *      PODCCL_TIMEOUT, with a message saying that the counts do not match.
 * Exit 0 when both hold. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "podccl.h"

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Byte i of the message of size n that rank `from` sends. */
static unsigned char pattern(int from, size_t n, size_t i) {
    return (unsigned char)(i * 31u + n * 7u + (size_t)from * 101u + 1u);
}

/* One message each way; 0 when both arrived intact. */
static int exchange(podcclComm_t comm, int rank, size_t n) {
    unsigned char *s = malloc(n + 1), *r = malloc(n + 1);
    int peer = 1 - rank, bad = 0;
    for (size_t i = 0; i < n; i++) s[i] = pattern(rank, n, i), r[i] = 0xee;
    for (int turn = 0; turn < 2 && !bad; turn++) {
        podcclResult_t rc = turn == rank ? podcclSend(s, n, podcclUint8, peer, comm, NULL)
                                         : podcclRecv(r, n, podcclUint8, peer, comm, NULL);
        if (rc != podcclSuccess) {
            printf("rank %d: %zu bytes: %s: %s\n", rank, n, podcclGetErrorString(rc),
                   podcclGetLastError(comm));
            bad = 1;
        }
    }
    for (size_t i = 0; i < n && !bad; i++)
        if (r[i] != pattern(peer, n, i)) {
            printf("rank %d: %zu bytes: byte %zu is %u, expected %u\n", rank, n, i, r[i],
                   pattern(peer, n, i));
            bad = 1;
        }
    free(s), free(r);
    return bad;
}

int main(void) {
    podcclComm_t comm;
    podcclResult_t rc = podcclCommInitFromEnv(&comm, NULL);
    if (rc != podcclSuccess) {
        printf("ib_p2p: init failed: %s\n", podcclGetLastError(NULL));
        return 1;
    }
    int rank, n;
    podcclCommUserRank(comm, &rank);
    podcclCommCount(comm, &n);
    if (n != 2) {
        printf("ib_p2p: needs 2 ranks\n");
        return 1;
    }
    const size_t sizes[] = {0, 1, 4097, (1u << 20) + 3};
    int bad = 0;
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]) && !bad; i++)
        bad = exchange(comm, rank, sizes[i]);
    if (!bad) printf("rank %d: matched point-to-point: PASS\n", rank);

    /* Rank 0 sends 300000 bytes, rank 1 receives only 1000: InvalidUsage naming both ranks. */
    if (!bad) {
        static unsigned char buf[300000];
        double t0 = now();
        rc = rank == 0 ? podcclSend(buf, sizeof(buf), podcclUint8, 1, comm, NULL)
                       : podcclRecv(buf, 1000, podcclUint8, 0, comm, NULL);
        double dt = now() - t0;
        const char *msg = podcclGetLastError(comm);
        int ok = rc != podcclSuccess && rc != podcclTimeout && dt < 30 &&
                 strstr(msg, "counts differ") != NULL && strstr(msg, "rank 0") != NULL &&
                 strstr(msg, "rank 1") != NULL;
        printf("rank %d: oversized send: %s after %.1f s: %s: %s\n", rank, ok ? "PASS" : "FAIL", dt,
               podcclGetErrorString(rc), msg);
        bad = !ok;
    }
    podcclCommAbort(comm);
    return bad;
}
