/* The communicator object. Modules read the fields they need through this header; only comm.c
 * creates and destroys it. */
#ifndef PODCCL_COMM_H
#define PODCCL_COMM_H

#include <pthread.h>
#include <sys/types.h>

#include "bootstrap.h"
#include "core.h"
#include "transports/transport.h"

#define PC_COMM_MAGIC 0x636f6d6d706f6463ull
#define PC_COMM_DEAD 0xdeaddeaddeaddeadull

/* Collectives, used to index per-collective settings (algorithm overrides). */
typedef enum {
    PC_ALLREDUCE,
    PC_ALLGATHER,
    PC_REDUCESCATTER,
    PC_BROADCAST,
    PC_REDUCE,
    PC_ALLTOALL,
    PC_ALLTOALLV,
    PC_SEND,
    PC_RECV,
    PC_BARRIER,
    PC_NCOLL
} pc_coll;

typedef enum {
    PC_ALGO_AUTO = 0,
    PC_ALGO_RING,
    PC_ALGO_DIRECT,
    PC_ALGO_PAIRWISE,
    PC_ALGO_CMA,
    PC_NALGO
} pc_algo;

typedef struct {
    int valid;
    size_t count;
    podcclDataType_t dtype;
    pc_algo algo;
} pc_tune_cache;

struct shm_domain;

struct podcclComm {
    uint64_t magic;
    int rank, nranks;
    char name[64];
    double timeout; /* seconds without progress before podcclTimeout */
    pc_boot boot;

    /* Topology (topo.c): which ranks share this host. */
    int nhosts, host; /* number of hosts, index of this rank's host */
    int *host_of;     /* [nranks] host index of each rank */
    int nlocal, local_rank;
    int *local_ranks; /* [nlocal] global ranks on this host, ascending */
    int *local_idx;   /* [nranks] index in local_ranks, or -1 */
    pid_t *pids;      /* [nranks] */
    int numa_node;    /* NUMA node this rank is bound to, -1 unknown */
    int nmachine;     /* ranks on this machine (same kernel), this host's and other "hosts'" */
    int *ring_ord;    /* [nranks] ranks in ring order, grouped by host (host of rank 0 first) */
    int *ring_pos_of; /* [nranks] position of each rank in ring_ord */

    /* Transports: the first that reaches each peer. */
    const pc_transport **tp; /* [nranks] */
    void **conn;             /* [nranks] */
    struct shm_domain *shm;  /* shm listen object: this rank's segment and peers' mappings */
    pc_props shm_props;
    const pc_transport *net; /* network transport to other hosts (ofi or ib), NULL on one host */
    void *net_listen;        /* its listen object (endpoint, device context) */
    pc_props net_props;

    /* Algorithms and executor. */
    pc_algo forced[PC_NCOLL];
    pc_algo last_pick[PC_NCOLL];        /* for logging the cost model's choice when it changes */
    pc_tune_cache tune_cache[PC_NCOLL]; /* last automatic choice per collective */
    size_t chunk_bytes;
    int max_inflight;
    int spin; /* polls before yielding: long when every rank has a core, short otherwise */
    uint64_t direct_seq;    /* one-shot operations issued, identical on all ranks */
    uint64_t direct_synced; /* last one-shot operation in which every peer was seen posting */
    uint64_t cma_seq;       /* single-copy operations issued, identical on all ranks */
    char *scratch;          /* scratch_slots chunks for receive-then-reduce */
    int scratch_slots;      /* max_inflight; 4 x that with a network transport (exec.c) */
    int net_send_depth;     /* sends in flight per network peer (exec.c) */
    char *tmp;              /* grow-only temporary (reduce partials, in-place all-to-all) */
    size_t tmp_bytes;

    /* Errors. */
    _Atomic int async_err; /* podcclResult_t that broke the communicator */
    _Atomic int aborted;
    _Atomic int active; /* operations running now (abort waits for them) */
    pthread_mutex_t err_lock;
    char last_err[512];
    pthread_mutex_t use_lock; /* one operation at a time (user thread or stream threads) */
};

/* Marks the communicator broken with rc (first error wins) and returns rc. */
podcclResult_t pc_comm_fail(podcclComm_t comm, podcclResult_t rc);
/* Grows comm->tmp to at least bytes. */
podcclResult_t pc_comm_tmp(podcclComm_t comm, size_t bytes);

#endif
