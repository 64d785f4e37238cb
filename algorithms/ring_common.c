/* The ring over a group, pipelined in chunks (NCCL's ring; Patarasuk & Yuan, "Bandwidth optimal
 * all-reduce algorithms for clusters of workstations", JPDC 2009). Every member sends to the next
 * position and receives from the previous one; chunk c of a block moves on as soon as chunk c
 * arrived, so copies and reductions of different chunks overlap along the ring.
 *
 * The reduce-scatter and all-gather here work on sets of blocks (member v owns set[v], any
 * number of (offset, length) pieces), which serves the flat collectives (one block per member)
 * and the rails of the hierarchical algorithms (several, or no, blocks per member). They take
 * and return per-chunk dependencies, so that stages chain chunk by chunk. */
#include <stdlib.h>
#include <string.h>

#include "algorithms/algo.h"
#include "src/core.h"

static int mod(int a, int n) {
    return ((a % n) + n) % n;
}

/* Byte ranges of a set cut into chunks: element offsets become byte offsets. */
typedef struct {
    size_t *off, *len;
    int n;
} chunks_t;

static int set_nchunks(const pc_blkset *b, size_t es, size_t chunk) {
    int k = 0;
    for (int i = 0; i < b->n; i++) k += (int)((b->blk[i].len * es + chunk - 1) / chunk);
    return k;
}

static int chunks_of(chunks_t *c, const pc_blkset *b, size_t es, size_t chunk) {
    c->n = 0;
    int cap = set_nchunks(b, es, chunk);
    c->off = malloc(sizeof(size_t) * (size_t)(cap + 1));
    c->len = malloc(sizeof(size_t) * (size_t)(cap + 1));
    if (!c->off || !c->len) return -1;
    for (int i = 0; i < b->n; i++) {
        size_t o = b->blk[i].off * es, L = b->blk[i].len * es;
        for (size_t x = 0; x < L; x += chunk) {
            c->off[c->n] = o + x;
            c->len[c->n++] = L - x < chunk ? L - x : chunk;
        }
    }
    return 0;
}

static void chunks_free(chunks_t *c) {
    free(c->off), free(c->len);
    c->off = c->len = NULL;
}

typedef struct {
    int *prev, *cur, cap;
} cdeps_t;

static int cdeps_init(cdeps_t *d, int cap, int dflt) {
    d->cap = cap > 0 ? cap : 1;
    d->prev = malloc(sizeof(int) * (size_t)d->cap);
    d->cur = malloc(sizeof(int) * (size_t)d->cap);
    if (!d->prev || !d->cur) return -1;
    for (int i = 0; i < d->cap; i++) d->prev[i] = d->cur[i] = dflt;
    return 0;
}
static void cdeps_swap(cdeps_t *d) {
    int *t = d->prev;
    d->prev = d->cur, d->cur = t;
}
static void cdeps_free(cdeps_t *d) {
    free(d->prev), free(d->cur);
}

static int max_chunks(const pc_blkset *set, int n, size_t es, size_t chunk) {
    int m = 1;
    for (int v = 0; v < n; v++) {
        int k = set_nchunks(&set[v], es, chunk);
        if (k > m) m = k;
    }
    return m;
}

/* Copies this member's blocks from src to dst (or to the contiguous out, when given). */
static int copy_mine(pc_sched *s, const pc_stage *st, const pc_blkset *mine, const char *src,
                     char *dst, char *out) {
    size_t es = pc_type_size(st->dtype), at = 0;
    int self = st->g->rank[st->g->me], first = s->n;
    for (int i = 0; i < mine->n; i++) {
        const char *from = src + mine->blk[i].off * es;
        char *to = out ? out + at : dst + mine->blk[i].off * es;
        size_t L = mine->blk[i].len * es;
        if (from != to && L) sched_add(s, PC_STEP_COPY, self, from, to, L, st->dep);
        at += L;
    }
    return sched_join_from(s, self, first, st->dep);
}

int ring_rs_sets_ex(pc_sched *s, const pc_stage *st, const pc_blkset *set, const char *in,
                    char *work, char *mine_out, int *out_cdeps) {
    const pc_group *g = st->g;
    int n = g->n, pos = g->me, self = g->rank[pos], first = s->n;
    size_t es = pc_type_size(st->dtype), chunk = elem_chunk(st->chunk, es);
    if (n == 1) {
        int j = copy_mine(s, st, &set[pos], in, work, mine_out);
        for (int c = 0; out_cdeps && c < set_nchunks(&set[pos], es, chunk); c++) out_cdeps[c] = j;
        return j;
    }
    cdeps_t d;
    if (cdeps_init(&d, max_chunks(set, n, es, chunk), st->dep)) {
        s->oom = 1;
        return -1;
    }
    int next = g->rank[mod(pos + 1, n)], prev = g->rank[mod(pos - 1, n)];
    for (int t = 0; t < n - 1; t++) {
        chunks_t cs = {0}, cr = {0};
        int bs = mod(pos - t - 1, n), br = mod(pos - t - 2, n);
        if (chunks_of(&cs, &set[bs], es, chunk) || chunks_of(&cr, &set[br], es, chunk)) {
            chunks_free(&cs), chunks_free(&cr);
            s->oom = 1;
            break;
        }
        int last = t == n - 2;
        size_t at = 0;
        for (int c = 0; c < cs.n || c < cr.n; c++) {
            if (c < cs.n)
                sched_add(s, PC_STEP_SEND, next, (t == 0 ? in : work) + cs.off[c], NULL, cs.len[c],
                          t == 0 ? st->dep : d.prev[c]);
            if (c < cr.n) {
                char *dst = last && mine_out ? mine_out + at : work + cr.off[c];
                d.cur[c] = sched_add(s, PC_STEP_RECV_REDUCE, prev, in + cr.off[c], dst, cr.len[c],
                                     st->dep);
                at += cr.len[c];
            }
        }
        if (last && out_cdeps)
            for (int c = 0; c < cr.n; c++) out_cdeps[c] = d.cur[c];
        chunks_free(&cs), chunks_free(&cr);
        cdeps_swap(&d);
    }
    cdeps_free(&d);
    return sched_join_from(s, self, first, st->dep);
}

int ring_rs_sets(pc_sched *s, const pc_stage *st, const pc_blkset *set, const char *in,
                 char *work) {
    return ring_rs_sets_ex(s, st, set, in, work, NULL, NULL);
}

int ring_ag_sets_ex(pc_sched *s, const pc_stage *st, const pc_blkset *set, char *work,
                    const char *mine_in, const int *in_cdeps) {
    const pc_group *g = st->g;
    int n = g->n, pos = g->me, self = g->rank[pos], first = s->n;
    size_t es = pc_type_size(st->dtype), chunk = elem_chunk(st->chunk, es);
    if (n == 1) return st->dep;
    cdeps_t d;
    if (cdeps_init(&d, max_chunks(set, n, es, chunk), st->dep)) {
        s->oom = 1;
        return -1;
    }
    if (in_cdeps)
        for (int c = 0; c < set_nchunks(&set[pos], es, chunk); c++) d.prev[c] = in_cdeps[c];
    int next = g->rank[mod(pos + 1, n)], prev = g->rank[mod(pos - 1, n)];
    for (int t = 0; t < n - 1; t++) {
        chunks_t cs = {0}, cr = {0};
        int bs = mod(pos - t, n), br = mod(pos - t - 1, n);
        if (chunks_of(&cs, &set[bs], es, chunk) || chunks_of(&cr, &set[br], es, chunk)) {
            chunks_free(&cs), chunks_free(&cr);
            s->oom = 1;
            break;
        }
        size_t at = 0;
        for (int c = 0; c < cs.n || c < cr.n; c++) {
            if (c < cs.n) {
                const char *src = t == 0 && mine_in ? mine_in + at : work + cs.off[c];
                sched_add(s, PC_STEP_SEND, next, src, NULL, cs.len[c], d.prev[c]);
                at += cs.len[c];
            }
            if (c < cr.n)
                d.cur[c] =
                    sched_add(s, PC_STEP_RECV, prev, NULL, work + cr.off[c], cr.len[c], st->dep);
        }
        chunks_free(&cs), chunks_free(&cr);
        cdeps_swap(&d);
    }
    cdeps_free(&d);
    return sched_join_from(s, self, first, st->dep);
}

int ring_ag_sets(pc_sched *s, const pc_stage *st, const pc_blkset *set, char *work) {
    return ring_ag_sets_ex(s, st, set, work, NULL, NULL);
}

/* One block per member: member v owns [off(v), off(v) + len). */
pc_blkset *blksets_single(int n, const size_t *off, const size_t *len, pc_blk **store) {
    pc_blkset *set = malloc(sizeof(*set) * (size_t)n);
    pc_blk *b = malloc(sizeof(*b) * (size_t)n);
    if (!set || !b) {
        free(set), free(b);
        return NULL;
    }
    for (int v = 0; v < n; v++) {
        b[v] = (pc_blk){.off = off[v], .len = len[v]};
        set[v] = (pc_blkset){.n = 1, .blk = &b[v]};
    }
    *store = b;
    return set;
}
