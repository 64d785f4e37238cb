/* The flight recorder (docs/flight-recorder.md): every communicator keeps its last
 * PODCCL_TRACE_OPS operations in a ring (collective, sizes, type, op, root or peers, algorithm,
 * sequence numbers, state, the step it waits in and on whom, timestamps), and the process writes
 * all of its rings as JSON to $PODCCL_TRACE_DIR/podccl-trace.<host>.<pid>.json on a timeout, on
 * an error that breaks a communicator, and on SIGUSR1. tools/podccl-trace merges the ranks'
 * files. PyTorch's flight recorder and HCCL's stuck detection are the models.
 *
 * Off (PODCCL_TRACE_DIR unset) every hook below costs one load and one branch that is never
 * taken. On, the hooks of the running operation write plain words into a ring allocated at
 * init: no allocation, no lock, no atomic read-modify-write, no system call; timestamps come
 * from the TSC when the kernel's own clock does (converted to CLOCK_REALTIME microseconds only
 * when a file is written). Entries are written by the thread that runs the operation (under the
 * communicator's use_lock); a reader tolerates a torn entry (a sequence word around each
 * entry's identity). A queued operation (group or stream) is recorded by the submitting thread
 * in a small side array with an atomic index, and claimed by the thread that starts it. */
#ifndef PODCCL_TRACE_H
#define PODCCL_TRACE_H

#include "algorithms/algo.h"
#include "src/comm.h"

/* 1 once a communicator was created with PODCCL_TRACE_DIR set: from then on the hooks record. */
extern int trace_on __attribute__((visibility("hidden")));

/* comm.c: allocates the ring of a new communicator when PODCCL_TRACE_DIR is set (and, at the
 * first one, installs the SIGUSR1 handler and starts the dump thread). id/idlen: bytes that
 * identify the communicator on every rank alike (never the secret); their hash is its id in the
 * files. Never fails: without memory the communicator is simply not recorded (logged). */
void trace_comm_init(podcclComm_t comm, const void *id, size_t idlen);
/* comm.c: forgets and frees comm's ring (nothing if it has none). */
void trace_comm_free(podcclComm_t comm);

/* Writes every communicator's ring of this process now; reason goes into the file ("timeout",
 * "error", "signal", ...). Takes a mutex and allocates: never from a signal handler. */
void trace_dump(const char *reason);

/* The hooks' slow halves (hidden: no PLT call from the library's other files). */
#define TRACE_INTERNAL __attribute__((visibility("hidden")))
TRACE_INTERNAL void trace_queued_(podcclComm_t comm, const pc_args *a);
TRACE_INTERNAL void trace_begin_(podcclComm_t comm, const pc_args *a, const pc_algo_desc *algo,
                                 podcclResult_t res);
TRACE_INTERNAL void trace_begin_p2p_(podcclComm_t comm, const pc_sched *s);
TRACE_INTERNAL void trace_end_(podcclComm_t comm, podcclResult_t res);
TRACE_INTERNAL void trace_step_(podcclComm_t comm, int done, int n, const int *peers, int npeers);
TRACE_INTERNAL void trace_timeout_(podcclComm_t comm, int culprit, const int *peers, int npeers);

#ifdef PODCCL_NO_TRACE /* for measuring what the hooks cost when off: no hooks at all */
#define TRACE_HOOK(call)                                                                           \
    do {                                                                                           \
        if (0) call;                                                                               \
    } while (0)
#else
#define TRACE_HOOK(call)                                                                           \
    do {                                                                                           \
        if (__builtin_expect(__atomic_load_n(&trace_on, __ATOMIC_RELAXED), 0)) call;               \
    } while (0)
#endif

/* enqueue.c, submit: a collective goes into a group or onto a stream (state "queued"). */
static inline void trace_queued(podcclComm_t comm, const pc_args *a) {
    TRACE_HOOK(trace_queued_(comm, a));
}
/* enqueue.c, pc_run under use_lock: a collective starts with algorithm algo (NULL when it
 * failed before one was chosen: res says how); takes the next sequence number. A collective with
 * nothing to move (count 0) is recorded as ended with res at once. */
static inline void trace_begin(podcclComm_t comm, const pc_args *a, const pc_algo_desc *algo,
                               podcclResult_t res) {
    TRACE_HOOK(trace_begin_(comm, a, algo, res));
}
/* enqueue.c, run_p2p under use_lock: a batch of sends and receives (schedule s) starts; one
 * sequence number for the batch. */
static inline void trace_begin_p2p(podcclComm_t comm, const pc_sched *s) {
    TRACE_HOOK(trace_begin_p2p_(comm, s));
}
/* enqueue.c: the operation begun last on comm ends with res. A result other than success and
 * podcclInvalidArgument writes the files (once per communicator while it stays broken). */
static inline void trace_end(podcclComm_t comm, podcclResult_t res) {
    TRACE_HOOK(trace_end_(comm, res));
}
/* exec.c, when the executor goes idle: done of n steps are complete; peers[0..npeers) are the
 * peers the unfinished posted steps wait on. */
static inline void trace_step(podcclComm_t comm, int done, int n, const int *peers, int npeers) {
    TRACE_HOOK(trace_step_(comm, done, n, peers, npeers));
}
/* wait.c, where a timeout is declared: records whom the operation waits on (peers) and whom the
 * timeout blames (culprit, -1 unknown), then writes the files. */
static inline void trace_timeout(podcclComm_t comm, int culprit, const int *peers, int npeers) {
    TRACE_HOOK(trace_timeout_(comm, culprit, peers, npeers));
}

#endif
