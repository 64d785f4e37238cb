/* Schedule storage, and the small helpers every builder shares. */
#include <stdlib.h>
#include <string.h>

#include "algorithms/algo.h"
#include "src/core.h"

static int push_deps(pc_sched *s, const int *deps, int ndep, int *dep0) {
    *dep0 = s->ndeps;
    int k = 0;
    for (int i = 0; i < ndep; i++) k += deps[i] >= 0;
    if (s->ndeps + k > s->cap_deps) {
        int cap = s->cap_deps ? 2 * s->cap_deps : 256;
        while (cap < s->ndeps + k) cap *= 2;
        int *p = realloc(s->deps, sizeof(int) * (size_t)cap);
        if (!p) return -1;
        s->deps = p, s->cap_deps = cap;
    }
    for (int i = 0; i < ndep; i++)
        if (deps[i] >= 0) s->deps[s->ndeps++] = deps[i];
    return k;
}

int sched_add_deps(pc_sched *s, int kind, int peer, const void *src, void *dst, size_t bytes,
                   const int *deps, int ndep) {
    if (s->oom) return -1;
    if (s->n == s->cap) {
        int cap = s->cap ? 2 * s->cap : 64;
        pc_step *p = realloc(s->steps, sizeof(*p) * (size_t)cap);
        if (!p) {
            s->oom = 1;
            return -1;
        }
        s->steps = p, s->cap = cap;
    }
    int dep0, k = push_deps(s, deps, ndep, &dep0);
    if (k < 0) {
        s->oom = 1;
        return -1;
    }
    if (kind == PC_STEP_RECV_REDUCE && bytes > s->max_reduce_bytes) s->max_reduce_bytes = bytes;
    s->steps[s->n] = (pc_step){.kind = kind,
                               .peer = peer,
                               .src = src,
                               .dst = dst,
                               .bytes = bytes,
                               .ndep = k,
                               .dep0 = dep0};
    return s->n++;
}

int sched_add(pc_sched *s, int kind, int peer, const void *src, void *dst, size_t bytes, int dep) {
    return sched_add_deps(s, kind, peer, src, dst, bytes, &dep, 1);
}

int sched_join(pc_sched *s, int self, const int *deps, int ndep) {
    int k = 0, last = -1;
    for (int i = 0; i < ndep; i++)
        if (deps[i] >= 0) k++, last = deps[i];
    if (k <= 1) return last;
    return sched_add_deps(s, PC_STEP_NOP, self, NULL, NULL, 0, deps, ndep);
}

int sched_join_from(pc_sched *s, int self, int first, int dflt) {
    if (s->oom || first >= s->n) return dflt;
    if (first == s->n - 1) return first;
    int n = s->n - first, *d = malloc(sizeof(int) * (size_t)n);
    if (!d) {
        s->oom = 1;
        return -1;
    }
    for (int i = 0; i < n; i++) d[i] = first + i;
    int j = sched_join(s, self, d, n);
    free(d);
    return j;
}

void sched_free(pc_sched *s) {
    free(s->steps), free(s->deps);
    s->steps = NULL, s->deps = NULL;
    s->n = s->cap = s->ndeps = s->cap_deps = 0;
}

podcclResult_t sched_status(const pc_sched *s) {
    return s->oom ? pc_err(NULL, podcclSystemError, "out of memory building a schedule")
                  : podcclSuccess;
}

size_t blk_off(size_t count, int n, int b) {
    size_t q = count / (size_t)n, r = count % (size_t)n;
    return q * (size_t)b + ((size_t)b < r ? (size_t)b : r);
}

size_t elem_chunk(size_t chunk, size_t es) {
    size_t c = chunk / es * es;
    return c ? c : es;
}
