/* Multi-process test harness: forks one process per rank, hands them a unique id without
 * creating threads before fork, and kills everything if the job does not finish in time. Also
 * the shared helpers for reporting wrong results. */
#ifndef PODCCL_TEST_HARNESS_H
#define PODCCL_TEST_HARNESS_H

#include <stddef.h>
#include <stdint.h>

#include "podccl.h"

#define HARNESS_MAX_RANKS 64

typedef int (*harness_body_fn)(podcclComm_t comm, int rank, int nranks, void *arg);

typedef struct {
    double timeout_sec;     /* watchdog; <= 0: $HARNESS_TIMEOUT, else 300 */
    int no_comm;            /* body gets comm == NULL and creates its own */
    podcclConfig_t *config; /* for podcclCommInitRankConfig; NULL: defaults */
    uint64_t expendable;    /* bit r: rank r may die or hang; it is SIGKILLed once every other
                               rank has exited, and its exit is not judged */
    int status[HARNESS_MAX_RANKS]; /* out: waitpid status of each rank */
    double elapsed_sec;            /* out: time until the last judged rank exited */
} harness_opts;

/* Runs body on nranks forked processes, each with its own communicator (created before body and
 * destroyed after it). Returns 0 only if every rank exited 0; prints which rank failed and how. */
int harness_run(int nranks, harness_body_fn body, void *arg);
int harness_run_opts(int nranks, harness_body_fn body, void *arg, harness_opts *opts);

/* In a rank: the body has freed its communicator itself (destroy or abort); the harness must not
 * destroy it after the body returns. */
void harness_comm_freed(void);

/* In a rank: the unique id rank 0 created for this run. */
podcclUniqueId harness_unique_id(void);
/* In a rank: HARNESS_SCRATCH_BYTES of zeroed memory shared by all ranks of the run. */
#define HARNESS_SCRATCH_BYTES 4096
void *harness_scratch(void);

double harness_now(void); /* monotonic seconds */
const char *harness_type_name(podcclDataType_t t);
const char *harness_op_name(podcclRedOp_t op);

/* What a check is about, for the failure message. op < 0 or root < 0: not applicable. */
typedef struct {
    const char *coll;
    int rank;
    podcclDataType_t type;
    int op;
    size_t count;
    int inplace;
    int root;
} harness_ctx;

typedef double (*harness_load_fn)(const void *buf, size_t i, podcclDataType_t t);
typedef double (*harness_expect_fn)(size_t i, const void *arg);

/* Compares load(buf, i) with expect(i, arg) bit for bit (as doubles) for i < n. On a mismatch
 * prints "rank R: COLL type op count in-place: WHAT: first wrong index I: got G, expected E
 * (N of n wrong)" and returns the number of wrong elements. */
size_t harness_check(const harness_ctx *c, const char *what, const void *buf, size_t n,
                     harness_load_fn load, harness_expect_fn expect, const void *arg);

/* Prints "rank R: COLL ...: MESSAGE" for a failure that is not a wrong element. */
void harness_fail(const harness_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Checks that a call returned `want`; otherwise prints the code, its string and
 * podcclGetLastError(comm). Returns 0 if it did, 1 if not. */
int harness_expect_rc(const harness_ctx *c, podcclResult_t got, podcclResult_t want,
                      podcclComm_t comm);

/* A correct all-reduce (int32 sum, count elements, out of place) on a live communicator: every
 * rank calls it. Returns 0 if it succeeded with the right result, else prints why and returns 1. */
int harness_allreduce_ok(podcclComm_t comm, int rank, int nranks, size_t count);

/* Sleeps ms milliseconds (the tests poll shared flags with it). */
void harness_sleep_ms(int ms);

#endif
