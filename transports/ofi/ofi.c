/* libfabric transport: placeholder. */
#include "src/comm.h"

static int ofi_available(podcclComm_t comm, char *why, size_t len) {
    (void)comm;
    snprintf(why, len, "the ofi transport is not implemented yet");
    return 0;
}

const pc_transport pc_transport_ofi = {.name = "ofi", .available = ofi_available};
