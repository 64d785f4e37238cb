#include "src/topo.h"

#include "src/boot_sock.h"

#include <arpa/inet.h>
#include <hwloc.h>
#include <sys/stat.h>
#include <unistd.h>

/* Two processes are on one host when they run on the same kernel (boot id), under the same
 * host name, in the same network namespace (a container or a namespace "host" of the
 * multi-host tests is a host of its own) and pid namespace (pidfds and process_vm_readv).
 * `ip netns exec` gives every command a mount namespace of its own, so the mount namespace is
 * not part of the identity: ranks started one by one into the same network namespace are on
 * one host and share /dev/shm. */
static uint64_t host_identity(const char *host, uint64_t machine_hash) {
    uint64_t h = PC_FNV_OFFSET;
    const char *forced = pc_param_str("PODCCL_HOSTID");
    if (forced && *forced) return pc_fnv1a(h, forced, strlen(forced)); /* NCCL_HOSTID's twin */
    h = pc_fnv1a(h, host, strlen(host));
    h = pc_fnv1a(h, &machine_hash, sizeof(machine_hash));
    const char *ns[] = {"/proc/self/ns/net", "/proc/self/ns/pid"};
    for (int i = 0; i < 2; i++) {
        struct stat st;
        if (stat(ns[i], &st) == 0) h = pc_fnv1a(h, &st.st_ino, sizeof(st.st_ino));
    }
    return h;
}

/* Logs (INFO) what hwloc sees of this host: cores, NUMA nodes, and the NUMA node of the cores
 * this process is bound to (-1 if unbound or spread). */
static void log_binding(void) {
    hwloc_topology_t topo;
    if (hwloc_topology_init(&topo) != 0) return;
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
}

podcclResult_t topo_local_info(const pc_sockaddr *a, pc_host_info *info) {
    memset(info, 0, sizeof(*info));
    const char *id = pc_param_str("PODCCL_HOSTID");
    snprintf(info->hostid, sizeof(info->hostid), "%s", id ? id : "");
    boot_addr_ip(a, info->addr, sizeof(info->addr));
    gethostname(info->host, sizeof(info->host) - 1);
    char boot[64] = "";
    FILE *f = fopen("/proc/sys/kernel/random/boot_id", "r");
    if (f) {
        if (!fgets(boot, sizeof(boot), f)) boot[0] = 0;
        fclose(f);
    }
    info->machine_hash = pc_fnv1a(PC_FNV_OFFSET, boot, strlen(boot));
    info->host_hash = host_identity(info->host, info->machine_hash);
    info->pid = (int32_t)getpid();
    log_binding();
    return podcclSuccess;
}

/* Hosts: index by first appearance of each host identity. */
static podcclResult_t find_hosts(pc_boot *b, pc_topo *t, const pc_host_info *all) {
    int n = b->nranks;
    uint64_t *hosts = malloc(sizeof(uint64_t) * n);
    t->host_of = malloc(sizeof(int) * n);
    t->pids = malloc(sizeof(pid_t) * n);
    if (!hosts || !t->host_of || !t->pids) {
        free(hosts);
        return pc_err(NULL, podcclSystemError, "out of memory");
    }
    t->nhosts = 0;
    for (int r = 0; r < n; r++) {
        int h = 0;
        while (h < t->nhosts && hosts[h] != all[r].host_hash) h++;
        if (h == t->nhosts) hosts[t->nhosts++] = all[r].host_hash;
        t->host_of[r] = h;
        t->pids[r] = all[r].pid;
        if (r == b->rank) t->host = h;
    }
    free(hosts);
    /* Ranks sharing this kernel share its cores, whatever host they count as (containers,
     * network namespaces): the spin policy looks at them. */
    t->nmachine = 0;
    for (int r = 0; r < n; r++) t->nmachine += all[r].machine_hash == all[b->rank].machine_hash;
    return podcclSuccess;
}

/* Levels from PODCCL_TOPO_FILE: unit_of[l][rank] for the file's levels. */
static podcclResult_t file_levels(pc_boot *b, pc_topo *t, const pc_host_info *all, const char *path,
                                  pc_topo_file *f) {
    int n = b->nranks;
    pc_topo_host *hosts = calloc((size_t)t->nhosts, sizeof(*hosts));
    if (!hosts) return pc_err(NULL, podcclSystemError, "out of memory");
    for (int r = n - 1; r >= 0; r--) /* the first rank of each host names it */
        hosts[t->host_of[r]] = (pc_topo_host){all[r].host, all[r].hostid, all[r].addr};
    char err[512];
    int rc = topo_file_load(path, hosts, t->nhosts, f, err, sizeof(err));
    free(hosts);
    if (rc) return pc_err(NULL, podcclInvalidArgument, "PODCCL_TOPO_FILE: %s", err);
    return podcclSuccess;
}

static podcclResult_t make_levels(pc_boot *b, pc_topo *t, const pc_host_info *all) {
    int n = b->nranks, nlv = 1;
    int *units[PC_MAX_LEVELS] = {t->host_of};
    char names[PC_MAX_LEVELS][PC_TOPO_NAME_BYTES] = {"host"};
    pc_link_class links[PC_MAX_LEVELS] = {{.bw_GBps = 8.0, .lat_us = 0.5, .memsem = 1}};
    pc_topo_file f = {0};
    const char *path = pc_param_str("PODCCL_TOPO_FILE");
    podcclResult_t res = podcclSuccess;
    if (path && *path) {
        PCCHECK(file_levels(b, t, all, path, &f));
        if (f.has_host_link) links[0] = f.host_link, links[0].memsem = 1;
        for (int l = 0; l < f.nlevels && res == podcclSuccess; l++, nlv++) {
            units[nlv] = malloc(sizeof(int) * (size_t)n);
            if (!units[nlv]) res = pc_err(NULL, podcclSystemError, "out of memory");
            for (int r = 0; units[nlv] && r < n; r++)
                units[nlv][r] = f.lv[l].group_of_host[t->host_of[r]];
            snprintf(names[nlv], sizeof(names[nlv]), "%s", f.lv[l].name);
            links[nlv] = f.lv[l].link;
        }
    } else if (t->nhosts > 1) {
        /* One network level; its link class comes from the transport (topo_set_net_link). */
        units[nlv] = calloc((size_t)n, sizeof(int));
        if (!units[nlv]) res = pc_err(NULL, podcclSystemError, "out of memory");
        snprintf(names[nlv], sizeof(names[nlv]), "network");
        links[nlv++] = (pc_link_class){.bw_GBps = 1.0, .lat_us = 20};
    }
    char why[256];
    if (res == podcclSuccess &&
        levels_build(&t->lv, n, b->rank, nlv, units, names, links, why, sizeof(why)))
        res = pc_err(NULL, podcclInvalidArgument, "topology levels: %s", why);
    for (int l = 1; l < nlv; l++) free(units[l]);
    topo_file_free(&f);
    return res;
}

/* The memory-semantic domain: the ranks of this rank's unit at the highest level that (with
 * every level below it) has memory semantics; they must share one kernel. */
static podcclResult_t make_domain(pc_boot *b, pc_topo *t, const pc_host_info *all) {
    int n = b->nranks, m = t->lv.memsem, me = b->rank;
    t->local_ranks = malloc(sizeof(int) * n);
    t->local_idx = malloc(sizeof(int) * n);
    if (!t->local_ranks || !t->local_idx) return pc_err(NULL, podcclSystemError, "out of memory");
    t->nlocal = 0;
    for (int r = 0; r < n; r++) {
        t->local_idx[r] = -1;
        if (t->lv.lv[m].unit_of[r] != t->lv.lv[m].unit_of[me]) continue;
        if (m > 0 && all[r].machine_hash != all[me].machine_hash)
            return pc_err(NULL, podcclInvalidArgument,
                          "PODCCL_TOPO_FILE: level %s has memory semantics, but rank %d (host "
                          "%s) and rank %d (host %s) run on different machines: podccl maps "
                          "shared memory only between ranks of one kernel",
                          t->lv.lv[m].name, me, all[me].host, r, all[r].host);
        if (r == me) t->local_rank = t->nlocal;
        t->local_idx[r] = t->nlocal;
        t->local_ranks[t->nlocal++] = r;
    }
    return podcclSuccess;
}

static uint64_t levels_hash(const pc_levels *L) {
    uint64_t h = PC_FNV_OFFSET;
    for (int l = 0; l < L->nlevels; l++) {
        h = pc_fnv1a(h, L->lv[l].name, strlen(L->lv[l].name));
        h = pc_fnv1a(h, &L->lv[l].link, sizeof(L->lv[l].link));
        h = pc_fnv1a(h, L->lv[l].unit_of, sizeof(int) * (size_t)L->nranks);
    }
    return h;
}

podcclResult_t topo_build(pc_topo **out, pc_boot *b, const pc_host_info *all) {
    pc_topo *t = calloc(1, sizeof(*t));
    if (!t) return pc_err(NULL, podcclSystemError, "out of memory");
    *out = t;
    PCCHECK(find_hosts(b, t, all));
    PCCHECK(make_levels(b, t, all));
    PCCHECK(make_domain(b, t, all));
    /* Every rank must see the same levels (same file, same hosts). */
    uint64_t *h = calloc((size_t)b->nranks, sizeof(uint64_t));
    if (!h) return pc_err(NULL, podcclSystemError, "out of memory");
    h[b->rank] = levels_hash(&t->lv);
    podcclResult_t res = boot_allgather(b, h, sizeof(uint64_t));
    for (int r = 0; res == podcclSuccess && r < b->nranks; r++)
        if (h[r] != h[b->rank])
            res = pc_err(NULL, podcclInvalidArgument,
                         "rank %d found other topology levels than rank %d (is PODCCL_TOPO_FILE "
                         "the same file on every host?)",
                         r, b->rank);
    free(h);
    if (res != podcclSuccess) return res;
    pc_log(PC_LOG_INFO, PC_SUB_INIT,
           "rank %d of %d on host %s (%d of %d local ranks, %d hosts, %d levels)", b->rank,
           b->nranks, all[b->rank].host, t->local_rank, t->nlocal, t->nhosts, t->lv.nlevels);
    if (pc_log_level >= PC_LOG_INFO && b->rank == 0) {
        char buf[8192];
        levels_describe(&t->lv, buf, sizeof(buf));
        pc_log(PC_LOG_INFO, PC_SUB_INIT, "topology:\n%s", buf);
    }
    return podcclSuccess;
}

void topo_set_net_link(pc_topo *t, double bw_GBps, double lat_us) {
    pc_levels *L = &t->lv;
    if (pc_param_str("PODCCL_TOPO_FILE") && *pc_param_str("PODCCL_TOPO_FILE")) {
        /* The file names its levels; only an added top level borrows the one below it. */
        return;
    }
    for (int l = 1; l < L->nlevels; l++)
        L->lv[l].link = (pc_link_class){.bw_GBps = bw_GBps, .lat_us = lat_us};
}

void topo_free(pc_topo *t) {
    if (!t) return;
    free(t->host_of), free(t->pids), free(t->local_ranks), free(t->local_idx);
    levels_free(&t->lv);
    free(t);
}
