/* Schedule storage. */
#include <stdlib.h>

#include "algorithms/algo.h"

int sched_add(pc_sched *s, int kind, int peer, const void *src, void *dst, size_t bytes, int dep) {
    if (s->n == s->cap) {
        int cap = s->cap ? 2 * s->cap : 64;
        pc_step *p = realloc(s->steps, sizeof(*p) * (size_t)cap);
        if (!p) {
            s->oom = 1;
            return -1;
        }
        s->steps = p, s->cap = cap;
    }
    if (kind == PC_STEP_RECV_REDUCE && bytes > s->max_reduce_bytes) s->max_reduce_bytes = bytes;
    s->steps[s->n] =
        (pc_step){.kind = kind, .peer = peer, .src = src, .dst = dst, .bytes = bytes, .dep = dep};
    return s->n++;
}

void sched_free(pc_sched *s) {
    free(s->steps);
    s->steps = NULL;
    s->n = s->cap = 0;
}
