/* Helpers shared by the flat (one group, the whole communicator) algorithm files. */
#ifndef PODCCL_FLAT_H
#define PODCCL_FLAT_H

#include "algorithms/algo.h"
#include "src/core.h"
#include "src/cost.h"

/* A stage over the whole communicator in topology order. */
static inline pc_stage flat_stage(const pc_build_ctx *ctx, const pc_args *a) {
    return (pc_stage){
        .g = &ctx->lv->world, .dtype = a->dtype, .op = a->op, .chunk = ctx->chunk, .dep = -1};
}

/* The group's ranks as global ranks: a block of rank r sits at r * count in the public
 * all-gather / reduce-scatter layouts. */
static inline void rank_blocks(const pc_group *g, size_t count, size_t *off, size_t *len) {
    for (int v = 0; v < g->n; v++) off[v] = (size_t)g->rank[v] * count, len[v] = count;
}

/* Every algorithm can run: for can_run slots of algorithms without limits. */
int can_always(const pc_env *e, const pc_args *a, char *why, size_t len);
/* Needs more than one level (ranks on more than one host or supernode). */
int can_multilevel(const pc_env *e, const pc_args *a, char *why, size_t len);
/* Needs every rank in one memory-semantic domain. */
int can_memsem(const pc_env *e, const pc_args *a, char *why, size_t len);

#endif
