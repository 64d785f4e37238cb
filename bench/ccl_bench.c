/* ccl-bench: nccl-tests-style benchmark of podccl's collectives. The sweep, columns and check live
 * in bench_common.c; this file maps bench calls onto podccl and starts the ranks: from a
 * launcher's environment (mpirun, srun, torchrun), or by forking -np local processes itself. */
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sched.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench_common.h"
#include "podccl.h"

static podcclComm_t g_comm;
static int g_rank = -1;

static void ccl_fail(const char *call, podcclResult_t r) {
    fprintf(stderr, "rank %d: %s failed: %s : %s\n", g_rank, call, podcclGetErrorString(r),
            podcclGetLastError(g_comm));
    exit(2);
}

#define CK(call)                                                                                   \
    do {                                                                                           \
        podcclResult_t ck_r_ = (call);                                                             \
        if (ck_r_ != podcclSuccess) ccl_fail(#call, ck_r_);                                        \
    } while (0)

/* ---- Backend --------------------------------------------------------------------------------- */

static const char *ccl_unsupported(podcclDataType_t t, podcclRedOp_t op) {
    (void)t, (void)op;
    return NULL; /* podccl has every type and op */
}

static const void *ccl_run(const bench_call_t *c) {
    podcclComm_t comm = g_comm;
    int n = c->nranks;
    switch (c->coll) {
    case BENCH_ALLREDUCE:
        CK(podcclAllReduce(c->send, c->recv, c->count, c->type, c->op, comm, NULL));
        break;
    case BENCH_ALLGATHER:
        CK(podcclAllGather(c->send, c->recv, c->count, c->type, comm, NULL));
        break;
    case BENCH_REDUCESCATTER:
        CK(podcclReduceScatter(c->send, c->recv, c->count, c->type, c->op, comm, NULL));
        break;
    case BENCH_BROADCAST:
        CK(podcclBroadcast(c->send, c->recv, c->count, c->type, c->root, comm, NULL));
        break;
    case BENCH_REDUCE:
        CK(podcclReduce(c->send, c->recv, c->count, c->type, c->op, c->root, comm, NULL));
        break;
    case BENCH_ALLTOALL:
        CK(podcclAllToAll(c->send, c->recv, c->count, c->type, comm, NULL));
        break;
    case BENCH_ALLTOALLV:
        CK(podcclAllToAllv(c->send, c->scounts, c->sdispls, c->recv, c->rcounts, c->rdispls,
                           c->type, comm, NULL));
        break;
    case BENCH_SENDRECV: /* ring shift; grouped so that the sends cannot deadlock */
        CK(podcclGroupStart());
        CK(podcclSend(c->send, c->count, c->type, (c->rank + 1) % n, comm, NULL));
        CK(podcclRecv(c->recv, c->count, c->type, (c->rank + n - 1) % n, comm, NULL));
        CK(podcclGroupEnd());
        break;
    default:
        CK(podcclBarrier(comm, NULL));
        break;
    }
    return c->recv;
}

static void ccl_barrier(void) {
    CK(podcclBarrier(g_comm, NULL));
}

static double ccl_reduce_double(double v, bench_red_t how) {
    static const podcclRedOp_t ops[] = {
        [BENCH_RED_SUM] = podcclSum, [BENCH_RED_MIN] = podcclMin, [BENCH_RED_MAX] = podcclMax};
    double out;
    CK(podcclAllReduce(&v, &out, 1, podcclFloat64, ops[how], g_comm, NULL));
    return out;
}

static uint64_t ccl_sum_u64(uint64_t v) {
    uint64_t out;
    CK(podcclAllReduce(&v, &out, 1, podcclUint64, podcclSum, g_comm, NULL));
    return out;
}

static void ccl_allgather_bytes(const void *send, void *recv, size_t bytes) {
    CK(podcclAllGather(send, recv, bytes, podcclUint8, g_comm, NULL));
}

static void ccl_print_header(FILE *f) {
    int v = 0;
    CK(podcclGetVersion(&v));
    fprintf(f, "# podccl version %d.%d.%d\n", v / 10000, v / 100 % 100, v % 100);
    const char *algo = getenv("PODCCL_ALGO");
    if (algo) fprintf(f, "# PODCCL_ALGO=%s\n", algo);
    char tr[256];
    CK(podcclCommTransportInfo(g_comm, tr, sizeof(tr)));
    fprintf(f, "# transport: %s\n", tr);
    size_t shm = 0;
    CK(podcclCommMemoryUsage(g_comm, &shm, NULL));
    const char *cap = getenv("PODCCL_SHM_MAX_BYTES");
    fprintf(f, "# shared memory per rank: %zu KiB (bound PODCCL_SHM_MAX_BYTES=%s)\n", shm >> 10,
            cap ? cap : "33554432 default");
}

/* --json/--csv context: podccl's version, transports and topology as the library reports them. */
static void ccl_describe(bench_info_t *info) {
    int v = 0;
    CK(podcclGetVersion(&v));
    snprintf(info->library, sizeof info->library, "podccl");
    snprintf(info->version, sizeof info->version, "%d.%d.%d", v / 10000, v / 100 % 100, v % 100);
    CK(podcclCommTransportInfo(g_comm, info->transports, sizeof info->transports));
    CK(podcclCommTopoInfo(g_comm, info->topology, sizeof info->topology));
}

/* The algorithm podcclCommExplain says runs for c: PODCCL_ALGO's forced one when the first line
 * names it, else the model's pick ("  -> ring"). "" when podccl cannot explain the call
 * (sendrecv). */
static void ccl_algorithm(const bench_call_t *c, char *buf, size_t len) {
    char ex[4096];
    buf[0] = '\0';
    if (podcclCommExplain(g_comm, bench_coll_name(c->coll), c->count, c->type, c->op, ex,
                          sizeof ex) != podcclSuccess)
        return;
    const char *nl = strchr(ex, '\n');
    const char *forced = strstr(ex, "PODCCL_ALGO forces ");
    const char *pick = strstr(ex, "\n  -> ");
    const char *name = forced && (!nl || forced < nl) ? forced + strlen("PODCCL_ALGO forces ")
                       : pick                         ? pick + strlen("\n  -> ")
                                                      : NULL;
    if (!name) return;
    size_t n = strcspn(name, ": \n");
    snprintf(buf, len, "%.*s", (int)(n < len ? n : len - 1), name);
}

static int g_topo, g_explain; /* --topo, --explain */

/* --explain: for each size of the sweep, every candidate plan and the one podccl picks. */
static void explain_sizes(const bench_opts_t *o, int nranks) {
    const char *coll = bench_coll_name(o->coll);
    size_t es = 0;
    switch (o->types[0]) {
    case podcclInt8:
    case podcclUint8:
        es = 1;
        break;
    case podcclFloat16:
    case podcclBfloat16:
        es = 2;
        break;
    case podcclInt32:
    case podcclUint32:
    case podcclFloat32:
        es = 4;
        break;
    default:
        es = 8;
    }
    int per_rank =
        o->coll == BENCH_ALLGATHER || o->coll == BENCH_REDUCESCATTER || o->coll == BENCH_ALLTOALL;
    for (size_t b = o->minbytes; b <= o->maxbytes;
         b = (size_t)(b * o->stepfactor) > b ? (size_t)(b * o->stepfactor) : b + 1) {
        size_t count = b / es / (per_rank ? (size_t)nranks : 1);
        char buf[4096];
        if (podcclCommExplain(g_comm, coll, count, o->types[0], o->ops[0], buf, sizeof(buf)) ==
            podcclSuccess)
            printf("# explain %zu B: %s", b, buf);
        if (o->stepfactor <= 1) break;
    }
}

static int run_rank(const bench_opts_t *o) {
    bench_backend_t b = {.prog = "ccl-bench",
                         .unsupported = ccl_unsupported,
                         .run = ccl_run,
                         .barrier = ccl_barrier,
                         .reduce_double = ccl_reduce_double,
                         .sum_u64 = ccl_sum_u64,
                         .allgather_bytes = ccl_allgather_bytes,
                         .print_header = ccl_print_header,
                         .describe = ccl_describe,
                         .algorithm = ccl_algorithm};
    CK(podcclCommUserRank(g_comm, &b.rank));
    CK(podcclCommCount(g_comm, &b.nranks));
    g_rank = b.rank;
    if (g_topo) {
        char buf[16384];
        CK(podcclCommTopoInfo(g_comm, buf, sizeof(buf)));
        if (b.rank == 0) printf("# topology: %d ranks\n%s", b.nranks, buf);
        CK(podcclCommDestroy(g_comm));
        return 0;
    }
    if (g_explain && b.rank == 0) explain_sizes(o, b.nranks);
    int rc = bench_run(o, &b);
    size_t shm = 0, host = 0;
    CK(podcclCommMemoryUsage(g_comm, &shm, &host));
    if (b.rank == 0)
        printf("# memory of rank 0: %zu KiB shared, %zu KiB private temporaries at the end\n",
               shm >> 10, host >> 10);
    CK(podcclCommDestroy(g_comm));
    return rc;
}

/* ---- Launch ---------------------------------------------------------------------------------- */

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Size and rank variables of the launchers podcclCommInitFromEnv understands, in its order. */
static const char *const launcher_vars[][2] = {
    {"PODCCL_NRANKS", "PODCCL_RANK"}, {"OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_RANK"},
    {"PMI_SIZE", "PMI_RANK"},         {"SLURM_NTASKS", "SLURM_PROCID"},
    {"WORLD_SIZE", "RANK"},
};

/* 1 if a launcher started us; sets g_rank from it so that early errors name the rank. */
static int from_launcher(void) {
    for (size_t i = 0; i < sizeof launcher_vars / sizeof launcher_vars[0]; i++) {
        if (!getenv(launcher_vars[i][0])) continue;
        const char *r = getenv(launcher_vars[i][1]);
        g_rank = r ? atoi(r) : -1;
        return 1;
    }
    return 0;
}

/* The unique id travels from rank 0 to the others through a page shared across fork(). The
 * parent creates no thread before forking: podcclGetUniqueId starts the rendezvous root thread,
 * so it runs in child 0, which takes part in the communicator and so outlives every join. */
typedef struct {
    atomic_int state; /* ID_WAIT, then ID_READY or ID_FAILED, written once by rank 0 */
    podcclUniqueId id;
} shared_id_t;
enum { ID_WAIT, ID_READY, ID_FAILED };

/* Like mpirun's default (--bind-to core when ranks <= cores): rank r on the r-th allowed CPU,
 * so two ranks never start on one core and wait for the load balancer to part them.
 * PODCCL_BENCH_BIND=0 leaves placement to the scheduler, as do runs with more ranks than CPUs. */
static void pin_rank(int rank, int nranks) {
    const char *b = getenv("PODCCL_BENCH_BIND");
    cpu_set_t allowed, one;
    if ((b && strcmp(b, "0") == 0) || sched_getaffinity(0, sizeof(allowed), &allowed) != 0) return;
    if (nranks > CPU_COUNT(&allowed)) return;
    for (int cpu = 0, k = 0; cpu < CPU_SETSIZE; cpu++) {
        if (!CPU_ISSET(cpu, &allowed) || k++ != rank) continue;
        CPU_ZERO(&one);
        CPU_SET(cpu, &one);
        sched_setaffinity(0, sizeof(one), &one);
        return;
    }
}

static podcclUniqueId get_id(int rank, shared_id_t *sh) {
    podcclUniqueId id;
    if (rank == 0) {
        podcclResult_t r = podcclGetUniqueId(&id);
        if (r != podcclSuccess) {
            atomic_store_explicit(&sh->state, ID_FAILED, memory_order_release);
            ccl_fail("podcclGetUniqueId(&id)", r);
        }
        sh->id = id;
        atomic_store_explicit(&sh->state, ID_READY, memory_order_release);
        return id;
    }
    double deadline = now_s() + 60.0;
    for (;;) {
        int s = atomic_load_explicit(&sh->state, memory_order_acquire);
        if (s == ID_READY) return sh->id;
        if (s == ID_FAILED || now_s() > deadline) {
            fprintf(stderr, "rank %d: no unique id from rank 0 (%s)\n", rank,
                    s == ID_FAILED ? "it failed" : "waited 60 s");
            exit(2);
        }
        nanosleep(&(struct timespec){.tv_nsec = 1000000}, NULL);
    }
}

static int grace_seconds(void) {
    const char *t = getenv("PODCCL_TIMEOUT");
    int v = t ? atoi(t) : 0;
    return v > 0 ? v + 5 : 60;
}

/* Waits for the children; once one fails, gives the others the time podccl needs to notice
 * (its timeout plus a margin) before killing them. Returns the worst exit code (1 for wrong
 * values, 2 for errors and signals). */
static int reap(pid_t *pids, int n) {
    int alive = 0, rc = 0, killed = 0;
    double deadline = 0;
    for (int r = 0; r < n; r++) alive += pids[r] > 0;
    while (alive > 0) {
        int st;
        pid_t p = waitpid(-1, &st, deadline > 0 && !killed ? WNOHANG : 0);
        if (p < 0 && errno == EINTR) continue;
        if (p < 0) {
            perror("ccl-bench: waitpid");
            return 2;
        }
        if (p == 0) {
            if (now_s() > deadline) {
                fprintf(stderr, "ccl-bench: a rank failed; killing the rest after %d s\n",
                        grace_seconds());
                for (int r = 0; r < n; r++)
                    if (pids[r] > 0) kill(pids[r], SIGKILL);
                killed = 1;
            } else {
                nanosleep(&(struct timespec){.tv_nsec = 10000000}, NULL);
            }
            continue;
        }
        int r = 0;
        while (r < n && pids[r] != p) r++;
        if (r == n) continue;
        pids[r] = 0;
        alive--;
        int code = WIFEXITED(st) ? WEXITSTATUS(st) : 2;
        if (WIFSIGNALED(st) && !killed)
            fprintf(stderr, "ccl-bench: rank %d died of signal %d\n", r, WTERMSIG(st));
        rc = code > rc ? code : rc;
        if (code != 0 && deadline == 0) deadline = now_s() + grace_seconds();
    }
    return rc;
}

static int launch_local(const bench_opts_t *o, int n) {
    shared_id_t *sh =
        mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    pid_t *pids = calloc((size_t)n, sizeof *pids);
    if (sh == MAP_FAILED || !pids) {
        perror("ccl-bench: shared page");
        return 2;
    }
    atomic_init(&sh->state, ID_WAIT);
    fflush(NULL); /* or the children would print the parent's buffered output again */
    int rc = 0;
    for (int r = 0; r < n && rc == 0; r++) {
        pid_t p = fork();
        if (p == 0) {
            free(pids);
            g_rank = r;
            pin_rank(r, n);
            podcclUniqueId id = get_id(r, sh);
            CK(podcclCommInitRank(&g_comm, n, id, r));
            exit(run_rank(o));
        }
        if (p < 0) {
            perror("ccl-bench: fork");
            for (int q = 0; q < r; q++) kill(pids[q], SIGKILL);
            rc = 2;
        }
        pids[r] = p > 0 ? p : 0;
    }
    int worst = reap(pids, n);
    free(pids);
    munmap(sh, sizeof *sh);
    return rc ? rc : worst;
}

int main(int argc, char **argv) {
    bench_opts_t o;
    if (argc > 1 && strcmp(argv[1], "--params") == 0) {
        podcclPrintParams(); /* every PODCCL_* variable, value, default and meaning */
        return 0;
    }
    if (argc > 1 && strcmp(argv[1], "--algos") == 0) {
        podcclPrintAlgorithms(); /* the registry, as docs/algorithms.md shows it */
        return 0;
    }
    /* podccl-only flags, taken out before the options both benchmarks share; local ranks
     * (-np) are started again from argv, so they learn them from the environment. */
    int k = 1;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--topo") == 0)
            setenv("CCL_BENCH_TOPO", "1", 1);
        else if (strcmp(argv[i], "--explain") == 0)
            setenv("CCL_BENCH_EXPLAIN", "1", 1);
        else
            argv[k++] = argv[i];
    }
    argc = k;
    argv[argc] = NULL;
    g_topo = getenv("CCL_BENCH_TOPO") != NULL;
    g_explain = getenv("CCL_BENCH_EXPLAIN") != NULL;
    int rc = bench_parse(argc, argv, &o, BENCH_ALLOW_NP | BENCH_ALLOW_ALGO);
    if (rc) return rc == 1 ? 0 : 2;
    /* Before any communicator exists: podccl reads it when the communicator is created. */
    if (o.algo) setenv("PODCCL_ALGO", o.algo, 1);
    if (o.np == 0 && from_launcher()) {
        CK(podcclCommInitFromEnv(&g_comm, NULL));
        return run_rank(&o);
    }
    return launch_local(&o, o.np ? o.np : 2);
}
