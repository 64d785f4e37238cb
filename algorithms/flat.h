/* Helpers shared by the flat (one group, the whole communicator) algorithm files. */
#ifndef PODCCL_FLAT_H
#define PODCCL_FLAT_H

#include <stdlib.h>

#include "algorithms/algo.h"
#include "src/core.h"
#include "src/cost.h"

/* A stage over the whole communicator in topology order. */
static inline pc_stage flat_stage(const pc_build_ctx *ctx, const pc_args *a) {
    return (pc_stage){
        .g = &ctx->lv->world, .dtype = a->dtype, .op = a->op, .chunk = ctx->chunk, .dep = -1};
}

/* One block per member in the public all-gather / reduce-scatter layout: the block of the
 * rank at position v sits at rank * count. Free the result and *store; NULL: out of memory. */
static inline pc_blkset *rank_sets(const pc_group *g, size_t count, pc_blk **store) {
    size_t *off = malloc(sizeof(size_t) * 2 * (size_t)g->n);
    if (!off) return NULL;
    for (int v = 0; v < g->n; v++) off[v] = (size_t)g->rank[v] * count, off[g->n + v] = count;
    pc_blkset *set = blksets_single(g->n, off, off + g->n, store);
    free(off);
    return set;
}

/* Every algorithm can run: for can_run slots of algorithms without limits. */
int can_always(const pc_env *e, const pc_args *a, char *why, size_t len);
/* Needs more than one level (ranks on more than one host or supernode). */
int can_multilevel(const pc_env *e, const pc_args *a, char *why, size_t len);
/* Needs every rank in one memory-semantic domain. */
int can_memsem(const pc_env *e, const pc_args *a, char *why, size_t len);

#endif
