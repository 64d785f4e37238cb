/* Broadcast along the ring from the root, pipelined in chunks (NCCL's ring broadcast): chunk c
 * leaves a rank as soon as it arrived. Time ~ (n - 2 + S / chunk) chunk steps. */
#include "algorithms/flat.h"

static int mod(int a, int n) {
    return ((a % n) + n) % n;
}

static podcclResult_t build(pc_sched *s, const pc_args *a, const pc_build_ctx *ctx) {
    const pc_group *g = &ctx->lv->world;
    int n = g->n, pos = g->me, self = g->rank[pos];
    size_t bytes = a->count * pc_type_size(a->dtype);
    const char *send = a->sendbuff;
    char *recv = a->recvbuff;
    int p = mod(pos - ctx->lv->pos_of[a->root], n), next = g->rank[mod(pos + 1, n)],
        prev = g->rank[mod(pos - 1, n)];
    if (p == 0 && send != recv) sched_add(s, PC_STEP_COPY, self, send, recv, bytes, -1);
    size_t chunk = elem_chunk(ctx->chunk, pc_type_size(a->dtype));
    for (size_t off = 0; off < bytes && n > 1; off += chunk) {
        size_t len = bytes - off < chunk ? bytes - off : chunk;
        int r = p > 0 ? sched_add(s, PC_STEP_RECV, prev, NULL, recv + off, len, -1) : -1;
        if (p < n - 1) sched_add(s, PC_STEP_SEND, next, (p == 0 ? send : recv) + off, NULL, len, r);
    }
    return sched_status(s);
}

static double cost(const pc_env *e, const pc_args *a) {
    double t = cost_table(e, a, "ring");
    return t >= 0 ? t : cost_chain(e, a);
}

const pc_algo_desc pc_algo_broadcast_ring = {
    .name = "ring",
    .coll = PC_BROADCAST,
    .desc = "chain along the ring from the root, pipelined in chunks (NCCL ring)",
    .can_run = can_always,
    .cost = cost,
    .build = build,
};
