/* Shared memory inside one host: each rank owns one segment holding its control words, its
 * one-shot (direct) buffers and one inbound FIFO per local sender. Peers map it; the name is
 * unlinked as soon as everyone has, so nothing is left in /dev/shm even if a rank is killed. */
#ifndef PODCCL_SHM_H
#define PODCCL_SHM_H

#include <stdint.h>

#include "src/comm.h"
#include "src/memdom.h"
#include "src/wait.h"

/* Shared memory this rank allocated, bytes. */
size_t shm_segment_bytes(podcclComm_t comm);

/* The liveness domain the shared memory offers (heartbeats, pidfds, failure words): wait.h's
 * interface, with the domain object comm->tr->shm. */
extern const pc_live_ops shm_live_ops;

#endif
