/* The algorithm registry: every algorithm's descriptor, per collective in the order the docs
 * list them. The planner (src/tune.c), PODCCL_ALGO, the explain output and docs/algorithms.md
 * all read this list; nothing else names algorithms. */
#include <strings.h>

#include "algorithms/flat.h"

#define X(c, a) extern const pc_algo_desc pc_algo_##c##_##a;
#include "algorithms/registry.def"
#undef X

const pc_algo_desc *const pc_algos[] = {
#define X(c, a) &pc_algo_##c##_##a,
#include "algorithms/registry.def"
#undef X
    NULL};

static const char *coll_names[PC_NCOLL] = {"allreduce", "allgather", "reducescatter", "broadcast",
                                           "reduce",    "alltoall",  "alltoallv",     "send",
                                           "recv",      "barrier"};

const char *algo_coll_name(int coll) {
    return coll >= 0 && coll < PC_NCOLL ? coll_names[coll] : "?";
}

int algo_coll_find(const char *name, size_t len) {
    for (int c = 0; c < PC_NCOLL; c++)
        if (strlen(coll_names[c]) == len && strncasecmp(name, coll_names[c], len) == 0) return c;
    return -1;
}

const pc_algo_desc *algo_find(int coll, const char *name, size_t len) {
    for (int i = 0; pc_algos[i]; i++)
        if (pc_algos[i]->coll == coll && strlen(pc_algos[i]->name) == len &&
            strncasecmp(name, pc_algos[i]->name, len) == 0)
            return pc_algos[i];
    return NULL;
}

void podcclPrintAlgorithms(void) {
    printf("| collective | algorithm | what it is (source) |\n|---|---|---|\n");
    for (int i = 0; pc_algos[i]; i++)
        printf("| %s | `%s` | %s |\n", algo_coll_name(pc_algos[i]->coll), pc_algos[i]->name,
               pc_algos[i]->desc);
}
