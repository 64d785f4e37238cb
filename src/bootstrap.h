/* Bootstrap: unique id, an authenticated TCP rendezvous at the root, then a ring of
 * authenticated sockets between ranks used for setup all-gathers and barriers (NCCL's bootstrap
 * design, with mutual HMAC challenge-response on every connection: src/boot_proto.h,
 * docs/security.md). */
#ifndef PODCCL_BOOTSTRAP_H
#define PODCCL_BOOTSTRAP_H

#include <netinet/in.h>
#include <stdint.h>
#include <sys/socket.h>

#include "boot_proto.h"
#include "core.h"
#include "podccl_net.h"

typedef struct {
    int rank, nranks;
    int next_fd, prev_fd; /* ring: send to rank+1, receive from rank-1 */
    int lfd;              /* this rank's bootstrap listener, kept for podcclCommShrink (-1) */
    int has_lfd;
    uint8_t secret[PC_SECRET_BYTES];
    double timeout;     /* seconds */
    pc_sockaddr local;  /* this rank's address on the bootstrap network (port 0): network
                           transports open their endpoints on the same interface */
    pc_sockaddr *addrs; /* [nranks] every rank's bootstrap listener */
    int shrinks;        /* podcclCommShrink calls so far: part of the next rendezvous key */
    int root_failed;    /* the root answered that the rendezvous failed */
    int aborted;        /* an abort notice went out from this rank */
    int abort_culprit;  /* the first abort notice seen or sent */
    int abort_rc;       /* its podcclResult_t */
    int abort_reporter; /* the rank that sent it first */
    int abort_ncalls;   /* 2: a mismatch notice with the reporter's and the culprit's calls */
    pc_sig abort_calls[2];
    char abort_why[256];
} pc_boot;

/* Decodes and checks the bytes of a podcclUniqueId (pure: used by the fuzzers): magic, address
 * family (IPv4 or IPv6) and port. podcclInvalidArgument with the reason otherwise. */
podcclResult_t boot_decode_id(const void *bytes, size_t len, pc_id *out);
/* Joins the rendezvous named by id and connects the ring. Collective over all ranks. */
podcclResult_t boot_init(pc_boot *b, const pc_id *id, int rank, int nranks, double timeout);
/* data holds nranks slots of `bytes`; this rank's slot is filled; on return all are. */
podcclResult_t boot_allgather(pc_boot *b, void *data, size_t bytes);
podcclResult_t boot_barrier(pc_boot *b);
void boot_close(pc_boot *b);
/* 1 if peer is this rank's neighbour on the bootstrap ring and its socket has closed (the
 * process exited or its host went away). Never blocks; 0 for any other peer. */
int boot_peer_gone(pc_boot *b, int peer);
/* Never blocks: 1 when init has failed elsewhere and this rank should stop waiting: a ring
 * neighbour's socket closed (that rank died) or an abort notice arrived from either neighbour.
 * *culprit is the rank to blame (-1 unknown) and why the reason, ready for an error message
 * ("rank 3 died during init (its bootstrap socket closed; seen by rank 2)"). 0 otherwise. */
int boot_poll_abort(pc_boot *b, int *culprit, char *why, size_t len);
/* As boot_poll_abort after init: only an abort notice counts, not a neighbour's closed socket
 * (a rank that finished its work and exited normally closes it too). */
int boot_poll_notice(pc_boot *b, int *culprit, int *rc, char *why, size_t len);
/* As boot_send_abort, with the result code the others report (podcclInvalidUsage for a
 * mismatched call, podcclTimeout for a stuck rank; boot_send_abort: podcclRemoteError). */
void boot_send_abort_rc(pc_boot *b, int culprit, podcclResult_t rc, const char *why);
/* As boot_send_abort_rc with podcclInvalidUsage, for a mismatch this rank found: the notice also
 * carries this rank's call (mine) and the culprit's (theirs), so that a rank that learns of the
 * mismatch from the ring first can still name both calls. */
void boot_send_mismatch(pc_boot *b, int culprit, const pc_sig *mine, const pc_sig *theirs,
                        const char *why);
/* The abort notice that boot_poll_notice reported: 1 when it carried both calls of a mismatch,
 * with its reporter and the reporter's (rep) and the culprit's (cul) calls; 0 otherwise. */
int boot_notice_calls(const pc_boot *b, int *reporter, pc_sig *rep, pc_sig *cul);
/* Best effort, bounded (tens of ms at most): tells both ring neighbours that this rank gives up
 * init because of culprit (-1 unknown) with why; they pass the notice on around the ring, so
 * every rank learns the first cause without waiting for its timeout. */
void boot_send_abort(pc_boot *b, int culprit, const char *why);
#endif
