/* Cross-check with MPI: run under mpirun (see run_mpi.sh). The podccl communicator comes from
 * podcclCommInitFromEnv (mpirun's OMPI_COMM_WORLD_* or PMI_*, PODCCL_COMM_ID from the script).
 * Each collective MPI also has runs on the same exact inputs (refcheck values) in both libraries,
 * and the results must agree bit for bit (MPI's result is also held against refcheck). */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "refcheck.h"

static const struct {
    podcclDataType_t p;
    MPI_Datatype m;
    const char *name;
} types[] = {{podcclInt8, MPI_INT8_T, "int8"},    {podcclUint8, MPI_UINT8_T, "uint8"},
             {podcclInt32, MPI_INT32_T, "int32"}, {podcclUint32, MPI_UINT32_T, "uint32"},
             {podcclInt64, MPI_INT64_T, "int64"}, {podcclUint64, MPI_UINT64_T, "uint64"},
             {podcclFloat32, MPI_FLOAT, "float"}, {podcclFloat64, MPI_DOUBLE, "double"}};
static const MPI_Op mpi_ops[] = {MPI_SUM, MPI_PROD, MPI_MAX, MPI_MIN}; /* podccl op order */
static const char *const op_names[] = {"sum", "prod", "max", "min"};

typedef struct {
    podcclComm_t comm;
    int rank, n, ti, fails;
    uint64_t salt;
} ctx;

static void *xalloc(size_t bytes) {
    void *p = malloc(bytes ? bytes : 1);
    if (!p) MPI_Abort(MPI_COMM_WORLD, 2);
    return p;
}

/* podccl's result (got) against MPI's (want), and MPI's against the reference when known. */
static void compare(ctx *c, const char *coll, int op, int root, size_t count, const void *got,
                    const void *want, size_t elems, int reduced) {
    podcclDataType_t t = types[c->ti].p;
    size_t es = rc_type_size(t), i = 0;
    while (i < elems && !memcmp((const char *)got + i * es, (const char *)want + i * es, es)) i++;
    size_t ref_bad = reduced ? rc_check_reduced(want, elems, t, (podcclRedOp_t)op, c->n,
                                                reduced == 2 ? (size_t)c->rank * count : 0, c->salt)
                             : 0;
    if (i == elems && !ref_bad) return;
    c->fails++;
    fprintf(stderr, "rank %d: %s %s %s root %d count %zu: ", c->rank, coll, types[c->ti].name,
            op >= 0 ? op_names[op] : "-", root, count);
    if (i < elems)
        fprintf(stderr, "podccl differs from MPI at element %zu: %g vs %g\n", i, rc_load(got, i, t),
                rc_load(want, i, t));
    else
        fprintf(stderr, "MPI's result disagrees with refcheck in %zu elements\n", ref_bad);
}

static int ok(ctx *c, podcclResult_t rc, const char *what) {
    if (rc == podcclSuccess) return 1;
    fprintf(stderr, "rank %d: %s: %s: %s\n", c->rank, what, podcclGetErrorString(rc),
            podcclGetLastError(c->comm));
    MPI_Abort(MPI_COMM_WORLD, 1);
    return 0;
}

/* Reductions: all-reduce, reduce-scatter-block and reduce at every root, for every op. */
static void reductions(ctx *c, size_t count) {
    podcclDataType_t t = types[c->ti].p;
    MPI_Datatype mt = types[c->ti].m;
    size_t es = rc_type_size(t), total = count * (size_t)c->n;
    char *in = xalloc(total * es), *a = xalloc(total * es), *b = xalloc(total * es);
    for (int op = 0; op < 4; op++) {
        c->salt++;
        rc_fill(in, total, t, (podcclRedOp_t)op, c->rank, c->n, 0, c->salt);
        ok(c, podcclAllReduce(in, a, count, t, op, c->comm, NULL), "allreduce");
        MPI_Allreduce(in, b, (int)count, mt, mpi_ops[op], MPI_COMM_WORLD);
        compare(c, "allreduce", op, -1, count, a, b, count, 1);
        ok(c, podcclReduceScatter(in, a, count, t, op, c->comm, NULL), "reducescatter");
        MPI_Reduce_scatter_block(in, b, (int)count, mt, mpi_ops[op], MPI_COMM_WORLD);
        compare(c, "reduce_scatter_block", op, -1, count, a, b, count, 2);
        for (int root = 0; root < c->n; root++) {
            ok(c, podcclReduce(in, a, count, t, op, root, c->comm, NULL), "reduce");
            MPI_Reduce(in, b, (int)count, mt, mpi_ops[op], root, MPI_COMM_WORLD);
            if (c->rank == root) compare(c, "reduce", op, root, count, a, b, count, 1);
        }
    }
    free(in), free(a), free(b);
}

/* Data movement: all-gather, broadcast at every root, all-to-all, all-to-all-v. */
static void movement(ctx *c, size_t count) {
    podcclDataType_t t = types[c->ti].p;
    MPI_Datatype mt = types[c->ti].m;
    size_t es = rc_type_size(t), total = count * (size_t)c->n * 2;
    char *in = xalloc(total * es), *a = xalloc(total * es), *b = xalloc(total * es);
    int ic = (int)count, sc[64], sd[64], rc[64], rd[64];
    size_t zsc[64], zsd[64], zrc[64], zrd[64], so = 0, ro = 0;
    c->salt++;
    rc_fill(in, total, t, podcclMax, c->rank, c->n, 0, c->salt);
    ok(c, podcclAllGather(in, a, count, t, c->comm, NULL), "allgather");
    MPI_Allgather(in, ic, mt, b, ic, mt, MPI_COMM_WORLD);
    compare(c, "allgather", -1, -1, count, a, b, count * c->n, 0);
    for (int root = 0; root < c->n; root++) {
        memcpy(b, in, count * es);
        ok(c, podcclBroadcast(in, a, count, t, root, c->comm, NULL), "broadcast");
        MPI_Bcast(b, ic, mt, root, MPI_COMM_WORLD);
        compare(c, "bcast", -1, root, count, a, b, count, 0);
    }
    ok(c, podcclAllToAll(in, a, count, t, c->comm, NULL), "alltoall");
    MPI_Alltoall(in, ic, mt, b, ic, mt, MPI_COMM_WORLD);
    compare(c, "alltoall", -1, -1, count, a, b, count * c->n, 0);
    for (int p = 0; p < c->n; p++) { /* uneven counts, zeros included */
        sc[p] = (int)((size_t)((c->rank * 7 + p * 3) % 4) * count / 2);
        rc[p] = (int)((size_t)((p * 7 + c->rank * 3) % 4) * count / 2);
        zsc[p] = (size_t)sc[p], zrc[p] = (size_t)rc[p], zsd[p] = so, zrd[p] = ro;
        sd[p] = (int)so, rd[p] = (int)ro, so += zsc[p], ro += zrc[p];
    }
    memset(a, 0, ro * es), memset(b, 0, ro * es);
    ok(c, podcclAllToAllv(in, zsc, zsd, a, zrc, zrd, t, c->comm, NULL), "alltoallv");
    MPI_Alltoallv(in, sc, sd, mt, b, rc, rd, mt, MPI_COMM_WORLD);
    compare(c, "alltoallv", -1, -1, count, a, b, ro, 0);
    free(in), free(a), free(b);
}

int main(int argc, char **argv) {
    ctx c = {0};
    int total = 0;
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &c.rank);
    MPI_Comm_size(MPI_COMM_WORLD, &c.n);
    if (c.n > 64) MPI_Abort(MPI_COMM_WORLD, 2);
    podcclResult_t rc = podcclCommInitFromEnv(&c.comm, NULL);
    if (rc != podcclSuccess) {
        fprintf(stderr, "rank %d: podcclCommInitFromEnv: %s: %s\n", c.rank,
                podcclGetErrorString(rc), podcclGetLastError(NULL));
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    for (c.ti = 0; c.ti < (int)(sizeof(types) / sizeof(types[0])); c.ti++) {
        size_t es = rc_type_size(types[c.ti].p);
        size_t counts[] = {1, 7, 1003, 65536 / es + 3, 1100003 / es};
        for (int k = 0; k < 5; k++) {
            reductions(&c, counts[k]);
            movement(&c, counts[k]);
        }
    }
    podcclCommDestroy(c.comm);
    MPI_Allreduce(&c.fails, &total, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    if (c.rank == 0)
        printf("test_mpi: %d ranks, %llu input sets, %d mismatches: %s\n", c.n,
               (unsigned long long)c.salt, total, total ? "FAIL" : "PASS");
    MPI_Finalize();
    return total != 0;
}
