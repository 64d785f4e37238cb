/* mpi-bench: the ccl-bench sweep, columns and check run on Open MPI's collectives, so that
 * side-by-side.sh can compare the two libraries line by line. Run it under mpirun. */
#include <limits.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_common.h"

static int g_rank;
static int *g_a2av; /* alltoallv counts and displacements as MPI's ints: 4 x nranks */

static void mpi_check(int err, const char *call) {
    if (err == MPI_SUCCESS) return;
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(err, msg, &len);
    fprintf(stderr, "rank %d: %s failed: %s\n", g_rank, call, msg);
    MPI_Abort(MPI_COMM_WORLD, 2);
}
#define MK(call) mpi_check((call), #call)

/* MPI counts are int: a size beyond that is a usage error, not a silent truncation. */
static int icount(size_t n) {
    if (n <= INT_MAX) return (int)n;
    fprintf(stderr, "rank %d: count %zu does not fit MPI's int\n", g_rank, n);
    MPI_Abort(MPI_COMM_WORLD, 2);
    return 0;
}

static MPI_Datatype mpi_type(podcclDataType_t t) {
    switch (t) {
    case podcclInt8:
        return MPI_INT8_T;
    case podcclUint8:
        return MPI_UINT8_T;
    case podcclInt32:
        return MPI_INT32_T;
    case podcclUint32:
        return MPI_UINT32_T;
    case podcclInt64:
        return MPI_INT64_T;
    case podcclUint64:
        return MPI_UINT64_T;
    case podcclFloat32:
        return MPI_FLOAT;
    case podcclFloat64:
        return MPI_DOUBLE;
    default:
        return MPI_DATATYPE_NULL;
    }
}

static MPI_Op mpi_op(podcclRedOp_t op) {
    switch (op) {
    case podcclSum:
        return MPI_SUM;
    case podcclProd:
        return MPI_PROD;
    case podcclMax:
        return MPI_MAX;
    case podcclMin:
        return MPI_MIN;
    default:
        return MPI_OP_NULL;
    }
}

static const char *mpi_unsupported(podcclDataType_t t, podcclRedOp_t op) {
    if (mpi_type(t) == MPI_DATATYPE_NULL) return "MPI has no such datatype";
    if (mpi_op(op) == MPI_OP_NULL) return "MPI has no such reduction op";
    return NULL;
}

static void mpi_prepare(const bench_call_t *c) {
    if (c->coll != BENCH_ALLTOALLV) return;
    int n = c->nranks;
    for (int p = 0; p < n; p++) {
        g_a2av[p] = icount(c->scounts[p]);
        g_a2av[n + p] = icount(c->sdispls[p]);
        g_a2av[2 * n + p] = icount(c->rcounts[p]);
        g_a2av[3 * n + p] = icount(c->rdispls[p]);
    }
}

/* In place, MPI's layouts differ from NCCL's in two places, and the result pointer says so:
 * MPI_Reduce_scatter_block leaves the block at the start of the buffer, and MPI_Bcast has only
 * an in-place form, so the root's "result" is its send buffer. */
static const void *mpi_run(const bench_call_t *c) {
    MPI_Comm w = MPI_COMM_WORLD;
    MPI_Datatype dt = mpi_type(c->type);
    int cnt = icount(c->count), n = c->nranks, *v = g_a2av;
    void *in = c->inplace ? MPI_IN_PLACE : c->send;
    switch (c->coll) {
    case BENCH_ALLREDUCE:
        MK(MPI_Allreduce(in, c->recv, cnt, dt, mpi_op(c->op), w));
        break;
    case BENCH_ALLGATHER:
        MK(MPI_Allgather(in, cnt, dt, c->recv, cnt, dt, w));
        break;
    case BENCH_REDUCESCATTER:
        MK(MPI_Reduce_scatter_block(in, c->inplace ? c->send : c->recv, cnt, dt, mpi_op(c->op), w));
        return c->inplace ? c->send : c->recv;
    case BENCH_BROADCAST: {
        void *buf = !c->inplace && c->rank == c->root ? c->send : c->recv;
        MK(MPI_Bcast(buf, cnt, dt, c->root, w));
        return buf;
    }
    case BENCH_REDUCE:
        MK(MPI_Reduce(c->inplace && c->rank == c->root ? MPI_IN_PLACE : c->send, c->recv, cnt, dt,
                      mpi_op(c->op), c->root, w));
        break;
    case BENCH_ALLTOALL:
        MK(MPI_Alltoall(in, cnt, dt, c->recv, cnt, dt, w));
        break;
    case BENCH_ALLTOALLV:
        MK(MPI_Alltoallv(c->send, v, v + n, dt, c->recv, v + 2 * n, v + 3 * n, dt, w));
        break;
    case BENCH_SENDRECV:
        MK(MPI_Sendrecv(c->send, cnt, dt, (c->rank + 1) % n, 0, c->recv, cnt, dt,
                        (c->rank + n - 1) % n, 0, w, MPI_STATUS_IGNORE));
        break;
    default:
        MK(MPI_Barrier(w));
        break;
    }
    return c->recv;
}

static void mpi_barrier(void) {
    MK(MPI_Barrier(MPI_COMM_WORLD));
}

static double mpi_reduce_double(double v, bench_red_t how) {
    MPI_Op op = how == BENCH_RED_MIN ? MPI_MIN : how == BENCH_RED_MAX ? MPI_MAX : MPI_SUM;
    double out;
    MK(MPI_Allreduce(&v, &out, 1, MPI_DOUBLE, op, MPI_COMM_WORLD));
    return out;
}

static uint64_t mpi_sum_u64(uint64_t v) {
    uint64_t out;
    MK(MPI_Allreduce(&v, &out, 1, MPI_UINT64_T, MPI_SUM, MPI_COMM_WORLD));
    return out;
}

static void mpi_allgather_bytes(const void *send, void *recv, size_t bytes) {
    MK(MPI_Allgather(send, icount(bytes), MPI_BYTE, recv, icount(bytes), MPI_BYTE, MPI_COMM_WORLD));
}

static void mpi_print_header(FILE *f) {
    char lib[MPI_MAX_LIBRARY_VERSION_STRING];
    int len = 0;
    MPI_Get_library_version(lib, &len);
    lib[strcspn(lib, "\n")] = '\0'; /* first line only: the rest is build details */
    fprintf(f, "# MPI: %s\n# transport: chosen by MPI\n", lib);
}

/* --json/--csv context: the library's name and version from its version string: "Open MPI
 * v4.1.4, package: ..." or "MPICH Version:      4.0.2\n..."; else the first line as the name.
 * MPI says nothing about its transports or topology: those stay "". */
static void mpi_describe(bench_info_t *info) {
    char lib[MPI_MAX_LIBRARY_VERSION_STRING];
    int len = 0;
    MPI_Get_library_version(lib, &len);
    const char *p;
    if (strncmp(lib, "Open MPI v", 10) == 0) {
        snprintf(info->library, sizeof info->library, "Open MPI");
        p = lib + 10;
    } else if ((p = strstr(lib, "MPICH Version:")) != NULL) {
        snprintf(info->library, sizeof info->library, "MPICH");
        p += strlen("MPICH Version:");
        p += strspn(p, " \t");
    } else {
        snprintf(info->library, sizeof info->library, "%.*s", (int)strcspn(lib, ",\n"), lib);
        return;
    }
    snprintf(info->version, sizeof info->version, "%.*s", (int)strcspn(p, ", \t\n"), p);
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    bench_backend_t b = {.prog = "mpi-bench",
                         .unsupported = mpi_unsupported,
                         .prepare = mpi_prepare,
                         .run = mpi_run,
                         .barrier = mpi_barrier,
                         .reduce_double = mpi_reduce_double,
                         .sum_u64 = mpi_sum_u64,
                         .allgather_bytes = mpi_allgather_bytes,
                         .print_header = mpi_print_header,
                         .describe = mpi_describe};
    MPI_Comm_rank(MPI_COMM_WORLD, &b.rank);
    MPI_Comm_size(MPI_COMM_WORLD, &b.nranks);
    g_rank = b.rank;
    bench_opts_t o;
    int rc = bench_parse(argc, argv, &o, b.rank == 0 ? 0u : BENCH_QUIET);
    if (rc == 0) {
        g_a2av = calloc(4 * (size_t)b.nranks, sizeof *g_a2av);
        if (!g_a2av) MK(MPI_ERR_NO_MEM);
        rc = bench_run(&o, &b);
        free(g_a2av);
    } else {
        rc = rc == 1 ? 0 : 2;
    }
    MPI_Finalize();
    return rc;
}
