/* The transport contract (include/podccl_net.h: context, handles, requests; the ABI of network
 * modules), and what only the in-tree shared-memory transport offers besides: a liveness domain
 * (pc_live_ops) and a memory-semantic domain (pc_memdom_ops). The core (src/wait.c,
 * src/memdom.c) builds waiting, error reports and the executor's memory-semantic steps on these
 * tables; nothing here knows the communicator. */
#ifndef PODCCL_TRANSPORT_H
#define PODCCL_TRANSPORT_H

#include <stdatomic.h>

#include "podccl_net.h"

/* What a liveness domain offers (the shared-memory domain implements it: transports/shm). The
 * core's waits (src/wait.c) use it to tell a dead, stopped or failed peer from a slow one. */
typedef struct pc_live_ops {
    /* Refreshes this rank's heartbeat (ms of CLOCK_MONOTONIC). */
    void (*heartbeat)(void *dom, uint64_t now_ms);
    /* The peer in the domain that refreshed its heartbeat longest ago, more than a second:
     * stopped, or not calling the collective at all; -1 if none. */
    int (*stalest)(void *dom, double now);
    /* 1 if peer (a global rank in the domain) has exited. */
    int (*peer_dead)(void *dom, int peer);
    /* Tells the domain's ranks that this rank broke because of culprit (rc). Only the first call
     * counts: later failures are its consequences. */
    void (*publish_failure)(void *dom, int culprit, podcclResult_t rc);
    /* 1 if this rank published a failure: its culprit and error. */
    int (*published)(void *dom, int *culprit, podcclResult_t *rc);
    /* 1 if a peer published a failure (it may have exited since): its culprit, who reported it,
     * and the error. */
    int (*failure_seen)(void *dom, int *culprit, int *reporter, podcclResult_t *rc);
} pc_live_ops;

/* Flag words each rank owns in a memory-semantic domain: one writer (the owner), one cache line
 * each, values that only grow. The core numbers them (src/memdom.h). */
#define PC_MD_WORDS 8

/* The buffers a rank publishes for the running operation, which peers may read (or write) with
 * single copy: send, receive and an auxiliary buffer, with their sizes in bytes (peers never
 * reach past them), the operation's signature (seq, hash), and for all-to-all-v the counts and
 * displacements (elements) this rank sends to each rank of the domain. */
typedef struct pc_md_bufs {
    uint64_t addr[3], len[3];
    uint64_t seq, hash;
} pc_md_bufs;

/* What a memory-semantic domain offers (one host's shared memory; a supernode's memory bus when
 * the topology file says so): ranks are named by their index in the domain (ctx->local_ranks).
 * Nothing here waits or formats an error: the core does (src/memdom.c). */
typedef struct pc_memdom_ops {
    /* One-shot buffers: `slots` per rank of `bytes` of payload each (plus a 64-byte line in
     * front); operation seq uses slot seq % slots. */
    size_t (*direct_bytes)(void *dom);
    int (*direct_slots)(void *dom);
    char *(*direct_buf)(void *dom, int lidx, uint64_t seq);
    /* Flag word `word` (< PC_MD_WORDS) of rank lidx. */
    _Atomic uint64_t *(*word)(void *dom, int lidx, int word);
    /* This rank's buffers for the running operation (counts/displs: NULL, or nlocal each). */
    void (*publish)(void *dom, const pc_md_bufs *b, const size_t *counts, const size_t *displs);
    /* What rank lidx published: its buffers; what it sends to rank index `to` (all-to-all-v). */
    void (*published)(void *dom, int lidx, pc_md_bufs *out);
    void (*counts)(void *dom, int lidx, int to, size_t *count, size_t *displ);
    /* Single copy between this process and rank lidx's memory at address remote: 0, or an errno
     * (ESRCH, EFAULT: the peer is exiting; EPERM: not allowed). Bounds are the caller's. */
    int (*read)(void *dom, int lidx, uint64_t remote, void *dst, size_t bytes);
    int (*write)(void *dom, int lidx, uint64_t remote, const void *src, size_t bytes);
    /* 1 if this rank may use single copy with every rank of the domain (probed once at init;
     * PODCCL_SHM_CMA=0 says no). */
    int (*single_copy_probe)(void *dom);
    /* Signatures of the owner's last PC_SIG_HIST operations (a ring by seq), which peers compare
     * with theirs while they wait; sig_get: 1 if rank lidx's signature of seq is still there. */
    void (*sig_publish)(void *dom, const pc_sig *sig);
    int (*sig_get)(void *dom, int lidx, uint64_t seq, pc_sig *out);
    uint64_t (*sig_last)(void *dom, int lidx); /* the last seq rank lidx published (0: none) */
    /* The first mismatch this rank found or learnt of (reporter found culprit's call cul
     * different from its own rep), which peers read while they wait and when they start a call. */
    void (*mismatch_publish)(void *dom, int reporter, int culprit, const pc_sig *rep,
                             const pc_sig *cul);
    int (*mismatch_get)(void *dom, int lidx, int *reporter, int *culprit, pc_sig *rep, pc_sig *cul);
    /* Shared memory this rank allocated, bytes. */
    size_t (*segment_bytes)(void *dom);
} pc_memdom_ops;

/* The shared-memory transport: pc_transport_shm moves messages through FIFOs; its listen object
 * is also the domain object of pc_shm_live and pc_shm_memdom. */
extern const pc_transport pc_transport_shm;
extern const pc_live_ops pc_shm_live;
extern const pc_memdom_ops pc_shm_memdom;

#endif
