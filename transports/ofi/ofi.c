/* libfabric transport: one reliable-datagram (FI_EP_RDM) endpoint per communicator, peers in an
 * address vector, tagged messages, and RMA writes with remote CQ data for large messages.
 *
 * Provider: PODCCL_OFI_PROVIDER (e.g. "tcp;ofi_rxm", "verbs;ofi_rxm", "efa", "cxi"), else the
 * first RDM provider with tagged messages in libfabric's own order that can leave the host (shm
 * is skipped). The endpoint opens on the interface of the bootstrap address (node = that address
 * with FI_SOURCE), so PODCCL_SOCKET_IFNAME steers it too.
 *
 * Matching: both ends of a connection count the messages they post in each direction; the tag is
 * (sender rank, sequence number), so the k-th send matches the k-th receive whatever order the
 * provider delivers in.
 *
 * Protocols (both ends choose by message size, and the executor always posts equal sizes):
 *   - eager, up to PODCCL_OFI_EAGER_BYTES, or always when the provider has no RMA: fi_tsend /
 *     fi_trecv;
 *   - RMA otherwise (receiver-driven, as NCCL's net_ib): the receiver registers its buffer for
 *     remote writes and injects a clear-to-send {seq, address, key, bytes} on a control tag; the
 *     sender, once it holds the CTS for that sequence number, writes with fi_writedata, whose
 *     remote CQ data (sender rank, seq) completes the receive. One copy, no bounce buffer.
 *
 * Mismatched calls (transport.h): an eager message carries its operation's signature as remote
 * CQ data (pc_sig_wire: 40 bits of the hash, 24 of the number), which the receiver compares; a
 * clear-to-send carries the receiver's full signature, which the sender compares before it writes.
 * When the two ends chose different protocols (their sizes differ), the sender of an eager message
 * gets a clear-to-send for it, or a sender that waited OFI_RTS_AFTER seconds for its clear-to-send
 * tells the receiver its signature (ready-to-send), and the receiver finds an eager receive posted
 * for it. Whoever finds a mismatch tells every peer (notice, on the control tag), so nobody waits
 * for the timeout.
 *
 * Memory registration meets the provider's mr_mode: FI_MR_LOCAL (verbs) gets a registration per
 * operation for local buffers and a once-registered control area; FI_MR_VIRT_ADDR, PROV_KEY,
 * ALLOCATED and ENDPOINT are honoured for the RMA target. Registrations of user buffers are not
 * cached across operations: the application may free a buffer and get the same virtual address
 * back for other memory, and without memory hooks a cache would then hand out a stale
 * registration. */
#include <arpa/inet.h>
#include <rdma/fabric.h>
#include <rdma/fi_cm.h>
#include <rdma/fi_domain.h>
#include <rdma/fi_endpoint.h>
#include <rdma/fi_errno.h>
#include <rdma/fi_rma.h>
#include <rdma/fi_tagged.h>
#include <sched.h>

#include "transports/tp.h"

#define OFI_TAG_CTRL (1ull << 62)
#define OFI_NCTRL 64 /* control receives kept posted */
#define OFI_HANDLE_MAGIC 0x6f666931u
#define OFI_RTS_AFTER 0.02  /* seconds an RMA send waits for its clear-to-send before it says so */
#define OFI_EAGER_RING 8    /* sizes of the last eager sends per connection, for error messages */
#define OFI_ANSWER_WAIT 0.5 /* seconds a rank that knows only a peer's hash waits for its call */
#define OFI_NOTIFY_WAIT 1.0 /* seconds a mismatch notice may wait for a connection */
#define OFI_DRAIN_WAIT 0.01 /* seconds a broken endpoint takes in messages before it closes */

enum { CTX_REQ = 1, CTX_CTRL };
enum { RQ_SEND, RQ_RECV, RQ_WSEND, RQ_WRECV };
enum { ST_POSTED, ST_WAIT_CTS, ST_READY, ST_DONE, ST_ERROR };
enum { CTL_CTS = 1, CTL_RTS, CTL_NOTICE, CTL_ANSWER };

/* A control message. CTS: the receive of message seq is at {addr, key}, bytes long, for the
 * operation sig. RTS: the send of message seq (bytes) waits for its clear-to-send. NOTICE: rank
 * found that culprit's operation (other) differs from its own (sig). ANSWER: to a NOTICE that
 * named this rank: its own call of that operation number (sig), so the reporter can name it. */
typedef struct {
    uint32_t kind, rank, seq, culprit;
    uint64_t addr, key, bytes;
    pc_sig sig, other;
} ofi_cts;

typedef struct ofi_ep ofi_ep;
typedef struct ofi_conn ofi_conn;

typedef struct ofi_req {
    struct fi_context2 ctx; /* first: libfabric returns &ctx as op_context */
    int type;               /* CTX_REQ */
    int kind, state;
    ofi_conn *c;
    uint32_t seq;
    const char *sbuf;
    char *rbuf;
    size_t bytes, got;
    struct fid_mr *mr;    /* per-operation registration (FI_MR_LOCAL or RMA target) */
    ofi_cts cts;          /* RMA send: the receiver's CTS; mism: the peer's CTS or RTS */
    struct ofi_req *next; /* per-connection list of RMA sends and receives in flight */
    struct ofi_req *live_prev, *live_next;
    pc_sig sig;          /* the operation this message belongs to */
    uint64_t rdata;      /* eager receive: the sender's signature hash (remote CQ data) */
    int has_data, trunc; /* rdata valid; the message was longer than the receive */
    int mism;            /* ST_ERROR because the peer's cts (CTS or RTS) does not fit */
    size_t olen;         /* trunc: bytes that did not fit */
    unsigned polls;      /* RMA send: tests while waiting for the CTS */
    double rts_at;       /* when to send the RTS (0: not yet timed) */
    int rts_sent;
    char err[160];
} ofi_req;

typedef struct {
    struct fi_context2 ctx;
    int type; /* CTX_CTRL */
    ofi_cts msg;
} ofi_ctrl;

typedef struct early_cts {
    ofi_cts cts;
    struct early_cts *next;
} early_cts;

struct ofi_conn {
    ofi_ep *ep;
    int peer;
    fi_addr_t addr;
    uint32_t sseq, rseq;      /* messages posted per direction: the tag's sequence number */
    uint32_t sdone, rdone;    /* messages reported complete: the contract's posting order */
    ofi_req *wsends, *wrecvs; /* RMA requests awaiting CTS / the remote write */
    early_cts *early;         /* CTS that arrived before the matching isend */
    early_cts *early_rts;     /* RTS that arrived before the matching irecv */
    int proto_err;            /* proto_cts: a CTS for a message we sent eagerly, or an RTS for */
    ofi_cts proto_cts;        /* a message of another operation that we never received */
    int answered;             /* answer: the peer's ANSWER to our NOTICE */
    ofi_cts answer;
    size_t eager_sizes[OFI_EAGER_RING]; /* of the eager sends, by seq */
};

struct ofi_ep {
    const pc_tp_ctx *ctx;
    struct fi_info *info;
    struct fid_fabric *fabric;
    struct fid_domain *domain;
    struct fid_av *av;
    struct fid_cq *cq;
    struct fid_ep *ep;
    int mr_local, mr_virt, mr_prov_key, mr_endpoint, rma;
    int cq_data; /* 8 bytes of remote CQ data: eager messages carry their hash */
    int notice;  /* a peer's mismatch notice arrived (notice_msg) */
    ofi_cts notice_msg;
    uint64_t next_key;
    size_t eager_bytes;
    ofi_ctrl *ctrl;
    struct fid_mr *ctrl_mr;
    char *ovf; /* where the part of an eager message past its receive lands (never read) */
    size_t ovf_bytes;
    struct fid_mr *ovf_mr;
    struct fi_context2 drain; /* ofi_close_listen's wildcard receive */
    ofi_conn **conns;         /* [nranks] */
    ofi_req *live;            /* every request not yet handed back, freed at close */
    int ready_waiting;        /* some RMA send holds its CTS but its write is not posted yet */
    char broken[200];         /* a failure of the endpoint itself (control path) */
    char provider[96];
};

typedef struct {
    uint32_t magic, rank, namelen, pad;
    uint8_t name[PC_HANDLE_BYTES - 16];
} ofi_handle;
_Static_assert(sizeof(ofi_handle) <= PC_HANDLE_BYTES, "ofi handle too large");

/* ---- provider selection -------------------------------------------------------------------- */

static struct fi_info *make_hints(const pc_tp_ctx *ctx, int rma) {
    struct fi_info *h = fi_allocinfo();
    if (!h) return NULL;
    h->caps = FI_TAGGED | FI_SEND | FI_RECV;
    if (rma) h->caps |= FI_RMA | FI_WRITE | FI_REMOTE_WRITE;
    h->mode = FI_CONTEXT | FI_CONTEXT2;
    h->ep_attr->type = FI_EP_RDM;
    h->domain_attr->mr_mode =
        FI_MR_LOCAL | FI_MR_VIRT_ADDR | FI_MR_ALLOCATED | FI_MR_PROV_KEY | FI_MR_ENDPOINT;
    h->domain_attr->threading = FI_THREAD_DOMAIN;
    const char *prov = ctx->param_str("PODCCL_OFI_PROVIDER");
    if (prov && *prov) h->fabric_attr->prov_name = strdup(prov);
    return h;
}

/* A provider that only works inside one host cannot serve a network transport. */
static int host_local(const struct fi_info *i) {
    const char *p = i->fabric_attr->prov_name;
    return p && (strcmp(p, "shm") == 0 || strncmp(p, "shm;", 4) == 0);
}

/* The first provider in libfabric's order (or PODCCL_OFI_PROVIDER) that can leave the host;
 * for a provider with IP addresses, its entry for the interface of the bootstrap address
 * (node = that address, FI_SOURCE). *out is a copy to free with fi_freeinfo. */
static int find_info(const pc_tp_ctx *ctx, int rma, struct fi_info **out, char *why, size_t len) {
    struct fi_info *hints = make_hints(ctx, rma), *list = NULL;
    if (!hints) return snprintf(why, len, "fi_allocinfo failed"), 0;
    const char *prov = ctx->param_str("PODCCL_OFI_PROVIDER");
    int forced = prov && *prov;
    int r = fi_getinfo(FI_VERSION(1, 10), NULL, NULL, 0, hints, &list);
    if (r != 0) {
        snprintf(why, len, "fi_getinfo found no %s%s RDM provider with tagged messages%s: %s",
                 forced ? "provider " : "", forced ? prov : "libfabric", rma ? " and RMA" : "",
                 fi_strerror(-r));
        fi_freeinfo(hints);
        return 0;
    }
    struct fi_info *pick = NULL;
    for (struct fi_info *i = list; i && !pick; i = i->next)
        if (forced || !host_local(i)) pick = i;
    if (!pick) {
        snprintf(why, len, "libfabric offers only host-local providers (shm)");
        fi_freeinfo(list), fi_freeinfo(hints);
        return 0;
    }
    *out = NULL;
    const char *node = ctx->boot_addr;
    uint32_t af = pick->addr_format;
    if (*node && (af == FI_SOCKADDR || af == FI_SOCKADDR_IN || af == FI_SOCKADDR_IN6)) {
        struct fi_info *on_if = NULL;
        free(hints->fabric_attr->prov_name);
        hints->fabric_attr->prov_name = strdup(pick->fabric_attr->prov_name);
        if (fi_getinfo(FI_VERSION(1, 10), node, NULL, FI_SOURCE, hints, &on_if) == 0) {
            *out = fi_dupinfo(on_if);
            fi_freeinfo(on_if);
        }
    }
    if (!*out) *out = fi_dupinfo(pick);
    fi_freeinfo(list), fi_freeinfo(hints);
    return *out != NULL;
}

static int ofi_available(const pc_tp_ctx *ctx, char *why, size_t len) {
    struct fi_info *i = NULL;
    if (!find_info(ctx, 0, &i, why, len)) return 0;
    fi_freeinfo(i);
    return 1;
}

static int ofi_can_reach(const pc_tp_ctx *ctx, int peer) {
    return peer != ctx->rank;
}

static void ofi_properties(void *listen_comm, pc_props *p) {
    ofi_ep *e = listen_comm;
    memset(p, 0, sizeof(*p));
    p->name = "ofi";
    snprintf(p->provider, sizeof(p->provider), "%s", e->provider);
    p->bw_gbps = 1.0; /* refined by measurement in the cost model, not by the provider */
    p->latency_us = 20;
    /* Over sockets a write completes once the kernel holds it; more writes queued in the
     * provider only delay the clear-to-sends behind them (measured, docs/multihost.md). */
    const char *pn = e->info->fabric_attr->prov_name;
    int sockets = pn && (strstr(pn, "tcp") || strstr(pn, "sockets") || strstr(pn, "udp") ||
                         strcmp(pn, "net") == 0 || strncmp(pn, "net;", 4) == 0);
    p->send_depth = sockets ? 1 : 0;
}

/* ---- memory registration -------------------------------------------------------------------- */

static int reg(ofi_ep *e, const void *buf, size_t bytes, uint64_t access, struct fid_mr **mr,
               char *err, size_t len) {
    uint64_t key = e->mr_prov_key ? 0 : e->next_key++;
    int r = fi_mr_reg(e->domain, buf, bytes ? bytes : 1, access, 0, key, 0, mr, NULL);
    if (r == 0 && e->mr_endpoint) {
        r = fi_mr_bind(*mr, &e->ep->fid, 0);
        if (r == 0) r = fi_mr_enable(*mr);
        if (r != 0) fi_close(&(*mr)->fid), *mr = NULL;
    }
    if (r != 0) snprintf(err, len, "fi_mr_reg of %zu bytes: %s", bytes, fi_strerror(-r));
    return r;
}

/* ---- endpoint ------------------------------------------------------------------------------- */

static int post_ctrl(ofi_ep *e, ofi_ctrl *c) {
    void *desc = e->ctrl_mr ? fi_mr_desc(e->ctrl_mr) : NULL;
    return (int)fi_trecv(e->ep, &c->msg, sizeof(c->msg), desc, FI_ADDR_UNSPEC, OFI_TAG_CTRL,
                         (1ull << 62) - 1, &c->ctx);
}

static podcclResult_t ofi_close_listen(void *listen_comm);

static podcclResult_t ofi_listen(const pc_tp_ctx *ctx, void *handle, void **listen_comm) {
    char why[300];
    ofi_ep *e = calloc(1, sizeof(*e));
    if (!e) return TP_ERR(ctx, podcclSystemError, "out of memory");
    e->ctx = ctx;
    e->next_key = 1;
    e->conns = calloc((size_t)ctx->nranks, sizeof(*e->conns));
    podcclResult_t res = podcclSystemError;
    int r = 0;
    const char *step = "";
    if (!e->conns) {
        res = TP_ERR(ctx, podcclSystemError, "out of memory");
        goto fail;
    }
    /* RMA where the provider has it (and 8 bytes of CQ data: sender rank and seq), else
     * tagged messages only. */
    if (!find_info(ctx, 1, &e->info, why, sizeof(why)) &&
        !find_info(ctx, 0, &e->info, why, sizeof(why))) {
        res = TP_ERR(ctx, podcclSystemError, "ofi: %s", why);
        goto fail;
    }
    struct fi_info *i = e->info;
    int mm = i->domain_attr->mr_mode;
    e->mr_local = (mm & FI_MR_LOCAL) != 0;
    e->mr_virt = (mm & FI_MR_VIRT_ADDR) != 0;
    e->mr_prov_key = (mm & FI_MR_PROV_KEY) != 0;
    e->mr_endpoint = (mm & FI_MR_ENDPOINT) != 0;
    e->cq_data = i->domain_attr->cq_data_size >= 8;
    e->rma = (i->caps & FI_RMA) && (i->caps & FI_REMOTE_WRITE) && e->cq_data;
    long long eb = ctx->param_int("PODCCL_OFI_EAGER_BYTES");
    e->eager_bytes = eb < 0 ? 0 : (size_t)eb;
    struct fi_cq_attr cqa = {.format = FI_CQ_FORMAT_DATA, .wait_obj = FI_WAIT_NONE};
    struct fi_av_attr ava = {.type = FI_AV_UNSPEC, .count = (size_t)ctx->nranks};
    if ((r = fi_fabric(i->fabric_attr, &e->fabric, NULL)))
        step = "fi_fabric";
    else if ((r = fi_domain(e->fabric, i, &e->domain, NULL)))
        step = "fi_domain";
    else if ((r = fi_cq_open(e->domain, &cqa, &e->cq, NULL)))
        step = "fi_cq_open";
    else if ((r = fi_av_open(e->domain, &ava, &e->av, NULL)))
        step = "fi_av_open";
    else if ((r = fi_endpoint(e->domain, i, &e->ep, NULL)))
        step = "fi_endpoint";
    else if ((r = fi_ep_bind(e->ep, &e->av->fid, 0)))
        step = "fi_ep_bind(av)";
    else if ((r = fi_ep_bind(e->ep, &e->cq->fid, FI_TRANSMIT | FI_RECV)))
        step = "fi_ep_bind(cq)";
    else if ((r = fi_enable(e->ep)))
        step = "fi_enable";
    if (r) {
        res = TP_ERR(ctx, podcclSystemError, "ofi (%s on %s): %s: %s", i->fabric_attr->prov_name,
                     i->domain_attr->name, step, fi_strerror(-r));
        goto fail;
    }
    e->ctrl = calloc(OFI_NCTRL, sizeof(*e->ctrl));
    if (!e->ctrl) {
        res = TP_ERR(ctx, podcclSystemError, "out of memory");
        goto fail;
    }
    if (e->mr_local &&
        reg(e, e->ctrl, OFI_NCTRL * sizeof(*e->ctrl), FI_RECV, &e->ctrl_mr, why, sizeof(why))) {
        res = TP_ERR(ctx, podcclSystemError, "ofi: control buffers: %s", why);
        goto fail;
    }
    /* An eager receive is posted as {the caller's buffer, this overflow}: a longer message of a
     * mismatched call then completes (its length tells) instead of being truncated, which some
     * providers (tcp;ofi_rxm) do not survive: the connection stalls. */
    if (i->rx_attr->iov_limit >= 2) {
        e->ovf_bytes = e->rma ? e->eager_bytes : ctx->chunk_bytes;
        e->ovf = malloc(e->ovf_bytes + 64);
        if (!e->ovf || (e->mr_local &&
                        reg(e, e->ovf, e->ovf_bytes + 64, FI_RECV, &e->ovf_mr, why, sizeof(why)))) {
            res = TP_ERR(ctx, podcclSystemError, "ofi: overflow buffer: %s",
                         e->ovf ? why : "out of memory");
            goto fail;
        }
    }
    for (int k = 0; k < OFI_NCTRL; k++) {
        e->ctrl[k].type = CTX_CTRL;
        if ((r = post_ctrl(e, &e->ctrl[k]))) {
            res = TP_ERR(ctx, podcclSystemError, "ofi: posting control receives: %s",
                         fi_strerror(-r));
            goto fail;
        }
    }
    ofi_handle *h = handle;
    memset(h, 0, sizeof(*h));
    size_t nl = sizeof(h->name);
    if ((r = fi_getname(&e->ep->fid, h->name, &nl))) {
        res = TP_ERR(ctx, podcclSystemError, "ofi: fi_getname: %s (address of %zu bytes)",
                     fi_strerror(-r), nl);
        goto fail;
    }
    h->magic = OFI_HANDLE_MAGIC, h->rank = (uint32_t)ctx->rank, h->namelen = (uint32_t)nl;
    if (e->rma)
        snprintf(e->provider, sizeof(e->provider), "%s on %s, RMA above %zu B",
                 i->fabric_attr->prov_name, i->domain_attr->name, e->eager_bytes);
    else
        snprintf(e->provider, sizeof(e->provider), "%s on %s, tagged only",
                 i->fabric_attr->prov_name, i->domain_attr->name);
    TP_LOG(ctx, PC_LOG_INFO, PC_SUB_NET, "ofi: %s, mr_mode 0x%x, fabric %s", e->provider, mm,
           i->fabric_attr->name);
    *listen_comm = e;
    return podcclSuccess;
fail:
    ofi_close_listen(e);
    return res;
}

static podcclResult_t ofi_connect(void *listen_comm, int peer, const void *handle, void **conn) {
    ofi_ep *e = listen_comm;
    const pc_tp_ctx *ctx = e->ctx;
    const ofi_handle *h = handle;
    if (h->magic != OFI_HANDLE_MAGIC || h->rank != (uint32_t)peer)
        return TP_ERR(ctx, podcclInternalError, "ofi: rank %d's endpoint handle is not valid",
                      peer);
    ofi_conn *c = calloc(1, sizeof(*c));
    if (!c) return TP_ERR(ctx, podcclSystemError, "out of memory");
    int r = fi_av_insert(e->av, h->name, 1, &c->addr, 0, NULL);
    if (r != 1) {
        free(c);
        return TP_ERR(ctx, podcclSystemError, "ofi: fi_av_insert of rank %d's address: %s", peer,
                      r < 0 ? fi_strerror(-r) : "not inserted");
    }
    c->ep = e, c->peer = peer;
    e->conns[peer] = c;
    *conn = c;
    return podcclSuccess;
}

/* ---- requests ------------------------------------------------------------------------------- */

static ofi_req *req_new(ofi_conn *c, int kind) {
    ofi_req *q = calloc(1, sizeof(*q));
    if (!q) return NULL;
    q->type = CTX_REQ, q->kind = kind, q->c = c;
    ofi_ep *e = c->ep;
    q->live_next = e->live;
    if (e->live) e->live->live_prev = q;
    e->live = q;
    return q;
}

static void req_free(ofi_req *q) {
    ofi_ep *e = q->c->ep;
    if (q->live_prev)
        q->live_prev->live_next = q->live_next;
    else
        e->live = q->live_next;
    if (q->live_next) q->live_next->live_prev = q->live_prev;
    if (q->mr) fi_close(&q->mr->fid);
    free(q);
}

static void list_remove(ofi_req **head, ofi_req *q) {
    for (ofi_req **p = head; *p; p = &(*p)->next)
        if (*p == q) {
            *p = q->next;
            return;
        }
}

static uint64_t tag_of(int sender, uint32_t seq) {
    return ((uint64_t)(uint32_t)sender << 32) | seq;
}

/* Posts the RMA write of a send that holds its CTS. 0, -FI_EAGAIN, or another error. */
static int post_write(ofi_req *q) {
    ofi_conn *c = q->c;
    ofi_ep *e = c->ep;
    if (q->cts.sig.hash != q->sig.hash || q->cts.bytes < q->bytes) {
        q->state = ST_ERROR, q->mism = 1; /* nothing written: ofi_test names both calls */
        return 0;
    }
    if (e->mr_local && !q->mr && q->bytes &&
        reg(e, q->sbuf, q->bytes, FI_WRITE, &q->mr, q->err, sizeof(q->err))) {
        q->state = ST_ERROR;
        return 0;
    }
    uint64_t data = tag_of(e->ctx->rank, q->seq);
    int r = (int)fi_writedata(e->ep, q->sbuf, q->bytes, q->mr ? fi_mr_desc(q->mr) : NULL, data,
                              c->addr, q->cts.addr, q->cts.key, &q->ctx);
    if (r == 0) q->state = ST_POSTED;
    return r;
}

static int seq_before(uint32_t a, uint32_t b) {
    return (int32_t)(a - b) < 0;
}

static int stash(ofi_ep *e, early_cts **list, const ofi_cts *m) {
    early_cts *x = malloc(sizeof(*x));
    if (!x) return snprintf(e->broken, sizeof(e->broken), "out of memory"), 0;
    x->cts = *m, x->next = *list, *list = x;
    return 1;
}

static void free_stash(early_cts **list) {
    while (*list) {
        early_cts *x = *list;
        *list = x->next;
        free(x);
    }
}

/* Takes the entry for message seq out of list (1), or finds none (0). */
static int unstash(early_cts **list, uint32_t seq, ofi_cts *out) {
    for (early_cts **p = list; *p; p = &(*p)->next)
        if ((*p)->cts.seq == seq) {
            early_cts *x = *p;
            *out = x->cts, *p = x->next;
            free(x);
            return 1;
        }
    return 0;
}

/* The sender of message seq waits for a clear-to-send: if our receive of it is an eager one, the
 * two ends chose different protocols (their sizes, so their calls, differ). */
static void got_rts(ofi_ep *e, ofi_conn *c, const ofi_cts *m) {
    for (ofi_req *q = e->live; q; q = q->live_next)
        if (q->c == c && q->kind == RQ_RECV && q->seq == m->seq && q->state == ST_POSTED) {
            q->cts = *m, q->state = ST_ERROR, q->mism = 1;
            return;
        }
    if (seq_before(m->seq, c->rseq)) return; /* our clear-to-send is on its way */
    /* Not posted yet: fine if it belongs to this operation or a later one; a message of a
     * collective this rank has left, or of another call now, will never be received.
     * Point-to-point operations (seq 0) have no place in that order: the sender may be in one
     * while this rank is still in the collective before it. */
    const pc_sig *cur = e->ctx->current(e->ctx->comm), *g = &m->sig;
    if (g->seq && cur->seq && (g->seq < cur->seq || (g->seq == cur->seq && g->hash != cur->hash))) {
        if (!c->proto_err) c->proto_err = 1, c->proto_cts = *m;
        return;
    }
    stash(e, &c->early_rts, m);
}

/* A peer's notice that names this rank: answer with our call of that operation number. */
static void answer(ofi_ep *e, ofi_conn *c, const ofi_cts *m) {
    ofi_cts a = {.kind = CTL_ANSWER, .rank = (uint32_t)e->ctx->rank};
    if (!e->ctx->own_call(e->ctx->comm, m->sig.seq, &a.sig)) a.sig = *e->ctx->current(e->ctx->comm);
    fi_tinject(e->ep, &a, sizeof(a), c->addr, OFI_TAG_CTRL | tag_of(e->ctx->rank, 0));
}

static void got_cts(ofi_ep *e, const ofi_cts *m) {
    ofi_conn *c = m->rank < (uint32_t)e->ctx->nranks ? e->conns[m->rank] : NULL;
    if (!c) {
        snprintf(e->broken, sizeof(e->broken), "control message from unknown rank %u", m->rank);
        return;
    }
    if (m->kind == CTL_NOTICE) {
        if (!e->notice) e->notice = 1, e->notice_msg = *m;
        if (m->culprit == (uint32_t)e->ctx->rank) answer(e, c, m);
        return;
    }
    if (m->kind == CTL_ANSWER) {
        if (!c->answered) c->answered = 1, c->answer = *m;
        return;
    }
    if (m->kind == CTL_RTS) return got_rts(e, c, m);
    for (ofi_req *q = c->wsends; q; q = q->next)
        if (q->seq == m->seq && q->state == ST_WAIT_CTS) {
            q->cts = *m;
            q->state = ST_READY;
            e->ready_waiting = 1;
            return;
        }
    if (seq_before(m->seq, c->sseq)) { /* we sent that message eagerly */
        if (!c->proto_err) c->proto_err = 1, c->proto_cts = *m;
        return;
    }
    stash(e, &c->early, m);
}

static void got_write(ofi_ep *e, uint64_t data, size_t len) {
    uint32_t rank = (uint32_t)(data >> 32), seq = (uint32_t)data;
    ofi_conn *c = rank < (uint32_t)e->ctx->nranks ? e->conns[rank] : NULL;
    if (c)
        for (ofi_req *q = c->wrecvs; q; q = q->next)
            if (q->seq == seq && q->state == ST_POSTED) {
                q->state = ST_DONE, q->got = len ? len : q->bytes;
                list_remove(&c->wrecvs, q);
                return;
            }
    snprintf(e->broken, sizeof(e->broken), "RMA completion from rank %u seq %u matches no receive",
             rank, seq);
}

/* Reads completions and pushes RMA sends whose CTS has arrived. */
static void progress(ofi_ep *e) {
    struct fi_cq_data_entry ent[16];
    for (;;) {
        ssize_t n = fi_cq_read(e->cq, ent, 16);
        if (n == -FI_EAGAIN) break;
        if (n == -FI_EAVAIL) {
            struct fi_cq_err_entry err = {0};
            if (fi_cq_readerr(e->cq, &err, 0) != 1) break;
            char txt[120];
            const char *pe = fi_cq_strerror(e->cq, err.prov_errno, err.err_data, txt, sizeof(txt));
            int *type = err.op_context
                            ? (int *)((char *)err.op_context + sizeof(struct fi_context2))
                            : NULL;
            if (type && *type == CTX_REQ) {
                ofi_req *q = err.op_context;
                q->state = ST_ERROR;
                if (err.err == FI_ETRUNC && q->kind == RQ_RECV) /* a longer message */
                    q->trunc = 1, q->got = err.len, q->olen = err.olen;
                if (err.flags & FI_REMOTE_CQ_DATA) q->rdata = err.data, q->has_data = 1;
                snprintf(q->err, sizeof(q->err), "%s (%s)", fi_strerror(err.err),
                         pe ? pe : "no provider detail");
            } else if (err.err != FI_ECANCELED) {
                snprintf(e->broken, sizeof(e->broken), "control completion failed: %s (%s)",
                         fi_strerror(err.err), pe ? pe : "no provider detail");
            }
            continue;
        }
        if (n < 0) {
            snprintf(e->broken, sizeof(e->broken), "fi_cq_read: %s", fi_strerror((int)-n));
            break;
        }
        for (ssize_t k = 0; k < n; k++) {
            struct fi_cq_data_entry *c = &ent[k];
            if ((c->flags & FI_REMOTE_WRITE) ||
                (!c->op_context && (c->flags & FI_REMOTE_CQ_DATA))) {
                got_write(e, c->data, c->len);
                continue;
            }
            if (!c->op_context) continue;
            int type = *(int *)((char *)c->op_context + sizeof(struct fi_context2));
            if (type == CTX_CTRL) {
                ofi_ctrl *ct = c->op_context;
                got_cts(e, &ct->msg);
                int r = post_ctrl(e, ct);
                if (r)
                    snprintf(e->broken, sizeof(e->broken), "reposting a control receive: %s",
                             fi_strerror(-r));
                continue;
            }
            ofi_req *q = c->op_context;
            if (q->kind == RQ_RECV)
                q->got = c->len;
            else
                q->got = q->bytes;
            if (c->flags & FI_REMOTE_CQ_DATA) q->rdata = c->data, q->has_data = 1;
            if (q->kind == RQ_WSEND) list_remove(&q->c->wsends, q);
            q->state = ST_DONE;
        }
    }
    /* RMA sends with their CTS in hand (only when some are waiting: this runs on every poll). */
    if (!e->ready_waiting) return;
    e->ready_waiting = 0;
    for (int p = 0; p < e->ctx->nranks; p++) {
        ofi_conn *c = e->conns[p];
        if (!c) continue;
        for (ofi_req *q = c->wsends; q; q = q->next)
            if (q->state == ST_READY && post_write(q) == -FI_EAGAIN) {
                e->ready_waiting = 1;
                break;
            }
    }
}

static podcclResult_t post_fail(ofi_conn *c, const char *what, int r) {
    return TP_ERR(c->ep->ctx, podcclSystemError, "ofi: %s to/from rank %d: %s", what, c->peer,
                  fi_strerror(-r));
}

/* The descriptor of a local buffer: the caller's registration, or (FI_MR_LOCAL providers) one
 * made for this request and released with it. On failure the request is freed. */
static podcclResult_t local_desc(ofi_req *q, const void *buf, size_t bytes, uint64_t access,
                                 void **desc) {
    ofi_ep *e = q->c->ep;
    char err[160];
    *desc = NULL;
    if (!e->mr_local || !bytes) return podcclSuccess;
    if (reg(e, buf, bytes, access, &q->mr, err, sizeof(err))) {
        req_free(q);
        return TP_ERR(e->ctx, podcclSystemError, "ofi: %s", err);
    }
    *desc = fi_mr_desc(q->mr);
    return podcclSuccess;
}

static podcclResult_t ofi_isend(void *conn, const void *buf, size_t bytes, const pc_sig *sig,
                                void **req) {
    ofi_conn *c = conn;
    ofi_ep *e = c->ep;
    *req = NULL;
    int rma = e->rma && bytes > e->eager_bytes;
    ofi_req *q = req_new(c, rma ? RQ_WSEND : RQ_SEND);
    if (!q) return TP_ERR(e->ctx, podcclSystemError, "out of memory");
    q->sbuf = buf, q->bytes = bytes, q->seq = c->sseq, q->sig = *sig;
    if (rma) {
        q->state = ST_WAIT_CTS;
        c->sseq++;
        q->next = c->wsends, c->wsends = q;
        /* The receiver may have been first. */
        if (unstash(&c->early, q->seq, &q->cts)) q->state = ST_READY;
        if (q->state == ST_READY && post_write(q) == -FI_EAGAIN)
            e->ready_waiting = 1; /* progress() retries */
        *req = q;
        return podcclSuccess;
    }
    /* A clear-to-send for this message already came: the receiver expects a larger one. */
    if (unstash(&c->early, q->seq, &q->cts)) {
        q->state = ST_ERROR, q->mism = 1, c->sseq++;
        *req = q;
        return podcclSuccess;
    }
    void *desc;
    TP_CHECK(local_desc(q, buf, bytes, FI_SEND, &desc));
    uint64_t tag = tag_of(e->ctx->rank, q->seq);
    int r = e->cq_data ? (int)fi_tsenddata(e->ep, buf, bytes, desc, pc_sig_wire(sig), c->addr, tag,
                                           &q->ctx)
                       : (int)fi_tsend(e->ep, buf, bytes, desc, c->addr, tag, &q->ctx);
    if (r == -FI_EAGAIN) {
        req_free(q);
        progress(e);
        return podcclSuccess;
    }
    if (r) {
        req_free(q);
        return post_fail(c, "fi_tsend", r);
    }
    q->state = ST_POSTED;
    c->eager_sizes[q->seq % OFI_EAGER_RING] = bytes;
    c->sseq++;
    *req = q;
    return podcclSuccess;
}

/* Drops ready-to-sends of messages before seq (their receives were clear-to-send ones). */
static void drop_old_rts(ofi_conn *c, uint32_t seq) {
    for (early_cts **p = &c->early_rts; *p;)
        if (seq_before((*p)->cts.seq, seq)) {
            early_cts *x = *p;
            *p = x->next;
            free(x);
        } else {
            p = &(*p)->next;
        }
}

static podcclResult_t ofi_irecv(void *conn, void *buf, size_t bytes, const pc_sig *sig,
                                void **req) {
    ofi_conn *c = conn;
    ofi_ep *e = c->ep;
    *req = NULL;
    int rma = e->rma && bytes > e->eager_bytes;
    ofi_req *q = req_new(c, rma ? RQ_WRECV : RQ_RECV);
    if (!q) return TP_ERR(e->ctx, podcclSystemError, "out of memory");
    q->rbuf = buf, q->bytes = bytes, q->seq = c->rseq, q->sig = *sig;
    char err[160];
    int r;
    if (c->early_rts) {
        drop_old_rts(c, q->seq);
        ofi_cts rts;
        if (unstash(&c->early_rts, q->seq, &rts) && !rma) {
            /* The sender waits for a clear-to-send: its message is larger than this receive. */
            q->cts = rts, q->state = ST_ERROR, q->mism = 1, c->rseq++;
            *req = q;
            return podcclSuccess;
        }
    }
    if (rma) {
        if (reg(e, buf, bytes, FI_REMOTE_WRITE, &q->mr, err, sizeof(err))) {
            req_free(q);
            return TP_ERR(e->ctx, podcclSystemError, "ofi: %s", err);
        }
        ofi_cts m = {.kind = CTL_CTS,
                     .rank = (uint32_t)e->ctx->rank,
                     .seq = q->seq,
                     .addr = e->mr_virt ? (uint64_t)(uintptr_t)buf : 0,
                     .key = fi_mr_key(q->mr),
                     .bytes = bytes,
                     .sig = *sig};
        r = (int)fi_tinject(e->ep, &m, sizeof(m), c->addr,
                            OFI_TAG_CTRL | tag_of(e->ctx->rank, q->seq));
        if (r == 0) {
            q->state = ST_POSTED;
            q->next = c->wrecvs, c->wrecvs = q;
        }
    } else {
        void *desc;
        TP_CHECK(local_desc(q, buf, bytes, FI_RECV, &desc));
        uint64_t tag = tag_of(c->peer, q->seq);
        if (e->ovf) {
            struct iovec iov[2] = {{buf, bytes}, {e->ovf, e->ovf_bytes + 64}};
            void *d[2] = {desc, e->ovf_mr ? fi_mr_desc(e->ovf_mr) : NULL};
            int k = bytes ? 0 : 1; /* no zero-length entry */
            r = (int)fi_trecvv(e->ep, iov + k, d + k, (size_t)(2 - k), c->addr, tag, 0, &q->ctx);
        } else {
            r = (int)fi_trecv(e->ep, buf, bytes, desc, c->addr, tag, 0, &q->ctx);
        }
        if (r == 0) q->state = ST_POSTED;
    }
    if (r == -FI_EAGAIN) {
        req_free(q);
        progress(e);
        return podcclSuccess;
    }
    if (r) {
        req_free(q);
        return post_fail(c, rma ? "fi_tinject (clear-to-send)" : "fi_trecv", r);
    }
    c->rseq++;
    *req = q;
    return podcclSuccess;
}

/* An RMA send that waited OFI_RTS_AFTER seconds for its clear-to-send tells the receiver, which
 * finds out whether it posted an eager receive for it instead (a mismatch). */
static void maybe_rts(ofi_req *q) {
    if ((++q->polls & 255) != 0) return;
    double now = tp_now();
    if (q->rts_at == 0) {
        q->rts_at = now + OFI_RTS_AFTER;
        return;
    }
    if (now < q->rts_at) return;
    ofi_ep *e = q->c->ep;
    ofi_cts m = {.kind = CTL_RTS,
                 .rank = (uint32_t)e->ctx->rank,
                 .seq = q->seq,
                 .bytes = q->bytes,
                 .sig = q->sig};
    if (fi_tinject(e->ep, &m, sizeof(m), q->c->addr, OFI_TAG_CTRL | tag_of(e->ctx->rank, q->seq)) ==
        0)
        q->rts_sent = 1;
}

/* This rank found a mismatch knowing only the peer's hash, or nothing (rc: reported so, and every
 * peer notified): the peer answers the notice with its call, which this rank waits for briefly to
 * name both calls. */
static podcclResult_t ask(ofi_req *q, podcclResult_t rc) {
    ofi_conn *c = q->c;
    ofi_ep *e = c->ep;
    for (double until = tp_now() + OFI_ANSWER_WAIT; !c->answered && tp_now() < until;) {
        progress(e);
        if (!c->answered) sched_yield();
    }
    if (!c->answered) return rc;
    pc_sig theirs = c->answer.sig;
    if (theirs.hash == q->sig.hash) /* the same call, cut differently */
        return e->ctx->size_mismatch(e->ctx->comm, c->peer, &q->sig, q->got + q->olen, q->bytes);
    return e->ctx->mismatch(e->ctx->comm, c->peer, &theirs);
}

/* The request's own mismatch (mism: the peer's CTS or RTS in q->cts; trunc: a longer message;
 * an eager message of another operation), else podcclSuccess. */
static podcclResult_t own_mismatch(ofi_req *q) {
    ofi_conn *c = q->c;
    ofi_ep *e = c->ep;
    if (q->mism) {
        if (q->cts.sig.hash != q->sig.hash)
            return e->ctx->mismatch(e->ctx->comm, c->peer, &q->cts.sig);
        return e->ctx->size_mismatch(e->ctx->comm, c->peer, &q->sig, q->cts.bytes, q->bytes);
    }
    if (q->has_data && e->cq_data && q->rdata != pc_sig_wire(&q->sig)) {
        pc_sig theirs = pc_sig_unwire(q->rdata, q->sig.seq);
        return ask(q, e->ctx->mismatch(e->ctx->comm, c->peer, &theirs));
    }
    if (q->trunc) /* a longer message: of another call, or cut differently */
        return ask(
            q, e->ctx->mismatch(e->ctx->comm, c->peer, &(pc_sig){.seq = q->sig.seq, .coll = -1}));
    return podcclSuccess;
}

/* Errors that concern the whole endpoint or connection: a peer's mismatch notice, a clear-to-send
 * for a message we sent eagerly. */
static podcclResult_t ep_mismatch(ofi_req *q) {
    ofi_conn *c = q->c;
    ofi_ep *e = c->ep;
    if (e->notice) {
        const ofi_cts *m = &e->notice_msg;
        return e->ctx->mismatch_notice(e->ctx->comm, (int)m->rank, (int)m->culprit, &m->sig,
                                       &m->other);
    }
    if (c->proto_err) {
        const ofi_cts *m = &c->proto_cts;
        if (m->sig.hash != q->sig.hash) return e->ctx->mismatch(e->ctx->comm, c->peer, &m->sig);
        return e->ctx->size_mismatch(e->ctx->comm, c->peer, &q->sig, m->bytes,
                                     c->eager_sizes[m->seq % OFI_EAGER_RING]);
    }
    return podcclSuccess;
}

static podcclResult_t ofi_test(void *req, int *done, size_t *bytes) {
    ofi_req *q = req;
    ofi_conn *c = q->c;
    ofi_ep *e = c->ep;
    *done = 0;
    if (q->state != ST_DONE && q->state != ST_ERROR) progress(e);
    if (q->state == ST_WAIT_CTS && !q->rts_sent) maybe_rts(q);
    if (q->state == ST_ERROR) TP_CHECK(own_mismatch(q));
    TP_CHECK(ep_mismatch(q));
    if (q->state == ST_ERROR) {
        int peer = c->peer;
        const char *dir = q->kind == RQ_SEND || q->kind == RQ_WSEND ? "send to" : "receive from";
        podcclResult_t rc =
            TP_ERR(e->ctx, podcclRemoteError,
                   "rank %d: ofi (%s) %s rank %d failed: %s; the peer process may have died or "
                   "the link broke",
                   e->ctx->rank, e->provider, dir, peer, q->err);
        return rc;
    }
    if (e->broken[0])
        return TP_ERR(e->ctx, podcclRemoteError, "rank %d: ofi (%s): %s", e->ctx->rank, e->provider,
                      e->broken);
    if (q->state != ST_DONE) return podcclSuccess;
    /* Report completions in posting order per direction (an eager send may finish before an
     * earlier RMA send): a finished request waits for its predecessors. */
    int is_send = q->kind == RQ_SEND || q->kind == RQ_WSEND;
    uint32_t *reported = is_send ? &c->sdone : &c->rdone;
    if (q->seq != *reported) return podcclSuccess;
    TP_CHECK(own_mismatch(q)); /* an eager message of another operation */
    (*reported)++;
    if (q->kind == RQ_RECV && q->got > q->bytes)
        return e->ctx->size_mismatch(e->ctx->comm, c->peer, &q->sig, q->got, q->bytes);
    if (bytes) *bytes = q->got;
    *done = 1;
    req_free(q);
    return podcclSuccess;
}

/* Tells every peer that this rank found culprit's operation different from its own. A peer this
 * rank never sent to may not be connected yet (the provider connects on first use and answers
 * -FI_EAGAIN meanwhile): keep progressing for up to OFI_NOTIFY_WAIT seconds. */
static void ofi_notify(void *listen_comm, int culprit, const pc_sig *mine, const pc_sig *theirs) {
    ofi_ep *e = listen_comm;
    int n = e->ctx->nranks, left = 0;
    char *sent = calloc((size_t)n, 1);
    if (!sent) return;
    ofi_cts m = {.kind = CTL_NOTICE,
                 .rank = (uint32_t)e->ctx->rank,
                 .culprit = (uint32_t)culprit,
                 .sig = *mine,
                 .other = *theirs};
    for (int p = 0; p < n; p++) left += !(sent[p] = !e->conns[p]);
    for (double until = tp_now() + OFI_NOTIFY_WAIT; left && tp_now() < until;) {
        for (int p = 0; p < n; p++) {
            if (sent[p]) continue;
            int r = (int)fi_tinject(e->ep, &m, sizeof(m), e->conns[p]->addr,
                                    OFI_TAG_CTRL | tag_of(e->ctx->rank, 0));
            if (r != -FI_EAGAIN) sent[p] = 1, left--; /* sent, or never will be */
        }
        if (left) progress(e), sched_yield();
    }
    free(sent);
}

static podcclResult_t ofi_close(void *conn) {
    ofi_conn *c = conn;
    free_stash(&c->early);
    free_stash(&c->early_rts);
    if (c->ep->conns) c->ep->conns[c->peer] = NULL;
    free(c);
    return podcclSuccess;
}

/* After an error (a mismatch above all), messages that nobody will receive wait in the provider's
 * queue of unexpected messages, which tcp;ofi_rxm does not free when the endpoint closes (LSan
 * reports it): take them in with a wildcard receive into the overflow buffer for a few
 * milliseconds. Completions are only read here: connections and requests may be gone. */
static void drain(ofi_ep *e) {
    if (!e->ep || !e->ovf || !e->ctx->broken(e->ctx->comm)) return;
    void *desc = e->ovf_mr ? fi_mr_desc(e->ovf_mr) : NULL;
    int posted = 0;
    for (double until = tp_now() + OFI_DRAIN_WAIT; tp_now() < until;) {
        if (!posted)
            posted = fi_trecv(e->ep, e->ovf, e->ovf_bytes + 64, desc, FI_ADDR_UNSPEC, 0,
                              ~OFI_TAG_CTRL, &e->drain) == 0;
        struct fi_cq_data_entry ent[16];
        ssize_t n = fi_cq_read(e->cq, ent, 16);
        if (n == -FI_EAVAIL) {
            struct fi_cq_err_entry err = {0};
            if (fi_cq_readerr(e->cq, &err, 0) == 1 && err.op_context == &e->drain) posted = 0;
        }
        for (ssize_t k = 0; k < n; k++)
            if (ent[k].op_context == &e->drain) posted = 0;
    }
    if (posted) fi_cancel(&e->ep->fid, &e->drain);
}

static podcclResult_t ofi_close_listen(void *listen_comm) {
    ofi_ep *e = listen_comm;
    if (!e) return podcclSuccess;
    drain(e);
    /* Closing the endpoint first: after that no completion can name our requests. */
    if (e->ep) fi_close(&e->ep->fid);
    while (e->live) {
        ofi_req *q = e->live;
        e->live = q->live_next;
        if (q->mr) fi_close(&q->mr->fid);
        free(q);
    }
    if (e->ctrl_mr) fi_close(&e->ctrl_mr->fid);
    if (e->ovf_mr) fi_close(&e->ovf_mr->fid);
    if (e->av) fi_close(&e->av->fid);
    if (e->cq) fi_close(&e->cq->fid);
    if (e->domain) fi_close(&e->domain->fid);
    if (e->fabric) fi_close(&e->fabric->fid);
    if (e->info) fi_freeinfo(e->info);
    if (e->conns)
        for (int p = 0; p < e->ctx->nranks; p++)
            if (e->conns[p]) ofi_close(e->conns[p]);
    free(e->conns), free(e->ctrl), free(e->ovf), free(e);
    return podcclSuccess;
}

static const pc_transport ofi_transport = {
    .name = "ofi",
    .available = ofi_available,
    .can_reach = ofi_can_reach,
    .properties = ofi_properties,
    .listen = ofi_listen,
    .connect = ofi_connect,
    .accept = ofi_connect, /* connectionless: both ends insert the peer's address */
    .isend = ofi_isend,
    .irecv = ofi_irecv,
    .test = ofi_test,
    .close = ofi_close,
    .close_listen = ofi_close_listen,
    .notify = ofi_notify,
};

/* The module's entry (podccl_net.h): podccl-net-ofi.so. */
PC_NET_EXPORT const pc_net_plugin podcclNetPlugin_v1 = {
    .abi_version = PC_NET_ABI_VERSION,
    .struct_size = sizeof(pc_transport),
    .transport = &ofi_transport,
};
