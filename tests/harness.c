/* Multi-process test harness (see harness.h). */
#include "harness.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Shared by all ranks of one run; mapped before fork, so no thread exists when we fork. */
typedef struct {
    atomic_int ready; /* 0: not yet, 1: id valid, -1: rank 0 failed to create it */
    podcclUniqueId id;
    _Alignas(64) unsigned char scratch[HARNESS_SCRATCH_BYTES];
} harness_shared;

static harness_shared *shared;
static podcclComm_t rank_comm; /* this rank's communicator, until the body frees it */

double harness_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

podcclUniqueId harness_unique_id(void) {
    return shared->id;
}
void *harness_scratch(void) {
    return shared->scratch;
}
void harness_comm_freed(void) {
    rank_comm = NULL;
}

void harness_sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Rank 0 creates the id (which starts podccl's rendezvous thread in rank 0 only). */
static int share_unique_id(int rank) {
    if (rank == 0) {
        podcclResult_t rc = podcclGetUniqueId(&shared->id);
        atomic_store_explicit(&shared->ready, rc == podcclSuccess ? 1 : -1, memory_order_release);
        if (rc != podcclSuccess)
            fprintf(stderr, "rank 0: podcclGetUniqueId: %s: %s\n", podcclGetErrorString(rc),
                    podcclGetLastError(NULL));
        return rc != podcclSuccess;
    }
    for (int ms = 0; ms < 60000; ms++) {
        int r = atomic_load_explicit(&shared->ready, memory_order_acquire);
        if (r != 0) return r != 1;
        harness_sleep_ms(1);
    }
    fprintf(stderr, "rank %d: no unique id from rank 0 after 60 s\n", rank);
    return 1;
}

static int child_main(int rank, int nranks, harness_body_fn body, void *arg, const harness_opts *o,
                      pid_t parent) {
    prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive a killed test */
    if (getppid() != parent) return 1;
    if (share_unique_id(rank)) return 1;
    podcclComm_t comm = NULL;
    if (!o->no_comm) {
        podcclResult_t rc =
            o->config ? podcclCommInitRankConfig(&comm, nranks, shared->id, rank, o->config)
                      : podcclCommInitRank(&comm, nranks, shared->id, rank);
        if (rc != podcclSuccess) {
            fprintf(stderr, "rank %d: podcclCommInitRank(nranks %d): %s: %s\n", rank, nranks,
                    podcclGetErrorString(rc), podcclGetLastError(NULL));
            return 1;
        }
    }
    rank_comm = comm;
    int ret = body(comm, rank, nranks, arg);
    if (rank_comm) {
        podcclResult_t rc = podcclCommDestroy(rank_comm);
        if (rc != podcclSuccess && ret == 0) {
            fprintf(stderr, "rank %d: podcclCommDestroy: %s\n", rank, podcclGetErrorString(rc));
            ret = 1;
        }
    }
    return ret == 0 ? 0 : (ret > 0 && ret < 256 ? ret : 1);
}

static void describe_exit(int rank, pid_t pid, int st) {
    if (WIFEXITED(st))
        fprintf(stderr, "harness: rank %d (pid %d) exited with status %d\n", rank, (int)pid,
                WEXITSTATUS(st));
    else if (WIFSIGNALED(st))
        fprintf(stderr, "harness: rank %d (pid %d) killed by signal %d (%s)\n", rank, (int)pid,
                WTERMSIG(st), strsignal(WTERMSIG(st)));
}

static double default_timeout(void) {
    const char *s = getenv("HARNESS_TIMEOUT");
    double t = s ? atof(s) : 0;
    return t > 0 ? t : 300;
}

/* Waits for the children, killing all of them at the deadline and the expendable ones once the
 * others are done. Returns the number of judged ranks that failed. */
static int watch(int nranks, const pid_t *pid, harness_opts *o, double start) {
    int alive[HARNESS_MAX_RANKS], judged_left = 0, failed = 0;
    double deadline = start + (o->timeout_sec > 0 ? o->timeout_sec : default_timeout());
    for (int r = 0; r < nranks; r++) {
        alive[r] = 1;
        judged_left += !((o->expendable >> r) & 1);
    }
    for (;;) {
        for (int r = 0; r < nranks; r++) {
            if (!alive[r] || waitpid(pid[r], &o->status[r], WNOHANG) != pid[r]) continue;
            alive[r] = 0;
            if ((o->expendable >> r) & 1) continue;
            judged_left--;
            if (!WIFEXITED(o->status[r]) || WEXITSTATUS(o->status[r]) != 0) {
                describe_exit(r, pid[r], o->status[r]);
                failed++;
            }
        }
        int timed_out = harness_now() > deadline;
        if (judged_left == 0 || timed_out) {
            o->elapsed_sec = harness_now() - start;
            for (int r = 0; r < nranks; r++) {
                if (!alive[r]) continue;
                if (timed_out && !((o->expendable >> r) & 1)) {
                    fprintf(stderr,
                            "harness: watchdog: rank %d (pid %d) still running after %.0f s, "
                            "killing the job\n",
                            r, (int)pid[r], o->elapsed_sec);
                    failed++;
                }
                kill(pid[r], SIGKILL);
                waitpid(pid[r], &o->status[r], 0);
            }
            return failed;
        }
        harness_sleep_ms(2);
    }
}

int harness_run_opts(int nranks, harness_body_fn body, void *arg, harness_opts *o) {
    if (nranks < 1 || nranks > HARNESS_MAX_RANKS) {
        fprintf(stderr, "harness: bad nranks %d\n", nranks);
        return 1;
    }
    shared = mmap(NULL, sizeof(*shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (shared == MAP_FAILED) {
        perror("harness: mmap");
        return 1;
    }
    pid_t pid[HARNESS_MAX_RANKS], parent = getpid();
    double start = harness_now();
    int started = 0;
    fflush(NULL); /* children must not print the parent's buffered output again */
    for (; started < nranks; started++) {
        pid[started] = fork();
        if (pid[started] == 0) exit(child_main(started, nranks, body, arg, o, parent));
        if (pid[started] < 0) {
            perror("harness: fork");
            break;
        }
    }
    int failed;
    if (started < nranks) {
        for (int r = 0; r < started; r++) kill(pid[r], SIGKILL);
        for (int r = 0; r < started; r++) waitpid(pid[r], NULL, 0);
        failed = 1;
    } else {
        failed = watch(nranks, pid, o, start);
    }
    munmap(shared, sizeof(*shared));
    shared = NULL;
    return failed != 0;
}

int harness_run(int nranks, harness_body_fn body, void *arg) {
    harness_opts o = {0};
    return harness_run_opts(nranks, body, arg, &o);
}

const char *harness_type_name(podcclDataType_t t) {
    static const char *const names[] = {"int8",   "uint8",   "int32",   "uint32",  "int64",
                                        "uint64", "float16", "float32", "float64", "bfloat16"};
    return (unsigned)t < sizeof(names) / sizeof(names[0]) ? names[t] : "?type";
}

const char *harness_op_name(podcclRedOp_t op) {
    static const char *const names[] = {"sum", "prod", "max", "min", "avg"};
    return (unsigned)op < sizeof(names) / sizeof(names[0]) ? names[op] : "-";
}

void harness_fail(const harness_ctx *c, const char *fmt, ...) {
    char msg[1024];
    int k =
        snprintf(msg, sizeof(msg), "rank %d: %s %s", c->rank, c->coll, harness_type_name(c->type));
    if (c->op >= 0) k += snprintf(msg + k, sizeof(msg) - k, " %s", harness_op_name(c->op));
    if (c->root >= 0) k += snprintf(msg + k, sizeof(msg) - k, " root %d", c->root);
    k += snprintf(msg + k, sizeof(msg) - k, " count %zu %s: ", c->count,
                  c->inplace ? "in-place" : "out-of-place");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg + k, sizeof(msg) - k, fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s\n", msg); /* one write, so ranks' lines do not interleave */
}

size_t harness_check(const harness_ctx *c, const char *what, const void *buf, size_t n,
                     harness_load_fn load, harness_expect_fn expect, const void *arg) {
    size_t bad = 0, first = 0;
    double got0 = 0, want0 = 0;
    for (size_t i = 0; i < n; i++) {
        double got = load(buf, i, c->type), want = expect(i, arg);
        if (memcmp(&got, &want, sizeof(got)) == 0) continue;
        if (bad++ == 0) {
            first = i;
            got0 = got;
            want0 = want;
        }
    }
    if (bad)
        harness_fail(c, "%s: first wrong index %zu: got %g, expected %g (%zu of %zu wrong)", what,
                     first, got0, want0, bad, n);
    return bad;
}

int harness_expect_rc(const harness_ctx *c, podcclResult_t got, podcclResult_t want,
                      podcclComm_t comm) {
    if (got == want) return 0;
    harness_fail(c, "returned %d (%s), expected %d: %s", (int)got, podcclGetErrorString(got),
                 (int)want, podcclGetLastError(comm));
    return 1;
}

int harness_allreduce_ok(podcclComm_t comm, int rank, int nranks, size_t count) {
    int32_t *in = malloc((count + 1) * sizeof(int32_t)),
            *out = malloc((count + 1) * sizeof(int32_t));
    harness_ctx c = {"allreduce check", rank, podcclInt32, podcclSum, count, 0, -1};
    int bad = !in || !out;
    for (size_t i = 0; !bad && i < count; i++)
        in[i] = (rank + 1) * (int32_t)(i % 7 + 1), out[i] = -1;
    if (!bad)
        bad = harness_expect_rc(&c,
                                podcclAllReduce(in, out, count, podcclInt32, podcclSum, comm, NULL),
                                podcclSuccess, comm);
    for (size_t i = 0; !bad && i < count; i++) {
        int32_t want = nranks * (nranks + 1) / 2 * (int32_t)(i % 7 + 1);
        if (out[i] != want) {
            harness_fail(&c, "element %zu: got %d, expected %d", i, (int)out[i], (int)want);
            bad = 1;
        }
    }
    free(in);
    free(out);
    return bad;
}
