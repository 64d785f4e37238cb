/* Shared memory inside one host (pc_transport_shm, pc_shm_live, pc_shm_memdom: transport.h):
 * each rank owns one segment holding its control words, its one-shot (direct) buffers and one
 * inbound FIFO per local sender. A segment is an anonymous memfd that peers open through
 * /proc/<owner pid>/fd/<fd> during init: no name ever exists, so nothing can be left in /dev/shm
 * whenever a rank is killed, and the memory goes with the last process that maps it.
 *
 * Control words follow the rules of the fastest shared-memory
 * collectives (Open MPI XHC, MPICH): one writer per field, each hot field on its own cache line,
 * sequence numbers that only grow (never reset), so no flag ever needs clearing.
 *
 * Point to point: the FIFO from sender s to receiver r lives in r's segment. The sender owns
 * `tail` and the slot contents, the receiver owns `head`. A message is cut into slot-sized
 * fragments; a zero-byte message still takes one (empty) fragment so that ordering holds. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "transports/tp.h"

#define CL 64
#define ALIGN_UP(x, a) (((x) + (a)-1) / (a) * (a))

/* Header of one fragment (written by the sender with the slot). Every fragment carries its
 * message's size and the signature of the sender's operation, so the receiver checks both on a
 * message's first fragment before it copies anything. */
typedef struct {
    uint64_t bytes; /* payload of this fragment */
    uint64_t total; /* bytes of the whole message */
    uint64_t hash;  /* pc_sig hash of the sender's operation */
    uint64_t seq;   /* and its number, to find its full signature (sig_get) */
} frag_t;

typedef struct {
    _Alignas(CL) _Atomic uint64_t tail; /* fragments written (sender) */
    _Alignas(CL) _Atomic uint64_t head; /* fragments consumed (receiver) */
    _Alignas(CL) frag_t frag[];         /* [nslots], then the slots */
} fifo_t;

typedef struct {
    _Alignas(CL) _Atomic uint64_t v;
} word_t;

/* The signature of one of the owner's last operations (a seqlock: seq is 0 while the owner
 * rewrites the entry). kind = coll | dtype << 8 | op << 16 | (root + 1) << 32. */
#define SIG_RING PC_SIG_HIST
typedef struct {
    _Atomic uint64_t seq, hash, count, kind;
} sig_slot_t;

typedef struct {
    word_t w[PC_MD_WORDS]; /* flag words, one writer (the owner), one cache line each */
    word_t heartbeat;      /* CLOCK_MONOTONIC ms, refreshed while the owner waits in podccl */
    _Alignas(CL) int32_t pid;
    /* Set once by the owner when it breaks, so that ranks not connected to the culprit learn the
     * cause at once instead of timing out: FAIL_WORD(culprit, rc), one word so that the culprit
     * and its error always belong together. Readable after the owner exited (peers keep their
     * mapping), which is how a rank that reported the first cause and left is not mistaken for
     * the cause (wait.c). */
    _Atomic uint64_t failed;
    uint64_t self_addr;          /* where the owner maps this segment (single-copy probe) */
    _Alignas(CL) pc_md_bufs pub; /* buffers of the running single-copy operation */
    /* The first mismatch the owner found or learnt of (md_mismatch_publish). */
    _Alignas(CL) _Atomic int32_t mm_set;
    int32_t mm_reporter, mm_culprit;
    pc_sig mm_rep, mm_cul;
    /* The owner's last operations, by seq % SIG_RING (md_sig_publish). */
    _Alignas(CL) sig_slot_t sig[SIG_RING];
    _Alignas(CL) uint64_t counts[]; /* [2 * nlocal]: all-to-all-v send counts, displacements */
} ctrl_t;

/* Geometry, identical for every rank of the host (derived from the same parameters). */
typedef struct {
    size_t ctrl_bytes, direct_cap, direct_bytes, slot_bytes, fifo_bytes, seg_bytes;
    size_t off_direct, off_fifo;
    int nslots, nlocal, direct_slots;
} geom_t;

#define FAIL_WORD(culprit, rc) ((uint64_t)(uint32_t)((culprit) + 1) << 32 | (uint32_t)(rc))

/* A segment is an anonymous memfd (no name anywhere: nothing in /dev/shm, whatever moment a rank
 * is killed at). Peers open it as /proc/<pid>/fd/<fd> while the owner keeps it open, and check
 * that what they opened is that file (device and inode): a reused pid or descriptor number can
 * never hand them another one. */
typedef struct {
    int32_t pid, fd;
    uint64_t seg_bytes;
    uint64_t dev, ino;
} shm_handle_t;
_Static_assert(sizeof(shm_handle_t) <= PC_HANDLE_BYTES, "shm handle too large");

#define PIDFD_DEAD (-2)   /* the pid was gone when we tried to open its pidfd */
#define GAVE_UP_GRACE 1.0 /* seconds to wait for the abort notice of a rank that gave up init */

struct shm_domain {
    const pc_tp_ctx *ctx;
    geom_t g;
    int memfd;          /* this rank's segment, open until every rank has mapped it (else -1) */
    char *mine;         /* this rank's segment */
    char **peers;       /* [nlocal] mapped segments (peers[local_rank] == mine) */
    int *pidfd;         /* [nlocal] opened at listen (as soon as pids are known), or -1/DEAD */
    double *gave_up_at; /* [nlocal] when a live peer's segment was first found closed */
};

typedef struct shm_req {
    struct shm_conn *conn;
    char *buf;
    size_t bytes, moved;
    size_t total;       /* receive: bytes of the message, known from its first fragment */
    uint64_t hash, seq; /* the operation's signature (pc_sig) */
    int done, is_send, started;
    struct shm_req *next;
} shm_req;

typedef struct shm_conn {
    struct shm_domain *d;
    int peer, lpeer;
    fifo_t *out; /* in the peer's segment, index = my local rank */
    fifo_t *in;  /* in my segment, index = peer's local rank */
    shm_req *sendq, *sendq_tail, *recvq, *recvq_tail;
} shm_conn;

static int sig_get(void *dom, int lidx, uint64_t seq, pc_sig *out);

static void geom_init(geom_t *g, const pc_tp_ctx *ctx) {
    g->nlocal = ctx->nlocal;
    g->nslots = (int)ctx->param_int("PODCCL_SHM_SLOTS");
    if (g->nslots < 2) g->nslots = 2;
    long long cap = ctx->param_int("PODCCL_SHM_DIRECT_BYTES");
    g->direct_cap = cap > 0 ? (size_t)cap : 0;
    g->direct_bytes = ALIGN_UP(g->direct_cap + 64, 4096); /* + the sequence word's cache line */
    g->direct_slots = (int)ctx->param_int("PODCCL_SHM_DIRECT_SLOTS");
    if (g->direct_slots < 2) g->direct_slots = 2;
    size_t budget = (size_t)ctx->param_int("PODCCL_SHM_MAX_BYTES");
    g->ctrl_bytes = ALIGN_UP(sizeof(ctrl_t) + 2 * sizeof(uint64_t) * (size_t)g->nlocal, 4096);
    size_t fixed = g->ctrl_bytes + (size_t)g->direct_slots * g->direct_bytes;
    size_t per_fifo_hdr = ALIGN_UP(3 * CL + sizeof(frag_t) * g->nslots, 4096);
    size_t avail =
        budget > fixed + g->nlocal * per_fifo_hdr ? budget - fixed - g->nlocal * per_fifo_hdr : 0;
    size_t slot = avail / ((size_t)g->nlocal * g->nslots);
    if (slot > ctx->chunk_bytes) slot = ctx->chunk_bytes;
    slot = slot / 4096 * 4096;
    if (slot < 4096) slot = 4096; /* below this a FIFO is all overhead; exceed the budget */
    g->slot_bytes = slot;
    g->fifo_bytes = per_fifo_hdr + (size_t)g->nslots * slot;
    g->off_direct = g->ctrl_bytes;
    g->off_fifo = g->off_direct + (size_t)g->direct_slots * g->direct_bytes;
    g->seg_bytes = g->off_fifo + (size_t)g->nlocal * g->fifo_bytes;
}

static ctrl_t *ctrl_of(struct shm_domain *d, int lidx) {
    return (ctrl_t *)d->peers[lidx];
}
static fifo_t *fifo_in(struct shm_domain *d, int owner, int sender) {
    return (fifo_t *)(d->peers[owner] + d->g.off_fifo + (size_t)sender * d->g.fifo_bytes);
}
static char *fifo_slot(struct shm_domain *d, fifo_t *f, uint64_t i) {
    size_t hdr = d->g.fifo_bytes - (size_t)d->g.nslots * d->g.slot_bytes;
    return (char *)f + hdr + (i % (uint64_t)d->g.nslots) * d->g.slot_bytes;
}

static int shm_can_reach(const pc_tp_ctx *ctx, int peer) {
    return ctx->local_idx[peer] >= 0;
}

static void shm_properties(void *listen_comm, pc_props *p) {
    (void)listen_comm;
    memset(p, 0, sizeof(*p));
    p->name = "shm";
    snprintf(p->provider, sizeof(p->provider), "shared memory");
    p->bw_gbps = 8.0; /* one core's copy bandwidth, conservative; issue 3 measures it */
    p->latency_us = 0.5;
}

static podcclResult_t shm_close_listen(void *listen_comm);

static int open_pidfd(pid_t pid) {
#ifdef SYS_pidfd_open
    return (int)syscall(SYS_pidfd_open, pid, 0); /* always close-on-exec */
#else
    (void)pid;
    errno = ENOSYS;
    return -1;
#endif
}

/* Memory that is not there must fail here, not SIGBUS later: fallocate, not just ftruncate (memfd
 * pages count against shmem and the memory cgroup). The seals forbid resizing the file under the
 * peers' mappings. */
static podcclResult_t segment_create(const pc_tp_ctx *ctx, struct shm_domain *d, shm_handle_t *h) {
    char label[32];
    snprintf(label, sizeof(label), "podccl-rank%d", ctx->rank);
    int fd = memfd_create(label, MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0)
        return TP_ERR(ctx, podcclSystemError, "rank %d: memfd_create: %s", ctx->rank,
                      strerror(errno));
    int e = ftruncate(fd, (off_t)d->g.seg_bytes) ? errno
                                                 : posix_fallocate(fd, 0, (off_t)d->g.seg_bytes);
    if (!e && fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0) e = errno;
    struct stat st;
    if (!e && fstat(fd, &st) != 0) e = errno;
    char *mem =
        e ? MAP_FAILED : mmap(NULL, d->g.seg_bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (!e && mem == MAP_FAILED) e = errno;
    if (e) {
        close(fd);
        return TP_ERR(ctx, podcclSystemError,
                      "rank %d cannot allocate %zu MiB of shared memory: %s (free memory, raise "
                      "the memory limit of its container or cgroup, or lower "
                      "PODCCL_SHM_MAX_BYTES / PODCCL_SHM_DIRECT_BYTES)",
                      ctx->rank, (d->g.seg_bytes + (1 << 20) - 1) >> 20, strerror(e));
    }
    d->memfd = fd;
    d->mine = mem;
    d->peers[ctx->local_rank] = mem;
    memset(h, 0, sizeof(*h));
    h->pid = (int32_t)getpid();
    h->fd = fd;
    h->seg_bytes = d->g.seg_bytes;
    h->dev = (uint64_t)st.st_dev;
    h->ino = (uint64_t)st.st_ino;
    return podcclSuccess;
}

static podcclResult_t shm_listen(const pc_tp_ctx *ctx, void *handle, void **listen_comm) {
    int nl = ctx->nlocal;
    struct shm_domain *d = calloc(1, sizeof(*d));
    if (d) {
        d->ctx = ctx, d->memfd = -1;
        geom_init(&d->g, ctx);
        d->peers = calloc((size_t)nl, sizeof(char *));
        d->pidfd = malloc(sizeof(int) * (size_t)nl);
        for (int i = 0; d->pidfd && i < nl; i++) d->pidfd[i] = -1;
        d->gave_up_at = calloc((size_t)nl, sizeof(double));
    }
    if (!d || !d->peers || !d->pidfd || !d->gave_up_at) {
        shm_close_listen(d);
        return TP_ERR(ctx, podcclSystemError, "out of memory");
    }
    podcclResult_t r = segment_create(ctx, d, handle);
    if (r != podcclSuccess) {
        shm_close_listen(d);
        return r;
    }
    /* Local peers' pids are known (host-info all-gather): watch them from now on, so that init's
     * waits see a peer die at once (connect_all, map_peer). */
    for (int i = 0; i < nl; i++) {
        if (i == ctx->local_rank) continue;
        d->pidfd[i] = open_pidfd(ctx->pids[ctx->local_ranks[i]]);
        if (d->pidfd[i] < 0 && errno == ESRCH) d->pidfd[i] = PIDFD_DEAD;
    }
    ctrl_t *c = (ctrl_t *)d->mine;
    c->pid = (int32_t)getpid();
    c->self_addr = (uint64_t)(uintptr_t)d->mine;
    *listen_comm = d;
    TP_LOG(ctx, PC_LOG_INFO, PC_SUB_SHM,
           "shm segment (memfd %d): %zu KiB (direct %dx%zu KiB, %d FIFOs of %d x %zu KiB)",
           d->memfd, d->g.seg_bytes >> 10, d->g.direct_slots, d->g.direct_bytes >> 10, d->g.nlocal,
           d->g.nslots, d->g.slot_bytes >> 10);
    return podcclSuccess;
}

/* Opens peer's memfd through /proc/<pid>/fd/<fd> (the kernel allows it to processes with ptrace
 * read access to the owner: same user, owner dumpable; Yama does not restrict this mode) and
 * maps it. *not_yet: the owner is alive but has closed it (it gave up init): connect_all keeps
 * polling a moment so that the owner's abort notice, which names the first cause, wins. */
static podcclResult_t map_peer(struct shm_domain *d, int peer, const shm_handle_t *h,
                               int *not_yet) {
    const pc_tp_ctx *ctx = d->ctx;
    int lp = ctx->local_idx[peer];
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/fd/%d", (int)h->pid, (int)h->fd);
    int fd = h->pid == ctx->pids[peer] ? open(path, O_RDWR | O_CLOEXEC) : -1;
    int e = fd >= 0 ? 0 : h->pid == ctx->pids[peer] ? errno : ESTALE;
    struct stat st;
    if (fd >= 0 && (fstat(fd, &st) != 0 || (uint64_t)st.st_dev != h->dev ||
                    (uint64_t)st.st_ino != h->ino || (uint64_t)st.st_size != h->seg_bytes)) {
        close(fd);
        fd = -1, e = ESTALE;
    }
    if (fd < 0) {
        if (pc_shm_live.peer_dead(d, peer)) return ctx->peer_died_in_init(ctx->comm, peer);
        if (e == EACCES || e == EPERM)
            return TP_ERR(ctx, podcclSystemError,
                          "rank %d cannot map rank %d's shared memory (open %s: %s): the kernel "
                          "lets a process open another's memory only with ptrace read access. "
                          "Run every rank of a host as the same user, not from a setuid/setcap "
                          "binary nor with prctl(PR_SET_DUMPABLE, 0), and check that no security "
                          "module (SELinux, AppArmor) denies ptrace read; or give such ranks "
                          "different PODCCL_HOSTID values so that they talk over the network",
                          ctx->rank, peer, path, strerror(e));
        if (e != ENOENT && e != ESTALE)
            return TP_ERR(ctx, podcclSystemError,
                          "rank %d cannot map rank %d's shared memory (open %s: %s)", ctx->rank,
                          peer, path, strerror(e));
        double now = tp_now();
        if (d->gave_up_at[lp] == 0) d->gave_up_at[lp] = now;
        if (now - d->gave_up_at[lp] < GAVE_UP_GRACE) {
            *not_yet = 1;
            return podcclSuccess;
        }
        ctx->publish_failure(ctx->comm, peer, podcclRemoteError);
        return TP_ERR(ctx, podcclRemoteError,
                      "rank %d: rank %d (pid %d) closed its shared memory before this rank "
                      "mapped it: it gave up init (its own error says why)",
                      ctx->rank, peer, (int)h->pid);
    }
    char *mem = mmap(NULL, d->g.seg_bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    e = errno;
    close(fd);
    if (mem == MAP_FAILED)
        return TP_ERR(ctx, podcclSystemError, "rank %d: mmap of rank %d's shared memory: %s",
                      ctx->rank, peer, strerror(e));
    d->peers[lp] = mem;
    return podcclSuccess;
}

/* Symmetric: both ranks of a pair map each other's segment, so connect and accept are one. */
static podcclResult_t shm_connect(void *listen_comm, int peer, const void *handle, void **conn) {
    struct shm_domain *d = listen_comm;
    const pc_tp_ctx *ctx = d->ctx;
    const shm_handle_t *h = handle;
    int lp = ctx->local_idx[peer];
    if (!d->peers[lp]) {
        if (h->seg_bytes != d->g.seg_bytes)
            return TP_ERR(ctx, podcclInvalidUsage,
                          "rank %d's shared-memory geometry differs from ours (%llu vs %zu "
                          "bytes): set the same PODCCL_SHM_* variables on every rank",
                          peer, (unsigned long long)h->seg_bytes, d->g.seg_bytes);
        int not_yet = 0;
        TP_CHECK(map_peer(d, peer, h, &not_yet));
        if (not_yet) return podcclSuccess; /* *conn stays NULL */
    }
    shm_conn *c = calloc(1, sizeof(*c));
    if (!c) return TP_ERR(ctx, podcclSystemError, "out of memory");
    c->d = d;
    c->peer = peer;
    c->lpeer = lp;
    c->out = fifo_in(d, lp, ctx->local_rank);
    c->in = fifo_in(d, ctx->local_rank, lp);
    *conn = c;
    return podcclSuccess;
}

/* After the barrier every rank has mapped this segment: nobody needs the descriptor any more. */
static podcclResult_t shm_connected(void *listen_comm) {
    struct shm_domain *d = listen_comm;
    if (d->memfd >= 0) close(d->memfd);
    d->memfd = -1;
    return podcclSuccess;
}

static int live_peer_dead(void *dom, int peer) {
    struct shm_domain *d = dom;
    if (!d) return 0;
    const pc_tp_ctx *ctx = d->ctx;
    int lp = ctx->local_idx[peer];
    if (lp < 0 || peer == ctx->rank) return 0;
    if (d->pidfd[lp] == PIDFD_DEAD) return 1;
    if (d->pidfd[lp] >= 0) {
        struct pollfd p = {.fd = d->pidfd[lp], .events = POLLIN};
        return poll(&p, 1, 0) > 0;
    }
    /* No pidfd (old kernel): a vanished pid, or a zombie, is dead. */
    pid_t pid = ctx->pids[peer];
    if (kill(pid, 0) != 0 && errno == ESRCH) return 1;
    char path[64], buf[256];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f) return 1;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = 0;
    char *rp = strrchr(buf, ')');
    return rp && rp[1] == ' ' && (rp[2] == 'Z' || rp[2] == 'X');
}

/* Only the first failure is kept: later ones are consequences. */
static void live_publish(void *dom, int culprit, podcclResult_t rc) {
    struct shm_domain *d = dom;
    if (!d) return;
    ctrl_t *c = ctrl_of(d, d->ctx->local_rank);
    uint64_t none = 0;
    atomic_compare_exchange_strong(&c->failed, &none, FAIL_WORD(culprit, rc));
}

static int read_failure(struct shm_domain *d, int lidx, int *culprit, podcclResult_t *rc) {
    uint64_t f = atomic_load_explicit(&ctrl_of(d, lidx)->failed, memory_order_acquire);
    if (!f) return 0;
    int c = (int)(uint32_t)(f >> 32) - 1;
    *culprit = c >= 0 ? c : d->ctx->local_ranks[lidx]; /* unknown: the one who broke */
    *rc = (podcclResult_t)(int32_t)(uint32_t)f;
    return 1;
}

static int live_published(void *dom, int *culprit, podcclResult_t *rc) {
    struct shm_domain *d = dom;
    return d && read_failure(d, d->ctx->local_rank, culprit, rc);
}

static int live_failure_seen(void *dom, int *culprit, int *reporter, podcclResult_t *rc) {
    struct shm_domain *d = dom;
    if (!d) return 0;
    for (int i = 0; i < d->g.nlocal; i++) {
        if (i == d->ctx->local_rank || !d->peers[i]) continue;
        if (read_failure(d, i, culprit, rc)) {
            *reporter = d->ctx->local_ranks[i];
            return 1;
        }
    }
    return 0;
}

static void live_heartbeat(void *dom, uint64_t now_ms) {
    struct shm_domain *d = dom;
    if (d)
        atomic_store_explicit(&ctrl_of(d, d->ctx->local_rank)->heartbeat.v, now_ms,
                              memory_order_release);
}

static int live_stalest(void *dom, double now) {
    struct shm_domain *d = dom;
    if (!d) return -1;
    int who = -1;
    double worst = 1.0;
    for (int i = 0; i < d->g.nlocal; i++) {
        if (i == d->ctx->local_rank || !d->peers[i]) continue;
        uint64_t hb = atomic_load_explicit(&ctrl_of(d, i)->heartbeat.v, memory_order_acquire);
        double age = now - (double)hb * 1e-3;
        if (age > worst) worst = age, who = d->ctx->local_ranks[i];
    }
    return who;
}

const pc_live_ops pc_shm_live = {
    .heartbeat = live_heartbeat,
    .stalest = live_stalest,
    .peer_dead = live_peer_dead,
    .publish_failure = live_publish,
    .published = live_published,
    .failure_seen = live_failure_seen,
};

/* ---- point to point ---------------------------------------------------------------------- */

static podcclResult_t post(shm_conn *c, int is_send, void *buf, size_t bytes, const pc_sig *sig,
                           void **req) {
    shm_req *r = calloc(1, sizeof(*r));
    if (!r) {
        *req = NULL; /* retry later */
        return podcclSuccess;
    }
    r->conn = c, r->buf = buf, r->bytes = bytes, r->is_send = is_send;
    r->hash = sig->hash, r->seq = sig->seq;
    shm_req **head = is_send ? &c->sendq : &c->recvq,
            **tail = is_send ? &c->sendq_tail : &c->recvq_tail;
    if (*tail)
        (*tail)->next = r;
    else
        *head = r;
    *tail = r;
    *req = r;
    return podcclSuccess;
}

static podcclResult_t shm_isend(void *conn, const void *buf, size_t bytes, const pc_sig *sig,
                                void **req) {
    return post(conn, 1, (void *)buf, bytes, sig, req);
}
static podcclResult_t shm_irecv(void *conn, void *buf, size_t bytes, const pc_sig *sig,
                                void **req) {
    return post(conn, 0, buf, bytes, sig, req);
}

/* Marks the head request of a queue complete and unlinks it (the caller's test frees it). */
static void pop_done(shm_req **head, shm_req **tail) {
    shm_req *r = *head;
    r->done = 1;
    *head = r->next;
    if (!*head) *tail = NULL;
}

/* Moves as many fragments of the queue's head requests as the FIFO allows. */
static podcclResult_t progress_send(shm_conn *c) {
    struct shm_domain *d = c->d;
    fifo_t *f = c->out;
    while (c->sendq) {
        shm_req *r = c->sendq;
        uint64_t t = atomic_load_explicit(&f->tail, memory_order_relaxed);
        uint64_t h = atomic_load_explicit(&f->head, memory_order_acquire);
        if (t - h >= (uint64_t)d->g.nslots) return podcclSuccess;
        size_t n = r->bytes - r->moved;
        if (n > d->g.slot_bytes) n = d->g.slot_bytes;
        if (n) memcpy(fifo_slot(d, f, t), r->buf + r->moved, n);
        f->frag[t % (uint64_t)d->g.nslots] =
            (frag_t){.bytes = n, .total = r->bytes, .hash = r->hash, .seq = r->seq};
        atomic_store_explicit(&f->tail, t + 1, memory_order_release);
        r->moved += n;
        if (r->moved == r->bytes) pop_done(&c->sendq, &c->sendq_tail);
    }
    return podcclSuccess;
}

/* The first fragment of a message: the operation and the size must fit the receive before a
 * byte is copied. */
static podcclResult_t check_first(shm_conn *c, shm_req *r, const frag_t *fr) {
    const pc_tp_ctx *ctx = c->d->ctx;
    if (fr->hash != r->hash) {
        pc_sig theirs = {.hash = fr->hash, .seq = fr->seq, .coll = -1};
        sig_get(c->d, c->lpeer, fr->seq, &theirs); /* its full signature, if still there */
        return ctx->mismatch(ctx->comm, c->peer, &theirs);
    }
    if (fr->total > r->bytes)
        return ctx->size_mismatch(ctx->comm, c->peer, ctx->current(ctx->comm), fr->total, r->bytes);
    r->total = fr->total, r->started = 1;
    return podcclSuccess;
}

static podcclResult_t progress_recv(shm_conn *c) {
    struct shm_domain *d = c->d;
    fifo_t *f = c->in;
    while (c->recvq) {
        shm_req *r = c->recvq;
        uint64_t h = atomic_load_explicit(&f->head, memory_order_relaxed);
        uint64_t t = atomic_load_explicit(&f->tail, memory_order_acquire);
        if (t == h) return podcclSuccess;
        frag_t fr = f->frag[h % (uint64_t)d->g.nslots];
        if (!r->started) TP_CHECK(check_first(c, r, &fr));
        size_t n = fr.bytes;
        if (n > r->total - r->moved) /* a corrupt header: never write past the receive */
            return d->ctx->size_mismatch(d->ctx->comm, c->peer, d->ctx->current(d->ctx->comm),
                                         r->moved + n, r->total);
        if (n) memcpy(r->buf + r->moved, fifo_slot(d, f, h), n);
        atomic_store_explicit(&f->head, h + 1, memory_order_release);
        r->moved += n;
        if (r->moved == r->total) pop_done(&c->recvq, &c->recvq_tail);
    }
    return podcclSuccess;
}

static podcclResult_t shm_test(void *req, int *done, size_t *bytes) {
    shm_req *r = req;
    TP_CHECK(r->is_send ? progress_send(r->conn) : progress_recv(r->conn));
    *done = r->done;
    if (r->done) {
        if (bytes) *bytes = r->moved;
        free(r);
    }
    return podcclSuccess;
}

static podcclResult_t shm_close(void *conn) {
    shm_conn *c = conn;
    for (int q = 0; q < 2; q++)
        for (shm_req *r = q ? c->sendq : c->recvq, *n; r; r = n) n = r->next, free(r);
    free(c);
    return podcclSuccess;
}

/* Also frees a domain that shm_listen left half made (arrays may be NULL). */
static podcclResult_t shm_close_listen(void *listen_comm) {
    struct shm_domain *d = listen_comm;
    if (!d) return podcclSuccess;
    if (d->memfd >= 0) close(d->memfd);
    for (int i = 0; i < d->g.nlocal; i++) {
        if (d->peers && d->peers[i]) munmap(d->peers[i], d->g.seg_bytes);
        if (d->pidfd && d->pidfd[i] >= 0) close(d->pidfd[i]);
    }
    free(d->peers);
    free(d->pidfd);
    free(d->gave_up_at);
    free(d);
    return podcclSuccess;
}

const pc_transport pc_transport_shm = {
    .name = "shm",
    .can_reach = shm_can_reach,
    .properties = shm_properties,
    .listen = shm_listen,
    .connect = shm_connect,
    .accept = shm_connect,
    .connected = shm_connected,
    .isend = shm_isend,
    .irecv = shm_irecv,
    .test = shm_test,
    .close = shm_close,
    .close_listen = shm_close_listen,
};

/* ---- the memory-semantic domain (pc_memdom_ops) ---------------------------------------------- */

static size_t md_direct_bytes(void *dom) {
    return ((struct shm_domain *)dom)->g.direct_cap;
}

static int md_direct_slots(void *dom) {
    return ((struct shm_domain *)dom)->g.direct_slots;
}

static char *md_direct_buf(void *dom, int lidx, uint64_t seq) {
    struct shm_domain *d = dom;
    return d->peers[lidx] + d->g.off_direct +
           (seq % (uint64_t)d->g.direct_slots) * d->g.direct_bytes;
}

static _Atomic uint64_t *md_word(void *dom, int lidx, int word) {
    return &ctrl_of(dom, lidx)->w[word].v;
}

static size_t md_segment_bytes(void *dom) {
    return dom ? ((struct shm_domain *)dom)->g.seg_bytes : 0;
}

/* ---- operation signatures: a ring per rank, each entry a seqlock (seq is 0 while rewritten) -- */

static void sig_publish(void *dom, const pc_sig *g) {
    struct shm_domain *d = dom;
    sig_slot_t *e = &ctrl_of(d, d->ctx->local_rank)->sig[g->seq % SIG_RING];
    uint64_t kind = (uint64_t)(uint8_t)g->coll | (uint64_t)(uint8_t)g->dtype << 8 |
                    (uint64_t)(uint8_t)g->op << 16 | (uint64_t)(uint32_t)(g->root + 1) << 32;
    atomic_store_explicit(&e->seq, 0, memory_order_relaxed);
    atomic_thread_fence(memory_order_release);
    atomic_store_explicit(&e->hash, g->hash, memory_order_relaxed);
    atomic_store_explicit(&e->count, g->count, memory_order_relaxed);
    atomic_store_explicit(&e->kind, kind, memory_order_relaxed);
    atomic_store_explicit(&e->seq, g->seq, memory_order_release);
}

static int sig_get(void *dom, int lidx, uint64_t seq, pc_sig *out) {
    struct shm_domain *d = dom;
    if (!seq || !d->peers[lidx]) return 0;
    sig_slot_t *e = &ctrl_of(d, lidx)->sig[seq % SIG_RING];
    if (atomic_load_explicit(&e->seq, memory_order_acquire) != seq) return 0;
    uint64_t hash = atomic_load_explicit(&e->hash, memory_order_relaxed);
    uint64_t count = atomic_load_explicit(&e->count, memory_order_relaxed);
    uint64_t kind = atomic_load_explicit(&e->kind, memory_order_relaxed);
    atomic_thread_fence(memory_order_acquire);
    if (atomic_load_explicit(&e->seq, memory_order_relaxed) != seq) return 0;
    *out = (pc_sig){.hash = hash,
                    .seq = seq,
                    .count = count,
                    .coll = (int8_t)(kind & 0xff),
                    .dtype = (int32_t)(kind >> 8 & 0xff),
                    .op = (int32_t)(kind >> 16 & 0xff),
                    .root = (int32_t)(uint32_t)(kind >> 32) - 1};
    return 1;
}

static uint64_t sig_last(void *dom, int lidx) {
    struct shm_domain *d = dom;
    uint64_t last = 0;
    if (!d->peers[lidx]) return 0;
    for (int i = 0; i < SIG_RING; i++) {
        uint64_t v = atomic_load_explicit(&ctrl_of(d, lidx)->sig[i].seq, memory_order_acquire);
        if (v > last) last = v;
    }
    return last;
}

static void mismatch_publish(void *dom, int reporter, int culprit, const pc_sig *rep,
                             const pc_sig *cul) {
    struct shm_domain *d = dom;
    ctrl_t *c = ctrl_of(d, d->ctx->local_rank);
    if (atomic_load_explicit(&c->mm_set, memory_order_relaxed)) return; /* the first one only */
    c->mm_reporter = reporter, c->mm_culprit = culprit, c->mm_rep = *rep, c->mm_cul = *cul;
    atomic_store_explicit(&c->mm_set, 1, memory_order_release);
}

static int mismatch_get(void *dom, int lidx, int *reporter, int *culprit, pc_sig *rep,
                        pc_sig *cul) {
    struct shm_domain *d = dom;
    if (!d->peers[lidx]) return 0;
    ctrl_t *c = ctrl_of(d, lidx);
    if (!atomic_load_explicit(&c->mm_set, memory_order_acquire)) return 0;
    *reporter = c->mm_reporter, *culprit = c->mm_culprit, *rep = c->mm_rep, *cul = c->mm_cul;
    return 1;
}

/* ---- single copy: Linux Cross-Memory Attach (process_vm_readv / process_vm_writev) ---------- */

static void md_publish(void *dom, const pc_md_bufs *b, const size_t *counts, const size_t *displs) {
    struct shm_domain *d = dom;
    ctrl_t *c = ctrl_of(d, d->ctx->local_rank);
    c->pub = *b;
    if (counts)
        for (int i = 0; i < d->g.nlocal; i++)
            c->counts[i] = counts[i], c->counts[d->g.nlocal + i] = displs[i];
}

static void md_published(void *dom, int lidx, pc_md_bufs *out) {
    *out = ctrl_of(dom, lidx)->pub;
}

static void md_counts(void *dom, int lidx, int to, size_t *count, size_t *displ) {
    struct shm_domain *d = dom;
    ctrl_t *c = ctrl_of(d, lidx);
    *count = c->counts[to];
    *displ = c->counts[d->g.nlocal + to];
}

/* One kernel copy between this process and rank lidx (write: into it). */
static int cma_copy(struct shm_domain *d, int lidx, uint64_t remote, void *local, size_t bytes,
                    int write) {
    pid_t pid = ctrl_of(d, lidx)->pid;
    while (bytes) {
        struct iovec l = {.iov_base = local, .iov_len = bytes};
        struct iovec r = {.iov_base = (void *)(uintptr_t)remote, .iov_len = bytes};
        ssize_t got = write ? process_vm_writev(pid, &l, 1, &r, 1, 0)
                            : process_vm_readv(pid, &l, 1, &r, 1, 0);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) return got < 0 ? errno : EIO;
        local = (char *)local + got, remote += (uint64_t)got, bytes -= (size_t)got;
    }
    return 0;
}

static int md_read(void *dom, int lidx, uint64_t remote, void *dst, size_t bytes) {
    return cma_copy(dom, lidx, remote, dst, bytes, 0);
}

static int md_write(void *dom, int lidx, uint64_t remote, const void *src, size_t bytes) {
    return cma_copy(dom, lidx, remote, (void *)src, bytes, 1);
}

/* Single copy needs the kernel to let ranks read each other (ptrace access: same user, Yama
 * scope, no seccomp filter against process_vm_readv). Probe every local peer: read the pid field
 * of its control block through its own mapping. */
static int md_single_copy_probe(void *dom) {
    struct shm_domain *d = dom;
    const pc_tp_ctx *ctx = d->ctx;
    const char *mode = ctx->param_str("PODCCL_SHM_CMA");
    if (mode && strcmp(mode, "0") == 0) return 0;
    for (int i = 0; i < d->g.nlocal; i++) {
        if (i == ctx->local_rank) continue;
        ctrl_t *c = ctrl_of(d, i);
        int32_t pid = 0;
        int e = cma_copy(d, i, c->self_addr + offsetof(ctrl_t, pid), &pid, sizeof(pid), 0);
        if (e || pid != c->pid) {
            TP_LOG(ctx, PC_LOG_INFO, PC_SUB_SHM,
                   "single copy (process_vm_readv) to rank %d not allowed: %s", ctx->local_ranks[i],
                   strerror(e ? e : EPERM));
            return 0;
        }
    }
    return 1;
}

const pc_memdom_ops pc_shm_memdom = {
    .direct_bytes = md_direct_bytes,
    .direct_slots = md_direct_slots,
    .direct_buf = md_direct_buf,
    .word = md_word,
    .publish = md_publish,
    .published = md_published,
    .counts = md_counts,
    .read = md_read,
    .write = md_write,
    .single_copy_probe = md_single_copy_probe,
    .sig_publish = sig_publish,
    .sig_get = sig_get,
    .sig_last = sig_last,
    .mismatch_publish = mismatch_publish,
    .mismatch_get = mismatch_get,
    .segment_bytes = md_segment_bytes,
};
