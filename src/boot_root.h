/* The rendezvous service (boot_root.c): one thread per process serves every unique id this
 * process opened, answering each joining rank with the table of listen addresses. */
#ifndef PODCCL_BOOT_ROOT_H
#define PODCCL_BOOT_ROOT_H

#include "boot_proto.h"

/* Fills *id with a new secret and an address for the root (bind_addr may be NULL: chosen by
 * PODCCL_SOCKET_IFNAME / PODCCL_COMM_ID) and hands it to the process's rendezvous service
 * (one thread for every open unique id, boot_root.c), which listens there until every rank has
 * joined or the timeout passes. */
podcclResult_t boot_root_start(pc_id *id, const pc_sockaddr *bind_addr, double timeout);
/* As boot_root_start, with id->addr and id->secret already filled by the caller; listens on
 * id->addr exactly (the port may be 0: then id->addr gets the port chosen). */
podcclResult_t boot_root_start_secret(pc_id *id, double timeout);
/* Serves the rendezvous of an already listening socket (podcclCommShrink: the new root reuses
 * its bootstrap listener). Takes ownership of lfd. */
podcclResult_t boot_root_serve(int lfd, const uint8_t secret[PC_SECRET_BYTES], double timeout);
/* After this process's own rank got a failed rendezvous answer: waits up to `seconds` while a
 * failed rendezvous served here still owes late ranks their answer. */
void boot_root_linger(double seconds);

#endif
