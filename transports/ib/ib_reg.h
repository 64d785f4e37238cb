/* The registration cache of the verbs transport (ib_reg.c): one per protection domain. */
#ifndef PODCCL_IB_REG_H
#define PODCCL_IB_REG_H

#include <infiniband/verbs.h>

#include "transports/tp.h"

typedef struct {
    uintptr_t addr;
    size_t len;
    struct ibv_mr *mr;
    int refs;
} ib_reg_entry;

/* Registrations of one protection domain, sorted by start address; a request is served by any
 * entry that contains it (refcount + 1), else registered anew. */
typedef struct {
    struct ibv_pd *pd;
    ib_reg_entry **v;
    int n, cap;
} ib_reg_cache;

/* Returns in *out an entry covering [buf, buf + len) (registered for local write and remote
 * write), taking a reference. Errors name the likely cause (locked-memory limit). */
podcclResult_t ib_reg_get(const pc_tp_ctx *ctx, ib_reg_cache *c, void *buf, size_t len,
                          ib_reg_entry **out);
/* Drops a reference taken by ib_reg_get; the last one deregisters. */
void ib_reg_put(ib_reg_cache *c, ib_reg_entry *e);
/* Deregisters whatever is left (at close, before the PD goes). */
void ib_reg_destroy(ib_reg_cache *c);

#endif
