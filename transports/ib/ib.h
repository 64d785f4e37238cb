/* RDMA verbs transport, internal header shared by ib.c (connections and data path), ib_dev.c
 * (device, port and GID choice, completion error text) and ib_reg.c (registration cache).
 * The design is described at the top of ib.c. */
#ifndef PODCCL_IB_H
#define PODCCL_IB_H

#include <infiniband/verbs.h>
#include <rdma/rdma_cma.h>

#include "src/comm.h"

/* ---- device, port and GID (ib_dev.c) ---------------------------------------------------- */

/* What listen picked: one port of one device, one GID of it and the IP address rdma_cm binds. */
typedef struct {
    struct ibv_context *ctx; /* librdmacm's context of the device (the one cm ids use) */
    char dev[64];
    int port;
    int gid_index;    /* index in the port's GID table */
    int gid_type;     /* IBV_GID_TYPE_IB, _ROCE_V1, _ROCE_V2 */
    int link_layer;   /* IBV_LINK_LAYER_ETHERNET or _INFINIBAND */
    pc_sockaddr addr; /* the GID's IP address (RoCE) or the IPoIB address (IB), port 0 */
    struct ibv_device_attr dev_attr;
    struct ibv_port_attr port_attr;
} ib_choice;

/* 1 if device dev, port `port` passes PODCCL_IB_HCA (NCCL syntax: comma list of dev[:port];
 * names match as prefixes, or exactly after a leading '='; a leading '^' excludes the listed
 * ones). spec NULL or empty allows everything. */
int ib_hca_match(const char *spec, const char *dev, int port);

/* The transport's `available`: 1 if an RDMA device with an ACTIVE port passes PODCCL_IB_HCA and
 * rdma_cm works, else 0 with the reason in why. Opens nothing that outlives the call. */
int ib_dev_available(char *why, size_t len);

/* Picks device, port and GID among the n contexts from rdma_get_devices (PODCCL_IB_HCA,
 * PODCCL_IB_GID_INDEX; by default the RoCE v2 GID of an IPv4 address, else RoCE v2 IPv6, else
 * index 0; on InfiniBand the port's IPoIB address). */
podcclResult_t ib_dev_choose(podcclComm_t comm, struct ibv_context **ctxs, int n, ib_choice *out);

/* "10.9.0.1" or "fe80::1%3", with ":port" appended when with_port. */
void ib_addr_str(const struct sockaddr *sa, int with_port, char *buf, size_t len);

/* The port's data rate in Gbit/s from active_speed x active_width (0 when unknown). */
double ib_port_gbps(const struct ibv_port_attr *pa);

/* The text of a failed completion, naming peer and the likely cause; *remote is set to 1 when
 * the cause is most likely on the peer's side or the link (podcclRemoteError), else 0. */
void ib_wc_text(enum ibv_wc_status st, int peer, int *remote, char *buf, size_t len);

/* ---- registration cache (ib_reg.c) ------------------------------------------------------ */

typedef struct {
    uintptr_t addr;
    size_t len;
    struct ibv_mr *mr;
    int refs;
} ib_reg_entry;

/* Registrations of one protection domain, sorted by start address; a request is served by any
 * entry that contains it (refcount + 1), else registered anew. */
typedef struct {
    struct ibv_pd *pd;
    ib_reg_entry **v;
    int n, cap;
} ib_reg_cache;

/* Returns in *out an entry covering [buf, buf + len) (registered for local write and remote
 * write), taking a reference. Errors name the likely cause (locked-memory limit). */
podcclResult_t ib_reg_get(podcclComm_t comm, ib_reg_cache *c, void *buf, size_t len,
                          ib_reg_entry **out);
/* Drops a reference taken by ib_reg_get; the last one deregisters. */
void ib_reg_put(ib_reg_cache *c, ib_reg_entry *e);
/* Deregisters whatever is left (at close, before the PD goes). */
void ib_reg_destroy(ib_reg_cache *c);

#endif
