/* Cost model: predicted time = latency terms + bytes moved / bandwidth + reduction work, per
 * candidate algorithm, with the link class of the domain (shared memory here: latency and
 * copy bandwidth from the transport's properties). The cheapest feasible candidate wins. */
#include "src/tune.h"

#include <math.h>

#include "transports/shm/shm.h"

static const char *algo_names[PC_NALGO] = {"auto", "ring", "direct", "pairwise", "cma"};
static const char *coll_names[PC_NCOLL] = {"allreduce", "allgather", "reducescatter", "broadcast",
                                           "reduce",    "alltoall",  "alltoallv",     "send",
                                           "recv",      "barrier"};

const char *tune_algo_name(pc_algo a) {
    return a < PC_NALGO ? algo_names[a] : "?";
}
const char *tune_coll_name(int c) {
    return c >= 0 && c < PC_NCOLL ? coll_names[c] : "?";
}

/* Which algorithms implement which collective. */
static int has_algo(int coll, pc_algo a) {
    switch (coll) {
    case PC_ALLREDUCE:
    case PC_ALLGATHER:
    case PC_REDUCESCATTER:
    case PC_BROADCAST:
    case PC_REDUCE:
        return a == PC_ALGO_RING || a == PC_ALGO_DIRECT || a == PC_ALGO_CMA;
    case PC_ALLTOALL:
        return a == PC_ALGO_PAIRWISE || a == PC_ALGO_DIRECT || a == PC_ALGO_CMA;
    case PC_ALLTOALLV:
        return a == PC_ALGO_PAIRWISE || a == PC_ALGO_CMA;
    case PC_BARRIER:
        return a == PC_ALGO_DIRECT || a == PC_ALGO_RING; /* ring: dissemination over the network */
    default:
        return 0;
    }
}

static int find_name(const char *s, size_t len, const char **names, int n) {
    for (int i = 0; i < n; i++)
        if (strlen(names[i]) == len && strncasecmp(s, names[i], len) == 0) return i;
    return -1;
}

podcclResult_t tune_parse_override(podcclComm_t comm, const char *spec) {
    for (int c = 0; c < PC_NCOLL; c++) comm->forced[c] = PC_ALGO_AUTO;
    if (!spec || !*spec) return podcclSuccess;
    const char *p = spec;
    while (*p) {
        size_t len = strcspn(p, ",;");
        const char *colon = memchr(p, ':', len);
        int coll = -1;
        const char *an = p;
        size_t alen = len;
        if (colon) {
            coll = find_name(p, (size_t)(colon - p), coll_names, PC_NCOLL);
            if (coll < 0)
                return pc_err(comm, podcclInvalidArgument,
                              "PODCCL_ALGO=%s: unknown collective '%.*s'", spec, (int)(colon - p),
                              p);
            an = colon + 1, alen = len - (size_t)(colon - p) - 1;
        }
        int a = find_name(an, alen, algo_names, PC_NALGO);
        if (a < 0)
            return pc_err(comm, podcclInvalidArgument,
                          "PODCCL_ALGO=%s: unknown algorithm '%.*s' (ring, direct, pairwise, cma)",
                          spec, (int)alen, an);
        if (coll >= 0) {
            if (a != PC_ALGO_AUTO && !has_algo(coll, a))
                return pc_err(comm, podcclInvalidArgument, "PODCCL_ALGO=%s: %s has no %s algorithm",
                              spec, coll_names[coll], algo_names[a]);
            comm->forced[coll] = a;
        } else {
            /* A bare name applies to every collective that has that algorithm. */
            for (int c = 0; c < PC_NCOLL; c++)
                if (has_algo(c, a)) comm->forced[c] = a;
        }
        p += len;
        if (*p) p++;
    }
    return podcclSuccess;
}

/* 1 if algo can run this call; else 0 and why. */
static int feasible(podcclComm_t comm, const pc_args *a, pc_algo algo, char *why, size_t len) {
    int one_host = comm->nlocal == comm->nranks && comm->shm;
    if (algo == PC_ALGO_DIRECT || algo == PC_ALGO_CMA) {
        if (!one_host) {
            snprintf(why, len, "the ranks span %d hosts", comm->nhosts);
            return 0;
        }
    }
    if (algo == PC_ALGO_DIRECT) {
        size_t need = direct_bytes_needed(a, comm->nranks);
        if (need > shm_direct_bytes(comm)) {
            snprintf(why, len,
                     "this call publishes %zu bytes per rank and the one-shot buffer holds %zu "
                     "(PODCCL_SHM_DIRECT_BYTES)",
                     need, shm_direct_bytes(comm));
            return 0;
        }
    }
    if (algo == PC_ALGO_CMA && !shm_cma_ok(comm)) {
        snprintf(why, len,
                 "the kernel does not let ranks read each other with process_vm_readv "
                 "(ptrace permission, seccomp) or PODCCL_SHM_CMA=0");
        return 0;
    }
    return 1;
}

/* The cost model for one host: the time each algorithm took at n = 2 on the reference machine
 * (docs/performance.md: AMD EPYC, 2 cores, 32 MiB L3; ccl-bench -np 2 -A ALGO, pinned), at
 * whole-buffer sizes 1 KiB .. 16 MiB. Between points the model interpolates log-log; past the
 * last point time grows linearly with size. Measured times capture what an alpha-beta formula
 * misses here: single copy wins while the working set fits the L3, staged rings win beyond it,
 * and one-shot wins while a message is a few cache lines. Other rank counts scale the time by
 * the collective's busbw factor and add one step latency per extra rank. 0 = not measured.
 * Single-copy all-reduce and reduce have no row: their reduce-then-gather pattern ranged from
 * 47 to 115 us at 1 MiB between runs on this machine (every reduced line is re-read by the
 * other core), while the ring stayed at 54-70 us; forced with PODCCL_ALGO=cma they still run. */
#define NPTS 8
static const double pts[NPTS] = {1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216};
static const struct {
    int coll;
    pc_algo algo;
    double us[NPTS];
} cal[] = {
    {PC_ALLREDUCE, PC_ALGO_DIRECT, {0.18, 0.32, 0.95, 3.75, 15.17, 69.95, 0, 0}},
    {PC_ALLREDUCE, PC_ALGO_RING, {0.66, 0.83, 1.10, 2.96, 9.44, 54.20, 213.80, 1209.40}},
    {PC_ALLGATHER, PC_ALGO_DIRECT, {0.14, 0.20, 0.46, 1.64, 6.80, 27.65, 129.70, 0}},
    {PC_ALLGATHER, PC_ALGO_RING, {0.44, 0.49, 0.67, 1.61, 4.89, 24.61, 118.30, 677.30}},
    {PC_ALLGATHER, PC_ALGO_CMA, {0.60, 0.56, 0.74, 1.45, 4.37, 23.96, 95.85, 841.30}},
    {PC_REDUCESCATTER, PC_ALGO_DIRECT, {0.13, 0.20, 0.45, 2.00, 7.65, 35.24, 0, 0}},
    {PC_REDUCESCATTER, PC_ALGO_RING, {0.43, 0.47, 0.65, 1.79, 5.79, 31.27, 133.30, 759.70}},
    {PC_REDUCESCATTER, PC_ALGO_CMA, {0.65, 0.66, 0.87, 1.96, 5.49, 27.11, 114.50, 991.50}},
    {PC_BROADCAST, PC_ALGO_DIRECT, {0.11, 0.19, 0.45, 2.26, 8.99, 46.26, 0, 0}},
    {PC_BROADCAST, PC_ALGO_RING, {0.35, 0.42, 0.58, 1.57, 5.36, 34.05, 141.90, 801.90}},
    {PC_BROADCAST, PC_ALGO_CMA, {0.47, 0.45, 0.71, 1.70, 5.71, 28.96, 111.50, 1170.30}},
    {PC_REDUCE, PC_ALGO_DIRECT, {0.10, 0.17, 0.54, 2.47, 10.60, 48.89, 0, 0}},
    {PC_REDUCE, PC_ALGO_RING, {0.37, 0.40, 0.65, 2.38, 8.86, 45.33, 178.50, 1061.30}},
    {PC_ALLTOALL, PC_ALGO_DIRECT, {0.12, 0.20, 0.45, 2.08, 9.52, 36.90, 0, 0}},
    {PC_ALLTOALL, PC_ALGO_PAIRWISE, {0.41, 0.44, 0.62, 1.51, 7.05, 27.27, 114.40, 907.30}},
    {PC_ALLTOALL, PC_ALGO_CMA, {0.60, 0.56, 0.73, 1.43, 4.10, 23.64, 106.10, 1086.80}},
    {PC_ALLTOALLV, PC_ALGO_PAIRWISE, {0.43, 0.44, 0.65, 1.60, 6.14, 27.63, 114.20, 818.50}},
    {PC_ALLTOALLV, PC_ALGO_CMA, {0.63, 0.59, 0.79, 1.54, 4.92, 27.65, 107.50, 1109.70}},
    {PC_BARRIER, PC_ALGO_DIRECT, {0.10, 0.10, 0.10, 0.10, 0.10, 0.10, 0.10, 0.10}},
};

static double busbw_factor(int coll, double n) {
    if (coll == PC_ALLREDUCE) return 2 * (n - 1) / n;
    if (coll == PC_BROADCAST || coll == PC_REDUCE) return 1;
    return (n - 1) / n;
}

static double interp(const double *us, double S) {
    int last = NPTS - 1;
    while (last > 0 && us[last] == 0) last--;
    if (S <= pts[0]) return us[0];
    if (S >= pts[last]) {
        if (last == 0) return us[0];
        double slope = (us[last] - us[last - 1]) / (pts[last] - pts[last - 1]);
        return us[last] + slope * (S - pts[last]);
    }
    int i = 0;
    while (pts[i + 1] < S) i++;
    double f = log(S / pts[i]) / log(pts[i + 1] / pts[i]);
    return exp(log(us[i]) + f * (log(us[i + 1]) - log(us[i])));
}

/* Whole-buffer bytes as ccl-bench counts them; all-to-all-v uses 0 because ranks know only
 * their own counts and must all pick the same algorithm. */
static double whole_bytes(podcclComm_t comm, const pc_args *a) {
    double es = (double)pc_type_size(a->dtype), n = comm->nranks;
    switch (a->coll) {
    case PC_ALLGATHER:
    case PC_REDUCESCATTER:
    case PC_ALLTOALL:
        return (double)a->count * es * n;
    case PC_ALLTOALLV:
    case PC_BARRIER:
        return 0;
    default:
        return (double)a->count * es;
    }
}

static double cost(podcclComm_t comm, const pc_args *a, pc_algo algo) {
    double n = comm->nranks, S = whole_bytes(comm, a);
    for (size_t i = 0; i < sizeof(cal) / sizeof(cal[0]); i++) {
        if (cal[i].coll != a->coll || cal[i].algo != algo) continue;
        double t = interp(cal[i].us, S) * busbw_factor(a->coll, n) / busbw_factor(a->coll, 2);
        double step = algo == PC_ALGO_RING || algo == PC_ALGO_PAIRWISE ? 0.3 : 0.05;
        return t + (n > 2 ? (n - 2) * step : 0);
    }
    return 1e30;
}

podcclResult_t tune_pick(podcclComm_t comm, const pc_args *a, pc_algo *algo) {
    char why[256];
    pc_algo f = comm->forced[a->coll];
    if (a->coll == PC_SEND || a->coll == PC_RECV) {
        *algo = PC_ALGO_AUTO;
        return podcclSuccess;
    }
    /* Same call shape as last time (the common case in a training loop): same answer. */
    pc_tune_cache *c = &comm->tune_cache[a->coll];
    if (c->valid && c->count == a->count && c->dtype == a->dtype) {
        *algo = c->algo;
        return podcclSuccess;
    }
    if (f != PC_ALGO_AUTO && !feasible(comm, a, f, why, sizeof(why)))
        return pc_err(comm, podcclInvalidUsage, "PODCCL_ALGO forces %s for %s, but %s",
                      algo_names[f], coll_names[a->coll], why);
    if (f != PC_ALGO_AUTO) {
        *algo = f;
        return podcclSuccess;
    }
    pc_algo best = PC_ALGO_AUTO;
    double best_t = 1e300;
    for (int c = PC_ALGO_RING; c < PC_NALGO; c++) {
        if (!has_algo(a->coll, c)) continue;
        if (!feasible(comm, a, c, why, sizeof(why))) continue;
        double t = cost(comm, a, c);
        if (t < best_t) best_t = t, best = c;
    }
    if (best == PC_ALGO_AUTO)
        return pc_err(comm, podcclInternalError, "no algorithm for %s", coll_names[a->coll]);
    if (comm->last_pick[a->coll] != best)
        pc_log(PC_LOG_INFO, PC_SUB_TUNE, "%s count %zu %s: %s (predicted %.2f us)",
               coll_names[a->coll], a->count, pc_type_name(a->dtype), algo_names[best], best_t);
    comm->last_pick[a->coll] = best;
    *c = (pc_tune_cache){.valid = 1, .count = a->count, .dtype = a->dtype, .algo = best};
    *algo = best;
    return podcclSuccess;
}
