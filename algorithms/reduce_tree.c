/* Reduce up a binomial tree, pipelined in chunks (MPICH's binomial MPI_Reduce): each rank adds
 * its children's partial sums, smallest subtree first, and passes chunk c to its parent as soon
 * as chunk c is complete. ceil(log2 n) hops. Same combining order on every run. */
#include "algorithms/flat.h"
#include "algorithms/tree_common.h"

static size_t tmp_bytes(const pc_levels *lv, const pc_args *a) {
    (void)lv;
    return a->count * pc_type_size(a->dtype);
}

static podcclResult_t build(pc_sched *s, const pc_args *a, const pc_build_ctx *ctx) {
    const pc_group *g = &ctx->lv->world;
    int n = g->n, pos = g->me, self = g->rank[pos], root = ctx->lv->pos_of[a->root];
    int v = (pos - root + n) % n, ch[32], nch = tree_children(v, n, ch);
    size_t bytes = a->count * pc_type_size(a->dtype),
           chunk = elem_chunk(ctx->chunk, pc_type_size(a->dtype));
    const char *send = a->sendbuff;
    char *acc = v == 0 ? a->recvbuff : ctx->tmp;
    if (n == 1) {
        if (send != acc) sched_add(s, PC_STEP_COPY, self, send, acc, bytes, -1);
        return sched_status(s);
    }
    for (size_t o = 0; o < bytes; o += chunk) {
        size_t len = bytes - o < chunk ? bytes - o : chunk;
        int dep = -1;
        const char *src = send + o;
        for (int i = nch - 1; i >= 0; i--) { /* smallest subtree first: it is ready first */
            dep = sched_add(s, PC_STEP_RECV_REDUCE, g->rank[(ch[i] + root) % n], src, acc + o, len,
                            dep);
            src = acc + o;
        }
        if (v)
            sched_add(s, PC_STEP_SEND, g->rank[(tree_parent(v) + root) % n], src, NULL, len, dep);
    }
    return sched_status(s);
}

static double cost(const pc_env *e, const pc_args *a) {
    if (cost_one_domain(e->lv)) return PC_COST_UNMEASURED;
    int depth;
    double t = cost_tree(e, a, &depth);
    return t + cost_gamma(e, a, depth * cost_bytes(e->lv, a));
}

const pc_algo_desc pc_algo_reduce_tree = {
    .name = "tree",
    .coll = PC_REDUCE,
    .desc = "binomial tree, pipelined in chunks (MPICH binomial reduce)",
    .can_run = can_always,
    .cost = cost,
    .tmp_bytes = tmp_bytes,
    .build = build,
};
