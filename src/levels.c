/* Topology levels from per-level unit arrays (levels.h). */
#include "src/levels.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void level_free(pc_level *v) {
    free(v->unit_of), free(v->coord), free(v->child_start), free(v->child_list);
    free(v->key_of), free(v->key_rep);
    memset(v, 0, sizeof(*v));
}

void levels_free(pc_levels *L) {
    for (int l = 0; l < L->nlevels; l++) level_free(&L->lv[l]);
    free(L->order), free(L->pos_of);
    memset(L, 0, sizeof(*L));
}

/* Children of every unit of level l, ordered by their smallest rank (level 0: ranks). */
static int level_children(pc_levels *L, int l) {
    pc_level *v = &L->lv[l];
    int n = L->nranks, nch = l == 0 ? n : L->lv[l - 1].nunits;
    v->child_start = calloc((size_t)v->nunits + 1, sizeof(int));
    v->child_list = malloc(sizeof(int) * (size_t)(nch ? nch : 1));
    int *first = malloc(sizeof(int) * (size_t)(nch ? nch : 1)), *fill = NULL;
    if (!v->child_start || !v->child_list || !first) return free(first), -1;
    /* first[c] = smallest rank of child c; parent of child c = unit_of of that rank. */
    for (int c = 0; c < nch; c++) first[c] = -1;
    for (int r = 0; r < n; r++) {
        int c = l == 0 ? r : L->lv[l - 1].unit_of[r];
        if (first[c] < 0) first[c] = r;
    }
    for (int c = 0; c < nch; c++)
        if (first[c] >= 0) v->child_start[v->unit_of[first[c]] + 1]++;
    for (int u = 0; u < v->nunits; u++) v->child_start[u + 1] += v->child_start[u];
    fill = malloc(sizeof(int) * (size_t)v->nunits + 1);
    if (!fill) return free(first), -1;
    memcpy(fill, v->child_start, sizeof(int) * (size_t)v->nunits);
    /* Children in order of their smallest rank: walk ranks, take each child at its first. */
    for (int r = 0; r < n; r++) {
        int c = l == 0 ? r : L->lv[l - 1].unit_of[r];
        if (first[c] != r) continue;
        int u = v->unit_of[r];
        v->child_list[fill[u]++] = c;
    }
    for (int r = 0; r < n; r++) {
        int c = l == 0 ? r : L->lv[l - 1].unit_of[r], u = v->unit_of[r];
        for (int k = v->child_start[u]; k < v->child_start[u + 1]; k++)
            if (v->child_list[k] == c) v->coord[r] = k - v->child_start[u];
    }
    free(fill), free(first);
    return 0;
}

/* Key ids: level 0 has one key (no coordinates below it); level l+1 splits each key of level
 * l by c_l. */
static int level_keys(pc_levels *L, int l) {
    pc_level *v = &L->lv[l];
    int n = L->nranks;
    v->key_of = malloc(sizeof(int) * (size_t)n);
    v->key_rep = malloc(sizeof(int) * (size_t)n);
    if (!v->key_of || !v->key_rep) return -1;
    if (l == 0) {
        for (int r = 0; r < n; r++) v->key_of[r] = 0;
        v->nkeys = 1, v->key_rep[0] = 0;
        return 0;
    }
    const pc_level *b = &L->lv[l - 1];
    int M = 1;
    for (int r = 0; r < n; r++)
        if (b->coord[r] + 1 > M) M = b->coord[r] + 1;
    int *map = malloc(sizeof(int) * (size_t)b->nkeys * (size_t)M);
    if (!map) return -1;
    for (size_t i = 0; i < (size_t)b->nkeys * (size_t)M; i++) map[i] = -1;
    v->nkeys = 0;
    for (int r = 0; r < n; r++) {
        int *m = &map[(size_t)b->key_of[r] * (size_t)M + (size_t)b->coord[r]];
        if (*m < 0) *m = v->nkeys, v->key_rep[v->nkeys++] = r;
        v->key_of[r] = *m;
    }
    free(map);
    return 0;
}

static void order_walk(pc_levels *L, int l, int u, int *k) {
    const pc_level *v = &L->lv[l];
    for (int i = v->child_start[u]; i < v->child_start[u + 1]; i++) {
        if (l == 0) {
            int r = v->child_list[i];
            L->pos_of[r] = *k;
            L->order[(*k)++] = r;
        } else {
            order_walk(L, l - 1, v->child_list[i], k);
        }
    }
}

static int copy_level(pc_levels *L, int l, const int *unit_of, const char *name,
                      const pc_link_class *link) {
    pc_level *v = &L->lv[l];
    int n = L->nranks;
    v->unit_of = malloc(sizeof(int) * (size_t)n);
    v->coord = calloc((size_t)n, sizeof(int));
    if (!v->unit_of || !v->coord) return -1;
    /* Renumber units densely in order of first appearance. */
    int *map = malloc(sizeof(int) * (size_t)n);
    if (!map) return -1;
    for (int i = 0; i < n; i++) map[i] = -1;
    v->nunits = 0;
    for (int r = 0; r < n; r++) {
        int x = unit_of ? unit_of[r] : 0;
        if (x < 0 || x >= n) return free(map), -1;
        if (map[x] < 0) map[x] = v->nunits++;
        v->unit_of[r] = map[x];
    }
    free(map);
    snprintf(v->name, sizeof(v->name), "%s", name);
    v->link = *link;
    return 0;
}

int levels_build(pc_levels *L, int nranks, int rank, int nlv, int *const *unit_of,
                 const char (*names)[PC_TOPO_NAME_BYTES], const pc_link_class *links, char *why,
                 size_t len) {
    memset(L, 0, sizeof(*L));
    L->nranks = nranks, L->rank = rank;
    snprintf(why, len, "out of memory");
    if (nlv < 1 || nlv > PC_MAX_LEVELS - 1) {
        snprintf(why, len, "%d levels (1 to %d)", nlv, PC_MAX_LEVELS - 1);
        return -1;
    }
    for (int l = 0; l < nlv; l++) {
        L->nlevels = l + 1;
        if (copy_level(L, l, unit_of[l], names[l], &links[l])) goto fail;
    }
    if (L->lv[nlv - 1].nunits > 1) {
        L->nlevels = nlv + 1;
        if (copy_level(L, nlv, NULL, "network", &links[nlv - 1])) goto fail;
    }
    for (int l = 1; l < L->nlevels; l++) {
        /* Nesting: every unit of level l-1 has one parent unit at level l. */
        int *parent = malloc(sizeof(int) * (size_t)L->lv[l - 1].nunits), *first = NULL;
        first = malloc(sizeof(int) * (size_t)L->lv[l - 1].nunits);
        if (!parent || !first) {
            free(parent), free(first);
            goto fail;
        }
        for (int u = 0; u < L->lv[l - 1].nunits; u++) parent[u] = -1;
        int bad = 0;
        for (int r = 0; r < nranks && !bad; r++) {
            int c = L->lv[l - 1].unit_of[r], p = L->lv[l].unit_of[r];
            if (parent[c] < 0) parent[c] = p, first[c] = r;
            if (parent[c] != p) {
                snprintf(why, len, "ranks %d and %d share a group of level %s but not of %s",
                         first[c], r, L->lv[l - 1].name, L->lv[l].name);
                bad = 1;
            }
        }
        free(parent), free(first);
        if (bad) goto fail;
    }
    for (int l = 0; l < L->nlevels; l++)
        if (level_children(L, l) || level_keys(L, l)) goto fail;
    L->order = malloc(sizeof(int) * (size_t)nranks);
    L->pos_of = malloc(sizeof(int) * (size_t)nranks);
    if (!L->order || !L->pos_of) goto fail;
    int k = 0;
    order_walk(L, L->nlevels - 1, 0, &k);
    L->world = (pc_group){.n = nranks, .me = L->pos_of[rank], .rank = L->order};
    L->memsem = 0;
    while (L->memsem + 1 < L->nlevels && L->lv[L->memsem + 1].link.memsem) L->memsem++;
    return 0;
fail:
    levels_free(L);
    return -1;
}

int levels_owner(const pc_levels *L, int l, int u, const int *key) {
    for (;;) {
        const pc_level *v = &L->lv[l];
        int nch = v->child_start[u + 1] - v->child_start[u];
        int c = v->child_list[v->child_start[u] + key[l] % nch];
        if (l == 0) return c;
        u = c, l--;
    }
}

void levels_set_rank(pc_levels *L, int rank) {
    L->rank = rank;
    L->world.me = L->pos_of[rank];
}

void levels_describe(const pc_levels *L, char *buf, size_t len) {
    size_t k = 0;
#define OUT(...)                                                                                   \
    do {                                                                                           \
        if (k < len) {                                                                             \
            int w_ = snprintf(buf + k, len - k, __VA_ARGS__);                                      \
            if (w_ > 0) k += (size_t)w_;                                                           \
        }                                                                                          \
    } while (0)
    if (len) buf[0] = 0;
    for (int l = 0; l < L->nlevels; l++) {
        const pc_level *v = &L->lv[l];
        OUT("level %d %s: %d group%s, %.4g GB/s per rank, %.4g us%s\n", l, v->name, v->nunits,
            v->nunits == 1 ? "" : "s", v->link.bw_GBps, v->link.lat_us,
            v->link.memsem ? ", memory semantics" : "");
        for (int u = 0; u < v->nunits && u < 64; u++) {
            OUT("  group %d: ranks", u);
            int shown = 0, leader = -1;
            for (int i = 0; i < L->nranks; i++) {
                int r = L->order[i];
                if (v->unit_of[r] != u) continue;
                if (leader < 0) leader = r;
                if (shown++ < 32) OUT(" %d", r);
            }
            if (shown > 32) OUT(" ... (%d)", shown);
            OUT("; leader %d\n", leader);
        }
        if (l >= 1) {
            /* Rails: for each key (coordinates below this level), one member per child unit,
             * in every unit: the ranks that exchange at this level. */
            const pc_level *b = &L->lv[l];
            int key[PC_MAX_LEVELS];
            for (int K = 0; K < b->nkeys && K < 16; K++) {
                for (int k = 0; k < l; k++) key[k] = L->lv[k].coord[b->key_rep[K]];
                OUT("  rail %d:", K);
                for (int u = 0; u < v->nunits && u < 16; u++) {
                    OUT(" [");
                    for (int c = v->child_start[u]; c < v->child_start[u + 1]; c++)
                        OUT("%s%d", c == v->child_start[u] ? "" : " ",
                            levels_owner(L, l - 1, v->child_list[c], key));
                    OUT("]");
                }
                OUT("\n");
            }
            if (b->nkeys > 16) OUT("  ... (%d rails)\n", b->nkeys);
        }
    }
#undef OUT
}
