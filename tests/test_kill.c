/* Failure handling: a peer that dies, a peer that stops, and podcclCommAbort from another thread.
 *
 * 1. 4 ranks loop over all-reduces (small and large); rank 2 kills itself between two calls, or
 *    (second run) from a thread during a call. The others must get podcclRemoteError or
 *    podcclTimeout within PODCCL_TIMEOUT + slack, podcclCommGetAsyncError must report it, and
 *    podcclGetLastError(comm) must name "rank 2".
 * 2. Rank 2 stops (SIGSTOP) instead: the others must get podcclTimeout, not earlier than about
 *    PODCCL_TIMEOUT and not much later; then the harness kills the stopped rank.
 *    Second run: the survivors' timeouts differ (rank r waits STOP_EXIT_SEC + r seconds) and each
 *    leaves (destroy, exit) as soon as it has its error. Rank 0 gives up first, publishes "rank 2
 *    stopped" and exits; the later ones must still report that first cause (Timeout naming rank
 *    2), not a RemoteError blaming rank 0 for having exited.
 * 3. Rank 2 dies inside init, as it maps its first peer's shared memory (the test interposes
 *    mmap): every peer has its handle by then, some are mapping its segment, some wait in the
 *    barrier. Each survivor's init must fail with podcclRemoteError naming rank 2 within
 *    INIT_LIMIT_SEC, and rank 2's segment must not stay behind in /dev/shm.
 * 4. Rank 0 blocks in an all-reduce that rank 1 never joins; a second thread calls
 *    podcclCommAbort; the blocked call must return an error promptly.
 * After every case, /dev/shm must hold no new podccl-* segment that no process maps.
 * test_kill [CASE...] runs only those cases (0..5 in the order of case_names). */
#include <dirent.h>
#include <dlfcn.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

#define TIMEOUT_SEC 10
#define SLACK_SEC 15
#define VICTIM 2
#define SMALL 1003
#define LARGE (1u << 20)
#define MAX_SEGS 256

#define STOP_EXIT_SEC 4
#define INIT_LIMIT_SEC 2.0

enum { KILL_BETWEEN, KILL_DURING, STOP, STOP_EXIT, INIT_DEATH, ABORT, NCASES };
static const char *const case_names[] = {"rank 2 killed between calls",
                                         "rank 2 killed during a call",
                                         "rank 2 stopped",
                                         "rank 2 stopped, survivors leave at once",
                                         "rank 2 dies in init while mapping a peer",
                                         "abort from another thread"};

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
    raise(how == STOP || how == STOP_EXIT ? SIGSTOP : SIGKILL);
}

/* A survivor got rc from its call: judge it, its timing, the async error and the message. */
static int judge_failure(podcclComm_t comm, int rank, int how, podcclResult_t rc) {
    double dt = harness_now() - atomic_load(&st()->event);
    char msg[512]; /* copied: the string lives until the next call on comm */
    snprintf(msg, sizeof(msg), "%s", podcclGetLastError(comm));
    podcclResult_t async = podcclSuccess, again;
    int bad = 0;
    float x = 1;
    int stop = how == STOP || how == STOP_EXIT;
    double timeout = how == STOP_EXIT ? STOP_EXIT_SEC : TIMEOUT_SEC;
    if (stop ? rc != podcclTimeout : (rc != podcclRemoteError && rc != podcclTimeout)) {
        fprintf(stderr, "rank %d: all-reduce returned %d (%s), want %s: \"%s\"\n", rank, rc,
                podcclGetErrorString(rc), stop ? "podcclTimeout" : "RemoteError/Timeout", msg);
        bad = 1;
    }
    if (dt > timeout + SLACK_SEC || (rc == podcclTimeout && dt < timeout * 0.8)) {
        fprintf(stderr, "rank %d: error came %.1f s after the event (timeout %.0f s)\n", rank, dt,
                timeout);
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
    /* Keep the communicator until every survivor has its error, so that only rank 2 fails
     * (except in the case that tests exactly that). */
    atomic_fetch_add(&st()->errors_seen, 1);
    for (int ms = 0; how != STOP_EXIT && ms < 60000 && atomic_load(&st()->errors_seen) < nranks - 1;
         ms++)
        harness_sleep_ms(1);
    podcclCommDestroy(comm);
    harness_comm_freed();
    return bad;
}

/* STOP_EXIT: each rank makes its own communicator, rank r with a timeout of STOP_EXIT_SEC + r. */
static int stop_exit_body(podcclComm_t comm, int rank, int nranks, void *arg) {
    podcclConfig_t cfg = PODCCL_CONFIG_INITIALIZER;
    cfg.timeoutSec = STOP_EXIT_SEC + rank;
    podcclResult_t rc = podcclCommInitRankConfig(&comm, nranks, harness_unique_id(), rank, &cfg);
    if (rc != podcclSuccess) {
        fprintf(stderr, "rank %d: init: %s\n", rank, podcclGetLastError(NULL));
        return 1;
    }
    return loop_body(comm, rank, nranks, arg);
}

/* INIT_DEATH: in the victim, the second mapping of a podccl shared-memory file (the first is
 * its own segment) kills the process. Interposes the C library's mmap for libpodccl. */
static int die_in_mmap, podccl_maps;

static int is_podccl_file(int fd) {
    char link[64], path[256];
    snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, sizeof(path) - 1);
    path[n > 0 ? n : 0] = 0;
    return strstr(path, "podccl") != NULL;
}

void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off) {
    static void *(*real)(void *, size_t, int, int, int, off_t);
    if (!real) *(void **)&real = dlsym(RTLD_NEXT, "mmap");
    if (die_in_mmap && fd >= 0 && (flags & MAP_SHARED) && is_podccl_file(fd) &&
        ++podccl_maps == 2) {
        atomic_store(&st()->event, harness_now());
        raise(SIGKILL);
    }
    return real(addr, len, prot, flags, fd, off);
}

static int init_death_body(podcclComm_t comm, int rank, int nranks, void *arg) {
    (void)arg;
    die_in_mmap = rank == VICTIM;
    podcclResult_t rc = podcclCommInitRank(&comm, nranks, harness_unique_id(), rank);
    double dt = harness_now() - atomic_load(&st()->event);
    char msg[512];
    snprintf(msg, sizeof(msg), "%s", podcclGetLastError(NULL));
    if (rc == podcclSuccess) {
        fprintf(stderr, "rank %d: init succeeded although rank 2 died in it\n", rank);
        podcclCommDestroy(comm);
        return 1;
    }
    int bad = rc != podcclRemoteError || !strstr(msg, "rank 2") || dt > INIT_LIMIT_SEC;
    fprintf(bad ? stderr : stdout, "rank %d: init returned %s after %.3f s: %s%s\n", rank,
            podcclGetErrorString(rc), dt, msg,
            bad ? " (want podcclRemoteError naming rank 2 within 2 s)" : "");
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
                    uint64_t expendable, int no_comm) {
    static char before[MAX_SEGS][256];
    int nb = list_segments(before, MAX_SEGS);
    harness_opts o = {.timeout_sec = 120, .expendable = expendable, .no_comm = no_comm};
    int rc = harness_run_opts(nranks, body, arg, &o);
    harness_sleep_ms(500); /* let a segment of a job beside us get mapped before we look */
    rc |= leaked_segments(before, nb) != 0;
    printf("test_kill: %s: %s (%.1f s)\n", name, rc ? "FAIL" : "PASS", o.elapsed_sec);
    return rc;
}

int main(int argc, char **argv) {
    char t[16];
    snprintf(t, sizeof(t), "%d", TIMEOUT_SEC);
    setenv("PODCCL_TIMEOUT", t, 1);
    int fails = 0, ran = 0;
    for (int how = 0; how < NCASES; how++) {
        int want = argc == 1;
        for (int i = 1; i < argc; i++) want |= atoi(argv[i]) == how;
        if (!want) continue;
        ran++;
        harness_body_fn body = how == STOP_EXIT    ? stop_exit_body
                               : how == INIT_DEATH ? init_death_body
                               : how == ABORT      ? abort_body
                                                   : loop_body;
        if (how == ABORT)
            fails += run_case(case_names[how], 2, body, NULL, 0, 0);
        else
            fails += run_case(case_names[how], 4, body, &how, 1u << VICTIM,
                              how == STOP_EXIT || how == INIT_DEATH);
    }
    printf("test_kill: %d of %d cases failed\n", fails, ran);
    return fails != 0;
}
