/* Algorithms see ranks, buffers and chunks, never transports: each one turns a collective
 * into a schedule (plain data: this rank's sends, receives, reductions and copies with their
 * dependencies), which the executor runs, a test can inspect, and a model can time. One-shot
 * algorithms for a domain with memory semantics (direct.c) use load/store instead. */
#ifndef PODCCL_ALGO_H
#define PODCCL_ALGO_H

#include <stddef.h>

#include "podccl.h"

typedef enum {
    PC_STEP_SEND,        /* send bytes at src to peer */
    PC_STEP_RECV,        /* receive bytes from peer into dst */
    PC_STEP_RECV_REDUCE, /* receive bytes from peer, then dst = src op received */
    PC_STEP_COPY         /* dst = src locally */
} pc_step_kind;

typedef struct {
    int kind, peer;
    const char *src;
    char *dst;
    size_t bytes;
    int dep; /* index of the step that must complete first, or -1 */
} pc_step;

typedef struct {
    pc_step *steps;
    int n, cap, oom;
    podcclDataType_t dtype;
    podcclRedOp_t op;
    size_t max_reduce_bytes; /* RECV_REDUCE steps are at most this (the executor's scratch) */
} pc_sched;

/* Appends a step, returns its index (or -1 and sets s->oom when out of memory). */
int sched_add(pc_sched *s, int kind, int peer, const void *src, void *dst, size_t bytes, int dep);
void sched_free(pc_sched *s);

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

struct podcclComm;

/* The ring: ranks in ring order, grouped by host so that a ring crosses the network once per
 * host boundary whatever the launcher's rank placement (ord[pos] = rank, pos_of[rank] = pos). */
typedef struct {
    int n, pos;
    const int *ord, *pos_of;
} pc_ring;

/* Schedule builders (ring.c, alltoall_pairwise.c, p2p.c). chunk = pipeline chunk in bytes;
 * tmp = a temporary of the size the collective needs (see pc_algo_tmp_bytes). */
podcclResult_t ring_allreduce(pc_sched *s, const pc_args *a, const pc_ring *rg, size_t chunk);
podcclResult_t ring_allgather(pc_sched *s, const pc_args *a, const pc_ring *rg, size_t chunk);
podcclResult_t ring_reducescatter(pc_sched *s, const pc_args *a, const pc_ring *rg, size_t chunk,
                                  char *tmp);
podcclResult_t ring_broadcast(pc_sched *s, const pc_args *a, const pc_ring *rg, size_t chunk);
podcclResult_t ring_reduce(pc_sched *s, const pc_args *a, const pc_ring *rg, size_t chunk,
                           char *tmp);
podcclResult_t pairwise_alltoall(pc_sched *s, const pc_args *a, int rank, int n, size_t chunk,
                                 const char *src);
podcclResult_t p2p_add(pc_sched *s, const pc_args *a, size_t chunk);
/* tok: 2 bytes of this rank's memory. */
podcclResult_t dissemination_barrier(pc_sched *s, int rank, int n, char *tok);

/* One-shot collectives through shared memory (direct.c). */
podcclResult_t direct_run(struct podcclComm *comm, const pc_args *a);
/* Single-copy collectives through process_vm_readv (cma.c). */
podcclResult_t cma_run(struct podcclComm *comm, const pc_args *a);
/* Bytes each rank publishes for a direct run of a (0 if direct cannot run it). */
size_t direct_bytes_needed(const pc_args *a, int nranks);

#endif
