/* All-reduce by recursive halving and doubling (Rabenseifner, "Optimization of collective
 * reduction operations", ICCS 2004; MPICH's MPI_Allreduce for long vectors; Thakur,
 * Rabenseifner & Gropp 2005). Reduce-scatter by recursive halving, then all-gather by recursive
 * doubling: 2 log2(p) steps, each rank sends 2(p-1)/p S. Distances grow from 1 in topology
 * order, so the largest exchanges stay inside a host and only S/p crosses the top level per
 * step pair. Any rank count: of the first 2r positions (r = n - p, p the largest power of two
 * <= n) each odd one hands its vector to its even neighbour first and gets the result back at
 * the end (MPICH's fold). */
#include "algorithms/flat.h"

/* Virtual rank of position pos (-1: folded away), and the position of virtual rank v. */
static int vrank(int pos, int r) {
    return pos < 2 * r ? (pos % 2 ? -1 : pos / 2) : pos - r;
}
static int vpos(int v, int r) {
    return v < r ? 2 * v : v + r;
}

/* Fold: odd positions of the first 2r send their input to the even neighbour, which reduces it
 * into recv. Returns the step after which recv (even) holds the sum, or -1. */
static int fold_in(pc_sched *s, const pc_group *g, const pc_args *a, int r, size_t bytes,
                   size_t chunk) {
    int pos = g->me, first = s->n;
    if (pos >= 2 * r) return -1;
    int peer = g->rank[pos ^ 1];
    for (size_t o = 0; o < bytes; o += chunk) {
        size_t len = bytes - o < chunk ? bytes - o : chunk;
        if (pos % 2)
            sched_add(s, PC_STEP_SEND, peer, (const char *)a->sendbuff + o, NULL, len, -1);
        else
            sched_add(s, PC_STEP_RECV_REDUCE, peer, (const char *)a->sendbuff + o,
                      (char *)a->recvbuff + o, len, -1);
    }
    return sched_join_from(s, g->rank[pos], first, -1);
}

static void fold_out(pc_sched *s, const pc_group *g, const pc_args *a, int r, size_t bytes,
                     size_t chunk, int dep) {
    int pos = g->me;
    if (pos >= 2 * r) return;
    int peer = g->rank[pos ^ 1];
    for (size_t o = 0; o < bytes; o += chunk) {
        size_t len = bytes - o < chunk ? bytes - o : chunk;
        if (pos % 2)
            sched_add(s, PC_STEP_RECV, peer, NULL, (char *)a->recvbuff + o, len, dep);
        else
            sched_add(s, PC_STEP_SEND, peer, (const char *)a->recvbuff + o, NULL, len, dep);
    }
}

/* Sends [lo, hi) blocks of src to peer and receive-reduces [klo, khi) into recv. */
static int exchange(pc_sched *s, int self, int peer, const pc_args *a, int p, const char *src,
                    int lo, int hi, int klo, int khi, size_t chunk, int dep, int reduce) {
    size_t es = pc_type_size(a->dtype), so = blk_off(a->count, p, lo) * es,
           se = blk_off(a->count, p, hi) * es, ro = blk_off(a->count, p, klo) * es,
           re = blk_off(a->count, p, khi) * es;
    char *recv = a->recvbuff;
    int first = s->n;
    for (size_t o = 0; so + o < se || ro + o < re; o += chunk) {
        if (so + o < se)
            sched_add(s, PC_STEP_SEND, peer, src + so + o, NULL,
                      se - so - o < chunk ? se - so - o : chunk, dep);
        if (ro + o < re) {
            size_t len = re - ro - o < chunk ? re - ro - o : chunk;
            if (reduce)
                sched_add(s, PC_STEP_RECV_REDUCE, peer, src + ro + o, recv + ro + o, len, dep);
            else
                sched_add(s, PC_STEP_RECV, peer, NULL, recv + ro + o, len, dep);
        }
    }
    return sched_join_from(s, self, first, dep);
}

static podcclResult_t build(pc_sched *s, const pc_args *a, const pc_build_ctx *ctx) {
    const pc_group *g = &ctx->lv->world;
    int n = g->n, pos = g->me, self = g->rank[pos], p = cost_pow2_below(n), r = n - p;
    size_t es = pc_type_size(a->dtype), bytes = a->count * es, chunk = elem_chunk(ctx->chunk, es);
    int dep = fold_in(s, g, a, r, bytes, chunk), v = vrank(pos, r);
    if (v >= 0) {
        const char *src = pos < 2 * r ? (const char *)a->recvbuff : (const char *)a->sendbuff;
        int lo = 0, hi = p;
        if (p == 1 && src != (const char *)a->recvbuff)
            dep = sched_add(s, PC_STEP_COPY, self, src, a->recvbuff, bytes, dep);
        for (int d = 1; d < p; d *= 2) { /* halving: keep the half named by bit d of v */
            int mid = lo + (hi - lo) / 2, peer = g->rank[vpos(v ^ d, r)];
            int keep_lo = !(v & d);
            dep = exchange(s, self, peer, a, p, src, keep_lo ? mid : lo, keep_lo ? hi : mid,
                           keep_lo ? lo : mid, keep_lo ? mid : hi, chunk, dep, 1);
            if (keep_lo)
                hi = mid;
            else
                lo = mid;
            src = a->recvbuff;
        }
        for (int d = p / 2; d >= 1; d /= 2) { /* doubling: the partner holds the other half */
            int peer = g->rank[vpos(v ^ d, r)], w = hi - lo;
            int plo = (v & d) ? lo - w : hi, phi = plo + w;
            dep = exchange(s, self, peer, a, p, a->recvbuff, lo, hi, plo, phi, chunk, dep, 0);
            lo = lo < plo ? lo : plo, hi = hi > phi ? hi : phi;
        }
    }
    fold_out(s, g, a, r, bytes, chunk, dep);
    return sched_status(s);
}

static double cost(const pc_env *e, const pc_args *a) {
    if (cost_one_domain(e->lv)) return PC_COST_UNMEASURED;
    return cost_rhd(e, a, cost_bytes(e->lv, a), 1);
}

const pc_algo_desc pc_algo_allreduce_rhd = {
    .name = "rhd",
    .coll = PC_ALLREDUCE,
    .desc = "recursive halving then doubling, any n by folding (Rabenseifner 2004; MPICH)",
    .can_run = can_always,
    .cost = cost,
    .build = build,
};
