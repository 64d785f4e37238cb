/* Hierarchical reduce-scatter: the reduce-scatter half of the hierarchical all-reduce
 * (rails.c), from the host level up, so that the slowest links carry the least; partial sums
 * live in a temporary of the whole buffer, and each rank copies its block out at the end. */
#include "algorithms/hier_common.h"

static size_t tmp_bytes(const pc_levels *lv, const pc_args *a) {
    return a->count * pc_type_size(a->dtype) * (size_t)lv->nranks;
}

static podcclResult_t build(pc_sched *s, const pc_args *a, const pc_build_ctx *ctx) {
    const pc_levels *lv = ctx->lv;
    int n = lv->nranks, me = lv->rank;
    size_t es = pc_type_size(a->dtype);
    pc_layout L;
    if (hier_layout(&L, lv, ctx->segments, a->count, 1))
        return pc_err(NULL, podcclSystemError, "out of memory building a schedule");
    int *last = hier_last(&L, -1);
    if (last) {
        pc_stage st = flat_stage(ctx, a);
        hier_rs(s, &st, &L, a->sendbuff, ctx->tmp, last);
        for (int j = 0; j < L.segs; j++) {
            size_t i = (size_t)j * n + me, at = L.off[i] - (size_t)me * a->count;
            if (L.len[i])
                sched_add(s, PC_STEP_COPY, me, ctx->tmp + L.off[i] * es,
                          (char *)a->recvbuff + at * es, L.len[i] * es, last[i]);
        }
    } else {
        s->oom = 1;
    }
    free(last), free((void *)L.off);
    return sched_status(s);
}

static double cost(const pc_env *e, const pc_args *a) {
    return hier_cost_half(e, a, cost_bytes(e->lv, a), 1);
}

const pc_algo_desc pc_algo_reducescatter_hier = {
    .name = "hier",
    .coll = PC_REDUCESCATTER,
    .desc = "rail-parallel reduce-scatter, host level first, pipelined (NCCL/HAN hierarchy)",
    .can_run = can_multilevel,
    .cost = cost,
    .tmp_bytes = tmp_bytes,
    .build = build,
};
