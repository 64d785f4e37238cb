/* Algorithms see groups of ranks, buffers and chunks, never transports. Each one turns a
 * collective into a schedule (plain data: this rank's sends, receives, reductions and copies
 * with their dependencies), which the executor runs, a test can execute symbolically, and the
 * cost model can reason about. Builders index blocks by position in a group (pc_group), never by
 * global rank, so the same builder serves the whole communicator, the ranks of one host, or a
 * rail of a hierarchical algorithm.
 *
 * Every algorithm is one file, algorithms/<collective>_<algorithm>.c (shared pieces in
 * ring_common.c, rails.c), exporting a descriptor (pc_algo_desc) listed in registry.c; the
 * tuner, the PODCCL_ALGO override, the explain output and the docs all read that list. */
#ifndef PODCCL_ALGO_H
#define PODCCL_ALGO_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "podccl.h"
#include "src/core.h"
#include "src/levels.h"

typedef enum {
    PC_STEP_SEND,        /* send bytes at src to peer */
    PC_STEP_RECV,        /* receive bytes from peer into dst */
    PC_STEP_RECV_REDUCE, /* receive bytes from peer, then dst = src op received */
    PC_STEP_COPY,        /* dst = src locally */
    PC_STEP_NOP          /* nothing: joins several dependencies into one */
} pc_step_kind;

typedef struct {
    int kind, peer; /* peer: global rank (this rank for local steps) */
    const char *src;
    char *dst;
    size_t bytes;
    int ndep, dep0; /* the steps that must complete first: deps[dep0 .. dep0 + ndep) */
} pc_step;

typedef struct {
    pc_step *steps;
    int n, cap, oom;
    int *deps; /* dependency lists of all steps */
    int ndeps, cap_deps;
    podcclDataType_t dtype;
    podcclRedOp_t op;
    size_t max_reduce_bytes; /* RECV_REDUCE steps are at most this (the executor's scratch) */
} pc_sched;

/* Appends a step that waits for dep (a step index, or -1 for none); returns its index, or -1
 * with s->oom set when out of memory. */
int sched_add(pc_sched *s, int kind, int peer, const void *src, void *dst, size_t bytes, int dep);
/* The same with a list of dependencies (negative entries are ignored). */
int sched_add_deps(pc_sched *s, int kind, int peer, const void *src, void *dst, size_t bytes,
                   const int *deps, int ndep);
/* One index that completes when all of deps[0..ndep) have: -1 for none, the step itself for
 * one, else a NOP step depending on all of them. */
int sched_join(pc_sched *s, int self, const int *deps, int ndep);
/* The steps from `first` on, joined (see sched_join); `dflt` when none was added. */
int sched_join_from(pc_sched *s, int self, int first, int dflt);
void sched_free(pc_sched *s);
podcclResult_t sched_status(const pc_sched *s);

/* Arguments of one collective, as the public API received them. */
typedef struct {
    int coll; /* pc_coll */
    const void *sendbuff;
    void *recvbuff;
    size_t count; /* elements, as the API defines it for this collective */
    podcclDataType_t dtype;
    podcclRedOp_t op;
    int root;       /* root, or peer for send/recv */
    size_t *counts; /* all-to-all-v: sendcounts, sdispls, recvcounts, rdispls (4 x nranks) */
} pc_args;

/* What the planner knows when it asks whether an algorithm can run and what it costs. */
typedef struct {
    const pc_levels *lv;
    size_t direct_bytes; /* one-shot buffer of a rank in the memory-semantic domain (0: none) */
    int cma;             /* single copy (process_vm_readv) works between every pair of ranks */
    double reduce_GBps;  /* measured float32 sum kernel, GB/s of output */
} pc_env;

/* What a builder needs besides the arguments: the topology levels (for hierarchy), this
 * rank, the pipeline chunk, and memory it may use. */
typedef struct {
    const pc_levels *lv; /* levels; lv->world is the whole communicator in topology order */
    size_t chunk;        /* pipeline chunk, bytes */
    char *tmp;           /* at least tmp_bytes(args) bytes, as the descriptor asked */
    int segments;        /* pipeline segments of hierarchical algorithms (>= 1) */
} pc_build_ctx;

/* ---- memory-semantic run functions ---------------------------------------------------------
 * One-shot (direct.c) and single-copy (cma.c) collectives move bytes themselves through a domain
 * whose ranks can load and store (or single-copy) each other's memory: building a schedule would
 * cost more than the whole operation at the sizes where they win (docs/algorithms.md). They see
 * the domain only through this view, which the executor lends them for one operation
 * (src/memdom.c, over the domain's table that transports/shm implements). Ranks are indices in
 * the domain; every operation that waits also watches liveness, mismatches and the timeout, and
 * every error is reported with a message. */

/* Flag words a rank owns in the domain (one writer, values only grow). */
enum {
    MD_W_DIRECT_DONE,  /* one-shot: this rank finished reading peers' buffers for seq */
    MD_W_CMA_ENTER,    /* single copy: buffers of operation seq are published */
    MD_W_CMA_PROGRESS, /* single copy: (seq << 24) | pieces of this rank's slice reduced */
    MD_W_CMA_DONE,     /* single copy: this rank finished reading peers' buffers for seq */
    MD_NWORDS
};

typedef struct pc_md pc_md;
typedef struct pc_md_ops {
    /* Rank r's one-shot buffer for one-shot operation seq (its first 64 bytes are a header). */
    char *(*direct_buf)(pc_md *m, int r, uint64_t seq);
    /* This rank's flag word; rank r's; wait until rank r's is >= v; wait on any word in rank r's
     * memory. */
    void (*set)(pc_md *m, int word, uint64_t v);
    uint64_t (*get)(pc_md *m, int r, int word);
    podcclResult_t (*wait)(pc_md *m, int r, int word, uint64_t v);
    podcclResult_t (*wait_ge)(pc_md *m, int r, _Atomic uint64_t *w, uint64_t v);
    /* podcclInvalidUsage naming rank r's call whose signature hash is `hash`, and this rank's. */
    podcclResult_t (*mismatch)(pc_md *m, int r, uint64_t hash);
    /* Publishes this rank's buffers (0 send, 1 recv, 2 aux; sizes in bytes) and all-to-all-v
     * counts/displacements (or NULL) for peers to single-copy. */
    void (*publish)(pc_md *m, const void *const buf[3], const size_t len[3], const size_t *counts,
                    const size_t *displs);
    /* Waits until rank r published its buffers for single-copy operation seq and checks that it
     * runs the same call. */
    podcclResult_t (*enter)(pc_md *m, int r, uint64_t seq);
    /* What rank r sends to rank `to` in its all-to-all-v. */
    void (*counts)(pc_md *m, int r, int to, size_t *count, size_t *displ);
    /* Single copy of rank r's published buffer `which` at byte offset off, never past its size. */
    podcclResult_t (*read)(pc_md *m, int r, int which, size_t off, void *dst, size_t bytes);
    /* podcclInvalidUsage: rank r's piece of the call is `theirs` bytes, this rank's `mine`. */
    podcclResult_t (*size_mismatch)(pc_md *m, int r, size_t theirs, size_t mine);
    /* A temporary of at least bytes (grow-only, the communicator's): NULL (error set) if none. */
    char *(*tmp)(pc_md *m, size_t bytes);
} pc_md_ops;

struct pc_md {
    const pc_md_ops *ops;
    podcclComm_t comm;                    /* for pc_err only (opaque here) */
    int n, me;                            /* ranks in the domain, this rank's index */
    int slots;                            /* one-shot buffers per rank */
    size_t chunk;                         /* the executor's pipeline chunk, bytes */
    uint64_t hash;                        /* the running operation's signature hash */
    uint64_t *direct_seq, *direct_synced; /* one-shot operations issued; last all seen posting */
    uint64_t *cma_seq;                    /* single-copy operations issued */
};

/* A registered algorithm. `build` fills a schedule; `run` moves bytes itself through a
 * memory-semantic domain (one-shot and single copy, above). */
typedef struct pc_algo_desc {
    const char *name;
    int coll;         /* pc_coll */
    const char *desc; /* one line: what it does, its source */
    /* 1 if it can run this call on these levels; else 0 with the reason in why. */
    int (*can_run)(const pc_env *e, const pc_args *a, char *why, size_t len);
    /* Predicted time, microseconds (models in src/cost.c). */
    double (*cost)(const pc_env *e, const pc_args *a);
    /* Bytes of temporary memory build needs (may be NULL: none). */
    size_t (*tmp_bytes)(const pc_levels *lv, const pc_args *a);
    podcclResult_t (*build)(pc_sched *s, const pc_args *a, const pc_build_ctx *ctx);
    podcclResult_t (*run)(pc_md *md, const pc_args *a);
} pc_algo_desc;

/* The registry (registry.c): every algorithm, in the order the docs list them. */
extern const pc_algo_desc *const pc_algos[];
/* The descriptor named `name` for collective coll, or NULL. */
const pc_algo_desc *algo_find(int coll, const char *name, size_t len);
const char *algo_coll_name(int coll);
int algo_coll_find(const char *name, size_t len); /* -1 if unknown */

/* ---- shared building blocks ---------------------------------------------------------------- */

/* Block b of n over count elements: balanced, the first count % n blocks one element larger. */
size_t blk_off(size_t count, int n, int b);
static inline size_t blk_len(size_t count, int n, int b) {
    return blk_off(count, n, b + 1) - blk_off(count, n, b);
}
/* Chunk size rounded down to whole elements (at least one element). */
size_t elem_chunk(size_t chunk, size_t es);

/* A flat stage over a group: ring steps chained after dep, returning the join of its steps. */
typedef struct {
    const pc_group *g;
    podcclDataType_t dtype;
    podcclRedOp_t op;
    size_t chunk;
    int dep; /* step the stage's first steps wait for, -1 none */
} pc_stage;

/* Sets of blocks: member v of the group owns the blocks set[v].blk[0 .. set[v].n); a block is
 * (element offset, element count) in the buffers the stage works on. */
typedef struct {
    size_t off, len;
} pc_blk;
typedef struct {
    int n;
    const pc_blk *blk;
} pc_blkset;

/* Ring reduce-scatter over sets: afterwards work holds, at this member's blocks, the reduction
 * over the group of `in` at those blocks (other blocks of work hold partial sums). in may equal
 * work. Returns the join of the stage's steps (or st->dep). */
int ring_rs_sets(pc_sched *s, const pc_stage *st, const pc_blkset *set, const char *in, char *work);
/* Ring all-gather over sets: afterwards every member's work holds every member's blocks, which
 * each member had in work at its own blocks. */
int ring_ag_sets(pc_sched *s, const pc_stage *st, const pc_blkset *set, char *work);
/* The same, with per-chunk dependencies: ring_rs_sets_ex writes this member's reduced blocks
 * to mine_out (contiguous) when it is not NULL, and the index of the step completing each
 * chunk of this member's set into out_cdeps (when not NULL); ring_ag_sets_ex sends this
 * member's blocks from mine_in (contiguous) when not NULL, each chunk after in_cdeps[chunk]
 * (when not NULL; else after st->dep). */
int ring_rs_sets_ex(pc_sched *s, const pc_stage *st, const pc_blkset *set, const char *in,
                    char *work, char *mine_out, int *out_cdeps);
int ring_ag_sets_ex(pc_sched *s, const pc_stage *st, const pc_blkset *set, char *work,
                    const char *mine_in, const int *in_cdeps);
/* Sets of one block each (member v: [off[v], off[v] + len[v]) elements); *store holds the
 * blocks: free both. NULL when out of memory. */
pc_blkset *blksets_single(int n, const size_t *off, const size_t *len, pc_blk **store);

/* Hierarchical reduce-scatter and all-gather over the topology levels (rails.c): block d
 * belongs to rank d, segment j of it at elements [off[j*n + d], + len[j*n + d]) of the buffers.
 * Going up, each level reduces inside its groups on rails (the ranks that hold the same blocks
 * below it, one per child group) so that after the top level rank d holds the full reduction of
 * its block; going down is the reverse. Stages run segment after segment, so levels overlap.
 * last[j*n + d] is the step after which block d of segment j may be touched (read: -1 at the
 * start); both update it. */
typedef struct {
    const pc_levels *lv;
    int segs;
    const size_t *off, *len;
} pc_layout;
void hier_rs(pc_sched *s, const pc_stage *proto, const pc_layout *L, const char *in, char *work,
             int *last);
void hier_ag(pc_sched *s, const pc_stage *proto, const pc_layout *L, char *work, int *last);
/* Pipeline segments for a hierarchical call of `bytes`: each rank's block at least a chunk per
 * segment, at most max (PODCCL_HIER_SEGMENTS; < 1: 16). Same on every rank. */
int hier_segments_max(const pc_levels *lv, size_t bytes, size_t chunk, int max);
int hier_segments(const pc_levels *lv, size_t bytes, size_t chunk); /* max 16 */

/* Schedules of older shape (pairwise all-to-all, point-to-point, barrier). */
podcclResult_t pairwise_alltoall(pc_sched *s, const pc_args *a, const pc_group *g, size_t chunk,
                                 const char *src);
podcclResult_t p2p_add(pc_sched *s, const pc_args *a, int me, size_t chunk);
/* tok: 2 bytes of this rank's memory. */
podcclResult_t dissemination_barrier(pc_sched *s, const pc_group *g, char *tok);

#endif
