/* The bootstrap's trust model (docs/security.md), attacked the way issue 9 found it weak:
 *   a. 300 silent TCP connections to the rendezvous root: a 2-rank init still succeeds, with no
 *      wait for them (before: the root read one hello at a time with a 10 s wait each)
 *   b. silent connections to a rank's own bootstrap port while it waits in init: same
 *   c. an impostor root listening on the rendezvous address: the rank refuses it, and what the
 *      rank sent cannot be replayed to the real root to join the job (before: the hello carried
 *      the secret itself)
 *   d. PODCCL_SECRET_FILE with mode 0644, or owned by another user: refused, named
 *   e. no secret anywhere: a per-user secret file is created 0600 and both ranks use it
 *   f. a rank of another uid with the right unique id is refused over loopback (needs root to
 *      switch uid; skipped with a reason otherwise)
 *   g. 3000 unused unique ids: one rendezvous thread, not 3000
 *   h. a unique id with a garbage address family: podcclInvalidArgument
 * Every case prints PASS/FAIL; exit 0 only if all pass. */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

#define ADDR_OFFSET 8 /* id layout: 0..7 magic, 8..39 root address, 40..71 secret */
#define SILENT 300

typedef struct {
    atomic_int stage;
    atomic_int pid0;
    atomic_int failures;
    double init_sec[4];
    char msg[4][256];
} shared_t;

static shared_t *shared_state; /* mapped once, shared with every forked rank */
static shared_t *sh(void) {
    return shared_state;
}

static int wait_stage(int want, double secs) {
    double end = harness_now() + secs;
    while (atomic_load(&sh()->stage) < want)
        if (harness_now() > end)
            return -1;
        else
            harness_sleep_ms(2);
    return 0;
}

static int connect_silent(const struct sockaddr_in *a) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd >= 0 && connect(fd, (const struct sockaddr *)a, sizeof(*a)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static struct sockaddr_in id_addr(const podcclUniqueId *id) {
    struct sockaddr_in a;
    memcpy(&a, id->internal + ADDR_OFFSET, sizeof(a));
    return a;
}

/* Times one rank's init of a `n`-rank communicator and checks one all-reduce on it. */
static int timed_init(int rank, int n, podcclUniqueId id) {
    podcclComm_t c;
    double t0 = harness_now();
    podcclResult_t r = podcclCommInitRank(&c, n, id, rank);
    sh()->init_sec[rank] = harness_now() - t0;
    if (r != podcclSuccess) {
        printf("rank %d: init failed: %s\n", rank, podcclGetLastError(NULL));
        return 1;
    }
    int bad = harness_allreduce_ok(c, rank, n, 1000);
    podcclCommDestroy(c);
    return bad;
}

/* ---- a: silent connections to the root ------------------------------------------------------ */

static int silent_root_body(podcclComm_t unused, int rank, int nranks, void *arg) {
    (void)unused, (void)nranks, (void)arg;
    podcclUniqueId id = harness_unique_id();
    if (rank == 2) { /* the attacker */
        struct sockaddr_in a = id_addr(&id);
        int fds[SILENT], n = 0;
        for (int i = 0; i < SILENT; i++)
            if ((fds[n] = connect_silent(&a)) >= 0) n++;
        printf("attacker: %d silent connections to the root\n", n);
        atomic_store(&sh()->stage, 1);
        wait_stage(2, 60);
        for (int i = 0; i < n; i++) close(fds[i]);
        return n == SILENT ? 0 : 1;
    }
    if (wait_stage(1, 30) != 0) return 1;
    int bad = timed_init(rank, 2, id);
    if (atomic_fetch_add(&sh()->failures, 1) == 1) atomic_store(&sh()->stage, 2);
    return bad;
}

/* ---- b: silent connections to a rank's listener during init ---------------------------------- */

/* The TCP ports pid listens on (from its socket inodes and /proc/net/tcp). */
static int listening_ports(int pid, int *ports, int max) {
    char path[64], link[64];
    unsigned long inodes[256];
    int ni = 0, np = 0;
    snprintf(path, sizeof(path), "/proc/%d/fd", pid);
    DIR *d = opendir(path);
    for (struct dirent *e; d && (e = readdir(d)) && ni < 256;) {
        char p[600];
        snprintf(p, sizeof(p), "%s/%s", path, e->d_name);
        ssize_t l = readlink(p, link, sizeof(link) - 1);
        if (l > 0 && (link[l] = 0, sscanf(link, "socket:[%lu]", &inodes[ni]) == 1)) ni++;
    }
    if (d) closedir(d);
    FILE *f = fopen("/proc/net/tcp", "r");
    char line[512];
    while (f && fgets(line, sizeof(line), f) && np < max) {
        unsigned port, st;
        unsigned long inode;
        if (sscanf(line, " %*d: %*x:%x %*x:%*x %x %*x:%*x %*x:%*x %*x %*d %*d %lu", &port, &st,
                   &inode) != 3 ||
            st != 0x0A)
            continue;
        for (int i = 0; i < ni; i++)
            if (inodes[i] == inode) ports[np++] = (int)port;
    }
    if (f) fclose(f);
    return np;
}

static int silent_rank_body(podcclComm_t unused, int rank, int nranks, void *arg) {
    (void)unused, (void)nranks, (void)arg;
    podcclUniqueId id = harness_unique_id();
    if (rank == 2) {
        if (wait_stage(1, 30) != 0) return 1;
        harness_sleep_ms(300); /* rank 0 is in init, listening, waiting for rank 1 */
        int ports[16], np = listening_ports(atomic_load(&sh()->pid0), ports, 16), n = 0;
        struct sockaddr_in a = id_addr(&id);
        static int fds[16 * 50];
        for (int p = 0; p < np; p++)
            for (int i = 0; i < 50; i++) {
                a.sin_port = htons((uint16_t)ports[p]);
                if ((fds[n] = connect_silent(&a)) >= 0) n++;
            }
        printf("attacker: %d silent connections to rank 0's %d listening ports\n", n, np);
        atomic_store(&sh()->stage, 2);
        wait_stage(3, 60);
        for (int i = 0; i < n; i++) close(fds[i]);
        return np >= 2 ? 0 : (printf("attacker: found %d listening ports\n", np), 1);
    }
    if (rank == 0) {
        atomic_store(&sh()->pid0, getpid());
        atomic_store(&sh()->stage, 1);
    } else if (wait_stage(2, 30) != 0) {
        return 1;
    }
    int bad = timed_init(rank, 2, id);
    if (atomic_fetch_add(&sh()->failures, 1) == 1) atomic_store(&sh()->stage, 3);
    return bad;
}

/* ---- c: an impostor root, and a replay of what a rank sent it -------------------------------- */

static int impostor_body(podcclComm_t unused, int rank, int nranks, void *arg) {
    (void)unused, (void)nranks;
    int port = *(int *)arg;
    if (rank == 0) { /* the real job's rank 0; the harness id's root runs in this process */
        podcclUniqueId id = harness_unique_id();
        podcclComm_t c;
        podcclConfig_t cfg = PODCCL_CONFIG_INITIALIZER;
        cfg.timeoutSec = 4;
        atomic_store(&sh()->stage, 1);
        podcclResult_t r = podcclCommInitRankConfig(&c, 2, id, 0, &cfg);
        if (r == podcclSuccess) {
            printf("rank 0: init SUCCEEDED although rank 1 only talked to an impostor\n");
            podcclCommDestroy(c);
            return 1;
        }
        snprintf(sh()->msg[0], sizeof(sh()->msg[0]), "%s", podcclGetLastError(NULL));
        printf("rank 0: refused as it should: %s\n", sh()->msg[0]);
        return strstr(sh()->msg[0], "rank 1") ? 0 : 1;
    }
    if (rank == 1) { /* the victim: its id points to the impostor's port */
        podcclUniqueId id = harness_unique_id();
        struct sockaddr_in a = id_addr(&id);
        a.sin_port = htons((uint16_t)port);
        memcpy(id.internal + ADDR_OFFSET, &a, sizeof(a));
        if (wait_stage(2, 30) != 0) return 1;
        podcclComm_t c;
        podcclConfig_t cfg = PODCCL_CONFIG_INITIALIZER;
        cfg.timeoutSec = 4;
        podcclResult_t r = podcclCommInitRankConfig(&c, 2, id, 1, &cfg);
        if (r == podcclSuccess) return printf("rank 1: accepted an impostor root\n"), 1;
        printf("rank 1: refused the impostor: %s\n", podcclGetLastError(NULL));
        return strstr(podcclGetLastError(NULL), "secret") ? 0 : 1;
    }
    /* rank 2, the impostor: listens on `port`, captures what rank 1 sends, answers with junk
     * shaped like a challenge, then replays the capture to the real root. */
    int lfd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    podcclUniqueId id = harness_unique_id();
    struct sockaddr_in a = id_addr(&id), root = a;
    a.sin_port = htons((uint16_t)port);
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(lfd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(lfd, 4) != 0)
        return printf("impostor: bind: %s\n", strerror(errno)), 1;
    if (wait_stage(1, 30) != 0) return 1;
    atomic_store(&sh()->stage, 2);
    int fd = accept(lfd, NULL, NULL);
    unsigned char cap[512], junk[80];
    ssize_t n = 0, r;
    struct pollfd p = {.fd = fd, .events = POLLIN};
    while (poll(&p, 1, 500) == 1 && (r = recv(fd, cap + n, sizeof(cap) - (size_t)n, 0)) > 0) n += r;
    memset(junk, 0x5a, sizeof(junk));
    memcpy(junk, cap, 8); /* the magic */
    memset(junk + 8, 0, 8);
    (void)!send(fd, junk, sizeof(junk), MSG_NOSIGNAL);
    harness_sleep_ms(200);
    close(fd);
    /* Replay: present rank 1's capture to the real root as if it were rank 1. */
    int rfd = connect_silent(&root);
    if (rfd < 0) return printf("impostor: cannot reach the real root\n"), 1;
    (void)!send(rfd, cap, (size_t)n, MSG_NOSIGNAL);
    unsigned char reply[128];
    ssize_t got = 0;
    p.fd = rfd;
    while (poll(&p, 1, 1000) == 1 &&
           (r = recv(rfd, reply + got, sizeof(reply) - (size_t)got, 0)) > 0)
        got += r;
    printf("impostor: captured %zd bytes from rank 1; replayed them to the root, got %zd bytes\n",
           n, got);
    (void)!send(rfd, cap, 32, MSG_NOSIGNAL); /* a "proof" it cannot have made */
    harness_sleep_ms(5000);                  /* holds on while rank 0 decides */
    close(rfd);
    close(lfd);
    return 0;
}

/* ---- d, e: secret files ------------------------------------------------------------------- */

static int env_init_pair(const char *label, int expect_ok, const char *want_msg) {
    int port;
    {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t l = sizeof(a);
        bind(fd, (struct sockaddr *)&a, sizeof(a));
        getsockname(fd, (struct sockaddr *)&a, &l);
        port = ntohs(a.sin_port);
        close(fd);
    }
    char commid[80];
    snprintf(commid, sizeof(commid), "127.0.0.1:%d", port);
    pid_t kids[2];
    for (int r = 0; r < 2; r++) {
        if ((kids[r] = fork()) == 0) {
            char rs[16];
            snprintf(rs, sizeof(rs), "%d", r);
            setenv("PODCCL_RANK", rs, 1);
            setenv("PODCCL_NRANKS", "2", 1);
            setenv("PODCCL_COMM_ID", commid, 1);
            setenv("PODCCL_TIMEOUT", "5", 1);
            podcclComm_t c;
            podcclResult_t rc = podcclCommInitFromEnv(&c, NULL);
            if (rc != podcclSuccess) {
                const char *m = podcclGetLastError(NULL);
                printf("%s: rank %d: init failed: %s\n", label, r, m);
                _exit(expect_ok || (want_msg && !strstr(m, want_msg)) ? 1 : 0);
            }
            int bad = harness_allreduce_ok(c, r, 2, 100);
            podcclCommDestroy(c);
            _exit(!expect_ok || bad);
        }
    }
    int fails = 0;
    for (int r = 0; r < 2; r++) {
        int st;
        waitpid(kids[r], &st, 0);
        fails += !WIFEXITED(st) || WEXITSTATUS(st) != 0;
    }
    return fails;
}

static int secret_files(const char *dir) {
    char path[512];
    int fails = 0;
    snprintf(path, sizeof(path), "%s/job.secret", dir);
    FILE *f = fopen(path, "w");
    fputs("0123456789abcdef0123456789abcdef\n", f);
    fclose(f);
    unsetenv("PODCCL_SECRET");
    setenv("PODCCL_SECRET_FILE", path, 1);
    chmod(path, 0644);
    fails += env_init_pair("d. secret file 0644", 0, "mode 0644");
    chmod(path, 0600);
    fails += env_init_pair("d. secret file 0600", 1, NULL);
    if (geteuid() == 0) {
        if (chown(path, 65534, 65534) == 0)
            fails += env_init_pair("d. secret file of uid 65534", 0, "owned by uid 65534");
        else
            fails++;
    } else {
        printf("d. SKIP the other-owner case: needs root to chown\n");
    }
    unsetenv("PODCCL_SECRET_FILE");
    /* e: the per-user file, created on first use */
    char home[512], sec[600];
    snprintf(home, sizeof(home), "%s/home", dir);
    mkdir(home, 0700);
    setenv("HOME", home, 1);
    unsetenv("XDG_CONFIG_HOME");
    unsetenv("OMPI_MCA_orte_precondition_transports");
    fails += env_init_pair("e. per-user secret", 1, NULL);
    snprintf(sec, sizeof(sec), "%s/.config/podccl/secret", home);
    struct stat st;
    if (stat(sec, &st) != 0 || (st.st_mode & 0777) != 0600 || st.st_size < 32) {
        printf("e. %s: missing or not 0600 (mode %o)\n", sec, (unsigned)st.st_mode & 0777);
        fails++;
    }
    return fails;
}

/* ---- f: a rank of another uid ------------------------------------------------------------ */

static int other_uid_body(podcclComm_t unused, int rank, int nranks, void *arg) {
    (void)unused, (void)nranks, (void)arg;
    podcclUniqueId id = harness_unique_id();
    podcclComm_t c;
    podcclConfig_t cfg = PODCCL_CONFIG_INITIALIZER;
    cfg.timeoutSec = 3;
    if (rank == 1 && (setgid(65534) != 0 || setuid(65534) != 0)) return 1;
    podcclResult_t r = podcclCommInitRankConfig(&c, 2, id, rank, &cfg);
    if (r == podcclSuccess) {
        printf("rank %d (uid %d): init SUCCEEDED with a rank of another uid\n", rank, getuid());
        podcclCommDestroy(c);
        return 1;
    }
    printf("rank %d (uid %d): refused: %s\n", rank, getuid(), podcclGetLastError(NULL));
    return 0;
}

/* ---- g, h ------------------------------------------------------------------------------------ */

static int count_threads(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    int n = -1;
    while (f && fgets(line, sizeof(line), f))
        if (sscanf(line, "Threads: %d", &n) == 1) break;
    if (f) fclose(f);
    return n;
}

static int many_ids(void) {
    pid_t k = fork();
    if (k == 0) {
        setenv("PODCCL_TIMEOUT", "60", 1);
        int ok = 0;
        for (int i = 0; i < 3000; i++) {
            podcclUniqueId id;
            ok += podcclGetUniqueId(&id) == podcclSuccess;
        }
        int t = count_threads();
        int fds = 0;
        DIR *d = opendir("/proc/self/fd");
        while (d && readdir(d)) fds++;
        if (d) closedir(d);
        printf("g. 3000 podcclGetUniqueId: %d succeeded, %d threads and %d descriptors in the "
               "process\n",
               ok, t, fds);
        _exit(t <= 2 && ok == 3000 && fds < 1100 ? 0 : 1);
    }
    int st;
    waitpid(k, &st, 0);
    return !WIFEXITED(st) || WEXITSTATUS(st) != 0;
}

static int garbage_family(void) {
    podcclUniqueId id;
    if (podcclGetUniqueId(&id) != podcclSuccess) return 1;
    id.internal[ADDR_OFFSET] = 0x77, id.internal[ADDR_OFFSET + 1] = 0x13;
    podcclComm_t c;
    podcclResult_t r = podcclCommInitRank(&c, 1, id, 0);
    printf("h. garbage address family: %s: %s\n", podcclGetErrorString(r),
           podcclGetLastError(NULL));
    return r != podcclInvalidArgument;
}

static int report(const char *name, int fails) {
    printf("test_security: %s: %s\n", name, fails ? "FAIL" : "PASS");
    return fails != 0;
}

int main(void) {
    setenv("PODCCL_TIMEOUT", "10", 1);
    setvbuf(stdout, NULL, _IOLBF, 0);
    int fails = 0;
    harness_opts o = {.no_comm = 1, .timeout_sec = 60};

    shared_state =
        mmap(NULL, sizeof(shared_t), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (shared_state == MAP_FAILED) return 1;
    int f = harness_run_opts(3, silent_root_body, NULL, &o);
    printf("a. init with %d silent connections at the root took %.3f / %.3f s\n", SILENT,
           sh()->init_sec[0], sh()->init_sec[1]);
    fails += report("a. silent connections to the root", f || sh()->init_sec[0] > 3);

    memset(sh(), 0, sizeof(shared_t));
    harness_opts o2 = {.no_comm = 1, .timeout_sec = 60};
    f = harness_run_opts(3, silent_rank_body, NULL, &o2);
    printf("b. rank 1's init with silent connections at rank 0 took %.3f s\n", sh()->init_sec[1]);
    fails += report("b. silent connections to a rank", f || sh()->init_sec[1] > 3);

    int port = 0;
    {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET};
        socklen_t l = sizeof(a);
        bind(fd, (struct sockaddr *)&a, sizeof(a));
        getsockname(fd, (struct sockaddr *)&a, &l);
        port = ntohs(a.sin_port);
        close(fd);
    }
    memset(sh(), 0, sizeof(shared_t));
    harness_opts o3 = {.no_comm = 1, .timeout_sec = 60};
    fails += report("c. impostor root and replay", harness_run_opts(3, impostor_body, &port, &o3));

    char dir[] = "/tmp/podccl-sec.XXXXXX";
    if (!mkdtemp(dir)) return 1;
    fails += report("d/e. secret files", secret_files(dir));
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    (void)!system(cmd);

    if (geteuid() == 0) {
        harness_opts o4 = {.no_comm = 1, .timeout_sec = 60};
        fails += report("f. a rank of another uid", harness_run_opts(2, other_uid_body, NULL, &o4));
    } else {
        printf("test_security: f. SKIP: switching to another uid needs root\n");
    }
    fails += report("g. many unique ids", many_ids());
    fails += report("h. garbage address family", garbage_family());
    printf("test_security: %d case(s) failed\n", fails);
    return fails ? 1 : 0;
}
