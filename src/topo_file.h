/* The topology file (PODCCL_TOPO_FILE): what hwloc cannot see. Named levels above the host
 * (supernode, cabinet, cluster, ...), which hosts form each group of a level, and each level's
 * link class. JSON, parsed with jansson; the format is in docs/topology.md.
 *
 * This module knows nothing of communicators: it maps the job's hosts (as the caller lists
 * them) onto the file's groups, so a unit test can feed it any file and any host list. */
#ifndef PODCCL_TOPO_FILE_H
#define PODCCL_TOPO_FILE_H

#include <stddef.h>

#define PC_TOPO_MAX_FILE_LEVELS 6
#define PC_TOPO_NAME_BYTES 32

/* One host of the job, as the file may name it. */
typedef struct {
    const char *name;   /* UTS host name (gethostname) */
    const char *hostid; /* PODCCL_HOSTID of the host's ranks, or NULL/"" when unset */
    const char *addr;   /* bootstrap IPv4/IPv6 address as text ("10.1.0.2"), or NULL */
} pc_topo_host;

/* A link class: the cost model's alpha and beta for one level. */
typedef struct {
    double bw_GBps; /* bandwidth per rank, GB/s (1e9 bytes/s) */
    double lat_us;  /* latency of one message, microseconds */
    int memsem;     /* 1: ranks of a group can load/store each other's memory */
} pc_link_class;

typedef struct {
    char name[PC_TOPO_NAME_BYTES];
    pc_link_class link;
    int ngroups;        /* groups of this level that hold at least one job host */
    int *group_of_host; /* [nhosts] index in [0, ngroups) of each job host's group */
    char (*group_name)[PC_TOPO_NAME_BYTES]; /* [ngroups] the file's group names */
} pc_topo_file_level;

typedef struct {
    int nlevels; /* levels above the host, bottom up */
    pc_topo_file_level lv[PC_TOPO_MAX_FILE_LEVELS];
    int has_host_link; /* the file gives level 0's link class ("host" object) */
    pc_link_class host_link;
} pc_topo_file;

/* Parses path and places each of the nhosts job hosts in one group of every level.
 * Returns 0 on success; on failure -1 with a message in err (at most errlen bytes) that names
 * the file, the line and what is wrong: bad JSON (jansson's line and column), a missing or
 * mistyped field, a job host that no group of a level lists (unknown host), a host listed in two
 * groups of one level, a group of a level that splits a group of the level below, an empty
 * level list, too many levels. *out is zeroed on failure. Thread-safe.
 * A host string of the file matches a job host when it equals the host's name, its non-empty
 * hostid or its addr, or is an IPv4/IPv6 address or CIDR that contains addr (IPv4-mapped IPv6
 * addresses count as IPv4). Strings that match no job host are fine; groups that hold no job
 * host are left out of ngroups. A level without "groups" is one group, named after the level. */
int topo_file_load(const char *path, const pc_topo_host *hosts, int nhosts, pc_topo_file *out,
                   char *err, size_t errlen);
/* Frees what topo_file_load allocated and zeroes *f; safe on a zeroed struct, twice, on NULL. */
void topo_file_free(pc_topo_file *f);

#endif
