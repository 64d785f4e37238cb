/* Communicator creation: launcher environments, a wrong secret, inconsistent nranks, a dead
 * rendezvous root.
 *   a. podcclCommInitFromEnv with PODCCL_RANK/PODCCL_NRANKS/PODCCL_COMM_ID=127.0.0.1:<port>
 *   b. the same from torchrun's RANK/WORLD_SIZE/MASTER_ADDR/MASTER_PORT (podccl uses
 *      MASTER_PORT+1; MASTER_PORT is held open here, as torch's TCPStore would)
 *   c. a process presenting the id with one secret byte flipped is refused; the real ranks finish
 *   d. one rank passes a different nranks: every rank gets an error, none hangs
 *   e. the id's root process is gone: podcclCommInitRank fails within the timeout */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

#define TIMEOUT_SEC 10
#define SLACK_SEC 15
#define SECRET_OFFSET 40 /* id layout: 0..7 magic, 8..39 root address, 40..55 secret */

typedef struct {
    int port;     /* a: PODCCL_COMM_ID port; b: MASTER_PORT */
    int torchrun; /* b */
} env_case;

typedef struct { /* in harness_scratch() */
    atomic_int intruder_done;
    atomic_int root_pid;
} shared_state;

static shared_state *st(void) {
    return harness_scratch();
}

/* A TCP socket bound to 127.0.0.1:port (0: any free port); *port gets the port. -1 on error. */
static int bind_local(int *port, int listening) {
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)*port)};
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        (listening && listen(fd, 4) != 0) || getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
        if (fd >= 0) close(fd);
        return -1;
    }
    *port = ntohs(a.sin_port);
    return fd;
}

static int free_port(void) {
    int port = 0, fd = bind_local(&port, 0);
    if (fd >= 0) close(fd);
    return fd >= 0 ? port : -1;
}

static void clear_launcher_env(void) {
    static const char *const vars[] = {"PODCCL_RANK",
                                       "PODCCL_NRANKS",
                                       "PODCCL_COMM_ID",
                                       "PODCCL_SECRET",
                                       "OMPI_COMM_WORLD_RANK",
                                       "OMPI_COMM_WORLD_SIZE",
                                       "OMPI_COMM_WORLD_LOCAL_RANK",
                                       "OMPI_COMM_WORLD_LOCAL_SIZE",
                                       "PMI_RANK",
                                       "PMI_SIZE",
                                       "SLURM_PROCID",
                                       "SLURM_NTASKS",
                                       "SLURM_JOB_ID",
                                       "RANK",
                                       "WORLD_SIZE",
                                       "LOCAL_RANK",
                                       "LOCAL_WORLD_SIZE",
                                       "MASTER_ADDR",
                                       "MASTER_PORT",
                                       "TORCHELASTIC_RUN_ID"};
    for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++) unsetenv(vars[i]);
}

static void setenv_int(const char *name, int v) {
    char s[32];
    snprintf(s, sizeof(s), "%d", v);
    setenv(name, s, 1);
}

static int report_init(int rank, const char *what, podcclResult_t rc) {
    if (rc == podcclSuccess) return 0;
    fprintf(stderr, "rank %d: %s: %s: %s\n", rank, what, podcclGetErrorString(rc),
            podcclGetLastError(NULL));
    return 1;
}

/* A comm from rank's environment; checks size, rank and an all-reduce. */
static int env_body(podcclComm_t unused, int rank, int nranks, void *arg) {
    const env_case *e = arg;
    char s[64];
    podcclComm_t comm;
    int count = -1, me = -1;
    (void)unused;
    clear_launcher_env();
    setenv_int(e->torchrun ? "RANK" : "PODCCL_RANK", rank);
    setenv_int(e->torchrun ? "WORLD_SIZE" : "PODCCL_NRANKS", nranks);
    if (e->torchrun) {
        setenv_int("LOCAL_RANK", rank);
        setenv_int("LOCAL_WORLD_SIZE", nranks);
        setenv("MASTER_ADDR", "127.0.0.1", 1);
        setenv_int("MASTER_PORT", e->port);
        snprintf(s, sizeof(s), "test-bootstrap-%d", (int)getppid());
        setenv("TORCHELASTIC_RUN_ID", s, 1);
    } else {
        snprintf(s, sizeof(s), "127.0.0.1:%d", e->port);
        setenv("PODCCL_COMM_ID", s, 1);
    }
    if (report_init(rank, "podcclCommInitFromEnv", podcclCommInitFromEnv(&comm, NULL))) return 1;
    int bad = podcclCommCount(comm, &count) != podcclSuccess || count != nranks ||
              podcclCommUserRank(comm, &me) != podcclSuccess || me != rank;
    if (bad) fprintf(stderr, "rank %d: comm says rank %d of %d\n", rank, me, count);
    bad |= harness_allreduce_ok(comm, rank, nranks, 1003);
    podcclCommDestroy(comm);
    return bad;
}

/* 3 processes: ranks 0 and 1 of a 2-rank comm, and an intruder with a wrong secret claiming
 * rank 1, who goes first. */
static int secret_body(podcclComm_t unused, int rank, int nranks, void *arg) {
    podcclUniqueId id = harness_unique_id();
    podcclComm_t comm;
    (void)unused, (void)nranks, (void)arg;
    if (rank == 2) {
        id.internal[SECRET_OFFSET + 5] ^= 0x10;
        podcclResult_t rc = podcclCommInitRank(&comm, 2, id, 1);
        atomic_store(&st()->intruder_done, 1);
        if (rc == podcclRemoteError || rc == podcclInvalidArgument) return 0;
        fprintf(stderr,
                "intruder: podcclCommInitRank with a wrong secret returned %d (%s), want "
                "podcclRemoteError or podcclInvalidArgument\n",
                rc, podcclGetErrorString(rc));
        if (rc == podcclSuccess) podcclCommDestroy(comm);
        return 1;
    }
    if (rank == 1)
        for (int ms = 0; ms < 3000 && !atomic_load(&st()->intruder_done); ms++) harness_sleep_ms(1);
    if (report_init(rank, "podcclCommInitRank beside an intruder",
                    podcclCommInitRank(&comm, 2, id, rank)))
        return 1;
    int bad = harness_allreduce_ok(comm, rank, 2, 7);
    podcclCommDestroy(comm);
    return bad;
}

/* Ranks 0 and 1 say nranks 3, rank 2 says 4. */
static int mismatch_body(podcclComm_t unused, int rank, int nranks, void *arg) {
    podcclComm_t comm;
    double t0 = harness_now();
    (void)unused, (void)arg;
    podcclResult_t rc =
        podcclCommInitRank(&comm, rank == 2 ? nranks + 1 : nranks, harness_unique_id(), rank);
    double dt = harness_now() - t0;
    if (rc != podcclSuccess && dt <= TIMEOUT_SEC + SLACK_SEC) {
        printf("rank %d: inconsistent nranks: %s after %.1f s\n", rank, podcclGetErrorString(rc),
               dt);
        return 0;
    }
    fprintf(stderr, "rank %d: inconsistent nranks: podcclCommInitRank returned %d after %.1f s\n",
            rank, rc, dt);
    if (rc == podcclSuccess) podcclCommDestroy(comm);
    return 1;
}

/* Rank 0 made the id and exits at once, taking the root with it; rank 1 then joins. */
static int dead_root_body(podcclComm_t unused, int rank, int nranks, void *arg) {
    podcclComm_t comm;
    (void)unused, (void)arg;
    if (rank == 0) {
        atomic_store(&st()->root_pid, (int)getpid());
        return 0;
    }
    while (!atomic_load(&st()->root_pid)) harness_sleep_ms(1);
    while (kill(atomic_load(&st()->root_pid), 0) == 0 || errno != ESRCH) harness_sleep_ms(5);
    double t0 = harness_now();
    podcclResult_t rc = podcclCommInitRank(&comm, nranks, harness_unique_id(), rank);
    double dt = harness_now() - t0;
    if ((rc == podcclRemoteError || rc == podcclSystemError || rc == podcclTimeout) &&
        dt <= TIMEOUT_SEC + SLACK_SEC) {
        printf("rank 1: root gone: %s after %.1f s\n", podcclGetErrorString(rc), dt);
        return 0;
    }
    fprintf(stderr,
            "rank 1: root gone: podcclCommInitRank returned %d after %.1f s, want "
            "RemoteError, SystemError or Timeout within %d s\n",
            rc, dt, TIMEOUT_SEC + SLACK_SEC);
    if (rc == podcclSuccess) podcclCommDestroy(comm);
    return 1;
}

static int run_case(const char *name, int nranks, harness_body_fn body, void *arg) {
    harness_opts o = {.timeout_sec = 3 * (TIMEOUT_SEC + SLACK_SEC), .no_comm = 1};
    int rc = harness_run_opts(nranks, body, arg, &o);
    printf("test_bootstrap: %s: %s (%.1f s)\n", name, rc ? "FAIL" : "PASS", o.elapsed_sec);
    return rc;
}

int main(void) {
    int fails = 0, store_fd = -1;
    setenv_int("PODCCL_TIMEOUT", TIMEOUT_SEC);
    env_case a = {.port = free_port()};
    fails += run_case("a. PODCCL_RANK/PODCCL_NRANKS/PODCCL_COMM_ID", 3, env_body, &a);
    /* b: hold MASTER_PORT like torch's TCPStore; MASTER_PORT + 1 must be free for podccl */
    env_case b = {.torchrun = 1};
    for (int tries = 0; tries < 50 && store_fd < 0; tries++) {
        int port = 0, next;
        store_fd = bind_local(&port, 1);
        next = port + 1;
        int probe = store_fd >= 0 && port < 65535 ? bind_local(&next, 0) : -1;
        if (probe >= 0)
            close(probe), b.port = port;
        else if (store_fd >= 0)
            close(store_fd), store_fd = -1;
    }
    fails += store_fd < 0
                 ? 1
                 : run_case("b. torchrun RANK/WORLD_SIZE/MASTER_ADDR/MASTER_PORT", 3, env_body, &b);
    if (store_fd >= 0) close(store_fd);
    fails += run_case("c. wrong secret refused", 3, secret_body, NULL);
    fails += run_case("d. inconsistent nranks", 3, mismatch_body, NULL);
    fails += run_case("e. root gone", 2, dead_root_body, NULL);
    printf("test_bootstrap: %d of 5 cases failed\n", fails);
    return fails != 0;
}
