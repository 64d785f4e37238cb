/* Sockets and the acceptor's side of the authenticated handshake, shared by the bootstrap's rank
 * side (bootstrap.c) and its rendezvous service (boot_root.c). Not used outside the bootstrap. */
#include "boot_sock.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <unistd.h>

/* ---- socket helpers: everything waits with poll() up to a deadline, never forever ---------- */

socklen_t boot_addr_len(const pc_sockaddr *a) {
    return a->sa.sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
}

const char *boot_addr_ip(const pc_sockaddr *a, char *buf, size_t n) {
    if (n) *buf = 0;
    if (a->sa.sa_family == AF_INET6)
        inet_ntop(AF_INET6, &a->sin6.sin6_addr, buf, (socklen_t)n);
    else if (a->sa.sa_family == AF_INET)
        inet_ntop(AF_INET, &a->sin.sin_addr, buf, (socklen_t)n);
    return buf;
}

const char *boot_addr_str(const pc_sockaddr *a, char *buf, size_t n) {
    char ip[INET6_ADDRSTRLEN];
    int port = ntohs(a->sa.sa_family == AF_INET6 ? a->sin6.sin6_port : a->sin.sin_port);
    snprintf(buf, n, "%s:%d", *boot_addr_ip(a, ip, sizeof(ip)) ? ip : "?", port);
    return buf;
}

podcclResult_t boot_wait_fd(int fd, short ev, double deadline, const char *what) {
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

podcclResult_t boot_send_all(int fd, const void *buf, size_t n, double deadline) {
    const char *p = buf;
    while (n) {
        ssize_t r = send(fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (r > 0) {
            p += r;
            n -= (size_t)r;
        } else if (r < 0 && (errno == EAGAIN || errno == EINTR)) {
            PCCHECK(boot_wait_fd(fd, POLLOUT, deadline, "sending to a peer"));
        } else {
            return pc_err(NULL, podcclRemoteError, "bootstrap: peer closed the connection (%s)",
                          r < 0 ? strerror(errno) : "send returned 0");
        }
    }
    return podcclSuccess;
}

podcclResult_t boot_recv_all(int fd, void *buf, size_t n, double deadline) {
    char *p = buf;
    while (n) {
        ssize_t r = recv(fd, p, n, MSG_DONTWAIT);
        if (r > 0) {
            p += r;
            n -= (size_t)r;
        } else if (r == 0) {
            return pc_err(NULL, podcclRemoteError, "bootstrap: peer closed the connection");
        } else if (errno == EAGAIN || errno == EINTR) {
            PCCHECK(boot_wait_fd(fd, POLLIN, deadline, "waiting for a peer"));
        } else {
            return pc_err(NULL, podcclRemoteError, "bootstrap: recv: %s", strerror(errno));
        }
    }
    return podcclSuccess;
}

podcclResult_t boot_listen_on(pc_sockaddr *addr, int *fd_out) {
    int fd = socket(addr->sa.sa_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) return pc_err(NULL, podcclSystemError, "bootstrap: socket: %s", strerror(errno));
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    char s[80];
    if (bind(fd, &addr->sa, boot_addr_len(addr)) != 0 || listen(fd, 4096) != 0) {
        int e = errno;
        close(fd);
        return pc_err(NULL, podcclSystemError, "bootstrap: cannot listen on %s: %s%s",
                      boot_addr_str(addr, s, sizeof(s)), strerror(e),
                      e == EADDRINUSE      ? " (another process has this port: another job, or an "
                                             "earlier run of this one)"
                      : e == EADDRNOTAVAIL ? " (the address is not one of this host's)"
                                           : "");
    }
    socklen_t len = sizeof(*addr);
    getsockname(fd, &addr->sa, &len);
    *fd_out = fd;
    return podcclSuccess;
}

/* ---- the acceptor's side of the handshake ---------------------------------------------------- */

void boot_pend_drop(boot_pend **pend, int *npend, int i) {
    close((*pend)[i].fd);
    (*pend)[i] = (*pend)[--*npend];
}

int boot_uid_refused(int fd, const char *role) {
    uid_t uid;
    if (bp_peer_uid(fd, &uid) != 1 || uid == geteuid()) return 0;
    pc_log(PC_LOG_WARN, PC_SUB_BOOT, "bootstrap: refused a %s owned by uid %u (this job: uid %u)",
           role, (unsigned)uid, (unsigned)geteuid());
    return 1;
}

void boot_accept_pending(int lfd, boot_pend **pend, int *npend) {
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd < 0) return; /* EAGAIN: all taken; other errors: the next poll retries */
        if (boot_uid_refused(fd, "connection")) {
            close(fd);
            continue;
        }
        if (*npend >= BOOT_MAX_PENDING) {
            int oldest = 0;
            for (int i = 1; i < *npend; i++)
                if ((*pend)[i].deadline < (*pend)[oldest].deadline) oldest = i;
            pc_log(PC_LOG_WARN, PC_SUB_BOOT,
                   "bootstrap: %d connections have not authenticated: dropping the oldest", *npend);
            boot_pend_drop(pend, npend, oldest);
        }
        boot_pend *p = realloc(*pend, sizeof(**pend) * (size_t)(*npend + 1));
        if (!p) {
            close(fd);
            return;
        }
        *pend = p;
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        p[*npend] = (boot_pend){.fd = fd, .deadline = pc_now() + BOOT_HANDSHAKE_S};
        ++*npend;
    }
}

int boot_pend_progress(boot_pend *p, const uint8_t key[PC_SECRET_BYTES], int self_rank) {
    size_t need = p->stage == 0 ? BP_M1_BYTES : BP_M1_BYTES + BP_M3_BYTES;
    while (p->have < need) {
        ssize_t r = recv(p->fd, p->buf + p->have, need - p->have, MSG_DONTWAIT);
        if (r > 0) {
            p->have += (size_t)r;
        } else if (r < 0 && (errno == EAGAIN || errno == EINTR)) {
            return 0;
        } else {
            return -1; /* closed before authenticating: a stranger, or a rank that gave up */
        }
    }
    char err[128];
    if (p->stage == 0) {
        if (bp_m1_decode(p->buf, BP_M1_BYTES, &p->m1, err, sizeof(err)) != 0) {
            pc_log(PC_LOG_WARN, PC_SUB_BOOT, "bootstrap: refused a connection: %s", err);
            return -1;
        }
        bp_m2 m2 = {.status = BP_OK, .rank = self_rank};
        if (bp_random(m2.nonce, BP_NONCE) != 0) return -1;
        bp_m2_encode(&m2, p->m2);
        bp_mac_a(key, p->buf, p->m2, p->m2 + BP_M2_BYTES - BP_MAC);
        /* 80 bytes on a fresh connection always fit its send buffer. */
        if (send(p->fd, p->m2, BP_M2_BYTES, MSG_NOSIGNAL | MSG_DONTWAIT) != BP_M2_BYTES) return -1;
        p->stage = 1;
        return boot_pend_progress(p, key, self_rank);
    }
    uint8_t want[BP_MAC];
    bp_mac_c(key, p->buf, p->m2, want);
    if (!bp_mac_equal(want, p->buf + BP_M1_BYTES)) {
        pc_log(PC_LOG_WARN, PC_SUB_BOOT,
               "bootstrap: refused a connection claiming rank %d: it does not know the secret",
               p->m1.rank);
        return -1;
    }
    return 1;
}

/* ---- addresses ---------------------------------------------------------------------------- */

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
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (colon[1] < '0' || colon[1] > '9' || *end || port < 1 || port > 65535)
        return pc_err(NULL, podcclInvalidArgument, "address '%s': port must be 1..65535", s);
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res;
    int r = getaddrinfo(host, colon + 1, &hints, &res);
    if (r != 0)
        return pc_err(NULL, podcclInvalidArgument, "cannot resolve '%s': %s", s, gai_strerror(r));
    memset(out, 0, sizeof(*out));
    memcpy(out, res->ai_addr, res->ai_addrlen);
    freeaddrinfo(res);
    return podcclSuccess;
}
