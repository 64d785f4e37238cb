/* Topology: which ranks share a host (exchanged at init from each rank's real identity, never
 * from launcher variables), and where this rank sits inside the host (hwloc). */
#ifndef PODCCL_TOPO_H
#define PODCCL_TOPO_H

#include "src/comm.h"

typedef struct {
    uint64_t host_hash; /* boot id + hostname + namespaces: equal means shared /dev/shm and pids */
    uint64_t machine_hash; /* boot id alone: equal means the same kernel, so the same cores */
    int32_t pid;
    int32_t numa;
    char host[64];
} pc_host_info;

podcclResult_t topo_local_info(pc_host_info *info);
/* Fills comm's host_of, nhosts, host, local_ranks, local_idx, nlocal, local_rank, pids,
 * ring order and nmachine. */
podcclResult_t topo_build(podcclComm_t comm, const pc_host_info *all);

#endif
