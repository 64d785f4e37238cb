/*
 * podccl_net.h: the contract between podccl's core and a transport, and the ABI of network
 * transport modules (podccl-net-NAME.so), version PC_NET_ABI_VERSION.
 *
 * Modelled on NCCL's net plugins (ext-net, ncclNet_vN_t): a transport gets a context and opaque
 * handles, never the communicator; it reaches the core only through the context's functions
 * (logging, errors, parameters, mismatch reports). podccl's own network transports (ofi: libfabric,
 * ib: verbs) are built as such modules and loaded with dlopen only when a job chooses them, so
 * libpodccl.so links neither libfabric nor libibverbs, and their libraries' constructors (PSM's
 * signal handlers among them) never run in a process that does not use them.
 *
 * A module exports one symbol, PC_NET_PLUGIN_SYMBOL, of type pc_net_plugin. The loader checks
 * abi_version == PC_NET_ABI_VERSION and struct_size == sizeof(pc_transport) and refuses the
 * module otherwise, naming both versions. PODCCL_NET_PLUGIN names an out-of-tree module: a path,
 * or NAME for podccl-net-NAME.so in podccl's module folders (docs/multihost.md).
 *
 * The contract:
 *   - `listen` once per communicator creates this rank's endpoint and fills a handle of at most
 *     PC_HANDLE_BYTES that the core all-gathers; the context stays valid until close_listen;
 *   - for each pair of ranks that the transport serves, the lower rank calls `connect` and the
 *     higher rank `accept`, both with the peer's handle. Neither blocks: *conn stays NULL for "not
 *     yet" and the core calls again (with other peers in between) until every connection exists or
 *     the timeout passes. A connection carries both directions;
 *   - isend/irecv post, test drives progress and completes. The k-th isend on a connection matches
 *     the peer's k-th irecv on its connection to us (posting order), and requests on one connection
 *     complete in posting order. A NULL *req from isend/irecv means "no resources now, post again
 *     later". A receive of fewer bytes than were sent is an error;
 *   - the transport stages or registers buffers itself (registration caches or pre-registered
 *     bounce buffers); one-sided put with a completion signal may live behind isend/irecv,
 *     receiver-driven as in NCCL's net_ib (props.put);
 *   - errors: a failure returns podcclSystemError (local) or podcclRemoteError (the peer or the
 *     link broke) through ctx->err, with a message naming the peer and the likely cause;
 *   - mismatched calls: isend/irecv take the signature of the operation they belong to (pc_sig).
 *     Every message carries its hash, and the side that can compare does so before it moves a byte
 *     of the payload; a difference is reported through ctx->mismatch, a message longer than its
 *     receive through ctx->size_mismatch. A shorter message completes the receive with fewer bytes
 *     (test's *bytes): the core decides whether that is an error;
 *   - notify (optional) tells every peer of this transport that this rank found a mismatch, so that
 *     none of them waits for the timeout: a peer that receives it reports it through
 *     ctx->mismatch_notice and returns podcclInvalidUsage from its next test.
 * Thread-safety: the core calls a communicator's transport from one thread at a time.
 */
#ifndef PODCCL_NET_H
#define PODCCL_NET_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "podccl.h"

#ifdef __cplusplus
extern "C" {
#endif

#define PC_NET_ABI_VERSION 1
#define PC_NET_PLUGIN_SYMBOL "podcclNetPlugin_v1"
#define PC_HANDLE_BYTES 128

/* Log levels and subsystems (PODCCL_DEBUG, PODCCL_DEBUG_SUBSYS). */
enum { PC_LOG_NONE = 0, PC_LOG_WARN = 1, PC_LOG_INFO = 2, PC_LOG_TRACE = 3 };
enum {
    PC_SUB_INIT = 1 << 0,
    PC_SUB_COLL = 1 << 1,
    PC_SUB_TUNE = 1 << 2,
    PC_SUB_SHM = 1 << 3,
    PC_SUB_NET = 1 << 4,
    PC_SUB_BOOT = 1 << 5,
    PC_SUB_ALL = 0xffff
};

/* The signature of one operation: what the ranks must agree on. Collectives are numbered per
 * communicator (seq 1, 2, ... counted alike by every rank, whichever path runs them); point-to-
 * point operations have seq 0 and one signature for both sides. Fields a collective does not use
 * are 0, so they never differ. hash mixes all of them and the previous collective's hash (a
 * chain), so that a mismatch nobody could see when it happened still shows at the next call: it
 * is what messages carry. coll < 0: only the hash is known (a peer's, from a message). */
typedef struct pc_sig {
    uint64_t hash, seq, count;
    int32_t coll, dtype, op, root;
} pc_sig;

/* Signatures a rank keeps of its own last collectives, and publishes to the peers of its host. */
#define PC_SIG_HIST 16

/* 64 bits for a message that has no more room (remote CQ data): 40 bits of the hash and the low
 * 24 bits of seq, so that the receiver can tell which of its operations the sender was in. */
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
    pc_sig g = {.hash = w & 0xffffffffffull, .seq = seq, .coll = -1};
    return g;
}

/* What a transport says of itself (valid after listen). */
typedef struct pc_props {
    const char *name;  /* "shm", "ofi", "ib" */
    char provider[96]; /* what carries the bytes: "tcp;ofi_rxm", "rxe0:1 gid 1 (RoCE v2)" */
    double bw_gbps;    /* per-rank bandwidth, GB/s, for the cost model */
    double latency_us; /* one message, us */
    int put;           /* large messages go by one-sided write (RDMA write / fi_writedata) */
    int send_depth;    /* advised sends in flight per peer (0: the executor's default) */
} pc_props;

/* What the core lends a transport for one communicator: who this rank is, the job's settings, and
 * the only functions a transport may call. `comm` is opaque: pass it back, never look inside. */
typedef struct pc_tp_ctx {
    void *comm;
    int rank, nranks;
    int host, nhosts;       /* this rank's host index, hosts in the job */
    const int *host_of;     /* [nranks] host index of each rank */
    int nlocal, local_rank; /* ranks of this rank's memory-semantic domain, and its index there */
    const int *local_ranks; /* [nlocal] their global ranks, ascending */
    const int *local_idx;   /* [nranks] index in local_ranks, or -1 */
    const pid_t *pids;      /* [nranks] */
    size_t chunk_bytes;     /* pipeline chunk of the executor (the largest message it posts) */
    int max_inflight;       /* messages the executor keeps in flight per peer and direction */
    double timeout;         /* seconds without progress before an error (PODCCL_TIMEOUT) */
    uint64_t job_key;       /* 64 bits derived from the job's secret (never the secret itself) */
    char boot_addr[64];     /* this rank's bootstrap address as text ("10.0.0.1", "fe80::1"):
                               network transports open their endpoints on that interface */
    /* Logging: a line is written when level <= *log_level. */
    const int *log_level;
    void (*log)(int level, int subsys, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
    /* Records an error message for podcclGetLastError and returns rc. */
    podcclResult_t (*err)(void *comm, podcclResult_t rc, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
    /* PODCCL_* parameters: the value, else the default (NULL / 0 when none). */
    const char *(*param_str)(const char *name);
    long long (*param_int)(const char *name);
    /* Mismatches (podcclInvalidUsage naming both ranks and both calls; the communicator breaks):
     * peer's message belongs to another call (theirs: coll < 0 when only its hash is known); a
     * message of `sent` bytes does not fit a receive of `posted`; a notice from `reporter` that
     * culprit's call (cul) differs from its own (rep). */
    podcclResult_t (*mismatch)(void *comm, int peer, const pc_sig *theirs);
    podcclResult_t (*size_mismatch)(void *comm, int peer, const pc_sig *sig, size_t sent,
                                    size_t posted);
    podcclResult_t (*mismatch_notice)(void *comm, int reporter, int culprit, const pc_sig *rep,
                                      const pc_sig *cul);
    /* The operation running now; this rank's own call of operation seq (1 if it still knows it:
     * the last PC_SIG_HIST), what a transport answers a peer that asks which call it made. */
    const pc_sig *(*current)(void *comm);
    int (*own_call)(void *comm, uint64_t seq, pc_sig *out);
    /* 1 once the communicator is broken (a transport may then drain instead of closing politely).
     */
    int (*broken)(void *comm);
    /* A peer this transport needed has exited: returns the error to report (the first cause any
     * rank published, else "peer exited"), publishing it to the other ranks. */
    podcclResult_t (*peer_gone)(void *comm, int peer);
    /* During init, a peer this transport needed has died: as peer_gone, naming init. */
    podcclResult_t (*peer_died_in_init)(void *comm, int peer);
    /* Tells the job that this rank broke because of culprit (rc). */
    void (*publish_failure)(void *comm, int culprit, podcclResult_t rc);
} pc_tp_ctx;

typedef struct pc_transport {
    const char *name;
    /* 1 if this transport can run in this process at all (library present, device found); else 0
     * with the reason in why (e.g. "no RDMA device: ibv_get_device_list returned none"). May be
     * NULL (always available). Called before listen. */
    int (*available)(const pc_tp_ctx *ctx, char *why, size_t len);
    /* 1 if this transport can reach peer from this rank (e.g. same host for shm). */
    int (*can_reach)(const pc_tp_ctx *ctx, int peer);
    /* Creates this rank's endpoint; fills handle (<= PC_HANDLE_BYTES) for the peers. ctx stays
     * valid until close_listen. */
    podcclResult_t (*listen)(const pc_tp_ctx *ctx, void *handle, void **listen_comm);
    /* Valid after listen. */
    void (*properties)(void *listen_comm, pc_props *props);
    /* Lower rank of a pair: connection towards peer (higher rank), whose listen handle is given.
     * Never blocks; *conn stays NULL for "not yet". */
    podcclResult_t (*connect)(void *listen_comm, int peer, const void *handle, void **conn);
    /* Higher rank of a pair: the connection from peer (lower rank). Never blocks; *conn stays
     * NULL for "not yet". */
    podcclResult_t (*accept)(void *listen_comm, int peer, const void *handle, void **conn);
    /* Called after every rank has all its connections. May be NULL. */
    podcclResult_t (*connected)(void *listen_comm);
    /* sig: the operation the message belongs to (copied). */
    podcclResult_t (*isend)(void *conn, const void *buf, size_t bytes, const pc_sig *sig,
                            void **req);
    podcclResult_t (*irecv)(void *conn, void *buf, size_t bytes, const pc_sig *sig, void **req);
    /* *done = 1 when finished (the request is then freed); *bytes = bytes moved (may be NULL).
     * Returns podcclRemoteError naming the peer when it has died or the link broke. */
    podcclResult_t (*test)(void *req, int *done, size_t *bytes);
    podcclResult_t (*close)(void *conn);
    podcclResult_t (*close_listen)(void *listen_comm);
    /* Tells every peer reachable through this transport that this rank (whose operation is mine)
     * found culprit's operation (theirs) different. Best effort, never blocks. May be NULL. */
    void (*notify)(void *listen_comm, int culprit, const pc_sig *mine, const pc_sig *theirs);
} pc_transport;

/* What a module exports under PC_NET_PLUGIN_SYMBOL (declare it PC_NET_EXPORT: visible even when
 * the module is built with -fvisibility=hidden). */
#define PC_NET_EXPORT __attribute__((visibility("default")))
typedef struct pc_net_plugin {
    uint32_t abi_version; /* PC_NET_ABI_VERSION the module was built with */
    uint32_t struct_size; /* sizeof(pc_transport) the module was built with */
    const pc_transport *transport;
} pc_net_plugin;

#ifdef __cplusplus
}
#endif

#endif
