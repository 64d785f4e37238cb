/* A network module of another ABI version (test_netmod): the loader must refuse it, naming both
 * versions, before it calls anything in it. */
#include "podccl_net.h"

static const pc_transport table = {.name = "badabi"};

PC_NET_EXPORT const pc_net_plugin podcclNetPlugin_v1 = {
    .abi_version = 999,
    .struct_size = sizeof(pc_transport),
    .transport = &table,
};
