/* Internal declarations shared by the core modules. Transports and algorithms include only the
 * pieces they need (transports/transport.h, algorithms/algo.h). */
#ifndef PODCCL_CORE_H
#define PODCCL_CORE_H

#include "config.h"
#include "podccl.h"
#include "podccl_net.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- Errors (debug.c) ---------------------------------------------------------------------- */

/* A communicator's error state. The communicator (src/comm.h) embeds it as its first member
 * (UCC's pattern of an object embedding its parent), so that the utilities below reach it from a
 * podcclComm_t without knowing the rest of the communicator. */
typedef struct pc_errs {
    int rank;             /* shown in log lines of threads that did not create the communicator */
    _Atomic int async;    /* podcclResult_t that broke it (podcclSuccess: not broken) */
    pthread_mutex_t lock; /* guards last and first */
    char last[512];       /* the last error's message (podcclGetLastError) */
    char first[512];      /* the message of the error that broke it (set with async) */
} pc_errs;
static inline pc_errs *pc_errs_of(podcclComm_t comm) {
    return (pc_errs *)(void *)comm;
}

/* Records a formatted message for podcclGetLastError (on comm if not NULL, and on the calling
 * thread), logs it at WARN, and returns rc so callers can `return pc_err(...)`. */
podcclResult_t pc_err(podcclComm_t comm, podcclResult_t rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The calling thread's last error message (podcclGetLastError without a communicator). */
const char *pc_thread_err(void);
/* Marks the communicator broken with rc (first error wins) and returns rc. The first breaking
 * error's message (the calling thread's last pc_err, when it had this code) is kept apart from
 * the last message, so later calls name it once. */
podcclResult_t pc_comm_fail(podcclComm_t comm, podcclResult_t rc);
/* As pc_comm_fail, with the message why (NULL: the calling thread's last error). */
podcclResult_t pc_comm_fail_why(podcclComm_t comm, podcclResult_t rc, const char *why);
/* Copies the first breaking error's message into buf. */
void pc_comm_first_err(podcclComm_t comm, char *buf, size_t len);
/* The communicator's last error message ("" if none). */
const char *pc_comm_last_err(podcclComm_t comm);
/* The error that broke the communicator, or podcclSuccess. */
podcclResult_t pc_comm_async(podcclComm_t comm);

/* Check a call; on failure log file:line -> rc (NCCL's back-trace style) and return it. */
#define PCCHECK(call)                                                                              \
    do {                                                                                           \
        podcclResult_t rc_ = (call);                                                               \
        if (rc_ != podcclSuccess) {                                                                \
            pc_log(PC_LOG_INFO, PC_SUB_ALL, "%s:%d -> %d", __FILE__, __LINE__, (int)rc_);          \
            return rc_;                                                                            \
        }                                                                                          \
    } while (0)
#define PCCHECKGOTO(call, res, label)                                                              \
    do {                                                                                           \
        (res) = (call);                                                                            \
        if ((res) != podcclSuccess) {                                                              \
            pc_log(PC_LOG_INFO, PC_SUB_ALL, "%s:%d -> %d", __FILE__, __LINE__, (int)(res));        \
            goto label;                                                                            \
        }                                                                                          \
    } while (0)

/* ---- Logging (debug.c) ---------------------------------------------------------------------- */

/* Levels and subsystems: PC_LOG_*, PC_SUB_* (podccl_net.h, which transport modules share). */
extern int pc_log_level;
void pc_log_init(void);
/* Sets the rank shown in this thread's log lines. */
void pc_log_set_rank(int rank);
void pc_log_write(int level, int subsys, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
#define pc_log(level, subsys, ...)                                                                 \
    do {                                                                                           \
        if ((level) <= pc_log_level) pc_log_write((level), (subsys), __VA_ARGS__);                 \
    } while (0)

/* ---- Parameters (param.c) ------------------------------------------------------------------- */

/* Every PODCCL_* variable is declared once in param.c's table, with default, type, range and
 * doc (docs/env.md). A variable set to "" counts as unset. */
/* The value, or the default when unset; the default also when the value is invalid (possible
 * only if it changed after pc_param_check_all), with a WARN. 0 for "auto" of an
 * integer-or-auto parameter (callers check pc_param_str for "auto" first) and when neither
 * value nor default is a number. */
long long pc_param_int(const char *name);
const char *pc_param_str(const char *name); /* NULL when unset and no default */
/* Checks every set variable of the table against its type and range: podcclInvalidArgument
 * with a message naming each bad variable, its value and what is allowed. Also logs, once per
 * process, a WARN for each unknown PODCCL_* variable naming the closest known one. Called at the
 * start of podcclGetUniqueId and every init, so that the readers above see valid values only.
 * Reads the environment: not thread-safe against setenv. */
podcclResult_t pc_param_check_all(void);
/* 0 if value is valid for the parameter name; else -1 with a message in err. Pure: no
 * getenv, no logging, no allocation that outlives the call. Unknown names: -1. err may be NULL
 * (len 0). Integers: decimal digits with an optional leading '-', no whitespace, no leading
 * zero, no octal/hex, overflow detected. Thread-safe. */
int pc_param_validate(const char *name, const char *value, char *err, size_t len);
/* Prints the whole of docs/env.md (intro, the table with each parameter's long doc, the
 * launcher variables) from param.c's table to f: `make env-md` (tests/gen_env_md). 0, or -1
 * (after printing, with a message on stderr) when a parameter's subsystem is not a known group
 * or its long doc would break the table ('|' or a newline). */
int pc_param_print_env_md(FILE *f);

/* The operations of the API (the coll of pc_args and pc_sig), used to index per-collective
 * settings and tables. */
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

/* ---- Types and reductions (reduce.c) -------------------------------------------------------- */

size_t pc_type_size(podcclDataType_t t); /* 0 for an unknown type */
const char *pc_type_name(podcclDataType_t t);
const char *pc_op_name(podcclRedOp_t op);

/* dst[i] = a[i] op b[i] for i < count. dst may alias a or b. Avg reduces as Sum (the division
 * happens once, at the end, in pc_avg_finish). Half types are widened to float32, combined and
 * rounded to nearest-even. */
void pc_reduce2(void *dst, const void *a, const void *b, size_t count, podcclDataType_t t,
                podcclRedOp_t op);
/* dst[i] = op over s of srcs[s][i], nsrc >= 1, accumulating half types in float32 across all
 * sources before one rounding. dst may alias srcs[0]. */
void pc_reduce_n(void *dst, const void *const *srcs, int nsrc, size_t count, podcclDataType_t t,
                 podcclRedOp_t op);
/* Test hook: enable (1) or disable (0) the F16C float16 conversions; returns whether the CPU
 * has them. The software path stays for CPUs without F16C and is tested through this. */
int pc_reduce_use_f16c(int enable);
/* buf[i] /= nranks (integer division for integer types), for podcclAvg. */
void pc_avg_finish(void *buf, size_t count, podcclDataType_t t, int nranks);

/* ---- Small helpers ------------------------------------------------------------------------- */

#define PC_FNV_OFFSET 0xcbf29ce484222325ull
/* FNV-1a (64 bits) of n bytes, continuing from h (PC_FNV_OFFSET to start). */
static inline uint64_t pc_fnv1a(uint64_t h, const void *data, size_t n) {
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}
/* The same over a NUL-terminated string (NULL: nothing). */
static inline uint64_t pc_fnv1a_str(uint64_t h, const char *s) {
    return s ? pc_fnv1a(h, s, strlen(s)) : h;
}
/* MurmurHash3's 64-bit finaliser: a bijection that spreads every input bit over the output. */
static inline uint64_t pc_fmix64(uint64_t x) {
    x ^= x >> 33, x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33, x *= 0xc4ceb9fe1a85ec53ull;
    return x ^ x >> 33;
}

double pc_now(void); /* monotonic seconds */

#endif
