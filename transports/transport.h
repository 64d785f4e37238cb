/* The interface every transport implements (NCCL net-plugin contract): listen gives a handle
 * of at most PC_HANDLE_BYTES that the bootstrap hands to the peer; connect/accept never block;
 * isend/irecv post, test progresses and completes. Requests on one connection complete in
 * posting order. A NULL *req from isend/irecv means "no resources now, post again later". */
#ifndef PODCCL_TRANSPORT_H
#define PODCCL_TRANSPORT_H

#include <stddef.h>

#include "podccl.h"

#define PC_HANDLE_BYTES 128

struct podcclComm;

typedef struct pc_props {
    const char *name;
    double bw_gbps;       /* per-rank bandwidth, GB/s, for the cost model */
    double latency_us;    /* one message, us */
    int max_requests;     /* requests in flight per connection */
    int memory_semantics; /* peers can load/store each other's memory (direct algorithms) */
} pc_props;

typedef struct pc_transport {
    const char *name;
    /* 1 if this transport can reach peer from this rank (e.g. same host for shm). */
    int (*can_reach)(struct podcclComm *comm, int peer);
    void (*properties)(struct podcclComm *comm, pc_props *props);
    /* Creates this rank's endpoint; fills handle (<= PC_HANDLE_BYTES) for the peers. */
    podcclResult_t (*listen)(struct podcclComm *comm, void *handle, void **listen_comm);
    /* Connection towards peer, whose listen handle is given. *conn stays NULL for "not yet". */
    podcclResult_t (*connect)(struct podcclComm *comm, int peer, const void *handle, void **conn);
    /* Called after every rank has connected (e.g. to remove names from /dev/shm). */
    podcclResult_t (*connected)(struct podcclComm *comm, void *listen_comm);
    podcclResult_t (*reg_mr)(void *conn, void *buf, size_t bytes, void **mr);
    podcclResult_t (*dereg_mr)(void *conn, void *mr);
    podcclResult_t (*isend)(void *conn, const void *buf, size_t bytes, int tag, void *mr,
                            void **req);
    podcclResult_t (*irecv)(void *conn, void *buf, size_t bytes, int tag, void *mr, void **req);
    /* *done = 1 when finished (the request is then freed); *bytes = bytes moved. Returns
     * podcclRemoteError naming the peer when it has died. */
    podcclResult_t (*test)(void *req, int *done, size_t *bytes);
    podcclResult_t (*close)(void *conn);
    podcclResult_t (*close_listen)(void *listen_comm);
} pc_transport;

extern const pc_transport pc_transport_shm;

#endif
