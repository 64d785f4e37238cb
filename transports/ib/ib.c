/* RDMA verbs transport: placeholder until the implementation lands. */
#include "src/comm.h"

static int ib_available(podcclComm_t comm, char *why, size_t len) {
    (void)comm;
    snprintf(why, len, "the ib transport is not implemented yet");
    return 0;
}

const pc_transport pc_transport_ib = {.name = "ib", .available = ib_available};
