/* Reduce along the ring towards the root, pipelined in chunks (NCCL's ring reduce): a chain
 * from the root's successor to the root; each rank adds its contribution to chunk c as it
 * passes. */
#include "algorithms/flat.h"

static int mod(int a, int n) {
    return ((a % n) + n) % n;
}

static size_t tmp_bytes(const pc_levels *lv, const pc_args *a) {
    (void)lv;
    return a->count * pc_type_size(a->dtype);
}

static podcclResult_t build(pc_sched *s, const pc_args *a, const pc_build_ctx *ctx) {
    const pc_group *g = &ctx->lv->world;
    int n = g->n, pos = g->me, self = g->rank[pos];
    size_t bytes = a->count * pc_type_size(a->dtype);
    const char *send = a->sendbuff;
    char *recv = a->recvbuff;
    int p = mod(pos - ctx->lv->pos_of[a->root] - 1, n), next = g->rank[mod(pos + 1, n)],
        prev = g->rank[mod(pos - 1, n)];
    if (n == 1) {
        if (send != recv) sched_add(s, PC_STEP_COPY, self, send, recv, bytes, -1);
        return sched_status(s);
    }
    size_t chunk = elem_chunk(ctx->chunk, pc_type_size(a->dtype));
    char *acc = p == n - 1 ? recv : ctx->tmp;
    for (size_t off = 0; off < bytes; off += chunk) {
        size_t len = bytes - off < chunk ? bytes - off : chunk;
        if (p == 0) {
            sched_add(s, PC_STEP_SEND, next, send + off, NULL, len, -1);
            continue;
        }
        int r = sched_add(s, PC_STEP_RECV_REDUCE, prev, send + off, acc + off, len, -1);
        if (p < n - 1) sched_add(s, PC_STEP_SEND, next, acc + off, NULL, len, r);
    }
    return sched_status(s);
}

static double cost(const pc_env *e, const pc_args *a) {
    double t = cost_table(e, a, "ring");
    return t >= 0 ? t : cost_chain(e, a) + cost_gamma(e, a, cost_bytes(e->lv, a));
}

const pc_algo_desc pc_algo_reduce_ring = {
    .name = "ring",
    .coll = PC_REDUCE,
    .desc = "chain along the ring to the root, pipelined in chunks (NCCL ring)",
    .can_run = can_always,
    .cost = cost,
    .tmp_bytes = tmp_bytes,
    .build = build,
};
