/* The memory-semantic domain as the executor uses it: one host's shared memory, or a
 * supernode's memory bus when the topology file says so. The domain's own table
 * (transports/transport.h: pc_memdom_ops, which shm implements) only stores and copies; this
 * module adds what the core owns: waits that watch liveness, mismatches and the timeout
 * (src/wait.h), single-copy reads and writes that never reach past what the peer published, and
 * the error messages. Ranks are named by their index in the domain (comm->topo->local_ranks).
 * Every function needs a domain (comm->tr->md != NULL) unless it says otherwise. */
#ifndef PODCCL_MEMDOM_H
#define PODCCL_MEMDOM_H

#include <stdint.h>

#include "algorithms/algo.h"
#include "src/comm.h"

/* Bytes of one rank's one-shot buffer (0 without a domain), and how many each rank has. */
size_t md_direct_bytes(podcclComm_t comm);
int md_direct_slots(podcclComm_t comm);
/* The one-shot buffer of local rank lidx used by one-shot operation seq (slot seq % slots). */
char *md_direct_buf(podcclComm_t comm, int lidx, uint64_t seq);
/* Flag words (algo.h: MD_W_*): each rank owns one of each kind; values only grow. */
void md_word_set(podcclComm_t comm, int word, uint64_t v);
uint64_t md_word_get(podcclComm_t comm, int lidx, int word);
/* Waits until local rank lidx's word is >= v (timeout, dead peer, mismatch, abort: errors). */
podcclResult_t md_word_wait(podcclComm_t comm, int lidx, int word, uint64_t v);
/* Waits until *w (in local rank lidx's memory) is >= v, as md_word_wait. */
podcclResult_t md_wait_ge(podcclComm_t comm, int lidx, _Atomic uint64_t *w, uint64_t v);

/* Single copy: whether this rank may use it with every local peer (probed at init). */
int md_single_copy_probe(podcclComm_t comm);
/* Publishes this rank's buffers for the running operation (comm->ex->cur): buf[which] and its
 * size in bytes len[which], which = 0 send, 1 recv, 2 aux (NULL: none, nothing may be read); and
 * all-to-all-v counts/displacements per peer, or NULL. */
void md_publish(podcclComm_t comm, const void *const buf[3], const size_t len[3],
                const size_t *counts, const size_t *displs);
/* What local rank lidx sends to rank `to` in its all-to-all-v: count and displacement. */
void md_counts(podcclComm_t comm, int lidx, int to, size_t *count, size_t *displ);
/* Waits until local rank lidx published its buffers for single-copy operation seq (its
 * MD_W_CMA_ENTER word), and checks that they belong to the running call (podcclInvalidUsage
 * naming both calls otherwise). */
podcclResult_t md_enter(podcclComm_t comm, int lidx, uint64_t seq);
/* Copies bytes at byte offset off of local rank lidx's published buffer `which` into local
 * memory (one kernel copy). A range past the size the peer declared is never read: it is a
 * mismatch (podcclInvalidUsage naming both calls, or both sizes); a peer that exited is
 * podcclRemoteError naming the first cause. */
podcclResult_t md_read(podcclComm_t comm, int lidx, int which, size_t off, void *local,
                       size_t bytes);

/* podcclInvalidUsage naming local rank lidx's call whose signature hash is `hash` (found in its
 * ring of signatures when still there) and this rank's. */
podcclResult_t md_mismatch_hash(podcclComm_t comm, int lidx, uint64_t hash, uint64_t seq);
/* Shared memory this rank allocated, bytes (0 without a domain). */
size_t md_segment_bytes(podcclComm_t comm);

/* The view of the domain that a memory-semantic algorithm's run function gets (algo.h), for the
 * running operation. */
void md_view(podcclComm_t comm, pc_md *m);

#endif
