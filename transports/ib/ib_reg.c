/* Registration cache of the ib transport: one per protection domain (communicator). Entries are
 * kept sorted by start address and refcounted; a lookup is served by any entry whose range
 * contains the request, so registering part of an already registered buffer costs nothing.
 *
 * It only ever holds memory the transport owns (the per-connection staging buffers, and buffers
 * a caller registers explicitly through reg_mr). Application buffers passed to isend/irecv are
 * never cached: without memory hooks (or ODP, which rxe lacks) a buffer freed and reallocated at
 * the same address would hit a stale registration of pages that are no longer there. */
#include <errno.h>
#include <sys/resource.h>

#include "transports/ib/ib_reg.h"

/* Index of the first entry whose start address is greater than addr. */
static int upper_bound(const ib_reg_cache *c, uintptr_t addr) {
    int lo = 0, hi = c->n;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (c->v[mid]->addr <= addr)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Text for a failed ibv_reg_mr, naming the usual cause (RLIMIT_MEMLOCK). */
static void reg_failure(int e, size_t len, char *buf, size_t n) {
    struct rlimit rl;
    if ((e == ENOMEM || e == EPERM || e == EAGAIN) && getrlimit(RLIMIT_MEMLOCK, &rl) == 0 &&
        rl.rlim_cur != RLIM_INFINITY)
        snprintf(buf, n,
                 "%s; the locked-memory limit (ulimit -l) is %llu KiB: raise it (ulimit -l "
                 "unlimited, docker --ulimit memlock=-1) or lower PODCCL_CHUNK_BYTES / "
                 "PODCCL_MAX_INFLIGHT",
                 strerror(e), (unsigned long long)rl.rlim_cur >> 10);
    else
        snprintf(buf, n, "%s (registering %zu bytes)", strerror(e), len);
}

/* Lookup by containment, else register and insert in address order (ib_reg.h). */
podcclResult_t ib_reg_get(const pc_tp_ctx *ctx, ib_reg_cache *c, void *buf, size_t len,
                          ib_reg_entry **out) {
    uintptr_t a = (uintptr_t)buf;
    int ub = upper_bound(c, a);
    /* Candidates start at or before a; entries may overlap, so look at all of them. */
    for (int i = ub - 1; i >= 0; i--) {
        ib_reg_entry *e = c->v[i];
        if (a + len <= e->addr + e->len) {
            e->refs++;
            *out = e;
            return podcclSuccess;
        }
    }
    if (c->n == c->cap) {
        int cap = c->cap ? 2 * c->cap : 8;
        ib_reg_entry **v = realloc(c->v, sizeof(*v) * (size_t)cap);
        if (!v) return TP_ERR(ctx, podcclSystemError, "out of memory");
        c->v = v, c->cap = cap;
    }
    ib_reg_entry *e = calloc(1, sizeof(*e));
    if (!e) return TP_ERR(ctx, podcclSystemError, "out of memory");
    e->mr = ibv_reg_mr(c->pd, buf, len ? len : 1, IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE);
    if (!e->mr) {
        char why[256];
        reg_failure(errno, len, why, sizeof(why));
        free(e);
        return TP_ERR(ctx, podcclSystemError, "rank %d: ibv_reg_mr failed: %s", ctx->rank, why);
    }
    e->addr = a, e->len = len, e->refs = 1;
    memmove(&c->v[ub + 1], &c->v[ub], sizeof(*c->v) * (size_t)(c->n - ub));
    c->v[ub] = e;
    c->n++;
    *out = e;
    return podcclSuccess;
}

/* Drops a reference; the last one deregisters and removes the entry. */
void ib_reg_put(ib_reg_cache *c, ib_reg_entry *e) {
    if (!e || --e->refs > 0) return;
    for (int i = 0; i < c->n; i++)
        if (c->v[i] == e) {
            memmove(&c->v[i], &c->v[i + 1], sizeof(*c->v) * (size_t)(c->n - i - 1));
            c->n--;
            break;
        }
    ibv_dereg_mr(e->mr);
    free(e);
}

/* Deregisters every entry left (at close_listen, before the PD goes). */
void ib_reg_destroy(ib_reg_cache *c) {
    for (int i = 0; i < c->n; i++) {
        ibv_dereg_mr(c->v[i]->mr);
        free(c->v[i]);
    }
    free(c->v);
    c->v = NULL, c->n = c->cap = 0;
}
