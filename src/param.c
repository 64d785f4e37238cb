/* One table of every environment parameter podccl reads (NCCL's lesson: knobs scattered through
 * the code end up undocumented). docs/env.md lists the same set; podcclPrintParams prints it.
 *
 * Each parameter has a type and a range. pc_param_check_all, at the start of every init, refuses
 * a set variable whose value is malformed or out of range (podcclInvalidArgument naming it), so
 * the readers below only ever see valid values: the callers need no clamping of their own. The
 * ranges are chosen so that the code downstream works at both ends of each (no size wraps, no
 * spin that never yields to the dead-peer and timeout checks). */
#include <limits.h>
#include <strings.h>

#include "algorithms/algo.h"
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
    const char *def; /* NULL: unset by default */
    pc_ptype type;
    long long min, max;  /* P_INT, P_INT_AUTO: range; P_STR, P_HOSTPORT: max length (bytes) */
    const char *choices; /* P_ENUM: "A|B|C" */
    const char *doc;
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
    {"PODCCL_DEBUG", "WARN", ENUM("NONE|WARN|INFO|TRACE"),
     "log level; lines carry host, pid, thread and rank"},
    {"PODCCL_DEBUG_SUBSYS", "ALL", STR(255),
     "comma list of subsystems to log: INIT,COLL,TUNE,SHM,NET,BOOT or ALL; ^ excludes"},
    /* debug.c expands %h and %p into a 512-byte path */
    {"PODCCL_DEBUG_FILE", NULL, STR(400),
     "log to this file instead of stderr; %h = host, %p = pid"},
    {"PODCCL_TIMEOUT", "300", INT(1, 86400),
     "seconds without progress before a peer is declared stuck (podcclTimeout); dead peers on "
     "the same host are detected at once"},
    {"PODCCL_ALGO", NULL, STR(1024),
     "force an algorithm: NAME for every collective that has it, or coll:NAME,... (coll = "
     "allreduce, allgather, reducescatter, broadcast, reduce, alltoall, alltoallv, barrier; NAME "
     "= direct, cma, ring, rhd, rd, hier, bruck, tree, pairwise, dissemination, auto); "
     "ccl-bench --algos lists which collective has which"},
    {"PODCCL_NET_NAP_US", "200", INT(-1, 1000000),
     "across hosts, a rank idle this many microseconds sleeps 20 us at a time instead of only "
     "yielding, leaving the cores to the kernel's network processing; -1: never"},
    {"PODCCL_SHM_NAP_US", "1000", INT(-1, 1000000),
     "on one host, a rank idle this many microseconds sleeps 20 us at a time instead of only "
     "yielding, leaving the cores to computation that overlaps communication (a framework's "
     "backward pass); -1: never"},
    {"PODCCL_HIER_SEGMENTS", "16", INT(1, 256),
     "pipeline segments of the hierarchical algorithms (levels overlap segment by segment); "
     "fewer when a rank's block would be under a chunk per segment"},
    {"PODCCL_TOPO_FILE", NULL, STR(4095),
     "JSON topology file: levels above the host (supernode, cabinet, cluster), their groups of "
     "hosts and link classes (docs/topology.md); unset: the host, then one network level"},
    /* 1 GiB: chunk sizes stay within int and the ib slot size; the executor's scratch is a
     * few chunks, and a failed allocation is an error, not a crash */
    {"PODCCL_CHUNK_BYTES", "131072", INT(4 * KiB, 1 * GiB),
     "pipeline chunk of the ring and pairwise algorithms, bytes (rounded down to 64)"},
    {"PODCCL_SHM_DIRECT_BYTES", "32768", INT(0, 64 * MiB),
     "bytes of each of a rank's one-shot (direct) buffers; messages a rank publishes up to this "
     "size can use direct; 0: no one-shot path"},
    {"PODCCL_SHM_DIRECT_SLOTS", "8", INT(2, 64),
     "one-shot buffers per rank; a rank may run this many one-shot operations ahead"},
    {"PODCCL_SHM_SLOTS", "4", INT(2, 64), "slots in each shared-memory point-to-point FIFO"},
    {"PODCCL_SHM_MAX_BYTES", "33554432", INT(1 * MiB, 64 * GiB),
     "upper bound on the shared memory one rank allocates, bytes; FIFO slots shrink to fit"},
    {"PODCCL_SHM_CMA", "auto", ENUM("auto|0|1"),
     "single copy of large messages with process_vm_readv: auto or 1 (use if the kernel allows "
     "it), 0 (always stage through shared memory)"},
    /* bounded: a waiting rank checks for dead peers and the timeout only once it yields */
    {"PODCCL_SHM_SPIN", "auto", INT_AUTO(0, 1000000),
     "polls of a flag or completion queue before yielding the core; auto: 2000 when every rank "
     "on this machine (same kernel, whatever host it counts as) has a core, 20 when ranks "
     "outnumber cores"},
    {"PODCCL_SOCKET_IFNAME", NULL, STR(255),
     "interface for bootstrap sockets: prefix list, ^ to exclude, = for exact names"},
    {"PODCCL_COMM_ID", NULL, HOSTPORT, "host:port of the rendezvous root (unique id and env init)"},
    {"PODCCL_RANK", NULL, INT(0, 1048575), "rank for podcclCommInitFromEnv"},
    {"PODCCL_NRANKS", NULL, INT(1, 1048576), "number of ranks for podcclCommInitFromEnv"},
    {"PODCCL_SECRET", NULL, STR(1024),
     "shared secret for podcclCommInitFromEnv: every rank of the job sets the same value; see "
     "docs/security.md for where the secret comes from when unset"},
    {"PODCCL_SECRET_FILE", NULL, STR(4095),
     "file holding the job's shared secret (refused unless owned by this user and mode 0600); "
     "default when neither is set: the launcher's per-job randomness (Open MPI), else "
     "~/.config/podccl/secret, created 0600 on first use"},
    {"PODCCL_TRACE_DIR", NULL, STR(1024),
     "flight recorder: directory where each rank writes its last operations as JSON on a "
     "timeout, an error or SIGUSR1; unset: off"},
    {"PODCCL_TRACE_OPS", "256", INT(1, 1048576), "flight recorder: operations each rank keeps"},
    {"PODCCL_MAX_INFLIGHT", "8", INT(2, 64), "chunks in flight per schedule in the executor"},
    /* topo.c keeps 63 bytes of it */
    {"PODCCL_HOSTID", NULL, STR(63),
     "host identity override (like NCCL_HOSTID): ranks with different values are on different "
     "hosts and talk over the network transport (tests of ib/ofi on one machine)"},
    {"PODCCL_NET", NULL, ENUM("ib|ofi"),
     "network transport between hosts: ib (verbs) or ofi (libfabric); default ib when every "
     "rank has a usable RDMA device, else ofi"},
    {"PODCCL_NET_SEND_DEPTH", "auto", INT_AUTO(1, 64),
     "chunks in flight per network peer on the sending side (receives run 4 x "
     "PODCCL_MAX_INFLIGHT deep; values above PODCCL_MAX_INFLIGHT count as it); auto: the "
     "transport's advice (1 for libfabric providers over sockets, PODCCL_MAX_INFLIGHT "
     "otherwise)"},
    {"PODCCL_OFI_PROVIDER", NULL, STR(255),
     "libfabric provider for ofi, e.g. tcp;ofi_rxm, tcp, verbs;ofi_rxm, efa, cxi (default: "
     "libfabric's own order of RDM providers with tagged messages)"},
    {"PODCCL_OFI_EAGER_BYTES", "65536", INT(0, 1 * GiB),
     "ofi: messages up to this size go as tagged sends; larger ones by RMA write (fi_writedata) "
     "when the provider has it"},
    /* ib_dev.c matches against a 512-byte copy */
    {"PODCCL_IB_HCA", NULL, STR(511),
     "RDMA devices/ports for ib, NCCL syntax: mlx5_0:1,mlx5_1 prefix list, ^ excludes, = exact"},
    /* verbs keeps a GID index in 8 bits (ibv_global_route.sgid_index) */
    {"PODCCL_IB_GID_INDEX", "-1", INT(-1, 255),
     "GID index for RoCE; -1 picks the RoCE v2 GID of an IPv4 address (else IPv6, else 0)"},
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

void podcclPrintAlgorithms(void) {
    printf("| collective | algorithm | what it is (source) |\n|---|---|---|\n");
    for (int i = 0; pc_algos[i]; i++)
        printf("| %s | `%s` | %s |\n", algo_coll_name(pc_algos[i]->coll), pc_algos[i]->name,
               pc_algos[i]->desc);
}
