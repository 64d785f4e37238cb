/* Dissemination barrier (Hensgen, Finkel & Manber, 1988; MPICH's MPI_Barrier over the network):
 * in round k every rank sends a token to rank + 2^k and receives one from rank - 2^k; the send of
 * round k waits for the receive of round k-1. After ceil(log2 n) rounds every rank has heard,
 * directly or through others, from every rank. Used where one-shot shared memory cannot reach
 * all ranks (ranks on several hosts). */
#include "algorithms/algo.h"
#include "src/core.h"

podcclResult_t dissemination_barrier(pc_sched *s, int rank, int n, char *tok) {
    /* tok[0] is sent, tok[1] receives: contents do not matter. */
    int prev_recv = -1;
    for (int d = 1; d < n; d *= 2) {
        int to = (rank + d) % n, from = ((rank - d) % n + n) % n;
        sched_add(s, PC_STEP_SEND, to, tok, NULL, 1, prev_recv);
        prev_recv = sched_add(s, PC_STEP_RECV, from, NULL, tok + 1, 1, -1);
    }
    return s->oom ? pc_err(NULL, podcclSystemError, "out of memory building a schedule")
                  : podcclSuccess;
}
