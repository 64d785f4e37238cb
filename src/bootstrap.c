/* Bootstrap over TCP. The root (a thread started by podcclGetUniqueId, or by rank 0 in
 * podcclCommInitFromEnv) collects one hello per rank, checks the secret, and answers every rank
 * with the table of listen addresses. Ranks then connect a ring (rank -> rank+1) and use it for
 * all-gathers during setup. A hello with a wrong secret is refused and does not disturb the
 * others; an inconsistent nranks or a duplicate rank fails the whole rendezvous, and the root
 * answers every rank with that error instead of letting them wait. */
#include "bootstrap.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <sys/random.h>
#include <unistd.h>

enum { HELLO_OK = 0, HELLO_REFUSED = 1, HELLO_MISMATCH = 2 };

typedef struct {
    uint64_t magic;
    uint8_t secret[16];
    int32_t rank, nranks;
    pc_sockaddr listen;
} hello_t;

typedef struct {
    int32_t status;
    int32_t nranks;
} reply_t;

static socklen_t addr_len(const pc_sockaddr *a) {
    return a->sa.sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
}

static const char *addr_str(const pc_sockaddr *a, char *buf, size_t n) {
    char ip[INET6_ADDRSTRLEN] = "?";
    int port;
    if (a->sa.sa_family == AF_INET6) {
        inet_ntop(AF_INET6, &a->sin6.sin6_addr, ip, sizeof(ip));
        port = ntohs(a->sin6.sin6_port);
    } else {
        inet_ntop(AF_INET, &a->sin.sin_addr, ip, sizeof(ip));
        port = ntohs(a->sin.sin_port);
    }
    snprintf(buf, n, "%s:%d", ip, port);
    return buf;
}

/* ---- socket helpers: everything waits with poll() up to a deadline, never forever ---------- */

static podcclResult_t wait_fd(int fd, short ev, double deadline, const char *what) {
    for (;;) {
        double left = deadline - pc_now();
        if (left <= 0) return pc_err(NULL, podcclTimeout, "bootstrap: timed out %s", what);
        struct pollfd p = {.fd = fd, .events = ev};
        int r = poll(&p, 1, (int)(left * 1000) + 1);
        if (r > 0) return podcclSuccess;
        if (r < 0 && errno != EINTR)
            return pc_err(NULL, podcclSystemError, "bootstrap: poll: %s", strerror(errno));
    }
}

static podcclResult_t send_all(int fd, const void *buf, size_t n, double deadline) {
    const char *p = buf;
    while (n) {
        ssize_t r = send(fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (r > 0) {
            p += r;
            n -= (size_t)r;
        } else if (r < 0 && (errno == EAGAIN || errno == EINTR)) {
            PCCHECK(wait_fd(fd, POLLOUT, deadline, "sending to a peer"));
        } else {
            return pc_err(NULL, podcclRemoteError, "bootstrap: peer closed the connection (%s)",
                          r < 0 ? strerror(errno) : "send returned 0");
        }
    }
    return podcclSuccess;
}

static podcclResult_t recv_all(int fd, void *buf, size_t n, double deadline) {
    char *p = buf;
    while (n) {
        ssize_t r = recv(fd, p, n, MSG_DONTWAIT);
        if (r > 0) {
            p += r;
            n -= (size_t)r;
        } else if (r == 0) {
            return pc_err(NULL, podcclRemoteError, "bootstrap: peer closed the connection");
        } else if (errno == EAGAIN || errno == EINTR) {
            PCCHECK(wait_fd(fd, POLLIN, deadline, "waiting for a peer"));
        } else {
            return pc_err(NULL, podcclRemoteError, "bootstrap: recv: %s", strerror(errno));
        }
    }
    return podcclSuccess;
}

static podcclResult_t listen_on(pc_sockaddr *addr, int *fd_out) {
    int fd = socket(addr->sa.sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return pc_err(NULL, podcclSystemError, "bootstrap: socket: %s", strerror(errno));
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    char s[80];
    if (bind(fd, &addr->sa, addr_len(addr)) != 0 || listen(fd, 1024) != 0) {
        int e = errno;
        close(fd);
        return pc_err(NULL, podcclSystemError, "bootstrap: cannot listen on %s: %s",
                      addr_str(addr, s, sizeof(s)), strerror(e));
    }
    socklen_t len = sizeof(*addr);
    getsockname(fd, &addr->sa, &len);
    *fd_out = fd;
    return podcclSuccess;
}

/* Connects, retrying while the listener is not up yet (the root may start after the ranks). */
static podcclResult_t connect_to(const pc_sockaddr *addr, double deadline, int *fd_out) {
    char s[80];
    double backoff = 0.001;
    for (;;) {
        int fd = socket(addr->sa.sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
            return pc_err(NULL, podcclSystemError, "bootstrap: socket: %s", strerror(errno));
        if (connect(fd, &addr->sa, addr_len(addr)) == 0) {
            int one = 1;
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
            *fd_out = fd;
            return podcclSuccess;
        }
        int e = errno;
        close(fd);
        if (e != ECONNREFUSED && e != ETIMEDOUT && e != EINTR && e != EAGAIN)
            return pc_err(NULL, podcclSystemError, "bootstrap: connect to %s: %s",
                          addr_str(addr, s, sizeof(s)), strerror(e));
        if (pc_now() + backoff > deadline)
            return pc_err(NULL, podcclRemoteError,
                          "bootstrap: nobody listens at %s (%s); is the root process alive?",
                          addr_str(addr, s, sizeof(s)), strerror(e));
        usleep((useconds_t)(backoff * 1e6));
        if (backoff < 0.1) backoff *= 2;
    }
}

static podcclResult_t accept_from(int lfd, double deadline, int *fd_out) {
    for (;;) {
        PCCHECK(wait_fd(lfd, POLLIN, deadline, "waiting for a connection"));
        int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd >= 0) {
            int one = 1;
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
            *fd_out = fd;
            return podcclSuccess;
        }
        if (errno != EINTR && errno != EAGAIN && errno != ECONNABORTED)
            return pc_err(NULL, podcclSystemError, "bootstrap: accept: %s", strerror(errno));
    }
}

/* ---- interfaces ---------------------------------------------------------------------------- */

/* NCCL_SOCKET_IFNAME syntax: "eth,ib" prefixes; "^docker" excludes; "=eth0" exact names. */
static int if_matches(const char *name, const char *spec) {
    int exclude = 0, exact = 0;
    if (*spec == '^') exclude = 1, spec++;
    if (*spec == '=') exact = 1, spec++;
    char buf[256];
    snprintf(buf, sizeof(buf), "%s", spec);
    int hit = 0;
    for (char *save, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save))
        if (exact ? strcmp(name, t) == 0 : strncmp(name, t, strlen(t)) == 0) hit = 1;
    return exclude ? !hit : hit;
}

podcclResult_t boot_pick_interface(pc_sockaddr *out) {
    const char *spec = pc_param_str("PODCCL_SOCKET_IFNAME");
    struct ifaddrs *ifs;
    if (getifaddrs(&ifs) != 0)
        return pc_err(NULL, podcclSystemError, "bootstrap: getifaddrs: %s", strerror(errno));
    /* Preference: a matching interface; with no spec, skip lo and docker* if anything else is
     * up, and prefer IPv4. */
    const struct ifaddrs *best = NULL;
    int best_score = -1;
    for (const struct ifaddrs *i = ifs; i; i = i->ifa_next) {
        if (!i->ifa_addr || !(i->ifa_flags & IFF_UP)) continue;
        int fam = i->ifa_addr->sa_family;
        if (fam != AF_INET && fam != AF_INET6) continue;
        if (fam == AF_INET6 &&
            IN6_IS_ADDR_LINKLOCAL(&((const struct sockaddr_in6 *)i->ifa_addr)->sin6_addr))
            continue;
        int score;
        if (spec) {
            if (!if_matches(i->ifa_name, spec)) continue;
            score = 2;
        } else {
            int lo = (i->ifa_flags & IFF_LOOPBACK) != 0;
            int docker = strncmp(i->ifa_name, "docker", 6) == 0;
            score = (lo || docker) ? 0 : 2;
        }
        score = score * 2 + (fam == AF_INET);
        if (score > best_score) best = i, best_score = score;
    }
    if (!best) {
        freeifaddrs(ifs);
        return pc_err(NULL, podcclSystemError,
                      "bootstrap: no network interface matches PODCCL_SOCKET_IFNAME=%s (see `ip "
                      "addr`)",
                      spec ? spec : "(unset)");
    }
    memset(out, 0, sizeof(*out));
    memcpy(out, best->ifa_addr,
           best->ifa_addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                                 : sizeof(struct sockaddr_in));
    pc_log(PC_LOG_INFO, PC_SUB_BOOT, "bootstrap interface %s", best->ifa_name);
    freeifaddrs(ifs);
    return podcclSuccess;
}

podcclResult_t boot_parse_addr(const char *s, pc_sockaddr *out) {
    char host[256];
    const char *colon = strrchr(s, ':');
    if (!colon || colon == s)
        return pc_err(NULL, podcclInvalidArgument, "address '%s' is not host:port", s);
    size_t hl = (size_t)(colon - s);
    if (s[0] == '[' && hl >= 2 && s[hl - 1] == ']') s++, hl -= 2;
    if (hl >= sizeof(host)) return pc_err(NULL, podcclInvalidArgument, "host name too long");
    memcpy(host, s, hl);
    host[hl] = 0;
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res;
    int r = getaddrinfo(host, colon + 1, &hints, &res);
    if (r != 0)
        return pc_err(NULL, podcclInvalidArgument, "cannot resolve '%s': %s", s, gai_strerror(r));
    memset(out, 0, sizeof(*out));
    memcpy(out, res->ai_addr, res->ai_addrlen);
    freeaddrinfo(res);
    return podcclSuccess;
}

/* ---- root -------------------------------------------------------------------------------- */

typedef struct {
    int lfd;
    uint8_t secret[16];
    double timeout;
} root_args;

static void root_reply_close(int fd, int32_t status, double deadline) {
    reply_t r = {.status = status};
    send_all(fd, &r, sizeof(r), deadline);
    close(fd);
}

static void *root_thread(void *arg) {
    root_args a = *(root_args *)arg;
    free(arg);
    double deadline = pc_now() + a.timeout;
    int nranks = -1, joined = 0, failed = 0;
    int *fds = NULL;
    pc_sockaddr *addrs = NULL;
    for (;;) {
        int fd;
        if (accept_from(a.lfd, deadline, &fd) != podcclSuccess) break;
        hello_t h;
        if (recv_all(fd, &h, sizeof(h), pc_now() + 10) != podcclSuccess) {
            close(fd);
            continue;
        }
        if (h.magic != PC_ID_MAGIC || memcmp(h.secret, a.secret, 16) != 0) {
            pc_log(PC_LOG_WARN, PC_SUB_BOOT,
                   "bootstrap root: refused a connection with a wrong secret");
            root_reply_close(fd, HELLO_REFUSED, pc_now() + 1);
            continue;
        }
        if (nranks < 0 && h.nranks > 0 && h.nranks <= (1 << 20)) {
            nranks = h.nranks;
            fds = malloc(sizeof(int) * nranks);
            addrs = calloc(nranks, sizeof(*addrs));
            if (!fds || !addrs) break;
            for (int i = 0; i < nranks; i++) fds[i] = -1;
        }
        if (failed || h.nranks != nranks || h.rank < 0 || h.rank >= nranks || fds[h.rank] >= 0) {
            pc_log(PC_LOG_WARN, PC_SUB_BOOT,
                   "bootstrap root: rank %d says nranks=%d, expected %d (or duplicate rank): "
                   "failing the rendezvous",
                   h.rank, h.nranks, nranks);
            root_reply_close(fd, HELLO_MISMATCH, pc_now() + 1);
            if (!failed && fds)
                for (int i = 0; i < nranks; i++)
                    if (fds[i] >= 0) root_reply_close(fds[i], HELLO_MISMATCH, pc_now() + 1);
            failed = 1;
            continue; /* keep answering late ranks with the error until the deadline */
        }
        fds[h.rank] = fd;
        addrs[h.rank] = h.listen;
        if (++joined == nranks) {
            reply_t r = {.status = HELLO_OK, .nranks = nranks};
            for (int i = 0; i < nranks; i++) {
                double dl = pc_now() + a.timeout;
                if (send_all(fds[i], &r, sizeof(r), dl) == podcclSuccess)
                    send_all(fds[i], addrs, sizeof(*addrs) * nranks, dl);
                close(fds[i]);
                fds[i] = -1;
            }
            break;
        }
    }
    if (fds)
        for (int i = 0; i < nranks; i++)
            if (fds[i] >= 0) close(fds[i]);
    free(fds);
    free(addrs);
    close(a.lfd);
    return NULL;
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
    if (getrandom(id->secret, sizeof(id->secret), 0) != (ssize_t)sizeof(id->secret))
        return pc_err(NULL, podcclSystemError, "getrandom: %s", strerror(errno));
    return boot_root_start_secret(id, timeout);
}

podcclResult_t boot_root_start_secret(pc_id *id, double timeout) {
    int lfd;
    PCCHECK(listen_on(&id->addr, &lfd));
    root_args *a = malloc(sizeof(*a));
    if (!a) {
        close(lfd);
        return pc_err(NULL, podcclSystemError, "out of memory");
    }
    a->lfd = lfd;
    memcpy(a->secret, id->secret, 16);
    a->timeout = timeout;
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    int r = pthread_create(&t, &attr, root_thread, a);
    pthread_attr_destroy(&attr);
    if (r != 0) {
        close(lfd);
        free(a);
        return pc_err(NULL, podcclSystemError, "pthread_create: %s", strerror(r));
    }
    char s[80];
    pc_log(PC_LOG_INFO, PC_SUB_BOOT, "bootstrap root listening on %s",
           addr_str(&id->addr, s, sizeof(s)));
    return podcclSuccess;
}

/* ---- ranks ------------------------------------------------------------------------------- */

typedef struct {
    uint64_t magic;
    uint8_t secret[16];
    int32_t rank;
} ring_hello_t;

podcclResult_t boot_init(pc_boot *b, const pc_id *id, int rank, int nranks, double timeout) {
    podcclResult_t res = podcclSuccess;
    int rootfd = -1, lfd = -1;
    pc_sockaddr *addrs = NULL;
    char s[80];
    memset(b, 0, sizeof(*b));
    b->rank = rank, b->nranks = nranks, b->timeout = timeout;
    b->next_fd = b->prev_fd = -1;
    memcpy(b->secret, id->secret, 16);
    double deadline = pc_now() + timeout;
    if (id->magic != PC_ID_MAGIC)
        return pc_err(NULL, podcclInvalidArgument, "unique id is not a podccl id (bad magic)");

    PCCHECKGOTO(connect_to(&id->addr, deadline, &rootfd), res, out);
    /* Listen on the address that reaches the root: it is routable from the other ranks. */
    hello_t h = {.magic = PC_ID_MAGIC, .rank = rank, .nranks = nranks};
    memcpy(h.secret, id->secret, 16);
    socklen_t len = sizeof(h.listen);
    getsockname(rootfd, &h.listen.sa, &len);
    /* PODCCL_SOCKET_IFNAME, when set, names the interface for every bootstrap socket. */
    const char *ifspec = pc_param_str("PODCCL_SOCKET_IFNAME");
    if (ifspec && *ifspec) PCCHECKGOTO(boot_pick_interface(&h.listen), res, out);
    if (h.listen.sa.sa_family == AF_INET6)
        h.listen.sin6.sin6_port = 0;
    else
        h.listen.sin.sin_port = 0;
    b->local = h.listen;
    PCCHECKGOTO(listen_on(&h.listen, &lfd), res, out);
    PCCHECKGOTO(send_all(rootfd, &h, sizeof(h), deadline), res, out);
    reply_t r;
    res = recv_all(rootfd, &r, sizeof(r), deadline);
    if (res != podcclSuccess) {
        res = pc_err(NULL, res, "bootstrap: no answer from the root at %s",
                     addr_str(&id->addr, s, sizeof(s)));
        goto out;
    }
    if (r.status == HELLO_REFUSED) {
        res = pc_err(NULL, podcclRemoteError,
                     "bootstrap: the root at %s refused us: wrong secret in the unique id",
                     addr_str(&id->addr, s, sizeof(s)));
        goto out;
    }
    if (r.status != HELLO_OK || r.nranks != nranks) {
        res = pc_err(NULL, podcclRemoteError,
                     "bootstrap: ranks disagree on nranks or a rank joined twice (this rank: "
                     "rank %d of %d)",
                     rank, nranks);
        goto out;
    }
    addrs = malloc(sizeof(*addrs) * nranks);
    if (!addrs) {
        res = pc_err(NULL, podcclSystemError, "out of memory");
        goto out;
    }
    PCCHECKGOTO(recv_all(rootfd, addrs, sizeof(*addrs) * nranks, deadline), res, out);

    if (nranks > 1) {
        ring_hello_t rh = {.magic = PC_ID_MAGIC, .rank = rank};
        memcpy(rh.secret, id->secret, 16);
        PCCHECKGOTO(connect_to(&addrs[(rank + 1) % nranks], deadline, &b->next_fd), res, out);
        PCCHECKGOTO(send_all(b->next_fd, &rh, sizeof(rh), deadline), res, out);
        while (b->prev_fd < 0) {
            int fd;
            PCCHECKGOTO(accept_from(lfd, deadline, &fd), res, out);
            ring_hello_t in;
            if (recv_all(fd, &in, sizeof(in), deadline) == podcclSuccess &&
                in.magic == PC_ID_MAGIC && memcmp(in.secret, id->secret, 16) == 0 &&
                in.rank == (rank + nranks - 1) % nranks) {
                b->prev_fd = fd;
            } else {
                pc_log(PC_LOG_WARN, PC_SUB_BOOT, "bootstrap: refused a ring connection");
                close(fd);
            }
        }
    }
out:
    free(addrs);
    if (rootfd >= 0) close(rootfd);
    if (lfd >= 0) close(lfd);
    if (res != podcclSuccess) boot_close(b);
    return res;
}

podcclResult_t boot_allgather(pc_boot *b, void *data, size_t bytes) {
    char *d = data;
    int n = b->nranks;
    for (int s = 0; s < n - 1; s++) {
        double deadline = pc_now() + b->timeout;
        int send_slot = (b->rank - s + n) % n, recv_slot = (b->rank - s - 1 + n) % n;
        PCCHECK(send_all(b->next_fd, d + (size_t)send_slot * bytes, bytes, deadline));
        PCCHECK(recv_all(b->prev_fd, d + (size_t)recv_slot * bytes, bytes, deadline));
    }
    return podcclSuccess;
}

podcclResult_t boot_barrier(pc_boot *b) {
    char *buf = calloc((size_t)b->nranks, 1);
    if (!buf) return pc_err(NULL, podcclSystemError, "out of memory");
    podcclResult_t r = boot_allgather(b, buf, 1);
    free(buf);
    return r;
}

void boot_close(pc_boot *b) {
    if (b->next_fd >= 0) close(b->next_fd);
    if (b->prev_fd >= 0) close(b->prev_fd);
    b->next_fd = b->prev_fd = -1;
}

int boot_peer_gone(pc_boot *b, int peer) {
    if (b->nranks < 2 || peer == b->rank) return 0;
    int fd = peer == (b->rank + 1) % b->nranks               ? b->next_fd
             : peer == (b->rank + b->nranks - 1) % b->nranks ? b->prev_fd
                                                             : -1;
    if (fd < 0) return 0;
    /* No setup traffic flows while collectives run: readable means end of stream. */
    struct pollfd p = {.fd = fd, .events = POLLIN | POLLRDHUP};
    if (poll(&p, 1, 0) <= 0) return 0;
    if (p.revents & (POLLHUP | POLLERR | POLLRDHUP)) return 1;
    char c;
    ssize_t r = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    return r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

int boot_poll_abort(pc_boot *b, int *culprit, char *why, size_t len) {
    (void)b, (void)why, (void)len;
    *culprit = -1;
    return 0;
}

void boot_send_abort(pc_boot *b, int culprit, const char *why) { (void)b, (void)culprit, (void)why; }
