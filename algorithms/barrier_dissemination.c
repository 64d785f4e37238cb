/* Dissemination barrier (Hensgen, Finkel & Manber, 1988; MPICH's MPI_Barrier over the network):
 * in round k every rank sends a token to the position 2^k ahead and receives one from the
 * position 2^k behind; the send of round k waits for the receive of round k-1. After
 * ceil(log2 n) rounds every rank has heard, directly or through others, from every rank. */
#include "algorithms/flat.h"

podcclResult_t dissemination_barrier(pc_sched *s, const pc_group *g, char *tok) {
    /* tok[0] is sent, tok[1] receives: contents do not matter. The send of round k must carry
     * everything this rank heard in rounds 0..k-1, so receives complete in round order (each
     * waits for the one before) and the send waits for the last of them: without the chain, a
     * round-k send could leave before an earlier round's token arrived, and with 7 or more
     * ranks a rank could leave the barrier before another entered (tests/test_sched.c). */
    int prev_recv = -1, n = g->n, pos = g->me;
    for (int d = 1; d < n; d *= 2) {
        int to = g->rank[(pos + d) % n], from = g->rank[((pos - d) % n + n) % n];
        sched_add(s, PC_STEP_SEND, to, tok, NULL, 1, prev_recv);
        prev_recv = sched_add(s, PC_STEP_RECV, from, NULL, tok + 1, 1, prev_recv);
    }
    return sched_status(s);
}

static size_t tmp_bytes(const pc_levels *lv, const pc_args *a) {
    (void)lv, (void)a;
    return 2;
}

static podcclResult_t build(pc_sched *s, const pc_args *a, const pc_build_ctx *ctx) {
    (void)a;
    return dissemination_barrier(s, &ctx->lv->world, ctx->tmp);
}

static double cost(const pc_env *e, const pc_args *a) {
    (void)a;
    const pc_levels *lv = e->lv;
    double t = 0;
    for (int d = 1; d < lv->nranks; d *= 2) t += cost_alpha(lv, lv->nlevels - 1);
    return t + 1.0; /* a schedule's fixed cost: one-shot wins wherever it can run */
}

const pc_algo_desc pc_algo_barrier_dissemination = {
    .name = "dissemination",
    .coll = PC_BARRIER,
    .desc = "dissemination, ceil(log2 n) rounds (Hensgen, Finkel & Manber 1988)",
    .can_run = can_always,
    .cost = cost,
    .tmp_bytes = tmp_bytes,
    .build = build,
};
