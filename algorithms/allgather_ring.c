/* All-gather by ring (NCCL's ring): at step t each rank forwards the block it received at step
 * t-1, pipelined in chunks; n-1 steps, each rank sends (n-1)/n S. */
#include <stdlib.h>

#include "algorithms/flat.h"

static podcclResult_t build(pc_sched *s, const pc_args *a, const pc_build_ctx *ctx) {
    const pc_group *g = &ctx->lv->world;
    int n = g->n, self = g->rank[g->me];
    size_t B = a->count * pc_type_size(a->dtype);
    char *mine = (char *)a->recvbuff + (size_t)self * B;
    if ((const char *)a->sendbuff != mine)
        sched_add(s, PC_STEP_COPY, self, a->sendbuff, mine, B, -1);
    if (n == 1) return sched_status(s);
    pc_blk *store = NULL;
    pc_blkset *set = rank_sets(g, a->count, &store);
    if (!set) return pc_err(NULL, podcclSystemError, "out of memory building a schedule");
    pc_stage st = flat_stage(ctx, a);
    /* The first sends read sendbuff, so they need not wait for the local copy. */
    ring_ag_sets_ex(s, &st, set, a->recvbuff, a->sendbuff, NULL);
    free(set), free(store);
    return sched_status(s);
}

static double cost(const pc_env *e, const pc_args *a) {
    double t = cost_table(e, a, "ring");
    if (t >= 0) return t;
    int n = e->lv->nranks;
    double S = cost_bytes(e->lv, a), al, be;
    cost_ring_link(e->lv, &al, &be);
    return (n - 1) * (al + S / n / be);
}

const pc_algo_desc pc_algo_allgather_ring = {
    .name = "ring",
    .coll = PC_ALLGATHER,
    .desc = "ring, pipelined in chunks (NCCL ring)",
    .can_run = can_always,
    .cost = cost,
    .build = build,
};
