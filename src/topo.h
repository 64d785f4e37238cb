/* Topology: which ranks share a host (exchanged at init from each rank's real identity, never
 * from launcher variables), where this rank sits inside the host (hwloc), and the levels above
 * the host (the topology file, PODCCL_TOPO_FILE, else one network level). */
#ifndef PODCCL_TOPO_H
#define PODCCL_TOPO_H

#include <sys/types.h>

#include "src/bootstrap.h"
#include "src/levels.h"

/* Where ranks are (topo.c). "Local" ranks are those of this rank's memory-semantic domain: the
 * ranks of its host, or of a larger unit the topology file marks as having memory semantics. */
typedef struct pc_topo {
    int nhosts, host; /* number of hosts, index of this rank's host */
    int *host_of;     /* [nranks] host index of each rank */
    pid_t *pids;      /* [nranks] */
    int nmachine;     /* ranks on this machine (same kernel), this host's and other "hosts'" */
    int nlocal, local_rank;
    int *local_ranks; /* [nlocal] global ranks of the domain, ascending */
    int *local_idx;   /* [nranks] index in local_ranks, or -1 */
    pc_levels lv;     /* topology levels: host, the file's levels, the network */
} pc_topo;

typedef struct {
    uint64_t host_hash; /* boot id + hostname + namespaces: equal means shared /dev/shm and pids */
    uint64_t machine_hash; /* boot id alone: equal means the same kernel, so the same cores */
    int32_t pid;
    int32_t pad;
    char host[64];
    char hostid[64]; /* PODCCL_HOSTID, or "" */
    char addr[64];   /* bootstrap address as text */
} pc_host_info;

/* This rank's identity: host, machine, pid, NUMA node, PODCCL_HOSTID, and its bootstrap
 * address a (as text). */
podcclResult_t topo_local_info(const pc_sockaddr *a, pc_host_info *info);
/* Creates *out from every rank's info: hosts, levels (reading PODCCL_TOPO_FILE when set:
 * a bad file is podcclInvalidArgument naming the file, line and problem), and the
 * memory-semantic domain. Collective: checks that every rank found the same levels. */
podcclResult_t topo_build(pc_topo **out, pc_boot *b, const pc_host_info *all);
/* The link class (GB/s per rank, us per message) of the network level(s) that the file did not
 * describe, from the network transport's properties. */
void topo_set_net_link(pc_topo *t, double bw_GBps, double lat_us);
void topo_free(pc_topo *t); /* NULL: nothing */

#endif
