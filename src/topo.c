#include "src/topo.h"

#include <hwloc.h>
#include <sys/stat.h>
#include <unistd.h>

static uint64_t fnv1a(uint64_t h, const void *data, size_t n) {
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

/* Two processes are on one host when they run on the same kernel (boot id), under the same
 * host name, in the same network namespace (a container or a namespace "host" of the
 * multi-host tests is a host of its own) and pid namespace (pidfds and process_vm_readv).
 * `ip netns exec` gives every command a mount namespace of its own, so the mount namespace is
 * not part of the identity: ranks started one by one into the same network namespace are on
 * one host and share /dev/shm. */
static uint64_t host_identity(const char *host, uint64_t machine_hash) {
    uint64_t h = 0xcbf29ce484222325ull;
    const char *forced = pc_param_str("PODCCL_HOSTID");
    if (forced && *forced) return fnv1a(h, forced, strlen(forced)); /* NCCL_HOSTID's twin */
    h = fnv1a(h, host, strlen(host));
    h = fnv1a(h, &machine_hash, sizeof(machine_hash));
    const char *ns[] = {"/proc/self/ns/net", "/proc/self/ns/pid"};
    for (int i = 0; i < 2; i++) {
        struct stat st;
        if (stat(ns[i], &st) == 0) h = fnv1a(h, &st.st_ino, sizeof(st.st_ino));
    }
    return h;
}

/* The NUMA node of the cores this process is bound to (-1 if unbound or spread). */
static int numa_of_binding(void) {
    hwloc_topology_t topo;
    if (hwloc_topology_init(&topo) != 0) return -1;
    int node = -1;
    if (hwloc_topology_load(topo) == 0) {
        hwloc_cpuset_t cpus = hwloc_bitmap_alloc();
        hwloc_nodeset_t nodes = hwloc_bitmap_alloc();
        if (cpus && nodes && hwloc_get_cpubind(topo, cpus, HWLOC_CPUBIND_PROCESS) == 0) {
            hwloc_cpuset_to_nodeset(topo, cpus, nodes);
            if (hwloc_bitmap_weight(nodes) == 1) node = hwloc_bitmap_first(nodes);
        }
        pc_log(PC_LOG_INFO, PC_SUB_INIT, "hwloc: %d cores, %d NUMA nodes; bound to NUMA node %d",
               hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_CORE),
               hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_NUMANODE), node);
        hwloc_bitmap_free(cpus);
        hwloc_bitmap_free(nodes);
    }
    hwloc_topology_destroy(topo);
    return node;
}

podcclResult_t topo_local_info(pc_host_info *info) {
    memset(info, 0, sizeof(*info));
    gethostname(info->host, sizeof(info->host) - 1);
    char boot[64] = "";
    FILE *f = fopen("/proc/sys/kernel/random/boot_id", "r");
    if (f) {
        if (!fgets(boot, sizeof(boot), f)) boot[0] = 0;
        fclose(f);
    }
    info->machine_hash = fnv1a(0xcbf29ce484222325ull, boot, strlen(boot));
    info->host_hash = host_identity(info->host, info->machine_hash);
    info->pid = (int32_t)getpid();
    info->numa = numa_of_binding();
    return podcclSuccess;
}

podcclResult_t topo_build(podcclComm_t comm, const pc_host_info *all) {
    int n = comm->nranks;
    comm->host_of = malloc(sizeof(int) * n);
    comm->local_idx = malloc(sizeof(int) * n);
    comm->local_ranks = malloc(sizeof(int) * n);
    comm->pids = malloc(sizeof(pid_t) * n);
    uint64_t *hosts = malloc(sizeof(uint64_t) * n);
    if (!comm->host_of || !comm->local_idx || !comm->local_ranks || !comm->pids || !hosts) {
        free(hosts);
        return pc_err(comm, podcclSystemError, "out of memory");
    }
    comm->nhosts = 0;
    if (comm->rank < 0 || comm->rank >= n) return pc_err(comm, podcclInternalError, "bad rank");
    for (int r = 0; r < n; r++) {
        int h = 0;
        while (h < comm->nhosts && hosts[h] != all[r].host_hash) h++;
        if (h == comm->nhosts) hosts[comm->nhosts++] = all[r].host_hash;
        comm->host_of[r] = h;
        comm->pids[r] = all[r].pid;
        if (r == comm->rank) comm->host = h;
    }
    free(hosts);
    comm->nlocal = 0;
    for (int r = 0; r < n; r++) {
        comm->local_idx[r] = -1;
        if (comm->host_of[r] == comm->host) {
            if (r == comm->rank) comm->local_rank = comm->nlocal;
            comm->local_idx[r] = comm->nlocal;
            comm->local_ranks[comm->nlocal++] = r;
        }
    }
    comm->numa_node = all[comm->rank].numa;
    /* Ranks sharing this kernel share its cores, whatever host they count as (containers,
     * network namespaces): the spin policy looks at them. */
    comm->nmachine = 0;
    for (int r = 0; r < n; r++)
        comm->nmachine += all[r].machine_hash == all[comm->rank].machine_hash;
    /* Ring order: hosts in order of their first rank, ranks of a host in ascending order, so a
     * ring crosses the network once per host boundary whatever the placement of ranks. */
    comm->ring_ord = malloc(sizeof(int) * n);
    comm->ring_pos_of = malloc(sizeof(int) * n);
    if (!comm->ring_ord || !comm->ring_pos_of)
        return pc_err(comm, podcclSystemError, "out of memory");
    int k = 0;
    for (int h = 0; h < comm->nhosts; h++)
        for (int r = 0; r < n; r++)
            if (comm->host_of[r] == h) comm->ring_pos_of[r] = k, comm->ring_ord[k++] = r;
    pc_log(PC_LOG_INFO, PC_SUB_INIT, "rank %d of %d on host %s (%d of %d local ranks, %d hosts)",
           comm->rank, n, all[comm->rank].host, comm->local_rank, comm->nlocal, comm->nhosts);
    return podcclSuccess;
}
