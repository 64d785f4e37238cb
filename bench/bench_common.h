/* Shared by ccl-bench (podccl) and mpi-bench (Open MPI): options, the size sweep, buffer layouts,
 * busbw factors, the exact-input check and the nccl-tests row printer. Each binary supplies only
 * a backend (a table of functions below) that runs one collective on its library, so both print
 * the same columns from the same code and a script can compare them line by line. */
#ifndef BENCH_COMMON_H
#define BENCH_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "podccl.h" /* datatype and op enums only; mpi-bench does not link libpodccl */

typedef enum {
    BENCH_ALLREDUCE,
    BENCH_ALLGATHER,
    BENCH_REDUCESCATTER,
    BENCH_BROADCAST,
    BENCH_REDUCE,
    BENCH_ALLTOALL,
    BENCH_ALLTOALLV,
    BENCH_SENDRECV,
    BENCH_BARRIER,
    BENCH_NCOLLS
} bench_coll_t;

/* How -a combines the ranks' times. */
typedef enum { BENCH_TIME_RANK0, BENCH_TIME_MEAN, BENCH_TIME_MIN, BENCH_TIME_MAX } bench_time_t;

/* Reductions a backend offers on one double (combining times). */
typedef enum { BENCH_RED_SUM, BENCH_RED_MIN, BENCH_RED_MAX } bench_red_t;

#define BENCH_MAX_TYPES podcclNumTypes
#define BENCH_MAX_OPS podcclNumOps

typedef struct {
    bench_coll_t coll;
    size_t minbytes, maxbytes;
    double stepfactor;
    int iters, warmup;
    int ntypes, nops;
    podcclDataType_t types[BENCH_MAX_TYPES];
    podcclRedOp_t ops[BENCH_MAX_OPS];
    int types_all, ops_all; /* "all" given: skip what the backend lacks instead of failing */
    int root;
    int check;
    bench_time_t timing;
    const char *algo; /* -A, ccl-bench only */
    int np;           /* -np, ccl-bench only; 0 when not given */
    /* --json FILE, --csv FILE, --label TEXT: machine-readable copies of the table, written by
     * rank 0 in the podccl-bench/1 format (bench/schema/podccl-bench.schema.json). NULL if not
     * given; label NULL means the library's name. */
    const char *json, *csv, *label;
} bench_opts_t;

/* Flags for bench_parse: which backend-specific options the binary accepts. */
#define BENCH_ALLOW_NP 1u
#define BENCH_ALLOW_ALGO 2u
#define BENCH_QUIET 4u /* print nothing: for ranks other than 0 under mpirun */

/* Parses argv. Returns 0 to run, 1 after printing help (exit 0), 2 after printing an error to
 * stderr (exit 2). Every rank parses the same argv; pass BENCH_QUIET on all but one so that help
 * and errors are printed once. */
int bench_parse(int argc, char **argv, bench_opts_t *o, unsigned allow);

const char *bench_coll_name(bench_coll_t c);
const char *bench_type_name(podcclDataType_t t);
const char *bench_op_name(podcclRedOp_t op);

/* One call of a collective as both libraries see it. Counts are in elements. */
typedef struct {
    bench_coll_t coll;
    podcclDataType_t type;
    podcclRedOp_t op;
    int root, rank, nranks;
    size_t count;     /* the count column: per-rank count as nccl-tests prints it */
    size_t bytes;     /* the size column: whole buffer (busiest rank for alltoallv) */
    size_t sendcount; /* elements read from send */
    size_t recvcount; /* elements written to recv */
    void *send, *recv;
    int inplace;
    /* alltoallv only: nranks entries each; `unit` scales the (rank, peer) weights. */
    size_t *scounts, *sdispls, *rcounts, *rdispls;
    size_t unit;
} bench_call_t;

/* What --json and --csv say about the library and the machine it runs on. */
typedef struct {
    char library[64]; /* "podccl", "Open MPI", "MPICH" */
    char version[64]; /* "0.1.0", "4.1.4" */
    char transports[1024];
    char topology[16384];
} bench_info_t;

/* What a library has to provide. Every function either succeeds or prints an error naming the
 * rank and exits(2): a benchmark cannot continue past a failed collective. */
typedef struct {
    const char *prog; /* "ccl-bench" / "mpi-bench" */
    int rank, nranks;
    /* NULL if this type/op is supported, else a static reason ("MPI has no such datatype"). */
    const char *(*unsupported)(podcclDataType_t t, podcclRedOp_t op);
    /* Optional: called once per row before timing (e.g. to convert alltoallv counts). */
    void (*prepare)(const bench_call_t *c);
    /* Runs c once and returns where the result landed: c->recv, unless the library's in-place
     * layout differs (MPI_Reduce_scatter_block in place leaves it at the start of the buffer). */
    const void *(*run)(const bench_call_t *c);
    void (*barrier)(void);
    double (*reduce_double)(double v, bench_red_t how);
    uint64_t (*sum_u64)(uint64_t v);
    void (*allgather_bytes)(const void *send, void *recv, size_t bytes);
    /* Rank 0 only: the '#' lines naming the library, its version and transport. */
    void (*print_header)(FILE *f);
    /* Optional, rank 0 only, called once when --json or --csv is given: fills the context of
     * those files. Fields left empty are written as "" (library_version "" reads "unknown"). */
    void (*describe)(bench_info_t *info);
    /* Optional, rank 0 only, once per row for --json/--csv: the algorithm the library runs for
     * c, written into buf ("" when unknown). */
    void (*algorithm)(const bench_call_t *c, char *buf, size_t len);
} bench_backend_t;

/* Runs the whole sweep of o on backend b and prints the table on rank 0. Returns the exit code:
 * 0, 1 if any element was wrong (on every rank: the count is summed across ranks), or 2 for a
 * usage error found after start-up (type/op the backend lacks). */
int bench_run(const bench_opts_t *o, const bench_backend_t *b);

/* "64M", "8", "1K": bytes (K/M/G are 1024s, an optional trailing B); 0 on success, -1 on
 * anything else. */
int bench_parse_size(const char *s, size_t *out);

#endif
