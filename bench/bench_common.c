/* The benchmark driver shared by ccl-bench and mpi-bench (see bench_common.h). */
#include "bench_common.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include "refcheck.h"

/* ---- Names ----------------------------------------------------------------------------------- */

enum {
    F_OP = 1u,      /* takes a reduction op */
    F_ROOT = 2u,    /* takes a root */
    F_INPLACE = 4u, /* has an in-place form */
};

static const struct {
    const char *name;
    unsigned flags;
} colls[BENCH_NCOLLS] = {
    [BENCH_ALLREDUCE] = {"allreduce", F_OP | F_INPLACE},
    [BENCH_ALLGATHER] = {"allgather", F_INPLACE},
    [BENCH_REDUCESCATTER] = {"reducescatter", F_OP | F_INPLACE},
    [BENCH_BROADCAST] = {"broadcast", F_ROOT | F_INPLACE},
    [BENCH_REDUCE] = {"reduce", F_OP | F_ROOT | F_INPLACE},
    [BENCH_ALLTOALL] = {"alltoall", F_INPLACE},
    [BENCH_ALLTOALLV] = {"alltoallv", 0},
    [BENCH_SENDRECV] = {"sendrecv", 0},
    [BENCH_BARRIER] = {"barrier", 0},
};

/* First name is the one printed; the others are accepted by -d. */
static const struct {
    podcclDataType_t type;
    const char *names[3];
} types[] = {
    {podcclInt8, {"int8", "char"}},
    {podcclUint8, {"uint8"}},
    {podcclInt32, {"int32", "int"}},
    {podcclUint32, {"uint32"}},
    {podcclInt64, {"int64"}},
    {podcclUint64, {"uint64"}},
    {podcclFloat16, {"half", "float16", "fp16"}},
    {podcclBfloat16, {"bfloat16", "bf16"}},
    {podcclFloat32, {"float", "float32", "fp32"}},
    {podcclFloat64, {"double", "float64", "fp64"}},
};
#define NTYPES (sizeof(types) / sizeof(types[0]))

static const char *const op_names[podcclNumOps] = {"sum", "prod", "max", "min", "avg"};

const char *bench_coll_name(bench_coll_t c) {
    return c < BENCH_NCOLLS ? colls[c].name : "?";
}

const char *bench_type_name(podcclDataType_t t) {
    for (size_t i = 0; i < NTYPES; i++)
        if (types[i].type == t) return types[i].names[0];
    return "?";
}

const char *bench_op_name(podcclRedOp_t op) {
    return op < podcclNumOps ? op_names[op] : "?";
}

/* ---- Options --------------------------------------------------------------------------------- */

static void usage(FILE *f, const char *prog, unsigned allow) {
    fprintf(f, "usage: %s <collective> [flags]\n  collectives:", prog);
    for (int c = 0; c < BENCH_NCOLLS; c++) fprintf(f, " %s", colls[c].name);
    fprintf(f,
            "\n"
            "  -b bytes   smallest size (K/M/G suffixes, 1024-based; default 32M)\n"
            "  -e bytes   largest size (default 32M)\n"
            "  -f factor  multiply the size by this each step, > 1 (default 2)\n"
            "  -n iters   timed iterations per size (default 20)\n"
            "  -w iters   warm-up iterations per size (default 5)\n"
            "  -o op      sum, prod, max, min, avg, all, or a comma list (default sum)\n"
            "  -d type    int8 uint8 int32 uint32 int64 uint64 half bfloat16 float double,\n"
            "             all, or a comma list (default float)\n"
            "  -r root    root rank of broadcast and reduce (default 0)\n"
            "  -c 0|1     check results bit for bit (default 1)\n"
            "  -a 0..3    time reported: 0 rank 0, 1 mean, 2 min, 3 max over ranks (default 3)\n");
    if (allow & BENCH_ALLOW_ALGO)
        fprintf(f, "  -A algo    force an algorithm (sets PODCCL_ALGO)\n");
    if (allow & BENCH_ALLOW_ALGO)
        fprintf(f, "  --topo     print the topology levels, groups, leaders and rails, then exit\n"
                   "  --explain  before the sweep, print every candidate plan per size with its\n"
                   "             predicted time and the one podccl picks\n");
    if (allow & BENCH_ALLOW_NP)
        fprintf(f, "  -np N      start N local ranks (the default, with N = 2, unless a launcher\n"
                   "             such as mpirun, srun or torchrun set the environment)\n");
    fprintf(
        f, "  --json FILE  also write the results as JSON (bench/schema/podccl-bench.schema.json)\n"
           "  --csv FILE   also write the results as CSV, one line per size and placement\n"
           "  --label TEXT the label of this run in those files (default: the library)\n");
    fprintf(f, "  -h         this help\n"
               "Size is the whole buffer (per-rank count x nranks for allgather, reducescatter,\n"
               "alltoall); GB = 1e9 bytes; busbw follows nccl-tests.\n");
}

int bench_parse_size(const char *s, size_t *out) {
    static const char units[] = "KMG";
    char *end;
    errno = 0;
    if (*s == '-') return -1; /* strtoull would silently negate */
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s) return -1;
    const char *u = *end ? strchr(units, toupper((unsigned char)*end)) : NULL;
    unsigned shift = u ? 10u * (unsigned)(u - units + 1) : 0;
    end += u != NULL;
    end += *end == 'b' || *end == 'B';
    if (*end || v > (SIZE_MAX >> shift)) return -1;
    *out = (size_t)v << shift;
    return 0;
}

static int parse_int(const char *s, int lo, int hi, int *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) return -1;
    *out = (int)v;
    return 0;
}

static int type_lookup(const char *s) {
    for (size_t i = 0; i < NTYPES; i++)
        for (int k = 0; k < 3 && types[i].names[k]; k++)
            if (strcmp(s, types[i].names[k]) == 0) return (int)types[i].type;
    return -1;
}

static int op_lookup(const char *s) {
    for (int i = 0; i < podcclNumOps; i++)
        if (strcmp(s, op_names[i]) == 0) return i;
    return -1;
}

/* "all" (the enum values 0 .. nall-1) or a comma list of names. Returns the number of values,
 * 0 for an unknown name. */
static int parse_list(const char *s, int (*lookup)(const char *), int nall, int *vals, int *all) {
    int n = 0;
    *all = strcmp(s, "all") == 0;
    if (*all) {
        for (; n < nall; n++) vals[n] = n;
        return n;
    }
    char buf[256], *save = NULL;
    snprintf(buf, sizeof buf, "%s", s);
    for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        int v = lookup(tok);
        if (v < 0 || n == nall) return 0;
        vals[n++] = v;
    }
    return n;
}

/* Applies one flag's value; returns non-zero if the value is bad. */
static int set_flag(bench_opts_t *o, char flag, const char *v) {
    int vals[BENCH_MAX_TYPES], n, timing;
    char *end;
    switch (flag) {
    case 'b':
        return bench_parse_size(v, &o->minbytes);
    case 'e':
        return bench_parse_size(v, &o->maxbytes);
    case 'f':
        o->stepfactor = strtod(v, &end);
        return *end || !(o->stepfactor > 1.0 && o->stepfactor < 1e6);
    case 'n':
        return parse_int(v, 1, 1 << 30, &o->iters);
    case 'w':
        return parse_int(v, 0, 1 << 30, &o->warmup);
    case 'r':
        return parse_int(v, 0, 1 << 30, &o->root);
    case 'c':
        return parse_int(v, 0, 1, &o->check);
    case 'N':
        return parse_int(v, 1, 4096, &o->np);
    case 'A':
        o->algo = v;
        return 0;
    case 'a':
        if (parse_int(v, 0, 3, &timing)) return -1;
        o->timing = (bench_time_t)timing;
        return 0;
    case 'd':
        n = parse_list(v, type_lookup, podcclNumTypes, vals, &o->types_all);
        for (int i = 0; i < n; i++) o->types[i] = (podcclDataType_t)vals[i];
        return !(o->ntypes = n);
    case 'o':
        n = parse_list(v, op_lookup, podcclNumOps, vals, &o->ops_all);
        for (int i = 0; i < n; i++) o->ops[i] = (podcclRedOp_t)vals[i];
        return !(o->nops = n);
    default:
        return -1;
    }
}

/* fprintf that prints nothing for a NULL stream (ranks other than 0 parse quietly). */
__attribute__((format(printf, 2, 3))) static void say(FILE *f, const char *fmt, ...) {
    if (!f) return;
    va_list ap;
    va_start(ap, fmt);
    vfprintf(f, fmt, ap);
    va_end(ap);
}

/* --json, --csv, --label: where the value goes, or NULL for another flag. *val is the value
 * attached with '=', NULL if it is the next argument. */
static const char **long_opt(bench_opts_t *o, const char *a, const char **val) {
    static const char *const names[] = {"--json", "--csv", "--label"};
    const char **dst[] = {&o->json, &o->csv, &o->label};
    for (int i = 0; i < 3; i++) {
        size_t n = strlen(names[i]);
        if (strncmp(a, names[i], n) == 0 && (a[n] == '\0' || a[n] == '=')) {
            *val = a[n] ? a + n + 1 : NULL;
            return dst[i];
        }
    }
    return NULL;
}

int bench_parse(int argc, char **argv, bench_opts_t *o, unsigned allow) {
    const char *prog = argc > 0 ? argv[0] : "bench";
    FILE *err = (allow & BENCH_QUIET) ? NULL : stderr;
    *o = (bench_opts_t){.coll = BENCH_NCOLLS,
                        .minbytes = 32u << 20,
                        .maxbytes = 32u << 20,
                        .stepfactor = 2.0,
                        .iters = 20,
                        .warmup = 5,
                        .ntypes = 1,
                        .types = {podcclFloat32},
                        .nops = 1,
                        .ops = {podcclSum},
                        .check = 1,
                        .timing = BENCH_TIME_MAX};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            if (err) usage(stdout, prog, allow);
            return 1;
        }
        if (a[0] != '-') {
            int c = 0;
            while (c < BENCH_NCOLLS && strcmp(a, colls[c].name) != 0) c++;
            if (c == BENCH_NCOLLS || o->coll != BENCH_NCOLLS) {
                say(err, "%s: %s '%s'\n", prog,
                    c == BENCH_NCOLLS ? "unknown collective" : "second collective", a);
                return 2;
            }
            o->coll = (bench_coll_t)c;
            continue;
        }
        const char *lv;
        const char **ld = long_opt(o, a, &lv);
        if (ld) {
            if (!lv) lv = i + 1 < argc ? argv[++i] : NULL;
            if (!lv || (!*lv && ld != &o->label)) {
                say(err, "%s: %s needs a value\n", prog, a);
                return 2;
            }
            *ld = lv;
            continue;
        }
        /* -np is two letters, so it is matched before the one-letter flags; values may be
         * attached (-b8) or separate (-b 8), as getopt allows in nccl-tests. */
        int np = strcmp(a, "-np") == 0;
        char flag = np ? 'N' : a[1];
        const char *v = (!np && a[1] && a[2]) ? a + 2 : (i + 1 < argc ? argv[++i] : NULL);
        if (!a[1] || !strchr("befnwodrcaAN", flag) || (flag == 'N' && !(allow & BENCH_ALLOW_NP)) ||
            (flag == 'A' && !(allow & BENCH_ALLOW_ALGO))) {
            say(err, "%s: unknown flag '%s' (-h for help)\n", prog, a);
            return 2;
        }
        if (!v) {
            say(err, "%s: %s needs a value\n", prog, a);
            return 2;
        }
        if (set_flag(o, flag, v)) {
            say(err, "%s: bad value '%s' for %s (-h for help)\n", prog, v, a);
            return 2;
        }
    }
    if (o->coll == BENCH_NCOLLS) {
        say(err, "%s: no collective given\n", prog);
        if (err) usage(stderr, prog, allow);
        return 2;
    }
    if (o->minbytes > o->maxbytes) {
        say(err, "%s: -b %zu is larger than -e %zu\n", prog, o->minbytes, o->maxbytes);
        return 2;
    }
    return 0;
}

/* ---- Buffer layouts -------------------------------------------------------------------------- */

/* alltoallv models Mixture-of-Experts dispatch: rank r sends peer p unit x (1 + (r + 2p) % 3)
 * elements, so loads differ by up to 3x between pairs and between ranks. Every rank computes
 * every pair's count the same way, so recvcounts match the peers' sendcounts without an
 * exchange. */
static size_t a2av_weight(int r, int p) {
    return 1 + (size_t)((r + 2 * p) % 3);
}

/* The most weight any rank sends or receives: the busiest rank sets the size column. */
static size_t a2av_max_weight(int n) {
    size_t wmax = 0;
    for (int r = 0; r < n; r++) {
        size_t out = 0, in = 0;
        for (int p = 0; p < n; p++) out += a2av_weight(r, p), in += a2av_weight(p, r);
        if (out > wmax) wmax = out;
        if (in > wmax) wmax = in;
    }
    return wmax;
}

static void a2av_layout(bench_call_t *c, size_t elems) {
    size_t wmax = a2av_max_weight(c->nranks);
    c->unit = elems / wmax;
    c->sendcount = c->recvcount = 0;
    for (int p = 0; p < c->nranks; p++) {
        c->scounts[p] = c->unit * a2av_weight(c->rank, p);
        c->rcounts[p] = c->unit * a2av_weight(p, c->rank);
        c->sdispls[p] = c->sendcount;
        c->rdispls[p] = c->recvcount;
        c->sendcount += c->scounts[p];
        c->recvcount += c->rcounts[p];
    }
    c->bytes = c->unit * wmax * rc_type_size(c->type);
    c->count = c->unit * wmax / (size_t)c->nranks; /* as for alltoall: size = count x nranks */
}

/* Sets the counts of c for a requested size of `raw` bytes, rounded down to whole elements (and
 * whole elements per rank where the buffer is split between ranks). */
static void layout(bench_call_t *c, size_t raw) {
    size_t es = rc_type_size(c->type), n = (size_t)c->nranks, elems = raw / es;
    switch (c->coll) {
    case BENCH_ALLGATHER:
        c->count = elems / n;
        c->sendcount = c->count;
        c->recvcount = c->count * n;
        break;
    case BENCH_REDUCESCATTER:
        c->count = elems / n;
        c->sendcount = c->count * n;
        c->recvcount = c->count;
        break;
    case BENCH_ALLTOALL:
        c->count = elems / n; /* per peer */
        c->sendcount = c->recvcount = c->count * n;
        break;
    case BENCH_ALLTOALLV:
        a2av_layout(c, elems);
        return;
    case BENCH_BARRIER:
        c->count = c->sendcount = c->recvcount = 0;
        break;
    default: /* allreduce, broadcast, reduce, sendrecv */
        c->count = c->sendcount = c->recvcount = elems;
        break;
    }
    c->bytes = (c->sendcount > c->recvcount ? c->sendcount : c->recvcount) * es;
}

/* Points send/recv into the two allocations: out of place A -> B; in place as podccl.h (and
 * NCCL) define it, inside B. */
static void place(bench_call_t *c, char *a, char *b, int inplace) {
    size_t off = (size_t)c->rank * c->count * rc_type_size(c->type);
    c->inplace = inplace;
    c->send = inplace ? b : a;
    c->recv = b;
    if (inplace && c->coll == BENCH_ALLGATHER) c->send = b + off;
    if (inplace && c->coll == BENCH_REDUCESCATTER) c->recv = b + off;
}

static double bus_factor(bench_coll_t coll, int n) {
    switch (coll) {
    case BENCH_ALLREDUCE:
        return 2.0 * (n - 1) / n;
    case BENCH_ALLGATHER:
    case BENCH_REDUCESCATTER:
    case BENCH_ALLTOALL:
    case BENCH_ALLTOALLV:
        return (double)(n - 1) / n;
    case BENCH_BARRIER:
        return 0.0;
    default:
        return 1.0; /* broadcast, reduce, sendrecv */
    }
}

/* GB/s for c->bytes in `us` microseconds (GB = 1e9 bytes, as nccl-tests). */
static double algbw(const bench_call_t *c, double us) {
    return us > 0 ? (double)c->bytes / us / 1e3 : 0.0;
}

/* ---- Exact-input check ----------------------------------------------------------------------- */

/* Data-movement collectives use the max pattern: its values differ between ranks at every
 * index, so a block that came from the wrong rank is always caught. */
static podcclRedOp_t pattern_op(const bench_call_t *c) {
    return (colls[c->coll].flags & F_OP) ? c->op : podcclMax;
}

/* Global index of the first element that `src` sends to `dst` in (v) all-to-all: distinct per
 * pair, so a block delivered to the wrong slot is caught too. */
static size_t a2a_first(const bench_call_t *c, int src, int dst) {
    size_t block = c->coll == BENCH_ALLTOALL ? c->count : 3 * c->unit;
    return ((size_t)src * (size_t)c->nranks + (size_t)dst) * block;
}

/* Poisons the result region, then writes this rank's inputs (in that order, so that in-place
 * inputs which share the result region survive). */
static void fill(const bench_call_t *c, uint64_t salt) {
    podcclDataType_t t = c->type;
    podcclRedOp_t op = pattern_op(c);
    size_t es = rc_type_size(t);
    int r = c->rank, n = c->nranks;
    char *send = c->send;
    rc_poison(c->recv, c->recvcount, t);
    switch (c->coll) {
    case BENCH_ALLGATHER:
        rc_fill(send, c->count, t, op, r, n, (size_t)r * c->count, salt);
        break;
    case BENCH_ALLTOALL:
        for (int p = 0; p < n; p++)
            rc_fill(send + (size_t)p * c->count * es, c->count, t, op, r, n, a2a_first(c, r, p),
                    salt);
        break;
    case BENCH_ALLTOALLV:
        for (int p = 0; p < n; p++)
            rc_fill(send + c->sdispls[p] * es, c->scounts[p], t, op, r, n, a2a_first(c, r, p),
                    salt);
        break;
    case BENCH_BROADCAST:
        if (r == c->root) rc_fill(send, c->count, t, op, r, n, 0, salt);
        break;
    case BENCH_BARRIER:
        break;
    default: /* allreduce, reducescatter, reduce, sendrecv */
        rc_fill(send, c->sendcount, t, op, r, n, 0, salt);
        break;
    }
}

/* Number of wrong elements of this rank's result at `res`. */
static size_t verify(const bench_call_t *c, const char *res, uint64_t salt) {
    podcclDataType_t t = c->type;
    podcclRedOp_t op = pattern_op(c);
    size_t es = rc_type_size(t), bad = 0, cnt = c->count;
    int r = c->rank, n = c->nranks;
    switch (c->coll) {
    case BENCH_ALLREDUCE:
        return rc_check_reduced(res, cnt, t, op, n, 0, salt);
    case BENCH_REDUCE:
        return r == c->root ? rc_check_reduced(res, cnt, t, op, n, 0, salt) : 0;
    case BENCH_REDUCESCATTER:
        return rc_check_reduced(res, cnt, t, op, n, (size_t)r * cnt, salt);
    case BENCH_BROADCAST:
        return rc_check_values(res, cnt, t, op, c->root, n, 0, salt);
    case BENCH_SENDRECV:
        return rc_check_values(res, cnt, t, op, (r + n - 1) % n, n, 0, salt);
    case BENCH_ALLGATHER:
        for (int q = 0; q < n; q++)
            bad += rc_check_values(res + (size_t)q * cnt * es, cnt, t, op, q, n, (size_t)q * cnt,
                                   salt);
        return bad;
    case BENCH_ALLTOALL:
        for (int q = 0; q < n; q++)
            bad += rc_check_values(res + (size_t)q * cnt * es, cnt, t, op, q, n, a2a_first(c, q, r),
                                   salt);
        return bad;
    case BENCH_ALLTOALLV:
        for (int q = 0; q < n; q++)
            bad += rc_check_values(res + c->rdispls[q] * es, c->rcounts[q], t, op, q, n,
                                   a2a_first(c, q, r), salt);
        return bad;
    default:
        return 0; /* barrier */
    }
}

/* ---- Timing and rows ------------------------------------------------------------------------- */

typedef struct {
    int valid;
    double us; /* per iteration, combined over ranks by -a */
    uint64_t wrong;
} pass_t;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double time_iters(const bench_opts_t *o, const bench_backend_t *b, const bench_call_t *c) {
    b->barrier();
    for (int i = 0; i < o->warmup; i++) b->run(c);
    b->barrier();
    double t0 = now_s();
    for (int i = 0; i < o->iters; i++) b->run(c);
    double us = (now_s() - t0) * 1e6 / o->iters;
    switch (o->timing) {
    case BENCH_TIME_MEAN:
        return b->reduce_double(us, BENCH_RED_SUM) / b->nranks;
    case BENCH_TIME_MIN:
        return b->reduce_double(us, BENCH_RED_MIN);
    case BENCH_TIME_MAX:
        return b->reduce_double(us, BENCH_RED_MAX);
    default:
        return us; /* rank 0's own time; only rank 0 prints */
    }
}

static void measure(const bench_opts_t *o, const bench_backend_t *b, bench_call_t *c, char *a,
                    char *bb, int inplace, uint64_t salt, pass_t *out) {
    place(c, a, bb, inplace);
    /* Timed on zeros: repeated in-place sums and products would otherwise overflow (signed
     * wrap-around, inf/NaN) and make iterations differ; the exact pattern is checked after. */
    memset(c->send, 0, c->sendcount * rc_type_size(c->type));
    memset(c->recv, 0, c->recvcount * rc_type_size(c->type));
    out->valid = 1;
    out->us = time_iters(o, b, c);
    out->wrong = 0;
    if (o->check) {
        fill(c, salt);
        out->wrong = b->sum_u64(verify(c, b->run(c), salt));
    }
}

static void print_pass(const pass_t *p, const bench_call_t *c, int check) {
    if (!p->valid) {
        printf("  %7s  %6s  %6s  %6s", "N/A", "N/A", "N/A", "N/A");
        return;
    }
    char ts[32], ws[32];
    /* nccl-tests' widths: 7 characters whatever the magnitude. */
    snprintf(ts, sizeof ts, p->us >= 10000.0 ? "%7.0f" : p->us >= 100.0 ? "%7.1f" : "%7.2f", p->us);
    snprintf(ws, sizeof ws, "%llu", (unsigned long long)p->wrong);
    double bw = algbw(c, p->us);
    printf("  %7s  %6.2f  %6.2f  %6s", ts, bw, bw * bus_factor(c->coll, c->nranks),
           check ? ws : "N/A");
}

static void print_table_header(void) {
    printf("#\n"
           "# %73s%31s\n"
           "# %10s  %12s  %8s  %6s  %6s  %7s  %6s  %6s  %6s  %7s  %6s  %6s  %6s\n"
           "# %10s  %12s  %8s  %6s  %6s  %7s  %6s  %6s  %6s  %7s  %6s  %6s  %6s\n",
           "out-of-place", "in-place", "size", "count", "type", "redop", "root", "time", "algbw",
           "busbw", "#wrong", "time", "algbw", "busbw", "#wrong", "(B)", "(elements)", "", "", "",
           "(us)", "(GB/s)", "(GB/s)", "", "(us)", "(GB/s)", "(GB/s)", "");
}

/* ---- Header lines ---------------------------------------------------------------------------- */

typedef struct {
    int64_t pid;
    char host[56];
} rank_id_t;

/* Returns the number of hosts on rank 0, 0 on the others. */
static int print_run_header(const bench_opts_t *o, const bench_backend_t *b, int check) {
    int n = b->nranks;
    rank_id_t me = {.pid = 0};
    rank_id_t *all = calloc((size_t)n, sizeof *all);
    if (!all) {
        fprintf(stderr, "%s: rank %d: out of memory\n", b->prog, b->rank);
        exit(2);
    }
    me.pid = (int64_t)getpid();
    /* A host as podccl sees it: host name, network namespace, PODCCL_HOSTID. */
    char name[40] = "";
    gethostname(name, sizeof name - 1);
    struct stat st = {0};
    stat("/proc/self/ns/net", &st);
    const char *hid = getenv("PODCCL_HOSTID");
    snprintf(me.host, sizeof me.host, "%s/%lx/%s", name, (unsigned long)st.st_ino, hid ? hid : "");
    b->allgather_bytes(&me, all, sizeof me); /* collective: every rank takes part */
    if (b->rank != 0) {
        free(all);
        return 0;
    }
    int hosts = 0, minper = n, maxper = 0;
    for (int r = 0; r < n; r++) {
        int first = 1, per = 0;
        for (int q = 0; q < n; q++) {
            int same = strcmp(all[q].host, all[r].host) == 0;
            if (same && q < r) first = 0;
            per += same;
        }
        if (!first) continue;
        hosts++;
        minper = per < minper ? per : minper;
        maxper = per > maxper ? per : maxper;
    }
    printf("# %s: %s\n", b->prog, bench_coll_name(o->coll));
    b->print_header(stdout);
    printf("# nranks: %d  hosts: %d  ranks per host: %d", n, hosts, minper);
    if (maxper != minper) printf("-%d", maxper);
    printf("\n# pids:");
    for (int r = 0; r < n; r++) printf(" %lld", (long long)all[r].pid);
    printf("\n# type:");
    for (int i = 0; i < o->ntypes; i++) printf("%s%s", i ? "," : " ", bench_type_name(o->types[i]));
    printf("  op:");
    for (int i = 0; i < o->nops; i++) printf("%s%s", i ? "," : " ", bench_op_name(o->ops[i]));
    printf("  root: %d\n# sizes: %zu to %zu bytes, factor %g\n", o->root, o->minbytes, o->maxbytes,
           o->stepfactor);
    static const char *const how[] = {"rank 0", "mean over ranks", "min over ranks",
                                      "max over ranks"};
    printf("# iterations: %d  warm-up: %d  check: %d  time: %s\n", o->iters, o->warmup, check,
           how[o->timing]);
    if (o->check && !check) printf("# check off: the exact inputs need at most 64 ranks\n");
    free(all);
    return hosts;
}

/* ---- JSON and CSV (--json, --csv) ------------------------------------------------------------ */

/* One record per (size, placement): a table row gives one out-of-place and, where the
 * collective has one, one in-place record. */
typedef struct {
    bench_coll_t coll;
    size_t bytes, count;
    podcclDataType_t type;
    podcclRedOp_t op;
    int root, inplace;
    double us, algbw, busbw;
    long long wrong; /* -1: not checked */
    char algo[64];
} rec_t;

typedef struct {
    FILE *json, *csv;
    bench_info_t *info;
    char date[32], host[256], cpu[256], commit[64];
    int nhosts;
    rec_t *recs;
    size_t nrecs, cap;
} out_t;

/* A JSON string: quotes, backslashes and control characters escaped; other bytes as they are
 * (UTF-8 in, UTF-8 out). */
static void json_str(FILE *f, const char *s) {
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(f, "\\%c", *p);
        else if (*p == '\n')
            fputs("\\n", f);
        else if (*p == '\t')
            fputs("\\t", f);
        else if (*p < 0x20 || *p == 0x7f)
            fprintf(f, "\\u%04x", *p);
        else
            fputc(*p, f);
    }
    fputc('"', f);
}

/* A CSV field (RFC 4180): quoted when it holds a comma, quote or line break. */
static void csv_str(FILE *f, const char *s) {
    if (!strpbrk(s, ",\"\r\n")) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"') fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

/* Numbers as both files write them, so that they compare equal as text; finite always. */
static void num(FILE *f, double v) {
    fprintf(f, "%.9g", isfinite(v) ? v : 0.0);
}

static const char *rec_type(const rec_t *r) {
    return r->coll == BENCH_BARRIER ? "none" : bench_type_name(r->type);
}

static const char *rec_op(const rec_t *r) {
    return (colls[r->coll].flags & F_OP) ? bench_op_name(r->op) : "none";
}

/* The commit the binary was built from: -DPODCCL_GIT_COMMIT="abc123", else the environment's
 * PODCCL_BENCH_GIT_COMMIT, else `git rev-parse` in -DPODCCL_SRCDIR="..." when that is a checkout,
 * else "unknown". */
static void git_commit(char *buf, size_t len) {
#ifdef PODCCL_GIT_COMMIT
    snprintf(buf, len, "%s", PODCCL_GIT_COMMIT);
#else
    const char *e = getenv("PODCCL_BENCH_GIT_COMMIT");
    snprintf(buf, len, "%s", e && *e ? e : "unknown");
#ifdef PODCCL_SRCDIR
    struct stat st;
    if ((e && *e) || stat(PODCCL_SRCDIR "/.git", &st) != 0) return;
    FILE *p = popen("git -C '" PODCCL_SRCDIR "' rev-parse --short HEAD 2>/dev/null", "r");
    if (!p) return;
    char line[64] = "";
    if (fgets(line, sizeof line, p)) line[strcspn(line, "\r\n")] = '\0';
    if (pclose(p) == 0 && line[0]) snprintf(buf, len, "%s", line);
#endif
#endif
}

static void cpu_model(char *buf, size_t len) {
    buf[0] = '\0';
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        char *colon = strchr(line, ':');
        if (strncmp(line, "model name", 10) != 0 || !colon) continue;
        colon += 1 + (colon[1] == ' ');
        colon[strcspn(colon, "\n")] = '\0';
        snprintf(buf, len, "%s", colon);
        break;
    }
    fclose(f);
}

/* Rank 0: opens the files (before the sweep, so that a bad path costs no run) and gathers the
 * context. Returns 0, or -1 after printing why. */
static int out_open(const bench_opts_t *o, const bench_backend_t *b, out_t *out) {
    if (o->json && !(out->json = fopen(o->json, "w"))) {
        fprintf(stderr, "%s: --json %s: %s\n", b->prog, o->json, strerror(errno));
        return -1;
    }
    if (o->csv && !(out->csv = fopen(o->csv, "w"))) {
        fprintf(stderr, "%s: --csv %s: %s\n", b->prog, o->csv, strerror(errno));
        return -1;
    }
    if (!(out->info = calloc(1, sizeof *out->info))) {
        fprintf(stderr, "%s: out of memory\n", b->prog);
        return -1;
    }
    if (b->describe) b->describe(out->info);
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out->date, sizeof out->date, "%Y-%m-%dT%H:%M:%SZ", &tm);
    gethostname(out->host, sizeof out->host - 1);
    cpu_model(out->cpu, sizeof out->cpu);
    git_commit(out->commit, sizeof out->commit);
    return 0;
}

static void out_add(out_t *out, const bench_call_t *c, const pass_t *p, int inplace, int check,
                    const char *algo) {
    if (!p->valid) return; /* no in-place form: the table's N/A */
    if (out->nrecs == out->cap) {
        size_t cap = out->cap ? 2 * out->cap : 64;
        rec_t *r = realloc(out->recs, cap * sizeof *r);
        if (!r) {
            fprintf(stderr, "bench: out of memory for the records\n");
            exit(2);
        }
        out->recs = r;
        out->cap = cap;
    }
    rec_t *r = &out->recs[out->nrecs++];
    double bw = algbw(c, p->us);
    *r = (rec_t){.coll = c->coll,
                 .bytes = c->bytes,
                 .count = c->count,
                 .type = c->type,
                 .op = c->op,
                 .root = (colls[c->coll].flags & F_ROOT) ? c->root : -1,
                 .inplace = inplace,
                 .us = p->us,
                 .algbw = bw,
                 .busbw = bw * bus_factor(c->coll, c->nranks),
                 .wrong = check ? (long long)p->wrong : -1};
    snprintf(r->algo, sizeof r->algo, "%s", algo);
}

/* "float,double" for -d float,double; "none" where the collective takes none. */
static void list_names(FILE *f, const bench_opts_t *o, int ops, int json) {
    char buf[512] = "";
    size_t k = 0;
    int n = ops ? o->nops : o->ntypes;
    if (ops ? !(colls[o->coll].flags & F_OP) : o->coll == BENCH_BARRIER)
        snprintf(buf, sizeof buf, "none");
    else
        for (int i = 0; i < n && k < sizeof buf; i++)
            k += (size_t)snprintf(buf + k, sizeof buf - k, "%s%s", i ? "," : "",
                                  ops ? bench_op_name(o->ops[i]) : bench_type_name(o->types[i]));
    if (json)
        json_str(f, buf);
    else
        csv_str(f, buf);
}

static void write_json(FILE *f, const bench_opts_t *o, const bench_backend_t *b, const out_t *out,
                       const char *label) {
    const bench_info_t *in = out->info;
    fprintf(f, "{\"schema\": \"podccl-bench/1\",\n \"context\": {\"tool\": ");
    json_str(f, b->prog);
    fprintf(f, ", \"library\": ");
    json_str(f, in->library);
    fprintf(f, ", \"library_version\": ");
    json_str(f, in->version[0] ? in->version : "unknown");
    fprintf(f, ", \"git_commit\": ");
    json_str(f, out->commit);
    fprintf(f, ",\n  \"date\": ");
    json_str(f, out->date);
    fprintf(f, ", \"host\": ");
    json_str(f, out->host);
    fprintf(f, ", \"cpu\": ");
    json_str(f, out->cpu);
    fprintf(f, ", \"ncpus\": %ld, \"nranks\": %d, \"nhosts\": %d,\n  \"transports\": ",
            sysconf(_SC_NPROCESSORS_ONLN), b->nranks, out->nhosts);
    json_str(f, in->transports);
    fprintf(f, ",\n  \"topology\": ");
    json_str(f, in->topology);
    fprintf(f, ",\n  \"collective\": ");
    json_str(f, bench_coll_name(o->coll));
    fprintf(f, ", \"dtype\": ");
    list_names(f, o, 0, 1);
    fprintf(f, ", \"op\": ");
    list_names(f, o, 1, 1);
    fprintf(f, ", \"root\": %d, \"iterations\": %d, \"warmup\": %d, \"label\": ",
            (colls[o->coll].flags & F_ROOT) ? o->root : -1, o->iters, o->warmup);
    json_str(f, label);
    fprintf(f, ", \"ceiling_gbps\": null},\n \"records\": [");
    for (size_t i = 0; i < out->nrecs; i++) {
        const rec_t *r = &out->recs[i];
        fprintf(f, "%s\n  {\"collective\": ", i ? "," : "");
        json_str(f, bench_coll_name(r->coll));
        fprintf(f, ", \"size_bytes\": %zu, \"count\": %zu, \"dtype\": ", r->bytes, r->count);
        json_str(f, rec_type(r));
        fprintf(f, ", \"op\": ");
        json_str(f, rec_op(r));
        fprintf(f, ", \"root\": %d, \"in_place\": %s, \"time_us\": ", r->root,
                r->inplace ? "true" : "false");
        num(f, r->us);
        fprintf(f, ", \"algbw_gbps\": ");
        num(f, r->algbw);
        fprintf(f, ", \"busbw_gbps\": ");
        num(f, r->busbw);
        fprintf(f, ", \"wrong\": %lld, \"algorithm\": ", r->wrong);
        json_str(f, r->algo);
        fputc('}', f);
    }
    fprintf(f, "\n ]}\n");
}

static void write_csv(FILE *f, const bench_backend_t *b, const out_t *out, const char *label) {
    fprintf(f, "tool,library,library_version,git_commit,date,host,nranks,nhosts,label,"
               "collective,size_bytes,count,dtype,op,root,in_place,time_us,algbw_gbps,busbw_gbps,"
               "wrong,algorithm\n");
    const bench_info_t *in = out->info;
    for (size_t i = 0; i < out->nrecs; i++) {
        const rec_t *r = &out->recs[i];
        const char *ctx[] = {b->prog,     in->library, in->version[0] ? in->version : "unknown",
                             out->commit, out->date,   out->host};
        for (size_t k = 0; k < sizeof ctx / sizeof ctx[0]; k++) {
            csv_str(f, ctx[k]);
            fputc(',', f);
        }
        fprintf(f, "%d,%d,", b->nranks, out->nhosts);
        csv_str(f, label);
        fprintf(f, ",%s,%zu,%zu,%s,%s,%d,%s,", bench_coll_name(r->coll), r->bytes, r->count,
                rec_type(r), rec_op(r), r->root, r->inplace ? "true" : "false");
        num(f, r->us);
        fputc(',', f);
        num(f, r->algbw);
        fputc(',', f);
        num(f, r->busbw);
        fprintf(f, ",%lld,", r->wrong);
        csv_str(f, r->algo);
        fputc('\n', f);
    }
}

/* Rank 0: writes and closes the files. Returns 0, or 2 after printing why. */
static int out_close(const bench_opts_t *o, const bench_backend_t *b, out_t *out) {
    const char *label = o->label ? o->label : out->info->library;
    int rc = 0;
    if (out->json) {
        write_json(out->json, o, b, out, label);
        if (ferror(out->json) | fclose(out->json)) {
            fprintf(stderr, "%s: --json %s: write failed\n", b->prog, o->json);
            rc = 2;
        }
    }
    if (out->csv) {
        write_csv(out->csv, b, out, label);
        if (ferror(out->csv) | fclose(out->csv)) {
            fprintf(stderr, "%s: --csv %s: write failed\n", b->prog, o->csv);
            rc = 2;
        }
    }
    free(out->recs);
    free(out->info);
    return rc;
}

/* ---- The sweep ------------------------------------------------------------------------------- */

typedef struct {
    const bench_opts_t *o;
    const bench_backend_t *b;
    char *a, *bb;
    int check;
    uint64_t rows, wrong;
    double busbw_sum;
    int busbw_n;
    out_t *out; /* rank 0 with --json or --csv; else NULL */
} sweep_t;

static void run_row(sweep_t *s, bench_call_t *c) {
    pass_t out = {0}, in = {0};
    uint64_t salt = 2 * ++s->rows; /* differs per row and pass: stale results are caught */
    if (s->b->prepare) s->b->prepare(c);
    measure(s->o, s->b, c, s->a, s->bb, 0, salt, &out);
    if (colls[c->coll].flags & F_INPLACE) measure(s->o, s->b, c, s->a, s->bb, 1, salt + 1, &in);
    s->wrong += out.wrong + in.wrong;
    if (c->rank != 0) return;
    /* As nccl-tests: the average runs over out-of-place and in-place rows alike. */
    double factor = bus_factor(c->coll, c->nranks);
    s->busbw_sum += algbw(c, out.us) * factor + (in.valid ? algbw(c, in.us) * factor : 0.0);
    s->busbw_n += 1 + in.valid;
    unsigned f = colls[c->coll].flags;
    printf("  %10zu  %12zu  %8s  %6s  %6d", c->bytes, c->count,
           c->coll == BENCH_BARRIER ? "none" : bench_type_name(c->type),
           (f & F_OP) ? bench_op_name(c->op) : "none", (f & F_ROOT) ? c->root : -1);
    print_pass(&out, c, s->check);
    print_pass(&in, c, s->check);
    printf("\n");
    fflush(stdout);
    if (s->out) {
        char algo[64] = "";
        if (s->b->algorithm) s->b->algorithm(c, algo, sizeof algo);
        out_add(s->out, c, &out, 0, s->check, algo);
        out_add(s->out, c, &in, 1, s->check, algo);
    }
}

static void sweep_sizes(sweep_t *s, bench_call_t *c) {
    const bench_opts_t *o = s->o;
    int first = 1;
    size_t prev = 0;
    for (size_t raw = o->minbytes;;) {
        layout(c, raw);
        /* Rounding can map several requested sizes to one; print each size once, and size 0
         * only when asked for with -b 0. */
        if ((c->bytes > 0 || o->minbytes == 0) && (first || c->bytes != prev)) {
            run_row(s, c);
            first = 0;
            prev = c->bytes;
        }
        double next = (double)raw * o->stepfactor;
        if (next > (double)o->maxbytes) break;
        raw = (size_t)next > raw ? (size_t)next : raw + 1;
        if (raw > o->maxbytes) break;
    }
}

/* Checks every type/op against the backend; "all" skips what it lacks, an explicit request
 * fails. */
static int check_supported(const bench_opts_t *o, const bench_backend_t *b, int *skip_t,
                           int *skip_op) {
    int has_op = (colls[o->coll].flags & F_OP) != 0;
    for (int i = 0; i < o->ntypes; i++) {
        const char *why = b->unsupported(o->types[i], podcclSum);
        skip_t[i] = why != NULL;
        if (why && !o->types_all) {
            if (b->rank == 0)
                fprintf(stderr, "%s: type %s: %s\n", b->prog, bench_type_name(o->types[i]), why);
            return 2;
        }
    }
    for (int i = 0; i < o->nops; i++) {
        const char *why = has_op ? b->unsupported(podcclFloat32, o->ops[i]) : NULL;
        skip_op[i] = why != NULL || (!has_op && i > 0); /* without an op, run once */
        if (why && !o->ops_all) {
            if (b->rank == 0)
                fprintf(stderr, "%s: op %s: %s\n", b->prog, bench_op_name(o->ops[i]), why);
            return 2;
        }
    }
    if ((colls[o->coll].flags & F_ROOT) && o->root >= b->nranks) {
        if (b->rank == 0)
            fprintf(stderr, "%s: root %d out of range (nranks %d)\n", b->prog, o->root, b->nranks);
        return 2;
    }
    return 0;
}

int bench_run(const bench_opts_t *o, const bench_backend_t *b) {
    int skip_t[BENCH_MAX_TYPES], skip_op[BENCH_MAX_OPS];
    int rc = check_supported(o, b, skip_t, skip_op);
    if (rc) return rc;
    int n = b->nranks;
    sweep_t s = {.o = o, .b = b, .check = o->check && n <= 64};
    /* Every layout fits in maxbytes (sizes only round down); one page at least so that buffers
     * are never NULL, and page-aligned like a fresh cudaMalloc would be. */
    size_t max = o->coll == BENCH_BARRIER ? 0 : o->maxbytes;
    size_t cap = (max + 4095) / 4096 * 4096 + 4096;
    s.a = aligned_alloc(4096, cap);
    s.bb = aligned_alloc(4096, cap);
    size_t *v = calloc(4 * (size_t)n, sizeof *v);
    if (!s.a || !s.bb || !v) {
        fprintf(stderr, "%s: rank %d: cannot allocate 2 x %zu bytes\n", b->prog, b->rank, cap);
        exit(2);
    }
    memset(s.a, 0, cap); /* fault the pages in before any timing */
    memset(s.bb, 0, cap);
    /* Every rank learns whether rank 0 could open the files, so that all stop together. */
    out_t out = {0};
    if (o->json || o->csv) {
        int bad = b->rank == 0 && out_open(o, b, &out) != 0;
        if (b->sum_u64((uint64_t)bad) != 0) {
            if (out.json) fclose(out.json);
            if (out.csv) fclose(out.csv);
            free(out.info);
            free(v);
            free(s.a);
            free(s.bb);
            return 2;
        }
        if (b->rank == 0) s.out = &out;
    }
    out.nhosts = print_run_header(o, b, s.check);
    if (b->rank == 0) print_table_header();

    bench_call_t c = {.coll = o->coll,
                      .root = o->root,
                      .rank = b->rank,
                      .nranks = n,
                      .scounts = v,
                      .sdispls = v + n,
                      .rcounts = v + 2 * n,
                      .rdispls = v + 3 * n};
    if (o->coll == BENCH_BARRIER) { /* no data: one row */
        c.type = podcclUint8;
        layout(&c, 0);
        run_row(&s, &c);
    } else {
        for (int ti = 0; ti < o->ntypes; ti++)
            for (int oi = 0; oi < o->nops; oi++) {
                if (skip_t[ti] || skip_op[oi]) continue;
                c.type = o->types[ti];
                c.op = o->ops[oi];
                sweep_sizes(&s, &c);
            }
    }
    if (b->rank == 0) {
        printf("# Out of bounds values : %llu %s\n", (unsigned long long)s.wrong,
               s.wrong ? "FAILED" : "OK");
        printf("# Avg bus bandwidth    : %g\n#\n", s.busbw_n ? s.busbw_sum / s.busbw_n : 0.0);
        fflush(stdout);
    }
    int orc = s.out ? out_close(o, b, s.out) : 0;
    free(v);
    free(s.a);
    free(s.bb);
    return orc ? orc : s.wrong ? 1 : 0;
}
