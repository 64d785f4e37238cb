/* Mismatched calls on every path (issue 9, items 7 and 8). Ranks 0 .. n-2 call one collective,
 * the last rank calls another that differs in one thing: datatype, reduction op, count,
 * collective, or root. On 2 and 3 local ranks, for each forced path (PODCCL_ALGO=direct, cma,
 * ring) and over the network (every rank its own "host" through PODCCL_HOSTID, ofi: eager
 * messages, RMA ones, and the two ends choosing different protocols), every rank must:
 *   - return podcclInvalidUsage from the mismatched call, or, when its own part of the call could
 *     end before anything was compared (a broadcast root), from its next call; within seconds,
 *     not at PODCCL_TIMEOUT;
 *   - find the communicator broken afterwards (the next call returns an error at once);
 *   - leave every byte outside the receive region it declared untouched, and never receive the
 *     guard bytes that follow a peer's send buffer (a read past what the peer declared);
 * and at least one rank's podcclGetLastError must name both calls ("podcclAllReduce(count 1024,
 * float32, sum)" and the other one).
 * Also: point to point, a send of twice what the receiver posted (shared memory and ofi), where
 * both ranks must fail and the message must give both sizes; and the single-copy over-read: with
 * PODCCL_ALGO=cma, one rank of an all-gather and a broadcast passes twice the count of the
 * others; it must read nothing past their buffers.
 * Usage: test_mismatch [--quick] [ONLY] (--quick: 2 ranks, direct and network only; ONLY: run only
 * the cases whose "path kind nranks" contains it, e.g. "ofi rma root 2"). */
#include "config.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define C 1024     /* elements of the matched call */
#define GUARD 4096 /* guard bytes around every buffer */
#ifndef TIMEOUT_SEC
#define TIMEOUT_SEC 30 /* PODCCL_TIMEOUT: an error must come long before it */
#endif
#define PROMPT_SEC 10.0 /* "within seconds" */
#define RECV_FILL 0xEE
#define RECV_GUARD 0xA5
#define SEND_GUARD 0x5C /* what follows a send buffer: must never reach a receive buffer */
#define MSG 1000

enum { ALLREDUCE, ALLGATHER, BROADCAST, SEND, RECV };
static const char *const fn[] = {"podcclAllReduce", "podcclAllGather", "podcclBroadcast",
                                 "podcclSend", "podcclRecv"};

typedef struct {
    int coll;
    size_t count;
    podcclDataType_t dtype;
    podcclRedOp_t op;
    int root;
} call_t;

typedef struct {
    const char *name;
    call_t good, odd; /* ranks 0 .. n-2, and rank n-1 */
} scenario;

static const scenario kinds[] = {
    {"dtype",
     {ALLREDUCE, C, podcclFloat32, podcclSum, 0},
     {ALLREDUCE, C, podcclInt32, podcclSum, 0}},
    {"op",
     {ALLREDUCE, C, podcclFloat32, podcclSum, 0},
     {ALLREDUCE, C, podcclFloat32, podcclMax, 0}},
    {"count",
     {ALLREDUCE, C, podcclFloat32, podcclSum, 0},
     {ALLREDUCE, 2 * C, podcclFloat32, podcclSum, 0}},
    {"collective",
     {ALLREDUCE, C, podcclFloat32, podcclSum, 0},
     {ALLGATHER, C, podcclFloat32, podcclSum, 0}},
    {"root",
     {BROADCAST, C, podcclFloat32, podcclSum, 0},
     {BROADCAST, C, podcclFloat32, podcclSum, 1}},
};
/* Single copy: one rank passes twice the count. */
/* Point to point (2 ranks): rank 0 sends twice what rank 1 posted to receive (item 8: "sent more
 * bytes than posted" must break the communicator on both ranks and name the sizes). */
static const scenario p2p = {"send > recv",
                             {SEND, 2 * C, podcclFloat32, podcclSum, 1},
                             {RECV, C, podcclFloat32, podcclSum, 0}};
static const scenario overread[] = {
    {"allgather count",
     {ALLGATHER, C, podcclFloat32, podcclSum, 0},
     {ALLGATHER, 2 * C, podcclFloat32, podcclSum, 0}},
    {"broadcast count",
     {BROADCAST, C, podcclFloat32, podcclSum, 0},
     {BROADCAST, 2 * C, podcclFloat32, podcclSum, 0}},
};

typedef struct {
    const scenario *sc;
    int net; /* every rank on its own host, over ofi */
} run_arg;

typedef struct { /* in harness_scratch() */
    atomic_int done;
    char msg[3][MSG];
} shared_t;

/* LeakSanitizer (the sanitizer lane): tcp;ofi_rxm in libfabric 1.17 now and then leaks a
 * connection object it allocated inside fi_cq_read when a peer connects for the first time just
 * before the endpoint closes, which the mismatch notices to ranks never talked to provoke. The
 * frames stop in libfabric (no frame pointers), so only its module can be named. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void) {
    return "leak:libfabric.so\n";
}

static shared_t *sh(void) {
    return harness_scratch();
}

/* "podcclAllReduce(count 1024, float32, sum)", as the library names calls. */
static void describe(const call_t *c, char *buf, size_t len) {
    const char *ty = harness_type_name(c->dtype);
    if (c->coll == SEND || c->coll == RECV) /* named by the sizes of the pieces */
        snprintf(buf, len, "is %zu bytes", c->count * 4);
    else if (c->coll == ALLREDUCE)
        snprintf(buf, len, "%s(count %zu, %s, %s)", fn[c->coll], c->count, ty,
                 harness_op_name(c->op));
    else if (c->coll == BROADCAST)
        snprintf(buf, len, "%s(count %zu, %s, root %d)", fn[c->coll], c->count, ty, c->root);
    else
        snprintf(buf, len, "%s(count %zu, %s)", fn[c->coll], c->count, ty);
}

/* A buffer with GUARD bytes of `guard` on both sides. */
typedef struct {
    unsigned char *base;
    size_t bytes;
} gbuf;

static int galloc(gbuf *g, size_t bytes, int guard, int fill) {
    g->bytes = bytes;
    g->base = malloc(bytes + 2 * GUARD);
    if (!g->base) return 1;
    memset(g->base, guard, GUARD);
    memset(g->base + GUARD, fill, bytes);
    memset(g->base + GUARD + bytes, guard, GUARD);
    return 0;
}
static void *gdata(const gbuf *g) {
    return g->base + GUARD;
}
static size_t guard_damage(const gbuf *g, int guard) {
    size_t bad = 0;
    for (size_t i = 0; i < GUARD; i++)
        bad += (g->base[i] != guard) + (g->base[GUARD + g->bytes + i] != guard);
    return bad;
}
/* Offset of a run of 4 SEND_GUARD bytes in the region, or -1. */
static long foreign_guard(const gbuf *g) {
    const unsigned char *p = gdata(g);
    for (size_t i = 0; i + 4 <= g->bytes; i++)
        if (p[i] == SEND_GUARD && p[i + 1] == SEND_GUARD && p[i + 2] == SEND_GUARD &&
            p[i + 3] == SEND_GUARD)
            return (long)i;
    return -1;
}

static podcclResult_t issue(podcclComm_t comm, const call_t *c, void *send, void *recv) {
    switch (c->coll) {
    case ALLREDUCE:
        return podcclAllReduce(send, recv, c->count, c->dtype, c->op, comm, NULL);
    case ALLGATHER:
        return podcclAllGather(send, recv, c->count, c->dtype, comm, NULL);
    case SEND:
        return podcclSend(send, c->count, c->dtype, c->root, comm, NULL);
    case RECV:
        return podcclRecv(recv, c->count, c->dtype, c->root, comm, NULL);
    default:
        return podcclBroadcast(send, recv, c->count, c->dtype, c->root, comm, NULL);
    }
}

/* A call that must fail because the communicator is broken (or breaks on the mismatch). */
static podcclResult_t follow_up(podcclComm_t comm) {
    float x[4] = {1, 2, 3, 4};
    return podcclAllReduce(x, x, 4, podcclFloat32, podcclSum, comm, NULL);
}

static int judge_rc(int rank, const char *what, podcclResult_t rc, double dt, podcclComm_t comm) {
    int bad = 0;
    if (rc != podcclInvalidUsage) {
        fprintf(stderr, "rank %d: %s returned %d (%s), want podcclInvalidUsage: %s\n", rank, what,
                rc, podcclGetErrorString(rc), podcclGetLastError(comm));
        bad = 1;
    }
    if (dt > PROMPT_SEC) {
        fprintf(stderr,
                "rank %d: %s took %.1f s (PODCCL_TIMEOUT=%d): the error must come at once\n", rank,
                what, dt, TIMEOUT_SEC);
        bad = 1;
    }
    return bad;
}

static int body(podcclComm_t comm, int rank, int nranks, void *argp) {
    const run_arg *ra = argp;
    const scenario *sc = ra->sc;
    const call_t *me = rank == nranks - 1 ? &sc->odd : &sc->good;
    int bad = 0;
    if (!comm) { /* network case: this rank's own host */
        char host[32];
        snprintf(host, sizeof(host), "mismatch-host-%d", rank);
        setenv("PODCCL_HOSTID", host, 1);
        podcclResult_t rc = podcclCommInitRank(&comm, nranks, harness_unique_id(), rank);
        if (rc != podcclSuccess) {
            fprintf(stderr, "rank %d: init: %s\n", rank, podcclGetLastError(NULL));
            return 1;
        }
    }
    size_t es = me->dtype == podcclFloat32 || me->dtype == podcclInt32 ? 4 : 1;
    size_t sbytes = me->count * es, rbytes = me->coll == ALLGATHER ? sbytes * nranks : sbytes;
    gbuf s, r;
    if (galloc(&s, sbytes, SEND_GUARD, 0) || galloc(&r, rbytes, RECV_GUARD, RECV_FILL)) return 1;
    for (size_t i = 0; i < me->count; i++) { /* 1.0f or 1: no SEND_GUARD byte in any result */
        if (me->dtype == podcclFloat32)
            ((float *)gdata(&s))[i] = 1.0f;
        else
            ((int32_t *)gdata(&s))[i] = 1;
    }
    double t0 = harness_now();
    podcclResult_t rc = issue(comm, me, gdata(&s), gdata(&r));
    double dt = harness_now() - t0;
    if (rc == podcclSuccess) {
        /* Its part ended before anything could be compared: the next call must say it. */
        t0 = harness_now();
        rc = follow_up(comm);
        bad |= judge_rc(rank, "the call after a mismatched one", rc, harness_now() - t0, comm);
    } else {
        bad |= judge_rc(rank, "the mismatched call", rc, dt, comm);
    }
    snprintf(sh()->msg[rank], MSG, "%s", podcclGetLastError(comm));
    t0 = harness_now();
    podcclResult_t again = follow_up(comm);
    if (again == podcclSuccess || harness_now() - t0 > PROMPT_SEC) {
        fprintf(stderr, "rank %d: a call on the broken communicator returned %d after %.1f s\n",
                rank, again, harness_now() - t0);
        bad = 1;
    }
    size_t dmg = guard_damage(&r, RECV_GUARD) + guard_damage(&s, SEND_GUARD);
    if (dmg) {
        fprintf(stderr, "rank %d: %zu bytes outside the declared buffers were written\n", rank,
                dmg);
        bad = 1;
    }
    long at = foreign_guard(&r);
    if (at >= 0) {
        fprintf(stderr,
                "rank %d: bytes from past a peer's send buffer reached the receive buffer (offset "
                "%ld): read past what the peer declared\n",
                rank, at);
        bad = 1;
    }
    /* Everybody keeps its communicator until all are done: notices must be able to arrive. */
    atomic_fetch_add(&sh()->done, 1);
    for (int ms = 0; ms < 60000 && atomic_load(&sh()->done) < nranks; ms++) harness_sleep_ms(1);
    if (rank == 0) {
        char a[160], b[160];
        describe(&sc->good, a, sizeof(a));
        describe(&sc->odd, b, sizeof(b));
        int named = 0;
        for (int k = 0; k < nranks; k++)
            named |= strstr(sh()->msg[k], a) && strstr(sh()->msg[k], b);
        if (!named) {
            fprintf(stderr, "no rank's error names both \"%s\" and \"%s\":\n", a, b);
            for (int k = 0; k < nranks; k++) fprintf(stderr, "  rank %d: %s\n", k, sh()->msg[k]);
            bad = 1;
        }
    }
    podcclCommDestroy(comm);
    harness_comm_freed();
    free(s.base), free(r.base);
    return bad;
}

static const char *only;

static int run(const char *path, const scenario *sc, int nranks, int net) {
    char name[96];
    snprintf(name, sizeof(name), "%s %s %d", path, sc->name, nranks);
    if (only && !strstr(name, only)) return 0;
    run_arg ra = {sc, net};
    harness_opts o = {.timeout_sec = 120, .no_comm = net};
    int rc = harness_run_opts(nranks, body, &ra, &o);
    printf("test_mismatch: %-22s %-16s %d ranks: %s (%.1f s)\n", path, sc->name, nranks,
           rc ? "FAIL" : "PASS", o.elapsed_sec);
    fflush(stdout);
    return rc;
}

int main(int argc, char **argv) {
    int quick = 0;
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--quick"))
            quick = 1;
        else
            only = argv[i];
    char t[16];
    snprintf(t, sizeof(t), "%d", TIMEOUT_SEC);
    setenv("PODCCL_TIMEOUT", t, 1);
    setenv("PODCCL_DEBUG", "NONE", 0); /* the library warns about every mismatch: expected */
    int fails = 0, runs = 0, nk = (int)(sizeof(kinds) / sizeof(kinds[0]));
    static const char *const local_paths[] = {"direct", "cma", "ring"};
    fails += run("shm", &p2p, 2, 0), runs++;
#ifdef HAVE_OFI
    setenv("PODCCL_NET", "ofi", 1);
    fails += run("ofi", &p2p, 2, 1), runs++;
    unsetenv("PODCCL_NET");
#endif
    for (int n = 2; n <= (quick ? 2 : 3); n++) {
        for (int p = 0; p < 3; p++) {
            if (quick && p != 0) continue;
            setenv("PODCCL_ALGO", local_paths[p], 1);
            for (int k = 0; k < nk; k++) fails += run(local_paths[p], &kinds[k], n, 0), runs++;
        }
#ifdef HAVE_OFI
        /* Network: eager messages, RMA ones, and each end choosing another protocol (the
         * threshold between the good ranks' pieces and the odd rank's twice larger ones). */
        setenv("PODCCL_ALGO", "ring", 1);
        setenv("PODCCL_NET", "ofi", 1);
        char mid[32];
        snprintf(mid, sizeof(mid), "%zu", (size_t)C * 4 / (size_t)n * 3 / 2);
        const struct {
            const char *name, *eager;
        } net[] = {{"ofi eager", "1073741824"}, {"ofi rma", "0"}, {"ofi mixed protocols", mid}};
        for (int v = 0; v < 3; v++) {
            setenv("PODCCL_OFI_EAGER_BYTES", net[v].eager, 1);
            for (int k = 0; k < nk; k++) {
                if (v == 2 && strcmp(kinds[k].name, "count"))
                    continue; /* sizes differ only there */
                fails += run(net[v].name, &kinds[k], n, 1), runs++;
            }
        }
        unsetenv("PODCCL_OFI_EAGER_BYTES");
        unsetenv("PODCCL_NET");
#else
        if (n == 2) printf("test_mismatch: network cases skipped (built without libfabric)\n");
#endif
        setenv("PODCCL_ALGO", "cma", 1);
        for (int k = 0; k < 2; k++) fails += run("cma over-read", &overread[k], n, 0), runs++;
    }
    printf("test_mismatch: %d of %d runs failed\n", fails, runs);
    return fails != 0;
}
