/* One table of every environment parameter podccl reads (NCCL's lesson: knobs scattered through
 * the code end up undocumented). docs/env.md lists the same set; podcclPrintParams prints it. */
#include "algorithms/algo.h"
#include "core.h"

typedef struct {
    const char *name;
    const char *def; /* NULL: unset by default */
    const char *doc;
} pc_param;

static const pc_param params[] = {
    {"PODCCL_DEBUG", "WARN", "log level: NONE, WARN, INFO, TRACE"},
    {"PODCCL_DEBUG_SUBSYS", "ALL",
     "comma list of subsystems to log: INIT,COLL,TUNE,SHM,NET,BOOT or ALL; ^ excludes"},
    {"PODCCL_DEBUG_FILE", NULL, "log to this file instead of stderr; %h = host, %p = pid"},
    {"PODCCL_TIMEOUT", "300",
     "seconds without progress before a peer is declared stuck (podcclTimeout); dead peers on "
     "the same host are detected at once"},
    {"PODCCL_ALGO", NULL,
     "force an algorithm: NAME for every collective that has it, or coll:NAME,... (coll = "
     "allreduce, allgather, reducescatter, broadcast, reduce, alltoall, alltoallv, barrier; NAME "
     "= direct, cma, ring, rhd, rd, hier, bruck, tree, pairwise, dissemination, auto); "
     "ccl-bench --algos lists which collective has which"},
    {"PODCCL_NET_NAP_US", "200",
     "across hosts, a rank idle this many microseconds sleeps 20 us at a time instead of only "
     "yielding, leaving the cores to the kernel's network processing; -1: never"},
    {"PODCCL_HIER_SEGMENTS", "16",
     "pipeline segments of the hierarchical algorithms (levels overlap segment by segment); "
     "fewer when a rank's block would be under a chunk per segment"},
    {"PODCCL_TOPO_FILE", NULL,
     "JSON topology file: levels above the host (supernode, cabinet, cluster), their groups of "
     "hosts and link classes (docs/topology.md); unset: the host, then one network level"},
    {"PODCCL_CHUNK_BYTES", "131072", "pipeline chunk of the ring and pairwise algorithms, bytes"},
    {"PODCCL_SHM_DIRECT_BYTES", "32768",
     "bytes of each of a rank's one-shot (direct) buffers; messages a rank publishes up to this "
     "size can use direct"},
    {"PODCCL_SHM_DIRECT_SLOTS", "8",
     "one-shot buffers per rank; a rank may run this many one-shot operations ahead"},
    {"PODCCL_SHM_SLOTS", "4", "slots in each shared-memory point-to-point FIFO"},
    {"PODCCL_SHM_MAX_BYTES", "33554432",
     "upper bound on the shared memory one rank allocates, bytes; FIFO slots shrink to fit"},
    {"PODCCL_SHM_CMA", "auto",
     "single copy of large messages with process_vm_readv: auto (use if the kernel allows it) "
     "or 0 (always stage through shared memory)"},
    {"PODCCL_SHM_SPIN", "auto",
     "polls of a flag or completion queue before yielding the core; auto: 2000 when every rank "
     "on this machine (same kernel, whatever host it counts as) has a core, 20 when ranks "
     "outnumber cores"},
    {"PODCCL_SOCKET_IFNAME", NULL,
     "interface for bootstrap sockets: prefix list, ^ to exclude, = for exact names"},
    {"PODCCL_COMM_ID", NULL, "host:port of the rendezvous root (unique id and env init)"},
    {"PODCCL_RANK", NULL, "rank for podcclCommInitFromEnv"},
    {"PODCCL_NRANKS", NULL, "number of ranks for podcclCommInitFromEnv"},
    {"PODCCL_SECRET", NULL,
     "shared secret for podcclCommInitFromEnv (default: derived from the launcher's job id)"},
    {"PODCCL_MAX_INFLIGHT", "8", "chunks in flight per schedule in the executor"},
    {"PODCCL_HOSTID", NULL,
     "host identity override (like NCCL_HOSTID): ranks with different values are on different "
     "hosts and talk over the network transport (tests of ib/ofi on one machine)"},
    {"PODCCL_NET", NULL,
     "network transport between hosts: ib (verbs) or ofi (libfabric); default ib when every "
     "rank has a usable RDMA device, else ofi"},
    {"PODCCL_NET_SEND_DEPTH", "auto",
     "chunks in flight per network peer on the sending side (receives run 4 x "
     "PODCCL_MAX_INFLIGHT deep); auto: the transport's advice (1 for libfabric providers over "
     "sockets, PODCCL_MAX_INFLIGHT otherwise)"},
    {"PODCCL_OFI_PROVIDER", NULL,
     "libfabric provider for ofi, e.g. tcp;ofi_rxm, tcp, verbs;ofi_rxm, efa, cxi (default: "
     "libfabric's own order of RDM providers with tagged messages)"},
    {"PODCCL_OFI_EAGER_BYTES", "65536",
     "ofi: messages up to this size go as tagged sends; larger ones by RMA write (fi_writedata) "
     "when the provider has it"},
    {"PODCCL_IB_HCA", NULL,
     "RDMA devices/ports for ib, NCCL syntax: mlx5_0:1,mlx5_1 prefix list, ^ excludes, = exact"},
    {"PODCCL_IB_GID_INDEX", "-1",
     "GID index for RoCE; -1 picks the RoCE v2 GID of an IPv4 address (else IPv6, else 0)"},
};

static const pc_param *find(const char *name) {
    for (size_t i = 0; i < sizeof(params) / sizeof(params[0]); i++)
        if (strcmp(params[i].name, name) == 0) return &params[i];
    return NULL;
}

const char *pc_param_str(const char *name) {
    const char *v = getenv(name);
    if (v && *v) return v;
    const pc_param *p = find(name);
    return p ? p->def : NULL;
}

long long pc_param_int(const char *name) {
    const char *v = pc_param_str(name);
    if (!v) return 0;
    char *end;
    long long x = strtoll(v, &end, 0);
    if (end == v || *end) {
        const pc_param *p = find(name);
        pc_log(PC_LOG_WARN, PC_SUB_ALL, "%s=%s is not an integer; using default %s", name, v,
               p && p->def ? p->def : "0");
        return p && p->def ? strtoll(p->def, NULL, 0) : 0;
    }
    return x;
}

void podcclPrintParams(void) {
    for (size_t i = 0; i < sizeof(params) / sizeof(params[0]); i++) {
        const char *v = getenv(params[i].name);
        printf("%-24s = %-12s (default %s)\n    %s\n", params[i].name, v ? v : "",
               params[i].def ? params[i].def : "unset", params[i].doc);
    }
}

void podcclPrintAlgorithms(void) {
    printf("| collective | algorithm | what it is (source) |\n|---|---|---|\n");
    for (int i = 0; pc_algos[i]; i++)
        printf("| %s | `%s` | %s |\n", algo_coll_name(pc_algos[i]->coll), pc_algos[i]->name,
               pc_algos[i]->desc);
}
