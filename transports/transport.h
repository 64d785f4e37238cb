/* The interface every transport implements (modelled on NCCL's net-plugin contract, which
 * both verbs and libfabric fit; ../docs/architecture.md):
 *   - init once per communicator: `listen` creates this rank's endpoint and fills a handle of at
 *     most PC_HANDLE_BYTES that the bootstrap all-gathers;
 *   - for each pair of ranks that the transport serves, the lower rank calls `connect` and the
 *     higher rank calls `accept`, both with the peer's handle. Neither blocks: *conn stays NULL
 *     for "not yet" and the core calls again (with other peers in between) until every
 *     connection exists or the timeout passes. A connection carries both directions;
 *   - isend/irecv post, test drives progress and completes. The k-th isend on a connection
 *     matches the peer's k-th irecv on its connection to us (posting order), and requests on one
 *     connection complete in posting order. A NULL *req from isend/irecv means "no resources
 *     now, post again later". A receive of fewer bytes than were sent is an error;
 *   - memory: mr may be NULL, and the transport then registers or stages the buffer itself
 *     (registration cache or pre-registered bounce buffers);
 *   - one-sided put with a completion signal lives behind isend/irecv, receiver-driven as in
 *     NCCL's net_ib: the receive grants a clear-to-send naming its (registered) destination, the
 *     send writes there with RDMA write with immediate (ib) or fi_writedata (ofi), and the
 *     immediate / remote CQ data completes the receive. props.put says a transport does this;
 *     props.send_depth advises how many sends to keep in flight per peer;
 *   - errors: a failure returns podcclSystemError (local) or podcclRemoteError (the peer or the
 *     link broke) with a message naming the peer and the likely cause (pc_err).
 * Algorithms never see which transport carries a step. */
#ifndef PODCCL_TRANSPORT_H
#define PODCCL_TRANSPORT_H

#include <stddef.h>

#include "podccl.h"

#define PC_HANDLE_BYTES 128

struct podcclComm;

typedef struct pc_props {
    const char *name;     /* "shm", "ofi", "ib" */
    char provider[96];    /* what carries the bytes: "tcp;ofi_rxm", "rxe0:1 gid 1 (RoCE v2)" */
    double bw_gbps;       /* per-rank bandwidth, GB/s, for the cost model */
    double latency_us;    /* one message, us */
    int max_requests;     /* requests in flight per connection */
    int memory_semantics; /* peers can load/store each other's memory (direct algorithms) */
    int put;              /* large messages go by one-sided write (RDMA write / fi_writedata) */
    int send_depth;       /* advised sends in flight per peer (0: the executor's default) */
} pc_props;

typedef struct pc_transport {
    const char *name;
    /* 1 if this transport can run in this process at all (library present, device found);
     * else 0 with the reason in why (e.g. "no RDMA device: ibv_get_device_list returned
     * none"). May be NULL (always available). Called before listen. */
    int (*available)(struct podcclComm *comm, char *why, size_t len);
    /* 1 if this transport can reach peer from this rank (e.g. same host for shm). */
    int (*can_reach)(struct podcclComm *comm, int peer);
    /* Valid after listen. */
    void (*properties)(struct podcclComm *comm, void *listen_comm, pc_props *props);
    /* Creates this rank's endpoint; fills handle (<= PC_HANDLE_BYTES) for the peers. */
    podcclResult_t (*listen)(struct podcclComm *comm, void *handle, void **listen_comm);
    /* Lower rank of a pair: connection towards peer (higher rank), whose listen handle is
     * given. Never blocks; *conn stays NULL for "not yet". */
    podcclResult_t (*connect)(struct podcclComm *comm, void *listen_comm, int peer,
                              const void *handle, void **conn);
    /* Higher rank of a pair: the connection from peer (lower rank). Never blocks; *conn stays
     * NULL for "not yet". */
    podcclResult_t (*accept)(struct podcclComm *comm, void *listen_comm, int peer,
                             const void *handle, void **conn);
    /* Called after every rank has all its connections (e.g. to remove names from /dev/shm).
     * May be NULL. */
    podcclResult_t (*connected)(struct podcclComm *comm, void *listen_comm);
    podcclResult_t (*reg_mr)(void *conn, void *buf, size_t bytes, void **mr);
    podcclResult_t (*dereg_mr)(void *conn, void *mr);
    podcclResult_t (*isend)(void *conn, const void *buf, size_t bytes, int tag, void *mr,
                            void **req);
    podcclResult_t (*irecv)(void *conn, void *buf, size_t bytes, int tag, void *mr, void **req);
    /* *done = 1 when finished (the request is then freed); *bytes = bytes moved (may be NULL).
     * Returns podcclRemoteError naming the peer when it has died or the link broke. */
    podcclResult_t (*test)(void *req, int *done, size_t *bytes);
    podcclResult_t (*close)(void *conn);
    podcclResult_t (*close_listen)(void *listen_comm);
} pc_transport;

extern const pc_transport pc_transport_shm;
#ifdef HAVE_OFI
extern const pc_transport pc_transport_ofi;
#endif
#ifdef HAVE_VERBS
extern const pc_transport pc_transport_ib;
#endif

#endif
