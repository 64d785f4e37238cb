/* Pairwise-exchange all-to-all (MPI's pairwise algorithm, Thakur, Rabenseifner & Gropp,
 * "Optimization of collective communication operations in MPICH", IJHPCA 2005): at step k a
 * rank sends to the position k ahead and receives from the position k behind, so every rank
 * talks to a different peer at each step and no peer is flooded. Serves all-to-all and
 * all-to-all-v. */
#include "algorithms/flat.h"

static void add_chunked(pc_sched *s, int kind, int peer, const char *src, char *dst, size_t bytes,
                        size_t chunk, int dep) {
    for (size_t off = 0; off < bytes; off += chunk) {
        size_t len = bytes - off < chunk ? bytes - off : chunk;
        sched_add(s, kind, peer, src ? src + off : NULL, dst ? dst + off : NULL, len, dep);
    }
}

podcclResult_t pairwise_alltoall(pc_sched *s, const pc_args *a, const pc_group *g, size_t chunk,
                                 const char *src) {
    int n = g->n, pos = g->me, rank = g->rank[pos];
    size_t es = pc_type_size(a->dtype);
    char *recv = a->recvbuff;
    const size_t *sc = a->counts, *sd = sc ? sc + n : NULL, *rc = sc ? sc + 2 * n : NULL,
                 *rd = sc ? sc + 3 * n : NULL;
#define SCNT(p) (sc ? sc[p] : a->count)
#define SDSP(p) (sc ? sd[p] : a->count * (size_t)(p))
#define RCNT(p) (sc ? rc[p] : a->count)
#define RDSP(p) (sc ? rd[p] : a->count * (size_t)(p))
    chunk = elem_chunk(chunk, es);
    int dep = -1;
    if (src != a->sendbuff) /* in place: send from a copy */
        dep = sched_add(s, PC_STEP_COPY, rank, a->sendbuff, (char *)src, a->count * es * n, -1);
    sched_add(s, PC_STEP_COPY, rank, src + SDSP(rank) * es, recv + RDSP(rank) * es, SCNT(rank) * es,
              dep);
    for (int k = 1; k < n; k++) {
        int to = g->rank[(pos + k) % n], from = g->rank[(pos - k + n) % n];
        add_chunked(s, PC_STEP_SEND, to, src + SDSP(to) * es, NULL, SCNT(to) * es, chunk, dep);
        add_chunked(s, PC_STEP_RECV, from, NULL, recv + RDSP(from) * es, RCNT(from) * es, chunk,
                    dep);
    }
#undef SCNT
#undef SDSP
#undef RCNT
#undef RDSP
    return sched_status(s);
}

static size_t tmp_bytes(const pc_levels *lv, const pc_args *a) {
    int in_place = a->coll == PC_ALLTOALL && a->sendbuff == a->recvbuff;
    return in_place ? a->count * pc_type_size(a->dtype) * (size_t)lv->nranks : 0;
}

static podcclResult_t build(pc_sched *s, const pc_args *a, const pc_build_ctx *ctx) {
    const char *src = tmp_bytes(ctx->lv, a) ? ctx->tmp : a->sendbuff;
    return pairwise_alltoall(s, a, &ctx->lv->world, ctx->chunk, src);
}

static double cost(const pc_env *e, const pc_args *a) {
    double t = cost_table(e, a, "pairwise");
    if (t >= 0) return t;
    const pc_levels *lv = e->lv;
    int n = lv->nranks, top = lv->nlevels - 1;
    double S = a->coll == PC_ALLTOALLV ? 0 : cost_bytes(lv, a);
    return (n - 1) * (cost_alpha(lv, top) + S / n / n / cost_beta(lv, top, 1));
}

const pc_algo_desc pc_algo_alltoall_pairwise = {
    .name = "pairwise",
    .coll = PC_ALLTOALL,
    .desc = "pairwise exchange, one peer per step (MPICH; Thakur et al. 2005)",
    .can_run = can_always,
    .cost = cost,
    .tmp_bytes = tmp_bytes,
    .build = build,
};

const pc_algo_desc pc_algo_alltoallv_pairwise = {
    .name = "pairwise",
    .coll = PC_ALLTOALLV,
    .desc = "pairwise exchange, one peer per step (MPICH; Thakur et al. 2005)",
    .can_run = can_always,
    .cost = cost,
    .build = build,
};
