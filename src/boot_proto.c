/* The bootstrap's wire protocol: encoders, decoders, MACs (boot_proto.h). */
#include "boot_proto.h"

#include "core.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define BP_MAGIC 0x706f6463636c6232ull /* "podcclb2" */

/* ---- little-endian fields ------------------------------------------------------------------ */

static void put32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static void put64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static uint32_t get32(const uint8_t *p) {
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) v |= (uint32_t)p[i] << (8 * i);
    return v;
}
static uint64_t get64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static int fail(char *err, size_t len, const char *what) {
    if (err && len) snprintf(err, len, "%s", what);
    return -1;
}

/* ---- addresses ----------------------------------------------------------------------------- */

void bp_put_addr(uint8_t out[BP_ADDR_BYTES], const pc_sockaddr *a) {
    /* family (2 bytes), port (network order), 16 address bytes, scope id */
    memset(out, 0, BP_ADDR_BYTES);
    if (a->sa.sa_family == AF_INET6) {
        out[0] = AF_INET6;
        memcpy(out + 2, &a->sin6.sin6_port, 2);
        memcpy(out + 4, &a->sin6.sin6_addr, 16);
        put32(out + 20, a->sin6.sin6_scope_id);
    } else if (a->sa.sa_family == AF_INET) {
        out[0] = AF_INET;
        memcpy(out + 2, &a->sin.sin_port, 2);
        memcpy(out + 4, &a->sin.sin_addr, 4);
    }
}

int bp_get_addr(const uint8_t in[BP_ADDR_BYTES], pc_sockaddr *a, char *err, size_t len) {
    unsigned fam = in[0] | (unsigned)in[1] << 8;
    memset(a, 0, sizeof(*a));
    if (fam == AF_INET) {
        a->sin.sin_family = AF_INET;
        memcpy(&a->sin.sin_port, in + 2, 2);
        memcpy(&a->sin.sin_addr, in + 4, 4);
    } else if (fam == AF_INET6) {
        a->sin6.sin6_family = AF_INET6;
        memcpy(&a->sin6.sin6_port, in + 2, 2);
        memcpy(&a->sin6.sin6_addr, in + 4, 16);
        a->sin6.sin6_scope_id = get32(in + 20);
    } else {
        return fail(err, len, "address family is neither IPv4 nor IPv6");
    }
    if (a->sin.sin_port == 0) return fail(err, len, "address has port 0");
    return 0;
}

/* ---- messages ------------------------------------------------------------------------------ */

void bp_m1_encode(const bp_m1 *m, uint8_t out[BP_M1_BYTES]) {
    put64(out, BP_MAGIC);
    put32(out + 8, m->version);
    put32(out + 12, m->kind);
    memcpy(out + 16, m->nonce, BP_NONCE);
    put32(out + 48, (uint32_t)m->rank);
    put32(out + 52, (uint32_t)m->nranks);
    bp_put_addr(out + 56, &m->listen);
    put32(out + 80, m->pid);
    put32(out + 84, m->uid);
    put32(out + 88, m->timeout_ms);
}

int bp_m1_decode(const uint8_t *in, size_t n, bp_m1 *m, char *err, size_t len) {
    if (n < BP_M1_BYTES) return fail(err, len, "hello too short");
    if (get64(in) != BP_MAGIC) return fail(err, len, "not a podccl bootstrap hello (bad magic)");
    m->version = get32(in + 8);
    m->kind = get32(in + 12);
    if (m->version != BP_VERSION) return fail(err, len, "bootstrap protocol version differs");
    if (m->kind != BP_KIND_ROOT && m->kind != BP_KIND_RING)
        return fail(err, len, "unknown connection kind");
    memcpy(m->nonce, in + 16, BP_NONCE);
    m->rank = (int32_t)get32(in + 48);
    m->nranks = (int32_t)get32(in + 52);
    if (m->nranks < 1 || m->nranks > BP_MAX_RANKS) return fail(err, len, "nranks out of range");
    if (m->rank < 0 || m->rank >= m->nranks) return fail(err, len, "rank not in [0, nranks)");
    if (bp_get_addr(in + 56, &m->listen, err, len) != 0) return -1;
    m->pid = get32(in + 80);
    m->uid = get32(in + 84);
    m->timeout_ms = get32(in + 88);
    return 0;
}

void bp_m2_encode(const bp_m2 *m, uint8_t out[BP_M2_BYTES]) {
    put64(out, BP_MAGIC);
    put32(out + 8, m->status);
    put32(out + 12, (uint32_t)m->rank);
    memcpy(out + 16, m->nonce, BP_NONCE);
    memcpy(out + 48, m->mac, BP_MAC);
}

int bp_m2_decode(const uint8_t *in, size_t n, bp_m2 *m, char *err, size_t len) {
    if (n < BP_M2_BYTES) return fail(err, len, "challenge too short");
    if (get64(in) != BP_MAGIC) return fail(err, len, "not a podccl bootstrap peer (bad magic)");
    m->status = get32(in + 8);
    m->rank = (int32_t)get32(in + 12);
    if (m->status != BP_OK) return fail(err, len, "peer refused the connection");
    if (m->rank < -1 || m->rank >= BP_MAX_RANKS) return fail(err, len, "peer rank out of range");
    memcpy(m->nonce, in + 16, BP_NONCE);
    memcpy(m->mac, in + 48, BP_MAC);
    return 0;
}

void bp_answer_encode(const bp_answer *a, uint8_t out[BP_ANSWER_BYTES]) {
    memset(out, 0, BP_ANSWER_BYTES);
    put64(out, BP_MAGIC);
    put32(out + 8, a->status);
    put32(out + 12, (uint32_t)a->nranks);
    put32(out + 16, (uint32_t)a->culprit);
    put32(out + 20, a->missing);
    memcpy(out + 24, a->mac, BP_MAC);
}

int bp_answer_decode(const uint8_t *in, size_t n, bp_answer *a, char *err, size_t len) {
    if (n < BP_ANSWER_BYTES) return fail(err, len, "answer too short");
    if (get64(in) != BP_MAGIC) return fail(err, len, "not a podccl root answer (bad magic)");
    a->status = get32(in + 8);
    a->nranks = (int32_t)get32(in + 12);
    a->culprit = (int32_t)get32(in + 16);
    a->missing = get32(in + 20);
    memcpy(a->mac, in + 24, BP_MAC);
    if (a->status > BP_BUSY) return fail(err, len, "unknown answer status");
    if (a->nranks < 1 || a->nranks > BP_MAX_RANKS) return fail(err, len, "nranks out of range");
    if (a->culprit < -1 || a->culprit >= a->nranks) return fail(err, len, "culprit out of range");
    if (a->missing > (uint32_t)a->nranks) return fail(err, len, "missing count out of range");
    return 0;
}

void bp_frame_encode(uint32_t type, uint32_t len, uint8_t out[BP_FRAME_BYTES]) {
    put32(out, type);
    put32(out + 4, len);
}

int bp_frame_decode(const uint8_t *in, size_t n, uint32_t *type, uint32_t *len, char *err,
                    size_t errlen) {
    if (n < BP_FRAME_BYTES) return fail(err, errlen, "frame head too short");
    *type = get32(in);
    *len = get32(in + 4);
    if (*type == BP_FRAME_DATA) {
        if (*len > (1u << 30)) return fail(err, errlen, "data frame over 1 GiB");
    } else if (*type == BP_FRAME_ABORT) {
        if (*len < BP_ABORT_HEAD || *len > BP_ABORT_HEAD + BP_MAX_WHY)
            return fail(err, errlen, "abort frame size");
    } else {
        return fail(err, errlen, "unknown frame type");
    }
    return 0;
}

static void put_sig(uint8_t *p, const pc_sig *g) {
    put64(p, g->hash);
    put64(p + 8, g->seq);
    put64(p + 16, g->count);
    put32(p + 24, (uint32_t)g->coll);
    put32(p + 28, (uint32_t)g->dtype);
    put32(p + 32, (uint32_t)g->op);
    put32(p + 36, (uint32_t)g->root);
}

/* A call as pc_sig_str can name it: collective known (or -1: only the hash), datatype, op and
 * root in range. */
static int get_sig(const uint8_t *p, pc_sig *g) {
    *g = (pc_sig){.hash = get64(p),
                  .seq = get64(p + 8),
                  .count = get64(p + 16),
                  .coll = (int32_t)get32(p + 24),
                  .dtype = (int32_t)get32(p + 28),
                  .op = (int32_t)get32(p + 32),
                  .root = (int32_t)get32(p + 36)};
    return g->coll >= -1 && g->coll < PC_NCOLL && g->dtype >= 0 && g->dtype < podcclNumTypes &&
                   g->op >= 0 && g->op < podcclNumOps && g->root >= 0 && g->root < BP_MAX_RANKS
               ? 0
               : -1;
}

size_t bp_abort_encode(int32_t culprit, int32_t reporter, int32_t rc, const pc_sig *calls,
                       const char *why, uint8_t *out) {
    put32(out, (uint32_t)culprit);
    put32(out + 4, (uint32_t)reporter);
    put32(out + 8, (uint32_t)rc);
    put32(out + 12, calls ? 1 : 0);
    memset(out + 16, 0, 2 * BP_SIG_BYTES);
    for (int i = 0; calls && i < 2; i++) put_sig(out + 16 + i * BP_SIG_BYTES, &calls[i]);
    size_t w = why ? strnlen(why, BP_MAX_WHY) : 0;
    memcpy(out + BP_ABORT_HEAD, why, w);
    return BP_ABORT_HEAD + w;
}

int bp_abort_decode(const uint8_t *in, size_t n, int32_t *culprit, int32_t *reporter, int32_t *rc,
                    pc_sig calls[2], int *ncalls, char *why, size_t whylen) {
    if (n < BP_ABORT_HEAD || n > BP_ABORT_HEAD + BP_MAX_WHY || whylen == 0) return -1;
    *culprit = (int32_t)get32(in);
    *reporter = (int32_t)get32(in + 4);
    *rc = (int32_t)get32(in + 8);
    uint32_t has = get32(in + 12);
    if (*culprit < -1 || *culprit >= BP_MAX_RANKS || *reporter < 0 || *reporter >= BP_MAX_RANKS ||
        *rc <= 0 || *rc > 64 || has > 1 || (has && *rc != podcclInvalidUsage))
        return -1;
    *ncalls = 0;
    for (int i = 0; i < 2; i++) {
        const uint8_t *p = in + 16 + i * BP_SIG_BYTES;
        if (has ? get_sig(p, &calls[i]) != 0
                : memcmp(p, (const uint8_t[BP_SIG_BYTES]){0}, BP_SIG_BYTES) != 0)
            return -1; /* a call out of range, or bytes where no call is */
    }
    if (has) *ncalls = 2;
    size_t w = n - BP_ABORT_HEAD < whylen - 1 ? n - BP_ABORT_HEAD : whylen - 1;
    for (size_t i = 0; i < w; i++) {
        unsigned char c = in[BP_ABORT_HEAD + i];
        why[i] = (char)(c < 0x20 || c >= 0x7f ? '?' : c);
    }
    why[w] = 0;
    return 0;
}

/* ---- MACs (HMAC-SHA256 through OpenSSL's EVP_MAC) ------------------------------------------ */

typedef struct {
    const void *p;
    size_t n;
} part;

static void hmac(const uint8_t *key, size_t keylen, const part *parts, int nparts,
                 uint8_t out[BP_MAC]) {
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *ctx = mac ? EVP_MAC_CTX_new(mac) : NULL;
    char digest[] = "SHA256";
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                           OSSL_PARAM_construct_end()};
    size_t outl = 0;
    int ok = ctx && EVP_MAC_init(ctx, key, keylen, params);
    for (int i = 0; ok && i < nparts; i++)
        if (parts[i].n) ok = EVP_MAC_update(ctx, parts[i].p, parts[i].n);
    if (ok) ok = EVP_MAC_final(ctx, out, &outl, BP_MAC) && outl == BP_MAC;
    /* A failure leaves a random MAC: it matches nothing, so the handshake fails closed. */
    if (!ok) RAND_bytes(out, BP_MAC);
    EVP_MAC_CTX_free(ctx);
    EVP_MAC_free(mac);
}

void bp_mac_a(const uint8_t key[BP_KEY], const uint8_t m1[BP_M1_BYTES],
              const uint8_t m2[BP_M2_BYTES], uint8_t out[BP_MAC]) {
    part p[] = {{"podccl/a", 8}, {m1, BP_M1_BYTES}, {m2, BP_M2_BYTES - BP_MAC}};
    hmac(key, BP_KEY, p, 3, out);
}

void bp_mac_c(const uint8_t key[BP_KEY], const uint8_t m1[BP_M1_BYTES],
              const uint8_t m2[BP_M2_BYTES], uint8_t out[BP_MAC]) {
    part p[] = {{"podccl/c", 8}, {m1, BP_M1_BYTES}, {m2, BP_M2_BYTES}};
    hmac(key, BP_KEY, p, 3, out);
}

void bp_mac_answer(const uint8_t key[BP_KEY], const uint8_t nonce_c[BP_NONCE],
                   const uint8_t head[BP_ANSWER_BYTES], const void *table, size_t table_bytes,
                   uint8_t out[BP_MAC]) {
    uint8_t h[BP_ANSWER_BYTES];
    memcpy(h, head, sizeof(h));
    memset(h + 24, 0, BP_MAC);
    part p[] = {{"podccl/t", 8}, {nonce_c, BP_NONCE}, {h, sizeof(h)}, {table, table_bytes}};
    hmac(key, BP_KEY, p, 4, out);
}

int bp_mac_equal(const uint8_t a[BP_MAC], const uint8_t b[BP_MAC]) {
    return CRYPTO_memcmp(a, b, BP_MAC) == 0;
}

int bp_random(void *buf, size_t n) {
    return RAND_bytes(buf, (int)n) == 1 ? 0 : -1;
}

void bp_derive(const uint8_t *secret, size_t secret_len, const char *label, const void *data,
               size_t data_len, uint8_t key[BP_KEY]) {
    part p[] = {{label, strlen(label) + 1}, {data, data_len}};
    hmac(secret, secret_len, p, 2, key);
}

/* ---- the peer's uid over loopback ------------------------------------------------------------ */

int bp_peer_uid(int fd, uid_t *uid) {
    pc_sockaddr self, peer;
    socklen_t l1 = sizeof(self), l2 = sizeof(peer);
    if (getsockname(fd, &self.sa, &l1) != 0 || getpeername(fd, &peer.sa, &l2) != 0) return -1;
    int fam = peer.sa.sa_family;
    if (fam != AF_INET && fam != AF_INET6) return 0;
    int nl = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
    if (nl < 0) return -1;
    struct {
        struct nlmsghdr nlh;
        struct inet_diag_req_v2 r;
    } req;
    memset(&req, 0, sizeof(req));
    req.nlh.nlmsg_len = sizeof(req);
    req.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
    req.nlh.nlmsg_flags = NLM_F_REQUEST;
    req.r.sdiag_family = (uint8_t)fam;
    req.r.sdiag_protocol = IPPROTO_TCP;
    req.r.idiag_states = ~0u;
    /* The peer's socket: its source is the peer's address, its destination ours. */
    if (fam == AF_INET) {
        req.r.id.idiag_sport = peer.sin.sin_port;
        req.r.id.idiag_dport = self.sin.sin_port;
        memcpy(req.r.id.idiag_src, &peer.sin.sin_addr, 4);
        memcpy(req.r.id.idiag_dst, &self.sin.sin_addr, 4);
    } else {
        req.r.id.idiag_sport = peer.sin6.sin6_port;
        req.r.id.idiag_dport = self.sin6.sin6_port;
        memcpy(req.r.id.idiag_src, &peer.sin6.sin6_addr, 16);
        memcpy(req.r.id.idiag_dst, &self.sin6.sin6_addr, 16);
    }
    req.r.id.idiag_cookie[0] = req.r.id.idiag_cookie[1] = INET_DIAG_NOCOOKIE;
    int found = -1;
    if (send(nl, &req, sizeof(req), 0) == (ssize_t)sizeof(req)) {
        struct pollfd p = {.fd = nl, .events = POLLIN};
        long buf[1024];
        ssize_t r = poll(&p, 1, 1000) == 1 ? recv(nl, buf, sizeof(buf), 0) : -1;
        const struct nlmsghdr *h = (const struct nlmsghdr *)buf;
        if (r >= (ssize_t)sizeof(*h) && NLMSG_OK(h, (size_t)r)) {
            if (h->nlmsg_type == SOCK_DIAG_BY_FAMILY &&
                h->nlmsg_len >= NLMSG_LENGTH(sizeof(struct inet_diag_msg))) {
                *uid = ((const struct inet_diag_msg *)NLMSG_DATA(h))->idiag_uid;
                found = 1;
            } else if (h->nlmsg_type == NLMSG_ERROR) {
                const struct nlmsgerr *e = NLMSG_DATA(h);
                found = e->error == -ENOENT ? 0 : -1; /* not in this namespace: a remote peer */
            }
        }
    }
    close(nl);
    return found;
}
