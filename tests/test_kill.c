/* Failure handling: a peer that dies, a peer that stops, and podcclCommAbort from another thread.
 *
 * 1. 4 ranks loop over all-reduces (small and large); rank 2 kills itself between two calls, or
 *    (second run) from a thread during a call. The others must get podcclRemoteError or
 *    podcclTimeout within PODCCL_TIMEOUT + slack, podcclCommGetAsyncError must report it, and
 *    podcclGetLastError(comm) must name "rank 2".
 * 2. Rank 2 stops (SIGSTOP) instead: the others must get podcclTimeout, not earlier than about
 *    PODCCL_TIMEOUT and not much later; then the harness kills the stopped rank.
 * 3. Rank 0 blocks in an all-reduce that rank 1 never joins; a second thread calls
 *    podcclCommAbort; the blocked call must return an error promptly.
 * After every case, /dev/shm must hold no new podccl-* segment that no process maps. */
#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

#define TIMEOUT_SEC 10
#define SLACK_SEC 15
#define VICTIM 2
#define SMALL 1003
#define LARGE (1u << 20)
#define MAX_SEGS 256

enum { KILL_BETWEEN, KILL_DURING, STOP };
static const char *const case_names[] = {"rank 2 killed between calls",
                                         "rank 2 killed during a call", "rank 2 stopped"};

typedef struct {            /* in harness_scratch() */
    _Atomic double event;   /* when the victim died or stopped */
    atomic_int errors_seen; /* survivors that have their error */
    atomic_int done;        /* case 3: rank 0 finished */
} shared_state;

static shared_state *st(void) {
    return harness_scratch();
}

static void *kill_soon(void *arg) {
    (void)arg;
    harness_sleep_ms(5);
    atomic_store(&st()->event, harness_now());
    raise(SIGKILL);
    return NULL;
}

static void victim_act(int how) {
    pthread_t t;
    if (how == KILL_DURING) {
        pthread_create(&t, NULL, kill_soon, NULL);
        return;
    }
    atomic_store(&st()->event, harness_now());
    raise(how == STOP ? SIGSTOP : SIGKILL);
}

/* A survivor got rc from its call: judge it, its timing, the async error and the message. */
static int judge_failure(podcclComm_t comm, int rank, int how, podcclResult_t rc) {
    double dt = harness_now() - atomic_load(&st()->event);
    char msg[512]; /* copied: the string lives until the next call on comm */
    snprintf(msg, sizeof(msg), "%s", podcclGetLastError(comm));
    podcclResult_t async = podcclSuccess, again;
    int bad = 0;
    float x = 1;
    if (how == STOP ? rc != podcclTimeout : (rc != podcclRemoteError && rc != podcclTimeout)) {
        fprintf(stderr, "rank %d: all-reduce returned %d (%s), want %s\n", rank, rc,
                podcclGetErrorString(rc), how == STOP ? "podcclTimeout" : "RemoteError/Timeout");
        bad = 1;
    }
    if (dt > TIMEOUT_SEC + SLACK_SEC || (rc == podcclTimeout && dt < TIMEOUT_SEC * 0.8)) {
        fprintf(stderr, "rank %d: error came %.1f s after the event (PODCCL_TIMEOUT=%d)\n", rank,
                dt, TIMEOUT_SEC);
        bad = 1;
    }
    if (!strstr(msg, "rank 2")) {
        fprintf(stderr, "rank %d: podcclGetLastError does not name rank 2: \"%s\"\n", rank, msg);
        bad = 1;
    }
    if (podcclCommGetAsyncError(comm, &async) != podcclSuccess || async != rc) {
        fprintf(stderr, "rank %d: podcclCommGetAsyncError reports %d, the call returned %d\n", rank,
                async, rc);
        bad = 1;
    }
    again = podcclAllReduce(&x, &x, 1, podcclFloat32, podcclSum, comm, NULL);
    if (again != rc) {
        fprintf(stderr, "rank %d: a later call on the broken communicator returned %d, not %d\n",
                rank, again, rc);
        bad = 1;
    }
    if (!bad) printf("rank %d: %s after %.2f s: %s\n", rank, podcclGetErrorString(rc), dt, msg);
    return bad;
}

static int loop_body(podcclComm_t comm, int rank, int nranks, void *arg) {
    int how = *(int *)arg, bad = 1;
    float *buf = malloc(LARGE * sizeof(float));
    podcclResult_t rc = podcclSuccess;
    for (int it = 0; it < 1000 && rc == podcclSuccess; it++) {
        size_t count = it % 2 ? LARGE : SMALL;
        if (rank == VICTIM && it == (how == KILL_BETWEEN ? 8 : 9)) victim_act(how);
        for (size_t i = 0; i < count; i++) buf[i] = (float)(rank + 1);
        rc = podcclAllReduce(buf, buf, count, podcclFloat32, podcclSum, comm, NULL);
        if (rc == podcclSuccess &&
            (buf[0] != nranks * (nranks + 1) / 2.0f || buf[count - 1] != buf[0])) {
            fprintf(stderr, "rank %d: iteration %d: wrong result %g\n", rank, it, buf[0]);
            rc = podcclInternalError;
        }
    }
    if (rc == podcclSuccess)
        fprintf(stderr, "rank %d: no error in 1000 calls\n", rank);
    else
        bad = judge_failure(comm, rank, how, rc);
    free(buf);
    /* Keep the communicator until every survivor has its error, so that only rank 2 fails. */
    atomic_fetch_add(&st()->errors_seen, 1);
    for (int ms = 0; ms < 60000 && atomic_load(&st()->errors_seen) < nranks - 1; ms++)
        harness_sleep_ms(1);
    podcclCommDestroy(comm);
    harness_comm_freed();
    return bad;
}

static void *abort_soon(void *comm) {
    harness_sleep_ms(1000);
    podcclResult_t rc = podcclCommAbort(comm);
    if (rc != podcclSuccess) fprintf(stderr, "rank 0: podcclCommAbort returned %d\n", rc);
    return NULL;
}

static int abort_body(podcclComm_t comm, int rank, int nranks, void *arg) {
    (void)nranks, (void)arg;
    if (rank != 0) { /* never joins; frees its communicator once rank 0 is done */
        for (int ms = 0; ms < 60000 && !atomic_load(&st()->done); ms++) harness_sleep_ms(1);
        podcclCommDestroy(comm);
        harness_comm_freed();
        return 0;
    }
    float buf[SMALL] = {0};
    pthread_t t;
    double t0 = harness_now();
    pthread_create(&t, NULL, abort_soon, comm);
    podcclResult_t rc = podcclAllReduce(buf, buf, SMALL, podcclFloat32, podcclSum, comm, NULL);
    double dt = harness_now() - t0;
    pthread_join(t, NULL);
    atomic_store(&st()->done, 1);
    int bad = rc == podcclSuccess || dt > 1 + 5;
    fprintf(bad ? stderr : stdout,
            "rank 0: all-reduce interrupted by abort returned %d (%s) after "
            "%.2f s%s\n",
            rc, podcclGetErrorString(rc), dt, bad ? ": want an error within 5 s" : "");
    harness_comm_freed(); /* podcclCommAbort freed it */
    return bad;
}

/* podccl-* entries of /dev/shm. */
static int list_segments(char names[][256], int max) {
    DIR *d = opendir("/dev/shm");
    struct dirent *e;
    int k = 0;
    while (d && (e = readdir(d)) && k < max)
        if (!strncmp(e->d_name, "podccl-", 7)) snprintf(names[k++], 256, "%s", e->d_name);
    if (d) closedir(d);
    return k;
}

/* 1 if some process maps /dev/shm/name (a segment of a job running beside us). */
static int mapped_by_someone(const char *name) {
    char path[512], line[1024], want[300];
    snprintf(want, sizeof(want), "/dev/shm/%.255s", name);
    DIR *d = opendir("/proc");
    struct dirent *e;
    int found = 0;
    while (d && !found && (e = readdir(d))) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
        snprintf(path, sizeof(path), "/proc/%s/maps", e->d_name);
        FILE *f = fopen(path, "r");
        while (f && !found && fgets(line, sizeof(line), f)) found = strstr(line, want) != NULL;
        if (f) fclose(f);
    }
    if (d) closedir(d);
    return found;
}

static int leaked_segments(char before[][256], int nb) {
    static char after[MAX_SEGS][256];
    int na = list_segments(after, MAX_SEGS), leaked = 0;
    for (int i = 0; i < na; i++) {
        int old = 0;
        for (int k = 0; k < nb && !old; k++) old = !strcmp(after[i], before[k]);
        if (old || mapped_by_someone(after[i])) continue;
        fprintf(stderr, "test_kill: leaked /dev/shm/%s\n", after[i]);
        leaked++;
    }
    return leaked;
}

static int run_case(const char *name, int nranks, harness_body_fn body, void *arg,
                    uint64_t expendable) {
    static char before[MAX_SEGS][256];
    int nb = list_segments(before, MAX_SEGS);
    harness_opts o = {.timeout_sec = 120, .expendable = expendable};
    int rc = harness_run_opts(nranks, body, arg, &o);
    harness_sleep_ms(500); /* let a segment of a job beside us get mapped before we look */
    rc |= leaked_segments(before, nb) != 0;
    printf("test_kill: %s: %s (%.1f s)\n", name, rc ? "FAIL" : "PASS", o.elapsed_sec);
    return rc;
}

int main(void) {
    char t[16];
    snprintf(t, sizeof(t), "%d", TIMEOUT_SEC);
    setenv("PODCCL_TIMEOUT", t, 1);
    int fails = 0;
    for (int how = KILL_BETWEEN; how <= STOP; how++)
        fails += run_case(case_names[how], 4, loop_body, &how, 1u << VICTIM);
    fails += run_case("abort from another thread", 2, abort_body, NULL, 0);
    printf("test_kill: %d of 4 cases failed\n", fails);
    return fails != 0;
}
