/* Shared-memory transport. Control words follow the rules of the fastest shared-memory
 * collectives (Open MPI XHC, MPICH): one writer per field, each hot field on its own cache line,
 * sequence numbers that only grow (never reset), so no flag ever needs clearing.
 *
 * Point to point: the FIFO from sender s to receiver r lives in r's segment. The sender owns
 * `tail` and the slot contents, the receiver owns `head`. A message is cut into slot-sized
 * fragments; a zero-byte message still takes one (empty) fragment so that ordering holds. */
#include "transports/shm/shm.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#define CL 64
#define ALIGN_UP(x, a) (((x) + (a)-1) / (a) * (a))

typedef struct {
    _Alignas(CL) _Atomic uint64_t tail; /* fragments written (sender) */
    _Alignas(CL) _Atomic uint64_t head; /* fragments consumed (receiver) */
    _Alignas(CL) uint64_t frag_bytes[]; /* [nslots], then the slots */
} fifo_t;

typedef struct {
    _Alignas(CL) _Atomic uint64_t v;
} word_t;

typedef struct {
    word_t w[MD_NWORDS]; /* sequence words, one writer (the owner), one cache line each */
    _Alignas(CL) int32_t pid;
    /* Set once by the owner when it breaks: culprit rank + 1 and the error, so that ranks not
     * connected to the culprit learn the cause at once instead of timing out. */
    _Atomic int32_t failed_rank1;
    _Atomic int32_t failed_rc;
    uint64_t self_addr;                /* where the owner maps this segment (CMA probe) */
    _Alignas(CL) uint64_t cma_addr[3]; /* send, recv, aux buffer of the current CMA operation */
    _Alignas(CL) uint64_t counts[];    /* [2 * nlocal]: all-to-all-v send counts, displacements */
} ctrl_t;

/* Geometry, identical for every rank of the host (derived from the same parameters). */
typedef struct {
    size_t ctrl_bytes, direct_cap, direct_bytes, slot_bytes, fifo_bytes, seg_bytes;
    size_t off_direct, off_fifo;
    int nslots, nlocal, direct_slots;
} geom_t;

typedef struct {
    char name[64];
    uint64_t seg_bytes;
    int32_t pid;
} shm_handle_t;

struct shm_domain {
    podcclComm_t comm;
    geom_t g;
    char name[64];
    char *mine;   /* this rank's segment */
    char **peers; /* [nlocal] mapped segments (peers[local_rank] == mine) */
    int *pidfd;   /* [nlocal] */
    int unlinked;
    int cma_ok; /* every local pair may use process_vm_readv */
};

typedef struct shm_req {
    struct shm_conn *conn;
    char *buf;
    size_t bytes, moved;
    int done, is_send;
    struct shm_req *next;
} shm_req;

typedef struct shm_conn {
    podcclComm_t comm;
    int peer, lpeer;
    fifo_t *out; /* in the peer's segment, index = my local rank */
    fifo_t *in;  /* in my segment, index = peer's local rank */
    shm_req *sendq, *sendq_tail, *recvq, *recvq_tail;
} shm_conn;

static void geom_init(geom_t *g, podcclComm_t comm) {
    g->nlocal = comm->topo->nlocal;
    g->nslots = (int)pc_param_int("PODCCL_SHM_SLOTS");
    if (g->nslots < 2) g->nslots = 2;
    long long cap = pc_param_int("PODCCL_SHM_DIRECT_BYTES");
    g->direct_cap = cap > 0 ? (size_t)cap : 0;
    g->direct_bytes = ALIGN_UP(g->direct_cap + 64, 4096); /* + the sequence word's cache line */
    g->direct_slots = (int)pc_param_int("PODCCL_SHM_DIRECT_SLOTS");
    if (g->direct_slots < 2) g->direct_slots = 2;
    size_t budget = (size_t)pc_param_int("PODCCL_SHM_MAX_BYTES");
    g->ctrl_bytes = ALIGN_UP(sizeof(ctrl_t) + 2 * sizeof(uint64_t) * (size_t)g->nlocal, 4096);
    size_t fixed = g->ctrl_bytes + (size_t)g->direct_slots * g->direct_bytes;
    size_t per_fifo_hdr = ALIGN_UP(3 * CL + sizeof(uint64_t) * g->nslots, 4096);
    size_t avail =
        budget > fixed + g->nlocal * per_fifo_hdr ? budget - fixed - g->nlocal * per_fifo_hdr : 0;
    size_t slot = avail / ((size_t)g->nlocal * g->nslots);
    if (slot > comm->ex->chunk_bytes) slot = comm->ex->chunk_bytes;
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

static int shm_can_reach(podcclComm_t comm, int peer) {
    return comm->topo->local_idx[peer] >= 0;
}

static void shm_properties(podcclComm_t comm, void *listen_comm, pc_props *p) {
    (void)comm, (void)listen_comm;
    memset(p, 0, sizeof(*p));
    p->name = "shm";
    snprintf(p->provider, sizeof(p->provider), "shared memory");
    p->bw_gbps = 8.0; /* one core's copy bandwidth, conservative; issue 3 measures it */
    p->latency_us = 0.5;
    p->max_requests = 1 << 20;
    p->memory_semantics = 1;
}

static podcclResult_t shm_listen(podcclComm_t comm, void *handle, void **listen_comm) {
    struct shm_domain *d = calloc(1, sizeof(*d));
    if (d) d->comm = comm;
    if (!d) return pc_err(comm, podcclSystemError, "out of memory");
    geom_init(&d->g, comm);
    uint32_t rnd = 0;
    if (getrandom(&rnd, sizeof(rnd), 0) != sizeof(rnd)) rnd = (uint32_t)pc_now();
    snprintf(d->name, sizeof(d->name), "/podccl-%d-%d-%08x", (int)getpid(), comm->rank, rnd);
    d->peers = calloc(comm->topo->nlocal, sizeof(char *));
    d->pidfd = malloc(sizeof(int) * comm->topo->nlocal);
    if (!d->peers || !d->pidfd) {
        free(d->peers), free(d->pidfd), free(d);
        return pc_err(comm, podcclSystemError, "out of memory");
    }
    for (int i = 0; i < comm->topo->nlocal; i++) d->pidfd[i] = -1;

    struct statvfs vfs;
    if (statvfs("/dev/shm", &vfs) == 0 &&
        (unsigned long long)vfs.f_bavail * vfs.f_frsize < d->g.seg_bytes) {
        podcclResult_t r = pc_err(
            comm, podcclSystemError,
            "/dev/shm has %llu MiB free but rank %d needs %zu MiB of shared memory: enlarge it "
            "(docker run --shm-size, or mount -o remount,size=...) or lower "
            "PODCCL_SHM_MAX_BYTES / PODCCL_SHM_DIRECT_BYTES",
            (unsigned long long)vfs.f_bavail * vfs.f_frsize >> 20, comm->rank,
            (d->g.seg_bytes + (1 << 20) - 1) >> 20);
        free(d->peers), free(d->pidfd), free(d);
        return r;
    }
    int fd = shm_open(d->name, O_CREAT | O_EXCL | O_RDWR, 0600);
    if (fd < 0) {
        podcclResult_t r =
            pc_err(comm, podcclSystemError, "shm_open(%s): %s", d->name, strerror(errno));
        free(d->peers), free(d->pidfd), free(d);
        return r;
    }
    /* fallocate, not just ftruncate: a short /dev/shm must fail here, not SIGBUS later. */
    int e = ftruncate(fd, (off_t)d->g.seg_bytes) ? errno
                                                 : posix_fallocate(fd, 0, (off_t)d->g.seg_bytes);
    char *mem =
        e ? MAP_FAILED : mmap(NULL, d->g.seg_bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (!e && mem == MAP_FAILED) e = errno;
    close(fd);
    if (e) {
        shm_unlink(d->name);
        podcclResult_t r =
            pc_err(comm, podcclSystemError,
                   "cannot allocate %zu bytes of shared memory in /dev/shm: %s%s", d->g.seg_bytes,
                   strerror(e), e == ENOSPC ? " (enlarge /dev/shm, e.g. docker --shm-size)" : "");
        free(d->peers), free(d->pidfd), free(d);
        return r;
    }
    ctrl_t *c = (ctrl_t *)mem;
    c->pid = (int32_t)getpid();
    c->self_addr = (uint64_t)(uintptr_t)mem;
    d->mine = mem;
    d->peers[comm->topo->local_rank] = mem;
    shm_handle_t *h = handle;
    memset(h, 0, sizeof(*h));
    snprintf(h->name, sizeof(h->name), "%s", d->name);
    h->seg_bytes = d->g.seg_bytes;
    h->pid = c->pid;
    comm->tr->shm = d;
    *listen_comm = d;
    pc_log(PC_LOG_INFO, PC_SUB_SHM,
           "shm segment %s: %zu KiB (direct %dx%zu KiB, %d FIFOs of %d x %zu KiB)", d->name,
           d->g.seg_bytes >> 10, d->g.direct_slots, d->g.direct_bytes >> 10, d->g.nlocal,
           d->g.nslots, d->g.slot_bytes >> 10);
    return podcclSuccess;
}

static int open_pidfd(pid_t pid) {
#ifdef SYS_pidfd_open
    return (int)syscall(SYS_pidfd_open, pid, 0);
#else
    (void)pid;
    return -1;
#endif
}

/* Symmetric: both ranks of a pair map each other's segment, so connect and accept are one. */
static podcclResult_t shm_connect(podcclComm_t comm, void *listen_comm, int peer,
                                  const void *handle, void **conn) {
    struct shm_domain *d = listen_comm;
    const shm_handle_t *h = handle;
    int lp = comm->topo->local_idx[peer];
    if (!d->peers[lp]) {
        if (h->seg_bytes != d->g.seg_bytes)
            return pc_err(comm, podcclInvalidUsage,
                          "rank %d's shared-memory geometry differs from ours (%llu vs %zu "
                          "bytes): set the same PODCCL_SHM_* variables on every rank",
                          peer, (unsigned long long)h->seg_bytes, d->g.seg_bytes);
        int fd = shm_open(h->name, O_RDWR, 0600);
        if (fd < 0)
            return pc_err(comm, podcclSystemError, "cannot open rank %d's segment %s: %s", peer,
                          h->name, strerror(errno));
        char *mem = mmap(NULL, d->g.seg_bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        close(fd);
        if (mem == MAP_FAILED)
            return pc_err(comm, podcclSystemError, "mmap of rank %d's segment: %s", peer,
                          strerror(errno));
        d->peers[lp] = mem;
        d->pidfd[lp] = open_pidfd(h->pid);
    }
    shm_conn *c = calloc(1, sizeof(*c));
    if (!c) return pc_err(comm, podcclSystemError, "out of memory");
    c->comm = comm;
    c->peer = peer;
    c->lpeer = lp;
    c->out = fifo_in(d, lp, comm->topo->local_rank);
    c->in = fifo_in(d, comm->topo->local_rank, lp);
    *conn = c;
    return podcclSuccess;
}

static podcclResult_t shm_connected(podcclComm_t comm, void *listen_comm) {
    struct shm_domain *d = listen_comm;
    (void)comm;
    if (!d->unlinked) shm_unlink(d->name);
    d->unlinked = 1;
    return podcclSuccess;
}

static int live_peer_dead(void *dom, int peer) {
    struct shm_domain *d = dom;
    podcclComm_t comm = d->comm;
    int lp = comm->topo->local_idx[peer];
    if (!d || lp < 0 || peer == comm->rank) return 0;
    if (d->pidfd[lp] >= 0) {
        struct pollfd p = {.fd = d->pidfd[lp], .events = POLLIN};
        return poll(&p, 1, 0) > 0;
    }
    /* No pidfd (old kernel): a vanished pid, or a zombie, is dead. */
    pid_t pid = comm->topo->pids[peer];
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

static void live_publish(void *dom, int culprit, podcclResult_t rc) {
    struct shm_domain *d = dom;
    if (!d) return;
    ctrl_t *c = ctrl_of(d, d->comm->topo->local_rank);
    int32_t none = 0;
    atomic_store_explicit(&c->failed_rc, (int32_t)rc, memory_order_relaxed);
    atomic_compare_exchange_strong(&c->failed_rank1, &none, culprit + 1);
}

static int live_failure_seen(void *dom, int *culprit, int *reporter, podcclResult_t *rc) {
    struct shm_domain *d = dom;
    if (!d) return 0;
    podcclComm_t comm = d->comm;
    for (int i = 0; i < d->g.nlocal; i++) {
        if (i == comm->topo->local_rank || !d->peers[i]) continue;
        ctrl_t *c = ctrl_of(d, i);
        int32_t f = atomic_load_explicit(&c->failed_rank1, memory_order_acquire);
        if (f) {
            *culprit = f - 1, *reporter = comm->topo->local_ranks[i];
            *rc = (podcclResult_t)atomic_load_explicit(&c->failed_rc, memory_order_relaxed);
            return 1;
        }
    }
    return 0;
}

static void live_heartbeat(void *dom, uint64_t now_ms) {
    struct shm_domain *d = dom;
    if (d)
        atomic_store_explicit(&ctrl_of(d, d->comm->topo->local_rank)->w[MD_W_HEARTBEAT].v, now_ms,
                              memory_order_release);
}

static int live_stalest(void *dom, double now) {
    struct shm_domain *d = dom;
    if (!d) return -1;
    podcclComm_t comm = d->comm;
    int who = -1;
    double worst = 1.0;
    for (int i = 0; i < comm->topo->nlocal; i++) {
        if (i == comm->topo->local_rank || !d->peers[i]) continue;
        uint64_t hb =
            atomic_load_explicit(&ctrl_of(d, i)->w[MD_W_HEARTBEAT].v, memory_order_acquire);
        double age = now - (double)hb * 1e-3;
        if (age > worst) worst = age, who = comm->topo->local_ranks[i];
    }
    return who;
}

const pc_live_ops shm_live_ops = {
    .heartbeat = live_heartbeat,
    .stalest = live_stalest,
    .peer_dead = live_peer_dead,
    .publish_failure = live_publish,
    .failure_seen = live_failure_seen,
};

/* ---- point to point ---------------------------------------------------------------------- */

static podcclResult_t post(shm_conn *c, int is_send, void *buf, size_t bytes, void **req) {
    shm_req *r = calloc(1, sizeof(*r));
    if (!r) {
        *req = NULL; /* retry later */
        return podcclSuccess;
    }
    r->conn = c, r->buf = buf, r->bytes = bytes, r->is_send = is_send;
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

static podcclResult_t shm_isend(void *conn, const void *buf, size_t bytes, int tag, void *mr,
                                void **req) {
    (void)tag, (void)mr;
    return post(conn, 1, (void *)buf, bytes, req);
}
static podcclResult_t shm_irecv(void *conn, void *buf, size_t bytes, int tag, void *mr,
                                void **req) {
    (void)tag, (void)mr;
    return post(conn, 0, buf, bytes, req);
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
    struct shm_domain *d = c->comm->tr->shm;
    fifo_t *f = c->out;
    while (c->sendq) {
        shm_req *r = c->sendq;
        uint64_t t = atomic_load_explicit(&f->tail, memory_order_relaxed);
        uint64_t h = atomic_load_explicit(&f->head, memory_order_acquire);
        if (t - h >= (uint64_t)d->g.nslots) return podcclSuccess;
        size_t n = r->bytes - r->moved;
        if (n > d->g.slot_bytes) n = d->g.slot_bytes;
        if (n) memcpy(fifo_slot(d, f, t), r->buf + r->moved, n);
        f->frag_bytes[t % (uint64_t)d->g.nslots] = n;
        atomic_store_explicit(&f->tail, t + 1, memory_order_release);
        r->moved += n;
        if (r->moved == r->bytes) pop_done(&c->sendq, &c->sendq_tail);
    }
    return podcclSuccess;
}

static podcclResult_t progress_recv(shm_conn *c) {
    struct shm_domain *d = c->comm->tr->shm;
    fifo_t *f = c->in;
    while (c->recvq) {
        shm_req *r = c->recvq;
        uint64_t h = atomic_load_explicit(&f->head, memory_order_relaxed);
        uint64_t t = atomic_load_explicit(&f->tail, memory_order_acquire);
        if (t == h) return podcclSuccess;
        size_t n = f->frag_bytes[h % (uint64_t)d->g.nslots];
        if (n > r->bytes - r->moved)
            return pc_err(c->comm, podcclInvalidUsage,
                          "rank %d sent more bytes than rank %d posted to receive (%zu > %zu): "
                          "mismatched counts or collective order",
                          c->peer, c->comm->rank, r->moved + n, r->bytes);
        if (n) memcpy(r->buf + r->moved, fifo_slot(d, f, h), n);
        atomic_store_explicit(&f->head, h + 1, memory_order_release);
        r->moved += n;
        if (r->moved == r->bytes) pop_done(&c->recvq, &c->recvq_tail);
    }
    return podcclSuccess;
}

static podcclResult_t shm_test(void *req, int *done, size_t *bytes) {
    shm_req *r = req;
    PCCHECK(r->is_send ? progress_send(r->conn) : progress_recv(r->conn));
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

static podcclResult_t shm_close_listen(void *listen_comm) {
    struct shm_domain *d = listen_comm;
    if (!d) return podcclSuccess;
    if (!d->unlinked) shm_unlink(d->name);
    for (int i = 0; i < d->g.nlocal; i++) {
        if (d->peers[i]) munmap(d->peers[i], d->g.seg_bytes);
        if (d->pidfd[i] >= 0) close(d->pidfd[i]);
    }
    free(d->peers);
    free(d->pidfd);
    free(d);
    return podcclSuccess;
}

static podcclResult_t shm_reg_mr(void *conn, void *buf, size_t bytes, void **mr) {
    (void)conn, (void)buf, (void)bytes;
    *mr = NULL; /* plain load/store: nothing to register */
    return podcclSuccess;
}
static podcclResult_t shm_dereg_mr(void *conn, void *mr) {
    (void)conn, (void)mr;
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
    .reg_mr = shm_reg_mr,
    .dereg_mr = shm_dereg_mr,
    .isend = shm_isend,
    .irecv = shm_irecv,
    .test = shm_test,
    .close = shm_close,
    .close_listen = shm_close_listen,
};

/* ---- direct (one-shot) domain ------------------------------------------------------------ */

size_t md_direct_bytes(podcclComm_t comm) {
    return comm->tr->shm->g.direct_cap;
}
int md_direct_slots(podcclComm_t comm) {
    return comm->tr->shm->g.direct_slots;
}
size_t shm_segment_bytes(podcclComm_t comm) {
    return comm->tr->shm ? comm->tr->shm->g.seg_bytes : 0;
}

char *md_direct_buf(podcclComm_t comm, int lidx, uint64_t seq) {
    struct shm_domain *d = comm->tr->shm;
    return d->peers[lidx] + d->g.off_direct +
           (seq % (uint64_t)d->g.direct_slots) * d->g.direct_bytes;
}

void md_word_set(podcclComm_t comm, int word, uint64_t v) {
    atomic_store_explicit(&ctrl_of(comm->tr->shm, comm->topo->local_rank)->w[word].v, v,
                          memory_order_release);
}

uint64_t md_word_get(podcclComm_t comm, int lidx, int word) {
    return atomic_load_explicit(&ctrl_of(comm->tr->shm, lidx)->w[word].v, memory_order_acquire);
}

podcclResult_t md_word_wait(podcclComm_t comm, int lidx, int word, uint64_t v) {
    return md_wait_ge(comm, lidx, &ctrl_of(comm->tr->shm, lidx)->w[word].v, v);
}

podcclResult_t md_wait_ge(podcclComm_t comm, int lidx, _Atomic uint64_t *w, uint64_t v) {
    if (atomic_load_explicit(w, memory_order_acquire) >= v) return podcclSuccess;
    pc_wait wt;
    pc_wait_reset(&wt);
    int peer = comm->topo->local_ranks[lidx];
    while (atomic_load_explicit(w, memory_order_acquire) < v) {
        podcclResult_t r = pc_wait_idle(comm, &wt, &peer, 1);
        if (r == podcclInProgress) {
            if (atomic_load_explicit(w, memory_order_acquire) >= v) break;
            return pc_wait_gone(comm, &wt);
        }
        if (r != podcclSuccess) return r;
    }
    return podcclSuccess;
}

/* ---- single copy: Linux Cross-Memory Attach (process_vm_readv) ---------------------------- */

int md_cma_ok(podcclComm_t comm) {
    return comm->tr->shm && comm->tr->shm->cma_ok;
}

void md_cma_publish(podcclComm_t comm, const void *send, const void *recv, const void *aux,
                    const size_t *counts, const size_t *displs) {
    ctrl_t *c = ctrl_of(comm->tr->shm, comm->topo->local_rank);
    c->cma_addr[0] = (uint64_t)(uintptr_t)send;
    c->cma_addr[1] = (uint64_t)(uintptr_t)recv;
    c->cma_addr[2] = (uint64_t)(uintptr_t)aux;
    if (counts)
        for (int i = 0; i < comm->topo->nlocal; i++)
            c->counts[i] = counts[i], c->counts[comm->topo->nlocal + i] = displs[i];
}

uint64_t md_cma_addr(podcclComm_t comm, int lidx, int which) {
    return ctrl_of(comm->tr->shm, lidx)->cma_addr[which];
}

void md_cma_counts(podcclComm_t comm, int lidx, int to, size_t *count, size_t *displ) {
    ctrl_t *c = ctrl_of(comm->tr->shm, lidx);
    *count = c->counts[to];
    *displ = c->counts[comm->topo->nlocal + to];
}

podcclResult_t md_cma_read(podcclComm_t comm, int lidx, void *local, uint64_t remote,
                           size_t bytes) {
    pid_t pid = ctrl_of(comm->tr->shm, lidx)->pid;
    while (bytes) {
        struct iovec l = {.iov_base = local, .iov_len = bytes};
        struct iovec r = {.iov_base = (void *)(uintptr_t)remote, .iov_len = bytes};
        ssize_t got = process_vm_readv(pid, &l, 1, &r, 1, 0);
        if (got <= 0) {
            if (got < 0 && errno == EINTR) continue;
            int peer = comm->topo->local_ranks[lidx];
            if (got < 0 && errno == ESRCH) {
                pc_publish_failure(comm, peer, podcclRemoteError);
                return pc_err(comm, podcclRemoteError, "rank %d: peer rank %d (pid %d) has exited",
                              comm->rank, peer, (int)pid);
            }
            return pc_err(comm, podcclSystemError, "rank %d: process_vm_readv from rank %d: %s",
                          comm->rank, peer, got < 0 ? strerror(errno) : "read nothing");
        }
        local = (char *)local + got, remote += (uint64_t)got, bytes -= (size_t)got;
    }
    return podcclSuccess;
}

/* Single copy needs the kernel to let ranks read each other (ptrace access: same user, Yama
 * scope, no seccomp filter against process_vm_readv). Probe every local peer: read the pid
 * field of its control block through its own mapping. */
int md_cma_probe(podcclComm_t comm) {
    struct shm_domain *d = comm->tr->shm;
    const char *mode = pc_param_str("PODCCL_SHM_CMA");
    if (mode && strcmp(mode, "0") == 0) return 0;
    for (int i = 0; i < d->g.nlocal; i++) {
        if (i == comm->topo->local_rank) continue;
        ctrl_t *c = ctrl_of(d, i);
        int32_t pid = 0;
        struct iovec l = {.iov_base = &pid, .iov_len = sizeof(pid)};
        struct iovec r = {.iov_base = (void *)(uintptr_t)(c->self_addr + offsetof(ctrl_t, pid)),
                          .iov_len = sizeof(pid)};
        if (process_vm_readv(c->pid, &l, 1, &r, 1, 0) != (ssize_t)sizeof(pid) || pid != c->pid) {
            pc_log(PC_LOG_INFO, PC_SUB_SHM,
                   "single copy (process_vm_readv) to rank %d not allowed: %s",
                   comm->topo->local_ranks[i], strerror(errno));
            return 0;
        }
    }
    return 1;
}

void md_cma_set_ok(podcclComm_t comm, int ok) {
    comm->tr->shm->cma_ok = ok;
}
