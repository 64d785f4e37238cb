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
/* Publishes this rank's buffers for the running operation (comm->ex->cur): buf[which] and its
 * size in bytes len[which], which = 0 send, 1 recv, 2 aux (NULL: none, nothing may be read);
 * and all-to-all-v counts/displacements per peer, or NULL. */
void md_cma_publish(podcclComm_t comm, const void *const buf[3], const size_t len[3],
                    const size_t *counts, const size_t *displs);
/* The operation (pc_sig seq and hash) local rank lidx published its buffers for. */
void md_cma_op(podcclComm_t comm, int lidx, uint64_t *seq, uint64_t *hash);
/* What local rank lidx sends to rank `to` in its all-to-all-v: count and displacement. */
void md_cma_counts(podcclComm_t comm, int lidx, int to, size_t *count, size_t *displ);
/* Copies bytes at byte offset off of local rank lidx's published buffer `which` into local
 * memory (one kernel copy). A range past the size the peer declared is never read: it is a
 * mismatch (podcclInvalidUsage through pc_mismatch / pc_size_mismatch). */
podcclResult_t md_cma_read(podcclComm_t comm, int lidx, int which, size_t off, void *local,
                           size_t bytes);

/* Signatures of operations (pc_sig): every rank publishes the signature of each collective it
 * starts in its control block, in a ring of the last 16; peers compare it with theirs while they
 * wait, so ranks that took different paths (one-shot here, a schedule there) still find out, and
 * name both calls. */
void md_sig_publish(podcclComm_t comm, const pc_sig *sig);
/* Local rank lidx's signature of operation seq: 1 if it is still in the ring, else 0. */
int md_sig_get(podcclComm_t comm, int lidx, uint64_t seq, pc_sig *out);
/* The number of the last operation local rank lidx published (0: none). */
uint64_t md_sig_last(podcclComm_t comm, int lidx);
/* Records the first mismatch this rank found or learnt of: reporter found that culprit's call
 * (cul) differs from its own (rep). Peers read it while they wait and when they start a call
 * (md_mismatch_get: 1 if local rank lidx has one), so they fail at once and name both calls. */
void md_mismatch_publish(podcclComm_t comm, int reporter, int culprit, const pc_sig *rep,
                         const pc_sig *cul);
int md_mismatch_get(podcclComm_t comm, int lidx, int *reporter, int *culprit, pc_sig *rep,
                    pc_sig *cul);

#endif
