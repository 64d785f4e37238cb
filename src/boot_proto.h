/* The bootstrap's wire protocol (docs/security.md): fixed-size messages with explicit byte
 * order, mutual authentication by HMAC-SHA256 challenge-response keyed by the job's secret
 * (OpenSSL libcrypto), and the frames of the ring after it is up. Encoders and decoders are pure
 * functions (no I/O, no logging) so the fuzzers can call them; every decoder checks every field
 * and says what is wrong.
 *
 * A connection between a connector C and an acceptor A (a rank and the rendezvous root, or two
 * ring neighbours):
 *   C -> A  M1 {magic, version, kind, nonce_c, rank, nranks, listen address, pid, uid, timeout}
 *   A -> C  M2 {magic, status, rank_a, nonce_a, mac_a = HMAC(K, "podccl/a" | M1 | M2 head)}
 *   C -> A  M3 {mac_c = HMAC(K, "podccl/c" | M1 | M2)}
 * Each side proves it knows K over the other's fresh nonce; K never travels. The root's answer
 * (the table of listen addresses, or why the rendezvous failed) carries
 * HMAC(K, "podccl/t" | nonce_c | answer), so a rank accepts only its own root's table. */
#ifndef PODCCL_BOOT_PROTO_H
#define PODCCL_BOOT_PROTO_H

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "core.h"

#define PC_ID_MAGIC 0x706f646363336964ull /* "podcc3id" */
#define PC_SECRET_BYTES 32

typedef union {
    struct sockaddr sa;
    struct sockaddr_in sin;
    struct sockaddr_in6 sin6;
} pc_sockaddr;

/* The layout inside podcclUniqueId (documented for tests): bytes 0..7 magic, 8..39 root address,
 * 40..71 secret (the key of the rendezvous; it never leaves the process: peers prove they know
 * it). */
typedef struct {
    uint64_t magic;
    pc_sockaddr addr;
    uint8_t pad[32 - sizeof(pc_sockaddr)];
    uint8_t secret[PC_SECRET_BYTES];
} pc_id;
_Static_assert(sizeof(pc_id) <= PODCCL_UNIQUE_ID_BYTES, "id too large");

#define BP_VERSION 3 /* 3: ABORT frames carry the two calls of a mismatch */
#define BP_NONCE 32
#define BP_MAC 32
#define BP_KEY PC_SECRET_BYTES
#define BP_ADDR_BYTES 24
#define BP_M1_BYTES 92
#define BP_M2_BYTES 80
#define BP_M3_BYTES BP_MAC
#define BP_ANSWER_BYTES 56 /* root's answer head; a table of nranks addresses follows when OK */
#define BP_FRAME_BYTES 8
#define BP_MAX_RANKS (1 << 20)
#define BP_MAX_WHY 240
#define BP_SIG_BYTES 40 /* a pc_sig: hash, seq, count, coll, dtype, op, root */
#define BP_ABORT_HEAD (16 + 2 * BP_SIG_BYTES) /* ABORT payload before the reason text */

enum { BP_KIND_ROOT = 1, BP_KIND_RING = 2 };
/* Answer statuses (root -> rank). */
enum {
    BP_OK = 0,
    BP_MISMATCH = 1, /* ranks disagree on nranks, or a rank joined twice */
    BP_DEAD = 2,     /* culprit joined, then its connection closed before everyone joined */
    BP_TIMEOUT = 3,  /* the root's deadline passed; culprit = first rank that never joined */
    BP_BUSY = 4      /* the root dropped this rendezvous (too many open unique ids) */
};
/* Ring frames. */
enum { BP_FRAME_DATA = 1, BP_FRAME_ABORT = 2 };

typedef struct {
    uint32_t version, kind;
    uint8_t nonce[BP_NONCE];
    int32_t rank, nranks;
    pc_sockaddr listen;
    uint32_t pid, uid;
    uint32_t timeout_ms; /* time left to the rank's own deadline: the root answers before */
} bp_m1;

typedef struct {
    uint32_t status;
    int32_t rank;
    uint8_t nonce[BP_NONCE];
    uint8_t mac[BP_MAC];
} bp_m2;

typedef struct {
    uint32_t status;
    int32_t nranks;
    int32_t culprit;  /* rank to blame, -1 none */
    uint32_t missing; /* BP_TIMEOUT: how many ranks never joined */
    uint8_t mac[BP_MAC];
} bp_answer;

/* Addresses: family, port, 16 address bytes, IPv6 scope id. Only AF_INET and AF_INET6 decode. */
void bp_put_addr(uint8_t out[BP_ADDR_BYTES], const pc_sockaddr *a);
int bp_get_addr(const uint8_t in[BP_ADDR_BYTES], pc_sockaddr *a, char *err, size_t len);

void bp_m1_encode(const bp_m1 *m, uint8_t out[BP_M1_BYTES]);
/* 0, or -1 with the reason in err: wrong magic, version, kind, rank range, address family. */
int bp_m1_decode(const uint8_t *in, size_t n, bp_m1 *m, char *err, size_t len);
/* M2's bytes up to the MAC (what mac_a covers besides M1). */
void bp_m2_encode(const bp_m2 *m, uint8_t out[BP_M2_BYTES]);
int bp_m2_decode(const uint8_t *in, size_t n, bp_m2 *m, char *err, size_t len);
void bp_answer_encode(const bp_answer *a, uint8_t out[BP_ANSWER_BYTES]);
int bp_answer_decode(const uint8_t *in, size_t n, bp_answer *a, char *err, size_t len);
/* A ring frame head: type and payload length (DATA up to 1 GiB, ABORT BP_ABORT_HEAD to
 * BP_ABORT_HEAD + BP_MAX_WHY). */
void bp_frame_encode(uint32_t type, uint32_t len, uint8_t out[BP_FRAME_BYTES]);
int bp_frame_decode(const uint8_t *in, size_t n, uint32_t *type, uint32_t *len, char *err,
                    size_t errlen);
/* ABORT payload: culprit, reporter, result code (podcclResult_t), whether calls follow (0 or
 * 1), the reporter's and the culprit's calls of a mismatch (podcclInvalidUsage only; zeros when
 * absent), reason text (NUL-terminated on decode, control bytes replaced). calls: NULL or
 * {reporter's, culprit's}; out holds BP_ABORT_HEAD + BP_MAX_WHY bytes. The decoder fills calls
 * and sets *ncalls to 2 when the frame carries them, else 0; it checks every field of a call
 * (collective, datatype, op and root in range). */
size_t bp_abort_encode(int32_t culprit, int32_t reporter, int32_t rc, const pc_sig *calls,
                       const char *why, uint8_t *out);
int bp_abort_decode(const uint8_t *in, size_t n, int32_t *culprit, int32_t *reporter, int32_t *rc,
                    pc_sig calls[2], int *ncalls, char *why, size_t whylen);

/* MACs. */
void bp_mac_a(const uint8_t key[BP_KEY], const uint8_t m1[BP_M1_BYTES],
              const uint8_t m2[BP_M2_BYTES], uint8_t out[BP_MAC]);
void bp_mac_c(const uint8_t key[BP_KEY], const uint8_t m1[BP_M1_BYTES],
              const uint8_t m2[BP_M2_BYTES], uint8_t out[BP_MAC]);
/* Over the answer head (its MAC field zeroed) and the table that follows it. */
void bp_mac_answer(const uint8_t key[BP_KEY], const uint8_t nonce_c[BP_NONCE],
                   const uint8_t head[BP_ANSWER_BYTES], const void *table, size_t table_bytes,
                   uint8_t out[BP_MAC]);
/* Constant-time comparison (CRYPTO_memcmp): 1 when equal. */
int bp_mac_equal(const uint8_t a[BP_MAC], const uint8_t b[BP_MAC]);
/* Cryptographically strong random bytes (RAND_bytes): 0 or -1. */
int bp_random(void *buf, size_t n);
/* key = HMAC(secret, label | data): derives a per-purpose key (environment init, shrink). */
void bp_derive(const uint8_t *secret, size_t secret_len, const char *label, const void *data,
               size_t data_len, uint8_t key[BP_KEY]);

/* The uid owning the other end of a TCP connection over loopback (the kernel's sock_diag, the
 * TCP counterpart of SO_PEERCRED): 1 and *uid when found, 0 when the peer is not on loopback in
 * this network namespace (nothing to check), -1 when the lookup failed. */
int bp_peer_uid(int fd, uid_t *uid);

#endif
