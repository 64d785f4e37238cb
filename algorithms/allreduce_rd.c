/* All-reduce by recursive doubling (MPICH's MPI_Allreduce for short vectors; Thakur,
 * Rabenseifner & Gropp 2005): log2(p) steps, in each of which a rank exchanges its whole
 * vector with the rank at distance 1, 2, 4, ... and reduces. The fewest steps of any
 * algorithm, so it wins for small messages across hosts. Any n by MPICH's fold (see
 * allreduce_rhd.c). Two buffers alternate (recv and a temporary), so a send never reads what a
 * receive of the same step writes. Partners combine the same two partial results, and the reduction
 * is commutative, so all ranks get identical bits. */
#include "algorithms/flat.h"

static int vrank(int pos, int r) {
    return pos < 2 * r ? (pos % 2 ? -1 : pos / 2) : pos - r;
}
static int vpos(int v, int r) {
    return v < r ? 2 * v : v + r;
}

static size_t tmp_bytes(const pc_levels *lv, const pc_args *a) {
    (void)lv;
    return a->count * pc_type_size(a->dtype);
}

/* Moves bytes of src to peer in chunks; and receives (reducing with src when reduce) into dst. */
static int swap(pc_sched *s, int self, int peer, const char *src, char *dst, size_t bytes,
                size_t chunk, int dep, int kind_recv) {
    int first = s->n;
    for (size_t o = 0; o < bytes; o += chunk) {
        size_t len = bytes - o < chunk ? bytes - o : chunk;
        if (kind_recv != PC_STEP_RECV || src)
            sched_add(s, PC_STEP_SEND, peer, src + o, NULL, len, dep);
        if (dst)
            sched_add(s, kind_recv, peer, kind_recv == PC_STEP_RECV_REDUCE ? src + o : NULL,
                      dst + o, len, dep);
    }
    return sched_join_from(s, self, first, dep);
}

static podcclResult_t build(pc_sched *s, const pc_args *a, const pc_build_ctx *ctx) {
    const pc_group *g = &ctx->lv->world;
    int n = g->n, pos = g->me, self = g->rank[pos], p = cost_pow2_below(n), r = n - p;
    size_t es = pc_type_size(a->dtype), bytes = a->count * es, chunk = elem_chunk(ctx->chunk, es);
    char *recv = a->recvbuff, *tmp = ctx->tmp;
    const char *in = a->sendbuff;
    int dep = -1, v = vrank(pos, r);
    if (pos < 2 * r) { /* fold */
        int peer = g->rank[pos ^ 1];
        if (pos % 2) {
            dep = swap(s, self, peer, in, NULL, bytes, chunk, -1, PC_STEP_RECV);
            swap(s, self, peer, NULL, recv, bytes, chunk, dep, PC_STEP_RECV);
            return sched_status(s);
        }
        int first = s->n;
        for (size_t o = 0; o < bytes; o += chunk)
            sched_add(s, PC_STEP_RECV_REDUCE, peer, in + o, recv + o,
                      bytes - o < chunk ? bytes - o : chunk, -1);
        dep = sched_join_from(s, self, first, -1);
        in = recv;
    }
    int rounds = 0;
    for (int d = 1; d < p; d *= 2) rounds++;
    /* dst alternates between recv and tmp, ending in recv when possible. */
    char *dst = (rounds % 2 == 1) ? recv : tmp;
    if (dst == in) dst = dst == recv ? tmp : recv;
    const char *src = in;
    int prev_send = -1;
    for (int d = 1; d < p; d *= 2) {
        int peer = g->rank[vpos(v ^ d, r)], first = s->n;
        int deps[2] = {dep, prev_send}; /* dst was last read by the previous round's sends */
        int gate = sched_join(s, self, deps, 2);
        for (size_t o = 0; o < bytes; o += chunk) {
            size_t len = bytes - o < chunk ? bytes - o : chunk;
            sched_add(s, PC_STEP_SEND, peer, src + o, NULL, len, dep);
            sched_add(s, PC_STEP_RECV_REDUCE, peer, src + o, dst + o, len, gate);
        }
        prev_send = sched_join_from(s, self, first, dep);
        dep = prev_send;
        src = dst;
        dst = dst == recv ? tmp : recv;
    }
    if (src != recv) dep = sched_add(s, PC_STEP_COPY, self, src, recv, bytes, dep);
    if (pos < 2 * r) swap(s, self, g->rank[pos ^ 1], recv, NULL, bytes, chunk, dep, PC_STEP_RECV);
    return sched_status(s);
}

static double cost(const pc_env *e, const pc_args *a) {
    if (cost_one_domain(e->lv)) return PC_COST_UNMEASURED;
    return cost_rhd(e, a, cost_bytes(e->lv, a), 0);
}

const pc_algo_desc pc_algo_allreduce_rd = {
    .name = "rd",
    .coll = PC_ALLREDUCE,
    .desc = "recursive doubling of whole vectors, any n by folding (MPICH short vectors)",
    .can_run = can_always,
    .cost = cost,
    .tmp_bytes = tmp_bytes,
    .build = build,
};
