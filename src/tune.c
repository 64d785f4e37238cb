/* The planner (tune.h): predicted times from the descriptors' cost models (src/cost.c), the
 * cheapest feasible candidate wins; overrides and explain read the same registry. */
#include "src/tune.h"

#include <strings.h>

#include "src/cost.h"

#define CACHE 4 /* call shapes remembered per collective (a training loop has few) */

typedef struct {
    int valid;
    size_t count;
    podcclDataType_t dtype;
    int root;
    const pc_algo_desc *algo;
} cache_t;

struct pc_tune_state {
    const pc_algo_desc *forced[PC_NCOLL];
    cache_t cache[PC_NCOLL][CACHE];
    int next[PC_NCOLL], hit[PC_NCOLL];
    const pc_algo_desc *last[PC_NCOLL];
    pc_env env;
};

/* The float32 sum kernel's speed on this machine, once per process (~1 ms). */
static double measure_reduce(void) {
    static double gbps;
    if (gbps > 0) return gbps;
    enum { N = 16384 };
    static float a[N], b[N];
    double t0 = pc_now();
    int reps = 0;
    do {
        pc_reduce2(a, a, b, N, podcclFloat32, podcclSum);
        reps++;
    } while (pc_now() - t0 < 0.001);
    gbps = (double)reps * N * sizeof(float) / (pc_now() - t0) / 1e9;
    pc_log(PC_LOG_INFO, PC_SUB_TUNE, "reduction kernel: %.1f GB/s (float32 sum, in cache)", gbps);
    return gbps;
}

static podcclResult_t parse_item(podcclComm_t comm, struct pc_tune_state *t, const char *spec,
                                 const char *p, size_t len) {
    const char *colon = memchr(p, ':', len), *an = p;
    size_t alen = len;
    int coll = -1;
    if (colon) {
        coll = algo_coll_find(p, (size_t)(colon - p));
        if (coll < 0)
            return pc_err(comm, podcclInvalidArgument,
                          "PODCCL_ALGO=%s: unknown collective '%.*s' (allreduce, allgather, "
                          "reducescatter, broadcast, reduce, alltoall, alltoallv, barrier)",
                          spec, (int)(colon - p), p);
        an = colon + 1, alen = len - (size_t)(colon - p) - 1;
    }
    const char *par = memchr(an, '(', alen);
    if (par)
        return pc_err(comm, podcclInvalidArgument,
                      "PODCCL_ALGO=%s: '%.*s': choosing the algorithm of each level of a "
                      "hierarchical plan is not supported in this version (hier runs a ring on "
                      "the rails of every level); write %.*s alone",
                      spec, (int)alen, an, (int)(par - an), an);
    if (alen == 4 && strncasecmp(an, "auto", 4) == 0) {
        for (int c = 0; c < PC_NCOLL; c++)
            if (coll < 0 || c == coll) t->forced[c] = NULL;
        return podcclSuccess;
    }
    int found = 0;
    for (int c = 0; c < PC_NCOLL; c++) {
        if (coll >= 0 && c != coll) continue;
        const pc_algo_desc *d = algo_find(c, an, alen);
        if (d) t->forced[c] = d, found = 1;
    }
    if (found) return podcclSuccess;
    char have[256] = "";
    for (int i = 0; pc_algos[i]; i++)
        if ((coll < 0 || pc_algos[i]->coll == coll) && !strstr(have, pc_algos[i]->name))
            snprintf(have + strlen(have), sizeof(have) - strlen(have), " %s", pc_algos[i]->name);
    return pc_err(comm, podcclInvalidArgument,
                  "PODCCL_ALGO=%s: %s has no algorithm '%.*s' (known:%s)", spec,
                  coll >= 0 ? algo_coll_name(coll) : "no collective", (int)alen, an, have);
}

podcclResult_t tune_init(podcclComm_t comm, const char *spec) {
    struct pc_tune_state *t = calloc(1, sizeof(*t));
    if (!t) return pc_err(comm, podcclSystemError, "out of memory");
    comm->tune = t;
    t->env.lv = &comm->topo->lv;
    t->env.reduce_GBps = measure_reduce();
    if (!spec || !*spec) return podcclSuccess;
    for (const char *p = spec; *p;) {
        size_t len = strcspn(p, ",;");
        /* A comma inside parentheses belongs to the item. */
        const char *par = memchr(p, '(', len);
        if (par) len = strchr(par, ')') ? (size_t)(strchr(par, ')') - p + 1) : strlen(p);
        PCCHECK(parse_item(comm, t, spec, p, len));
        p += len;
        if (*p) p++;
    }
    return podcclSuccess;
}

void tune_set_domain(podcclComm_t comm, size_t direct_bytes, int cma) {
    comm->tune->env.direct_bytes = direct_bytes;
    comm->tune->env.cma = cma;
}

podcclResult_t tune_agree(podcclComm_t comm) {
    double *all = calloc((size_t)comm->nranks, sizeof(double));
    if (!all) return pc_err(comm, podcclSystemError, "out of memory");
    all[comm->rank] = comm->tune->env.reduce_GBps;
    podcclResult_t res = boot_allgather(&comm->boot, all, sizeof(double));
    for (int r = 0; res == podcclSuccess && r < comm->nranks; r++)
        if (all[r] < comm->tune->env.reduce_GBps) comm->tune->env.reduce_GBps = all[r];
    free(all);
    return res;
}

void tune_free(podcclComm_t comm) {
    free(comm->tune);
    comm->tune = NULL;
}

const pc_env *tune_env(podcclComm_t comm) {
    return &comm->tune->env;
}

/* Candidates: the best feasible one, or NULL; explain text into buf when buf != NULL. */
static const pc_algo_desc *choose(struct pc_tune_state *t, const pc_args *a, char *buf,
                                  size_t len) {
    const pc_algo_desc *best = NULL;
    double best_t = 1e300;
    size_t k = 0;
    for (int i = 0; pc_algos[i]; i++) {
        const pc_algo_desc *d = pc_algos[i];
        if (d->coll != a->coll) continue;
        char why[256];
        int ok = d->can_run(&t->env, a, why, sizeof(why));
        double c = ok ? d->cost(&t->env, a) : 0;
        if (ok && c < best_t) best_t = c, best = d;
        if (buf && k < len) {
            int w = !ok ? snprintf(buf + k, len - k, "  %-14s cannot run: %s\n", d->name, why)
                    : c >= PC_COST_UNMEASURED
                        ? snprintf(buf + k, len - k,
                                   "  %-14s not chosen automatically here (no measurement; "
                                   "PODCCL_ALGO can force it)\n",
                                   d->name)
                        : snprintf(buf + k, len - k, "  %-14s predicted %12.2f us\n", d->name, c);
            if (w > 0) k += (size_t)w;
        }
    }
    if (buf && k < len) snprintf(buf + k, len - k, "  -> %s\n", best ? best->name : "(none)");
    return best;
}

podcclResult_t tune_pick(podcclComm_t comm, const pc_args *a, const pc_algo_desc **algo) {
    struct pc_tune_state *t = comm->tune;
    cache_t *c = t->cache[a->coll];
    /* The shape used last first: a loop of one call shape finds it at once. */
    for (int k = 0, i = t->hit[a->coll]; k < CACHE; k++, i = (i + 1) % CACHE)
        if (c[i].valid && c[i].count == a->count && c[i].dtype == a->dtype &&
            c[i].root == a->root) {
            t->hit[a->coll] = i;
            *algo = c[i].algo;
            return podcclSuccess;
        }
    const pc_algo_desc *d = t->forced[a->coll];
    char why[256];
    if (d && !d->can_run(&t->env, a, why, sizeof(why)))
        return pc_err(comm, podcclInvalidUsage, "PODCCL_ALGO forces %s for %s, but %s", d->name,
                      algo_coll_name(a->coll), why);
    if (!d) {
        char text[2048];
        int log = pc_log_level >= PC_LOG_INFO;
        d = choose(t, a, log ? text : NULL, sizeof(text));
        if (!d)
            return pc_err(comm, podcclInternalError, "no algorithm for %s",
                          algo_coll_name(a->coll));
        if (log && t->last[a->coll] != d)
            pc_log(PC_LOG_INFO, PC_SUB_TUNE, "%s count %zu %s on %d ranks, %d levels:\n%s",
                   algo_coll_name(a->coll), a->count, pc_type_name(a->dtype), comm->nranks,
                   comm->topo->lv.nlevels, text);
        t->last[a->coll] = d;
    }
    int slot = t->next[a->coll]++ % CACHE;
    c[slot] =
        (cache_t){.valid = 1, .count = a->count, .dtype = a->dtype, .root = a->root, .algo = d};
    *algo = d;
    return podcclSuccess;
}

void tune_explain(podcclComm_t comm, const pc_args *a, char *buf, size_t len) {
    struct pc_tune_state *t = comm->tune;
    size_t k = 0;
    int w = snprintf(buf, len, "%s count %zu %s (%.0f bytes) on %d ranks, %d levels%s%s:\n",
                     algo_coll_name(a->coll), a->count, pc_type_name(a->dtype),
                     cost_bytes(&comm->topo->lv, a), comm->nranks, comm->topo->lv.nlevels,
                     t->forced[a->coll] ? "; PODCCL_ALGO forces " : "",
                     t->forced[a->coll] ? t->forced[a->coll]->name : "");
    if (w > 0) k = (size_t)w;
    if (k < len) choose(t, a, buf + k, len - k);
}
