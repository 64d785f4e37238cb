/* ib transport: which device, port and GID to use, and what a failed completion most likely
 * means. The device list comes from libibverbs (available) or librdmacm (listen, so that the
 * protection domain lives on the same context as the rdma_cm ids). */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>

#include "transports/ib/ib_dev.h"

/* PODCCL_IB_HCA filter (ib_dev.h). */
int ib_hca_match(const char *spec, const char *dev, int port) {
    if (!spec || !*spec) return 1;
    int exclude = 0, exact = 0;
    for (; *spec == '^' || *spec == '='; spec++) {
        if (*spec == '^') exclude = 1;
        if (*spec == '=') exact = 1;
    }
    char buf[512];
    snprintf(buf, sizeof(buf), "%s", spec);
    int hit = 0;
    char *save = NULL;
    for (char *item = strtok_r(buf, ",", &save); item && !hit; item = strtok_r(NULL, ",", &save)) {
        while (*item == ' ') item++;
        char *colon = strchr(item, ':');
        int want_port = -1;
        if (colon) *colon = 0, want_port = atoi(colon + 1);
        size_t l = strlen(item);
        while (l && item[l - 1] == ' ') item[--l] = 0;
        if (!l) continue;
        int name_ok = exact ? strcmp(item, dev) == 0 : strncmp(dev, item, l) == 0;
        hit = name_ok && (want_port < 0 || want_port == port);
    }
    return exclude ? !hit : hit;
}

/* Appends a formatted piece to buf (of size len), never overflowing. */
static void append(char *buf, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void append(char *buf, size_t len, const char *fmt, ...) {
    size_t used = strlen(buf);
    if (used + 1 >= len) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + used, len - used, fmt, ap);
    va_end(ap);
}

/* Name of a port state for messages. */
static const char *port_state_name(enum ibv_port_state s) {
    switch (s) {
    case IBV_PORT_ACTIVE:
        return "ACTIVE";
    case IBV_PORT_DOWN:
        return "DOWN";
    case IBV_PORT_INIT:
        return "INIT";
    case IBV_PORT_ARMED:
        return "ARMED";
    default:
        return "not active";
    }
}

/* Cheap availability check (ib_dev.h): device list, an ACTIVE port through the filter, rdma_cm. */
int ib_dev_available(const pc_tp_ctx *ctx, char *why, size_t len) {
    int n = 0;
    errno = 0;
    struct ibv_device **list = ibv_get_device_list(&n);
    int e = errno;
    if (!list || n == 0) {
        if (list) ibv_free_device_list(list);
        if (!list && e == ENOSYS)
            snprintf(why, len,
                     "no RDMA device: ibv_get_device_list returned none (errno ENOSYS: this "
                     "kernel has no RDMA/InfiniBand support)");
        else if (!list)
            snprintf(why, len, "no RDMA device: ibv_get_device_list returned none (errno %s: %s)",
                     e ? strerrorname_np(e) : "0", e ? strerror(e) : "no error reported");
        else
            snprintf(why, len,
                     "no RDMA device: ibv_get_device_list returned an empty list (no RDMA driver "
                     "is loaded; for soft-RoCE: rdma link add rxe0 type rxe netdev eth0)");
        return 0;
    }
    const char *spec = ctx->param_str("PODCCL_IB_HCA");
    char seen[256] = "";
    int found = 0;
    for (int i = 0; i < n && !found; i++) {
        const char *name = ibv_get_device_name(list[i]);
        struct ibv_context *ic = ibv_open_device(list[i]);
        if (!ic) {
            append(seen, sizeof(seen), "%s%s: cannot open (%s)", *seen ? ", " : "", name,
                   strerror(errno));
            continue;
        }
        struct ibv_device_attr da;
        if (ibv_query_device(ic, &da) == 0)
            for (int p = 1; p <= da.phys_port_cnt && !found; p++) {
                struct ibv_port_attr pa;
                if (ibv_query_port(ic, (uint8_t)p, &pa)) continue;
                if (!ib_hca_match(spec, name, p))
                    append(seen, sizeof(seen), "%s%s:%d excluded by PODCCL_IB_HCA=%s",
                           *seen ? ", " : "", name, p, spec);
                else if (pa.state != IBV_PORT_ACTIVE)
                    append(seen, sizeof(seen), "%s%s:%d %s", *seen ? ", " : "", name, p,
                           port_state_name(pa.state));
                else
                    found = 1;
            }
        ibv_close_device(ic);
    }
    ibv_free_device_list(list);
    if (!found) {
        snprintf(why, len, "no usable RDMA port: %s", *seen ? seen : "no ports");
        return 0;
    }
    struct rdma_event_channel *ch = rdma_create_event_channel();
    if (!ch) {
        snprintf(why, len,
                 "an RDMA device is present but rdma_cm is not: rdma_create_event_channel: %s "
                 "(load the rdma_ucm module; /dev/infiniband/rdma_cm must exist)",
                 strerror(errno));
        return 0;
    }
    rdma_destroy_event_channel(ch);
    return 1;
}

/* GID classification: IPv4-mapped (::ffff:a.b.c.d), unset, IPv6 link-local (fe80::/10). */
static int gid_is_v4mapped(const union ibv_gid *g) {
    static const uint8_t pfx[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    return memcmp(g->raw, pfx, 12) == 0;
}
static int gid_is_zero(const union ibv_gid *g) {
    static const uint8_t z[16];
    return memcmp(g->raw, z, 16) == 0;
}
static int gid_is_linklocal(const union ibv_gid *g) {
    return g->raw[0] == 0xfe && (g->raw[1] & 0xc0) == 0x80;
}

/* The default preference: RoCE v2 with an IPv4 address, then RoCE v2 IPv6 (global before
 * link-local); anything else scores 0 and is only used as index 0. */
static int gid_score(const struct ibv_gid_entry *g) {
    if (g->gid_type != IBV_GID_TYPE_ROCE_V2) return 0;
    if (gid_is_v4mapped(&g->gid)) return 3;
    return gid_is_linklocal(&g->gid) ? 1 : 2;
}

/* The IP address carried by a RoCE GID (IPv4-mapped, or IPv6 with its scope). */
static void gid_to_addr(const struct ibv_gid_entry *g, ib_sockaddr *a) {
    memset(a, 0, sizeof(*a));
    if (gid_is_v4mapped(&g->gid)) {
        a->sin.sin_family = AF_INET;
        memcpy(&a->sin.sin_addr, g->gid.raw + 12, 4);
    } else {
        a->sin6.sin6_family = AF_INET6;
        memcpy(&a->sin6.sin6_addr, g->gid.raw, 16);
        if (gid_is_linklocal(&g->gid)) a->sin6.sin6_scope_id = g->ndev_ifindex;
    }
}

/* RoCE: the GID to use on this port; 0 with *out filled, or -1 with the reason appended. */
static int pick_gid(struct ibv_context *ctx, int port, const struct ibv_port_attr *pa,
                    long long force, ib_choice *out, char *why, size_t len) {
    struct ibv_gid_entry g, best;
    memset(&best, 0, sizeof(best));
    int best_score = -1;
    if (force >= 0) {
        if (force >= pa->gid_tbl_len ||
            ibv_query_gid_ex(ctx, (uint32_t)port, (uint32_t)force, &best, 0) ||
            gid_is_zero(&best.gid)) {
            append(why, len, "PODCCL_IB_GID_INDEX=%lld is empty or out of range (table of %d)",
                   force, pa->gid_tbl_len);
            return -1;
        }
    } else {
        for (int i = 0; i < pa->gid_tbl_len; i++) {
            if (ibv_query_gid_ex(ctx, (uint32_t)port, (uint32_t)i, &g, 0) || gid_is_zero(&g.gid))
                continue;
            int s = gid_score(&g);
            if (s > best_score && (s > 0 || i == 0)) best = g, best_score = s;
        }
        if (best_score < 0) {
            append(why, len, "no GID (is an IP address configured on its netdev?)");
            return -1;
        }
    }
    out->gid_index = (int)best.gid_index;
    out->gid_type = (int)best.gid_type;
    gid_to_addr(&best, &out->addr);
    return 0;
}

/* InfiniBand: rdma_cm still needs an IP address, the IPoIB one of the device's netdev. */
static int ipoib_addr(const char *dev, ib_choice *out, char *why, size_t len) {
    char path[256];
    snprintf(path, sizeof(path), "/sys/class/infiniband/%s/device/net", dev);
    DIR *d = opendir(path);
    struct ifaddrs *ifa = NULL;
    int ok = 0;
    if (d && getifaddrs(&ifa) == 0) {
        for (struct dirent *de; !ok && (de = readdir(d));) {
            if (de->d_name[0] == '.') continue;
            for (struct ifaddrs *p = ifa; p && !ok; p = p->ifa_next)
                if (p->ifa_addr && p->ifa_addr->sa_family == AF_INET &&
                    strcmp(p->ifa_name, de->d_name) == 0) {
                    memset(&out->addr, 0, sizeof(out->addr));
                    memcpy(&out->addr.sin, p->ifa_addr, sizeof(struct sockaddr_in));
                    ok = 1;
                }
        }
    }
    if (ifa) freeifaddrs(ifa);
    if (d) closedir(d);
    if (!ok) append(why, len, "no IPoIB address (rdma_cm needs one)");
    return ok ? 0 : -1;
}

/* Device, port and GID for listen (ib_dev.h); the error lists every port tried and why not. */
podcclResult_t ib_dev_choose(const pc_tp_ctx *ctx, struct ibv_context **ctxs, int n,
                             ib_choice *out) {
    const char *spec = ctx->param_str("PODCCL_IB_HCA");
    long long force = ctx->param_int("PODCCL_IB_GID_INDEX");
    char why[512] = "";
    for (int i = 0; i < n; i++) {
        struct ibv_context *ic = ctxs[i];
        const char *name = ibv_get_device_name(ic->device);
        struct ibv_device_attr da;
        if (ibv_query_device(ic, &da)) {
            append(why, sizeof(why), "%s%s: ibv_query_device: %s", *why ? "; " : "", name,
                   strerror(errno));
            continue;
        }
        for (int p = 1; p <= da.phys_port_cnt; p++) {
            struct ibv_port_attr pa;
            if (!ib_hca_match(spec, name, p) || ibv_query_port(ic, (uint8_t)p, &pa)) continue;
            append(why, sizeof(why), "%s%s:%d ", *why ? "; " : "", name, p);
            if (pa.state != IBV_PORT_ACTIVE) {
                append(why, sizeof(why), "%s", port_state_name(pa.state));
                continue;
            }
            memset(out, 0, sizeof(*out));
            int bad = pa.link_layer == IBV_LINK_LAYER_INFINIBAND
                          ? ipoib_addr(name, out, why, sizeof(why))
                          : pick_gid(ic, p, &pa, force, out, why, sizeof(why));
            if (bad) continue;
            if (pa.link_layer == IBV_LINK_LAYER_INFINIBAND)
                out->gid_index = force >= 0 ? (int)force : 0, out->gid_type = IBV_GID_TYPE_IB;
            out->ctx = ic;
            snprintf(out->dev, sizeof(out->dev), "%s", name);
            out->port = p;
            out->link_layer = pa.link_layer;
            out->dev_attr = da;
            out->port_attr = pa;
            return podcclSuccess;
        }
    }
    return TP_ERR(ctx, podcclSystemError, "rank %d: no usable RDMA port%s%s: %s", ctx->rank,
                  spec ? " with PODCCL_IB_HCA=" : "", spec ? spec : "",
                  *why ? why : "no device port matches");
}

/* Address text for logs and messages (ib_dev.h). */
void ib_addr_str(const struct sockaddr *sa, int with_port, char *buf, size_t len) {
    char ip[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *s = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &s->sin_addr, ip, sizeof(ip));
        port = ntohs(s->sin_port);
        snprintf(buf, len, with_port ? "%s:%d" : "%s", ip, port);
    } else {
        const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &s->sin6_addr, ip, sizeof(ip));
        port = ntohs(s->sin6_port);
        char scope[24] = "";
        if (s->sin6_scope_id) snprintf(scope, sizeof(scope), "%%%u", s->sin6_scope_id);
        if (with_port)
            snprintf(buf, len, "[%s%s]:%d", ip, scope, port);
        else
            snprintf(buf, len, "%s%s", ip, scope);
    }
}

/* Data rate of a port, Gbit/s (ib_dev.h). */
double ib_port_gbps(const struct ibv_port_attr *pa) {
    double lane;
    switch (pa->active_speed) {
    case 1:
        lane = 2.5;
        break; /* SDR */
    case 2:
        lane = 5.0;
        break; /* DDR */
    case 4:
        lane = 10.0;
        break; /* QDR */
    case 8:
        lane = 10.0;
        break; /* FDR10 */
    case 16:
        lane = 14.0;
        break; /* FDR */
    case 32:
        lane = 25.0;
        break; /* EDR */
    case 64:
        lane = 50.0;
        break; /* HDR */
    case 128:
        lane = 100.0;
        break; /* NDR */
    default:
        return 0;
    }
    int lanes;
    switch (pa->active_width) {
    case 1:
        lanes = 1;
        break;
    case 2:
        lanes = 4;
        break;
    case 4:
        lanes = 8;
        break;
    case 8:
        lanes = 12;
        break;
    case 16:
        lanes = 2;
        break;
    default:
        lanes = 1;
    }
    return lane * lanes;
}

/* Completion status to a sentence naming the peer and the likely cause (ib_dev.h). */
void ib_wc_text(enum ibv_wc_status st, int peer, int *remote, char *buf, size_t len) {
    *remote = 1;
    switch (st) {
    case IBV_WC_RETRY_EXC_ERR:
        snprintf(buf, len,
                 "rank %d unreachable or dead (transport retry count exceeded): check the link, "
                 "PODCCL_IB_GID_INDEX/RoCE version, and that the peer process is alive",
                 peer);
        return;
    case IBV_WC_RNR_RETRY_EXC_ERR:
        snprintf(buf, len,
                 "rank %d had no receive buffer posted (receiver-not-ready retries exceeded): "
                 "the peer stopped progressing, died, or the ranks disagree on the protocol",
                 peer);
        return;
    case IBV_WC_REM_ACCESS_ERR:
        snprintf(buf, len,
                 "rank %d refused an RDMA write (remote access error): a registration problem "
                 "(rkey, bounds or access flags of its receive buffer), or it deregistered the "
                 "buffer while we wrote",
                 peer);
        return;
    case IBV_WC_REM_INV_REQ_ERR:
        snprintf(buf, len,
                 "rank %d rejected a request as invalid (remote invalid request: message longer "
                 "than its receive buffer, or an operation its QP does not allow)",
                 peer);
        return;
    case IBV_WC_REM_OP_ERR:
        snprintf(buf, len, "rank %d could not complete an operation (remote operation error)",
                 peer);
        return;
    case IBV_WC_REM_ABORT_ERR:
        snprintf(buf, len, "rank %d aborted an operation (remote abort)", peer);
        return;
    case IBV_WC_BAD_RESP_ERR:
        snprintf(buf, len,
                 "unexpected response from rank %d (bad response): the link or the peer's "
                 "device misbehaves",
                 peer);
        return;
    case IBV_WC_RESP_TIMEOUT_ERR:
        snprintf(buf, len, "no response from rank %d (response timeout)", peer);
        return;
    case IBV_WC_WR_FLUSH_ERR:
        snprintf(buf, len,
                 "the connection with rank %d went to the error state after an earlier failure "
                 "or a disconnect (work request flushed)",
                 peer);
        return;
    default:
        break;
    }
    *remote = 0;
    switch (st) {
    case IBV_WC_LOC_PROT_ERR:
        snprintf(buf, len,
                 "local protection error on the connection with rank %d: a buffer is not "
                 "registered in this protection domain or its lkey is wrong (registration "
                 "problem)",
                 peer);
        return;
    case IBV_WC_LOC_ACCESS_ERR:
        snprintf(buf, len,
                 "local access error on the connection with rank %d: a registration lacks the "
                 "access rights the operation needs (registration problem)",
                 peer);
        return;
    case IBV_WC_LOC_LEN_ERR:
        snprintf(buf, len,
                 "local length error on the connection with rank %d: a message did not fit the "
                 "posted receive buffer",
                 peer);
        return;
    case IBV_WC_LOC_QP_OP_ERR:
        snprintf(buf, len,
                 "local QP operation error on the connection with rank %d (invalid work request "
                 "or queue pair state)",
                 peer);
        return;
    case IBV_WC_FATAL_ERR:
        snprintf(buf, len,
                 "fatal device error on the connection with rank %d: the RDMA device or its "
                 "driver failed",
                 peer);
        return;
    default:
        snprintf(buf, len, "completion error on the connection with rank %d: %s (status %d)", peer,
                 ibv_wc_status_str(st), (int)st);
    }
}
