/* The memory-semantic domain: what the one-shot (direct.c) and single-copy (cma.c) algorithms
 * need from ranks that can load/store each other's memory (one host's shared memory, or a
 * supernode's memory bus when the topology file says so). transports/shm implements it;
 * algorithms include this header, never the transport's. Ranks are named by their index in the
 * domain (comm->topo->local_ranks). */
#ifndef PODCCL_MEMDOM_H
#define PODCCL_MEMDOM_H

#include <stdint.h>

#include "src/comm.h"

/* Bytes of one rank's direct buffer: the most a rank can publish in one one-shot operation. */
size_t md_direct_bytes(podcclComm_t comm);
/* Number of direct buffers per rank (PODCCL_SHM_DIRECT_SLOTS): one-shot operations rotate
 * through them, so a rank may run that many operations ahead of a slow reader. */
int md_direct_slots(podcclComm_t comm);
/* The direct buffer of local rank lidx used by one-shot operation seq (slot seq % slots). Its
 * first 8 bytes are the sequence word of the data that follows, so a small payload and its
 * flag share one cache line. */
char *md_direct_buf(podcclComm_t comm, int lidx, uint64_t seq);
/* Sequence words: each rank owns one of each kind, on its own cache line; values only grow. */
enum {
    MD_W_DIRECT_DONE,  /* one-shot: this rank finished reading peers' buffers for seq */
    MD_W_CMA_ENTER,    /* single copy: buffers of operation seq are published */
    MD_W_CMA_PROGRESS, /* single copy: (seq << 24) | pieces of this rank's slice reduced */
    MD_W_CMA_DONE,     /* single copy: this rank finished reading peers' buffers for seq */
    MD_W_HEARTBEAT,    /* CLOCK_MONOTONIC ms, refreshed while the rank waits in podccl */
    MD_NWORDS
};
void md_word_set(podcclComm_t comm, int word, uint64_t v);
uint64_t md_word_get(podcclComm_t comm, int lidx, int word);
/* Waits until local rank lidx's word is >= v (timeout, dead peer and abort are errors). */
podcclResult_t md_word_wait(podcclComm_t comm, int lidx, int word, uint64_t v);

/* Waits until *w (in local rank lidx's segment) is >= v. */
podcclResult_t md_wait_ge(podcclComm_t comm, int lidx, _Atomic uint64_t *w, uint64_t v);

/* Single copy (Cross-Memory Attach): whether every local pair may read each other. */
int md_cma_probe(podcclComm_t comm);
void md_cma_set_ok(podcclComm_t comm, int ok);
int md_cma_ok(podcclComm_t comm);
/* Publishes this rank's buffers (and all-to-all-v counts/displacements per peer, or NULL). */
void md_cma_publish(podcclComm_t comm, const void *send, const void *recv, const void *aux,
                    const size_t *counts, const size_t *displs);
/* A peer's published buffer address: which = 0 send, 1 recv, 2 aux. */
uint64_t md_cma_addr(podcclComm_t comm, int lidx, int which);
/* What local rank lidx sends to rank `to` in its all-to-all-v: count and displacement. */
void md_cma_counts(podcclComm_t comm, int lidx, int to, size_t *count, size_t *displ);
/* Copies bytes from a peer's address space into local memory (one kernel copy). */
podcclResult_t md_cma_read(podcclComm_t comm, int lidx, void *local, uint64_t remote, size_t bytes);

#endif
