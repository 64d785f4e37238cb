/* podcclCommShrink: a rank dies in the middle of a training loop of all-reduces; the survivors
 * get an error, shrink the communicator without it (PODCCL_SHRINK_ABORT), and go on with
 * correct results. Then a rank that is alive but excluded (PODCCL_SHRINK_DEFAULT), argument
 * errors, and the same loop with ranks on two "hosts" (PODCCL_HOSTID: the network transport).
 *   test_shrink            every case
 * Exit 0 only if every case passes. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

#define NRANKS 4
#define VICTIM 2
#define ITERS 10
#define DIE_AT 5
#define COUNT 4096

typedef struct {
    int hosts;  /* ranks spread over this many PODCCL_HOSTIDs */
    int kill;   /* the victim dies (1) or is only excluded and destroys its comm (0) */
    int victim; /* rank to drop */
} shrink_case;

/* One step of the loop: every member contributes (old rank + 1) * (it + 1). */
static int step(podcclComm_t c, int it, int oldrank, double members_sum, const char *what) {
    float *buf = malloc(sizeof(float) * COUNT);
    for (int i = 0; i < COUNT; i++) buf[i] = (float)((oldrank + 1) * (it + 1) + (i % 7));
    podcclResult_t r = podcclAllReduce(buf, buf, COUNT, podcclFloat32, podcclSum, c, NULL);
    int bad = r != podcclSuccess ? -1 : 0;
    int nmem = 0;
    podcclCommCount(c, &nmem);
    for (int i = 0; r == podcclSuccess && i < COUNT; i++) {
        double want = members_sum * (it + 1) + (double)nmem * (i % 7);
        if (buf[i] != (float)want) {
            printf("rank %d: %s iteration %d: element %d is %g, expected %g\n", oldrank, what, it,
                   i, buf[i], want);
            bad = 1;
            break;
        }
    }
    free(buf);
    return bad;
}

static int body(podcclComm_t unused, int rank, int nranks, void *arg) {
    (void)unused;
    const shrink_case *sc = arg;
    char host[16];
    snprintf(host, sizeof(host), "h%d", rank * sc->hosts / nranks);
    setenv("PODCCL_HOSTID", host, 1);
    podcclComm_t c;
    podcclUniqueId id = harness_unique_id();
    if (podcclCommInitRank(&c, nranks, id, rank) != podcclSuccess) {
        printf("rank %d: init: %s\n", rank, podcclGetLastError(NULL));
        return 1;
    }
    double all = 0, survivors = 0;
    for (int r = 0; r < nranks; r++) all += r + 1, survivors += r == sc->victim ? 0 : r + 1;
    int it = 0, failed_at = -1;
    for (; it < ITERS; it++) {
        if (it == DIE_AT && rank == sc->victim) {
            if (sc->kill) raise(SIGKILL);
            podcclCommDestroy(c); /* excluded but alive: leaves */
            return 0;
        }
        if (!sc->kill && it == DIE_AT) break; /* the others agree to drop it */
        int s = step(c, it, rank, all, "before the failure");
        if (s > 0) return 1;
        if (s < 0) {
            failed_at = it;
            printf("rank %d: iteration %d failed as expected: %s\n", rank, it,
                   podcclGetLastError(c));
            break;
        }
    }
    if (sc->kill && failed_at != DIE_AT) {
        printf("rank %d: expected the all-reduce of iteration %d to fail, got %d\n", rank, DIE_AT,
               failed_at);
        return 1;
    }
    int excl[1] = {sc->victim};
    podcclComm_t nc;
    double t0 = harness_now();
    podcclResult_t r = podcclCommShrink(c, excl, 1, &nc, NULL,
                                        sc->kill ? PODCCL_SHRINK_ABORT : PODCCL_SHRINK_DEFAULT);
    if (r != podcclSuccess) {
        printf("rank %d: podcclCommShrink: %s: %s\n", rank, podcclGetErrorString(r),
               podcclGetLastError(c));
        return 1;
    }
    int nr = -1, me = -1;
    podcclCommCount(nc, &nr);
    podcclCommUserRank(nc, &me);
    int want_me = rank - (rank > sc->victim);
    if (nr != nranks - 1 || me != want_me) {
        printf("rank %d: new communicator: rank %d of %d, expected %d of %d\n", rank, me, nr,
               want_me, nranks - 1);
        return 1;
    }
    printf("rank %d: shrunk in %.3f s to rank %d of %d\n", rank, harness_now() - t0, me, nr);
    int bad = 0;
    for (; it < ITERS && !bad; it++) bad = step(nc, it, rank, survivors, "after the shrink") != 0;
    podcclCommDestroy(nc);
    return bad;
}

static int run(const char *name, shrink_case sc) {
    harness_opts o = {.no_comm = 1, .timeout_sec = 90, .expendable = 1ull << sc.victim};
    int f = harness_run_opts(NRANKS, body, &sc, &o);
    printf("test_shrink: %s: %s\n", name, f ? "FAIL" : "PASS");
    return f != 0;
}

static int bad_args(podcclComm_t c, int rank, int nranks, void *arg) {
    (void)arg;
    podcclComm_t nc;
    int fails = 0, self[1] = {rank}, twice[2] = {1, 1}, out[1] = {nranks};
    fails += podcclCommShrink(c, self, 1, &nc, NULL, 0) != podcclInvalidArgument;
    fails += podcclCommShrink(c, twice, 2, &nc, NULL, 0) != podcclInvalidArgument;
    fails += podcclCommShrink(c, out, 1, &nc, NULL, 0) != podcclInvalidArgument;
    fails += podcclCommShrink(c, NULL, 1, &nc, NULL, 0) != podcclInvalidArgument;
    fails += podcclCommShrink(c, out, 0, NULL, NULL, 0) != podcclInvalidArgument;
    fails += podcclCommShrink(c, out, 0, &nc, NULL, 7) != podcclInvalidArgument;
    fails += podcclCommShrink(NULL, out, 0, &nc, NULL, 0) != podcclInvalidArgument;
    /* The communicator is still usable after all of them. */
    fails += harness_allreduce_ok(c, rank, nranks, 100);
    if (fails) printf("rank %d: %d argument checks failed\n", rank, fails);
    return fails;
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    setenv("PODCCL_TIMEOUT", "20", 0);
    int fails = 0;
    fails += run("a rank dies mid-loop, survivors shrink and go on (one host)",
                 (shrink_case){.hosts = 1, .kill = 1, .victim = VICTIM});
    fails += run("the lowest rank dies (a new root), one host",
                 (shrink_case){.hosts = 1, .kill = 1, .victim = 0});
    fails += run("a live rank is excluded (PODCCL_SHRINK_DEFAULT)",
                 (shrink_case){.hosts = 1, .kill = 0, .victim = 1});
    fails += run("a rank dies mid-loop, ranks on two hosts (network transport)",
                 (shrink_case){.hosts = 2, .kill = 1, .victim = 3});
    harness_opts o = {.timeout_sec = 60};
    int f = harness_run_opts(3, bad_args, NULL, &o);
    printf("test_shrink: argument errors: %s\n", f ? "FAIL" : "PASS");
    fails += f != 0;
    printf("test_shrink: %d case(s) failed\n", fails);
    return fails != 0;
}
