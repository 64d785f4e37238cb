/* Bootstrap over TCP, rank side. A rank connects to the rendezvous root (boot_root.c), both
 * prove they know the job's secret (HMAC challenge-response, boot_proto.h), and the root answers
 * every rank with the table of listen addresses, or with why the rendezvous failed (a rank died
 * after joining, ranks disagree, the deadline passed with ranks missing: named). Ranks then
 * connect a ring (rank -> rank+1), authenticated the same way, and use it for the setup
 * all-gathers in frames; an ABORT frame carries the first cause of a failed init around the ring
 * so every rank names it at once instead of waiting for its timeout. Silent or hostile
 * connections to any listener are handled concurrently with a short deadline and a cap: they cost
 * the job nothing. */
#include "bootstrap.h"
#include "boot_sock.h"
#include "boot_root.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <unistd.h>

/* ---- connecting ---------------------------------------------------------------------------- */

/* One TCP connection attempt, retried while nobody listens yet (the root may start after the
 * ranks) if retry is set. Fails at once otherwise. */
static podcclResult_t connect_to(const pc_sockaddr *addr, double deadline, int retry,
                                 const char *who, int *fd_out) {
    char s[80];
    double backoff = 0.001;
    for (;;) {
        int fd = socket(addr->sa.sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
            return pc_err(NULL, podcclSystemError, "bootstrap: socket: %s", strerror(errno));
        if (connect(fd, &addr->sa, boot_addr_len(addr)) == 0) {
            int one = 1;
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
            *fd_out = fd;
            return podcclSuccess;
        }
        int e = errno;
        close(fd);
        int transient = e == ECONNREFUSED || e == ETIMEDOUT || e == EINTR || e == EAGAIN;
        if (!transient || !retry || pc_now() + backoff > deadline)
            return pc_err(NULL, transient ? podcclRemoteError : podcclSystemError,
                          "bootstrap: cannot connect to %s at %s: %s", who,
                          boot_addr_str(addr, s, sizeof(s)), strerror(e));
        usleep((useconds_t)(backoff * 1e6));
        if (backoff < 0.1) backoff *= 2;
    }
}

/* ---- the connector's side ------------------------------------------------------------------- */

/* Sends M1 on a fresh connection (fits its send buffer) and keeps it in m1. */
static podcclResult_t hello_send(int fd, uint32_t kind, const pc_boot *b, double deadline,
                                 const pc_sockaddr *listen, uint8_t m1[BP_M1_BYTES]) {
    bp_m1 h = {.version = BP_VERSION, .kind = kind, .rank = b->rank, .nranks = b->nranks};
    double left = deadline - pc_now(); /* what is left of this rank's own time */
    h.timeout_ms = left <= 0 ? 1 : left * 1000 < 4e9 ? (uint32_t)(left * 1000) : 4000000000u;
    h.listen = *listen;
    h.pid = (uint32_t)getpid();
    h.uid = (uint32_t)geteuid();
    if (bp_random(h.nonce, BP_NONCE) != 0)
        return pc_err(NULL, podcclSystemError, "bootstrap: no random bytes (RAND_bytes)");
    bp_m1_encode(&h, m1);
    return boot_send_all(fd, m1, BP_M1_BYTES, pc_now() + 1);
}

/* With M2 received: checks the acceptor proved the key, then proves it back (M3). */
static podcclResult_t hello_finish(int fd, const uint8_t key[PC_SECRET_BYTES],
                                   const uint8_t m1[BP_M1_BYTES], const uint8_t m2b[BP_M2_BYTES],
                                   int want_rank, const char *who, int *send_failed) {
    bp_m2 m2;
    *send_failed = 0;
    char err[128];
    if (bp_m2_decode(m2b, BP_M2_BYTES, &m2, err, sizeof(err)) != 0)
        return pc_err(NULL, podcclRemoteError, "bootstrap: %s: %s", who, err);
    uint8_t want[BP_MAC], m3[BP_MAC];
    bp_mac_a(key, m1, m2b, want);
    if (!bp_mac_equal(want, m2.mac) || (want_rank >= 0 && m2.rank != want_rank))
        return pc_err(NULL, podcclRemoteError,
                      "bootstrap: %s does not know this job's secret: a different unique id "
                      "(another job, or a stale one), or a process that is not part of this job "
                      "took the address; nothing was sent to it",
                      who);
    if (boot_uid_refused(fd, who))
        return pc_err(NULL, podcclRemoteError, "bootstrap: %s: wrong uid", who);
    bp_mac_c(key, m1, m2b, m3);
    podcclResult_t res = boot_send_all(fd, m3, BP_MAC, pc_now() + 1);
    *send_failed = res != podcclSuccess;
    return res;
}

/* ---- interfaces ---------------------------------------------------------------------------- */

podcclResult_t boot_decode_id(const void *bytes, size_t len, pc_id *out) {
    if (len < sizeof(pc_id))
        return pc_err(NULL, podcclInvalidArgument, "unique id: %zu bytes, need %zu", len,
                      sizeof(pc_id));
    memcpy(out, bytes, sizeof(*out));
    if (out->magic != PC_ID_MAGIC)
        return pc_err(NULL, podcclInvalidArgument,
                      "not a unique id from podcclGetUniqueId of this podccl version (bad magic)");
    int fam = out->addr.sa.sa_family;
    if (fam != AF_INET && fam != AF_INET6)
        return pc_err(NULL, podcclInvalidArgument,
                      "unique id: root address family %d is neither IPv4 nor IPv6", fam);
    if (out->addr.sin.sin_port == 0)
        return pc_err(NULL, podcclInvalidArgument, "unique id: root address has port 0");
    return podcclSuccess;
}

/* ---- ring frames and abort notices ----------------------------------------------------------- */

static int ring_next(const pc_boot *b) {
    return (b->rank + 1) % b->nranks;
}
static int ring_prev(const pc_boot *b) {
    return (b->rank + b->nranks - 1) % b->nranks;
}

/* Sends an ABORT frame to both neighbours without waiting (a full socket skips that side). */
static void abort_out(pc_boot *b, int culprit, int reporter, const char *why) {
    uint8_t f[BP_FRAME_BYTES + BP_ABORT_HEAD + BP_MAX_WHY];
    size_t n = bp_abort_encode(culprit, reporter, b->abort_rc,
                               b->abort_ncalls ? b->abort_calls : NULL, why, f + BP_FRAME_BYTES);
    bp_frame_encode(BP_FRAME_ABORT, (uint32_t)n, f);
    int fds[2] = {b->next_fd, b->prev_fd};
    for (int i = 0; i < 2; i++)
        if (fds[i] >= 0 && (i == 0 || fds[1] != fds[0]))
            (void)!send(fds[i], f, BP_FRAME_BYTES + n, MSG_NOSIGNAL | MSG_DONTWAIT);
}

/* calls: NULL, or the reporter's and the culprit's calls of a mismatch. */
static void abort_record(pc_boot *b, int culprit, int reporter, int rc, const pc_sig *calls,
                         const char *why) {
    if (b->aborted) return;
    b->aborted = 1;
    b->abort_culprit = culprit;
    b->abort_reporter = reporter;
    b->abort_rc = rc;
    b->abort_ncalls = calls ? 2 : 0;
    if (calls) b->abort_calls[0] = calls[0], b->abort_calls[1] = calls[1];
    snprintf(b->abort_why, sizeof(b->abort_why), "%s", why);
}

void boot_send_abort_rc(pc_boot *b, int culprit, podcclResult_t rc, const char *why) {
    if (b->aborted || b->nranks < 2) return;
    abort_record(b, culprit, b->rank, (int)rc, NULL, why);
    abort_out(b, culprit, b->rank, why);
}

void boot_send_mismatch(pc_boot *b, int culprit, const pc_sig *mine, const pc_sig *theirs,
                        const char *why) {
    if (b->aborted || b->nranks < 2) return;
    pc_sig calls[2] = {*mine, *theirs};
    abort_record(b, culprit, b->rank, podcclInvalidUsage, calls, why);
    abort_out(b, culprit, b->rank, why);
}

int boot_notice_calls(const pc_boot *b, int *reporter, pc_sig *rep, pc_sig *cul) {
    if (!b->aborted || b->abort_ncalls != 2) return 0;
    *reporter = b->abort_reporter, *rep = b->abort_calls[0], *cul = b->abort_calls[1];
    return 1;
}

void boot_send_abort(pc_boot *b, int culprit, const char *why) {
    boot_send_abort_rc(b, culprit, podcclRemoteError, why);
}

static podcclResult_t abort_error(pc_boot *b) {
    return pc_err(NULL, podcclRemoteError, "bootstrap: %s", b->abort_why);
}

/* fd (the neighbour `who`) is readable and no data is expected from it: an abort notice or the
 * end of the connection. Records the cause, passes it on, returns RemoteError naming it. */
static podcclResult_t ring_notice(pc_boot *b, int fd, int who) {
    uint8_t h[BP_FRAME_BYTES], pay[BP_ABORT_HEAD + BP_MAX_WHY];
    uint32_t type = 0, len = 0;
    char why[BP_MAX_WHY + 1], err[96];
    int32_t culprit = who, reporter = b->rank, rc = podcclRemoteError;
    pc_sig calls[2];
    int ncalls = 0;
    int ok =
        boot_recv_all(fd, h, sizeof(h), pc_now() + 1) == podcclSuccess &&
        bp_frame_decode(h, sizeof(h), &type, &len, err, sizeof(err)) == 0 &&
        type == BP_FRAME_ABORT && boot_recv_all(fd, pay, len, pc_now() + 1) == podcclSuccess &&
        bp_abort_decode(pay, len, &culprit, &reporter, &rc, calls, &ncalls, why, sizeof(why)) == 0;
    if (!ok) {
        culprit = who, reporter = b->rank, rc = podcclRemoteError, ncalls = 0;
        snprintf(why, sizeof(why), "rank %d died (its bootstrap connection to rank %d closed)", who,
                 b->rank);
    }
    if (!b->aborted) {
        abort_record(b, culprit, reporter, rc, ncalls ? calls : NULL, why);
        abort_out(b, culprit, reporter, why);
    }
    return abort_error(b);
}

/* 1 when fd holds an ABORT frame (peeked, not consumed); with eof_counts, also when it is
 * closed; with defer_usage, not for a mismatch notice (podcclInvalidUsage). */
static int notice_waiting(int fd, int eof_counts, int defer_usage) {
    uint8_t h[BP_FRAME_BYTES + 12];
    ssize_t r = recv(fd, h, sizeof(h), MSG_PEEK | MSG_DONTWAIT);
    if (r > 0) {
        if (h[0] != BP_FRAME_ABORT) return 0;
        if (defer_usage && r == (ssize_t)sizeof(h) && h[BP_FRAME_BYTES + 8] == podcclInvalidUsage)
            return 0;
        return 1;
    }
    if (r < 0 && (errno == EAGAIN || errno == EINTR)) return 0;
    return eof_counts;
}

/* Looks for an ABORT frame anywhere in what fd holds, without consuming anything: a notice may
 * wait behind setup data a neighbour sent before it failed. 1 when found (recorded and passed
 * on), -1 when fd is closed with nothing, 0 otherwise. */
static int peek_notice(pc_boot *b, int fd) {
    uint8_t buf[4096];
    ssize_t r = recv(fd, buf, sizeof(buf), MSG_PEEK | MSG_DONTWAIT);
    if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) return -1;
    for (size_t off = 0; r > 0 && off + BP_FRAME_BYTES <= (size_t)r;) {
        uint32_t type, len;
        char err[96], why[BP_MAX_WHY + 1];
        if (bp_frame_decode(buf + off, (size_t)r - off, &type, &len, err, sizeof(err)) != 0)
            return 0;
        int32_t culprit, reporter, rc;
        pc_sig calls[2];
        int ncalls;
        if (type == BP_FRAME_ABORT && off + BP_FRAME_BYTES + len <= (size_t)r &&
            bp_abort_decode(buf + off + BP_FRAME_BYTES, len, &culprit, &reporter, &rc, calls,
                            &ncalls, why, sizeof(why)) == 0) {
            abort_record(b, culprit, reporter, rc, ncalls ? calls : NULL, why);
            abort_out(b, culprit, reporter, why);
            return 1;
        }
        off += BP_FRAME_BYTES + len;
    }
    return 0;
}

static int poll_notice(pc_boot *b, int *culprit, int *rc, char *why, size_t len, int eof_counts) {
    *culprit = -1;
    *rc = podcclRemoteError;
    if (!b->aborted && b->nranks >= 2 && b->next_fd >= 0 && b->prev_fd >= 0) {
        struct pollfd p[2] = {{.fd = b->prev_fd, .events = POLLIN},
                              {.fd = b->next_fd, .events = POLLIN}};
        if (poll(p, 2, 0) > 0)
            for (int i = 0; i < 2 && !b->aborted; i++)
                if (p[i].revents && peek_notice(b, p[i].fd) < 0 && eof_counts)
                    ring_notice(b, p[i].fd, i == 0 ? ring_prev(b) : ring_next(b));
    }
    if (!b->aborted) return 0;
    *culprit = b->abort_culprit;
    *rc = b->abort_rc;
    snprintf(why, len, "%s", b->abort_why);
    return 1;
}

int boot_poll_abort(pc_boot *b, int *culprit, char *why, size_t len) {
    int rc;
    return poll_notice(b, culprit, &rc, why, len, 1);
}

int boot_poll_notice(pc_boot *b, int *culprit, int *rc, char *why, size_t len) {
    return poll_notice(b, culprit, rc, why, len, 0);
}

/* Receives one DATA frame of exactly `bytes` from prev, watching next for notices. */
static podcclResult_t ring_recv(pc_boot *b, void *buf, size_t bytes, double deadline) {
    for (;;) {
        struct pollfd p[2] = {{.fd = b->prev_fd, .events = POLLIN},
                              {.fd = b->next_fd, .events = POLLIN}};
        double left = deadline - pc_now();
        if (left <= 0)
            return pc_err(NULL, podcclTimeout,
                          "bootstrap: rank %d waited %.0f s for rank %d during setup (stuck, or "
                          "a rank before it is)",
                          b->rank, b->timeout, ring_prev(b));
        int r = poll(p, 2, (int)(left * 1000) + 1);
        if (r < 0 && errno != EINTR)
            return pc_err(NULL, podcclSystemError, "bootstrap: poll: %s", strerror(errno));
        if (r <= 0) continue;
        /* next sends nothing but notices. A failure notice from next fails the setup at once
         * (its cause may not come around through prev: the ring may be broken there). A closed
         * socket does not (a neighbour that finished this all-gather may have exited
         * normally), nor does a mismatch notice (a neighbour already in its first collective
         * found it; it waits for the first collective of this rank). */
        if (p[1].revents && notice_waiting(b->next_fd, 0, 1))
            return ring_notice(b, b->next_fd, ring_next(b));
        if (!p[0].revents) {
            if (p[1].revents) usleep(1000); /* next has something: poll would return at once */
            continue;
        }
        uint8_t h[BP_FRAME_BYTES];
        ssize_t n = recv(b->prev_fd, h, sizeof(h), MSG_PEEK | MSG_DONTWAIT);
        if (n <= 0 || h[0] != BP_FRAME_DATA) return ring_notice(b, b->prev_fd, ring_prev(b));
        uint32_t type, len;
        char err[96];
        PCCHECK(boot_recv_all(b->prev_fd, h, sizeof(h), deadline));
        if (bp_frame_decode(h, sizeof(h), &type, &len, err, sizeof(err)) != 0 || len != bytes)
            return pc_err(NULL, podcclInternalError,
                          "bootstrap: rank %d sent a setup message of %u bytes, expected %zu "
                          "(%s): ranks run different podccl versions or calls",
                          ring_prev(b), len, bytes, err);
        podcclResult_t res = boot_recv_all(b->prev_fd, buf, bytes, deadline);
        if (res != podcclSuccess) return ring_notice(b, b->prev_fd, ring_prev(b));
        return podcclSuccess;
    }
}

podcclResult_t boot_allgather(pc_boot *b, void *data, size_t bytes) {
    char *d = data;
    int n = b->nranks;
    if (b->aborted) return abort_error(b);
    if (bytes > (1u << 30))
        return pc_err(NULL, podcclInternalError, "bootstrap: all-gather slot over 1 GiB");
    for (int s = 0; s < n - 1; s++) {
        double deadline = pc_now() + b->timeout;
        int send_slot = (b->rank - s + n) % n, recv_slot = (b->rank - s - 1 + n) % n;
        uint8_t h[BP_FRAME_BYTES];
        bp_frame_encode(BP_FRAME_DATA, (uint32_t)bytes, h);
        if (boot_send_all(b->next_fd, h, sizeof(h), deadline) != podcclSuccess ||
            boot_send_all(b->next_fd, d + (size_t)send_slot * bytes, bytes, deadline) !=
                podcclSuccess)
            return ring_notice(b, b->next_fd, ring_next(b));
        PCCHECK(ring_recv(b, d + (size_t)recv_slot * bytes, bytes, deadline));
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
    if (b->has_lfd) close(b->lfd);
    b->next_fd = b->prev_fd = -1;
    b->has_lfd = 0;
    free(b->addrs);
    b->addrs = NULL;
}

int boot_peer_gone(pc_boot *b, int peer) {
    if (b->nranks < 2 || peer == b->rank) return 0;
    int fd = peer == ring_next(b) ? b->next_fd : peer == ring_prev(b) ? b->prev_fd : -1;
    if (fd < 0) return 0;
    /* No setup traffic flows while collectives run: readable means end of stream. */
    struct pollfd p = {.fd = fd, .events = POLLIN | POLLRDHUP};
    if (poll(&p, 1, 0) <= 0) return 0;
    if (p.revents & (POLLHUP | POLLERR | POLLRDHUP)) return 1;
    char c;
    ssize_t r = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    return r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}
/* ---- joining: the root's answer ------------------------------------------------------------ */

static podcclResult_t answer_error(const bp_answer *a, int rank, int nranks, const char *root) {
    switch (a->status) {
    case BP_MISMATCH:
        return pc_err(NULL, podcclInvalidArgument,
                      "bootstrap: ranks disagree on the number of ranks, or two processes claim "
                      "one rank (this rank: %d of %d; the root at %s failed the rendezvous)",
                      rank, nranks, root);
    case BP_DEAD:
        return pc_err(NULL, podcclRemoteError,
                      "bootstrap: rank %d died during init: it joined the rendezvous, then its "
                      "connection to the root closed before every rank had joined",
                      a->culprit);
    case BP_TIMEOUT:
        return pc_err(NULL, podcclTimeout,
                      "bootstrap: %u rank%s never joined the rendezvous at %s before its "
                      "deadline; the first missing is rank %d (not started, dead before "
                      "joining, or given a different unique id)",
                      a->missing, a->missing == 1 ? "" : "s", root, a->culprit);
    default:
        return pc_err(NULL, podcclSystemError,
                      "bootstrap: the root at %s dropped this rendezvous (too many unique ids "
                      "open in its process)",
                      root);
    }
}

/* The connection to the root broke (`what` happened, res says how): its process is gone. The
 * test chaos counts on "root" being named, and on rank 0 being the usual host of the root. */
static podcclResult_t root_gone(podcclResult_t res, const char *root, const char *what,
                                int refused_possible) {
    return pc_err(NULL, res == podcclTimeout ? podcclTimeout : podcclRemoteError,
                  "bootstrap: the root at %s %s: the process that called podcclGetUniqueId "
                  "(rank 0 in most programs) has exited or crashed%s",
                  root, what, refused_possible ? ", or it refused this process (another uid)" : "");
}

/* After the handshake: the root's answer (the table, or why the rendezvous failed), checked
 * against the key and this rank's nonce. */
static podcclResult_t join_answer(pc_boot *b, int fd, const uint8_t m1[BP_M1_BYTES],
                                  const char *root, double deadline) {
    uint8_t head[BP_ANSWER_BYTES];
    bp_answer a;
    char err[96];
    podcclResult_t res = boot_recv_all(fd, head, sizeof(head), deadline);
    if (res == podcclTimeout)
        return pc_err(NULL, podcclTimeout,
                      "bootstrap: rank %d: the root at %s has not completed the rendezvous "
                      "within %.0f s (ranks missing; the root names them at its own deadline)",
                      b->rank, root, b->timeout);
    if (res != podcclSuccess)
        return root_gone(res, root, "closed the connection before answering", 0);
    if (bp_answer_decode(head, sizeof(head), &a, err, sizeof(err)) != 0)
        return pc_err(NULL, podcclRemoteError, "bootstrap: bad answer from the root at %s: %s",
                      root, err);
    size_t tbytes = a.status == BP_OK ? (size_t)a.nranks * BP_ADDR_BYTES : 0;
    if (a.status == BP_OK && a.nranks != b->nranks)
        return pc_err(NULL, podcclRemoteError, "bootstrap: the root's table has %d ranks, not %d",
                      a.nranks, b->nranks);
    uint8_t *table = tbytes ? malloc(tbytes) : NULL;
    if (tbytes && !table) return pc_err(NULL, podcclSystemError, "out of memory");
    if (tbytes && (res = boot_recv_all(fd, table, tbytes, deadline)) != podcclSuccess)
        res = root_gone(res, root, "closed the connection in the middle of its answer", 0);
    uint8_t want[BP_MAC];
    if (res == podcclSuccess) {
        bp_mac_answer(b->secret, m1 + 16, head, table, tbytes, want);
        if (!bp_mac_equal(want, a.mac))
            res =
                pc_err(NULL, podcclRemoteError,
                       "bootstrap: the answer from %s is not signed with this job's secret", root);
    }
    if (res == podcclSuccess && a.status != BP_OK) {
        res = answer_error(&a, b->rank, b->nranks, root);
        b->root_failed = 1;    /* every rank gets this answer: nothing to hand on */
        boot_root_linger(1.0); /* if the root runs here, let it answer the late ranks */
    }
    if (res == podcclSuccess && !(b->addrs = calloc((size_t)b->nranks, sizeof(*b->addrs))))
        res = pc_err(NULL, podcclSystemError, "out of memory");
    for (int r = 0; res == podcclSuccess && r < b->nranks; r++)
        if (bp_get_addr(table + (size_t)r * BP_ADDR_BYTES, &b->addrs[r], err, sizeof(err)) != 0)
            res = pc_err(NULL, podcclRemoteError, "bootstrap: rank %d's address: %s", r, err);
    free(table);
    return res;
}

/* Connects to the root, authenticates both ways, and waits for the table. */
static podcclResult_t join_root(pc_boot *b, const pc_id *id, double deadline) {
    int fd = -1;
    char root[80];
    boot_addr_str(&id->addr, root, sizeof(root));
    PCCHECK(connect_to(&id->addr, deadline, 1, "the rendezvous root", &fd));
    /* Listen on the address that reaches the root: it is routable from the other ranks. */
    pc_sockaddr l;
    socklen_t len = sizeof(l);
    getsockname(fd, &l.sa, &len);
    podcclResult_t res = podcclSuccess;
    const char *ifspec = pc_param_str("PODCCL_SOCKET_IFNAME");
    if (ifspec && *ifspec) res = boot_pick_interface(&l);
    if (l.sa.sa_family == AF_INET6)
        l.sin6.sin6_port = 0;
    else
        l.sin.sin_port = 0;
    b->local = l;
    if (res == podcclSuccess) res = boot_listen_on(&l, &b->lfd);
    if (res == podcclSuccess) b->has_lfd = 1;
    uint8_t m1[BP_M1_BYTES], m2[BP_M2_BYTES];
    if (res == podcclSuccess) {
        res = hello_send(fd, BP_KIND_ROOT, b, deadline, &l, m1);
        if (res == podcclSuccess) res = boot_recv_all(fd, m2, sizeof(m2), deadline);
        if (res != podcclSuccess)
            res = root_gone(
                res, root, res == podcclTimeout ? "sent no challenge" : "closed the connection", 1);
    }
    char who[120];
    snprintf(who, sizeof(who), "the process at %s (the rendezvous root)", root);
    int send_failed = 0;
    if (res == podcclSuccess) res = hello_finish(fd, b->secret, m1, m2, -1, who, &send_failed);
    if (res != podcclSuccess && send_failed)
        res = root_gone(podcclRemoteError, root, "closed the connection", 0);
    if (res == podcclSuccess) res = join_answer(b, fd, m1, root, deadline);
    close(fd);
    return res;
}

/* ---- the ring ------------------------------------------------------------------------------ */

typedef struct {
    uint8_t m1[BP_M1_BYTES], m2[BP_M2_BYTES];
    size_t have;
    int done;
} ring_out;

/* The outgoing connection's M2 has (partly) arrived. */
static podcclResult_t ring_out_progress(pc_boot *b, ring_out *o) {
    char who[120], a[80];
    snprintf(who, sizeof(who), "rank %d at %s", ring_next(b),
             boot_addr_str(&b->addrs[ring_next(b)], a, sizeof(a)));
    int gone = 0;
    while (o->have < BP_M2_BYTES && !gone) {
        ssize_t r = recv(b->next_fd, o->m2 + o->have, BP_M2_BYTES - o->have, MSG_DONTWAIT);
        if (r > 0)
            o->have += (size_t)r;
        else if (r < 0 && (errno == EAGAIN || errno == EINTR))
            return podcclSuccess;
        else
            gone = 1;
    }
    if (!gone) {
        podcclResult_t res =
            hello_finish(b->next_fd, b->secret, o->m1, o->m2, ring_next(b), who, &gone);
        if (res != podcclSuccess && !gone) return res; /* it does not know the secret */
    }
    if (gone) {
        char why[200];
        snprintf(why, sizeof(why), "rank %d died during init (%s closed the connection)",
                 ring_next(b), who);
        boot_send_abort(b, ring_next(b), why);
        return abort_error(b);
    }
    o->done = 1;
    return podcclSuccess;
}

/* An incoming connection authenticated: it must be prev's ring connection. */
static int ring_take(pc_boot *b, const boot_pend *p) {
    if (p->m1.kind == BP_KIND_RING && p->m1.rank == ring_prev(b) && p->m1.nranks == b->nranks &&
        b->prev_fd < 0)
        return 1;
    pc_log(PC_LOG_WARN, PC_SUB_BOOT,
           "bootstrap: refused a ring connection from rank %d of %d (kind %u): expected rank %d",
           p->m1.rank, p->m1.nranks, p->m1.kind, ring_prev(b));
    return 0;
}

/* One pass of ring_connect's loop: the outgoing handshake (or notices from next once it is
 * done), the incoming connections, the listener. */
static podcclResult_t ring_pass(pc_boot *b, ring_out *o, boot_pend **pend, int *npend) {
    struct pollfd *p = calloc((size_t)*npend + 2, sizeof(*p));
    if (!p) return pc_err(NULL, podcclSystemError, "out of memory");
    p[0] = (struct pollfd){.fd = b->lfd, .events = POLLIN};
    /* prev may already send its first all-gather frame: read it later, not here. */
    p[1] = (struct pollfd){.fd = b->aborted ? -1 : b->next_fd, .events = POLLIN};
    for (int i = 0; i < *npend; i++)
        p[2 + i] = (struct pollfd){.fd = (*pend)[i].fd, .events = POLLIN};
    int r = poll(p, (nfds_t)*npend + 2, 100);
    double now = pc_now();
    podcclResult_t res = podcclSuccess;
    if (r > 0 && p[1].revents)
        res = o->done ? ring_notice(b, b->next_fd, ring_next(b)) : ring_out_progress(b, o);
    if (b->aborted) res = podcclSuccess; /* keep going: the notice must reach prev */
    for (int i = *npend - 1; res == podcclSuccess && i >= 0; i--) {
        int st = p[2 + i].revents ? boot_pend_progress(&(*pend)[i], b->secret, b->rank) : 0;
        if (st == 1 && ring_take(b, &(*pend)[i])) {
            b->prev_fd = (*pend)[i].fd;
            (*pend)[i] = (*pend)[--*npend];
        } else if (st != 0 || now > (*pend)[i].deadline) {
            boot_pend_drop(pend, npend, i);
        }
    }
    if (res == podcclSuccess && r > 0 && p[0].revents) boot_accept_pending(b->lfd, pend, npend);
    free(p);
    return res;
}

/* Connects to next and accepts prev at once; strangers on the listener are served
 * concurrently and cost nothing. When init fails here (next is gone, or a notice arrives), the
 * rank still waits a moment for prev's connection so that the notice naming the culprit goes on
 * around the ring instead of this rank's exit being taken for a death. */
static podcclResult_t ring_connect(pc_boot *b, double deadline) {
    char a[80], why[200];
    ring_out o = {0};
    podcclResult_t res =
        connect_to(&b->addrs[ring_next(b)], deadline, 0, "a ring peer", &b->next_fd);
    if (res != podcclSuccess) {
        snprintf(why, sizeof(why),
                 "rank %d is gone during init (its bootstrap port %s refuses connections: it "
                 "died, or failed and exited)",
                 ring_next(b), boot_addr_str(&b->addrs[ring_next(b)], a, sizeof(a)));
        abort_record(b, ring_next(b), b->rank, podcclRemoteError, NULL, why);
    } else if (hello_send(b->next_fd, BP_KIND_RING, b, deadline, &b->addrs[b->rank], o.m1) !=
               podcclSuccess) {
        snprintf(why, sizeof(why), "rank %d died during init (its connection was reset)",
                 ring_next(b));
        abort_record(b, ring_next(b), b->rank, podcclRemoteError, NULL, why);
    }
    boot_pend *pend = NULL;
    int npend = 0;
    double grace = -1;
    res = podcclSuccess;
    for (;;) {
        if (b->aborted && grace < 0) grace = pc_now() + 1.0;
        if (b->aborted ? b->prev_fd >= 0 || pc_now() > grace : o.done && b->prev_fd >= 0) break;
        if (pc_now() > deadline) {
            res = pc_err(NULL, podcclTimeout,
                         o.done ? "bootstrap: rank %d never connected to rank %d within %.0f s "
                                  "(stuck or dead)"
                                : "bootstrap: rank %d did not answer rank %d within %.0f s",
                         o.done ? ring_prev(b) : ring_next(b), b->rank, b->timeout);
            break;
        }
        if ((res = ring_pass(b, &o, &pend, &npend)) != podcclSuccess) break;
    }
    while (npend > 0) boot_pend_drop(&pend, &npend, 0);
    free(pend);
    if (b->aborted) {
        abort_out(b, b->abort_culprit, b->rank, b->abort_why);
        return abort_error(b);
    }
    return res;
}

/* join_root failed. Ranks that did get the root's table will connect to this rank's listener
 * (its prev first): for up to a second, take prev's connection and hand it this rank's cause,
 * so that this rank's exit is not read as its death. */
static void linger_for_prev(pc_boot *b, podcclResult_t res) {
    char cause[BP_MAX_WHY - 32], why[BP_MAX_WHY];
    snprintf(cause, sizeof(cause), "%s", pc_thread_err());
    snprintf(why, sizeof(why), "rank %d gave up init: %s", b->rank, cause);
    abort_record(b, -1, b->rank, podcclRemoteError, NULL, why);
    ring_out o = {.done = 1};
    boot_pend *pend = NULL;
    int npend = 0;
    for (double end = pc_now() + 1.0; b->prev_fd < 0 && pc_now() < end;)
        if (ring_pass(b, &o, &pend, &npend) != podcclSuccess) break;
    while (npend > 0) boot_pend_drop(&pend, &npend, 0);
    free(pend);
    abort_out(b, -1, b->rank, why);
    pc_err(NULL, res, "%s", cause); /* this rank's own error stays its cause */
}

podcclResult_t boot_init(pc_boot *b, const pc_id *id, int rank, int nranks, double timeout) {
    memset(b, 0, sizeof(*b));
    b->rank = rank, b->nranks = nranks, b->timeout = timeout;
    b->next_fd = b->prev_fd = b->lfd = -1;
    b->abort_culprit = -1;
    memcpy(b->secret, id->secret, PC_SECRET_BYTES);
    double deadline = pc_now() + timeout;
    pc_id chk;
    PCCHECK(boot_decode_id(id, sizeof(*id), &chk));
    podcclResult_t res = join_root(b, id, deadline);
    if (res != podcclSuccess && nranks > 1 && b->has_lfd && !b->root_failed)
        linger_for_prev(b, res);
    if (res == podcclSuccess && nranks > 1) res = ring_connect(b, deadline);
    if (res != podcclSuccess) boot_close(b);
    return res;
}
