/* Random kills: every survivor must return an error naming the dead rank within 2 s, nobody may
 * hang, and nothing may be left in /dev/shm (issue 9, target "random kills").
 *
 * Each trial forks np ranks (np cycles through 2, 3, 4, 8; rank 0 creates the unique id, so the
 * rendezvous root dies with it). Ranks run init, a loop of checked collectives (all-reduce of
 * several sizes, so that the one-shot, FIFO and single-copy paths all run, and broadcast), then
 * destroy, writing their phase and, at the end, a report (first error code, its time, the
 * message) into shared memory. The parent picks a victim and a phase (init, collectives,
 * destroy), waits until the victim enters it, sleeps a random part of that phase's length
 * (measured by one unkilled run per np first) and sends SIGKILL. It then judges every survivor:
 *   - an error must be podcclRemoteError or podcclTimeout, name "rank <victim>", and come at
 *     most LIMIT_SEC after the kill (never before it);
 *   - success is accepted only if the victim died after its part of the last collective (in
 *     destroy, or in the last iteration), and the results were right;
 *   - a survivor still running PODCCL_TIMEOUT + 10 s after the kill is hung (then killed);
 *   - no /dev/shm entry may carry the pid of a rank of the trial, during (each rank looks after
 *     init) or after the trial.
 * A kill that lands before the victim's hello reached the root cannot be told apart from a rank
 * that has not started: the root names the missing rank at its deadline (PODCCL_TIMEOUT). Those
 * trials (init kill, Timeout naming the victim, "never joined") are counted on their own line,
 * with how long the victim had been in init, and are not failures. So are survivors of a rank 0
 * killed in init that blame "the root" without naming rank 0 (the rendezvous service does not
 * know which rank its process is), unless --strict-root.
 *
 * Usage: test_chaos [-n TRIALS] [-s SEED] [-p init|coll|destroy] [-v] [--strict-root]; -p kills
 * in that phase only, -v prints every survivor's report. make check runs 20 trials; the full
 * target is `tests/test_chaos -n 200`. Exit status 0 iff no trial failed. */
#include <dirent.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "podccl.h"

#define MAXR 8
#define ITERS                                                                                      \
    11 /* the last is an all-reduce: a survivor may finish a broadcast the victim had no part in   \
        */
#define LIMIT_SEC 2.0
#define TIMEOUT_SEC 5
#define HANG_SEC (TIMEOUT_SEC + 10)
#define SMALL 1003
#define MEDIUM (64 * 1024)
#define LARGE (1 << 20)

enum { P_START, P_INIT, P_COLL, P_DESTROY, P_DONE, NPHASE };
static const char *const phase_name[] = {"start", "init", "coll", "destroy", "done"};

typedef struct {
    _Atomic int phase, iter;
    _Atomic double t_phase[NPHASE]; /* when the rank entered each phase */
    int done;                       /* report below is complete */
    int rc;                         /* first error, podcclSuccess if none */
    int err_phase;                  /* phase it came in */
    double t_err;
    int wrong;     /* wrong results seen */
    int shm_named; /* after init, this rank maps a file of /dev/shm (a named segment) */
    char msg[400];
} rank_state;

typedef struct {
    atomic_int id_ready; /* 1 valid, -1 never coming */
    podcclUniqueId id;
    rank_state r[MAXR];
} shared_t;

static shared_t *sh;
static int verbose, strict_root, only_phase = -1;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void nap_us(long us) {
    struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
    nanosleep(&ts, NULL);
}

static void enter(int rank, int phase) {
    atomic_store(&sh->r[rank].t_phase[phase], now());
    atomic_store(&sh->r[rank].phase, phase);
}

/* 1 if name contains pid as a whole number. */
static int names_pid(const char *name, int pid) {
    char want[16];
    int n = snprintf(want, sizeof(want), "%d", pid);
    for (const char *p = strstr(name, want); p; p = strstr(p + 1, want))
        if ((p == name || p[-1] < '0' || p[-1] > '9') && (p[n] < '0' || p[n] > '9')) return 1;
    return 0;
}

/* Number of /dev/shm entries naming one of pids. */
static int shm_entries(const int *pids, int n, int report) {
    DIR *d = opendir("/dev/shm");
    struct dirent *e;
    int k = 0;
    while (d && (e = readdir(d)))
        for (int i = 0; i < n; i++)
            if (names_pid(e->d_name, pids[i])) {
                if (report) fprintf(stderr, "test_chaos: /dev/shm/%s left behind\n", e->d_name);
                k++;
            }
    if (d) closedir(d);
    return k;
}

/* 1 if this process maps a file of /dev/shm (deleted or not): a named segment existed. */
static int maps_dev_shm(void) {
    FILE *f = fopen("/proc/self/maps", "r");
    char line[1024];
    int found = 0;
    while (f && !found && fgets(line, sizeof(line), f)) found = strstr(line, " /dev/shm/") != NULL;
    if (f) fclose(f);
    return found;
}

static void fail_report(rank_state *s, int phase, podcclResult_t rc, podcclComm_t comm) {
    if (s->rc != podcclSuccess) return;
    s->t_err = now();
    s->rc = rc;
    s->err_phase = phase;
    snprintf(s->msg, sizeof(s->msg), "%s", podcclGetLastError(comm));
}

/* One checked collective; returns its code. */
static podcclResult_t one_coll(podcclComm_t comm, int rank, int n, int it, float *buf,
                               rank_state *s) {
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
            s->wrong++;
            break;
        }
    return rc;
}

/* Rank 0 makes the unique id (so the rendezvous root dies with it); the others wait for it. */
static podcclResult_t get_id(int rank, rank_state *s) {
    if (rank == 0) {
        enter(rank, P_INIT);
        podcclResult_t rc = podcclGetUniqueId(&sh->id);
        atomic_store(&sh->id_ready, rc == podcclSuccess ? 1 : -1);
        return rc;
    }
    while (atomic_load(&sh->id_ready) == 0) nap_us(200);
    if (atomic_load(&sh->id_ready) < 0) return podcclInProgress; /* rank 0 died before */
    enter(rank, P_INIT);
    (void)s;
    return podcclSuccess;
}

static int child(int rank, int n) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    rank_state *s = &sh->r[rank];
    podcclComm_t comm = NULL;
    podcclResult_t rc = get_id(rank, s);
    if (rc == podcclSuccess) rc = podcclCommInitRank(&comm, n, sh->id, rank);
    if (rc != podcclSuccess) {
        if (rc != podcclInProgress) fail_report(s, P_INIT, rc, NULL);
        s->done = 1;
        return 0;
    }
    s->shm_named = maps_dev_shm();
    enter(rank, P_COLL);
    float *buf = malloc(sizeof(float) * LARGE);
    for (int it = 0; it < ITERS && rc == podcclSuccess; it++) {
        atomic_store(&s->iter, it);
        rc = one_coll(comm, rank, n, it, buf, s);
    }
    free(buf);
    if (rc != podcclSuccess) fail_report(s, P_COLL, rc, comm);
    enter(rank, P_DESTROY);
    rc = podcclCommDestroy(comm);
    if (rc != podcclSuccess) fail_report(s, P_DESTROY, rc, NULL);
    enter(rank, P_DONE);
    s->done = 1;
    return 0;
}

typedef struct {
    int np, victim, target;
    double t_kill, in_phase; /* kill time; how long the victim had been in its phase */
    int vphase, viter;       /* where the victim died */
    pid_t pid[MAXR];         /* 0 once reaped */
    int all[MAXR];           /* every rank's pid, for the /dev/shm check */
} trial_t;

typedef struct {
    int trials[NPHASE], survivors, failed_trials, hung, leaks, unjoined, noid, late, bad_name,
        bad_code, bad_success, early, root_unnamed;
    double worst[NPHASE], unjoined_in_init_max;
} stats_t;

static void start_ranks(trial_t *t) {
    memset(sh, 0, sizeof(*sh));
    fflush(NULL);
    for (int r = 0; r < t->np; r++) {
        t->pid[r] = fork();
        if (t->pid[r] == 0) _exit(child(r, t->np));
        t->all[r] = (int)t->pid[r];
    }
}

/* Waits for every rank, killing those alive at deadline. Returns how many were killed. */
static int reap(trial_t *t, double deadline, int *hung_mask) {
    int alive = 0, killed = 0;
    for (int r = 0; r < t->np; r++) alive |= (t->pid[r] > 0) << r;
    while (alive) {
        for (int r = 0; r < t->np; r++)
            if ((alive >> r & 1) && waitpid(t->pid[r], NULL, WNOHANG) == t->pid[r])
                alive &= ~(1 << r);
        if (alive && now() > deadline) {
            for (int r = 0; r < t->np; r++)
                if (alive >> r & 1) {
                    kill(t->pid[r], SIGKILL);
                    waitpid(t->pid[r], NULL, 0);
                    killed++;
                }
            *hung_mask = alive;
            break;
        }
        nap_us(1000);
    }
    return killed;
}

/* The unkilled run: every rank must succeed; returns each phase's length (max over ranks). */
static int calibrate(int np, double len[NPHASE]) {
    trial_t t = {.np = np};
    int hung = 0;
    start_ranks(&t);
    reap(&t, now() + 120, &hung);
    int bad = hung != 0;
    memset(len, 0, sizeof(double) * NPHASE);
    for (int r = 0; r < np; r++) {
        rank_state *s = &sh->r[r];
        if (!s->done || s->rc != podcclSuccess || s->wrong || s->shm_named) {
            fprintf(stderr,
                    "test_chaos: calibration np %d: rank %d: done %d rc %d wrong %d "
                    "shm_named %d: %s\n",
                    np, r, s->done, s->rc, s->wrong, s->shm_named, s->msg);
            bad = 1;
        }
        for (int p = P_INIT; p < P_DONE; p++) {
            double d = s->t_phase[p + 1] - s->t_phase[p];
            if (d > len[p]) len[p] = d;
        }
    }
    return bad;
}

static void kill_victim(trial_t *t, double delay) {
    rank_state *v = &sh->r[t->victim];
    double give_up = now() + 60;
    while (atomic_load(&v->phase) < t->target && !v->done && now() < give_up) nap_us(50);
    nap_us((long)(delay * 1e6));
    t->t_kill = now(); /* errors may not come before this */
    kill(t->pid[t->victim], SIGKILL);
    waitpid(t->pid[t->victim], NULL, 0);
    t->pid[t->victim] = 0;
    t->vphase = atomic_load(&v->phase);
    t->viter = atomic_load(&v->iter);
    t->in_phase = t->t_kill - atomic_load(&v->t_phase[t->vphase]);
    if (t->victim == 0 && atomic_load(&sh->id_ready) == 0) atomic_store(&sh->id_ready, -1);
}

/* 1 if msg names "rank v" (not "rank 12" for v = 1). */
static int names_rank(const char *msg, int v) {
    char want[24];
    int n = snprintf(want, sizeof(want), "rank %d", v);
    for (const char *p = strstr(msg, want); p; p = strstr(p + 1, want))
        if (p[n] < '0' || p[n] > '9') return 1;
    return 0;
}

/* Judges survivor r; returns 1 if it failed the target, -1 for a victim that never joined. */
static int judge(const trial_t *t, int r, stats_t *st, const char *head, int *printed) {
    rank_state *s = &sh->r[r];
    int v = t->victim;
    double dt = s->t_err - t->t_kill;
    const char *why = NULL;
    if (!s->done)
        why = "no report";
    else if (s->wrong)
        why = "wrong results", st->bad_success++;
    else if (s->shm_named)
        why = "it mapped a named /dev/shm segment", st->leaks++;
    else if (s->rc == podcclSuccess) {
        int after_last = t->vphase >= P_DESTROY || (t->vphase == P_COLL && t->viter == ITERS - 1);
        int no_id = t->victim == 0 && sh->id_ready < 0; /* nothing started: nothing to report */
        if (!after_last && !no_id)
            why = "succeeded although the victim died before its part was done", st->bad_success++;
    } else if (s->rc != podcclRemoteError && s->rc != podcclTimeout)
        why = "wrong error code", st->bad_code++;
    else if (!names_rank(s->msg, v) && v == 0 && t->vphase == P_INIT && !strict_root &&
             strstr(s->msg, "root"))
        return st->root_unnamed++, -2; /* blames "the root" (rank 0 hosts it): counted apart */
    else if (!names_rank(s->msg, v))
        why = "message does not name the victim", st->bad_name++;
    else if (dt < 0)
        why = "error before the kill", st->early++;
    else if (dt > LIMIT_SEC) {
        if (t->vphase == P_INIT && s->rc == podcclTimeout && strstr(s->msg, "never joined"))
            return -1; /* the victim never reached the root: counted apart */
        why = "error too late", st->late++;
    }
    if (s->rc != podcclSuccess && dt >= 0 && dt <= LIMIT_SEC && dt > st->worst[t->vphase])
        st->worst[t->vphase] = dt;
    if (why && !*printed) fprintf(stderr, "%s\n", head);
    *printed |= why != NULL;
    if (why || verbose)
        fprintf(why ? stderr : stdout, "  rank %d: %s%s%s (%d) after %.3f s: %s\n", r,
                why ? "FAIL: " : "", why ? why : "", why ? ";" : "", s->rc, s->rc ? dt : 0.0,
                s->rc ? s->msg : "success");
    return why != NULL;
}

static int run_trial(int k, int np, const double len[NPHASE], stats_t *st) {
    static const int targets[] = {P_INIT, P_COLL, P_DESTROY};
    trial_t t = {.np = np, .victim = rand() % np, .target = targets[rand() % 3]};
    if (only_phase >= 0) t.target = only_phase;
    double span = t.target == P_DESTROY ? 0.002 : len[t.target];
    double delay = span * (rand() / (RAND_MAX + 1.0));
    start_ranks(&t);
    kill_victim(&t, delay);
    int hung_mask = 0;
    st->hung += reap(&t, t.t_kill + HANG_SEC, &hung_mask);
    int bad = hung_mask != 0, unjoined = 0;
    int leaks = shm_entries(t.all, np, 1);
    st->leaks += leaks;
    bad |= leaks != 0;
    if (t.victim == 0 && sh->id_ready < 0) st->noid++;
    st->trials[t.vphase]++;
    int printed = verbose || bad;
    char head[160];
    snprintf(head, sizeof(head), "trial %d: np %d, rank %d killed in %s (iter %d, %.1f ms into it)",
             k, np, t.victim, phase_name[t.vphase], t.viter, t.in_phase * 1e3);
    if (printed) fprintf(bad ? stderr : stdout, "%s\n", head);
    for (int r = 0; r < np; r++) {
        if (r == t.victim) continue;
        st->survivors++;
        if (hung_mask >> r & 1) {
            fprintf(stderr, "  rank %d: FAIL: hung (killed %d s after the kill)\n", r, HANG_SEC);
            bad = 1;
            continue;
        }
        int j = judge(&t, r, st, head, &printed);
        if (j == -1) unjoined = 1;
        bad |= j > 0;
    }
    if (unjoined && !bad) {
        st->unjoined++;
        if (t.in_phase > st->unjoined_in_init_max) st->unjoined_in_init_max = t.in_phase;
    }
    st->failed_trials += bad;
    return bad;
}

int main(int argc, char **argv) {
    int trials = 20;
    unsigned seed = (unsigned)time(NULL) ^ (unsigned)getpid();
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-n") && i + 1 < argc)
            trials = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-s") && i + 1 < argc)
            seed = (unsigned)strtoul(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "-v"))
            verbose = 1;
        else if (!strcmp(argv[i], "--strict-root"))
            strict_root = 1;
        else if (!strcmp(argv[i], "-p") && i + 1 < argc) {
            only_phase = P_INIT;
            while (only_phase < P_DONE && strcmp(phase_name[only_phase], argv[i + 1])) only_phase++;
            if (only_phase == P_DONE || only_phase == P_START)
                return fprintf(stderr, "-p init|coll|destroy\n"), 2;
            i++;
        } else {
            fprintf(stderr, "usage: test_chaos [-n TRIALS] [-s SEED] [-p init|coll|destroy] [-v] "
                            "[--strict-root]\n");
            return 2;
        }
    }
    char tbuf[16];
    snprintf(tbuf, sizeof(tbuf), "%d", TIMEOUT_SEC);
    setenv("PODCCL_TIMEOUT", tbuf, 1);
    srand(seed);
    sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (sh == MAP_FAILED) return perror("mmap"), 1;
    static const int nps[] = {2, 3, 4, 8};
    double len[4][NPHASE];
    for (int i = 0; i < 4; i++)
        if (calibrate(nps[i], len[i])) return fprintf(stderr, "test_chaos: FAIL (no kill)\n"), 1;
    printf("test_chaos: seed %u, %d trials, PODCCL_TIMEOUT=%d; unkilled np 8: init %.0f ms, "
           "collectives %.0f ms\n",
           seed, trials, TIMEOUT_SEC, len[3][P_INIT] * 1e3, len[3][P_COLL] * 1e3);
    stats_t st = {0};
    double t0 = now();
    for (int k = 0; k < trials; k++) run_trial(k, nps[k % 4], len[k % 4], &st);
    printf("test_chaos: %d trials in %.0f s (victim died in: init %d, coll %d, destroy %d, after "
           "destroy %d); %d survivors\n",
           trials, now() - t0, st.trials[P_INIT], st.trials[P_COLL], st.trials[P_DESTROY],
           st.trials[P_DONE], st.survivors);
    printf("test_chaos: slowest error naming the victim: init %.3f s, coll %.3f s, destroy %.3f s "
           "(limit %.1f s)\n",
           st.worst[P_INIT], st.worst[P_COLL], st.worst[P_DESTROY], LIMIT_SEC);
    printf("test_chaos: victim never joined (root names it at PODCCL_TIMEOUT): %d trials, victim "
           "at most %.1f ms into init; rank 0 killed before the unique id existed: %d\n",
           st.unjoined, st.unjoined_in_init_max * 1e3, st.noid);
    printf("test_chaos: rank 0 (the rendezvous root) killed in init, survivors blame \"the root\" "
           "without naming rank 0: %d survivors%s\n",
           st.root_unnamed, strict_root ? "" : " (failures with --strict-root)");
    printf("test_chaos: failures: %d trials; hung %d, /dev/shm leftovers %d, late %d, early %d, "
           "victim not named %d, wrong code %d, wrong success %d\n",
           st.failed_trials, st.hung, st.leaks, st.late, st.early, st.bad_name, st.bad_code,
           st.bad_success);
    printf("test_chaos: %s\n", st.failed_trials ? "FAIL" : "PASS");
    return st.failed_trials != 0;
}
