/* What an application may ask of a communicator: its size and rank, memory, transports,
 * topology, the planner's reasons (explain) and its asynchronous error. */
#include "src/comm.h"
#include "src/memdom.h"
#include "src/tune.h"

podcclResult_t podcclCommCount(const podcclComm_t comm, int *count) {
    PCCHECK(pc_comm_check_live(comm, "podcclCommCount", NULL));
    if (!count) return pc_err(comm, podcclInvalidArgument, "podcclCommCount: count is NULL");
    *count = comm->nranks;
    return podcclSuccess;
}

podcclResult_t podcclCommUserRank(const podcclComm_t comm, int *rank) {
    PCCHECK(pc_comm_check_live(comm, "podcclCommUserRank", NULL));
    if (!rank) return pc_err(comm, podcclInvalidArgument, "podcclCommUserRank: rank is NULL");
    *rank = comm->rank;
    return podcclSuccess;
}

podcclResult_t podcclCommMemoryUsage(const podcclComm_t comm, size_t *shmBytes, size_t *hostBytes) {
    PCCHECK(pc_comm_check_live(comm, "podcclCommMemoryUsage", NULL));
    if (shmBytes) *shmBytes = md_segment_bytes(comm);
    if (hostBytes) *hostBytes = comm->ex->scratch_bytes + comm->ex->tmp_bytes;
    return podcclSuccess;
}

podcclResult_t podcclCommTransportInfo(const podcclComm_t comm, char *buf, size_t len) {
    PCCHECK(pc_comm_check_live(comm, "podcclCommTransportInfo", NULL));
    if (!buf || len == 0)
        return pc_err(comm, podcclInvalidArgument,
                      "podcclCommTransportInfo: buf is NULL or len is 0");
    int nremote = comm->nranks - comm->topo->nlocal;
    int k = snprintf(buf, len, "shm to %d local peer%s (%s)", comm->topo->nlocal - 1,
                     comm->topo->nlocal - 1 == 1 ? "" : "s", comm->tr->shm_props.provider);
    if (comm->tr->net && k >= 0 && (size_t)k < len)
        snprintf(buf + k, len - (size_t)k, "; %s to %d remote rank%s on %d other host%s (%s)",
                 comm->tr->net_props.name, nremote, nremote == 1 ? "" : "s", comm->topo->nhosts - 1,
                 comm->topo->nhosts - 1 == 1 ? "" : "s", comm->tr->net_props.provider);
    return podcclSuccess;
}

podcclResult_t podcclCommTopoInfo(const podcclComm_t comm, char *buf, size_t len) {
    PCCHECK(pc_comm_check_live(comm, "podcclCommTopoInfo", NULL));
    if (!buf || len == 0)
        return pc_err(comm, podcclInvalidArgument, "podcclCommTopoInfo: buf is NULL or len is 0");
    levels_describe(&comm->topo->lv, buf, len);
    return podcclSuccess;
}

podcclResult_t podcclCommExplain(const podcclComm_t comm, const char *collective, size_t count,
                                 podcclDataType_t datatype, podcclRedOp_t op, char *buf,
                                 size_t len) {
    PCCHECK(pc_comm_check_live(comm, "podcclCommExplain", NULL));
    if (!buf || len == 0)
        return pc_err(comm, podcclInvalidArgument, "podcclCommExplain: buf is NULL or len is 0");
    int coll = collective ? algo_coll_find(collective, strlen(collective)) : -1;
    if (coll < 0 || coll == PC_SEND || coll == PC_RECV)
        return pc_err(comm, podcclInvalidArgument, "podcclCommExplain: unknown collective '%s'",
                      collective ? collective : "(null)");
    if ((unsigned)datatype >= podcclNumTypes || (unsigned)op >= podcclNumOps)
        return pc_err(comm, podcclInvalidArgument,
                      "podcclCommExplain: unknown datatype %d or op %d", (int)datatype, (int)op);
    size_t *counts = NULL;
    if (coll == PC_ALLTOALLV) {
        counts = calloc(4 * (size_t)comm->nranks, sizeof(size_t));
        if (!counts) return pc_err(comm, podcclSystemError, "out of memory");
    }
    pc_args a = {.coll = coll, .count = count, .dtype = datatype, .op = op, .counts = counts};
    tune_explain(comm, &a, buf, len);
    free(counts);
    return podcclSuccess;
}

podcclResult_t podcclCommGetAsyncError(podcclComm_t comm, podcclResult_t *asyncError) {
    PCCHECK(pc_comm_check_live(comm, "podcclCommGetAsyncError", NULL));
    if (!asyncError)
        return pc_err(comm, podcclInvalidArgument, "podcclCommGetAsyncError: asyncError is NULL");
    /* Thread-safe: a reference keeps a concurrent podcclCommAbort from freeing comm meanwhile. */
    if (!pc_comm_acquire(comm, 0, NULL))
        return pc_err(NULL, podcclInvalidArgument,
                      "podcclCommGetAsyncError: comm is not a live communicator (destroyed?)");
    *asyncError = pc_comm_async(comm);
    pc_comm_release(comm);
    return podcclSuccess;
}
