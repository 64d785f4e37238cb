/* Hierarchical broadcast for large messages: the root scatters the buffer (block d to rank d),
 * then the hierarchical all-gather (rails.c) spreads the blocks top level first (Van de Geijn's
 * scatter + all-gather broadcast, MPICH's long-message MPI_Bcast, with the all-gather on rails).
 * Every link carries about S, spread over every host's rail, instead of the chain or tree
 * pushing all of S through each hop in turn. */
#include "algorithms/hier_common.h"

static podcclResult_t build(pc_sched *s, const pc_args *a, const pc_build_ctx *ctx) {
    const pc_levels *lv = ctx->lv;
    int n = lv->nranks, me = lv->rank, root = a->root;
    size_t es = pc_type_size(a->dtype), chunk = elem_chunk(ctx->chunk, es);
    char *recv = a->recvbuff;
    pc_layout L;
    if (hier_layout(&L, lv, ctx->segments, a->count, 0))
        return pc_err(NULL, podcclSystemError, "out of memory building a schedule");
    int *last = hier_last(&L, -1);
    if (!last) s->oom = 1;
    if (me == root && a->sendbuff != a->recvbuff && last)
        last[0] = sched_add(s, PC_STEP_COPY, me, a->sendbuff, recv, a->count * es, -1);
    int cp = last ? last[0] : -1;
    for (int j = 0; last && j < L.segs; j++)
        for (int d = 0; d < n; d++) {
            size_t i = (size_t)j * n + d, first = (size_t)s->n;
            last[i] = cp;
            if (d == root || (me != root && d != me)) continue;
            for (size_t o = 0; o < L.len[i] * es; o += chunk) {
                size_t len = L.len[i] * es - o < chunk ? L.len[i] * es - o : chunk;
                size_t at = L.off[i] * es + o;
                if (me == root) /* from sendbuff: need not wait for the local copy */
                    sched_add(s, PC_STEP_SEND, d, (const char *)a->sendbuff + at, NULL, len, -1);
                else
                    sched_add(s, PC_STEP_RECV, root, NULL, recv + at, len, -1);
            }
            if (me != root) last[i] = sched_join_from(s, me, (int)first, -1);
        }
    if (last) {
        pc_stage st = flat_stage(ctx, a);
        hier_ag(s, &st, &L, recv, last);
    }
    free(last), free((void *)L.off);
    return sched_status(s);
}

static double cost(const pc_env *e, const pc_args *a) {
    return hier_cost_rooted(e, a, 0);
}

const pc_algo_desc pc_algo_broadcast_hier = {
    .name = "hier",
    .coll = PC_BROADCAST,
    .desc = "scatter from the root, then rail-parallel all-gather top level first (Van de "
            "Geijn; MPICH long broadcast)",
    .can_run = can_multilevel,
    .cost = cost,
    .build = build,
};
