/* Shared memory inside one host: each rank owns one segment holding its control words, its
 * one-shot (direct) buffers and one inbound FIFO per local sender. Peers map it; the name is
 * unlinked as soon as everyone has, so nothing is left in /dev/shm even if a rank is killed. */
#ifndef PODCCL_SHM_H
#define PODCCL_SHM_H

#include <stdint.h>

#include "src/comm.h"

/* Bytes of one rank's direct buffer: the most a rank can publish in one one-shot operation. */
size_t shm_direct_bytes(podcclComm_t comm);
/* The direct buffer of local rank lidx used by one-shot operation seq (two alternate). */
char *shm_direct_buf(podcclComm_t comm, int lidx, uint64_t seq);
/* Publishes that this rank's buffer for seq is written / that it finished reading peers'. */
void shm_direct_post(podcclComm_t comm, uint64_t seq);
void shm_direct_done(podcclComm_t comm, uint64_t seq);
/* Waits until local rank lidx has posted (done == 0) or finished (done == 1) seq. */
podcclResult_t shm_direct_wait(podcclComm_t comm, int lidx, int done, uint64_t seq);
/* Shared memory this rank allocated, bytes. */
size_t shm_segment_bytes(podcclComm_t comm);

/* Tells the other local ranks that this rank broke because of `culprit` (rc). */
void shm_publish_failure(podcclComm_t comm, int culprit, podcclResult_t rc);
/* 1 if a local peer published a failure: its culprit, who reported it, and the error. */
int shm_failure_seen(podcclComm_t comm, int *culprit, int *reporter, podcclResult_t *rc);

/* Liveness of a local peer (pidfd where the kernel has it). */
int shm_peer_dead(podcclComm_t comm, int peer);

#endif
