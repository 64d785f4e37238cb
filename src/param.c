/* One table of every environment parameter podccl reads (NCCL's lesson: knobs scattered through
 * the code end up undocumented). It is the single source: podcclPrintParams (ccl-bench --params)
 * prints it with the short docs, and pc_param_print_env_md prints the whole of docs/env.md from
 * it with the long ones (`make env-md` writes the file; tests/check_docs.sh fails when the
 * committed file differs). Edit a parameter's text here, never in docs/env.md.
 *
 * Each parameter has a type and a range. pc_param_check_all, at the start of every init, refuses
 * a set variable whose value is malformed or out of range (podcclInvalidArgument naming it), so
 * the readers below only ever see valid values: the callers need no clamping of their own. The
 * ranges are chosen so that the code downstream works at both ends of each (no size wraps, no
 * spin that never yields to the dead-peer and timeout checks). */
#include <limits.h>
#include <strings.h>

#include "core.h"

typedef enum {
    P_INT,      /* decimal integer in [min, max] */
    P_INT_AUTO, /* "auto" or a decimal integer in [min, max] */
    P_ENUM,     /* one of choices (case-insensitive) */
    P_STR,      /* free text of at most max bytes */
    P_HOSTPORT, /* host:port, port 1..65535, host at most max bytes; syntax only */
} pc_ptype;

typedef struct {
    const char *name;
    const char *subsys; /* one of env_md_groups: where docs/env.md lists it */
    const char *def;    /* NULL: unset by default */
    pc_ptype type;
    long long min, max;  /* P_INT, P_INT_AUTO: range; P_STR, P_HOSTPORT: max length (bytes) */
    const char *choices; /* P_ENUM: "A|B|C" */
    const char *doc;     /* short, plain text: podcclPrintParams (ccl-bench --params) */
    const char *md;      /* long, markdown, one table cell (no '|', no newline): docs/env.md */
} pc_param;

#define INT(lo, hi) P_INT, (lo), (hi), NULL
#define INT_AUTO(lo, hi) P_INT_AUTO, (lo), (hi), NULL
#define ENUM(c) P_ENUM, 0, 0, (c)
#define STR(maxlen) P_STR, 0, (maxlen), NULL
#define HOSTPORT P_HOSTPORT, 0, 255, NULL
#define KiB 1024LL
#define MiB (1024LL * KiB)
#define GiB (1024LL * MiB)

static const pc_param params[] = {
    {"PODCCL_DEBUG", "debug", "WARN", ENUM("NONE|WARN|INFO|TRACE"),
     "log level; lines carry host, pid, thread and rank",
     "log level: `NONE`, `WARN`, `INFO`, `TRACE`. Lines carry host, pid, thread and rank."},
    {"PODCCL_DEBUG_SUBSYS", "debug", "ALL", STR(255),
     "comma list of subsystems to log: INIT,COLL,TUNE,SHM,NET,BOOT or ALL; ^ excludes",
     "comma list of `INIT,COLL,TUNE,SHM,NET,BOOT` or `ALL`; a leading `^` excludes."},
    /* debug.c expands %h and %p into a 512-byte path */
    {"PODCCL_DEBUG_FILE", "debug", NULL, STR(400),
     "log to this file instead of stderr; %h = host, %p = pid",
     "log to this file instead of stderr; `%h` = host, `%p` = pid."},
    {"PODCCL_TIMEOUT", "core", "300", INT(1, 86400),
     "seconds without progress before a peer is declared stuck (podcclTimeout); dead peers on "
     "the same host are detected at once",
     "seconds without progress before a peer is declared stuck (`podcclTimeout`). A peer "
     "process on the same host that dies is detected at once (pidfd), whatever this value."},
    {"PODCCL_ALGO", "algorithms", NULL, STR(1024),
     "force an algorithm: NAME for every collective that has it, or coll:NAME,... (coll = "
     "allreduce, allgather, reducescatter, broadcast, reduce, alltoall, alltoallv, barrier; NAME "
     "= direct, cma, ring, rhd, rd, hier, bruck, tree, pairwise, dissemination, auto); "
     "ccl-bench --algos lists which collective has which",
     "force an algorithm: `NAME` for every collective that has it, or a list "
     "`allreduce:hier,allgather:bruck,broadcast:auto`. Names: `direct`, `cma`, `ring`, `rhd`, "
     "`rd`, `hier`, `bruck`, `tree`, `pairwise`, `dissemination` (`ccl-bench --algos` lists "
     "which collective has which; docs/algorithms.md). Unknown names, or a collective without "
     "that algorithm, fail `podcclCommInitRank` with `podcclInvalidArgument` listing the names "
     "that exist; a forced algorithm that cannot run a call (`direct` for a message larger "
     "than the one-shot buffer, `hier` on one host, `direct`/`cma` across hosts) fails that "
     "call with `podcclInvalidUsage` and the reason (no silent fallback). "
     "`allreduce:hier(host=...,net=...)` (per-level stage choice) is refused: the stages of "
     "`hier` are rings in this version."},
    {"PODCCL_NET_NAP_US", "net", "200", INT(-1, 1000000),
     "across hosts, a rank idle this many microseconds sleeps 20 us at a time instead of only "
     "yielding, leaving the cores to the kernel's network processing; -1: never",
     "when the ranks span hosts, a rank that made no progress for this many microseconds "
     "sleeps 20 us at a time instead of only yielding its core, so that the kernel's network "
     "processing (softirq: veth, bridge, tbf, TCP) gets the cores that polling ranks would "
     "take on a machine with more ranks than cores; `-1`: never nap. Measured on 8 namespace "
     "hosts x 1 rank: small all-reduce latency the same within noise with and without (340-470 "
     "us)."},
    {"PODCCL_SHM_NAP_US", "shm", "1000", INT(-1, 1000000),
     "on one host, a rank idle this many microseconds sleeps 20 us at a time instead of only "
     "yielding, leaving the cores to computation that overlaps communication (a framework's "
     "backward pass); -1: never",
     "on one host, a rank that made no progress for this many microseconds sleeps 20 us at a "
     "time instead of only yielding its core, leaving the cores to computation that overlaps "
     "the collective (PyTorch DDP's backward pass runs beside the all-reduce of earlier "
     "gradient buckets; a rank spinning on a late peer took a core from it). Waits shorter "
     "than this, where latency matters, spin and yield as before; `-1`: never nap."},
    {"PODCCL_HIER_SEGMENTS", "algorithms", "16", INT(1, 256),
     "pipeline segments of the hierarchical algorithms (levels overlap segment by segment); "
     "fewer when a rank's block would be under a chunk per segment",
     "pipeline segments of the hierarchical algorithms: the buffer is cut into this many "
     "pieces and each level works on piece j+1 while the level above works on piece j; fewer "
     "when a rank's block would be smaller than a chunk per segment. Measured on the tiered "
     "namespace cluster (64 MiB all-reduce): 8 segments 1.7-2.7 s, 16 about 1.7 s, 32-64 about "
     "1.65 s, run to run noise about 20%."},
    {"PODCCL_TOPO_FILE", "topology", NULL, STR(4095),
     "JSON topology file: levels above the host (supernode, cabinet, cluster), their groups of "
     "hosts and link classes (docs/topology.md); unset: the host, then one network level",
     "JSON topology file (docs/topology.md): the levels above the host (supernode, cabinet, "
     "cluster, ...), which hosts form each group (by host name, `PODCCL_HOSTID`, address or "
     "CIDR), and each level's link class (bandwidth per rank in GB/s, latency in us, memory "
     "semantics). Unset: the host level, then one network level with the network transport's "
     "link class. A bad file fails `podcclCommInitRank` with `podcclInvalidArgument` naming "
     "the file, line and problem; ranks that find different levels fail it too. `ccl-bench "
     "--topo` prints the levels, groups, leaders and rails."},
    /* 1 GiB: chunk sizes stay within int and the ib slot size; the executor's scratch is a
     * few chunks, and a failed allocation is an error, not a crash */
    {"PODCCL_CHUNK_BYTES", "algorithms", "131072", INT(4 * KiB, 1 * GiB),
     "pipeline chunk of the ring and pairwise algorithms, bytes (rounded down to 64)",
     "pipeline chunk of the ring and pairwise algorithms, rounded down to a multiple of 64. "
     "Across hosts a collective's block is cut into at least 8 chunks (down to 16 KiB), "
     "whatever this value."},
    {"PODCCL_SHM_DIRECT_BYTES", "shm", "32768", INT(0, 64 * MiB),
     "bytes of each of a rank's one-shot (direct) buffers; messages a rank publishes up to this "
     "size can use direct; 0: no one-shot path",
     "bytes of each of a rank's one-shot buffers. Messages a rank publishes up to this size "
     "can use `direct`; `0`: no one-shot path. Shared memory per rank grows by "
     "`PODCCL_SHM_DIRECT_SLOTS` times this, outside `PODCCL_SHM_MAX_BYTES`."},
    {"PODCCL_SHM_DIRECT_SLOTS", "shm", "8", INT(2, 64),
     "one-shot buffers per rank; a rank may run this many one-shot operations ahead",
     "one-shot buffers per rank, used in rotation: a broadcast or reduce root may run this "
     "many operations ahead of its readers."},
    {"PODCCL_SHM_SLOTS", "shm", "4", INT(2, 64), "slots in each shared-memory point-to-point FIFO",
     "slots per shared-memory FIFO (one FIFO per ordered pair of local ranks)."},
    {"PODCCL_SHM_MAX_BYTES", "shm", "33554432", INT(1 * MiB, 64 * GiB),
     "upper bound on the shared memory one rank allocates, bytes; FIFO slots shrink to fit",
     "bound on the shared memory one rank allocates; FIFO slots shrink (down to 4 KiB) to fit. "
     "`podcclCommMemoryUsage` and the `ccl-bench` header report the actual size."},
    {"PODCCL_SHM_CMA", "shm", "auto", ENUM("auto|0|1"),
     "single copy of large messages with process_vm_readv: auto or 1 (use if the kernel allows "
     "it), 0 (always stage through shared memory)",
     "single copy of large messages with `process_vm_readv` (Cross-Memory Attach) when the "
     "kernel allows every local pair of ranks to use it (probed at init; `PODCCL_DEBUG=INFO` "
     "says which); `1` is the same as `auto` (use it where allowed); `0` stages everything "
     "through shared memory."},
    /* bounded: a waiting rank checks for dead peers and the timeout only once it yields */
    {"PODCCL_SHM_SPIN", "shm", "auto", INT_AUTO(0, 1000000),
     "polls of a flag or completion queue before yielding the core; auto: 2000 when every rank "
     "on this machine (same kernel, whatever host it counts as) has a core, 20 when ranks "
     "outnumber cores",
     "polls of a flag (or of a network completion queue) before a waiting rank starts yielding "
     "its core; `auto` is 2000 when every rank on this machine has a core and 20 when ranks "
     "outnumber cores. \"On this machine\" means the same kernel (boot id), so ranks in other "
     "containers or network namespaces of the same machine count. Bounded because a waiting "
     "rank looks for dead peers, aborts and the timeout only once it yields (`-1` or "
     "`2147483647` used to keep the survivors of a dead rank from ever returning)."},
    {"PODCCL_SOCKET_IFNAME", "bootstrap", NULL, STR(255),
     "interface for bootstrap sockets: prefix list, ^ to exclude, = for exact names",
     "interfaces for bootstrap sockets (every rank listens there) and for the `ofi` endpoint "
     "of IP-based providers, NCCL syntax: `eth,ib` prefixes, `^docker` excludes, `=eth0` "
     "exact. Default: first interface that is up and not `lo`/`docker*`, else `lo`. A spec "
     "that matches nothing is an error naming it."},
    {"PODCCL_COMM_ID", "bootstrap", NULL, HOSTPORT,
     "host:port of the rendezvous root (unique id and env init)",
     "`host:port` of the rendezvous root, for `podcclGetUniqueId` and `podcclCommInitFromEnv` "
     "(`[v6addr]:port` for IPv6)."},
    {"PODCCL_RANK", "bootstrap", NULL, INT(0, 1048575), "rank for podcclCommInitFromEnv",
     "rank for `podcclCommInitFromEnv` (before mpirun's, Slurm's and torchrun's variables); "
     "must be below `PODCCL_NRANKS`."},
    {"PODCCL_NRANKS", "bootstrap", NULL, INT(1, 1048576),
     "number of ranks for podcclCommInitFromEnv",
     "number of ranks for `podcclCommInitFromEnv`, with `PODCCL_RANK`."},
    {"PODCCL_SECRET", "bootstrap", NULL, STR(1024),
     "shared secret for podcclCommInitFromEnv: every rank of the job sets the same value; see "
     "docs/security.md for where the secret comes from when unset",
     "shared secret for `podcclCommInitFromEnv`: every rank of the job sets the same value; "
     "see docs/security.md for where the secret comes from when unset."},
    {"PODCCL_SECRET_FILE", "bootstrap", NULL, STR(4095),
     "file holding the job's shared secret (refused unless owned by this user and mode 0600); "
     "default when neither is set: the launcher's per-job randomness (Open MPI), else "
     "~/.config/podccl/secret, created 0600 on first use",
     "file holding the job's shared secret (refused unless owned by this user and mode 0600); "
     "default when neither is set: the launcher's per-job randomness (Open MPI), else "
     "`~/.config/podccl/secret`, created 0600 on first use."},
    {"PODCCL_TRACE_DIR", "debug", NULL, STR(1024),
     "flight recorder: directory where each rank writes its last operations as JSON on a "
     "timeout, an error or SIGUSR1; unset: off",
     "flight recorder: directory where each rank writes its last operations as JSON on a "
     "timeout, an error or `SIGUSR1`; unset: off."},
    {"PODCCL_TRACE_OPS", "debug", "256", INT(1, 1048576),
     "flight recorder: operations each rank keeps", "flight recorder: operations each rank keeps."},
    {"PODCCL_MAX_INFLIGHT", "algorithms", "8", INT(2, 64),
     "chunks in flight per schedule in the executor",
     "chunks in flight per direction in the executor."},
    /* topo.c keeps 63 bytes of it */
    {"PODCCL_HOSTID", "topology", NULL, STR(63),
     "host identity override (like NCCL_HOSTID): ranks with different values are on different "
     "hosts and talk over the network transport (tests of ib/ofi on one machine)",
     "host identity override (NCCL_HOSTID's twin). Ranks are on one host when host name, "
     "kernel boot id, network namespace and pid namespace match; ranks with different values "
     "here are on different hosts and talk over the network transport. For testing `ib`/`ofi` "
     "on one machine."},
    {"PODCCL_NET", "net", NULL, ENUM("ib|ofi"),
     "network transport between hosts: ib (verbs) or ofi (libfabric); default ib when every "
     "rank has a usable RDMA device, else ofi",
     "network transport between hosts: `ib` (verbs + librdmacm) or `ofi` (libfabric). Default: "
     "`ib` when every rank has a usable RDMA device, else `ofi`. All ranks must agree; a "
     "transport that some rank cannot run is an error naming that rank and the reason. Ranks "
     "on the same host always use shared memory."},
    {"PODCCL_NET_PLUGIN", "net", NULL, STR(400),
     "an out-of-tree network transport module: a path, or NAME for podccl-net-NAME.so in "
     "podccl's module folders; it is then the only network transport (PODCCL_NET does not apply)",
     "an out-of-tree network transport module (`include/podccl_net.h`, ABI version 1): a path, "
     "or `NAME` for `podccl-net-NAME.so` next to libpodccl.so, in its `podccl/` folder or in the "
     "folder make install puts modules in. It is then the only network transport, used when the "
     "ranks span hosts (`PODCCL_NET` does not apply); a module of another ABI version fails init "
     "with `podcclInvalidArgument` naming both versions (docs/multihost.md)."},
    {"PODCCL_NET_SEND_DEPTH", "net", "auto", INT_AUTO(1, 64),
     "chunks in flight per network peer on the sending side (receives run 4 x "
     "PODCCL_MAX_INFLIGHT deep; values above PODCCL_MAX_INFLIGHT count as it); auto: the "
     "transport's advice (1 for libfabric providers over sockets, PODCCL_MAX_INFLIGHT "
     "otherwise)",
     "chunks in flight per network peer on the sending side; receives from the network run 4 x "
     "`PODCCL_MAX_INFLIGHT` deep, since a receive grants the clear-to-send that the sender "
     "waits for. `auto`: the transport's advice: 1 for libfabric providers over sockets "
     "(`tcp`, `net`, `sockets`, `udp`), where a write completes once the kernel holds it and "
     "writes queued in the provider delay the clear-to-sends behind them; "
     "`PODCCL_MAX_INFLIGHT` otherwise. A value above `PODCCL_MAX_INFLIGHT` counts as "
     "`PODCCL_MAX_INFLIGHT`."},
    {"PODCCL_OFI_PROVIDER", "net", NULL, STR(255),
     "libfabric provider for ofi, e.g. tcp;ofi_rxm, tcp, verbs;ofi_rxm, efa, cxi (default: "
     "libfabric's own order of RDM providers with tagged messages)",
     "libfabric provider for `ofi` (`tcp;ofi_rxm`, `tcp`, `net`, `sockets`, `udp;ofi_rxd`, "
     "`verbs;ofi_rxm`, `efa`, `cxi`, ...). Default: the first RDM provider with tagged "
     "messages in libfabric's own order that can leave the host (`shm` is skipped unless "
     "named)."},
    {"PODCCL_OFI_EAGER_BYTES", "net", "65536", INT(0, 1 * GiB),
     "ofi: messages up to this size go as tagged sends; larger ones by RMA write (fi_writedata) "
     "when the provider has it",
     "`ofi`: messages up to this size go as tagged sends; larger ones by a receiver-driven RMA "
     "write (`fi_writedata`) when the provider has RMA and 8 bytes of remote CQ data."},
    /* ib_dev.c matches against a 512-byte copy */
    {"PODCCL_IB_HCA", "net", NULL, STR(511),
     "RDMA devices/ports for ib, NCCL syntax: mlx5_0:1,mlx5_1 prefix list, ^ excludes, = exact",
     "RDMA devices and ports for `ib`, NCCL syntax: `mlx5_0:1,mlx5_1` prefixes, `^` excludes, "
     "`=` exact names."},
    /* verbs keeps a GID index in 8 bits (ibv_global_route.sgid_index) */
    {"PODCCL_IB_GID_INDEX", "net", "-1", INT(-1, 255),
     "GID index for RoCE; -1 picks the RoCE v2 GID of an IPv4 address (else IPv6, else 0)",
     "GID index for RoCE; `-1` picks the RoCE v2 GID of an IPv4 address (else IPv6, else index "
     "0)."},
};
#define NPARAMS (sizeof(params) / sizeof(params[0]))

/* Variables of podccl's own tools (ccl-bench, test scripts), not of the library: no warning. */
static const char *const tool_prefixes[] = {"PODCCL_BENCH_", "PODCCL_SOFTROCE_", "PODCCL_NETNS_",
                                            "PODCCL_BUILD",  "PODCCL_TEST_",     "PODCCL_FUZZ_"};

static const pc_param *find(const char *name) {
    for (size_t i = 0; i < NPARAMS; i++)
        if (strcmp(params[i].name, name) == 0) return &params[i];
    return NULL;
}

/* What a parameter accepts, as podcclPrintParams, error messages and docs/env.md say it. */
static void allowed_str(const pc_param *p, char *buf, size_t len) {
    switch (p->type) {
    case P_INT:
        snprintf(buf, len, "integer %lld..%lld", p->min, p->max);
        break;
    case P_INT_AUTO:
        snprintf(buf, len, "auto or integer %lld..%lld", p->min, p->max);
        break;
    case P_ENUM: {
        size_t o = (size_t)snprintf(buf, len, "one of ");
        for (const char *c = p->choices; *c && o + 3 < len; c++) {
            if (*c == '|')
                buf[o++] = ',', buf[o++] = ' ';
            else
                buf[o++] = *c;
        }
        buf[o] = 0;
        break;
    }
    case P_STR:
        snprintf(buf, len, "text up to %lld bytes", p->max);
        break;
    case P_HOSTPORT:
        snprintf(buf, len, "host:port, port 1..65535");
        break;
    }
}

/* Strict decimal: digits with an optional leading '-', no sign '+', no whitespace, no leading
 * zero (C, and NCCL's parser, would read "010" as octal 8), no overflow. NULL if s is one, else
 * why not. */
static const char *parse_dec(const char *s, long long *out) {
    const char *p = s;
    int neg = *p == '-';
    if (neg) p++;
    if (!*p) return "is not a decimal integer";
    for (const char *q = p; *q; q++)
        if (*q < '0' || *q > '9') return "is not a decimal integer: no hex, octal or units";
    if (p[0] == '0' && p[1]) return "has a leading zero: podccl reads decimal only";
    unsigned long long v = 0, lim = neg ? (unsigned long long)LLONG_MAX + 1 : LLONG_MAX;
    for (; *p; p++) {
        unsigned d = (unsigned)(*p - '0');
        if (v > (lim - d) / 10) return "does not fit in 64 bits";
        v = v * 10 + d;
    }
    *out = !neg ? (long long)v : v == lim ? LLONG_MIN : -(long long)v;
    return NULL;
}

static int enum_match(const char *choices, const char *v) {
    size_t n = strlen(v);
    for (const char *c = choices; *c;) {
        const char *bar = strchr(c, '|');
        size_t l = bar ? (size_t)(bar - c) : strlen(c);
        if (l == n && strncasecmp(c, v, n) == 0) return 1;
        c += l + (bar != NULL);
    }
    return 0;
}

/* host:port syntax (the last ':' splits, so [v6]:port and v6:port both parse); no name lookup.
 * NULL if valid, else why not (in buf when it names a value). */
static const char *check_hostport(const char *v, size_t maxhost, char *buf, size_t len) {
    const char *colon = strrchr(v, ':');
    if (!colon) return "is not host:port";
    size_t hl = (size_t)(colon - v);
    if (v[0] == '[') {
        if (hl < 2 || v[hl - 1] != ']') return "has a '[' without a matching ']' before the port";
        hl -= 2;
    }
    if (hl == 0) return "has no host before the ':'";
    if (hl > maxhost) {
        snprintf(buf, len, "has a host name longer than %zu bytes", maxhost);
        return buf;
    }
    long long port;
    const char *why = parse_dec(colon + 1, &port);
    if (why) {
        snprintf(buf, len, "has a port that %s", why);
        return buf;
    }
    if (port < 1 || port > 65535) {
        snprintf(buf, len, "has port %lld, out of range", port);
        return buf;
    }
    return NULL;
}

/* Why v is not a valid value of p (NULL if it is); *x gets the integer of an integer value. */
static const char *check_value(const pc_param *p, const char *v, long long *x, char *buf,
                               size_t len) {
    size_t n = strlen(v);
    switch (p->type) {
    case P_INT_AUTO:
        if (strcasecmp(v, "auto") == 0) return NULL;
        /* fall through */
    case P_INT: {
        if (!n) return "is empty";
        const char *why = parse_dec(v, x);
        if (why) return why;
        return *x < p->min || *x > p->max ? "is out of range" : NULL;
    }
    case P_ENUM:
        if (!n) return "is empty";
        return enum_match(p->choices, v) ? NULL : "is not one of the choices";
    case P_STR:
        if (n > (size_t)p->max) {
            snprintf(buf, len, "is %zu bytes long", n);
            return buf;
        }
        return NULL;
    case P_HOSTPORT:
        if (!n) return "is empty";
        return check_hostport(v, (size_t)p->max, buf, len);
    }
    return "has an unknown type";
}

int pc_param_validate(const char *name, const char *value, char *err, size_t len) {
    char tmp[1];
    if (!err || !len) err = tmp, len = sizeof(tmp);
    err[0] = 0;
    const pc_param *p = name ? find(name) : NULL;
    if (!p) {
        snprintf(err, len, "%s is not a podccl parameter", name ? name : "(null)");
        return -1;
    }
    if (!value) {
        snprintf(err, len, "%s: no value", name);
        return -1;
    }
    char why_buf[96], allowed[96];
    long long x;
    const char *why = check_value(p, value, &x, why_buf, sizeof(why_buf));
    if (!why) return 0;
    allowed_str(p, allowed, sizeof(allowed));
    size_t vl = strlen(value); /* values can be anything: cut long ones */
    snprintf(err, len, "%s=%.*s%s %s (allowed: %s)", name, vl > 64 ? 64 : (int)vl, value,
             vl > 64 ? "..." : "", why, allowed);
    return -1;
}

/* Edit distance (Levenshtein) of the first 64 bytes of a and b, for "did you mean". */
static int edit_distance(const char *a, const char *b) {
    size_t la = strnlen(a, 64), lb = strnlen(b, 64);
    int row[65];
    for (size_t j = 0; j <= lb; j++) row[j] = (int)j;
    for (size_t i = 1; i <= la; i++) {
        int diag = row[0];
        row[0] = (int)i;
        for (size_t j = 1; j <= lb; j++) {
            int up = row[j], best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best) best = up + 1;
            if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
            diag = up, row[j] = best;
        }
    }
    return row[lb];
}

extern char **environ;

/* Unknown PODCCL_* variables are probably typos (PODCCL_TIMOUT): say so once per process, with
 * the closest known name, but do not fail, since a newer or older podccl may know them. */
static void warn_unknown(void) {
    static atomic_int done;
    if (atomic_exchange(&done, 1)) return;
    for (char **e = environ; e && *e; e++) {
        if (strncmp(*e, "PODCCL_", 7) != 0) continue;
        char name[128];
        size_t n = strcspn(*e, "=");
        snprintf(name, sizeof(name), "%.*s", n < sizeof(name) ? (int)n : (int)sizeof(name) - 1, *e);
        int skip = find(name) != NULL;
        for (size_t i = 0; i < sizeof(tool_prefixes) / sizeof(tool_prefixes[0]); i++)
            skip |= strncmp(name, tool_prefixes[i], strlen(tool_prefixes[i])) == 0;
        if (skip) continue;
        const char *best = params[0].name;
        int bd = INT_MAX;
        for (size_t i = 0; i < NPARAMS; i++) {
            int d = edit_distance(name, params[i].name);
            if (d < bd) bd = d, best = params[i].name;
        }
        pc_log(PC_LOG_WARN, PC_SUB_ALL,
               "%s is not a podccl parameter and is ignored; closest known: %s "
               "(ccl-bench --params lists them)",
               name, best);
    }
}

podcclResult_t pc_param_check_all(void) {
    pc_log_init();
    warn_unknown();
    char msg[480] = "", err[200];
    int bad = 0;
    for (size_t i = 0; i < NPARAMS; i++) {
        const char *v = getenv(params[i].name);
        if (!v || !*v) continue; /* empty counts as unset, as in pc_param_str */
        if (pc_param_validate(params[i].name, v, err, sizeof(err)) == 0) continue;
        size_t o = strlen(msg);
        snprintf(msg + o, sizeof(msg) - o, "%s%s", bad++ ? "; " : "", err);
    }
    if (!bad) return podcclSuccess;
    return pc_err(NULL, podcclInvalidArgument, "environment: %s", msg);
}

const char *pc_param_str(const char *name) {
    const char *v = getenv(name);
    if (v && *v) return v;
    const pc_param *p = find(name);
    return p ? p->def : NULL;
}

/* Init has refused invalid values (pc_param_check_all), so the fallback here only serves a
 * variable changed after init, or read without one: the default, with a warning. */
long long pc_param_int(const char *name) {
    const pc_param *p = find(name);
    const char *v = getenv(name);
    long long x;
    if (v && *v) {
        int ok = p ? pc_param_validate(name, v, NULL, 0) == 0 : 1;
        if (ok && !parse_dec(v, &x)) return x;
        if (!ok || !p || p->type != P_INT_AUTO)
            pc_log(PC_LOG_WARN, PC_SUB_ALL, "%s=%s is not valid; using default %s", name, v,
                   p && p->def ? p->def : "0");
    }
    return p && p->def && !parse_dec(p->def, &x) ? x : 0; /* "auto" and unset: 0 */
}

void podcclPrintParams(void) {
    for (size_t i = 0; i < NPARAMS; i++) {
        const pc_param *p = &params[i];
        const char *v = getenv(p->name);
        char allowed[96], err[200];
        allowed_str(p, allowed, sizeof(allowed));
        printf("%-24s = %-12s (default %s; %s)\n    %s\n", p->name, v ? v : "",
               p->def ? p->def : "unset", allowed, p->doc);
        if (v && *v && pc_param_validate(p->name, v, err, sizeof(err)))
            printf("    INVALID: %s\n", err);
    }
}

/* ---- docs/env.md ----------------------------------------------------------------------------- */

/* The text around the table: docs/env.md is this, the table, then env_md_tail; one literal per
 * line of the file (clang-format off, so that it keeps them so). */
/* clang-format off */
static const char env_md_head[] =
    "# Environment variables\n"
    "\n"
    "<!-- Generated from the parameter table in src/param.c by `make env-md` (tests/gen_env_md):\n"
    "     edit the table there, not this file; tests/check_docs.sh fails when the two differ. -->\n"
    "\n"
    "The same set that `src/param.c` declares and `ccl-bench --params` (podcclPrintParams) prints, with\n"
    "the same defaults and allowed values, grouped by subsystem (debug, core, algorithms, topology,\n"
    "shm, net, bootstrap).\n"
    "\n"
    "Every value is checked when `podcclGetUniqueId`, `podcclCommInitRank*` or `podcclCommInitFromEnv`\n"
    "starts: a value of the wrong syntax or out of range fails that call with `podcclInvalidArgument`\n"
    "and a message (`podcclGetLastError`) that names the variable, the value and what is allowed, e.g.\n"
    "`environment: PODCCL_TIMEOUT=0 is out of range (allowed: integer 1..86400)`. Nothing falls back\n"
    "silently. The rules:\n"
    "\n"
    "- **integer**: decimal digits with an optional leading `-`; no `+`, no spaces, no units, no\n"
    "  hexadecimal, and no leading zero (C and NCCL's parser read `010` as octal 8, so podccl refuses\n"
    "  it rather than guess); values that do not fit in 64 bits are refused, not wrapped.\n"
    "- **one of**: one of the listed words, in any case (`info` = `INFO`).\n"
    "- **auto or integer**: the word `auto` (any case) or an integer as above.\n"
    "- **text**: anything up to the given length (paths, interface lists, names).\n"
    "- **host:port**: the last `:` separates the port, an integer 1..65535; the host may be a name, an\n"
    "  IPv4 address or an IPv6 address (bracketed `[::1]:5000` or not). Only the syntax is checked\n"
    "  here; the name is resolved when the root starts.\n"
    "\n"
    "A variable set to the empty string counts as unset. A `PODCCL_*` variable that is not in this list\n"
    "(a typo such as `PODCCL_TIMOUT`) gets one `WARN` line per process naming the closest known one, and\n"
    "is otherwise ignored; variables of podccl's own tools (`PODCCL_BENCH_*`, `PODCCL_SOFTROCE_*`,\n"
    "`PODCCL_NETNS_*`, `PODCCL_BUILD*`, `PODCCL_TEST_*`, `PODCCL_FUZZ_*`) are not warned about.\n"
    "`ccl-bench --params` shows each variable's current value and marks an invalid one.\n"
    "\n";
static const char env_md_tail[] =
    "\n"
    "Launcher variables read by `podcclCommInitFromEnv`: `OMPI_COMM_WORLD_RANK/SIZE/LOCAL_SIZE`\n"
    "(Open MPI), `PMI_RANK/PMI_SIZE` (MPICH), `SLURM_PROCID/NTASKS/NNODES/JOB_ID/STEP_ID` (Slurm),\n"
    "`RANK/WORLD_SIZE/LOCAL_WORLD_SIZE/MASTER_ADDR/MASTER_PORT/TORCHELASTIC_RUN_ID` (torchrun; podccl\n"
    "listens on `MASTER_PORT+1` because torch's TCPStore owns `MASTER_PORT`).\n";
/* clang-format on */
/* docs/env.md lists the parameters group by group, in this order, and in table order within one. */
static const char *const env_md_groups[] = {"debug", "core", "algorithms", "topology",
                                            "shm",   "net",  "bootstrap"};

int pc_param_print_env_md(FILE *f) {
    const size_t ngroups = sizeof(env_md_groups) / sizeof(env_md_groups[0]);
    size_t rows = 0;
    int bad = 0;
    fputs(env_md_head, f);
    fputs("| variable | default | allowed | meaning |\n|---|---|---|---|\n", f);
    for (size_t g = 0; g < ngroups; g++) {
        for (size_t i = 0; i < NPARAMS; i++) {
            const pc_param *p = &params[i];
            if (strcmp(p->subsys, env_md_groups[g]) != 0) continue;
            char allowed[96];
            allowed_str(p, allowed, sizeof(allowed));
            fprintf(f, "| `%s` | %s%s%s | %s | %s |\n", p->name, p->def ? "`" : "",
                    p->def ? p->def : "unset", p->def ? "`" : "", allowed, p->md);
            rows++;
            if (strpbrk(p->md, "|\n")) {
                fprintf(stderr, "%s: the long doc has a '|' or a newline\n", p->name);
                bad = 1;
            }
        }
    }
    fputs(env_md_tail, f);
    for (size_t i = 0; i < NPARAMS && rows != NPARAMS; i++) {
        size_t g = 0;
        while (g < ngroups && strcmp(params[i].subsys, env_md_groups[g]) != 0) g++;
        if (g == ngroups)
            fprintf(stderr, "%s: subsystem '%s' is not one of env_md_groups\n", params[i].name,
                    params[i].subsys);
    }
    return rows == NPARAMS && !bad ? 0 : -1;
}
