/* Device, port and GID choice of the verbs transport, and its address and completion-error text
 * (ib_dev.c). The design of the transport is described at the top of ib.c. */
#ifndef PODCCL_IB_DEV_H
#define PODCCL_IB_DEV_H

#include <infiniband/verbs.h>
#include <netinet/in.h>
#include <rdma/rdma_cma.h>
#include <sys/socket.h>

#include "transports/tp.h"

/* An IPv4 or IPv6 socket address (rdma_cm binds and resolves them). */
typedef union {
    struct sockaddr sa;
    struct sockaddr_in sin;
    struct sockaddr_in6 sin6;
} ib_sockaddr;

/* What listen picked: one port of one device, one GID of it and the IP address rdma_cm binds. */
typedef struct {
    struct ibv_context *ctx; /* librdmacm's context of the device (the one cm ids use) */
    char dev[64];
    int port;
    int gid_index;    /* index in the port's GID table */
    int gid_type;     /* IBV_GID_TYPE_IB, _ROCE_V1, _ROCE_V2 */
    int link_layer;   /* IBV_LINK_LAYER_ETHERNET or _INFINIBAND */
    ib_sockaddr addr; /* the GID's IP address (RoCE) or the IPoIB address (IB), port 0 */
    struct ibv_device_attr dev_attr;
    struct ibv_port_attr port_attr;
} ib_choice;

/* 1 if device dev, port `port` passes PODCCL_IB_HCA (NCCL syntax: comma list of dev[:port];
 * names match as prefixes, or exactly after a leading '='; a leading '^' excludes the listed
 * ones). spec NULL or empty allows everything. */
int ib_hca_match(const char *spec, const char *dev, int port);

/* The transport's `available`: 1 if an RDMA device with an ACTIVE port passes PODCCL_IB_HCA and
 * rdma_cm works, else 0 with the reason in why. Opens nothing that outlives the call. */
int ib_dev_available(const pc_tp_ctx *ctx, char *why, size_t len);

/* Picks device, port and GID among the n contexts from rdma_get_devices (PODCCL_IB_HCA,
 * PODCCL_IB_GID_INDEX; by default the RoCE v2 GID of an IPv4 address, else RoCE v2 IPv6, else
 * index 0; on InfiniBand the port's IPoIB address). */
podcclResult_t ib_dev_choose(const pc_tp_ctx *ctx, struct ibv_context **ctxs, int n,
                             ib_choice *out);

/* "10.9.0.1" or "fe80::1%3", with ":port" appended when with_port. */
void ib_addr_str(const struct sockaddr *sa, int with_port, char *buf, size_t len);

/* The port's data rate in Gbit/s from active_speed x active_width (0 when unknown). */
double ib_port_gbps(const struct ibv_port_attr *pa);

/* The text of a failed completion, naming peer and the likely cause; *remote is set to 1 when
 * the cause is most likely on the peer's side or the link (podcclRemoteError), else 0. */
void ib_wc_text(enum ibv_wc_status st, int peer, int *remote, char *buf, size_t len);

#endif
