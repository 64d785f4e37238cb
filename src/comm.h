/* The communicator: its identity and errors, and pointers to its parts, each written by one
 * module (docs/architecture.md): errors (pc_errs, debug.c), topology (topo.c), connections
 * (conn.c), executor state (pc_exec_state: the running operation by sig.c, chunk, scratch and
 * temporaries by exec.c and comm.c, the one-shot and single-copy counters by the run functions
 * through pc_md), the planner's state (tune.c), and the liveness domain (wait.h). init.c creates
 * and frees it; comm.c keeps the set of live communicators. */
#ifndef PODCCL_COMM_H
#define PODCCL_COMM_H

#include <pthread.h>
#include <sys/types.h>

#include "bootstrap.h"
#include "core.h"
#include "src/levels.h"
#include "src/topo.h"
#include "transports/transport.h"

#define PC_COMM_MAGIC 0x636f6d6d706f6463ull
#define PC_COMM_DEAD 0xdeaddeaddeaddeadull

/* Connections to peers: the first transport that reaches each (src/conn.c). */
typedef struct pc_conns {
    pc_tp_ctx ctx;           /* what every transport of this communicator gets */
    const pc_transport **tp; /* [nranks] */
    void **conn;             /* [nranks] */
    void *shm;               /* shm listen object: this rank's segment and peers' mappings, also
                                the memory-semantic and liveness domain object */
    const pc_memdom_ops *md; /* the memory-semantic domain's operations (NULL: none) */
    pc_props shm_props;
    const pc_transport *net; /* network transport to other hosts (ofi or ib), NULL on one host */
    void *net_listen;        /* its listen object (endpoint, device context) */
    pc_props net_props;
    int single_copy; /* every pair of ranks in the domain may use process_vm_readv */
} pc_conns;

/* Executor resources and the memory-semantic algorithms' counters (exec.c, direct.c, cma.c). */
typedef struct pc_exec_state {
    size_t chunk_bytes;
    int max_inflight;
    int spin;             /* polls before yielding: long when every rank has a core */
    int net_send_depth;   /* sends in flight per network peer */
    int recv_depth;       /* receives in flight per network peer (4 x max_inflight) */
    double nap_after;     /* seconds idle before napping across hosts (< 0: never) */
    double shm_nap_after; /* seconds idle before napping on one host (< 0: never) */
    char *scratch;        /* receive-then-reduce slots, grown as schedules need */
    size_t scratch_bytes;
    char *tmp; /* grow-only temporary (reduce partials, in-place all-to-all) */
    size_t tmp_bytes;
    uint64_t direct_seq;    /* one-shot operations issued, identical on all ranks */
    uint64_t direct_synced; /* last one-shot operation in which every peer was seen posting */
    uint64_t cma_seq;       /* single-copy operations issued, identical on all ranks */
    uint64_t op_seq;        /* collectives issued (every path), identical on all ranks */
    pc_sig cur;             /* the operation running now (exec.c: pc_op_begin, pc_op_p2p) */
    uint64_t chain;         /* hash of the last collective: each hash includes its predecessor's */
    pc_sig hist[PC_SIG_HIST]; /* this rank's last collectives, by seq (error messages) */
    int told;                 /* peers on other hosts were told of a mismatch (once) */
} pc_exec_state;

struct pc_tune_state;

struct podcclComm {
    pc_errs err; /* first: the utilities reach it through pc_errs_of (core.h) */
    uint64_t magic;
    int rank, nranks;
    char name[64];
    double timeout;          /* seconds without progress before podcclTimeout */
    const char *timeout_src; /* where timeout came from, for messages (a static string) */
    pc_boot boot;
    pc_topo *topo;
    pc_conns *tr;
    pc_exec_state *ex;
    struct pc_tune_state *tune;
    const pc_live_ops *live; /* liveness domain (shared memory), or NULL */
    void *live_dom;

    _Atomic int aborted;
    _Atomic int active;       /* references: calls in progress, stream items (destroy waits) */
    pthread_mutex_t use_lock; /* one operation at a time (user thread or stream threads) */
};

/* Live communicators (comm.c): a process-wide set, so that a destroyed pointer is recognised
 * without reading the memory it points to. Each registration has a serial number that no later
 * communicator at the same address shares. */
podcclResult_t pc_comm_register(podcclComm_t comm);
/* 1 if comm is live (and *serial, if not NULL, gets its serial), else 0. */
int pc_comm_live(podcclComm_t comm, uint64_t *serial);
/* Takes a reference (comm->active; destroy and abort wait until none is left) if comm is live
 * and, when serial != 0, still the registration `serial`. 1 if taken; *got (if not NULL) gets
 * the serial. */
int pc_comm_acquire(podcclComm_t comm, uint64_t serial, uint64_t *got);
void pc_comm_release(podcclComm_t comm);
/* Takes comm out of the set, if it is still registration `serial`; 1 if it was. */
int pc_comm_unregister(podcclComm_t comm, uint64_t serial);
/* podcclInvalidArgument naming fn when comm is NULL or not a live communicator; else
 * podcclSuccess with its registration in *serial (if not NULL). Takes no reference. */
podcclResult_t pc_comm_check_live(podcclComm_t comm, const char *fn, uint64_t *serial);
/* Grows comm->ex->tmp to at least bytes. */
podcclResult_t pc_comm_tmp(podcclComm_t comm, size_t bytes);

#endif
