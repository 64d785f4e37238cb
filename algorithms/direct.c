/* One-shot collectives for a domain with memory semantics (the ranks of one host): each rank
 * writes its input into its own direct buffer and publishes the operation's sequence number;
 * every rank then reads what it needs straight from its peers' buffers (the small-message
 * design of Open MPI XHC and MPICH's shared-memory collectives). No data crosses a FIFO, and a
 * rank waits only for the peers whose data it reads.
 *
 * Reuse: two buffers alternate by sequence parity, so before writing operation seq a rank waits
 * until every peer finished reading operation seq-2 from the same buffer. */
#include "algorithms/algo.h"
#include "src/comm.h"
#include "transports/shm/shm.h"

size_t direct_bytes_needed(const pc_args *a, int n) {
    size_t es = pc_type_size(a->dtype);
    switch (a->coll) {
    case PC_ALLREDUCE:
    case PC_REDUCE:
    case PC_ALLGATHER:
    case PC_BROADCAST: return a->count * es;
    case PC_REDUCESCATTER:
    case PC_ALLTOALL: return a->count * es * (size_t)n;
    case PC_BARRIER: return 0;
    default: return (size_t)-1;
    }
}

static podcclResult_t wait_all(podcclComm_t comm, int done, uint64_t seq) {
    for (int i = 0; i < comm->nranks; i++)
        if (i != comm->rank) PCCHECK(shm_direct_wait(comm, i, done, seq));
    return podcclSuccess;
}

podcclResult_t direct_run(podcclComm_t comm, const pc_args *a) {
    int n = comm->nranks, me = comm->rank;
    size_t es = pc_type_size(a->dtype), bytes = direct_bytes_needed(a, n);
    uint64_t seq = ++comm->direct_seq;
    if (seq > 2) PCCHECK(wait_all(comm, 1, seq - 2));
    char *mine = shm_direct_buf(comm, me, seq);
    int writes = a->coll != PC_BARRIER && (a->coll != PC_BROADCAST || me == a->root);
    if (writes && bytes) memcpy(mine, a->sendbuff, bytes);
    shm_direct_post(comm, seq);

    const char *srcs[64];
    const char **src = n <= 64 ? srcs : malloc(sizeof(char *) * (size_t)n);
    if (!src) return pc_err(comm, podcclSystemError, "out of memory");
    podcclResult_t res = podcclSuccess;
    switch (a->coll) {
    case PC_REDUCE:
        if (me != a->root) break;
        /* fall through */
    case PC_ALLREDUCE:
    case PC_REDUCESCATTER: {
        size_t off = a->coll == PC_REDUCESCATTER ? (size_t)me * a->count * es : 0;
        PCCHECKGOTO(wait_all(comm, 0, seq), res, out);
        /* Same source order on every rank: identical bits everywhere, also for floats. */
        for (int i = 0; i < n; i++) src[i] = shm_direct_buf(comm, i, seq) + off;
        if (a->count) pc_reduce_n(a->recvbuff, (const void *const *)src, n, a->count, a->dtype, a->op);
        break;
    }
    case PC_ALLGATHER:
        for (int i = 0; i < n; i++) {
            if (i != me) PCCHECKGOTO(shm_direct_wait(comm, i, 0, seq), res, out);
            memcpy((char *)a->recvbuff + (size_t)i * bytes, shm_direct_buf(comm, i, seq), bytes);
        }
        break;
    case PC_ALLTOALL: {
        size_t B = a->count * es;
        for (int i = 0; i < n; i++) {
            if (i != me) PCCHECKGOTO(shm_direct_wait(comm, i, 0, seq), res, out);
            memcpy((char *)a->recvbuff + (size_t)i * B, shm_direct_buf(comm, i, seq) + (size_t)me * B, B);
        }
        break;
    }
    case PC_BROADCAST:
        if (me != a->root) PCCHECKGOTO(shm_direct_wait(comm, a->root, 0, seq), res, out);
        if (bytes && a->recvbuff != shm_direct_buf(comm, a->root, seq))
            memmove(a->recvbuff, shm_direct_buf(comm, a->root, seq), bytes);
        break;
    case PC_BARRIER: PCCHECKGOTO(wait_all(comm, 0, seq), res, out); break;
    default: res = pc_err(comm, podcclInternalError, "direct: collective %d unsupported", a->coll);
    }
    shm_direct_done(comm, seq);
out:
    if (src != srcs) free(src);
    return res;
}
