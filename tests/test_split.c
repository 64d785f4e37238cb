/* podcclCommSplit at nranks 4, 5 and 1 (or the counts given on the command line).
 *
 *   test_split [NRANKS...]
 *
 * Every rank of a forked job (tests/harness.c) splits its communicator and checks the result
 * against values computed here in closed form, never through the library:
 *   - orderings: parity (color rank % 2, key rank), reversed keys (key -rank), ties in key
 *     (ordered by parent rank), extreme keys (INT_MIN / INT_MAX), PODCCL_SPLIT_NOCOLOR on some
 *     ranks (they get NULL) and on all: count, user rank, an all-gather of parent ranks, then an
 *     int32 all-reduce (small and large), an all-gather and broadcasts on the new communicator;
 *   - a split of a split; parent and child used alternately; the child outliving its parent;
 *   - what the child inherits (timeout, name; config fields kept, algo included);
 *   - invalid arguments, passed identically by every rank: podcclInvalidArgument with a message,
 *     and the parent still usable.
 * Prints one PASS/FAIL line; exits 0 on pass, 1 on failure. */
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "src/comm.h" /* inherit case only: the child's timeout and name have no public getter */

#define PARENT_TIMEOUT 23 /* the parent's config; the children must inherit it */
#define PARENT_NAME "world"
#define SMALL 1000
#define LARGE (1u << 18) /* 1 MiB of int32: beyond the one-shot buffer (ring or cma) */
#define SENTINEL ((podcclComm_t)(uintptr_t)0x1)

typedef enum { PARITY, REVERSED, TIES, EXTREME, SOME_NOCOLOR, ALL_NOCOLOR, NSCHEMES } scheme;
static const char *const scheme_names[] = {"parity",       "reversed keys", "ties in key",
                                           "extreme keys", "some NOCOLOR",  "all NOCOLOR"};

static int color_of(scheme s, int r) {
    switch (s) {
    case PARITY:
        return r % 2;
    case SOME_NOCOLOR:
        return r % 3 == 1 ? PODCCL_SPLIT_NOCOLOR : 5;
    case ALL_NOCOLOR:
        return PODCCL_SPLIT_NOCOLOR;
    default:
        return 0;
    }
}

static int key_of(scheme s, int r) {
    switch (s) {
    case REVERSED:
        return -r;
    case TIES:
        return -(r / 2); /* pairs tie; the pairs come in reverse order */
    case EXTREME:
        return r % 2 ? INT_MIN : INT_MAX;
    case SOME_NOCOLOR:
        return r % 3 == 1 ? 12345 - r : r; /* a NOCOLOR rank's key must not matter */
    default:
        return r;
    }
}

/* The new rank of parent rank r, in closed form (not by sorting, as the library does). */
static int newrank_of(scheme s, int r, int n) {
    int later_pairs = n - 2 * (r / 2 + 1);
    switch (s) {
    case PARITY:
        return r / 2;
    case REVERSED:
        return n - 1 - r;
    case TIES:
        return (later_pairs > 0 ? later_pairs : 0) + r % 2;
    case EXTREME:
        return r % 2 ? r / 2 : n / 2 + r / 2;
    case SOME_NOCOLOR:
        return r - (r + 1) / 3; /* ranks below r that are not 1 mod 3 */
    default:
        return -1;
    }
}

/* Who is in this rank's new communicator: size and the parent rank of each new rank. */
typedef struct {
    int size;
    int parent[HARNESS_MAX_RANKS];
    const char *what;
    int rank; /* parent rank, for messages */
} members;

static int fail(const members *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(const members *m, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    fprintf(stderr, "rank %d: %s: %s\n", m->rank, m->what, msg); /* one write per line */
    return 1;
}

static int call_failed(const members *m, const char *call, podcclResult_t rc, podcclComm_t c) {
    if (rc == podcclSuccess) return 0;
    return fail(m, "%s returned %d (%s): %s", call, (int)rc, podcclGetErrorString(rc),
                podcclGetLastError(c));
}

/* Members from a scheme, computed with newrank_of; -1 in parent[] would be a bug in this test. */
static members expected_members(scheme s, int rank, int n) {
    members m = {0, {0}, scheme_names[s], rank};
    for (int r = 0; r < n; r++) m.parent[r] = -1;
    if (color_of(s, rank) == PODCCL_SPLIT_NOCOLOR) return m; /* no new rank: parent[-1] */
    for (int r = 0; r < n; r++)
        if (color_of(s, r) == color_of(s, rank)) m.parent[newrank_of(s, r, n)] = r, m.size++;
    return m;
}

static int new_rank(const members *m) {
    for (int j = 0; j < m->size; j++)
        if (m->parent[j] == m->rank) return j;
    return -1;
}

/* Count, user rank, and an all-gather of parent ranks: who is where in the new communicator. */
static int check_identity(podcclComm_t c, const members *m) {
    int count = -1, me = -1, bad = 0;
    if (call_failed(m, "podcclCommCount", podcclCommCount(c, &count), c) ||
        call_failed(m, "podcclCommUserRank", podcclCommUserRank(c, &me), c))
        return 1;
    if (count != m->size) bad += fail(m, "podcclCommCount: got %d, expected %d", count, m->size);
    if (me != new_rank(m))
        bad += fail(m, "podcclCommUserRank: got %d, expected %d", me, new_rank(m));
    if (bad) return bad; /* the all-gather below needs the right size on every rank */
    int32_t mine = m->rank, all[HARNESS_MAX_RANKS];
    for (int j = 0; j < HARNESS_MAX_RANKS; j++) all[j] = -1;
    if (call_failed(m, "podcclAllGather(parent ranks)",
                    podcclAllGather(&mine, all, 1, podcclInt32, c, NULL), c))
        return 1;
    for (int j = 0; j < m->size; j++)
        if (all[j] != m->parent[j])
            bad +=
                fail(m, "new rank %d is parent rank %d, expected %d", j, (int)all[j], m->parent[j]);
    return bad;
}

/* int32 sum of (parent rank + 1) * 3 + i % 1009 over the members, compared element by element. */
static int check_allreduce(podcclComm_t c, const members *m, size_t count) {
    int32_t *in = malloc(count * sizeof(int32_t)), *out = malloc(count * sizeof(int32_t));
    int64_t sum = 0;
    int bad = 0;
    if (!in || !out) bad = fail(m, "out of memory");
    for (int j = 0; j < m->size; j++) sum += (m->parent[j] + 1) * 3;
    for (size_t i = 0; !bad && i < count; i++)
        in[i] = (m->rank + 1) * 3 + (int32_t)(i % 1009), out[i] = -1;
    if (!bad)
        bad = call_failed(m, "podcclAllReduce",
                          podcclAllReduce(in, out, count, podcclInt32, podcclSum, c, NULL), c);
    size_t wrong = 0;
    for (size_t i = 0; !bad && i < count; i++) {
        int64_t want = sum + (int64_t)m->size * (int64_t)(i % 1009);
        if (out[i] != want && wrong++ == 0)
            fail(m, "all-reduce count %zu: element %zu: got %d, expected %lld", count, i,
                 (int)out[i], (long long)want);
    }
    free(in);
    free(out);
    return bad || wrong != 0;
}

static int check_allgather(podcclComm_t c, const members *m, size_t count) {
    int32_t *in = malloc(count * sizeof(int32_t)),
            *out = malloc(count * (size_t)m->size * sizeof(int32_t));
    int bad = !in || !out ? fail(m, "out of memory") : 0;
    for (size_t i = 0; !bad && i < count; i++) in[i] = m->rank * 100000 + (int32_t)i;
    for (size_t i = 0; !bad && i < count * (size_t)m->size; i++) out[i] = -1;
    if (!bad)
        bad = call_failed(m, "podcclAllGather",
                          podcclAllGather(in, out, count, podcclInt32, c, NULL), c);
    size_t wrong = 0;
    for (int j = 0; !bad && j < m->size; j++)
        for (size_t i = 0; i < count; i++) {
            int32_t want = m->parent[j] * 100000 + (int32_t)i, got = out[(size_t)j * count + i];
            if (got != want && wrong++ == 0)
                fail(m, "all-gather count %zu: block %d element %zu: got %d, expected %d", count, j,
                     i, (int)got, (int)want);
        }
    free(in);
    free(out);
    return bad || wrong != 0;
}

static int check_broadcast(podcclComm_t c, const members *m, int root, size_t count) {
    int32_t *in = malloc(count * sizeof(int32_t)), *out = malloc(count * sizeof(int32_t));
    int bad = !in || !out ? fail(m, "out of memory") : 0;
    for (size_t i = 0; !bad && i < count; i++) in[i] = m->rank * 7919 + (int32_t)i, out[i] = -1;
    if (!bad)
        bad = call_failed(m, "podcclBroadcast",
                          podcclBroadcast(in, out, count, podcclInt32, root, c, NULL), c);
    size_t wrong = 0;
    for (size_t i = 0; !bad && i < count; i++) {
        int32_t want = m->parent[root] * 7919 + (int32_t)i;
        if (out[i] != want && wrong++ == 0)
            fail(m, "broadcast root %d count %zu: element %zu: got %d, expected %d", root, count, i,
                 (int)out[i], (int)want);
    }
    free(in);
    free(out);
    return bad || wrong != 0;
}

/* Who, where, and data through the new communicator. Stops at the first failed call (the
 * others would wait for this rank). */
static int check_comm(podcclComm_t c, const members *m) {
    int bad = check_identity(c, m);
    if (!bad) bad += check_allreduce(c, m, SMALL);
    if (!bad) bad += check_allreduce(c, m, LARGE);
    if (!bad) bad += check_allgather(c, m, 3000);
    if (!bad) bad += check_broadcast(c, m, 0, 5000);
    if (!bad) bad += check_broadcast(c, m, m->size - 1, LARGE);
    return bad;
}

static int destroy(podcclComm_t c, const members *m) {
    return call_failed(m, "podcclCommDestroy", podcclCommDestroy(c), NULL);
}

static int run_scheme(podcclComm_t comm, scheme s, int rank, int n) {
    members m = expected_members(s, rank, n);
    podcclComm_t child = SENTINEL;
    if (call_failed(&m, "podcclCommSplit",
                    podcclCommSplit(comm, color_of(s, rank), key_of(s, rank), &child, NULL), comm))
        return 1;
    if (color_of(s, rank) == PODCCL_SPLIT_NOCOLOR)
        return child ? fail(&m, "NOCOLOR: *newcomm is %p, expected NULL", (void *)child) : 0;
    if (!child || child == SENTINEL) return fail(&m, "*newcomm not set");
    int bad = check_comm(child, &m);
    return bad + destroy(child, &m);
}

/* Parent ranks r with r % 4 == rank % 4, in order: a parity split of a parity split. */
static members quarter(int rank, int n, const char *what) {
    members m = {0, {0}, what, rank};
    for (int r = rank % 4; r < n; r += 4) m.parent[m.size++] = r;
    return m;
}

/* Split by parity, split the child by its own parity, check both, and the parent after. */
static int case_nested(podcclComm_t comm, int rank, int n) {
    members half = expected_members(PARITY, rank, n), q = quarter(rank, n, "split of a split");
    podcclComm_t child = NULL, grand = NULL;
    int me = new_rank(&half), bad;
    if (call_failed(&half, "podcclCommSplit", podcclCommSplit(comm, rank % 2, rank, &child, NULL),
                    comm) ||
        call_failed(&q, "podcclCommSplit(child)", podcclCommSplit(child, me % 2, me, &grand, NULL),
                    child))
        return 1;
    bad = check_comm(grand, &q);
    if (!bad) bad = check_comm(child, &half);
    char name[32];
    snprintf(name, sizeof(name), PARENT_NAME ".c%d.c%d", rank % 2, me % 2);
    if (!bad && strcmp(grand->name, name) != 0)
        bad = fail(&q, "name \"%s\", expected \"%s\"", grand->name, name);
    if (!bad) bad = harness_allreduce_ok(comm, rank, n, SMALL);
    bad += destroy(grand, &q);
    return bad + destroy(child, &half);
}

/* Parent and child in turn, then a child that outlives its own parent (a split of comm). */
static int case_alternate(podcclComm_t comm, int rank, int n) {
    members half = expected_members(PARITY, rank, n), rev = expected_members(REVERSED, rank, n);
    podcclComm_t child = NULL, dup = NULL, orphan = NULL;
    half.what = "parent and child alternately", rev.what = "child outliving its parent";
    if (call_failed(&half, "podcclCommSplit", podcclCommSplit(comm, rank % 2, rank, &child, NULL),
                    comm))
        return 1;
    int bad = 0;
    for (int round = 0; round < 3 && !bad; round++) {
        bad = harness_allreduce_ok(comm, rank, n, round ? LARGE : SMALL);
        if (!bad) bad = check_allreduce(child, &half, round ? SMALL : LARGE);
        if (!bad) bad = check_allgather(child, &half, 100 + (size_t)round);
    }
    bad += destroy(child, &half);
    if (!bad) bad = harness_allreduce_ok(comm, rank, n, SMALL); /* parent after the child went */
    if (bad) return bad;
    if (call_failed(&rev, "podcclCommSplit(dup)", podcclCommSplit(comm, 0, rank, &dup, NULL), comm))
        return 1;
    int dup_rank = -1; /* one color, key = rank: dup keeps comm's order, checked via rev below */
    bad = call_failed(&rev, "podcclCommUserRank(dup)", podcclCommUserRank(dup, &dup_rank), dup);
    if (!bad)
        bad = call_failed(&rev, "podcclCommSplit(of dup)",
                          podcclCommSplit(dup, 0, -dup_rank, &orphan, NULL), dup);
    bad += destroy(dup, &rev);
    if (bad) return bad;
    bad = check_comm(orphan, &rev);
    return bad + destroy(orphan, &rev);
}

/* Timeout and name from the parent when config leaves them undefined; config's when set. */
static int check_inherited(podcclComm_t c, const members *m, double timeout, const char *name) {
    int bad = 0;
    if (c->timeout != timeout) bad += fail(m, "timeout %g s, expected %g s", c->timeout, timeout);
    if (strcmp(c->name, name) != 0) bad += fail(m, "name \"%s\", expected \"%s\"", c->name, name);
    return bad;
}

static int case_inherit(podcclComm_t comm, int rank, int n) {
    members m = expected_members(PARITY, rank, n), all = {n, {0}, "config algo kept", rank};
    podcclConfig_t own = PODCCL_CONFIG_INITIALIZER, algo = PODCCL_CONFIG_INITIALIZER;
    podcclComm_t a = NULL, b = NULL, c = NULL;
    char name[32];
    int bad = 0;
    m.what = "inherit";
    for (int r = 0; r < n; r++) all.parent[r] = r;
    own.timeoutSec = 11, own.name = "mine";
    algo.algo = "direct";
    snprintf(name, sizeof(name), PARENT_NAME ".c%d", rank % 2);
    bad += call_failed(&m, "podcclCommSplit(NULL config)",
                       podcclCommSplit(comm, rank % 2, rank, &a, NULL), comm);
    bad += call_failed(&m, "podcclCommSplit(timeout, name)",
                       podcclCommSplit(comm, rank % 2, rank, &b, &own), comm);
    bad +=
        call_failed(&m, "podcclCommSplit(algo)", podcclCommSplit(comm, 7, rank, &c, &algo), comm);
    if (!bad) {
        bad += check_inherited(a, &m, PARENT_TIMEOUT, name);
        bad += check_inherited(b, &m, 11, "mine");
        bad += check_inherited(c, &all, PARENT_TIMEOUT, PARENT_NAME ".c7");
    }
    if (!bad) {
        /* "direct" kept: a message too large for the one-shot buffer is refused (n > 1) */
        int32_t *big = calloc(LARGE, sizeof(int32_t));
        podcclResult_t rc = big ? podcclAllReduce(big, big, LARGE, podcclInt32, podcclSum, c, NULL)
                                : podcclSystemError;
        free(big);
        int ok = rc == podcclInvalidUsage || (n == 1 && rc == podcclSuccess);
        if (!ok)
            bad += fail(&all, "large all-reduce with algo \"direct\" returned %d (%s): %s", (int)rc,
                        podcclGetErrorString(rc), podcclGetLastError(c));
    }
    if (!bad) bad = check_allreduce(c, &all, SMALL); /* and c is still usable */
    if (a) bad += destroy(a, &m);
    if (b) bad += destroy(b, &m);
    if (c) bad += destroy(c, &all);
    return bad;
}

/* A call every rank makes identically: podcclInvalidArgument, a message naming `word`, and
 * *newcomm (if given) reset to NULL. */
static int expect_invalid(const members *m, const char *what, podcclResult_t rc, podcclComm_t comm,
                          const char *word, podcclComm_t out) {
    const char *msg = podcclGetLastError(comm);
    if (rc != podcclInvalidArgument)
        return fail(m, "%s: returned %d (%s), expected podcclInvalidArgument", what, (int)rc,
                    podcclGetErrorString(rc));
    if (!strstr(msg, "podcclCommSplit") || !strstr(msg, word))
        return fail(m, "%s: message \"%s\" does not name podcclCommSplit and \"%s\"", what, msg,
                    word);
    if (out) return fail(m, "%s: *newcomm left at %p, expected NULL", what, (void *)out);
    return 0;
}

static int case_badargs(podcclComm_t comm, int rank, int n) {
    members m = expected_members(PARITY, rank, n);
    podcclConfig_t magic = PODCCL_CONFIG_INITIALIZER, zero = PODCCL_CONFIG_INITIALIZER;
    podcclComm_t c = SENTINEL;
    podcclResult_t rc;
    int bad = 0;
    m.what = "invalid arguments";
    magic.magic = 0, zero.timeoutSec = 0;
    rc = podcclCommSplit(comm, 0, rank, NULL, NULL);
    bad += expect_invalid(&m, "NULL newcomm", rc, comm, "newcomm", NULL);
    rc = podcclCommSplit(comm, -7, rank, &c, NULL);
    bad += expect_invalid(&m, "color -7", rc, comm, "-7", c);
    c = SENTINEL, rc = podcclCommSplit(NULL, 0, rank, &c, NULL);
    bad += expect_invalid(&m, "NULL comm", rc, NULL, "comm", c);
    c = SENTINEL, rc = podcclCommSplit(comm, 0, rank, &c, &magic);
    bad += expect_invalid(&m, "config magic 0", rc, comm, "config", c);
    c = SENTINEL, rc = podcclCommSplit(comm, 0, rank, &c, &zero);
    bad += expect_invalid(&m, "config timeoutSec 0", rc, comm, "timeoutSec", c);
    /* Nothing was exchanged: the parent is in step and usable, and a good split works. */
    if (harness_allreduce_ok(comm, rank, n, SMALL)) return bad + 1;
    c = NULL;
    if (call_failed(&m, "podcclCommSplit(after bad ones)",
                    podcclCommSplit(comm, rank % 2, rank, &c, NULL), comm))
        return bad + 1;
    bad += check_identity(c, &m);
    return bad + destroy(c, &m);
}

static int body(podcclComm_t comm, int rank, int n, void *arg) {
    int bad = 0;
    (void)arg;
    for (scheme s = PARITY; s < NSCHEMES && !bad; s++) bad += run_scheme(comm, s, rank, n);
    if (!bad) bad += case_nested(comm, rank, n);
    if (!bad) bad += case_alternate(comm, rank, n);
    if (!bad) bad += case_inherit(comm, rank, n);
    if (!bad) bad += case_badargs(comm, rank, n);
    return bad != 0;
}

int main(int argc, char **argv) {
    static const int defaults[] = {4, 5, 1};
    podcclConfig_t cfg = PODCCL_CONFIG_INITIALIZER;
    char list[256] = "";
    int fails = 0, k = 0, count = argc > 1 ? argc - 1 : 3;
    cfg.timeoutSec = PARENT_TIMEOUT, cfg.name = PARENT_NAME;
    unsetenv("PODCCL_ALGO"); /* the checks assume the cost model's choices */
    for (int i = 0; i < count; i++) {
        int n = argc > 1 ? atoi(argv[i + 1]) : defaults[i];
        if (n < 1 || n > HARNESS_MAX_RANKS) {
            fprintf(stderr, "usage: %s [NRANKS...] (1..%d each)\n", argv[0], HARNESS_MAX_RANKS);
            return 2;
        }
        harness_opts o = {.timeout_sec = 120, .config = &cfg};
        int rc = harness_run_opts(n, body, NULL, &o);
        if (rc) fprintf(stderr, "test_split: nranks %d failed\n", n);
        fails += rc != 0;
        k += snprintf(list + k, sizeof(list) - (size_t)k, "%s%d", i ? " " : "", n);
        if (k >= (int)sizeof(list)) k = (int)sizeof(list) - 1;
    }
    printf("test_split: nranks %s: %s\n", list, fails ? "FAIL" : "PASS");
    return fails != 0;
}
