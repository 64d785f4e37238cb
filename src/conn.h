/* Connections to peers: the context every transport of a communicator gets (podccl_net.h), the
 * network transport, loaded as a module (podccl-net-NAME.so, or PODCCL_NET_PLUGIN) only when
 * the ranks span hosts, and one connection per peer through the first transport that reaches it:
 * shared memory inside the memory-semantic domain, else the network. */
#ifndef PODCCL_CONN_H
#define PODCCL_CONN_H

#include "src/comm.h"

/* Fills comm->tr->ctx from the communicator (after topology; before any transport). */
void pc_conn_ctx(podcclComm_t comm);
/* Collective: picks the network transport every rank can run (PODCCL_NET, PODCCL_NET_PLUGIN),
 * listens, all-gathers the handles, connects every peer (never blocking on one: all progress
 * until PODCCL_TIMEOUT), and agrees on single copy (comm->tr->single_copy). Errors name the rank
 * and the reason (a module not found or of another ABI, a peer that cannot run the transport, a
 * peer that died or did not answer). */
podcclResult_t pc_conn_setup(podcclComm_t comm);
/* Closes every connection and listen object, and frees comm->tr. */
void pc_conn_free(podcclComm_t comm);

#endif
