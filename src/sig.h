/* Operation signatures (pc_sig, podccl_net.h) and mismatches: what every rank must agree on for
 * each call, how it is numbered and hashed, and what happens when two ranks disagree. */
#ifndef PODCCL_SIG_H
#define PODCCL_SIG_H

#include "algorithms/algo.h"
#include "src/comm.h"
#include "src/wait.h"

/* Starts collective a: numbers it (comm->ex->op_seq, counted alike by every rank for every
 * collective, whichever path runs it), makes it comm->ex->cur and publishes its signature to the
 * peers of this host. podcclInvalidUsage if a peer of this host has already reported a mismatch
 * (so that a rank whose own part of a mismatched call ended early learns it at its next call). */
podcclResult_t pc_op_begin(podcclComm_t comm, const pc_args *a);
/* Starts a group of point-to-point operations: comm->ex->cur becomes the point-to-point
 * signature (seq 0), which both sides share. */
void pc_op_p2p(podcclComm_t comm);
/* For loops that wait without progress (after pc_wait_idle's spinning, on every 16th pass; else
 * nothing; w NULL: now): whether a peer of this host published another signature for the running
 * operation, or reported a mismatch; podcclInvalidUsage naming both calls (pc_mismatch), else
 * podcclSuccess. */
podcclResult_t pc_sig_idle_check(podcclComm_t comm, const pc_wait *w);
/* Names both calls, breaks the communicator, tells the other ranks (peers of the domain through
 * a record in its control block, peers elsewhere through the network transport's notify and the
 * bootstrap ring), and returns podcclInvalidUsage: "rank 1 called podcclAllReduce(count 1024,
 * float32, sum) as operation #17, but rank 0 called podcclAllGather(count 1024, float32) (#17)".
 * theirs is peer's signature (coll < 0: only its hash is known). */
podcclResult_t pc_mismatch(podcclComm_t comm, int peer, const pc_sig *theirs);
/* The same for a message of `sent` bytes that does not fit a receive of `posted` bytes of the
 * same operation (sig): the ranks cut the call differently, or point-to-point and all-to-all-v
 * counts differ. */
podcclResult_t pc_size_mismatch(podcclComm_t comm, int peer, const pc_sig *sig, size_t sent,
                                size_t posted);
/* A notice from `reporter` (received by a network transport): it found that culprit's operation
 * (cul) differs from its own (rep). Breaks the communicator and returns podcclInvalidUsage naming
 * both calls; tells the peers of the domain, not the network again. */
podcclResult_t pc_mismatch_notice(podcclComm_t comm, int reporter, int culprit, const pc_sig *rep,
                                  const pc_sig *cul);
/* "podcclAllReduce(count 1024, float32, sum)"; returns buf. */
const char *pc_sig_str(const pc_sig *s, char *buf, size_t len);

/* rank's signature of operation seq: this rank's own history, or (1 if found) a peer's in the
 * memory-semantic domain. */
int pc_sig_of(podcclComm_t comm, int rank, uint64_t seq, pc_sig *out);

#endif
