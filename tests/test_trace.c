/* Jobs for the flight-recorder test (tests/run_trace.sh checks the files they leave in
 * $PODCCL_TRACE_DIR, and what tools/podccl-trace says about them):
 *
 *   test_trace stop      3 ranks in an all-reduce loop; rank 1 stops itself (SIGSTOP, from a
 *                        thread, so mostly inside a call) after 300 ms; the others must fail
 *                        (timeout, or the failure a peer published) and leave their files.
 *   test_trace mismatch count|coll
 *                        3 ranks, all-reduces 0..7; in call 5 rank 2 passes count + 1 (count)
 *                        or calls an all-gather instead (coll). Whatever the calls return, every
 *                        rank then raises SIGUSR1 and waits until its file says "signal".
 *   test_trace healthy   3 ranks: 40 operations (every 10th a send/receive ring exchange, else
 *                        an all-reduce); then rank 0 queues two all-reduces on a stream while
 *                        the others hold back, dumps itself with SIGUSR1 (one started, one
 *                        queued), and lets them go; then every rank writes $TRACE_SYNC/ready.R
 *                        (its pid) and waits for $TRACE_SYNC/go, so the script can SIGUSR1 it.
 *
 * Call i (from 0) of the loops has sequence number i + 1 and count trace_count(i) floats. */
#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"

#define HEALTHY_OPS 40
#define STREAM_COUNT 300000 /* the started stream all-reduce: big enough to have steps */
#define QUEUED_COUNT 7

static size_t trace_count(int i) {
    return 100 + 10 * (size_t)(i % 97);
}

/* 1 if this process's trace file exists and contains needle. */
static int own_file_has(const char *needle) {
    const char *dir = getenv("PODCCL_TRACE_DIR");
    char suffix[32], path[4096];
    snprintf(suffix, sizeof(suffix), ".%d.json", (int)getpid());
    DIR *d = dir ? opendir(dir) : NULL;
    if (!d) return 0;
    int found = 0;
    for (struct dirent *de; !found && (de = readdir(d));) {
        size_t n = strlen(de->d_name), k = strlen(suffix);
        if (strncmp(de->d_name, "podccl-trace.", 13) != 0 || n < k ||
            strcmp(de->d_name + n - k, suffix) != 0)
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        FILE *f = fopen(path, "r");
        if (!f) continue;
        static char buf[1 << 20];
        size_t got = fread(buf, 1, sizeof(buf) - 1, f);
        buf[got] = 0;
        fclose(f);
        found = strstr(buf, needle) != NULL;
    }
    closedir(d);
    return found;
}

/* Raises SIGUSR1 and waits (10 s at most) for the file it makes. */
static int dump_self(int rank) {
    raise(SIGUSR1);
    for (int ms = 0; ms < 10000; ms += 10) {
        if (own_file_has("\"reason\": \"signal\"")) return 0;
        harness_sleep_ms(10);
    }
    fprintf(stderr, "rank %d: no trace file with reason \"signal\" 10 s after SIGUSR1\n", rank);
    return 1;
}

static podcclResult_t allreduce(podcclComm_t comm, float *buf, size_t count) {
    return podcclAllReduce(buf, buf, count, podcclFloat32, podcclSum, comm, NULL);
}

/* ---- stop ---------------------------------------------------------------------------------- */

static void *stop_later(void *arg) {
    (void)arg;
    harness_sleep_ms(300);
    kill(getpid(), SIGSTOP);
    return NULL;
}

static int body_stop(podcclComm_t comm, int rank, int nranks, void *arg) {
    (void)nranks, (void)arg;
    static float buf[4096];
    pthread_t t;
    if (rank == 1 && pthread_create(&t, NULL, stop_later, NULL) != 0) return 1;
    for (int i = 0; i < 1000000; i++) {
        podcclResult_t rc = allreduce(comm, buf, trace_count(i));
        if (rc == podcclSuccess) continue;
        printf("rank %d: call %d (seq %d) failed: %s: %s\n", rank, i, i + 1,
               podcclGetErrorString(rc), podcclGetLastError(comm));
        return rank == 1; /* only the others may fail */
    }
    fprintf(stderr, "rank %d: the loop ended without an error (rank 1 never stopped?)\n", rank);
    return 1;
}

/* ---- mismatch ------------------------------------------------------------------------------ */

static int body_mismatch(podcclComm_t comm, int rank, int nranks, void *arg) {
    int coll = strcmp((const char *)arg, "coll") == 0;
    static float buf[8192];
    for (int i = 0; i <= 5; i++) {
        size_t count = trace_count(i);
        podcclResult_t rc;
        if (i == 5 && rank == 2 && coll)
            rc = podcclAllGather(buf, buf + count, count / (size_t)nranks, podcclFloat32, comm,
                                 NULL);
        else
            rc = allreduce(comm, buf, count + (i == 5 && rank == 2));
        if (rc != podcclSuccess)
            printf("rank %d: call %d (seq %d): %s: %s\n", rank, i, i + 1, podcclGetErrorString(rc),
                   podcclGetLastError(comm));
        if (rc != podcclSuccess && i != 5) return 1;
    }
    int bad = dump_self(rank);
    /* Abort, not destroy: a peer may still be inside the mismatched call. */
    podcclCommAbort(comm);
    harness_comm_freed();
    return bad;
}

/* ---- healthy ------------------------------------------------------------------------------- */

static int ring_exchange(podcclComm_t comm, int rank, int nranks) {
    int32_t out[64], in[64];
    for (int k = 0; k < 64; k++) out[k] = rank * 1000 + k;
    podcclGroupStart();
    podcclSend(out, 64, podcclInt32, (rank + 1) % nranks, comm, NULL);
    podcclRecv(in, 64, podcclInt32, (rank + nranks - 1) % nranks, comm, NULL);
    podcclResult_t rc = podcclGroupEnd();
    int from = (rank + nranks - 1) % nranks;
    if (rc != podcclSuccess || in[5] != from * 1000 + 5) {
        fprintf(stderr, "rank %d: ring exchange: %s, got %d\n", rank, podcclGetErrorString(rc),
                (int)in[5]);
        return 1;
    }
    return 0;
}

static int stream_phase(podcclComm_t comm, int rank) {
    static float big[STREAM_COUNT], small[QUEUED_COUNT];
    atomic_int *go = harness_scratch();
    if (rank != 0) {
        for (int ms = 0; !atomic_load(go); ms += 5) {
            if (ms > 30000) return fprintf(stderr, "rank %d: rank 0 never said go\n", rank), 1;
            harness_sleep_ms(5);
        }
        return allreduce(comm, big, STREAM_COUNT) != podcclSuccess ||
               allreduce(comm, small, QUEUED_COUNT) != podcclSuccess;
    }
    podcclStream_t st;
    if (podcclStreamCreate(&st) != podcclSuccess) return 1;
    podcclAllReduce(big, big, STREAM_COUNT, podcclFloat32, podcclSum, comm, st);
    podcclAllReduce(small, small, QUEUED_COUNT, podcclFloat32, podcclSum, comm, st);
    harness_sleep_ms(300); /* the stream thread is inside the first one, waiting for the others */
    int bad = dump_self(rank);
    atomic_store(go, 1);
    podcclResult_t rc = podcclStreamSynchronize(st);
    podcclStreamDestroy(st);
    if (rc != podcclSuccess) fprintf(stderr, "rank 0: stream: %s\n", podcclGetErrorString(rc));
    return bad || rc != podcclSuccess;
}

static int body_healthy(podcclComm_t comm, int rank, int nranks, void *arg) {
    (void)arg;
    static float buf[4096];
    for (int i = 0; i < HEALTHY_OPS; i++) {
        if (i % 10 == 9) {
            if (ring_exchange(comm, rank, nranks)) return 1;
        } else if (allreduce(comm, buf, trace_count(i)) != podcclSuccess) {
            fprintf(stderr, "rank %d: call %d: %s\n", rank, i, podcclGetLastError(comm));
            return 1;
        }
    }
    if (stream_phase(comm, rank)) return 1;
    const char *sync = getenv("TRACE_SYNC");
    if (!sync) return 0;
    char path[4096];
    snprintf(path, sizeof(path), "%s/ready.%d", sync, rank);
    FILE *f = fopen(path, "w");
    if (!f) return perror(path), 1;
    fprintf(f, "%d\n", (int)getpid());
    fclose(f);
    snprintf(path, sizeof(path), "%s/go", sync);
    for (int ms = 0; access(path, F_OK) != 0; ms += 10) {
        if (ms > 30000) return fprintf(stderr, "rank %d: no %s after 30 s\n", rank, path), 1;
        harness_sleep_ms(10);
    }
    return 0;
}

int main(int argc, char **argv) {
    harness_opts o = {.timeout_sec = 60};
    if (argc >= 2 && strcmp(argv[1], "stop") == 0) {
        o.expendable = 1u << 1;
        return harness_run_opts(3, body_stop, NULL, &o);
    }
    if (argc >= 3 && strcmp(argv[1], "mismatch") == 0)
        return harness_run_opts(3, body_mismatch, argv[2], &o);
    if (argc >= 2 && strcmp(argv[1], "healthy") == 0)
        return harness_run_opts(3, body_healthy, NULL, &o);
    fprintf(stderr, "usage: %s stop | mismatch count|coll | healthy\n", argv[0]);
    return 2;
}
