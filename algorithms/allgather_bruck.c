/* All-gather by Bruck's algorithm (Bruck, Ho, Kipnis, Upfal & Weathersby, "Efficient
 * algorithms for all-to-all communications in multiport message-passing systems", IEEE TPDS
 * 1997; MPICH's MPI_Allgather for short messages and non-power-of-two n): ceil(log2 n) steps; at
 * step k a rank sends the blocks it has (its own and the 2^k - 1 after it) to the position 2^k
 * behind and receives as many from the position 2^k ahead, in a temporary that starts with its
 * own block; a final pass puts each block at its rank's place. Fewest steps for any n: for small
 * blocks across hosts. */
#include "algorithms/flat.h"

static size_t tmp_bytes(const pc_levels *lv, const pc_args *a) {
    return a->count * pc_type_size(a->dtype) * (size_t)lv->nranks;
}

static podcclResult_t build(pc_sched *s, const pc_args *a, const pc_build_ctx *ctx) {
    const pc_group *g = &ctx->lv->world;
    int n = g->n, pos = g->me, self = g->rank[pos];
    size_t B = a->count * pc_type_size(a->dtype), chunk = elem_chunk(ctx->chunk, 1);
    char *tmp = ctx->tmp, *recv = a->recvbuff;
    int *got = malloc(sizeof(int) * 64), ngot = 0;
    if (!got) return pc_err(NULL, podcclSystemError, "out of memory building a schedule");
    got[ngot++] = sched_add(s, PC_STEP_COPY, self, a->sendbuff, tmp, B, -1);
    for (int d = 1; d < n; d *= 2) {
        int m = d < n - d ? d : n - d, to = g->rank[(pos - d + n) % n],
            from = g->rank[(pos + d) % n];
        int dep = sched_join(s, self, got, ngot), first = s->n;
        size_t bytes = (size_t)m * B;
        for (size_t o = 0; o < bytes; o += chunk) {
            size_t len = bytes - o < chunk ? bytes - o : chunk;
            sched_add(s, PC_STEP_SEND, to, tmp + o, NULL, len, dep);
            sched_add(s, PC_STEP_RECV, from, NULL, tmp + (size_t)d * B + o, len, dep);
        }
        got[0] = sched_join_from(s, self, first, dep), ngot = 1;
    }
    for (int i = 0; i < n; i++) /* tmp block i is the block of position pos + i */
        sched_add(s, PC_STEP_COPY, self, tmp + (size_t)i * B,
                  recv + (size_t)g->rank[(pos + i) % n] * B, B, got[0]);
    free(got);
    return sched_status(s);
}

static double cost(const pc_env *e, const pc_args *a) {
    if (cost_one_domain(e->lv)) return PC_COST_UNMEASURED;
    const pc_levels *lv = e->lv;
    int n = lv->nranks, me = 0; /* every rank must predict the same */
    double B = cost_bytes(lv, a) / n, t = 0;
    for (int d = 1; d < n; d *= 2) {
        int l = cost_level_of(lv, me, (me + d) % n), m = d < n - d ? d : n - d;
        t += cost_alpha(lv, l) + m * B / cost_beta(lv, l, 1);
    }
    return t + n * B / cost_beta(lv, 0, 1);
}

const pc_algo_desc pc_algo_allgather_bruck = {
    .name = "bruck",
    .coll = PC_ALLGATHER,
    .desc = "Bruck's log-step all-gather, any n (Bruck et al. 1997; MPICH short messages)",
    .can_run = can_always,
    .cost = cost,
    .tmp_bytes = tmp_bytes,
    .build = build,
};
