/* Shared memory inside one host: each rank owns one segment holding its control words, its
 * one-shot (direct) buffers and one inbound FIFO per local sender. Peers map it; the name is
 * unlinked as soon as everyone has, so nothing is left in /dev/shm even if a rank is killed. */
#ifndef PODCCL_SHM_H
#define PODCCL_SHM_H

#include <stdint.h>

#include "src/comm.h"

/* Bytes of one rank's direct buffer: the most a rank can publish in one one-shot operation. */
size_t shm_direct_bytes(podcclComm_t comm);
/* Number of direct buffers per rank (PODCCL_SHM_DIRECT_SLOTS): one-shot operations rotate
 * through them, so a rank may run that many operations ahead of a slow reader. */
int shm_direct_slots(podcclComm_t comm);
/* The direct buffer of local rank lidx used by one-shot operation seq (slot seq % slots). Its
 * first 8 bytes are the sequence word of the data that follows, so a small payload and its
 * flag share one cache line. */
char *shm_direct_buf(podcclComm_t comm, int lidx, uint64_t seq);
/* Sequence words: each rank owns one of each kind, on its own cache line; values only grow. */
enum {
    SHM_W_DIRECT_DONE,  /* one-shot: this rank finished reading peers' buffers for seq */
    SHM_W_CMA_ENTER,    /* single copy: buffers of operation seq are published */
    SHM_W_CMA_PROGRESS, /* single copy: (seq << 24) | pieces of this rank's slice reduced */
    SHM_W_CMA_DONE,     /* single copy: this rank finished reading peers' buffers for seq */
    SHM_W_HEARTBEAT,    /* CLOCK_MONOTONIC ms, refreshed while the rank waits in podccl */
    SHM_NWORDS
};
void shm_word_set(podcclComm_t comm, int word, uint64_t v);
uint64_t shm_word_get(podcclComm_t comm, int lidx, int word);
/* Waits until local rank lidx's word is >= v (timeout, dead peer and abort are errors). */
podcclResult_t shm_word_wait(podcclComm_t comm, int lidx, int word, uint64_t v);

/* Waits until *w (in local rank lidx's segment) is >= v. */
podcclResult_t shm_wait_ge(podcclComm_t comm, int lidx, _Atomic uint64_t *w, uint64_t v);

/* Single copy (Cross-Memory Attach): whether every local pair may read each other. */
int shm_cma_probe(podcclComm_t comm);
void shm_cma_set_ok(podcclComm_t comm, int ok);
int shm_cma_ok(podcclComm_t comm);
/* Publishes this rank's buffers (and all-to-all-v counts/displacements per peer, or NULL). */
void shm_cma_publish(podcclComm_t comm, const void *send, const void *recv, const void *aux,
                     const size_t *counts, const size_t *displs);
/* A peer's published buffer address: which = 0 send, 1 recv, 2 aux. */
uint64_t shm_cma_addr(podcclComm_t comm, int lidx, int which);
/* What local rank lidx sends to rank `to` in its all-to-all-v: count and displacement. */
void shm_cma_counts(podcclComm_t comm, int lidx, int to, size_t *count, size_t *displ);
/* Copies bytes from a peer's address space into local memory (one kernel copy). */
podcclResult_t shm_cma_read(podcclComm_t comm, int lidx, void *local, uint64_t remote,
                            size_t bytes);

/* Shared memory this rank allocated, bytes. */
size_t shm_segment_bytes(podcclComm_t comm);

/* Tells the other local ranks that this rank broke because of `culprit` (rc). */
void shm_publish_failure(podcclComm_t comm, int culprit, podcclResult_t rc);
/* 1 if a local peer published a failure: its culprit, who reported it, and the error. */
int shm_failure_seen(podcclComm_t comm, int *culprit, int *reporter, podcclResult_t *rc);

/* Liveness of a local peer (pidfd where the kernel has it). */
int shm_peer_dead(podcclComm_t comm, int peer);

#endif
