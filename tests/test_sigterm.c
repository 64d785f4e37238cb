/* SIGTERM at random moments: every rank of a podccl job must end within 2 s of its SIGTERM, and
 * every other rank within 2 s of the job's end (the first rank's death), with an error naming the
 * dead rank; nobody may hang.
 *
 * What it guards: libfabric, linked into libpodccl, links PSM (libinfinipath), whose constructor
 * installs handlers for SIGTERM, SIGSEGV, SIGINT... in every process that links podccl; the
 * handler calls exit() from inside the signal handler. A rank that gets SIGTERM while it holds a
 * lock (malloc's while exiting, libfabric's inside fi_getinfo) runs exit() from the handler, whose
 * exit handlers and destructors wait for that lock forever (torchrun sends SIGTERM to the other
 * workers when one fails, often while they exit). podccl installs no SIGTERM handler of its own,
 * so the default action must apply: the rank dies by SIGTERM. The test unsets IPATH_NO_BACKTRACE
 * and HFI_NO_BACKTRACE (which make check and .ci/run set, and which silence PSM) for its ranks: it
 * proves they are not needed.
 *
 * Each trial starts np ranks (np cycles through 2, 3, 4; torch: 2, 3) as fresh processes (fork
 * and exec, so each loads the library with the test's environment, as a launcher's ranks do).
 * A rank reports its progress as lines on a pipe: init, coll (init done; with the owner of its
 * SIGTERM handler), iter K, last (before its last collective), err (a call failed: code and
 * message), exit (destroy/exit begins), done. The moment of the trial cycles through:
 *   init  SIGTERM to a random rank at a random time inside its init (podcclGetUniqueId for rank
 *         0, then podcclCommInitRank);
 *   coll  SIGTERM to a random rank inside a random iteration of its loop of checked collectives
 *         (all-reduce of 1003 floats, 64 Ki, 1 Mi, broadcast from a moving root);
 *   exit  a random peer is SIGKILLed inside a random iteration; another rank, once it reported
 *         the error (naming the peer), gets SIGTERM at a random time while it destroys and exits.
 * Random times are uniform over a phase's typical length: moving averages of what the earlier
 * trials' undisturbed ranks took (defaults for the first trial of each np). The verdict:
 *   - a SIGTERMed rank must end within 2 s of the SIGTERM, killed by SIGTERM (or exited with its
 *     own code if it had said "done" before the signal). Exiting with another code (1: PSM's
 *     handler) means a handler caught SIGTERM: a failure, the process ran exit() in a handler;
 *   - every other rank must end within 2 s of the job's end (when the dead rank was reaped),
 *     having reported an error (podcclRemoteError or podcclTimeout) that names "rank D" for the
 *     dead rank D; success only if D had started its last collective before it died; exit 4 (no
 *     unique id) only when rank 0 died before making one;
 *   - a rank still running at its deadline is overdue: the test prints the trial, rank, moment,
 *     the rank's last line and its stack (gdb -p PID -batch -ex 'thread apply all bt', when gdb
 *     exists), waits 5 s more, then SIGKILLs it: "hung" (SIGKILLed) or "too slow" (it ended by
 *     itself in those 5 s) are both failures.
 *   - torch ranks (--torch): a Python rank's own exit (interpreter shutdown, libtorch's static
 *     destructors) can take seconds on a loaded machine. As torchrun does, a rank still running 2
 *     s after the job's end gets SIGTERM once it has reported the error (a rank that has not is
 *     overdue), and must end within 2 s of that SIGTERM (--term-rest / --no-term-rest).
 * Known limits of init, counted on their own lines and not failures unless --strict-init (as in
 * test_chaos): a rank killed before its hello reached the rendezvous root is named only at
 * PODCCL_TIMEOUT ("never joined"; rank 0's own deadline may come first, then nobody is named);
 * survivors of rank 0 killed in init may blame "the root" without naming rank 0, at once or (their
 * connection refused until their deadline) at PODCCL_TIMEOUT. PODCCL_TIMEOUT is 30 s (-t), so a
 * hang until the timeout is told apart from a prompt error.
 *
 * Configurations: --net shm (ranks on one host: shared memory) and --net ofi (each rank its own
 * host, PODCCL_HOSTID=sigterm-a/b/..., PODCCL_NET=ofi: libfabric's tcp provider); default both;
 * ofi is skipped, with the reason, when the library says it has no ofi transport. --torch SCRIPT
 * runs tests/torch/sigterm_rank.py ranks (torch.distributed on podccl, all_reduce in a loop)
 * instead of C ranks, moments coll and exit by default (tests/run_sigterm_torch.sh).
 *
 * Usage: test_sigterm [-n TRIALS] [-s SEED] [-p init|coll|exit]... [--net shm|ofi|shm,ofi]
 *        [-t PODCCL_TIMEOUT] [--np N] [-v] [--psm-quiet] [--strict-init]
 *        [--term-rest|--no-term-rest] [--torch SCRIPT [--python PY]]
 * --psm-quiet sets IPATH_NO_BACKTRACE=1 HFI_NO_BACKTRACE=1 for the ranks instead (the control:
 * what the workaround, and the ofi module's loader, do). -n is per configuration; make check
 * runs the default (9 C trials per configuration: 3 per moment); the full run is
 *     _build/tests/test_sigterm -n 100        (and BUILD=_build tests/run_sigterm_torch.sh -n 100)
 * The seed is printed; -s SEED replays the same victims, moments and random fractions (the times
 * they become follow the machine's speed). Exit 0 iff no trial failed, 77 if no configuration
 * could run. */
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "podccl.h"

#define MAXR 4
#define END_SEC 2.0 /* the spec: every rank ends within 2 s of its SIGTERM or of the job's end */
#define REPORT_FD 3 /* a rank writes its progress lines here */
#define MAXIT 64    /* iterations of a rank's loop, at most */
#define SMALL 1003
#define MEDIUM (64 * 1024)
#define LARGE (1 << 20)
#define GDB_SEC 60.0  /* at most this long for a hung rank's stack */
#define GRACE_SEC 5.0 /* after the stack, before SIGKILL: a rank that ends by itself was late */

/* Progress lines, in the order a rank writes them. */
enum { P_START, P_INIT, P_COLL, P_LAST, P_ERR, P_EXIT, P_DONE, NPH };
static const char *const ph_name[] = {"start", "init", "coll", "last", "err", "exit", "done"};

enum { M_INIT, M_COLL, M_EXIT, NMOM };
static const char *const mom_name[] = {"init", "coll", "exit"};

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---- a C rank ------------------------------------------------------------------------------- */

/* One progress line "TAG TIME [TEXT]" (one write: atomic on a pipe). */
static void say(const char *tag, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(const char *tag, const char *fmt, ...) {
    char buf[1024];
    int n = snprintf(buf, sizeof(buf), "%s %.6f ", tag, now());
    if (fmt && n < (int)sizeof(buf)) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(buf + n, sizeof(buf) - (size_t)n, fmt, ap);
        va_end(ap);
    }
    n = (int)strlen(buf);
    if (n > (int)sizeof(buf) - 2) n = (int)sizeof(buf) - 2;
    for (int i = 0; i < n; i++)
        if (buf[i] == '\n') buf[i] = ' ';
    buf[n++] = '\n';
    ssize_t w = write(REPORT_FD, buf, (size_t)n);
    (void)w;
}

/* Who handles SIGTERM in this process: "default", "ignored" or the handler's library. */
static void sigterm_owner(char *out, size_t len) {
    struct sigaction sa;
    sigaction(SIGTERM, NULL, &sa);
    if (!(sa.sa_flags & SA_SIGINFO) && sa.sa_handler == SIG_DFL) {
        snprintf(out, len, "default");
        return;
    }
    if (!(sa.sa_flags & SA_SIGINFO) && sa.sa_handler == SIG_IGN) {
        snprintf(out, len, "ignored");
        return;
    }
    void *h = (sa.sa_flags & SA_SIGINFO) ? (void *)sa.sa_sigaction : (void *)sa.sa_handler;
    Dl_info info;
    if (dladdr(h, &info) && info.dli_fname) {
        const char *slash = strrchr(info.dli_fname, '/');
        snprintf(out, len, "%s", slash ? slash + 1 : info.dli_fname);
    } else
        snprintf(out, len, "%p", h);
}

/* One checked collective (as test_chaos): returns its code; *wrong set on a wrong result. */
static podcclResult_t one_coll(podcclComm_t comm, int rank, int n, int it, float *buf, int *wrong) {
    static const size_t sizes[] = {SMALL, MEDIUM, LARGE};
    podcclResult_t rc;
    size_t count;
    float want;
    if (it % 4 == 3) { /* broadcast from a moving root */
        int root = it % n;
        count = MEDIUM;
        want = (float)(1000 * it + root);
        for (size_t i = 0; i < count; i++) buf[i] = rank == root ? want : -1.0f;
        rc = podcclBroadcast(buf, buf, count, podcclFloat32, root, comm, NULL);
    } else {
        count = sizes[it % 3];
        for (size_t i = 0; i < count; i++) buf[i] = (float)(rank + 1 + it);
        want = (float)(n * (n + 1) / 2 + n * it);
        rc = podcclAllReduce(buf, buf, count, podcclFloat32, podcclSum, comm, NULL);
    }
    for (size_t i = 0; rc == podcclSuccess && i < count; i++)
        if (buf[i] != want) {
            *wrong = 1;
            break;
        }
    return rc;
}

/* Exit codes of a C rank: 0 success, 3 a call failed (reported), 4 no unique id (rank 0 died
 * before making one), 5 wrong results. Rank 0 makes the unique id and reports it ("uid HEX");
 * the test passes it on to the others' standard input. */
static int rank_main(int rank, int n, int iters) {
    say("start", NULL);
    podcclUniqueId id;
    podcclResult_t rc;
    if (rank == 0) {
        say("init", NULL);
        rc = podcclGetUniqueId(&id);
        if (rc != podcclSuccess) {
            say("err", "%d podcclGetUniqueId: %s", rc, podcclGetLastError(NULL));
            say("exit", NULL);
            return 3;
        }
        char hex[2 * PODCCL_UNIQUE_ID_BYTES + 1];
        for (int i = 0; i < PODCCL_UNIQUE_ID_BYTES; i++)
            snprintf(hex + 2 * i, 3, "%02x", (unsigned char)id.internal[i]);
        say("uid", "%s", hex);
    } else {
        char line[2 * PODCCL_UNIQUE_ID_BYTES + 8];
        if (!fgets(line, sizeof(line), stdin) || strlen(line) < 2 * PODCCL_UNIQUE_ID_BYTES) {
            say("noid", NULL);
            return 4;
        }
        for (int i = 0; i < PODCCL_UNIQUE_ID_BYTES; i++) {
            unsigned v;
            if (sscanf(line + 2 * i, "%2x", &v) != 1) return say("noid", NULL), 4;
            id.internal[i] = (char)v;
        }
        say("init", NULL);
    }
    podcclComm_t comm = NULL;
    rc = podcclCommInitRank(&comm, n, id, rank);
    if (rc != podcclSuccess) {
        say("err", "%d init: %s", rc, podcclGetLastError(NULL));
        say("exit", NULL);
        return 3;
    }
    char owner[256];
    sigterm_owner(owner, sizeof(owner));
    say("coll", "handler=%s", owner);
    float *buf = malloc(sizeof(float) * LARGE);
    int wrong = 0;
    for (int it = 0; it < iters && rc == podcclSuccess && !wrong; it++) {
        say("iter", "%d", it);
        if (it == iters - 1) say("last", NULL);
        rc = one_coll(comm, rank, n, it, buf, &wrong);
    }
    if (rc != podcclSuccess) say("err", "%d %s", rc, podcclGetLastError(comm));
    if (wrong) say("wrong", "wrong result");
    say("exit", NULL);
    podcclResult_t drc = podcclCommDestroy(comm);
    if (drc != podcclSuccess && rc == podcclSuccess) {
        say("err", "%d destroy: %s", drc, podcclGetLastError(NULL));
        rc = drc;
    }
    free(buf);
    say("done", NULL);
    return wrong ? 5 : rc != podcclSuccess ? 3 : 0;
}

/* ---- the test ------------------------------------------------------------------------------- */

typedef struct {
    const char *net;    /* "shm" or "ofi" */
    const char *script; /* torch rank script, or NULL: C ranks */
    const char *python;
    char self[PATH_MAX]; /* this program, for C ranks */
    char dir[64];        /* scratch: the ranks' working folder and logs */
    int timeout, iters, verbose, have_gdb, psm_quiet, strict_init;
    int term_rest; /* as torchrun: SIGTERM to the ranks still running 2 s after the job's end */
    int nps[3], nnps, moments[NMOM], nmoments;
    /* running estimates per np (0: none yet): init, one iteration, error to end of a rank */
    double est_init[MAXR + 1], est_iter[MAXR + 1], est_exit[MAXR + 1];
} cfg_t;

typedef struct {
    pid_t pid;
    int rfd, wfd; /* progress pipe (read end); C ranks' stdin (unique id), -1 once closed */
    char buf[8192];
    size_t len;
    int phase;      /* highest progress line seen */
    double t[NPH];  /* when each line arrived (test's clock), 0 if never */
    int code;       /* from the err line */
    char err[600];  /* its message */
    char owner[96]; /* SIGTERM handler at "coll" */
    int uid, noid, wrong;
    int ended, status;
    double t_end;
    double deadline, soft; /* overdue if alive at deadline; late (stack taken) if alive at soft */
    int overdue, late;
    pid_t gdb;           /* collecting its stack */
    double gdb_t0;       /* when gdb started */
    double kill_at;      /* overdue: SIGKILL it then (GRACE_SEC after its stack) */
    const char *why_due; /* which limit it passed */
    double since;        /* the event that limit counts from */
    double load;         /* the load average then */
    char threads[512];   /* its threads' states then */
    double t_exiting;    /* past its deadline, but already in the kernel's exit path */
    int killed;          /* overdue and SIGKILLed by the test: hung */
    double t_term;       /* when it got SIGTERM (0: never) */
    int term_phase;      /* its last line then */
    int rest; /* that SIGTERM was torchrun's, to a rank still running 2 s after the job's end */
    int want_iter;      /* the iteration whose start the test waits for (victim, peer), else -1 */
    double t_want;      /* when it started */
    double t_it[MAXIT]; /* when each iteration started */
} rk_t;

typedef struct {
    int k, np, moment, victim, peer;
    double start;
    double u_term, u_kill;     /* random fractions drawn for the trial */
    double d_term;             /* the SIGTERM's delay after its reference line */
    double at_term, at_kill;   /* when they are due (0: not yet known) */
    double t_term, t_kill;     /* when sent, 0 if not */
    int term_phase, term_gone; /* victim's phase when SIGTERM was sent; it had ended already */
    int kill_phase, kill_gone;
    int dead;      /* the rank whose death the others must report, -1 none */
    double t_fail; /* its death: the job's end */
    int dead_phase;
    rk_t r[MAXR];
} trial_t;

typedef struct {
    int trials, failed, by_moment[NMOM], landed[NPH], gone_before, term_sent, term_died,
        term_own_exit, no_fault, rest_sent, hung, caught, late, early, not_named, bad_code,
        bad_status, bad_success, wrong, slow, unjoined, unjoined_unnamed, root_blamed, root_late,
        noid, btr;
    double worst_term, worst_fail, worst_reap;
    int reaped_late;
    char owners[4][96];
    int owner_n[4];
} stats_t;

static int phase_of(const char *tag) {
    for (int p = 0; p < NPH; p++)
        if (!strcmp(tag, ph_name[p])) return p;
    return -1;
}

/* The 1-minute load average: printed with what took too long. */
static double loadavg(void) {
    double l = -1;
    FILE *f = fopen("/proc/loadavg", "r");
    if (f && fscanf(f, "%lf", &l) != 1) l = -1;
    if (f) fclose(f);
    return l;
}

static double urand(void) {
    return rand() / (RAND_MAX + 1.0);
}

static int free_port(void) {
    int s = socket(AF_INET, SOCK_STREAM, 0), port = 0;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    if (s >= 0 && bind(s, (struct sockaddr *)&a, sizeof(a)) == 0 &&
        getsockname(s, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    if (s >= 0) close(s);
    return port;
}

static void log_path(const cfg_t *c, int r, char *out, size_t len) {
    snprintf(out, len, "%s/rank%d.log", c->dir, r);
}

/* The last lines of rank r's output, indented. */
static void show_log(const cfg_t *c, int r) {
    char path[128], line[512];
    log_path(c, r, path, sizeof(path));
    FILE *f = fopen(path, "r");
    if (!f) return;
    long pos[16] = {0};
    int n = 0;
    for (;;) {
        long p = ftell(f);
        if (!fgets(line, sizeof(line), f)) break;
        pos[n++ % 16] = p;
    }
    int first = n > 12 ? n - 12 : 0;
    if (n) fprintf(stderr, "    --- rank %d output (last %d lines)\n", r, n - first);
    for (int i = first; i < n; i++) {
        fseek(f, pos[i % 16], SEEK_SET);
        if (fgets(line, sizeof(line), f)) fprintf(stderr, "    | %s", line);
    }
    fclose(f);
}

/* fork + exec rank r of the trial, its progress pipe on REPORT_FD. */
static int start_rank(const cfg_t *c, trial_t *t, int r, int port) {
    rk_t *k = &t->r[r];
    int rep[2], in[2] = {-1, -1};
    if (pipe2(rep, O_CLOEXEC)) return -1;
    if (!c->script && pipe2(in, O_CLOEXEC)) return -1;
    char path[128];
    log_path(c, r, path, sizeof(path));
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive the test */
        int log = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int nul = open("/dev/null", O_RDONLY);
        dup2(c->script ? nul : in[0], 0);
        dup2(log, 1);
        dup2(log, 2);
        dup2(rep[1], REPORT_FD);
        fcntl(REPORT_FD, F_SETFD, 0); /* (dup2 onto itself keeps close-on-exec) */
        for (int fd = REPORT_FD + 1; fd < 1024; fd++) close(fd);
        signal(SIGPIPE, SIG_DFL); /* the test ignores it; a rank gets the default of everything */
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        if (chdir(c->dir)) _exit(126);
        char rs[16], ns[16], ps[16], its[16], to[16], host[32];
        snprintf(rs, sizeof(rs), "%d", r);
        snprintf(ns, sizeof(ns), "%d", t->np);
        snprintf(ps, sizeof(ps), "%d", port);
        snprintf(its, sizeof(its), "%d", c->iters);
        snprintf(to, sizeof(to), "%d", c->timeout);
        snprintf(host, sizeof(host), "sigterm-%c", 'a' + r);
        /* The point of the test: PSM must stay quiet without these (--psm-quiet: the control) */
        if (c->psm_quiet) {
            setenv("IPATH_NO_BACKTRACE", "1", 1);
            setenv("HFI_NO_BACKTRACE", "1", 1);
        } else {
            unsetenv("IPATH_NO_BACKTRACE");
            unsetenv("HFI_NO_BACKTRACE");
        }
        setenv("PODCCL_TIMEOUT", to, 1);
        if (!strcmp(c->net, "ofi")) {
            setenv("PODCCL_NET", "ofi", 1);
            setenv("PODCCL_HOSTID", host, 1);
        } else {
            unsetenv("PODCCL_NET");
            unsetenv("PODCCL_HOSTID");
        }
        if (c->script) {
            setenv("RANK", rs, 1);
            setenv("WORLD_SIZE", ns, 1);
            setenv("MASTER_ADDR", "127.0.0.1", 1);
            setenv("MASTER_PORT", ps, 1);
            setenv("SIGTERM_TEST_FD", "3", 1);
            setenv("SIGTERM_TEST_ITERS", its, 1);
            setenv("SIGTERM_TEST_TIMEOUT", to, 1);
            execl(c->python, c->python, c->script, (char *)NULL);
        } else
            execl(c->self, c->self, "--rank", rs, ns, its, (char *)NULL);
        _exit(127);
    }
    close(rep[1]);
    fcntl(rep[0], F_SETFL, O_NONBLOCK);
    if (in[0] >= 0) close(in[0]);
    memset(k, 0, sizeof(*k));
    k->pid = pid;
    k->rfd = rep[0];
    k->wfd = in[1];
    k->code = -1;
    k->want_iter = -1;
    return 0;
}

static void close_wfd(rk_t *k) {
    if (k->wfd >= 0) close(k->wfd);
    k->wfd = -1;
}

static void on_line(trial_t *t, int r, char *line, double tnow) {
    rk_t *k = &t->r[r];
    char tag[16];
    double ts;
    int off = 0;
    if (sscanf(line, "%15s %lf %n", tag, &ts, &off) < 2) return;
    const char *rest = line + off;
    int p = phase_of(tag);
    (void)tnow;
    if (p >= 0) { /* the rank's own time: CLOCK_MONOTONIC, the test's clock too */
        if (!k->t[p]) k->t[p] = ts;
        if (p > k->phase) k->phase = p;
    }
    if (p == P_COLL && !strncmp(rest, "handler=", 8))
        snprintf(k->owner, sizeof(k->owner), "%s", rest + 8);
    else if (p == P_ERR && k->code < 0) {
        char *end;
        k->code = (int)strtol(rest, &end, 10);
        snprintf(k->err, sizeof(k->err), "%s", *end == ' ' ? end + 1 : end);
    } else if (!strcmp(tag, "iter")) {
        int it = atoi(rest);
        if (it >= 0 && it < MAXIT && !k->t_it[it]) k->t_it[it] = ts;
        if (it == k->want_iter && !k->t_want) k->t_want = ts;
    } else if (!strcmp(tag, "noid"))
        k->noid = 1;
    else if (!strcmp(tag, "wrong"))
        k->wrong = 1;
    else if (!strcmp(tag, "uid")) {
        k->uid = 1;
        size_t len = strlen(rest);
        for (int i = 1; i < t->np; i++) {
            if (t->r[i].wfd < 0) continue;
            ssize_t w = write(t->r[i].wfd, rest, len);
            w = write(t->r[i].wfd, "\n", 1);
            (void)w;
            close_wfd(&t->r[i]);
        }
    }
}

/* Reads what rank r has written (its pipe is non-blocking) and handles each whole line. */
static void drain(trial_t *t, int r, double tnow) {
    rk_t *k = &t->r[r];
    while (k->rfd >= 0) {
        ssize_t n = read(k->rfd, k->buf + k->len, sizeof(k->buf) - 1 - k->len);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EAGAIN) return;
        if (n <= 0) {
            close(k->rfd);
            k->rfd = -1;
            return;
        }
        k->len += (size_t)n;
        k->buf[k->len] = 0;
        char *nl, *s = k->buf;
        while ((nl = strchr(s, '\n'))) {
            *nl = 0;
            on_line(t, r, s, tnow);
            s = nl + 1;
        }
        k->len -= (size_t)(s - k->buf);
        memmove(k->buf, s, k->len);
        if (k->len == sizeof(k->buf) - 1) k->len = 0; /* a line too long: dropped */
    }
}

static void start_gdb(const cfg_t *c, rk_t *k, int r) {
    if (!c->have_gdb) return;
    char out[128], pid[16];
    snprintf(out, sizeof(out), "%s/stack%d.txt", c->dir, r);
    snprintf(pid, sizeof(pid), "%d", (int)k->pid);
    fflush(NULL);
    k->gdb_t0 = now();
    k->gdb = fork();
    if (k->gdb == 0) {
        int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int nul = open("/dev/null", O_RDONLY);
        dup2(nul, 0);
        dup2(fd, 1);
        dup2(fd, 2);
        signal(SIGPIPE, SIG_DFL);
        execlp("gdb", "gdb", "-nx", "-batch", "-p", pid, "-ex", "set pagination off", "-ex",
               "thread apply all bt", (char *)NULL);
        _exit(127);
    }
    if (k->gdb < 0) k->gdb = 0;
}

/* Prints the stack gdb wrote for rank r (the lines of the backtraces; else gdb's last words). */
static void show_stack(const cfg_t *c, int r) {
    char path[128], line[1024], last[4][256] = {{0}};
    snprintf(path, sizeof(path), "%s/stack%d.txt", c->dir, r);
    FILE *f = fopen(path, "r");
    if (!f) {
        if (!c->have_gdb) fprintf(stderr, "    (no gdb on PATH: no stack)\n");
        return;
    }
    fprintf(stderr, "    --- rank %d stack when it was overdue (gdb)\n", r);
    int n = 0, all = 0;
    while (fgets(line, sizeof(line), f)) {
        snprintf(last[all++ % 4], sizeof(last[0]), "%.250s", line);
        if ((!strncmp(line, "Thread ", 7) || line[0] == '#') && n < 400) {
            fprintf(stderr, "    | %s", line);
            n++;
        }
    }
    for (int i = all > 4 ? all - 4 : 0; !n && i < all; i++)
        fprintf(stderr, "    | %s", last[i % 4]); /* no backtrace: why (it had ended...) */
    fclose(f);
}

/* 1 if no thread of pid runs user code any more: each is in the kernel's exit path (PF_EXITING:
 * it took exit_group or a fatal signal; the kernel may still be tearing the process down, which
 * takes seconds for a big process on a loaded machine) or a zombie, or the process is gone. */
#define PF_EXITING_FLAG 0x4ul
static int in_kernel_exit(pid_t pid) {
    char dir[64];
    snprintf(dir, sizeof(dir), "/proc/%d/task", (int)pid);
    DIR *d = opendir(dir);
    if (!d) return 1;
    struct dirent *e;
    int all = 1;
    while (all && (e = readdir(d))) {
        char path[PATH_MAX], buf[1024], state;
        if (e->d_name[0] == '.') continue;
        snprintf(path, sizeof(path), "%s/%s/stat", dir, e->d_name);
        FILE *f = fopen(path, "r");
        if (!f) continue;
        size_t len = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        buf[len] = 0;
        char *p = strrchr(buf, ')'); /* after the command name, which may hold anything */
        int i1, i2, i3, i4, i5;
        unsigned long flags;
        if (p &&
            sscanf(p + 1, " %c %d %d %d %d %d %lu", &state, &i1, &i2, &i3, &i4, &i5, &flags) == 7 &&
            state != 'Z' && state != 'X' && !(flags & PF_EXITING_FLAG))
            all = 0;
    }
    closedir(d);
    return all;
}

/* "TID STATE WCHAN" of each thread of pid (a stack of sorts when gdb has none). */
static void thread_states(pid_t pid, char *out, size_t len) {
    char dir[64];
    snprintf(dir, sizeof(dir), "/proc/%d/task", (int)pid);
    DIR *d = opendir(dir);
    struct dirent *e;
    size_t n = 0;
    out[0] = 0;
    while (d && (e = readdir(d)) && n + 80 < len) {
        char path[PATH_MAX], buf[512] = "", wchan[64] = "", state = '?';
        if (e->d_name[0] == '.') continue;
        snprintf(path, sizeof(path), "%s/%s/stat", dir, e->d_name);
        FILE *f = fopen(path, "r");
        if (f) {
            size_t got = fread(buf, 1, sizeof(buf) - 1, f);
            buf[got] = 0;
            fclose(f);
        }
        char *p = strrchr(buf, ')');
        if (p && p[1] == ' ') state = p[2];
        snprintf(path, sizeof(path), "%s/%s/wchan", dir, e->d_name);
        f = fopen(path, "r");
        if (f) {
            size_t got = fread(wchan, 1, sizeof(wchan) - 1, f);
            wchan[got] = 0;
            fclose(f);
        }
        n += (size_t)snprintf(out + n, len - n, "%s%s %c %s", n ? ", " : "", e->d_name, state,
                              wchan[0] ? wchan : "-");
    }
    if (d) closedir(d);
}

/* The SIGTERM's target is alive (not yet reaped: a zombie has ended already). */
static int alive(rk_t *k) {
    if (k->ended) return 0;
    int st;
    if (waitpid(k->pid, &st, WNOHANG) == k->pid) {
        k->ended = 1;
        k->status = st;
        k->t_end = now();
        return 0;
    }
    return 1;
}

static void set_fail(trial_t *t, int dead, double when) {
    if (t->dead >= 0) return;
    t->dead = dead;
    t->t_fail = when;
    t->dead_phase = t->r[dead].phase;
}

/* Runs one trial to its end: every rank reaped. */
static void run_trial(const cfg_t *c, trial_t *t) {
    int port = c->script ? free_port() : 0;
    t->start = now();
    t->dead = -1;
    for (int r = 0; r < t->np; r++)
        if (start_rank(c, t, r, port)) {
            perror("test_sigterm: starting a rank");
            exit(1);
        }
    /* coll: SIGTERM inside a random iteration of the victim; exit: the peer's SIGKILL inside a
     * random iteration but the last (times: a random part of an iteration's typical length) */
    double est_init = c->est_init[t->np] ? c->est_init[t->np] : c->script ? 3.0 : 0.05;
    double est_iter = c->est_iter[t->np] ? c->est_iter[t->np] : c->script ? 0.05 : 0.01;
    double est_exit = c->est_exit[t->np] ? c->est_exit[t->np] : c->script ? 1.5 : 0.01;
    int slots = c->iters;
    if (t->moment == M_COLL) t->r[t->victim].want_iter = (int)(t->u_term * slots);
    if (t->moment == M_EXIT) t->r[t->peer].want_iter = (int)(t->u_kill * (slots - 1));
    double frac_term = t->u_term * slots - (int)(t->u_term * slots);
    double frac_kill = t->u_kill * (slots - 1) - (int)(t->u_kill * (slots - 1));
    t->d_term = t->moment == M_INIT   ? t->u_term * est_init
                : t->moment == M_COLL ? frac_term * est_iter
                                      : t->u_term * 1.2 * est_exit;
    double watchdog = t->start + (c->script ? 240.0 : 60.0) + c->timeout;
    for (;;) {
        double tn = now();
        int left = 0;
        /* reap */
        for (int r = 0; r < t->np; r++) {
            rk_t *k = &t->r[r];
            if (!k->ended && waitpid(k->pid, &k->status, WNOHANG) == k->pid) {
                k->ended = 1;
                k->t_end = tn;
            }
            if (k->ended) close_wfd(k);
            if (k->gdb && waitpid(k->gdb, NULL, WNOHANG) == k->gdb) k->gdb = 0;
            if (k->gdb && tn - k->gdb_t0 > GDB_SEC) {
                kill(k->gdb, SIGKILL);
                waitpid(k->gdb, NULL, 0);
                k->gdb = 0;
            }
            if (k->overdue && !k->gdb && !k->kill_at) k->kill_at = tn + GRACE_SEC;
            if (k->kill_at && !k->killed && !k->ended && tn > k->kill_at) {
                kill(k->pid, SIGKILL); /* hung */
                k->killed = 1;
            }
            left += !k->ended || k->gdb;
        }
        /* the job's end: the death of the SIGKILLed peer (exit), of the SIGTERMed rank (init,
         * coll); when it was reaped, since a big process may take the kernel a while to end */
        rk_t *v = &t->r[t->victim];
        if (t->t_kill && t->r[t->peer].ended) set_fail(t, t->peer, t->r[t->peer].t_end);
        if (t->t_term && v->ended && t->moment != M_EXIT) set_fail(t, t->victim, v->t_end);
        if (!left) {
            for (int r = 0; r < t->np; r++) drain(t, r, tn);
            t->term_gone |= t->at_term && !t->t_term; /* due after every rank had ended */
            t->kill_gone |= t->at_kill && !t->t_kill;
            break;
        }
        /* rank 0 ended without a unique id: the others learn it from their standard input */
        if (!c->script && t->r[0].ended && !t->r[0].uid)
            for (int r = 1; r < t->np; r++) close_wfd(&t->r[r]);
        /* schedule the signals */
        if (t->moment == M_INIT && !t->at_term && v->t[P_INIT])
            t->at_term = v->t[P_INIT] + t->d_term;
        if (t->moment == M_COLL && !t->at_term && v->t_want) t->at_term = v->t_want + t->d_term;
        if (t->moment == M_EXIT && !t->at_kill && t->r[t->peer].t_want)
            t->at_kill = t->r[t->peer].t_want + frac_kill * est_iter;
        if (t->moment == M_EXIT && !t->at_term && v->t[P_ERR]) t->at_term = v->t[P_ERR] + t->d_term;
        if (t->at_kill && !t->t_kill && !t->kill_gone && tn >= t->at_kill) {
            rk_t *p = &t->r[t->peer];
            drain(t, t->peer, tn);
            if (alive(p) && !in_kernel_exit(p->pid)) {
                t->kill_phase = p->phase;
                kill(p->pid, SIGKILL);
                t->t_kill = now();
                p->deadline = t->t_kill + 30; /* the kernel's work: no limit of ours */
            } else
                t->kill_gone = 1;
        }
        if (t->at_term && !t->t_term && !t->term_gone && tn >= t->at_term) {
            drain(t, t->victim, tn);
            if (alive(v) && !v->t_term && !in_kernel_exit(v->pid)) {
                t->term_phase = v->phase;
                kill(v->pid, SIGTERM);
                t->t_term = v->t_term = now();
                v->term_phase = v->phase;
                v->deadline = t->t_term + END_SEC;
                v->soft = 0;
            } else
                t->term_gone = 1;
        }
        /* as torchrun: the ranks still running 2 s after the job's end get SIGTERM, once they
         * have reported the error (one that has not is judged overdue below) */
        for (int r = 0; c->term_rest && t->dead >= 0 && r < t->np; r++) {
            rk_t *k = &t->r[r];
            if (r == t->dead || k->t_term || k->overdue || tn <= t->t_fail + END_SEC) continue;
            drain(t, r, tn);
            if ((!k->t[P_ERR] && k->phase < P_EXIT) || !alive(k) || in_kernel_exit(k->pid))
                continue;
            k->term_phase = k->phase;
            kill(k->pid, SIGTERM);
            k->t_term = now();
            k->rest = 1;
            k->deadline = k->t_term + END_SEC;
            k->soft = 0;
        }
        if (t->dead >= 0)
            for (int r = 0; r < t->np; r++) {
                rk_t *k = &t->r[r];
                if (r == t->dead || k->deadline) continue;
                if (t->moment == M_INIT) { /* a rank that never joined is named at the timeout */
                    k->soft = t->t_fail + END_SEC;
                    k->deadline = t->t_fail + c->timeout + 10;
                } else
                    k->deadline = t->t_fail + END_SEC;
            }
        /* hangs */
        for (int r = 0; r < t->np; r++) {
            rk_t *k = &t->r[r];
            if (k->ended || k->overdue) continue;
            if (tn > watchdog || (k->deadline && tn > k->deadline)) {
                if (tn <= watchdog && in_kernel_exit(k->pid)) { /* ended: being reaped */
                    if (!k->t_exiting) k->t_exiting = tn;
                    continue;
                }
                k->overdue = 1;
                thread_states(k->pid, k->threads, sizeof(k->threads));
                const char *who = k->t_term      ? "its SIGTERM"
                                  : t->dead >= 0 ? "the job's end"
                                                 : "the trial's start";
                double since = k->t_term ? k->t_term : t->dead >= 0 ? t->t_fail : t->start;
                k->why_due = who;
                k->since = since;
                k->load = loadavg();
                fprintf(stderr,
                        "trial %d: rank %d (pid %d) of %d still running %.1f s after %s (moment "
                        "%s, SIGTERM to rank %d%s%s, its last line was \"%s\"; load average "
                        "%.1f): taking its stack; SIGKILL unless it ends within %.0f s after\n",
                        t->k, r, (int)k->pid, t->np, tn - since, who, mom_name[t->moment],
                        t->victim, t->t_term ? " in its phase " : "",
                        t->t_term ? ph_name[t->term_phase] : " not sent", ph_name[k->phase],
                        k->load, GRACE_SEC);
                start_gdb(c, k, r);
            } else if (k->soft && !k->late && tn > k->soft) {
                k->late = 1;
                start_gdb(c, k, r);
            }
        }
        /* wait for a line or the next due time */
        struct pollfd pf[MAXR];
        int idx[MAXR], n = 0;
        for (int r = 0; r < t->np; r++)
            if (t->r[r].rfd >= 0) {
                pf[n].fd = t->r[r].rfd;
                pf[n].events = POLLIN;
                idx[n++] = r;
            }
        double due = tn + 0.005;
        if (t->at_term && !t->t_term && !t->term_gone && t->at_term < due) due = t->at_term;
        if (t->at_kill && !t->t_kill && !t->kill_gone && t->at_kill < due) due = t->at_kill;
        double wait = due - tn;
        if (wait < 0) wait = 0;
        struct timespec ts = {(time_t)wait, (long)((wait - (double)(time_t)wait) * 1e9)};
        if (n)
            ppoll(pf, (nfds_t)n, &ts, NULL);
        else
            nanosleep(&ts, NULL);
        double tl = now();
        for (int i = 0; i < n; i++)
            if (pf[i].revents) drain(t, idx[i], tl);
    }
}

/* 1 if msg names "rank v" (not "rank 12" for v = 1). */
static int names_rank(const char *msg, int v) {
    char want[24];
    int n = snprintf(want, sizeof(want), "rank %d", v);
    for (const char *p = strstr(msg, want); p; p = strstr(p + 1, want))
        if (p[n] < '0' || p[n] > '9') return 1;
    return 0;
}

static void count_owner(stats_t *st, const char *owner) {
    if (!*owner) return;
    for (int i = 0; i < 4; i++) {
        if (!st->owner_n[i]) snprintf(st->owners[i], sizeof(st->owners[i]), "%s", owner);
        if (!strcmp(st->owners[i], owner)) {
            st->owner_n[i]++;
            return;
        }
    }
}

static void describe(char *out, size_t len, int st) {
    if (WIFSIGNALED(st))
        snprintf(out, len, "killed by SIG%s",
                 sigabbrev_np(WTERMSIG(st)) ? sigabbrev_np(WTERMSIG(st)) : "?");
    else
        snprintf(out, len, "exit %d", WEXITSTATUS(st));
}

typedef struct {
    const cfg_t *c;
    const trial_t *t;
    stats_t *st;
    int printed, bad;
} verdict_t;

static void head(verdict_t *vd) {
    const trial_t *t = vd->t;
    if (vd->printed) return;
    vd->printed = 1;
    char what[200] = "", ref[64];
    if (t->moment == M_EXIT)
        snprintf(what, sizeof(what), "rank %d SIGKILLed in iteration %d (its phase %s); ", t->peer,
                 t->r[t->peer].want_iter,
                 t->t_kill      ? ph_name[t->kill_phase]
                 : t->kill_gone ? "none: it had ended"
                                : "none: not sent");
    if (t->moment == M_COLL)
        snprintf(ref, sizeof(ref), "the start of its iteration %d", t->r[t->victim].want_iter);
    else
        snprintf(ref, sizeof(ref), "its \"%s\" line", t->moment == M_EXIT ? "err" : "init");
    fprintf(vd->bad ? stderr : stdout,
            "trial %d: np %d, moment %s: %sSIGTERM to rank %d %.1f ms after %s: it was in its "
            "phase %s\n",
            t->k, t->np, mom_name[t->moment], what, t->victim, t->d_term * 1e3, ref,
            t->t_term      ? ph_name[t->term_phase]
            : t->term_gone ? "none, it had ended"
                           : "none, not sent");
}

static void rank_fail(verdict_t *vd, int r, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void rank_fail(verdict_t *vd, int r, const char *fmt, ...) {
    vd->bad = 1;
    head(vd);
    const rk_t *k = &vd->t->r[r];
    char st[64];
    describe(st, sizeof(st), k->status);
    fprintf(stderr, "  rank %d (pid %d): FAIL: ", r, (int)k->pid);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, " [%s, last line \"%s\"%s%s]\n", st, ph_name[k->phase],
            k->err[0] ? ", error: " : "", k->err);
    if (k->owner[0]) fprintf(stderr, "    SIGTERM handler in this rank: %s\n", k->owner);
    if (k->threads[0])
        fprintf(stderr, "    its threads when overdue (tid state wchan): %s\n", k->threads);
    show_stack(vd->c, r);
    show_log(vd->c, r);
}

/* Judges the trial; returns 1 if it failed. */
static int judge(const cfg_t *c, const trial_t *t, stats_t *st) {
    verdict_t vd = {.c = c, .t = t, .st = st, .printed = 0, .bad = 0};
    int v = t->victim, d = t->dead;
    int unjoined = 0, unjoined_unnamed = 0, root_blamed = 0, root_late = 0, noid = 0; /* init */
    if (t->moment < NMOM) st->by_moment[t->moment]++;
    if (t->term_gone) st->gone_before++;
    if (d < 0) st->no_fault++;
    for (int r = 0; r < t->np; r++) {
        const rk_t *k = &t->r[r];
        count_owner(st, k->owner);
        int sig = WIFSIGNALED(k->status) ? WTERMSIG(k->status) : 0;
        int code = WIFEXITED(k->status) ? WEXITSTATUS(k->status) : -1;
        if (k->t_term) {
            st->term_sent++;
            st->landed[k->term_phase]++;
            st->rest_sent += k->rest;
        }
        if (k->overdue) {
            const char *limit = k->why_due;
            if (k->killed) {
                st->hung++;
                rank_fail(&vd, r,
                          "hung: still running at its deadline (after %s) and %.0f s after its "
                          "stack was taken: SIGKILLed",
                          limit, GRACE_SEC);
            } else {
                st->late++;
                st->slow++;
                rank_fail(&vd, r,
                          "too slow: still running at its deadline (after %s); it ended by itself "
                          "%.1f s after it (load average %.1f then; not hung, but past the limit)",
                          limit, k->t_end - k->since, k->load);
            }
            continue;
        }
        if (k->wrong || code == 5) {
            st->wrong++;
            rank_fail(&vd, r, "wrong results");
            continue;
        }
        double end = k->t_exiting ? k->t_exiting : k->t_end; /* user code's end */
        if (k->t_exiting) {
            st->reaped_late++;
            if (k->t_end - k->t_exiting > st->worst_reap) st->worst_reap = k->t_end - k->t_exiting;
        }
        if (k->t_term) { /* a SIGTERMed rank */
            double dt = end - k->t_term;
            if (dt > st->worst_term) st->worst_term = dt;
            if (sig == SIGTERM)
                st->term_died++;
            else if ((code == 0 || code == 3 || code == 4) &&
                     (k->phase == P_DONE || !strcmp(k->owner, "default")))
                st->term_own_exit++; /* it had finished main, or (SIGTERM's action being the
                                        default) had called exit, before the signal came */
            else if (code >= 0) {
                st->caught++;
                rank_fail(&vd, r,
                          "SIGTERM did not kill it: it exited %d after SIGTERM in its phase %s (a "
                          "SIGTERM handler ran exit(); handler: %s)",
                          code, ph_name[k->term_phase],
                          k->owner[0] ? k->owner : "not reported: it died before \"coll\"");
            } else {
                st->bad_status++;
                rank_fail(&vd, r, "ended by signal %d, not by its SIGTERM", sig);
            }
            /* the victim of init, coll: nothing to report; otherwise it had reported the
             * death of rank d first (exit moment, torchrun's SIGTERM): judged below too */
            if (r == v && t->moment != M_EXIT) continue;
            if (!k->t[P_ERR]) continue;
        }
        if (r == d && r == t->peer && t->t_kill) {
            if (sig != SIGKILL && !(code == 0 && k->phase == P_DONE)) { /* (it had finished) */
                st->bad_status++;
                rank_fail(&vd, r, "SIGKILLed, but not killed by SIGKILL");
            }
            continue;
        }
        if (r == d) continue;
        /* a rank that must report the death of rank d (or succeed when there was none) */
        int ended_by_term = k->t_term != 0;
        if (d < 0) {
            if (code != 0 && !ended_by_term) {
                st->bad_status++;
                rank_fail(&vd, r, "failed although no rank died");
            }
            continue;
        }
        double dt = end - t->t_fail;
        if (!ended_by_term && dt > st->worst_fail && !k->late) st->worst_fail = dt;
        if (code == 0 && !ended_by_term) {
            if (t->dead_phase < P_LAST) {
                st->bad_success++;
                rank_fail(&vd, r,
                          "succeeded although rank %d died in its phase %s, before its last "
                          "collective",
                          d, ph_name[t->dead_phase]);
            }
            continue;
        }
        if (code == 4 && !ended_by_term) {
            if (d == 0 && !t->r[0].uid)
                noid = 1;
            else {
                st->bad_status++;
                rank_fail(&vd, r, "no unique id, although rank 0 made one");
            }
            continue;
        }
        if (code != 3 && !ended_by_term) {
            st->bad_status++;
            rank_fail(&vd, r, "unexpected end after rank %d's death (want exit 3 with an error)",
                      d);
            continue;
        }
        /* it reported an error */
        int named = names_rank(k->err, d), limits = t->moment == M_INIT && !c->strict_init;
        if (k->code != podcclRemoteError && k->code != podcclTimeout) {
            st->bad_code++;
            rank_fail(&vd, r, "error code %d: want podcclRemoteError or podcclTimeout", k->code);
        } else if (k->t[P_ERR] < (t->t_kill ? t->t_kill : t->t_term) - 0.001) {
            st->early++;
            rank_fail(&vd, r, "error before rank %d was signalled", d);
        } else if (limits && !named && d == 0 && strstr(k->err, "root")) {
            root_blamed = 1; /* the rendezvous root is rank 0's: "the root" is rank 0 */
            root_late |= k->late;
        } else if (limits && k->late && k->code == podcclTimeout &&
                   (named ? strstr(k->err, "never joined") != NULL
                          : strstr(k->err, "has not completed the rendezvous") ||
                                strstr(k->err, "imed out"))) {
            if (named)
                unjoined = 1; /* dead before its hello reached the root: named at the timeout */
            else
                unjoined_unnamed = 1; /* rank 0's own deadline came before its root's answer */
        } else if (!named) {
            st->not_named++;
            rank_fail(&vd, r, "its error does not name rank %d", d);
        } else if (k->late && !ended_by_term) {
            st->late++;
            rank_fail(&vd, r, "ended %.1f s after rank %d's death (limit %.0f s)", dt, d, END_SEC);
        }
    }
    st->unjoined += unjoined;
    st->unjoined_unnamed += unjoined_unnamed;
    st->root_blamed += root_blamed;
    st->root_late += root_late;
    st->noid += noid;
    if (c->verbose && !vd.printed) head(&vd);
    if (c->verbose)
        for (int r = 0; r < t->np; r++) {
            char s[64];
            describe(s, sizeof(s), t->r[r].status);
            char term[64] = "";
            if (t->r[r].t_term)
                snprintf(term, sizeof(term), " (SIGTERM%s in its phase %s)",
                         t->r[r].rest ? " 2 s after the job's end" : "",
                         ph_name[t->r[r].term_phase]);
            printf("  rank %d: %s after %.3f s%s, last line %s%s%s\n", r, s,
                   t->r[r].t_end - t->start, term, ph_name[t->r[r].phase],
                   t->r[r].err[0] ? ": " : "", t->r[r].err);
        }
    st->trials++;
    st->failed += vd.bad;
    return vd.bad;
}

/* PSM writes *.btr files into the working folder of a process it caught a signal in. */
static void clean_dir(const cfg_t *c, stats_t *st) {
    DIR *d = opendir(c->dir);
    struct dirent *e;
    char path[PATH_MAX];
    while (d && (e = readdir(d))) {
        size_t n = strlen(e->d_name);
        if (n > 4 && !strcmp(e->d_name + n - 4, ".btr")) st->btr++;
        if (e->d_name[0] == '.') continue;
        snprintf(path, sizeof(path), "%s/%s", c->dir, e->d_name);
        unlink(path);
    }
    if (d) closedir(d);
}

/* The running estimates (moving averages) from the ranks of a trial that no signal disturbed:
 * init, one iteration, from the error to the end (ranks that reported a death and ended by
 * themselves). The first trial of each np uses defaults. */
static void learn(cfg_t *c, const trial_t *t) {
    double init = 0, iter = 0, ex = 0;
    double first = t->t_kill ? t->t_kill : t->t_term ? t->t_term : 1e300;
    for (int r = 0; r < t->np; r++) {
        const rk_t *k = &t->r[r];
        if (k->t[P_COLL] && k->t[P_COLL] < first && k->t[P_COLL] - k->t[P_INIT] > init)
            init = k->t[P_COLL] - k->t[P_INIT];
        int n = 0; /* iterations done before the first signal */
        while (n + 1 < MAXIT && k->t_it[n + 1] && k->t_it[n + 1] < first) n++;
        if (n >= 1 && (k->t_it[n] - k->t_it[0]) / n > iter) iter = (k->t_it[n] - k->t_it[0]) / n;
        if (k->t[P_ERR] && !k->t_term && !k->overdue && WIFEXITED(k->status) &&
            k->t_end - k->t[P_ERR] > ex)
            ex = k->t_end - k->t[P_ERR];
    }
    double *e[] = {&c->est_init[t->np], &c->est_iter[t->np], &c->est_exit[t->np]};
    double got[] = {init, iter, ex};
    for (int i = 0; i < 3; i++)
        if (got[i] > 0) *e[i] = *e[i] ? 0.5 * *e[i] + 0.5 * got[i] : got[i];
}

/* 1 if every rank failed init because this build has no transport for the configuration. */
static int no_transport(const trial_t *t) {
    for (int r = 0; r < t->np; r++)
        if (!strstr(t->r[r].err, "PODCCL_NET=") || !strstr(t->r[r].err, "this build has")) return 0;
    return 1;
}

static int run_config(cfg_t *c, int trials, unsigned seed) {
    stats_t st = {0};
    double t0 = now();
    srand(seed);
    memset(c->est_init, 0, sizeof(c->est_init)); /* each configuration learns its own */
    memset(c->est_iter, 0, sizeof(c->est_iter));
    memset(c->est_exit, 0, sizeof(c->est_exit));
    printf("test_sigterm: %s ranks, %s: seed %u, %d trials, PODCCL_TIMEOUT=%d, IPATH_NO_BACKTRACE "
           "and HFI_NO_BACKTRACE %s; load average %.1f\n",
           c->script ? "torch" : "C", c->net, seed, trials, c->timeout,
           c->psm_quiet ? "=1 (--psm-quiet: the control)" : "unset", loadavg());
    fflush(stdout);
    for (int k = 0; k < trials; k++) {
        trial_t t = {.k = k};
        t.moment = c->moments[k % c->nmoments];
        t.np = c->nps[(k / c->nmoments) % c->nnps];
        t.victim = rand() % t.np;
        t.peer = (t.victim + 1 + rand() % (t.np - 1)) % t.np;
        t.u_term = urand();
        t.u_kill = urand();
        run_trial(c, &t);
        if (k == 0 && no_transport(&t)) {
            printf("test_sigterm: %s: SKIP: %s\n", c->net, t.r[0].err);
            clean_dir(c, &st);
            return 77;
        }
        judge(c, &t, &st);
        learn(c, &t);
        clean_dir(c, &st);
        fflush(stdout);
    }
    const char *cf = c->script ? "torch, " : "";
    printf("test_sigterm: %s%s: %d trials in %.0f s, load average now %.1f (moments: init %d, coll "
           "%d, exit %d); SIGTERM "
           "sent %d times (%d of them as torchrun does, 2 s after the job's end), landed in the "
           "rank's phase: init %d, coll %d, last %d, err %d, exit %d, "
           "done %d; target had already ended %d; trials where no rank died %d\n",
           cf, c->net, st.trials, now() - t0, loadavg(), st.by_moment[M_INIT], st.by_moment[M_COLL],
           st.by_moment[M_EXIT], st.term_sent, st.rest_sent, st.landed[P_INIT], st.landed[P_COLL],
           st.landed[P_LAST], st.landed[P_ERR], st.landed[P_EXIT], st.landed[P_DONE],
           st.gone_before, st.no_fault);
    printf("test_sigterm: %s%s: SIGTERMed ranks: %d died by SIGTERM, %d had finished first, %d "
           "exited from a SIGTERM handler; slowest end after SIGTERM %.3f s, after the job's end "
           "%.3f s (limit %.0f s)\n",
           cf, c->net, st.term_died, st.term_own_exit, st.caught, st.worst_term, st.worst_fail,
           END_SEC);
    if (st.reaped_late)
        printf("test_sigterm: %s%s: %d ranks were in the kernel's exit path by their deadline "
               "(no user code left to run: not failures) and reaped up to %.1f s later\n",
               cf, c->net, st.reaped_late, st.worst_reap);
    printf("test_sigterm: %s%s: typical lengths (moving averages):", cf, c->net);
    for (int i = 0; i < c->nnps && i < (trials + c->nmoments - 1) / c->nmoments; i++) {
        int np = c->nps[i];
        printf("%s np %d: init %.0f ms, iteration %.1f ms, error to end %.0f ms", i ? ";" : "", np,
               c->est_init[np] * 1e3, c->est_iter[np] * 1e3, c->est_exit[np] * 1e3);
    }
    printf("\n");
    printf("test_sigterm: %s%s: SIGTERM handler seen in ranks after init:", cf, c->net);
    for (int i = 0; i < 4 && st.owner_n[i]; i++)
        printf("%s %s (%d ranks)", i ? "," : "", st.owners[i], st.owner_n[i]);
    printf("%s; *.btr files (PSM backtraces) %d\n", st.owner_n[0] ? "" : " none reported", st.btr);
    printf("test_sigterm: %s%s: known limits of init, accepted%s, in trials: a rank dead before "
           "its hello reached the root, named at PODCCL_TIMEOUT (\"never joined\") %d, not named "
           "(rank 0's own deadline came before its root's answer) %d; survivors of rank 0 blaming "
           "\"the root\" %d (at PODCCL_TIMEOUT: %d); rank 0 dead before its unique id %d\n",
           cf, c->net, c->strict_init ? " (none: --strict-init)" : "", st.unjoined,
           st.unjoined_unnamed, st.root_blamed, st.root_late, st.noid);
    printf("test_sigterm: %s%s: failures: %d trials; hung %d, SIGTERM caught by a handler %d, late "
           "%d, early %d, dead rank not named %d, wrong code %d, wrong exit %d, wrong success %d, "
           "wrong results %d; of the late, too slow but not hung: %d\n",
           cf, c->net, st.failed, st.hung, st.caught, st.late, st.early, st.not_named, st.bad_code,
           st.bad_status, st.bad_success, st.wrong, st.slow);
    printf("test_sigterm: %s%s: %s\n", cf, c->net, st.failed ? "FAIL" : "PASS");
    fflush(stdout);
    return st.failed != 0;
}

static int on_path(const char *prog) {
    const char *p = getenv("PATH");
    char buf[PATH_MAX];
    while (p && *p) {
        const char *e = strchr(p, ':');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        snprintf(buf, sizeof(buf), "%.*s/%s", (int)n, p, prog);
        if (access(buf, X_OK) == 0) return 1;
        p = e ? e + 1 : NULL;
    }
    return 0;
}

static int usage(void) {
    fprintf(
        stderr,
        "usage: test_sigterm [-n TRIALS] [-s SEED] [-p init|coll|exit]... [--net shm|ofi|shm,ofi] "
        "[-t PODCCL_TIMEOUT] [--np N] [-v] [--psm-quiet] [--torch SCRIPT [--python PY]]\n");
    return 2;
}

int main(int argc, char **argv) {
    if (argc == 5 && !strcmp(argv[1], "--rank"))
        return rank_main(atoi(argv[2]), atoi(argv[3]), atoi(argv[4]));
    cfg_t cfg = {.timeout = 30, .iters = 11, .python = "/usr/bin/python3"};
    int trials = -1, np = 0;
    unsigned seed = (unsigned)time(NULL) ^ (unsigned)getpid();
    const char *nets = "shm,ofi";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-v"))
            cfg.verbose = 1;
        else if (!strcmp(a, "--psm-quiet"))
            cfg.psm_quiet = 1;
        else if (!strcmp(a, "--strict-init"))
            cfg.strict_init = 1;
        else if (!strcmp(a, "--term-rest"))
            cfg.term_rest = 1;
        else if (!strcmp(a, "--no-term-rest"))
            cfg.term_rest = -1;
        else if (!val)
            return usage();
        else if (!strcmp(a, "-n"))
            trials = atoi(val), i++;
        else if (!strcmp(a, "-s"))
            seed = (unsigned)strtoul(val, NULL, 10), i++;
        else if (!strcmp(a, "-t"))
            cfg.timeout = atoi(val), i++;
        else if (!strcmp(a, "--np"))
            np = atoi(val), i++;
        else if (!strcmp(a, "--net"))
            nets = val, i++;
        else if (!strcmp(a, "--torch"))
            cfg.script = val, i++;
        else if (!strcmp(a, "--python"))
            cfg.python = val, i++;
        else if (!strcmp(a, "-p")) {
            int m = 0;
            while (m < NMOM && strcmp(mom_name[m], val)) m++;
            if (m == NMOM) return usage();
            cfg.moments[cfg.nmoments++ % NMOM] = m;
            i++;
        } else
            return usage();
    }
    if (np && (np < 2 || np > MAXR)) return fprintf(stderr, "--np: 2 to %d\n", MAXR), 2;
    if (!cfg.nmoments) {
        if (!cfg.script) cfg.moments[cfg.nmoments++] = M_INIT;
        cfg.moments[cfg.nmoments++] = M_COLL;
        cfg.moments[cfg.nmoments++] = M_EXIT;
    }
    if (np)
        cfg.nps[cfg.nnps++] = np;
    else
        for (int n = 2; n <= (cfg.script ? 3 : 4); n++) cfg.nps[cfg.nnps++] = n;
    if (trials < 0) trials = cfg.script ? 2 : 9;
    if (!cfg.term_rest) cfg.term_rest = cfg.script != NULL;
    cfg.term_rest = cfg.term_rest > 0;
    if (cfg.script) {
        cfg.iters = 60;
        if (access(cfg.script, R_OK)) return perror(cfg.script), 2;
    }
    ssize_t n = readlink("/proc/self/exe", cfg.self, sizeof(cfg.self) - 1);
    if (n <= 0) return perror("/proc/self/exe"), 1;
    cfg.self[n] = 0;
    cfg.have_gdb = on_path("gdb");
    snprintf(cfg.dir, sizeof(cfg.dir), "/tmp/test_sigterm.XXXXXX");
    if (!mkdtemp(cfg.dir)) return perror("mkdtemp"), 1;
    signal(SIGPIPE, SIG_IGN);
    printf("test_sigterm: seed %u (-s %u replays it), %d trials per configuration, moments", seed,
           seed, trials);
    for (int m = 0; m < cfg.nmoments; m++) printf(" %s", mom_name[cfg.moments[m]]);
    printf(", gdb %s\n", cfg.have_gdb ? "found (stacks of hung ranks)" : "not found (no stacks)");
    int failed = 0, ran = 0;
    char list[64];
    snprintf(list, sizeof(list), "%s", nets);
    for (char *save, *net = strtok_r(list, ",", &save); net; net = strtok_r(NULL, ",", &save)) {
        if (strcmp(net, "shm") && strcmp(net, "ofi")) return usage();
        cfg.net = net;
        int rc = run_config(&cfg, trials, seed);
        ran += rc != 77;
        failed |= rc == 1;
    }
    rmdir(cfg.dir);
    if (!ran) return 77;
    printf("test_sigterm: %s\n", failed ? "FAIL" : "PASS");
    return failed;
}
