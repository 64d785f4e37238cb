/* Shared memory inside one host: each rank owns one segment holding its control words, its
 * one-shot (direct) buffers and one inbound FIFO per local sender. A segment is an anonymous
 * memfd that peers open through /proc/<owner pid>/fd/<fd> during init: no name ever exists, so
 * nothing can be left in /dev/shm whenever a rank is killed, and the memory goes with the last
 * process that maps it. */
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
