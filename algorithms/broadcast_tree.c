/* Broadcast down a binomial tree, pipelined in chunks (MPICH's binomial MPI_Bcast; NCCL's tree
 * broadcast pipelines the same way): ceil(log2 n) hops instead of the ring's n-1, so it wins
 * for small and medium messages across many ranks. */
#include "algorithms/flat.h"
#include "algorithms/tree_common.h"

static podcclResult_t build(pc_sched *s, const pc_args *a, const pc_build_ctx *ctx) {
    const pc_group *g = &ctx->lv->world;
    int n = g->n, pos = g->me, self = g->rank[pos], root = ctx->lv->pos_of[a->root];
    int v = (pos - root + n) % n, ch[32], nch = tree_children(v, n, ch);
    size_t bytes = a->count * pc_type_size(a->dtype), chunk = elem_chunk(ctx->chunk, 1);
    const char *send = a->sendbuff;
    char *recv = a->recvbuff;
    if (v == 0 && send != recv) sched_add(s, PC_STEP_COPY, self, send, recv, bytes, -1);
    for (size_t o = 0; o < bytes && n > 1; o += chunk) {
        size_t len = bytes - o < chunk ? bytes - o : chunk;
        int r = v ? sched_add(s, PC_STEP_RECV, g->rank[(tree_parent(v) + root) % n], NULL, recv + o,
                              len, -1)
                  : -1;
        for (int i = 0; i < nch; i++)
            sched_add(s, PC_STEP_SEND, g->rank[(ch[i] + root) % n], (v ? recv : send) + o, NULL,
                      len, r);
    }
    return sched_status(s);
}

static double cost(const pc_env *e, const pc_args *a) {
    if (cost_one_domain(e->lv)) return PC_COST_UNMEASURED;
    int depth;
    /* The root sends every chunk depth times: its link is the bottleneck. */
    return cost_tree(e, a, &depth);
}

const pc_algo_desc pc_algo_broadcast_tree = {
    .name = "tree",
    .coll = PC_BROADCAST,
    .desc = "binomial tree, pipelined in chunks (MPICH binomial broadcast)",
    .can_run = can_always,
    .cost = cost,
    .build = build,
};
