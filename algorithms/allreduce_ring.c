/* All-reduce by ring: reduce-scatter then all-gather around the ring, pipelined in chunks, the
 * all-gather of chunk c starting as soon as its reduction is complete (NCCL's ring; Patarasuk &
 * Yuan, JPDC 2009). Bandwidth-optimal: each rank sends 2(n-1)/n S; latency 2(n-1) steps. */
#include <stdlib.h>

#include "algorithms/flat.h"

static podcclResult_t build(pc_sched *s, const pc_args *a, const pc_build_ctx *ctx) {
    const pc_group *g = &ctx->lv->world;
    int n = g->n, self = g->rank[g->me];
    size_t es = pc_type_size(a->dtype);
    if (n == 1) {
        if (a->sendbuff != a->recvbuff)
            sched_add(s, PC_STEP_COPY, self, a->sendbuff, a->recvbuff, a->count * es, -1);
        return sched_status(s);
    }
    size_t *off = malloc(sizeof(size_t) * 2 * (size_t)n);
    pc_blk *store = NULL;
    pc_blkset *set = NULL;
    int *cd = NULL;
    if (off) {
        for (int v = 0; v < n; v++)
            off[v] = blk_off(a->count, n, v), off[n + v] = blk_len(a->count, n, v);
        set = blksets_single(n, off, off + n, &store);
        size_t chunk = elem_chunk(ctx->chunk, es);
        cd = malloc(sizeof(int) * ((off[n] * es + chunk - 1) / chunk + 1));
    }
    if (!off || !set || !cd) {
        free(off), free(set), free(store), free(cd);
        return pc_err(NULL, podcclSystemError, "out of memory building a schedule");
    }
    pc_stage st = flat_stage(ctx, a);
    ring_rs_sets_ex(s, &st, set, a->sendbuff, a->recvbuff, NULL, cd);
    ring_ag_sets_ex(s, &st, set, a->recvbuff, NULL, cd);
    free(off), free(set), free(store), free(cd);
    return sched_status(s);
}

static double cost(const pc_env *e, const pc_args *a) {
    double t = cost_table(e, a, "ring");
    if (t >= 0) return t;
    int n = e->lv->nranks;
    double S = cost_bytes(e->lv, a), al, be;
    cost_ring_link(e->lv, &al, &be);
    return 2 * (n - 1) * (al + S / n / be) + cost_gamma(e, a, S * (n - 1) / n);
}

const pc_algo_desc pc_algo_allreduce_ring = {
    .name = "ring",
    .coll = PC_ALLREDUCE,
    .desc = "ring reduce-scatter + all-gather, pipelined (NCCL ring; Patarasuk & Yuan 2009)",
    .can_run = can_always,
    .cost = cost,
    .build = build,
};
