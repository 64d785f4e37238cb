/* Topology: which ranks share a host (exchanged at init from each rank's real identity, never
 * from launcher variables), where this rank sits inside the host (hwloc), and the levels above
 * the host (the topology file, PODCCL_TOPO_FILE, else one network level). */
#ifndef PODCCL_TOPO_H
#define PODCCL_TOPO_H

#include "src/comm.h"

typedef struct {
    uint64_t host_hash; /* boot id + hostname + namespaces: equal means shared /dev/shm and pids */
    uint64_t machine_hash; /* boot id alone: equal means the same kernel, so the same cores */
    int32_t pid;
    int32_t numa;
    char host[64];
    char hostid[64]; /* PODCCL_HOSTID, or "" */
    char addr[64];   /* bootstrap address as text */
} pc_host_info;

podcclResult_t topo_local_info(podcclComm_t comm, pc_host_info *info);
/* Creates comm->topo from every rank's info: hosts, levels (reading PODCCL_TOPO_FILE when set:
 * a bad file is podcclInvalidArgument naming the file, line and problem), and the
 * memory-semantic domain. Collective: checks that every rank found the same levels. */
podcclResult_t topo_build(podcclComm_t comm, const pc_host_info *all);
/* The link class of the network level(s) that the file did not describe, from the network
 * transport's properties. */
void topo_set_net_link(podcclComm_t comm, const pc_props *net);
void topo_free(podcclComm_t comm);

#endif
