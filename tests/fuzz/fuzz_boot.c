/* Fuzz target: the bootstrap's message decoders (src/boot_proto.c) and the unique-id decoder
 * (boot_decode_id in src/bootstrap.c): everything a stranger on the network, or a corrupted
 * podcclUniqueId, can feed podccl before authentication. The first input byte picks the decoder;
 * the rest is the message, in a buffer of exactly its size.
 *
 * Beyond "no crash": every message that decodes must re-encode to bytes that decode to the same
 * fields (and, for fixed-size messages, to the same bytes where the format has no free bits);
 * ranks, counts and address families must be within the bounds the decoders promise; an ABORT
 * reason must come back terminated and printable, and the calls of a mismatch notice in range; a
 * rejected unique id must be podcclInvalidArgument. A broken promise aborts. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "src/boot_proto.h"
#include "src/bootstrap.h"

static void check(int cond, const char *what) {
    if (cond) return;
    fprintf(stderr, "fuzz_boot: broken promise: %s\n", what);
    abort();
}

static int same_addr(const pc_sockaddr *a, const pc_sockaddr *b) {
    if (a->sa.sa_family != b->sa.sa_family) return 0;
    if (a->sa.sa_family == AF_INET)
        return a->sin.sin_port == b->sin.sin_port &&
               memcmp(&a->sin.sin_addr, &b->sin.sin_addr, 4) == 0;
    return a->sin6.sin6_port == b->sin6.sin6_port &&
           memcmp(&a->sin6.sin6_addr, &b->sin6.sin6_addr, 16) == 0 &&
           a->sin6.sin6_scope_id == b->sin6.sin6_scope_id;
}

static void m1(const uint8_t *d, size_t n) {
    bp_m1 m, m2;
    char err[128];
    if (bp_m1_decode(d, n, &m, err, sizeof(err)) != 0) {
        check(memchr(err, 0, sizeof(err)) && err[0], "M1 rejected without a message");
        return;
    }
    check(n >= BP_M1_BYTES, "M1 accepted from a short buffer");
    check(m.nranks >= 1 && m.nranks <= BP_MAX_RANKS, "M1 nranks out of bounds");
    check(m.rank >= 0 && m.rank < m.nranks, "M1 rank out of bounds");
    check(m.kind == BP_KIND_ROOT || m.kind == BP_KIND_RING, "M1 kind");
    check(m.listen.sa.sa_family == AF_INET || m.listen.sa.sa_family == AF_INET6, "M1 family");
    uint8_t out[BP_M1_BYTES];
    bp_m1_encode(&m, out);
    check(bp_m1_decode(out, sizeof(out), &m2, err, sizeof(err)) == 0, "M1 re-encoding rejected");
    check(m2.rank == m.rank && m2.nranks == m.nranks && m2.pid == m.pid && m2.uid == m.uid &&
              m2.timeout_ms == m.timeout_ms && memcmp(m2.nonce, m.nonce, BP_NONCE) == 0 &&
              same_addr(&m.listen, &m2.listen),
          "M1 round trip");
}

static void m2(const uint8_t *d, size_t n) {
    bp_m2 m, again;
    char err[128];
    if (bp_m2_decode(d, n, &m, err, sizeof(err)) != 0) return;
    check(m.status == BP_OK && m.rank >= -1 && m.rank < BP_MAX_RANKS, "M2 bounds");
    uint8_t out[BP_M2_BYTES];
    bp_m2_encode(&m, out);
    check(memcmp(out, d, BP_M2_BYTES) == 0, "M2 re-encodes to different bytes");
    check(bp_m2_decode(out, sizeof(out), &again, err, sizeof(err)) == 0, "M2 round trip");
}

static void answer(const uint8_t *d, size_t n) {
    bp_answer a, again;
    char err[128];
    if (bp_answer_decode(d, n, &a, err, sizeof(err)) != 0) return;
    check(a.status <= BP_BUSY && a.nranks >= 1 && a.nranks <= BP_MAX_RANKS, "answer bounds");
    check(a.culprit >= -1 && a.culprit < a.nranks && a.missing <= (uint32_t)a.nranks,
          "answer culprit/missing");
    uint8_t out[BP_ANSWER_BYTES];
    bp_answer_encode(&a, out);
    check(bp_answer_decode(out, sizeof(out), &again, err, sizeof(err)) == 0 &&
              again.status == a.status && again.culprit == a.culprit,
          "answer round trip");
}

static int same_sig(const pc_sig *a, const pc_sig *b) {
    return a->hash == b->hash && a->seq == b->seq && a->count == b->count && a->coll == b->coll &&
           a->dtype == b->dtype && a->op == b->op && a->root == b->root;
}

static void frame(const uint8_t *d, size_t n) {
    uint32_t type, len;
    char err[96];
    if (bp_frame_decode(d, n, &type, &len, err, sizeof(err)) != 0) return;
    check(type == BP_FRAME_DATA ? len <= (1u << 30)
                                : len >= BP_ABORT_HEAD && len <= BP_ABORT_HEAD + BP_MAX_WHY,
          "frame bounds");
    if (type != BP_FRAME_ABORT || n < BP_FRAME_BYTES + len) return;
    int32_t culprit, reporter, rc;
    pc_sig calls[2];
    int ncalls = -1;
    char why[BP_MAX_WHY + 1];
    if (bp_abort_decode(d + BP_FRAME_BYTES, len, &culprit, &reporter, &rc, calls, &ncalls, why,
                        sizeof(why)) != 0)
        return;
    check(culprit >= -1 && culprit < BP_MAX_RANKS && reporter >= 0, "abort bounds");
    check(ncalls == 0 || (ncalls == 2 && rc == podcclInvalidUsage), "abort calls count");
    for (int i = 0; i < ncalls; i++)
        check(calls[i].coll >= -1 && calls[i].dtype >= 0 && calls[i].dtype < podcclNumTypes &&
                  calls[i].op >= 0 && calls[i].op < podcclNumOps && calls[i].root >= 0,
              "abort call bounds");
    size_t w = strnlen(why, sizeof(why));
    check(w < sizeof(why), "abort reason not terminated");
    for (size_t i = 0; i < w; i++) check(why[i] >= 0x20 && why[i] < 0x7f, "abort reason printable");
    uint8_t out[BP_ABORT_HEAD + BP_MAX_WHY];
    size_t m = bp_abort_encode(culprit, reporter, rc, ncalls ? calls : NULL, why, out);
    int32_t c2, r2, rc2;
    pc_sig calls2[2];
    int n2 = -1;
    char why2[BP_MAX_WHY + 1];
    check(bp_abort_decode(out, m, &c2, &r2, &rc2, calls2, &n2, why2, sizeof(why2)) == 0 &&
              c2 == culprit && r2 == reporter && rc2 == rc && n2 == ncalls &&
              strcmp(why, why2) == 0,
          "abort round trip");
    for (int i = 0; i < ncalls; i++)
        check(same_sig(&calls[i], &calls2[i]), "abort calls round trip");
    /* The head has no free bits: it re-encodes to the same bytes. */
    check(memcmp(out, d + BP_FRAME_BYTES, BP_ABORT_HEAD) == 0, "abort head re-encodes differently");
}

static void unique_id(const uint8_t *d, size_t n) {
    pc_id id;
    podcclResult_t r = boot_decode_id(d, n, &id);
    if (r != podcclSuccess) {
        check(r == podcclInvalidArgument, "a bad unique id is not podcclInvalidArgument");
        return;
    }
    check(n >= sizeof(pc_id) && id.magic == PC_ID_MAGIC, "unique id magic");
    check(id.addr.sa.sa_family == AF_INET || id.addr.sa.sa_family == AF_INET6, "id family");
    check(id.addr.sin.sin_port != 0, "id port 0 accepted");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static int quiet;
    if (!quiet) {
        setenv("PODCCL_DEBUG", "NONE", 1); /* rejected ids log at WARN otherwise */
        quiet = 1;
    }
    if (size < 1) return 0;
    uint8_t *d = malloc(size - 1 ? size - 1 : 1);
    if (!d) return 0;
    memcpy(d, data + 1, size - 1);
    switch (data[0] % 5) {
    case 0:
        m1(d, size - 1);
        break;
    case 1:
        m2(d, size - 1);
        break;
    case 2:
        answer(d, size - 1);
        break;
    case 3:
        frame(d, size - 1);
        break;
    default:
        unique_id(d, size - 1);
        break;
    }
    free(d);
    return 0;
}
