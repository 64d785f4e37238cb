/* Sockets and the handshake's acceptor side (boot_sock.c), shared by the bootstrap's rank side
 * (bootstrap.c) and its rendezvous service (boot_root.c). Not used outside the bootstrap. */
#ifndef PODCCL_BOOT_SOCK_H
#define PODCCL_BOOT_SOCK_H

#include "boot_proto.h"

/* Unauthenticated connections a listener keeps at once; beyond, the oldest is dropped. */
#define BOOT_MAX_PENDING 512
/* Seconds an unauthenticated connection may take to prove it knows the secret. A rank answers
 * in microseconds: this only bounds what a silent stranger costs (a slot, never a wait). */
#define BOOT_HANDSHAKE_S 5.0

socklen_t boot_addr_len(const pc_sockaddr *a);
/* "10.0.0.1" / "fe80::1" ("" for another family), and the same with ":port". */
const char *boot_addr_ip(const pc_sockaddr *a, char *buf, size_t n);
const char *boot_addr_str(const pc_sockaddr *a, char *buf, size_t n);
podcclResult_t boot_wait_fd(int fd, short ev, double deadline, const char *what);
podcclResult_t boot_send_all(int fd, const void *buf, size_t n, double deadline);
podcclResult_t boot_recv_all(int fd, void *buf, size_t n, double deadline);
podcclResult_t boot_listen_on(pc_sockaddr *addr, int *fd_out);

/* The acceptor's side of the handshake on one connection. */
typedef struct boot_pend {
    int fd, stage;
    double deadline;
    size_t have;
    uint8_t buf[BP_M1_BYTES + BP_M3_BYTES];
    uint8_t m2[BP_M2_BYTES];
    bp_m1 m1; /* valid when authenticated */
} boot_pend;

/* Reads what has arrived: 1 when the connector has proved the key (p->m1 holds its hello), 0
 * when more is needed, -1 when the connection must be closed (the reason is logged). */
int boot_pend_progress(boot_pend *p, const uint8_t key[PC_SECRET_BYTES], int self_rank);
/* 1 (with a WARN naming the uid) if the peer of TCP socket fd runs as another user over
 * loopback: the job's own ranks run as one user. role names the socket in the message. */
int boot_uid_refused(int fd, const char *role);
/* Accepts every waiting connection of nonblocking listener lfd into the pending set (oldest
 * dropped beyond BOOT_MAX_PENDING); connections from another uid over loopback are refused. */
void boot_accept_pending(int lfd, boot_pend **pend, int *npend);
/* Closes and removes entry i of a pending set. */
void boot_pend_drop(boot_pend **pend, int *npend, int i);

/* Parses "host:port" (IPv4, [IPv6] or a name; port 1..65535) into *out. */
podcclResult_t boot_parse_addr(const char *s, pc_sockaddr *out);
/* The address of the interface chosen by PODCCL_SOCKET_IFNAME (port 0). */
podcclResult_t boot_pick_interface(pc_sockaddr *out);

#endif
