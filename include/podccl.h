/*
 * podccl: collective communication for host memory, shaped like NCCL.
 *
 * Every function returns a podcclResult_t. On failure the function also records a message that
 * podcclGetLastError() returns. Names, argument order and in-place rules mirror NCCL so that code
 * written against NCCL maps one to one (ncclX -> podcclX); buffers are host memory.
 *
 * Errors and the communicator (NCCL's rule: only podcclInvalidArgument leaves it usable):
 *   podcclInvalidArgument  the call was rejected before anything happened (NULL, destroyed
 *                          communicator, bad count, datatype, op, root, buffers); the
 *                          communicator stays usable.
 *   podcclInvalidUsage     a call that is well formed but wrong. Calls that do not match between
 *                          ranks are found while the operation runs, after data may have moved:
 *                          the communicator is broken. Two kinds are found before any data
 *                          moves and leave it usable: a forced algorithm (PODCCL_ALGO) that
 *                          cannot run this call, and podcclCommDestroy while the calling thread's
 *                          open group holds operations on the communicator.
 *   podcclSystemError      an operating-system call failed (socket, shared memory, memory).
 *   podcclRemoteError      a peer died or closed its connection, or the communicator was aborted.
 *   podcclTimeout          a peer did not answer within PODCCL_TIMEOUT seconds.
 *   podcclInternalError    a bug in podccl.
 * Any other error of an operation on a communicator (InvalidUsage but the two kinds above,
 * SystemError, RemoteError, Timeout, InternalError) breaks it: every later call on it returns the
 * same error with a message that names the first breaking error once ("communicator is broken by
 * an earlier error: ..."), podcclCommGetAsyncError reports it, and the only useful calls left are
 * podcclCommAbort or podcclCommDestroy.
 *
 * Threads: different communicators may be used from different threads at the same time. One
 * communicator must not be used by two threads at once, except podcclCommGetAsyncError and
 * podcclCommAbort, which may be called from any thread. Group calls are per thread.
 */
#ifndef PODCCL_H
#define PODCCL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Marks the public API: the only symbols libpodccl.so exports (it is built with
 * -fvisibility=hidden; tests/check_exports.sh lists nm -D and fails on anything else). */
#if defined(__GNUC__)
#define PODCCL_API __attribute__((visibility("default")))
#else
#define PODCCL_API
#endif

#define PODCCL_MAJOR 0
#define PODCCL_MINOR 1
#define PODCCL_PATCH 0
#define PODCCL_VERSION_CODE (PODCCL_MAJOR * 10000 + PODCCL_MINOR * 100 + PODCCL_PATCH)

/* An opaque communicator: a group of ranks that run collectives together. */
typedef struct podcclComm *podcclComm_t;
/* An opaque ordered queue of operations (the host counterpart of a CUDA stream). NULL means
 * "run now": the call returns when the result is in the receive buffer. */
typedef struct podcclStream *podcclStream_t;

#define PODCCL_UNIQUE_ID_BYTES 128
/* Names a rendezvous: the root's TCP address and a random 256-bit (32-byte) secret. Copy it to
 * every rank by any means (a file, MPI_Bcast, a key-value store). */
typedef struct {
    char internal[PODCCL_UNIQUE_ID_BYTES];
} podcclUniqueId;

typedef enum {
    podcclSuccess = 0,
    podcclSystemError = 2,
    podcclInternalError = 3,
    podcclInvalidArgument = 4,
    podcclInvalidUsage = 5,
    podcclRemoteError = 6,
    podcclInProgress = 7,
    podcclTimeout = 8,
    podcclNumResults = 9
} podcclResult_t;

typedef enum {
    podcclInt8 = 0,
    podcclChar = 0,
    podcclUint8 = 1,
    podcclInt32 = 2,
    podcclInt = 2,
    podcclUint32 = 3,
    podcclInt64 = 4,
    podcclUint64 = 5,
    podcclFloat16 = 6,
    podcclHalf = 6,
    podcclFloat32 = 7,
    podcclFloat = 7,
    podcclFloat64 = 8,
    podcclDouble = 8,
    podcclBfloat16 = 9,
    podcclNumTypes = 10
} podcclDataType_t;

/* Reduction operators. Float16 and Bfloat16 are accumulated in float32 inside each reduction
 * step and rounded to nearest-even when stored. Avg is the sum divided by the number of ranks
 * (integer division for integer types). */
typedef enum {
    podcclSum = 0,
    podcclProd = 1,
    podcclMax = 2,
    podcclMin = 3,
    podcclAvg = 4,
    podcclNumOps = 5
} podcclRedOp_t;

/* Versioned configuration (NCCL's ncclConfig_t pattern): always start from
 * PODCCL_CONFIG_INITIALIZER so that size/magic/version are set; fields may be added at the end
 * in later versions without breaking the ABI. A field left at PODCCL_CONFIG_UNDEF_INT or NULL
 * takes the environment's value, then the default. */
#define PODCCL_CONFIG_UNDEF_INT (-2147483647 - 1)
#define PODCCL_CONFIG_MAGIC 0x70636366u /* "pccf" */
typedef struct {
    size_t size;      /* sizeof(podcclConfig_t) as the caller compiled it */
    unsigned magic;   /* PODCCL_CONFIG_MAGIC */
    unsigned version; /* PODCCL_VERSION_CODE of the caller's header */
    int timeoutSec;   /* seconds before a silent peer is an error (PODCCL_TIMEOUT); > 0 */
    const char *algo; /* algorithm override, same syntax as PODCCL_ALGO */
    const char *name; /* communicator name used in log lines */
} podcclConfig_t;

#define PODCCL_CONFIG_INITIALIZER                                                                  \
    {                                                                                              \
        sizeof(podcclConfig_t), PODCCL_CONFIG_MAGIC, PODCCL_VERSION_CODE, PODCCL_CONFIG_UNDEF_INT, \
            NULL, NULL                                                                             \
    }

/* ---- Version, errors ------------------------------------------------------------------------ */

/* Stores PODCCL_VERSION_CODE of the library into *version.
 * Errors: podcclInvalidArgument if version is NULL. Thread-safe. */
PODCCL_API podcclResult_t podcclGetVersion(int *version);

/* A static English string for a result code, never NULL. Thread-safe. */
PODCCL_API const char *podcclGetErrorString(podcclResult_t result);

/* The message of the last failed call: on comm if comm is a live communicator and the failure
 * belonged to it, else (NULL, destroyed or aborted comm) the last failure of the calling thread.
 * Never NULL ("" when there was none). The string stays valid until the next call on the same
 * communicator or thread. Thread-safe. */
PODCCL_API const char *podcclGetLastError(podcclComm_t comm);

/* Prints every environment parameter podccl reads, its current value, default and meaning, to
 * stdout. Thread-safe. */
PODCCL_API void podcclPrintParams(void);

/* Prints every algorithm podccl has, per collective, with a line on what it is and its source
 * (paper, or NCCL/MPI counterpart), as a markdown table to stdout: the registry that the cost
 * model, PODCCL_ALGO and podcclCommExplain read. Thread-safe. */
PODCCL_API void podcclPrintAlgorithms(void);

/* ---- Communicators -------------------------------------------------------------------------- */

/* Creates a unique id (128 bytes: magic, the root's address, a 32-byte random secret from
 * OpenSSL's RAND_bytes) and hands it to the process's rendezvous service: one background thread
 * per process serves every open unique id. Call it once per communicator in one process, which
 * must stay alive until every rank has returned from podcclCommInitRank. The root binds the
 * interface chosen by PODCCL_SOCKET_IFNAME (default: the first interface that is up, not
 * loopback and not docker*, else loopback) on an ephemeral port, or PODCCL_COMM_ID
 * ("host:port") if set. An id stays open until every rank has joined or PODCCL_TIMEOUT passes;
 * beyond 1,024 open ids the oldest one nobody has joined is closed. The secret never leaves the
 * process that holds the id: ranks prove they know it (docs/security.md), so hand the id only
 * to the job's own ranks.
 * Errors: podcclInvalidArgument (uniqueId NULL; a PODCCL_* variable malformed or out of range,
 * named), podcclSystemError (no interface, bind/listen failed). Thread-safe. */
PODCCL_API podcclResult_t podcclGetUniqueId(podcclUniqueId *uniqueId);

/* Creates the communicator's rank `rank` of `nranks` (0 <= rank < nranks <= 2^20). Collective
 * over all ranks: blocks until every rank has joined, exchanged host identity and connected
 * transports (shared memory between ranks of one host). Every bootstrap connection is mutually
 * authenticated with the id's secret (HMAC-SHA256 challenge-response; on one host the peer's uid
 * must be this process's): a root or peer that cannot prove it is refused and nothing is sent
 * to it. Gives up after PODCCL_TIMEOUT seconds; a rank that dies during init is named to every
 * other rank at once (docs/security.md).
 * Errors: podcclInvalidArgument (NULL comm, nranks or rank out of range, malformed id, ranks
 * disagreeing on nranks, a PODCCL_* variable malformed or out of range), podcclSystemError
 * (sockets, shared memory short: the message says how much is needed), podcclRemoteError (a
 * peer or the root died, or does not know the secret: named), podcclTimeout (ranks missing:
 * named), podcclInvalidUsage (ranks on different hosts but no network transport is built).
 * Thread-safe for different comm pointers. Counterpart: ncclCommInitRank. */
PODCCL_API podcclResult_t podcclCommInitRank(podcclComm_t *comm, int nranks, podcclUniqueId commId,
                                             int rank);

/* As podcclCommInitRank, with a configuration (may be NULL for defaults).
 * Errors: as podcclCommInitRank, plus podcclInvalidArgument for a config whose size, magic or
 * version is wrong or whose timeoutSec is <= 0. */
PODCCL_API podcclResult_t podcclCommInitRankConfig(podcclComm_t *comm, int nranks,
                                                   podcclUniqueId commId, int rank,
                                                   podcclConfig_t *config);

/* Creates a communicator from the launcher's environment, without MPI. Rank and size come from,
 * in order: PODCCL_RANK/PODCCL_NRANKS, OMPI_COMM_WORLD_RANK/OMPI_COMM_WORLD_SIZE (mpirun),
 * PMI_RANK/PMI_SIZE (MPICH hydra), SLURM_PROCID/SLURM_NTASKS (srun), RANK/WORLD_SIZE (torchrun).
 * The rendezvous address is PODCCL_COMM_ID ("host:port"), else MASTER_ADDR with MASTER_PORT+1
 * (torchrun; MASTER_PORT itself belongs to torch's TCPStore), else, when the launcher says all
 * ranks share one host, 127.0.0.1 with a port derived from the job id. Rank 0 runs the root.
 * The secret (docs/security.md) is PODCCL_SECRET, else the file PODCCL_SECRET_FILE (refused
 * unless owned by this user with mode 0600), else Open MPI's per-job random key, else the
 * per-user file ~/.config/podccl/secret (created 0600 on first use; ranks on other hosts need
 * the same file); it is bound to the rendezvous address. Rank 0's root listens only on that
 * address.
 * Errors: podcclInvalidArgument (NULL comm, no launcher variables, inconsistent values, no
 * address for a multi-host job: the message names the variable to set), then as
 * podcclCommInitRankConfig. */
PODCCL_API podcclResult_t podcclCommInitFromEnv(podcclComm_t *comm, podcclConfig_t *config);

/* Color for podcclCommSplit: this rank joins no new communicator (*newcomm = NULL). */
#define PODCCL_SPLIT_NOCOLOR (-1)

/* Splits comm into disjoint communicators (ncclCommSplit's semantics; MPI_Comm_split's).
 * Collective over every rank of comm: all ranks must call it (in the same order relative to
 * their other calls on comm), including those that join no new communicator, and none may call
 * it between podcclGroupStart and podcclGroupEnd. Ranks that pass the same color >= 0 form one
 * new communicator, *newcomm on each of them; its ranks are ordered by key, ties by rank in
 * comm (new rank 0 has the smallest key). A rank passing color PODCCL_SPLIT_NOCOLOR joins none
 * and gets *newcomm = NULL (and podcclSuccess). Each new communicator runs the full
 * initialization of podcclCommInitRankConfig (own rendezvous, started by its new rank 0 with
 * podcclGetUniqueId; own topology and transports), and uses comm only to exchange colors, keys
 * and unique ids (two all-gathers).
 * config: NULL, or as for podcclCommInitRankConfig. Fields left undefined inherit from comm:
 * timeoutSec takes comm's timeout, name becomes comm's name with ".c<color>" appended (e.g.
 * "world.c1"; "c1" when comm has none). algo is not inherited: when NULL, PODCCL_ALGO applies.
 * Errors: podcclInvalidArgument (comm NULL or not a live communicator, newcomm NULL, color < 0
 * other than PODCCL_SPLIT_NOCOLOR, config malformed as for podcclCommInitRankConfig), returned
 * before any communication: the rank that gets it does not take part, so a rank that proceeds
 * waits for it until the timeout unless every rank passed the same bad argument. Then the
 * errors of podcclAllGather on comm (podcclRemoteError, podcclTimeout, ...: comm is then
 * broken), the error of podcclGetUniqueId on a new rank 0 (every member of that color gets it;
 * with PODCCL_COMM_ID set, ranks 0 of several colors on one host all try to bind that one
 * address), and the errors of podcclCommInitRankConfig for the new communicator (comm stays
 * usable). On any error *newcomm is NULL and nothing is left allocated (a rendezvous root that
 * a new rank 0 started ends by itself within PODCCL_TIMEOUT); the message is on
 * podcclGetLastError(comm).
 * Lifetime: a new communicator is independent of comm: either may be used (one call at a time
 * on each, from one thread or several, as for any two communicators) and destroyed in any
 * order; destroy both (podcclCommDestroy). Thread-safety: as any call on comm (one thread at a
 * time per communicator). Counterparts: ncclCommSplit, MPI_Comm_split. */
PODCCL_API podcclResult_t podcclCommSplit(podcclComm_t comm, int color, int key,
                                          podcclComm_t *newcomm, podcclConfig_t *config);

/* Flags of podcclCommShrink. */
#define PODCCL_SHRINK_DEFAULT 0 /* comm is idle: no operation in flight on it */
#define PODCCL_SHRINK_ABORT 1   /* abort comm's operations in flight first (after a failure) */

/* After a failure, builds *newcomm from the ranks of comm that are not in excludeRanksList
 * (excludeRanksCount entries, each a rank of comm, no duplicates, not the caller): every
 * surviving rank calls it with the same list, in the same order of shrinks; excluded ranks do
 * not call it (they may be dead). Survivors keep their order: new rank = old rank minus the
 * excluded ranks below it. No unique id is needed: the lowest survivor serves the rendezvous on
 * the bootstrap listener it kept since init, and the rendezvous key is derived from comm's
 * secret, the list and the number of earlier shrinks of comm, so only comm's own ranks can join.
 * With PODCCL_SHRINK_ABORT, comm is first marked aborted (operations in flight on other threads
 * or streams return podcclRemoteError) and the call waits for them to leave; with
 * PODCCL_SHRINK_DEFAULT it waits for comm's operations to finish. comm itself stays allocated
 * (broken when aborted): destroy it with podcclCommDestroy or podcclCommAbort afterwards.
 * config: NULL or as for podcclCommInitRankConfig; timeoutSec and name default to comm's.
 * Errors: podcclInvalidArgument (comm not live, newcomm NULL, a bad list or flag: before any
 * communication), then the errors of podcclCommInitRankConfig among the survivors (a survivor
 * that does not call in time: podcclTimeout naming it; a second failure: podcclRemoteError
 * naming it). On error *newcomm is NULL. Thread-safety: as any call on comm; do not shrink
 * one comm from two threads at once. Counterpart: ncclCommShrink (NCCL 2.27). */
PODCCL_API podcclResult_t podcclCommShrink(podcclComm_t comm, int *excludeRanksList,
                                           int excludeRanksCount, podcclComm_t *newcomm,
                                           podcclConfig_t *config, int shrinkFlags);

/* Waits for this communicator's operations queued on streams and calls in progress on other
 * threads, then frees its resources. Local: does not wait for peers (but an operation that
 * waits for a dead peer ends only at its timeout; use podcclCommAbort after a failure).
 * Errors: podcclInvalidArgument (NULL, or a communicator already destroyed or aborted: each is
 * recognised without reading its freed memory); podcclInvalidUsage, naming the count, when the
 * calling thread's open group (podcclGroupStart without its podcclGroupEnd) holds operations on
 * comm, which run only at that podcclGroupEnd: nothing is freed, comm stays usable (end the group
 * first, or abort). Not thread-safe with other calls on the same communicator.
 * Counterpart: ncclCommDestroy. */
PODCCL_API podcclResult_t podcclCommDestroy(podcclComm_t comm);

/* Marks the communicator aborted and broken, and frees it without waiting for peers or
 * timeouts. Operations on comm in the calling thread's open group are dropped (they never run;
 * the group's other operations still run at podcclGroupEnd); operations queued on streams fail
 * with podcclRemoteError when they start, without moving data; an operation in progress returns
 * podcclRemoteError as soon as it notices (within milliseconds). May be called from any thread
 * while another thread is blocked in a collective on comm; that call returns, and comm is freed
 * when it has. Errors: podcclInvalidArgument (NULL, or already destroyed or aborted).
 * Counterpart: ncclCommAbort. */
PODCCL_API podcclResult_t podcclCommAbort(podcclComm_t comm);

/* Stores in *asyncError the error that broke the communicator (podcclSuccess if none). The
 * message of the call that broke it names the failing rank; every later call on comm names that
 * message again. Thread-safe, also with podcclCommAbort on another thread.
 * Errors: podcclInvalidArgument (NULL arguments, destroyed communicator). */
PODCCL_API podcclResult_t podcclCommGetAsyncError(podcclComm_t comm, podcclResult_t *asyncError);

/* Number of ranks (*count) / this rank (*rank). Errors: podcclInvalidArgument (NULL). */
PODCCL_API podcclResult_t podcclCommCount(const podcclComm_t comm, int *count);
PODCCL_API podcclResult_t podcclCommUserRank(const podcclComm_t comm, int *rank);

/* Memory this rank holds for comm, in bytes: *shmBytes of shared memory (its segment in
 * an unnamed memfd: one-shot buffers and one FIFO per local sender; bounded by
 * PODCCL_SHM_MAX_BYTES, default 32 MiB, except that each FIFO keeps at least 4 slots of 4 KiB),
 * and *hostBytes of private memory for temporaries (pipeline scratch for receive-and-reduce
 * steps, and partial results; both grow to what the largest schedule issued so far needed).
 * Either pointer may be NULL.
 * Errors: podcclInvalidArgument (NULL or destroyed comm). Thread-safe. */
PODCCL_API podcclResult_t podcclCommMemoryUsage(const podcclComm_t comm, size_t *shmBytes,
                                                size_t *hostBytes);

/* Writes into buf (at most len bytes, NUL-terminated, truncated if needed) which transports
 * carry this rank's traffic: "shm to N local peers (shared memory)" for ranks on this host
 * and, when ranks span several hosts, "; ofi to M remote ranks on H other hosts (tcp;ofi_rxm on
 * eth0, RMA above 65536 B)" or the ib device, port and GID. Same text on every rank of a host.
 * Thread-safe. Errors: podcclInvalidArgument (NULL or destroyed comm, buf NULL, len 0). No NCCL
 * counterpart (NCCL prints it at NCCL_DEBUG=INFO, as podccl also does). */
PODCCL_API podcclResult_t podcclCommTransportInfo(const podcclComm_t comm, char *buf, size_t len);

/* Writes into buf (at most len bytes, NUL-terminated, truncated if needed) the topology levels
 * this communicator found, bottom up: level 0 is the ranks of each host; the levels above come
 * from PODCCL_TOPO_FILE (docs/topology.md), else one network level over all hosts. Per level:
 * its name, link class (bandwidth per rank in GB/s, latency in us, memory semantics), its groups
 * with their ranks and leader (smallest rank), and the rails (ranks with the same index on their
 * hosts). Same text on every rank. Errors: podcclInvalidArgument (NULL or destroyed comm, buf
 * NULL, len 0). Thread-safe. No NCCL counterpart (NCCL_TOPO_DUMP_FILE is the nearest). */
PODCCL_API podcclResult_t podcclCommTopoInfo(const podcclComm_t comm, char *buf, size_t len);

/* Explains the algorithm choice for one call without running it: writes into buf (at most len
 * bytes, NUL-terminated) every algorithm podccl has for `collective` ("allreduce", "allgather",
 * "reducescatter", "broadcast", "reduce", "alltoall", "alltoallv", "barrier") with its predicted
 * time in microseconds from the cost model, or why it cannot run, and the one the model picks;
 * PODCCL_ALGO's forced choice, if any, is named first. count is in elements as the collective's
 * API defines it (per rank for all-gather, reduce-scatter and all-to-all); op matters only for
 * reductions. The same choice is made on every rank. Errors: podcclInvalidArgument (NULL or
 * destroyed comm, NULL buf, len 0, unknown collective, datatype or op). Not thread-safe with
 * other calls on comm. No NCCL counterpart (NCCL logs its choice at NCCL_DEBUG_SUBSYS=TUNING). */
PODCCL_API podcclResult_t podcclCommExplain(const podcclComm_t comm, const char *collective,
                                            size_t count, podcclDataType_t datatype,
                                            podcclRedOp_t op, char *buf, size_t len);

/* ---- Streams -------------------------------------------------------------------------------- */

/* Creates a stream: operations enqueued on it run in order, one at a time, on a thread owned by
 * the stream, while the caller continues. Buffers must stay valid and unchanged until
 * podcclStreamSynchronize returns. Errors: podcclInvalidArgument (NULL), podcclSystemError. */
PODCCL_API podcclResult_t podcclStreamCreate(podcclStream_t *stream);

/* Waits until every operation enqueued on stream has finished. Returns the first error any of
 * them returned since the last synchronize (podcclSuccess if none); podcclInvalidArgument for
 * NULL. */
PODCCL_API podcclResult_t podcclStreamSynchronize(podcclStream_t stream);

/* Synchronizes, then frees the stream; returns what podcclStreamSynchronize would. */
PODCCL_API podcclResult_t podcclStreamDestroy(podcclStream_t stream);

/* ---- Collectives ------------------------------------------------------------------------------
 * Common rules, as in NCCL:
 *  - count is in elements of datatype; a buffer of count elements is count * size(datatype)
 *    bytes. count = 0 is allowed and moves nothing (buffers may then be NULL).
 *  - Every rank of comm must call the same collectives in the same order with matching count,
 *    datatype, op and root.
 *  - Errors common to all: podcclInvalidArgument for a NULL or destroyed comm, a NULL buffer
 *    with count > 0, an unknown datatype or op, root/peer out of range, a buffer that runs past
 *    the end of the address space, buffers that overlap other than in the documented in-place
 *    layout, and counts whose bytes cannot exist in memory: the call's largest buffer (count x
 *    element size, x nranks where the buffer holds a block per rank) above 2^47 bytes (the x86-64
 *    user address space), or above 2^22 pipeline chunks of PODCCL_CHUNK_BYTES (512 GiB at the
 *    default chunk; schedules grow with the chunks). These count limits depend only on count,
 *    datatype, nranks and PODCCL_CHUNK_BYTES, so every rank rejects such a call alike and none
 *    waits for another; nothing moves and the communicator stays usable.
 *    podcclInvalidUsage when PODCCL_ALGO forces an algorithm that cannot run this call (before
 *    anything moves: the communicator stays usable), or when the ranks' calls do not match
 *    (found while data moves: the communicator is broken);
 *    podcclRemoteError / podcclTimeout when a peer died or went silent (naming the rank);
 *    podcclSystemError when the operating system failed us. Every error but InvalidArgument
 *    and the forced-algorithm InvalidUsage breaks the communicator (see the top of this file).
 *  - Thread-safety: one thread per communicator at a time.
 *  - Algorithms, per collective (the registry: algorithms/registry.def; docs/algorithms.md gives
 *    each one's source, tests/check_docs.sh keeps this list equal to it). A cost model chooses one
 *    per call (podcclCommExplain shows why); PODCCL_ALGO forces one:
 *    <algorithms>
 *      allreduce:     direct cma ring rhd rd hier
 *      allgather:     direct cma ring bruck hier
 *      reducescatter: direct cma ring hier
 *      broadcast:     direct cma ring tree hier
 *      reduce:        direct cma ring tree hier
 *      alltoall:      direct cma pairwise
 *      alltoallv:     cma pairwise
 *      barrier:       direct dissemination
 *    </algorithms>
 *    direct: one-shot through shared memory (each rank publishes its data with a sequence number
 *    and reads its peers'; MPICH/Open MPI XHC); cma: single copy with process_vm_readv (Open MPI
 *    btl/sm CMA); ring: pipelined in chunks (Patarasuk & Yuan, JPDC 2009; NCCL's ring); rhd, rd:
 *    recursive halving-doubling and doubling (Rabenseifner 2004; MPICH); bruck: Bruck et al.
 *    1997; tree: binomial (MPICH); pairwise: MPI's pairwise exchange (Thakur et al. 2005);
 *    dissemination: Hensgen, Finkel & Manber 1988; hier: rail-parallel over the topology
 *    levels (NCCL/HAN hierarchy). */

/* recvbuff[i] = op over ranks of sendbuff[i], for i < count, on every rank. Both buffers hold
 * count elements. In place when sendbuff == recvbuff. Counterpart: ncclAllReduce. */
PODCCL_API podcclResult_t podcclAllReduce(const void *sendbuff, void *recvbuff, size_t count,
                                          podcclDataType_t datatype, podcclRedOp_t op,
                                          podcclComm_t comm, podcclStream_t stream);

/* recvbuff[r*sendcount + i] = sendbuff of rank r [i]. sendbuff holds sendcount elements,
 * recvbuff nranks*sendcount. In place when sendbuff == recvbuff + rank*sendcount elements.
 * Counterpart: ncclAllGather. */
PODCCL_API podcclResult_t podcclAllGather(const void *sendbuff, void *recvbuff, size_t sendcount,
                                          podcclDataType_t datatype, podcclComm_t comm,
                                          podcclStream_t stream);

/* recvbuff[i] = op over ranks of sendbuff[rank*recvcount + i]. sendbuff holds
 * nranks*recvcount elements, recvbuff recvcount. In place when recvbuff == sendbuff +
 * rank*recvcount elements. Counterpart: ncclReduceScatter. */
PODCCL_API podcclResult_t podcclReduceScatter(const void *sendbuff, void *recvbuff,
                                              size_t recvcount, podcclDataType_t datatype,
                                              podcclRedOp_t op, podcclComm_t comm,
                                              podcclStream_t stream);

/* Copies root's sendbuff (count elements) to recvbuff (count elements) on every rank. sendbuff
 * is read on root only. In place when sendbuff == recvbuff. Counterpart: ncclBroadcast. */
PODCCL_API podcclResult_t podcclBroadcast(const void *sendbuff, void *recvbuff, size_t count,
                                          podcclDataType_t datatype, int root, podcclComm_t comm,
                                          podcclStream_t stream);

/* As podcclAllReduce, but only root's recvbuff receives the result; recvbuff is ignored (may
 * be NULL) on other ranks. Counterpart: ncclReduce. */
PODCCL_API podcclResult_t podcclReduce(const void *sendbuff, void *recvbuff, size_t count,
                                       podcclDataType_t datatype, podcclRedOp_t op, int root,
                                       podcclComm_t comm, podcclStream_t stream);

/* recvbuff[r*count + i] = sendbuff of rank r [rank*count + i]. Both buffers hold nranks*count
 * elements; count is per peer. In place when sendbuff == recvbuff. Counterpart: ncclAlltoAll,
 * MPI_Alltoall. */
PODCCL_API podcclResult_t podcclAllToAll(const void *sendbuff, void *recvbuff, size_t count,
                                         podcclDataType_t datatype, podcclComm_t comm,
                                         podcclStream_t stream);

/* Vector all-to-all, for Mixture-of-Experts dispatch/combine: this rank sends sendcounts[p]
 * elements starting at element sdispls[p] of sendbuff to rank p, and receives recvcounts[p]
 * elements from rank p at element rdispls[p] of recvbuff. Each array has nranks entries, in
 * elements. recvcounts[p] on this rank must equal sendcounts[rank] on rank p; in particular
 * sendcounts[rank] must equal recvcounts[rank] (the block a rank sends itself), which is
 * checked locally (podcclInvalidArgument naming both, before anything moves; the other ranks,
 * which passed consistent counts, then wait for this rank until the timeout). Receive regions
 * must not overlap each other or sendbuff (no in-place); displacements may leave gaps. Each
 * region (displacement + count) must end below 2^47 bytes, and this rank's send and receive
 * counts must each add up to at most 2^22 chunks of PODCCL_CHUNK_BYTES: checked on this rank
 * only, as counts differ between ranks. Counterpart: MPI_Alltoallv. */
PODCCL_API podcclResult_t podcclAllToAllv(const void *sendbuff, const size_t sendcounts[],
                                          const size_t sdispls[], void *recvbuff,
                                          const size_t recvcounts[], const size_t rdispls[],
                                          podcclDataType_t datatype, podcclComm_t comm,
                                          podcclStream_t stream);

/* Point to point: count elements to/from peer. Matched in order per (sender, receiver) pair;
 * the receiver's count must equal the sender's. Outside a group a send may block until the
 * peer receives; put the sends and receives of an exchange inside podcclGroupStart/End to run
 * them together. peer == own rank is allowed inside a group. Counterpart: ncclSend/ncclRecv. */
PODCCL_API podcclResult_t podcclSend(const void *sendbuff, size_t count, podcclDataType_t datatype,
                                     int peer, podcclComm_t comm, podcclStream_t stream);
PODCCL_API podcclResult_t podcclRecv(void *recvbuff, size_t count, podcclDataType_t datatype,
                                     int peer, podcclComm_t comm, podcclStream_t stream);

/* Returns when every rank of comm has entered the barrier. */
PODCCL_API podcclResult_t podcclBarrier(podcclComm_t comm, podcclStream_t stream);

/* Group calls (per thread, nestable): operations issued between podcclGroupStart and the
 * outermost podcclGroupEnd are checked when issued, and run together at podcclGroupEnd:
 * collectives in issue order, then all sends and receives of each communicator as one
 * schedule, so exchanges that would deadlock one by one complete. podcclGroupEnd returns the
 * first error. An operation whose communicator is destroyed or aborted by another thread before
 * podcclGroupEnd is dropped (podcclGroupEnd returns podcclInvalidArgument; the others run);
 * podcclCommAbort on the calling thread drops its operations on that communicator, and
 * podcclCommDestroy refuses (podcclInvalidUsage) while the group holds some.
 * Errors: podcclInvalidUsage for GroupEnd without GroupStart. Counterpart:
 * ncclGroupStart/ncclGroupEnd. */
PODCCL_API podcclResult_t podcclGroupStart(void);
PODCCL_API podcclResult_t podcclGroupEnd(void);

#ifdef __cplusplus
}
#endif

#endif /* PODCCL_H */
