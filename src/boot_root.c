/* The rendezvous service: one thread per process serves every open unique id (podcclGetUniqueId,
 * env-init rank 0, podcclCommShrink's new root). For each rendezvous it accepts connections
 * concurrently, authenticates them (boot_proto.h), records the ranks that join, watches the
 * joined connections (a rank that dies before everyone has joined fails the rendezvous at once,
 * named), and answers every rank with the table of listen addresses, or with why the rendezvous
 * failed: disagreeing ranks, a dead rank, or the ranks still missing at the deadline. A
 * connection that does not authenticate within a few seconds is dropped; at most
 * BOOT_MAX_PENDING wait at once per rendezvous, so strangers cost the job nothing. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

#include "boot_root.h"
#include "boot_sock.h"

#define MAX_RDV 1024

typedef struct rdv {
    int lfd;
    uint8_t key[PC_SECRET_BYTES];
    double deadline;
    int nranks, joined, failed;
    bp_answer fail; /* the answer late ranks get once failed */
    int *fds;       /* [nranks] joined connections, -1 */
    int self;       /* the joined rank that runs in this process (answered last), or -1 */
    int answered;   /* ranks answered so far (late ones after a failure included) */
    int lingering;  /* this process holds boot_root_linger's count for it */
    uint8_t *nonce; /* [nranks][BP_NONCE] */
    uint8_t *table; /* [nranks][BP_ADDR_BYTES] */
    boot_pend *pend;
    int npend;
    struct rdv *next;
} rdv;

/* Failed rendezvous hosted here that still owe ranks an answer: a process whose own rank just
 * failed waits (boot_root_linger) so that late ranks learn the cause instead of finding the root
 * gone with the process. */
static _Atomic int lingering;

static struct {
    pthread_mutex_t lock;
    int started;
    int wake[2];
    rdv *incoming; /* handed over by boot_root_start*, taken by the thread */
    int count;     /* rendezvous open, incoming included */
    int evict;     /* over MAX_RDV: the thread closes this many idle ones, oldest first */
} S = {.lock = PTHREAD_MUTEX_INITIALIZER};

static void rdv_free(rdv *r) {
    if (r->lingering) atomic_fetch_sub(&lingering, 1);
    if (r->lfd >= 0) close(r->lfd);
    for (int i = 0; r->fds && i < r->nranks; i++)
        if (r->fds[i] >= 0) close(r->fds[i]);
    while (r->npend > 0) boot_pend_drop(&r->pend, &r->npend, 0);
    free(r->pend), free(r->fds), free(r->nonce), free(r->table);
    free(r);
}

/* Sends the signed answer (head, then the table when OK) to one rank and closes. */
static void answer(rdv *r, int fd, const uint8_t *nonce, const bp_answer *a) {
    uint8_t head[BP_ANSWER_BYTES];
    bp_answer x = *a;
    memset(x.mac, 0, sizeof(x.mac));
    bp_answer_encode(&x, head);
    size_t tbytes = a->status == BP_OK ? (size_t)r->nranks * BP_ADDR_BYTES : 0;
    bp_mac_answer(r->key, nonce, head, r->table, tbytes, head + 24);
    double dl = pc_now() + 5;
    if (boot_send_all(fd, head, sizeof(head), dl) == podcclSuccess && tbytes)
        boot_send_all(fd, r->table, tbytes, dl);
    close(fd);
    if (++r->answered >= r->nranks && r->lingering) {
        r->lingering = 0;
        atomic_fetch_sub(&lingering, 1);
    }
}

/* Answers every joined rank, the one in this process last: once it has its answer it may
 * exit, and this thread with it. */
static void answer_all(rdv *r, const bp_answer *a) {
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; r->fds && i < r->nranks; i++)
            if (r->fds[i] >= 0 && (i == r->self) == pass) {
                answer(r, r->fds[i], r->nonce + (size_t)i * BP_NONCE, a);
                r->fds[i] = -1;
            }
}

static void rdv_fail(rdv *r, uint32_t status, int culprit, uint32_t missing) {
    r->failed = 1;
    if (r->self >= 0 && r->nranks > 0 && !r->lingering) {
        r->lingering = 1;
        atomic_fetch_add(&lingering, 1);
    }
    r->fail = (bp_answer){.status = status,
                          .nranks = r->nranks > 0 ? r->nranks : 1,
                          .culprit = culprit,
                          .missing = missing};
    pc_log(PC_LOG_WARN, PC_SUB_BOOT,
           "bootstrap root: rendezvous failed (%s, rank %d%s); answering every rank",
           status == BP_DEAD      ? "a rank died after joining"
           : status == BP_TIMEOUT ? "deadline passed with ranks missing"
                                  : "ranks disagree",
           culprit, status == BP_TIMEOUT ? " is the first missing" : "");
    answer_all(r, &r->fail);
}

/* An authenticated hello arrived on p. Returns 1 when the rendezvous is complete. */
static int rdv_join(rdv *r, boot_pend *p) {
    const bp_m1 *h = &p->m1;
    if (h->kind != BP_KIND_ROOT) {
        close(p->fd);
        return 0;
    }
    if (r->nranks < 0) {
        r->nranks = h->nranks;
        r->fds = malloc(sizeof(int) * (size_t)r->nranks);
        r->nonce = calloc((size_t)r->nranks, BP_NONCE);
        r->table = calloc((size_t)r->nranks, BP_ADDR_BYTES);
        if (!r->fds || !r->nonce || !r->table) {
            close(p->fd);
            r->nranks = 1;
            rdv_fail(r, BP_BUSY, -1, 0);
            return 0;
        }
        for (int i = 0; i < r->nranks; i++) r->fds[i] = -1;
    }
    if (!r->failed && (h->nranks != r->nranks || r->fds[h->rank] >= 0)) {
        pc_log(PC_LOG_WARN, PC_SUB_BOOT,
               "bootstrap root: rank %d says nranks=%d, expected %d (or the rank joined twice)",
               h->rank, h->nranks, r->nranks);
        rdv_fail(r, BP_MISMATCH, -1, 0);
    }
    if (r->failed) {
        if (h->pid == (uint32_t)getpid() && !r->lingering && r->answered + 1 < r->nranks) {
            r->lingering = 1; /* this process's own rank is told now: the rest still need it */
            atomic_fetch_add(&lingering, 1);
        }
        bp_answer a = r->fail;
        a.nranks = h->nranks;
        if (a.culprit >= a.nranks) a.culprit = -1;
        answer(r, p->fd, h->nonce, &a);
        return 0;
    }
    r->fds[h->rank] = p->fd;
    if (h->pid == (uint32_t)getpid()) r->self = h->rank;
    /* Answer (naming the missing ranks) a little before the first joined rank gives up. */
    double rank_deadline = pc_now() + h->timeout_ms * 1e-3 - 0.5;
    if (h->timeout_ms && rank_deadline < r->deadline) r->deadline = rank_deadline;
    memcpy(r->nonce + (size_t)h->rank * BP_NONCE, h->nonce, BP_NONCE);
    bp_put_addr(r->table + (size_t)h->rank * BP_ADDR_BYTES, &h->listen);
    if (++r->joined < r->nranks) return 0;
    bp_answer ok = {.status = BP_OK, .nranks = r->nranks, .culprit = -1};
    answer_all(r, &ok);
    return 1;
}

/* The deadline passed: name the ranks that never joined. */
static void rdv_expire(rdv *r) {
    if (r->failed || r->nranks < 0) return;
    int first = -1;
    uint32_t missing = 0;
    for (int i = 0; i < r->nranks; i++)
        if (r->fds[i] < 0) {
            if (first < 0) first = i;
            missing++;
        }
    rdv_fail(r, BP_TIMEOUT, first, missing);
}

/* One pass over a rendezvous after poll: returns 1 when it is finished. p holds its
 * descriptors in the order rdv_pollfds wrote them. */
static int rdv_step(rdv *r, const struct pollfd *p, double now) {
    /* A joined rank sends nothing more: readable means it died or gave up. */
    int k = 1, dead = -1;
    for (int i = 0; r->fds && i < r->nranks; i++)
        if (r->fds[i] >= 0 && p[k++].revents && dead < 0) dead = i;
    const struct pollfd *pp = p + k; /* the pending connections, as rdv_pollfds listed them */
    if (dead >= 0 && !r->failed) {
        close(r->fds[dead]);
        r->fds[dead] = -1;
        rdv_fail(r, BP_DEAD, dead, 0);
    }
    int done = 0;
    for (int i = r->npend - 1; i >= 0 && !done; i--) {
        if (!pp[i].revents) {
            if (now > r->pend[i].deadline) boot_pend_drop(&r->pend, &r->npend, i);
            continue;
        }
        int st = boot_pend_progress(&r->pend[i], r->key, -1);
        if (st == 1) {
            boot_pend taken = r->pend[i];
            r->pend[i] = r->pend[--r->npend];
            done = rdv_join(r, &taken);
        } else if (st < 0) {
            boot_pend_drop(&r->pend, &r->npend, i);
        }
    }
    if (done) return 1;
    if (p[0].revents) boot_accept_pending(r->lfd, &r->pend, &r->npend); /* after: indices */
    if (now > r->deadline) {
        rdv_expire(r);
        return 1;
    }
    return 0;
}

static int rdv_pollfds(const rdv *r, struct pollfd *p) {
    int k = 0;
    p[k++] = (struct pollfd){.fd = r->lfd, .events = POLLIN};
    for (int i = 0; r->fds && i < r->nranks; i++)
        if (r->fds[i] >= 0) p[k++] = (struct pollfd){.fd = r->fds[i], .events = POLLIN};
    for (int i = 0; i < r->npend; i++)
        p[k++] = (struct pollfd){.fd = r->pend[i].fd, .events = POLLIN};
    return k;
}

static void *service(void *arg) {
    (void)arg;
    rdv *list = NULL;
    for (;;) {
        pthread_mutex_lock(&S.lock);
        while (S.incoming) {
            rdv *r = S.incoming;
            S.incoming = r->next;
            r->next = list;
            list = r;
        }
        int wakefd = S.wake[0], evict = S.evict;
        S.evict = 0;
        pthread_mutex_unlock(&S.lock);
        /* The list is newest first: the oldest idle rendezvous are at its end. */
        for (; evict > 0; evict--) {
            rdv **victim = NULL;
            for (rdv **pp = &list; *pp; pp = &(*pp)->next)
                if ((*pp)->joined == 0 && (*pp)->npend == 0) victim = pp;
            if (!victim) break;
            rdv *v = *victim;
            *victim = v->next;
            rdv_free(v);
            pthread_mutex_lock(&S.lock);
            S.count--;
            pthread_mutex_unlock(&S.lock);
        }
        size_t nfd = 1;
        for (rdv *r = list; r; r = r->next)
            nfd += 1 + (size_t)(r->nranks > 0 ? r->nranks : 0) + (size_t)r->npend;
        struct pollfd *p = calloc(nfd, sizeof(*p));
        if (!p) {
            usleep(10000);
            continue;
        }
        p[0] = (struct pollfd){.fd = wakefd, .events = POLLIN};
        size_t k = 1;
        for (rdv *r = list; r; r = r->next) k += (size_t)rdv_pollfds(r, p + k);
        poll(p, (nfds_t)k, list ? 100 : -1);
        if (p[0].revents) {
            char buf[64];
            while (read(wakefd, buf, sizeof(buf)) > 0) {
            }
        }
        double now = pc_now();
        k = 1;
        for (rdv **pp = &list; *pp;) {
            rdv *r = *pp;
            int n = 1 + r->npend; /* rdv_pollfds' layout: nothing has changed since */
            for (int i = 0; r->fds && i < r->nranks; i++) n += r->fds[i] >= 0;
            int fin = rdv_step(r, p + k, now);
            k += (size_t)n;
            if (fin) {
                *pp = r->next;
                rdv_free(r);
                pthread_mutex_lock(&S.lock);
                S.count--;
                pthread_mutex_unlock(&S.lock);
            } else {
                pp = &r->next;
            }
        }
        free(p);
    }
    return NULL;
}

/* In a forked child the service thread does not exist: forget the parent's rendezvous (their
 * sockets are copies) so the child can open its own. */
static void atfork_child(void) {
    pthread_mutex_init(&S.lock, NULL);
    for (rdv *r = S.incoming, *n; r; r = n) {
        n = r->next;
        rdv_free(r);
    }
    if (S.started) close(S.wake[0]), close(S.wake[1]);
    S.incoming = NULL;
    S.started = 0;
    S.count = 0;
}

static podcclResult_t service_add(rdv *r) {
    pthread_mutex_lock(&S.lock);
    podcclResult_t res = podcclSuccess;
    if (!S.started) {
        static int atfork_done;
        if (!atfork_done) pthread_atfork(NULL, NULL, atfork_child), atfork_done = 1;
        pthread_t t;
        pthread_attr_t attr;
        if (pipe2(S.wake, O_NONBLOCK | O_CLOEXEC) != 0) {
            res = pc_err(NULL, podcclSystemError, "bootstrap: pipe: %s", strerror(errno));
        } else {
            pthread_attr_init(&attr);
            pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
            int e = pthread_create(&t, &attr, service, NULL);
            pthread_attr_destroy(&attr);
            if (e) {
                close(S.wake[0]), close(S.wake[1]);
                res = pc_err(NULL, podcclSystemError, "pthread_create: %s", strerror(e));
            } else {
                S.started = 1;
            }
        }
    }
    if (res == podcclSuccess && S.count >= MAX_RDV) {
        static int warned;
        S.evict++;
        if (!warned++)
            pc_log(PC_LOG_WARN, PC_SUB_BOOT,
                   "bootstrap: %d unique ids are open in this process (each is kept until every "
                   "rank has joined or PODCCL_TIMEOUT passes): closing the oldest that nobody has "
                   "joined",
                   S.count);
    }
    if (res == podcclSuccess) {
        r->next = S.incoming;
        S.incoming = r;
        S.count++;
        (void)!write(S.wake[1], "w", 1);
    }
    pthread_mutex_unlock(&S.lock);
    return res;
}

void boot_root_linger(double seconds) {
    double end = pc_now() + seconds;
    while (atomic_load(&lingering) > 0 && pc_now() < end) usleep(1000);
}

podcclResult_t boot_root_serve(int lfd, const uint8_t secret[PC_SECRET_BYTES], double timeout) {
    rdv *r = calloc(1, sizeof(*r));
    if (!r) {
        close(lfd);
        return pc_err(NULL, podcclSystemError, "out of memory");
    }
    fcntl(lfd, F_SETFL, fcntl(lfd, F_GETFL) | O_NONBLOCK);
    r->lfd = lfd;
    memcpy(r->key, secret, PC_SECRET_BYTES);
    r->deadline = pc_now() + timeout;
    r->nranks = -1;
    r->self = -1;
    podcclResult_t res = service_add(r);
    if (res != podcclSuccess) rdv_free(r);
    return res;
}

podcclResult_t boot_root_start_secret(pc_id *id, double timeout) {
    int lfd;
    PCCHECK(boot_listen_on(&id->addr, &lfd));
    char s[80];
    pc_log(PC_LOG_INFO, PC_SUB_BOOT, "bootstrap root listening on %s",
           boot_addr_str(&id->addr, s, sizeof(s)));
    return boot_root_serve(lfd, id->secret, timeout);
}

podcclResult_t boot_root_start(pc_id *id, const pc_sockaddr *bind_addr, double timeout) {
    memset(id, 0, sizeof(*id));
    id->magic = PC_ID_MAGIC;
    if (bind_addr) {
        id->addr = *bind_addr;
    } else {
        const char *commid = pc_param_str("PODCCL_COMM_ID");
        if (commid)
            PCCHECK(boot_parse_addr(commid, &id->addr));
        else
            PCCHECK(boot_pick_interface(&id->addr));
    }
    if (bp_random(id->secret, sizeof(id->secret)) != 0)
        return pc_err(NULL, podcclSystemError, "no random bytes (RAND_bytes failed)");
    return boot_root_start_secret(id, timeout);
}
