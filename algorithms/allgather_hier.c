/* Hierarchical all-gather: the all-gather half of the hierarchical all-reduce (rails.c), from
 * the top level down: each rank's block first crosses the slowest links once, on every rail in
 * parallel, then spreads inside ever smaller groups. */
#include "algorithms/hier_common.h"

static podcclResult_t build(pc_sched *s, const pc_args *a, const pc_build_ctx *ctx) {
    const pc_levels *lv = ctx->lv;
    size_t es = pc_type_size(a->dtype);
    char *mine = (char *)a->recvbuff + (size_t)lv->rank * a->count * es;
    int cp = -1;
    if ((const char *)a->sendbuff != mine)
        cp = sched_add(s, PC_STEP_COPY, lv->rank, a->sendbuff, mine, a->count * es, -1);
    pc_layout L;
    if (hier_layout(&L, lv, ctx->segments, a->count, 1))
        return pc_err(NULL, podcclSystemError, "out of memory building a schedule");
    int *last = hier_last(&L, -1);
    if (last) {
        for (int j = 0; j < L.segs; j++) last[(size_t)j * lv->nranks + lv->rank] = cp;
        pc_stage st = flat_stage(ctx, a);
        hier_ag(s, &st, &L, a->recvbuff, last);
    } else {
        s->oom = 1;
    }
    free(last), free((void *)L.off);
    return sched_status(s);
}

static double cost(const pc_env *e, const pc_args *a) {
    return hier_cost_half(e, a, cost_bytes(e->lv, a), 0);
}

const pc_algo_desc pc_algo_allgather_hier = {
    .name = "hier",
    .coll = PC_ALLGATHER,
    .desc = "rail-parallel all-gather, top level first, pipelined (NCCL/HAN hierarchy)",
    .can_run = can_multilevel,
    .cost = cost,
    .build = build,
};
