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
 *     link broke) with a message naming the peer and the likely cause (pc_err);
 *   - mismatched calls: isend/irecv take the signature of the operation they belong to (pc_sig).
 *     Every message carries its hash (shm: fragment header; ofi: remote CQ data or the
 *     clear-to-send; ib: the clear-to-send), and the side that can compare does so before it
 *     moves a byte of the payload; a difference is reported through pc_mismatch (podcclInvalidUsage
 *     naming both ranks and both calls), a message longer than its receive through
 *     pc_size_mismatch. A shorter message completes the receive with fewer bytes (test's *bytes):
 *     the executor decides whether that is an error;
 *   - notify (optional) tells every peer of this transport that this rank found a mismatch, so
 *     that none of them waits for the timeout: a peer that receives it returns podcclInvalidUsage
 *     from its next test (through pc_mismatch_notice).
 * Algorithms never see which transport carries a step. */
#ifndef PODCCL_TRANSPORT_H
#define PODCCL_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>

#include "podccl.h"

#define PC_HANDLE_BYTES 128

struct podcclComm;

/* The signature of one operation: what the ranks must agree on. Collectives are numbered per
 * communicator (seq 1, 2, ... counted alike by every rank, whichever path runs them: one-shot,
 * single copy or a schedule); point-to-point operations have seq 0 and one signature for both
 * sides. Fields a collective does not use are 0 (op outside reductions, root outside broadcast
 * and reduce, count for all-to-all-v), so they never differ. hash mixes all of them and the
 * previous collective's hash (a chain), so that a mismatch that nobody could see when it happened
 * (two ranks that both believed they were a broadcast's root) still shows at the next call: it is
 * what messages carry. coll < 0: only the hash is known (a peer's, from a message). */
typedef struct pc_sig {
    uint64_t hash, seq, count;
    int32_t coll, dtype, op, root;
} pc_sig;

/* Signatures a rank keeps of its own last collectives, and publishes to the peers of its host. */
#define PC_SIG_HIST 16

/* 64 bits for a message that has no more room (ofi's remote CQ data): 40 bits of the hash and the
 * low 24 bits of seq, so that the receiver can tell which of its operations the sender was in. */
static inline uint64_t pc_sig_wire(const pc_sig *s) {
    return (s->hash & 0xffffffffffull) | s->seq << 40;
}
/* The signature a wire word stands for (only its hash known), with the seq nearest to near. */
static inline pc_sig pc_sig_unwire(uint64_t w, uint64_t near) {
    uint64_t seq = (near & ~0xffffffull) | w >> 40;
    if (seq > near + 0x800000 && seq >= 0x1000000)
        seq -= 0x1000000;
    else if (seq + 0x800000 < near)
        seq += 0x1000000;
    return (pc_sig){.hash = w & 0xffffffffffull, .seq = seq, .coll = -1};
}

/* (exec.c) Names both calls, breaks the communicator, tells the other ranks (peers on this host
 * through a record in its control block, peers elsewhere through the network transport's
 * notify), and returns podcclInvalidUsage: "rank 1 called podcclAllReduce(count 1024, float32, sum)
 * as operation #17, but rank 0 called podcclAllGather(count 1024, float32) (#17)". theirs is peer's
 * signature (coll < 0: only its hash is known). */
podcclResult_t pc_mismatch(struct podcclComm *comm, int peer, const pc_sig *theirs);
/* (exec.c) The same for a message of `sent` bytes that does not fit a receive of `posted` bytes
 * of the same operation (sig): the ranks cut the call differently, or point-to-point and
 * all-to-all-v counts differ. */
podcclResult_t pc_size_mismatch(struct podcclComm *comm, int peer, const pc_sig *sig, size_t sent,
                                size_t posted);
/* (exec.c) A notice from `reporter` (received by a network transport): it found that culprit's
 * operation (cul) differs from its own (rep). Breaks the communicator and returns
 * podcclInvalidUsage naming both calls; tells the peers on this host, not the network again. */
podcclResult_t pc_mismatch_notice(struct podcclComm *comm, int reporter, int culprit,
                                  const pc_sig *rep, const pc_sig *cul);

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
    /* sig: the operation the message belongs to (copied; see the top of this file). */
    podcclResult_t (*isend)(void *conn, const void *buf, size_t bytes, const pc_sig *sig, void *mr,
                            void **req);
    podcclResult_t (*irecv)(void *conn, void *buf, size_t bytes, const pc_sig *sig, void *mr,
                            void **req);
    /* *done = 1 when finished (the request is then freed); *bytes = bytes moved (may be NULL).
     * Returns podcclRemoteError naming the peer when it has died or the link broke. */
    podcclResult_t (*test)(void *req, int *done, size_t *bytes);
    podcclResult_t (*close)(void *conn);
    podcclResult_t (*close_listen)(void *listen_comm);
    /* Tells every peer reachable through this transport that this rank (whose operation is
     * mine) found culprit's operation (theirs) different. Best effort, never blocks. May be
     * NULL. */
    void (*notify)(void *listen_comm, int culprit, const pc_sig *mine, const pc_sig *theirs);
} pc_transport;

extern const pc_transport pc_transport_shm;
#ifdef HAVE_OFI
extern const pc_transport pc_transport_ofi;
#endif
#ifdef HAVE_VERBS
extern const pc_transport pc_transport_ib;
#endif

#endif
