/* Cost model: predicted time = latency terms + bytes moved / bandwidth + reduction work, per
 * candidate algorithm, with the link class of the domain (shared memory here: latency and
 * copy bandwidth from the transport's properties). The cheapest feasible candidate wins. */
#include "src/tune.h"

#include "transports/shm/shm.h"

static const char *algo_names[PC_NALGO] = {"auto", "ring", "direct", "pairwise", "cma"};
static const char *coll_names[PC_NCOLL] = {"allreduce", "allgather", "reducescatter", "broadcast",
                                           "reduce",    "alltoall",  "alltoallv",     "send",
                                           "recv",      "barrier"};

const char *tune_algo_name(pc_algo a) { return a < PC_NALGO ? algo_names[a] : "?"; }
const char *tune_coll_name(int c) { return c >= 0 && c < PC_NCOLL ? coll_names[c] : "?"; }

/* Which algorithms implement which collective. */
static int has_algo(int coll, pc_algo a) {
    switch (coll) {
    case PC_ALLREDUCE:
    case PC_ALLGATHER:
    case PC_REDUCESCATTER:
    case PC_BROADCAST:
    case PC_REDUCE: return a == PC_ALGO_RING || a == PC_ALGO_DIRECT || a == PC_ALGO_CMA;
    case PC_ALLTOALL: return a == PC_ALGO_PAIRWISE || a == PC_ALGO_DIRECT || a == PC_ALGO_CMA;
    case PC_ALLTOALLV: return a == PC_ALGO_PAIRWISE || a == PC_ALGO_CMA;
    case PC_BARRIER: return a == PC_ALGO_DIRECT;
    default: return 0;
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
                return pc_err(comm, podcclInvalidArgument, "PODCCL_ALGO=%s: unknown collective '%.*s'",
                              spec, (int)(colon - p), p);
            an = colon + 1, alen = len - (size_t)(colon - p) - 1;
        }
        int a = find_name(an, alen, algo_names, PC_NALGO);
        if (a < 0)
            return pc_err(comm, podcclInvalidArgument,
                          "PODCCL_ALGO=%s: unknown algorithm '%.*s' (ring, direct, pairwise, cma)", spec,
                          (int)alen, an);
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
        snprintf(why, len, "the kernel does not let ranks read each other with process_vm_readv "
                           "(ptrace permission, seccomp) or PODCCL_SHM_CMA=0");
        return 0;
    }
    return 1;
}

/* Predicted microseconds from the link class of shared memory: lat per synchronisation, bw
 * for copies (bytes / (GB/s * 1e3) = us), a fixed cost per kernel copy for single copy. */
static double cost(podcclComm_t comm, const pc_args *a, pc_algo algo) {
    double n = comm->nranks, lat = comm->shm_props.latency_us, bw = comm->shm_props.bw_gbps * 1e3;
    double B = (double)direct_bytes_needed(a, comm->nranks);
    if (a->coll == PC_ALLTOALLV) B = 0;
    int red = a->coll == PC_ALLREDUCE || a->coll == PC_REDUCE || a->coll == PC_REDUCESCATTER;
    int all = a->coll == PC_ALLGATHER || a->coll == PC_ALLTOALL;
    switch (algo) {
    case PC_ALGO_DIRECT:
        /* Copy in, one flag round, then read (and reduce) what this rank needs. */
        return 2 * lat + B / bw + (red || all ? n : 1) * B / bw;
    case PC_ALGO_CMA: {
        /* Three flag rounds, one kernel copy per peer and piece, every byte copied once. */
        double syscalls = (n - 1) * (1 + (red ? B / n / 65536.0 : 0));
        double copied = a->coll == PC_ALLREDUCE ? 2 * B * (n - 1) / n : (all ? B * (n - 1) / n : B);
        return 6 * lat + 1.5 * syscalls + copied / bw + red * B / bw;
    }
    case PC_ALGO_RING: {
        double steps = a->coll == PC_ALLREDUCE ? 2 * (n - 1) : (n - 1);
        double per = a->coll == PC_ALLGATHER ? B : B / n;
        /* Each step goes through a FIFO: copy in, copy out. */
        return steps * (lat * 2 + 2 * per / bw) + red * B / bw;
    }
    case PC_ALGO_PAIRWISE: return (n - 1) * (2 * lat) + 2 * B / bw;
    default: return 1e30;
    }
}

podcclResult_t tune_pick(podcclComm_t comm, const pc_args *a, pc_algo *algo) {
    char why[256];
    pc_algo f = comm->forced[a->coll];
    if (a->coll == PC_SEND || a->coll == PC_RECV) {
        *algo = PC_ALGO_AUTO;
        return podcclSuccess;
    }
    if (f != PC_ALGO_AUTO && !feasible(comm, a, f, why, sizeof(why)))
        return pc_err(comm, podcclInvalidUsage, "PODCCL_ALGO forces %s for %s, but %s", algo_names[f],
                      coll_names[a->coll], why);
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
    if (best == PC_ALGO_AUTO) return pc_err(comm, podcclInternalError, "no algorithm for %s", coll_names[a->coll]);
    pc_log(PC_LOG_TRACE, PC_SUB_TUNE, "%s count %zu: %s (predicted %.1f us)", coll_names[a->coll],
           a->count, algo_names[best], best_t);
    *algo = best;
    return podcclSuccess;
}
