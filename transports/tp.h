/* Helpers the transports share (header only, so that network modules built apart from
 * libpodccl.so use them too): everything reaches the core through the context (podccl_net.h). */
#ifndef PODCCL_TP_H
#define PODCCL_TP_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "transports/transport.h"

/* Records an error for podcclGetLastError and evaluates to rc. */
#define TP_ERR(ctx, rc, ...) ((ctx)->err((ctx)->comm, (rc), __VA_ARGS__))
#define TP_LOG(ctx, level, subsys, ...)                                                            \
    do {                                                                                           \
        if ((level) <= *(ctx)->log_level) (ctx)->log((level), (subsys), __VA_ARGS__);              \
    } while (0)
/* Returns the result of call when it failed. */
#define TP_CHECK(call)                                                                             \
    do {                                                                                           \
        podcclResult_t tp_rc_ = (call);                                                            \
        if (tp_rc_ != podcclSuccess) return tp_rc_;                                                \
    } while (0)

#define TP_CHECKGOTO(call, res, label)                                                             \
    do {                                                                                           \
        (res) = (call);                                                                            \
        if ((res) != podcclSuccess) goto label;                                                    \
    } while (0)

/* Monotonic seconds. */
static inline double tp_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

#endif
