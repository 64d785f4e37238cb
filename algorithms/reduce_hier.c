/* Hierarchical reduce for large messages: the hierarchical reduce-scatter (rails.c, host level
 * first) leaves block d fully reduced at rank d, then every rank sends its block to the root
 * (Rabenseifner's reduce-scatter + gather reduce, MPICH's long-message MPI_Reduce, with the
 * reduce-scatter on rails). Partial sums live in a temporary of the whole buffer. */
#include "algorithms/hier_common.h"

static size_t tmp_bytes(const pc_levels *lv, const pc_args *a) {
    (void)lv;
    return a->count * pc_type_size(a->dtype);
}

static podcclResult_t build(pc_sched *s, const pc_args *a, const pc_build_ctx *ctx) {
    const pc_levels *lv = ctx->lv;
    int n = lv->nranks, me = lv->rank, root = a->root;
    size_t es = pc_type_size(a->dtype), chunk = elem_chunk(ctx->chunk, es);
    char *work = me == root ? a->recvbuff : ctx->tmp;
    pc_layout L;
    if (hier_layout(&L, lv, ctx->segments, a->count, 0))
        return pc_err(NULL, podcclSystemError, "out of memory building a schedule");
    int *last = hier_last(&L, -1);
    if (last) {
        pc_stage st = flat_stage(ctx, a);
        hier_rs(s, &st, &L, a->sendbuff, work, last);
        for (int j = 0; j < L.segs; j++)
            for (int d = 0; d < n; d++) {
                size_t i = (size_t)j * n + d;
                if (d == root || (me != root && d != me)) continue;
                for (size_t o = 0; o < L.len[i] * es; o += chunk) {
                    size_t len = L.len[i] * es - o < chunk ? L.len[i] * es - o : chunk;
                    char *p = work + L.off[i] * es + o;
                    if (me == root)
                        sched_add(s, PC_STEP_RECV, d, NULL, p, len, last[i]);
                    else
                        sched_add(s, PC_STEP_SEND, root, p, NULL, len, last[i]);
                }
            }
    } else {
        s->oom = 1;
    }
    free(last), free((void *)L.off);
    return sched_status(s);
}

static double cost(const pc_env *e, const pc_args *a) {
    return hier_cost_rooted(e, a, 1);
}

const pc_algo_desc pc_algo_reduce_hier = {
    .name = "hier",
    .coll = PC_REDUCE,
    .desc = "rail-parallel reduce-scatter host level first, then gather to the root "
            "(Rabenseifner; MPICH long reduce)",
    .can_run = can_multilevel,
    .cost = cost,
    .tmp_bytes = tmp_bytes,
    .build = build,
};
