/* Point-to-point operations of a group, added to one schedule so that they progress together. */
#include "algorithms/algo.h"
#include "src/core.h"

podcclResult_t p2p_add(pc_sched *s, const pc_args *a, int me, size_t chunk) {
    size_t es = pc_type_size(a->dtype), bytes = a->count * es;
    chunk = elem_chunk(chunk, es);
    int kind = a->coll == PC_SEND ? PC_STEP_SEND : PC_STEP_RECV;
    (void)me;
    /* A zero-byte message still travels, so that the receiver's match order holds. */
    size_t off = 0;
    do {
        size_t len = bytes - off < chunk ? bytes - off : chunk;
        sched_add(s, kind, a->root, kind == PC_STEP_SEND ? (const char *)a->sendbuff + off : NULL,
                  kind == PC_STEP_RECV ? (char *)a->recvbuff + off : NULL, len, -1);
        off += len;
    } while (off < bytes);
    return sched_status(s);
}
