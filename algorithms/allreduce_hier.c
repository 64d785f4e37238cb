/* Hierarchical all-reduce over any number of levels: reduce-scatter going up (inside each host,
 * then on rails inside each group of every level above), then all-gather going down
 * (rails.c), pipelined by segments so that levels overlap. Uneven groups, and ranks without a
 * partner on a rail, stay correct: a rank of a smaller group serves several rails. */
#include "algorithms/hier_common.h"

static podcclResult_t build(pc_sched *s, const pc_args *a, const pc_build_ctx *ctx) {
    pc_layout L;
    if (hier_layout(&L, ctx->lv, ctx->segments, a->count, 0))
        return pc_err(NULL, podcclSystemError, "out of memory building a schedule");
    int *last = hier_last(&L, -1);
    if (last) {
        pc_stage st = flat_stage(ctx, a);
        hier_rs(s, &st, &L, a->sendbuff, a->recvbuff, last);
        hier_ag(s, &st, &L, a->recvbuff, last);
    } else {
        s->oom = 1;
    }
    free(last), free((void *)L.off);
    return sched_status(s);
}

static double cost(const pc_env *e, const pc_args *a) {
    double S = cost_bytes(e->lv, a);
    return hier_cost_half(e, a, S, 1) + hier_cost_half(e, a, S, 0);
}

const pc_algo_desc pc_algo_allreduce_hier = {
    .name = "hier",
    .coll = PC_ALLREDUCE,
    .desc = "rail-parallel reduce-scatter up the levels, all-gather down, pipelined "
            "(NCCL/HAN hierarchy, Rabenseifner per level)",
    .can_run = can_multilevel,
    .cost = cost,
    .build = build,
};
