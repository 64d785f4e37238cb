/* Hierarchical reduce-scatter and all-gather over topology levels, on rails (algo.h).
 *
 * Rank x has coordinates c_0(x) (its index on its host), c_1(x) (its host's index in its
 * level-1 group), ... (levels.h). Going up, level l works inside each level-l group U: the ranks
 * that hold the same blocks after level l-1 form a rail, one per child group of U; for the key
 * K = (c_0 .. c_{l-1}) of a block, the member of child V is the rank of V found by descending
 * with K (levels_owner: coordinate mod the number of children, so uneven groups work: a rank of
 * a small group stands in for the missing ones). A ring reduce-scatter over the rail gives member
 * v the blocks whose c_l is v (mod the children). After the top level, block d is at rank d.
 * Every host's ranks and every host's links work at every level (rail-parallel, as NCCL's and
 * HCCL's hierarchical rings), and the bytes shrink by the group size at each level up, so the
 * slowest (top) links carry the least: S / (ranks below) x (g-1)/g per rank.
 *
 * Sources: Rabenseifner's reduce-scatter/all-gather decomposition, applied per level as in
 * NCCL's tree/ring hierarchy and Open MPI HAN; rails as in multi-rail NCCL. */
#include <stdlib.h>

#include "algorithms/flat.h"

typedef struct {
    int n;       /* members */
    int *rank;   /* [n] member of child v */
    pc_blk *blk; /* blocks, grouped by member */
    pc_blkset *set;
    int *blocks; /* ranks d whose blocks the rail carries (to update last[]) */
    int nblocks;
} rail_t;

static void rail_free(rail_t *r) {
    free(r->rank), free(r->blk), free(r->set), free(r->blocks);
    r->rank = NULL, r->blk = NULL, r->set = NULL, r->blocks = NULL;
}

/* The rail of key K in unit U of level l, as seen by rank me, for segment j; 0 if me is not a
 * member, 1 if it is (rail filled), -1 out of memory. */
static int rail_get(const pc_layout *L, int l, int K, int j, rail_t *r) {
    const pc_levels *lv = L->lv;
    const pc_level *v = &lv->lv[l];
    int n = lv->nranks, me = lv->rank, U = v->unit_of[me];
    int nch = v->child_start[U + 1] - v->child_start[U], key[PC_MAX_LEVELS];
    int rep = v->key_rep[K];
    for (int k = 0; k < l; k++) key[k] = lv->lv[k].coord[rep];
    memset(r, 0, sizeof(*r));
    r->n = nch;
    r->rank = malloc(sizeof(int) * (size_t)nch);
    r->set = calloc((size_t)nch, sizeof(pc_blkset));
    r->blk = malloc(sizeof(pc_blk) * (size_t)n);
    r->blocks = malloc(sizeof(int) * (size_t)n);
    if (!r->rank || !r->set || !r->blk || !r->blocks) return -1;
    int pos = -1;
    for (int c = 0; c < nch; c++) {
        int ch = v->child_list[v->child_start[U] + c];
        r->rank[c] = l == 0 ? ch : levels_owner(lv, l - 1, ch, key);
        if (r->rank[c] == me) pos = c;
    }
    if (pos < 0) return 0;
    /* Blocks of this key, grouped by the member that ends with them. */
    int *cnt = calloc((size_t)nch + 1, sizeof(int));
    if (!cnt) return -1;
    for (int d = 0; d < n; d++)
        if (v->key_of[d] == K) cnt[v->coord[d] % nch + 1]++;
    for (int c = 0; c < nch; c++) cnt[c + 1] += cnt[c];
    for (int c = 0; c < nch; c++) r->set[c] = (pc_blkset){.n = 0, .blk = r->blk + cnt[c]};
    for (int d = 0; d < n; d++) {
        if (v->key_of[d] != K) continue;
        int c = v->coord[d] % nch;
        r->blk[cnt[c] + r->set[c].n++] =
            (pc_blk){.off = L->off[(size_t)j * n + d], .len = L->len[(size_t)j * n + d]};
        r->blocks[r->nblocks++] = d;
    }
    free(cnt);
    return 1;
}

/* One stage: level l, segment j, every rail of this rank; rs = reduce-scatter (else
 * all-gather). */
static void stage(pc_sched *s, const pc_stage *proto, const pc_layout *L, int l, int j, int rs,
                  const char *in, char *work, int *last) {
    const pc_levels *lv = L->lv;
    int n = lv->nranks;
    for (int K = 0; K < lv->lv[l].nkeys && !s->oom; K++) {
        rail_t r;
        int got = rail_get(L, l, K, j, &r);
        if (got < 0) s->oom = 1;
        if (got <= 0) {
            rail_free(&r);
            continue;
        }
        int *deps = malloc(sizeof(int) * (size_t)(r.nblocks + 1));
        if (!deps) {
            s->oom = 1;
            rail_free(&r);
            break;
        }
        for (int i = 0; i < r.nblocks; i++) deps[i] = last[(size_t)j * n + r.blocks[i]];
        int pos = 0;
        while (r.rank[pos] != lv->rank) pos++;
        pc_group g = {.n = r.n, .me = pos, .rank = r.rank};
        pc_stage st = *proto;
        st.g = &g;
        st.dep = sched_join(s, lv->rank, deps, r.nblocks);
        int done = rs ? ring_rs_sets(s, &st, r.set, in, work) : ring_ag_sets(s, &st, r.set, work);
        for (int i = 0; i < r.nblocks; i++) last[(size_t)j * n + r.blocks[i]] = done;
        free(deps);
        rail_free(&r);
    }
}

void hier_rs(pc_sched *s, const pc_stage *proto, const pc_layout *L, const char *in, char *work,
             int *last) {
    for (int l = 0; l < L->lv->nlevels; l++)
        for (int j = 0; j < L->segs; j++)
            stage(s, proto, L, l, j, 1, l == 0 ? in : work, work, last);
}

void hier_ag(pc_sched *s, const pc_stage *proto, const pc_layout *L, char *work, int *last) {
    for (int l = L->lv->nlevels - 1; l >= 0; l--)
        for (int j = 0; j < L->segs; j++) stage(s, proto, L, l, j, 0, work, work, last);
}

int hier_segments(const pc_levels *lv, size_t bytes, size_t chunk) {
    return hier_segments_max(lv, bytes, chunk, 16);
}

int hier_segments_max(const pc_levels *lv, size_t bytes, size_t chunk, int max) {
    size_t per = bytes / (size_t)lv->nranks / (chunk ? chunk : 1);
    if (max < 1) max = 16;
    int k = per >= (size_t)max ? max : (int)per;
    return k < 1 ? 1 : k;
}
