/* Pairwise-exchange all-to-all (MPI's pairwise algorithm, Thakur, Rabenseifner & Gropp, "
 * Optimization of collective communication operations in MPICH", IJHPCA 2005): at step k a
 * rank sends to rank+k and receives from rank-k, so every rank talks to a different peer at
 * each step and no peer is flooded. Serves all-to-all and all-to-all-v. */
#include "algorithms/algo.h"
#include "src/core.h"

static void add_chunked(pc_sched *s, int kind, int peer, const char *src, char *dst, size_t bytes,
                        size_t chunk) {
    for (size_t off = 0; off < bytes; off += chunk) {
        size_t len = bytes - off < chunk ? bytes - off : chunk;
        sched_add(s, kind, peer, src ? src + off : NULL, dst ? dst + off : NULL, len, -1);
    }
}

podcclResult_t pairwise_alltoall(pc_sched *s, const pc_args *a, int rank, int n, size_t chunk,
                                 const char *src) {
    size_t es = pc_type_size(a->dtype);
    char *recv = a->recvbuff;
    const size_t *sc = a->counts, *sd = sc ? sc + n : NULL, *rc = sc ? sc + 2 * n : NULL,
                 *rd = sc ? sc + 3 * n : NULL;
#define SCNT(p) (sc ? sc[p] : a->count)
#define SDSP(p) (sc ? sd[p] : a->count * (size_t)(p))
#define RCNT(p) (sc ? rc[p] : a->count)
#define RDSP(p) (sc ? rd[p] : a->count * (size_t)(p))
    chunk = chunk / es * es;
    if (!chunk) chunk = es;
    sched_add(s, PC_STEP_COPY, rank, src + SDSP(rank) * es, recv + RDSP(rank) * es, SCNT(rank) * es,
              -1);
    for (int k = 1; k < n; k++) {
        int to = (rank + k) % n, from = (rank - k + n) % n;
        add_chunked(s, PC_STEP_SEND, to, src + SDSP(to) * es, NULL, SCNT(to) * es, chunk);
        add_chunked(s, PC_STEP_RECV, from, NULL, recv + RDSP(from) * es, RCNT(from) * es, chunk);
    }
#undef SCNT
#undef SDSP
#undef RCNT
#undef RDSP
    return s->oom ? pc_err(NULL, podcclSystemError, "out of memory") : podcclSuccess;
}
