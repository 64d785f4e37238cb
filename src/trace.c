/* The flight recorder (trace.h, docs/flight-recorder.md).
 *
 * Rings are found by communicator pointer in a fixed open-addressing table (a lookup reads one
 * or two words, no lock); communicators are added and removed under trace_lock, which also
 * serialises writing the files and keeps a ring alive while it is written out. SIGUSR1 only
 * posts a semaphore (async-signal-safe); a dump thread, started with the first recorded
 * communicator and blocking every signal, does the writing. */
#include "src/trace.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#if defined(__x86_64__) || defined(__i386__)
#include <x86intrin.h>
#endif

#define TRACE_DEFAULT_OPS 256
#define TRACE_MAX_OPS (1 << 20)
#define TRACE_QUEUE 64      /* queued (not yet started) collectives remembered per communicator */
#define TRACE_NPEER 4       /* peers listed per entry (waited on; sent to / received from) */
#define TRACE_TAB 1024      /* communicators recorded at once; more are not recorded (logged) */
#define TRACE_P2P PC_NCOLL  /* coll of a batch of sends and receives */
#define TRACE_AUTO_DUMPS 16 /* files written per communicator on errors that do not break it */

enum { TS_EMPTY = 0, TS_QUEUED, TS_STARTED, TS_DONE, TS_FAILED, TS_CLAIMED, TS_WRITING };
#define TF_QUEUED 0x100u /* state flag: t_enq holds when it was queued */
#define ST_KIND(st) ((st)&0xffu)
#define ST_ERR(st) ((int)((st) >> 16))

/* Words shared with a reader on another thread go through relaxed atomics (plain moves). */
#define W(x, v) __atomic_store_n(&(x), (v), __ATOMIC_RELAXED)
#define R(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)

/* One operation, 64-byte aligned. The hot path writes only the first cache line (eight plain
 * stores); the rest is written on slow paths and is valid only while its *_seq equals the
 * entry's seq (or, for the batch fields, when the entry is a batch), so nothing needs clearing
 * when a slot is reused. */
typedef struct {
    uint64_t ver;   /* 2 * seq - 1 while the entry of operation seq is written, then 2 * seq;
                       seq counts every collective and send/receive batch, from 1 */
    uint64_t kseq;  /* collectives only (coll_seq), or batches only (p2p_seq), from 1 */
    uint64_t count; /* API count; all-to-all-v: elements this rank sends in all */
    uint64_t sig;   /* coll | dtype << 8 | op << 16 | (uint32_t)root << 32 (sig_pack) */
    const char *algo;
    uint64_t t_start, t_end; /* ticks (trace_ticks); t_end valid once done or failed */
    uint32_t state;          /* TS_* | TF_QUEUED | result << 16 */
    uint32_t pad;
    /* Slow paths. */
    uint64_t t_enq; /* with TF_QUEUED */
    uint64_t step_seq, wait_seq;
    int32_t step, nsteps, nwait, blamed;
    int32_t wait[TRACE_NPEER];
    int32_t nsend, nrecv, more; /* batches: distinct peers listed; more: some were not */
    int32_t speer[TRACE_NPEER], rpeer[TRACE_NPEER];
    uint64_t sbytes, rbytes;
} __attribute__((aligned(64))) trace_ent;
_Static_assert(offsetof(trace_ent, t_enq) == 64, "the hot part of an entry is one cache line");

typedef struct {
    _Atomic uint32_t state;
    uint64_t sig, count, t_enq;
} trace_q;

typedef struct trace_ring {
    /* Written by the thread running an operation (under comm->use_lock); one cache line. */
    uint64_t seq, cseq, pseq;
    uint64_t mask; /* slots - 1: PODCCL_TRACE_OPS rounded up to a power of two */
    _Atomic int nqueued;
    int auto_dumps, broken_dumped;
    /* Set at init. */
    int rank, nranks;
    uint64_t keep; /* PODCCL_TRACE_OPS: the files show this many */
    podcclComm_t comm;
    struct trace_ring *next;
    uint64_t id;
    char name[64];
    char err[512]; /* message of the last failure */
    /* Queued collectives, written by submitting threads. */
    _Atomic uint32_t qhead;
    trace_q q[TRACE_QUEUE];
    trace_ent e[]; /* 64-byte aligned: the ring is allocated so */
} __attribute__((aligned(64))) trace_ring;

int trace_on;

static pthread_mutex_t trace_lock = PTHREAD_MUTEX_INITIALIZER;
static trace_ring *rings; /* every recorded communicator, newest first (trace_lock) */
static struct {
    _Atomic(podcclComm_t) key;
    trace_ring *_Atomic ring;
} tab[TRACE_TAB];
#define TAB_GONE ((podcclComm_t)(uintptr_t)1)
static char trace_dir[4096], trace_host[256];
static int warned_write, warned_full;

/* ---- time ------------------------------------------------------------------------------- */

/* Where the kernel's clock is the TSC, so are ours: rdtsc costs half a vDSO clock_gettime, and
 * ticks become CLOCK_REALTIME microseconds only when a file is written, by the line through
 * (tsc0, rt0) and a pair sampled then. Elsewhere ticks are CLOCK_REALTIME nanoseconds. */
static int use_tsc;
static uint64_t tsc0, rt0;

static uint64_t realtime_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline uint64_t trace_ticks(void) {
#if defined(__x86_64__) || defined(__i386__)
    if (use_tsc) return __rdtsc();
#endif
    return realtime_ns();
}

static void clock_init(void) {
#if defined(__x86_64__) || defined(__i386__)
    char cs[32] = "";
    int fd = open("/sys/devices/system/clocksource/clocksource0/current_clocksource",
                  O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        ssize_t k = read(fd, cs, sizeof(cs) - 1);
        cs[k > 0 ? k : 0] = 0;
        close(fd);
    }
    use_tsc = strncmp(cs, "tsc", 3) == 0 && (cs[3] == '\n' || cs[3] == 0);
    if (use_tsc) {
        rt0 = realtime_ns();
        tsc0 = __rdtsc();
    }
#endif
}

typedef struct {
    double ns_per_tick;
} clockmap;

static clockmap clock_map(void) {
    clockmap m = {1.0};
    if (!use_tsc) return m;
#if defined(__x86_64__) || defined(__i386__)
    uint64_t rt = realtime_ns(), t = __rdtsc();
    if (rt < rt0 + 100000000ull) { /* less than 0.1 s since init: wait for a usable line */
        struct timespec ts = {0, 100000000};
        nanosleep(&ts, NULL);
        rt = realtime_ns(), t = __rdtsc();
    }
    if (t > tsc0 && rt > rt0) m.ns_per_tick = (double)(rt - rt0) / (double)(t - tsc0);
#endif
    return m;
}

/* Microseconds of CLOCK_REALTIME; 0 for "never". */
static long long to_us(const clockmap *m, uint64_t ticks) {
    if (!ticks) return 0;
    if (!use_tsc) return (long long)(ticks / 1000);
    double d = ((double)ticks - (double)tsc0) * m->ns_per_tick;
    return (long long)(((double)rt0 + d) / 1000.0);
}

/* ---- the table of rings ------------------------------------------------------------------ */

static size_t tab_hash(podcclComm_t comm) {
    return (size_t)((((uintptr_t)comm >> 4) * 0x9e3779b97f4a7c15ull) >> 32) & (TRACE_TAB - 1);
}

static __attribute__((noinline)) trace_ring *lookup_probe(podcclComm_t comm, size_t h) {
    for (size_t i = 1; i < TRACE_TAB; i++) {
        size_t j = (h + i) & (TRACE_TAB - 1);
        podcclComm_t k = atomic_load_explicit(&tab[j].key, memory_order_acquire);
        if (k == comm) return atomic_load_explicit(&tab[j].ring, memory_order_relaxed);
        if (!k) return NULL;
    }
    return NULL;
}

/* The first probe inline: with few communicators it is nearly always the one. */
static inline __attribute__((always_inline)) trace_ring *lookup(podcclComm_t comm) {
    size_t h = tab_hash(comm);
    podcclComm_t k = atomic_load_explicit(&tab[h].key, memory_order_acquire);
    if (__builtin_expect(k == comm, 1))
        return atomic_load_explicit(&tab[h].ring, memory_order_relaxed);
    return k ? lookup_probe(comm, h) : NULL;
}

/* Under trace_lock. A removed key stays as TAB_GONE, so other keys' probe chains stay whole. */
static int tab_insert(podcclComm_t comm, trace_ring *r) {
    size_t h = tab_hash(comm);
    for (size_t i = 0; i < TRACE_TAB; i++) {
        size_t j = (h + i) & (TRACE_TAB - 1);
        podcclComm_t k = atomic_load_explicit(&tab[j].key, memory_order_relaxed);
        if (k && k != TAB_GONE) continue;
        atomic_store_explicit(&tab[j].ring, r, memory_order_relaxed);
        atomic_store_explicit(&tab[j].key, comm, memory_order_release);
        return 1;
    }
    return 0;
}

static void tab_remove(podcclComm_t comm) {
    size_t h = tab_hash(comm);
    for (size_t i = 0; i < TRACE_TAB; i++) {
        size_t j = (h + i) & (TRACE_TAB - 1);
        podcclComm_t k = atomic_load_explicit(&tab[j].key, memory_order_relaxed);
        if (!k) return;
        if (k != comm) continue;
        atomic_store_explicit(&tab[j].key, TAB_GONE, memory_order_release);
        atomic_store_explicit(&tab[j].ring, NULL, memory_order_relaxed);
        return;
    }
}

/* ---- SIGUSR1 and the dump thread --------------------------------------------------------- */

static sem_t dump_sem;
static volatile sig_atomic_t dump_wanted;
static struct sigaction old_usr1;
static pid_t thread_pid; /* process that owns the dump thread (a forked child starts its own) */

static void on_sigusr1(int sig, siginfo_t *si, void *uc) {
    int saved = errno;
    dump_wanted = 1;
    sem_post(&dump_sem);
    if (old_usr1.sa_flags & SA_SIGINFO) {
        if (old_usr1.sa_sigaction) old_usr1.sa_sigaction(sig, si, uc);
    } else if (old_usr1.sa_handler != SIG_DFL && old_usr1.sa_handler != SIG_IGN) {
        old_usr1.sa_handler(sig);
    }
    errno = saved;
}

static void *dump_main(void *arg) {
    (void)arg;
    for (;;) {
        while (sem_wait(&dump_sem) != 0 && errno == EINTR) {
        }
        if (dump_wanted) {
            dump_wanted = 0;
            trace_dump("signal");
        }
    }
    return NULL;
}

/* Under trace_lock, at the first recorded communicator of this process. */
static void start_dumper(void) {
    if (thread_pid == getpid()) return;
    int first = thread_pid == 0;
    if (first && sem_init(&dump_sem, 0, 0) != 0) {
        pc_log(PC_LOG_WARN, PC_SUB_ALL, "flight recorder: sem_init: %s; SIGUSR1 dumps disabled",
               strerror(errno));
        return;
    }
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pthread_t t;
    int e = pthread_create(&t, NULL, dump_main, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (e) {
        pc_log(PC_LOG_WARN, PC_SUB_ALL, "flight recorder: no dump thread (%s); SIGUSR1 ignored",
               strerror(e));
        return;
    }
    pthread_detach(t);
    thread_pid = getpid();
    if (!first) return; /* a forked child inherits the handler */
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = on_sigusr1;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR1, &sa, &old_usr1);
}

/* ---- communicators ----------------------------------------------------------------------- */

void trace_comm_init(podcclComm_t comm, const void *id, size_t idlen) {
    const char *dir = pc_param_str("PODCCL_TRACE_DIR");
    if (!dir || !*dir) return;
    long long ops = pc_param_int("PODCCL_TRACE_OPS");
    if (ops <= 0) ops = TRACE_DEFAULT_OPS;
    if (ops > TRACE_MAX_OPS) ops = TRACE_MAX_OPS;
    long long n = 1;
    while (n < ops) n *= 2; /* a slot is seq & mask: no division on the hot path */
    size_t bytes = sizeof(trace_ring) + (size_t)n * sizeof(trace_ent);
    trace_ring *r = aligned_alloc(64, bytes);
    if (r) memset(r, 0, bytes);
    if (!r) {
        pc_log(PC_LOG_WARN, PC_SUB_INIT, "flight recorder: no memory for %lld entries", ops);
        return;
    }
    r->comm = comm, r->rank = comm->rank, r->nranks = comm->nranks;
    r->mask = (uint64_t)n - 1, r->keep = (uint64_t)ops;
    r->id = pc_fnv1a(PC_FNV_OFFSET, id, idlen);
    snprintf(r->name, sizeof(r->name), "%s", comm->name);
    pthread_mutex_lock(&trace_lock);
    if (!trace_on) {
        snprintf(trace_dir, sizeof(trace_dir), "%s", dir);
        if (gethostname(trace_host, sizeof(trace_host) - 1) != 0) strcpy(trace_host, "unknown");
        for (char *c = trace_host; *c; c++)
            if (*c == '/') *c = '_';
        clock_init();
    }
    start_dumper();
    if (!tab_insert(comm, r)) {
        if (!warned_full++)
            pc_log(PC_LOG_WARN, PC_SUB_INIT,
                   "flight recorder: more than %d communicators; rank %d of communicator %016llx "
                   "is not recorded",
                   TRACE_TAB, comm->rank, (unsigned long long)r->id);
        pthread_mutex_unlock(&trace_lock);
        free(r);
        return;
    }
    r->next = rings, rings = r;
    __atomic_store_n(&trace_on, 1, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&trace_lock);
    pc_log(PC_LOG_INFO, PC_SUB_INIT, "flight recorder: %lld operations, files to %s/", ops,
           trace_dir);
}

void trace_comm_free(podcclComm_t comm) {
    if (!__atomic_load_n(&trace_on, __ATOMIC_ACQUIRE)) return;
    pthread_mutex_lock(&trace_lock);
    trace_ring *r = lookup(comm);
    if (r) {
        tab_remove(comm);
        for (trace_ring **p = &rings; *p; p = &(*p)->next)
            if (*p == r) {
                *p = r->next;
                break;
            }
    }
    pthread_mutex_unlock(&trace_lock);
    free(r);
}

/* ---- recording --------------------------------------------------------------------------- */

static int reduces(int coll) {
    return coll == PC_ALLREDUCE || coll == PC_REDUCE || coll == PC_REDUCESCATTER;
}
static int rooted(int coll) {
    return coll == PC_BROADCAST || coll == PC_REDUCE || coll == PC_SEND || coll == PC_RECV;
}

/* The call's identity in one word; op and root are 0xff / -1 where the collective has none. */
static inline uint64_t sig_pack(int coll, int dtype, int op, int root) {
    uint64_t o = reduces(coll) ? (uint64_t)(op & 0xff) : 0xff;
    uint64_t r = rooted(coll) ? (uint64_t)(uint32_t)root : 0xffffffffull;
    return (uint64_t)(coll & 0xff) | (uint64_t)(dtype & 0xff) << 8 | o << 16 | r << 32;
}
#define SIG_COLL(s) ((int)((s)&0xff))
#define SIG_DTYPE(s) ((int)(((s) >> 8) & 0xff))
#define SIG_OP(s) ((((s) >> 16) & 0xff) == 0xff ? -1 : (int)(((s) >> 16) & 0xff))
#define SIG_ROOT(s) ((int)(int32_t)(uint32_t)((s) >> 32))

static inline uint64_t ent_seq(const trace_ent *e) {
    return e->ver / 2;
}

/* The entry of the operation begun last, or NULL. */
static inline trace_ent *ent_cur(trace_ring *r) {
    return r->seq ? &r->e[r->seq & r->mask] : NULL;
}

/* Takes the slot of operation seq = r->seq + 1 and marks it being written. */
static inline trace_ent *ent_open(trace_ring *r, uint64_t *seq) {
    *seq = r->seq + 1;
    trace_ent *e = &r->e[*seq & r->mask];
    W(e->ver, 2 * *seq - 1);
    atomic_thread_fence(memory_order_release);
    W(r->seq, *seq);
    return e;
}

static inline void ent_publish(trace_ent *e, uint64_t seq, uint32_t state) {
    W(e->state, state);
    __atomic_store_n(&e->ver, 2 * seq, __ATOMIC_RELEASE);
}

/* The enqueue time of the oldest queued collective with signature sig (claimed), or 0. */
static __attribute__((noinline, cold)) uint64_t claim_queued(trace_ring *r, uint64_t sig,
                                                             uint64_t count) {
    int best = -1;
    uint64_t bt = 0;
    for (int i = 0; i < TRACE_QUEUE; i++) {
        trace_q *q = &r->q[i];
        if (atomic_load_explicit(&q->state, memory_order_acquire) != TS_QUEUED) continue;
        if (R(q->sig) != sig || R(q->count) != count) continue;
        uint64_t t = R(q->t_enq);
        if (best < 0 || t < bt) best = i, bt = t;
    }
    uint32_t want = TS_QUEUED;
    if (best < 0 || !atomic_compare_exchange_strong(&r->q[best].state, &want, (uint32_t)TS_CLAIMED))
        return 0;
    atomic_fetch_sub(&r->nqueued, 1);
    return bt;
}

static __attribute__((noinline)) uint64_t count_of(const podcclComm_t comm, const pc_args *a) {
    if (a->coll != PC_ALLTOALLV || !a->counts) return a->count;
    uint64_t n = 0;
    for (int p = 0; p < comm->nranks; p++) n += a->counts[p];
    return n;
}

void trace_queued_(podcclComm_t comm, const pc_args *a) {
    if (a->coll == PC_SEND || a->coll == PC_RECV) return; /* batches are recorded as they start */
    trace_ring *r = lookup(comm);
    if (!r) return;
    trace_q *q = &r->q[atomic_fetch_add(&r->qhead, 1) % TRACE_QUEUE];
    if (atomic_exchange(&q->state, (uint32_t)TS_WRITING) == TS_QUEUED)
        atomic_fetch_sub(&r->nqueued, 1); /* more than TRACE_QUEUE queued: forget the oldest */
    W(q->sig, sig_pack(a->coll, (int)a->dtype, (int)a->op, a->root));
    W(q->count, count_of(comm, a)), W(q->t_enq, trace_ticks());
    atomic_store_explicit(&q->state, (uint32_t)TS_QUEUED, memory_order_release);
    atomic_fetch_add(&r->nqueued, 1);
}

void trace_begin_(podcclComm_t comm, const pc_args *a, const pc_algo_desc *algo,
                  podcclResult_t res) {
    trace_ring *r = lookup(comm);
    if (!r) return;
    uint64_t now = trace_ticks(), seq;
    trace_ent *e = ent_open(r, &seq);
    uint64_t sig = sig_pack(a->coll, (int)a->dtype, (int)a->op, a->root), count = a->count;
    if (__builtin_expect(a->coll == PC_ALLTOALLV, 0)) count = count_of(comm, a);
    W(e->kseq, ++r->cseq), W(e->count, count), W(e->sig, sig);
    W(e->algo, algo ? algo->name : NULL), W(e->t_start, now);
    uint32_t state = TS_STARTED;
    if (__builtin_expect(atomic_load_explicit(&r->nqueued, memory_order_relaxed) != 0, 0)) {
        uint64_t t = claim_queued(r, sig, count);
        if (t) W(e->t_enq, t), state |= TF_QUEUED;
    }
    ent_publish(e, seq, state);
    /* pc_run returns at once, without trace_end, when there is nothing to move. */
    if (a->count == 0 && a->coll != PC_ALLTOALLV && a->coll != PC_BARRIER) trace_end_(comm, res);
}

static void add_peer(int32_t *list, int32_t *n, int32_t *more, int peer) {
    for (int i = 0; i < *n; i++)
        if (list[i] == peer) return;
    if (*n < TRACE_NPEER)
        list[(*n)++] = peer;
    else
        *more = 1;
}

void trace_begin_p2p_(podcclComm_t comm, const pc_sched *s) {
    trace_ring *r = lookup(comm);
    if (!r) return;
    uint64_t now = trace_ticks(), seq;
    trace_ent *e = ent_open(r, &seq);
    int32_t sp[TRACE_NPEER], rp[TRACE_NPEER], ns = 0, nr = 0, more = 0;
    uint64_t sb = 0, rb = 0;
    for (int i = 0; i < s->n; i++) {
        const pc_step *st = &s->steps[i];
        if (st->kind == PC_STEP_SEND)
            add_peer(sp, &ns, &more, st->peer), sb += st->bytes;
        else if (st->kind == PC_STEP_RECV || st->kind == PC_STEP_RECV_REDUCE)
            add_peer(rp, &nr, &more, st->peer), rb += st->bytes;
    }
    W(e->kseq, ++r->pseq), W(e->count, 0), W(e->sig, sig_pack(TRACE_P2P, 0xff, 0, 0));
    W(e->algo, "p2p"), W(e->t_start, now);
    for (int i = 0; i < ns; i++) W(e->speer[i], sp[i]);
    for (int i = 0; i < nr; i++) W(e->rpeer[i], rp[i]);
    W(e->nsend, ns), W(e->nrecv, nr), W(e->more, more), W(e->sbytes, sb), W(e->rbytes, rb);
    ent_publish(e, seq, TS_STARTED);
}

/* The entry of the running operation, or NULL. */
static trace_ent *running(podcclComm_t comm) {
    trace_ring *r = lookup(comm);
    trace_ent *e = r ? ent_cur(r) : NULL;
    return e && ST_KIND(R(e->state)) == TS_STARTED ? e : NULL;
}

static void set_wait(trace_ent *e, const int *peers, int npeers) {
    int n = npeers < TRACE_NPEER ? npeers : TRACE_NPEER;
    for (int i = 0; i < n; i++) W(e->wait[i], peers[i]);
    W(e->nwait, n);
    if (R(e->wait_seq) != ent_seq(e)) W(e->blamed, -1), W(e->wait_seq, ent_seq(e));
}

void trace_step_(podcclComm_t comm, int done, int n, const int *peers, int npeers) {
    trace_ent *e = running(comm);
    if (!e) return;
    W(e->step, done), W(e->nsteps, n), W(e->step_seq, ent_seq(e));
    set_wait(e, peers, npeers);
}

void trace_timeout_(podcclComm_t comm, int culprit, const int *peers, int npeers) {
    trace_ent *e = running(comm);
    if (e) {
        if (npeers > 0 || R(e->wait_seq) != ent_seq(e)) set_wait(e, peers, npeers);
        W(e->blamed, culprit);
    }
    trace_dump("timeout");
}

/* An operation failed with res: keep the message, and write the files unless this communicator
 * was broken already (its later calls all fail the same way). */
static __attribute__((noinline, cold)) void end_failed(podcclComm_t comm, trace_ring *r,
                                                       podcclResult_t res) {
    pthread_mutex_lock(&comm->err.lock);
    char msg[sizeof(r->err)];
    size_t len = strnlen(comm->err.last, sizeof(msg) - 1);
    memcpy(msg, comm->err.last, len);
    msg[len] = 0;
    pthread_mutex_unlock(&comm->err.lock);
    for (size_t i = 0; i <= len; i++) W(r->err[i], msg[i]);
    int broken = pc_comm_async(comm) != podcclSuccess;
    if (r->broken_dumped || (!broken && r->auto_dumps >= TRACE_AUTO_DUMPS)) return;
    r->auto_dumps++;
    r->broken_dumped = broken;
    trace_dump(res == podcclTimeout ? "timeout" : "error");
}

void trace_end_(podcclComm_t comm, podcclResult_t res) {
    trace_ring *r = lookup(comm);
    trace_ent *e = r ? ent_cur(r) : NULL;
    if (!e) return;
    uint32_t st = e->state;
    if (ST_KIND(st) != TS_STARTED) return;
    W(e->t_end, trace_ticks());
    st = (st & TF_QUEUED) | (res == podcclSuccess ? TS_DONE : TS_FAILED) | (uint32_t)res << 16;
    __atomic_store_n(&e->state, st, __ATOMIC_RELEASE);
    if (__builtin_expect(res != podcclSuccess && res != podcclInvalidArgument, 0))
        end_failed(comm, r, res);
}

/* ---- writing the file -------------------------------------------------------------------- */

typedef struct {
    char *p;
    size_t len, cap;
    int oom;
} sbuf;

__attribute__((format(printf, 2, 3))) static void put(sbuf *b, const char *fmt, ...) {
    for (int pass = 0; pass < 2 && !b->oom; pass++) {
        va_list ap;
        va_start(ap, fmt);
        int k = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? b->cap - b->len : 0, fmt, ap);
        va_end(ap);
        if (k < 0) {
            b->oom = 1;
            return;
        }
        if (b->p && b->len + (size_t)k < b->cap) {
            b->len += (size_t)k;
            return;
        }
        size_t cap = b->cap ? b->cap : 65536;
        while (cap <= b->len + (size_t)k) cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->p = p, b->cap = cap;
    }
}

/* A JSON string; n bounds the source (it may be a torn copy without its NUL). */
static void put_str(sbuf *b, const char *s, size_t n) {
    put(b, "\"");
    for (size_t i = 0; s && i < n && s[i]; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\')
            put(b, "\\%c", c);
        else if (c < 0x20 || c >= 0x7f)
            put(b, "\\u%04x", c);
        else
            put(b, "%c", c);
    }
    put(b, "\"");
}

static const char *state_name(uint32_t s) {
    switch (s) {
    case TS_QUEUED:
        return "queued";
    case TS_STARTED:
        return "started";
    case TS_DONE:
        return "done";
    case TS_FAILED:
        return "failed";
    default:
        return "unknown";
    }
}

static const char *result_name(int rc) {
    static const char *const names[] = {
        "podcclSuccess",       "podcclUnhandledError",  "podcclSystemError",
        "podcclInternalError", "podcclInvalidArgument", "podcclInvalidUsage",
        "podcclRemoteError",   "podcclInProgress",      "podcclTimeout"};
    return rc >= 0 && rc < (int)(sizeof(names) / sizeof(names[0])) ? names[rc] : "unknown";
}

static void put_peers(sbuf *b, const char *key, const int32_t *p, int n) {
    put(b, ", \"%s\": [", key);
    for (int i = 0; i < n && i < TRACE_NPEER; i++) put(b, "%s%d", i ? ", " : "", p[i]);
    put(b, "]");
}

static void put_times(sbuf *b, const clockmap *m, uint64_t enq, uint64_t start, uint64_t end) {
    put(b, ", \"t_enqueue_us\": %lld", to_us(m, enq));
    if (start) put(b, ", \"t_start_us\": %lld", to_us(m, start));
    if (end) put(b, ", \"t_end_us\": %lld", to_us(m, end));
}

/* "coll", count, dtype, bytes, op and root of a call. */
static void put_call(sbuf *b, uint64_t sig, uint64_t count) {
    int coll = SIG_COLL(sig), op = SIG_OP(sig), root = SIG_ROOT(sig);
    podcclDataType_t dt = (podcclDataType_t)SIG_DTYPE(sig);
    put(b, ", \"coll\": \"%s\", \"count\": %llu, \"dtype\": \"%s\", \"bytes\": %llu",
        algo_coll_name(coll), (unsigned long long)count, pc_type_name(dt),
        (unsigned long long)(count * pc_type_size(dt)));
    if (op >= 0) put(b, ", \"op\": \"%s\"", pc_op_name((podcclRedOp_t)op));
    if (rooted(coll)) put(b, ", \"root\": %d", root);
}

static void put_entry(sbuf *b, const trace_ent *c, const clockmap *m) {
    int p2p = SIG_COLL(c->sig) == TRACE_P2P;
    uint32_t kind = ST_KIND(c->state);
    put(b, "{\"seq\": %llu, \"%s\": %llu", (unsigned long long)ent_seq(c),
        p2p ? "p2p_seq" : "coll_seq", (unsigned long long)c->kseq);
    if (p2p) {
        put(b, ", \"coll\": \"sendrecv\", \"bytes\": %llu",
            (unsigned long long)(c->sbytes + c->rbytes));
        put_peers(b, "send_to", c->speer, c->nsend);
        put_peers(b, "recv_from", c->rpeer, c->nrecv);
        put(b, ", \"send_bytes\": %llu, \"recv_bytes\": %llu%s", (unsigned long long)c->sbytes,
            (unsigned long long)c->rbytes, c->more ? ", \"more_peers\": true" : "");
    } else {
        put_call(b, c->sig, c->count);
    }
    if (c->algo) put(b, ", \"algo\": \"%s\"", c->algo);
    put(b, ", \"state\": \"%s\"", state_name(kind));
    if (kind == TS_FAILED) put(b, ", \"error\": \"%s\"", result_name(ST_ERR(c->state)));
    if (c->step_seq == ent_seq(c) && kind != TS_DONE) /* where it waits, or gave up */
        put(b, ", \"step\": %d, \"steps\": %d", c->step, c->nsteps);
    if (c->wait_seq == ent_seq(c) && kind != TS_DONE) {
        put_peers(b, "waiting_on", c->wait, c->nwait);
        if (c->blamed >= 0) put(b, ", \"blamed\": %d", c->blamed);
    }
    int ended = kind == TS_DONE || kind == TS_FAILED;
    put_times(b, m, c->state & TF_QUEUED ? c->t_enq : c->t_start, c->t_start, ended ? c->t_end : 0);
    put(b, "}");
}

static void put_ring(sbuf *b, trace_ring *r, const clockmap *m) {
    put(b, "    {\"comm_id\": \"%016llx\", \"name\": ", (unsigned long long)r->id);
    put_str(b, r->name, sizeof(r->name));
    uint64_t head = __atomic_load_n(&r->seq, __ATOMIC_ACQUIRE), n = r->keep;
    put(b, ", \"rank\": %d, \"nranks\": %d, \"trace_ops\": %llu, \"ops_recorded\": %llu", r->rank,
        r->nranks, (unsigned long long)n, (unsigned long long)head);
    char err[sizeof(r->err)];
    for (size_t i = 0; i < sizeof(err); i++) err[i] = R(r->err[i]);
    if (err[0]) {
        put(b, ", \"last_error\": ");
        put_str(b, err, sizeof(err));
    }
    put(b, ",\n     \"entries\": [");
    int first = 1;
    for (uint64_t seq = head > n ? head - n + 1 : 1; seq <= head; seq++) {
        const trace_ent *e = &r->e[seq & r->mask];
        uint64_t v = __atomic_load_n(&e->ver, __ATOMIC_ACQUIRE);
        if (v != 2 * seq) continue; /* being written, or overwritten by a newer one */
        trace_ent c;
        memcpy(&c, e, sizeof(c));
        atomic_thread_fence(memory_order_acquire);
        if (__atomic_load_n(&e->ver, __ATOMIC_RELAXED) != v) continue; /* torn: skip it */
        put(b, "%s\n      ", first ? "" : ",");
        put_entry(b, &c, m);
        first = 0;
    }
    for (int i = 0; i < TRACE_QUEUE; i++) {
        trace_q *q = &r->q[i];
        if (atomic_load_explicit(&q->state, memory_order_acquire) != TS_QUEUED) continue;
        uint64_t sig = R(q->sig), count = R(q->count), t = R(q->t_enq);
        put(b, "%s\n      {\"seq\": null", first ? "" : ",");
        put_call(b, sig, count);
        put(b, ", \"state\": \"queued\"");
        put_times(b, m, t, 0, 0);
        put(b, "}");
        first = 0;
    }
    put(b, "]}");
}

static int write_all(int fd, const char *p, size_t n) {
    while (n) {
        ssize_t k = write(fd, p, n);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return -1;
        p += k, n -= (size_t)k;
    }
    return 0;
}

/* Under trace_lock: the file appears whole or not at all (temporary file, then rename). */
static void write_file(const sbuf *b, const char *reason) {
    char path[sizeof(trace_dir) + 320], tmp[sizeof(path) + 16];
    int pid = (int)getpid();
    snprintf(path, sizeof(path), "%s/podccl-trace.%s.%d.json", trace_dir, trace_host, pid);
    snprintf(tmp, sizeof(tmp), "%s/.podccl-trace.%s.%d.tmp", trace_dir, trace_host, pid);
    if (mkdir(trace_dir, 0777) != 0 && errno != EEXIST) {
        /* reported below, when open fails */
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644), err = 0;
    if (fd < 0) err = errno;
    errno = 0;
    if (!err && write_all(fd, b->p, b->len) != 0) err = errno ? errno : EIO;
    if (fd >= 0 && close(fd) != 0 && !err) err = errno;
    if (!err && rename(tmp, path) != 0) err = errno;
    if (err) {
        if (fd >= 0) unlink(tmp);
        pc_log(PC_LOG_WARN, PC_SUB_ALL, "flight recorder: cannot write %s: %s", path,
               strerror(err));
    } else if (!warned_write++ || strcmp(reason, "signal") == 0) {
        pc_log(strcmp(reason, "signal") == 0 ? PC_LOG_INFO : PC_LOG_WARN, PC_SUB_ALL,
               "flight recorder: wrote %s (%s)", path, reason);
    }
}

void trace_dump(const char *reason) {
    if (!__atomic_load_n(&trace_on, __ATOMIC_ACQUIRE)) return;
    pthread_mutex_lock(&trace_lock);
    clockmap m = clock_map();
    sbuf b = {0};
    put(&b, "{\"format\": \"podccl-trace\", \"version\": 1, \"host\": ");
    put_str(&b, trace_host, sizeof(trace_host));
    put(&b, ", \"pid\": %d, \"reason\": \"%s\", \"time_us\": %lld, \"clock\": \"%s\",\n",
        (int)getpid(), reason, (long long)(realtime_ns() / 1000), use_tsc ? "tsc" : "realtime");
    put(&b, " \"comms\": [");
    for (trace_ring *r = rings; r; r = r->next) {
        put(&b, "%s\n", r == rings ? "" : ",");
        put_ring(&b, r, &m);
    }
    put(&b, "]}\n");
    if (b.oom)
        pc_log(PC_LOG_WARN, PC_SUB_ALL, "flight recorder: out of memory writing the trace");
    else
        write_file(&b, reason);
    free(b.p);
    pthread_mutex_unlock(&trace_lock);
}
