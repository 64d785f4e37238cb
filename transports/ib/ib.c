/* RDMA verbs transport (libibverbs + librdmacm), on the design of NCCL's net_ib.
 *
 * Setup. listen picks one device port and GID (ib_dev.c), opens one rdma_cm event channel
 * (non-blocking), one listening id bound to that GID's IP address on an ephemeral port, one
 * protection domain and one completion queue for the whole communicator. The handle carries the
 * address, a random nonce and the staging geometry. The lower rank of a pair resolves the peer's
 * address and route and connects an RC queue pair with {magic, the nonce it read in the peer's
 * handle, its own nonce, its rank} as private data; the higher rank accepts requests as they
 * arrive on its channel (also for ranks it has not been asked about yet) and rejects strays. Both
 * hand the connection to the core once it is ESTABLISHED; nothing ever blocks.
 *
 * Data. Receiver-driven clear-to-send: irecv reserves slots of the connection's registered
 * receive staging area and SENDs one clear-to-send message per slot {address, rkey, slot size,
 * size of the receive, message sequence, piece}. isend waits (in test) for the clear-to-send of
 * its message, copies each slot-sized piece into a registered send slot and RDMA-writes it with
 * immediate data {length, last piece, error} into the receiver's slot; the receive WR that the
 * immediate consumes tells the receiver that the piece is there and it copies it out. A message
 * shorter than the receive ends early (the sender drops the remaining clear-to-sends of that
 * message); a longer one is refused on both sides. Zero-byte messages take one empty write.
 * Mismatched calls: a clear-to-send carries the receiver's operation signature (transport.h),
 * which the sender compares before it writes the first piece; on a difference (or a message
 * longer than the receive) it writes, instead of data, an error piece carrying its own signature
 * and size (IMM_ERR), so that both ends name both calls and neither waits for the timeout.
 * Messages and pieces travel in order on the RC queue pair, so requests complete in posting
 * order.
 *
 * Memory: why user buffers are staged, not registered. The core passes mr = NULL and frees and
 * reallocates its buffers freely, so a registration of a user buffer could only be reused across
 * calls with memory hooks (or on-demand paging, which rxe does not have); registering and
 * deregistering every call costs far more than a copy at these sizes. So each connection owns
 * max_inflight send and receive slots of chunk_bytes, registered once through the registration
 * cache (ib_reg.c), and user data is copied through them.
 *
 * Failures: a completion error becomes text naming the peer and the likely cause (ib_wc_text);
 * RDMA_CM_EVENT_DISCONNECTED or a queue pair in error fails the connection's pending and future
 * requests with podcclRemoteError. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/random.h>
#include <unistd.h>

#include "transports/ib/ib_dev.h"
#include "transports/ib/ib_reg.h"

#define IB_MAGIC 0x62696370u /* "pcib" */
#define IB_VERSION 2         /* 2: clear-to-sends carry the operation's signature */
#define IMM_LAST (1u << 31)
#define IMM_ERR (1u << 30)
#define IMM_LEN ((1u << 30) - 1)
#define MAX_SLOT_BYTES (1u << 29)
#define RESOLVE_MS 5000
#define ACK_TIMEOUT 18 /* 4.096 us * 2^18 = 1 s per try: emulated (TCG) hosts stall that long */
#define CONNECT_TRIES 5
#define CM_POLL_EVERY 64 /* test() calls between looks at the rdma_cm channel */

enum { WR_RECV = 1, WR_CTS, WR_WRITE, WR_ERR };
enum { C_ADDR, C_ROUTE, C_CONNECTING, C_ACCEPTING, C_RETRY, C_UP, C_FAILED };
enum { REJ_STRAY = 1, REJ_GEOMETRY, REJ_DUPLICATE, REJ_INTERNAL };

typedef struct {
    uint32_t magic, version;
    int32_t rank;
    uint32_t slot_bytes, nslots;
    uint64_t nonce;
    ib_sockaddr addr; /* the listening id's address and port */
    char dev[48];
} ib_handle;
_Static_assert(sizeof(ib_handle) <= PC_HANDLE_BYTES, "ib handle too large");

/* Private data of a connect request (RC allows 56 bytes). */
typedef struct {
    uint32_t magic, version;
    int32_t rank;
    uint32_t slot_bytes, nslots, pad;
    uint64_t target_nonce, src_nonce;
} ib_priv;
_Static_assert(sizeof(ib_priv) <= 56, "private data too large");

typedef struct {
    uint32_t magic, reason;
} ib_rej;

/* Clear-to-send: the receiver's slot that piece `piece` of message `seq` may be written to, for
 * a receive of recv_bytes of operation sig. */
typedef struct {
    uint64_t addr, recv_bytes;
    uint32_t rkey, slot_bytes, seq, piece;
    pc_sig sig;
} ib_cts;

/* The payload of an error piece (IMM_ERR): the sender's operation and message size. */
typedef struct {
    pc_sig sig;
    uint64_t bytes;
} ib_errpiece;

typedef struct ib_req {
    struct ib_conn *c;
    struct ib_req *prev, *next;
    char *buf;
    size_t bytes, off; /* off: bytes copied so far */
    uint32_t seq;
    int is_send, done;
    int pieces, cts_sent, got; /* receive: slots wanted, clear-to-sends sent, pieces arrived */
    int inflight, last_posted; /* send: writes not yet completed, last piece posted */
    pc_sig sig;                /* the operation the message belongs to */
} ib_req;

typedef struct ib_listen {
    const pc_tp_ctx *ctx;
    struct rdma_event_channel *ch;
    struct rdma_cm_id *lid;
    struct ibv_context **devs;
    ib_choice dc;
    struct ibv_pd *pd;
    struct ibv_cq *cq;
    ib_reg_cache reg;
    uint64_t nonce;
    size_t slot;            /* bytes of one staging slot */
    int R;                  /* slots per direction per connection */
    int sq_depth, rq_depth; /* per queue pair */
    struct ib_conn **conns; /* [nranks] */
    unsigned polls, gen;
    ib_sockaddr addr; /* bound address, with the port */
    char provider[96];
} ib_listen;

typedef struct ib_conn {
    ib_listen *L;
    int peer, state, tries, gen, disconnected;
    struct rdma_cm_id *id;
    struct ibv_qp *qp;
    ib_sockaddr peer_addr;
    uint64_t peer_nonce, target_nonce;
    double t0, retry_at; /* first attempt; when the connector may try again */
    /* Staging, one registered block: receive slots, send slots, control receive and send
     * buffers. */
    char *mem, *rslots, *sslots;
    ib_cts *ctrl_recv, *ctrl_send;
    ib_reg_entry *reg;
    int C; /* clear-to-send ring entries (2R) */
    /* receiver */
    uint32_t recv_seq;
    int rs_first, rs_count; /* receive slots promised by clear-to-sends, oldest first */
    int cs_first, cs_count; /* clear-to-send buffers in flight */
    ib_req *rq_head, *rq_tail, *rq_cts, *rq_cur;
    /* sender */
    uint32_t send_seq, send_next; /* next isend's sequence; first message not fully posted */
    ib_cts *ctsq;                 /* clear-to-sends received, [C] ring */
    int cq_first, cq_count;
    int ss_first, ss_count; /* send slots in flight */
    ib_req **ss_owner;      /* [R] */
    ib_req *sq_head, *sq_tail, *sq_post;
    /* failure */
    int mism; /* 1: the calls differ (mism_peer: the peer's operation and size) */
    ib_errpiece mism_peer;
    podcclResult_t err;
    int err_weak; /* err came from a flushed request: a later, more telling cause replaces it */
    char errmsg[400];
} ib_conn;

/* A work request id: peer rank, the queue pair's generation, kind (WR_*) and buffer index. */
static uint64_t wrid(const ib_conn *c, int kind, int idx) {
    return ((uint64_t)(uint32_t)c->peer << 40) | ((uint64_t)(c->gen & 0xff) << 32) |
           ((uint64_t)kind << 24) | (uint64_t)(uint32_t)idx;
}

/* seq a comes before seq b (32-bit wrap-around). */
static int seq_before(uint32_t a, uint32_t b) {
    return (int32_t)(a - b) < 0;
}

/* Short name of a GID type for logs and the provider string. */
static const char *gid_type_name(int t) {
    return t == IBV_GID_TYPE_ROCE_V2 ? "RoCEv2" : t == IBV_GID_TYPE_ROCE_V1 ? "RoCEv1" : "IB";
}

/* Records the first failure of an established connection (a flush is replaced by a later
 * cause); requests on it then fail with rc and this text. */
static void conn_fail(ib_conn *c, podcclResult_t rc, int weak, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void conn_fail(ib_conn *c, podcclResult_t rc, int weak, const char *fmt, ...) {
    if (c->err && (!c->err_weak || weak)) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->errmsg, sizeof(c->errmsg), fmt, ap);
    va_end(ap);
    c->err = rc, c->err_weak = weak;
    TP_LOG(c->L->ctx, PC_LOG_INFO, PC_SUB_NET, "ib: %s", c->errmsg);
}

/* Records a failure while connecting: retry (the connector starts over) or give up. */
static void setup_fail(ib_conn *c, int retry, podcclResult_t rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void setup_fail(ib_conn *c, int retry, podcclResult_t rc, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->errmsg, sizeof(c->errmsg), fmt, ap);
    va_end(ap);
    c->err = rc;
    c->state = retry ? C_RETRY : C_FAILED;
    c->retry_at = tp_now() + 0.5 * c->tries; /* back off: 0.5 s, 1 s, ... */
    TP_LOG(c->L->ctx, PC_LOG_INFO, PC_SUB_NET, "ib: %s%s", c->errmsg, retry ? " (will retry)" : "");
}

/* ---- connection objects ------------------------------------------------------------------ */

/* A connection towards peer with its registered staging block; no cm id or QP yet. */
static podcclResult_t conn_new(ib_listen *L, int peer, ib_conn **out) {
    const pc_tp_ctx *ctx = L->ctx;
    ib_conn *c = calloc(1, sizeof(*c));
    if (!c) return TP_ERR(ctx, podcclSystemError, "out of memory");
    c->L = L, c->peer = peer, c->C = 2 * L->R, c->gen = (int)(++L->gen & 0xff);
    c->t0 = tp_now();
    size_t slots = 2 * (size_t)L->R * L->slot;
    size_t ctrl = sizeof(ib_cts) * (size_t)(L->rq_depth + c->C);
    size_t bytes = (slots + ctrl + 4095) / 4096 * 4096;
    c->ctsq = calloc((size_t)c->C, sizeof(ib_cts));
    c->ss_owner = calloc((size_t)L->R, sizeof(ib_req *));
    if (!c->ctsq || !c->ss_owner || posix_memalign((void **)&c->mem, 4096, bytes)) {
        free(c->ctsq), free(c->ss_owner), free(c);
        return TP_ERR(ctx, podcclSystemError,
                      "rank %d: cannot allocate %zu bytes of ib staging memory for rank %d",
                      ctx->rank, bytes, peer);
    }
    memset(c->mem + slots, 0, bytes - slots);
    c->rslots = c->mem;
    c->sslots = c->mem + (size_t)L->R * L->slot;
    c->ctrl_recv = (ib_cts *)(c->mem + slots);
    c->ctrl_send = c->ctrl_recv + L->rq_depth;
    podcclResult_t r = ib_reg_get(ctx, &L->reg, c->mem, bytes, &c->reg);
    if (r != podcclSuccess) {
        free(c->mem), free(c->ctsq), free(c->ss_owner), free(c);
        return r;
    }
    *out = c;
    return podcclSuccess;
}

/* Destroys the queue pair and cm id (not the staging memory). */
static void conn_drop_id(ib_conn *c) {
    if (!c->id) return;
    if (c->qp) rdma_destroy_qp(c->id);
    rdma_destroy_id(c->id);
    c->id = NULL, c->qp = NULL;
}

/* Frees everything of a connection, requests still queued included. */
static void conn_destroy(ib_conn *c) {
    ib_listen *L = c->L;
    conn_drop_id(c);
    for (int q = 0; q < 2; q++)
        for (ib_req *r = q ? c->sq_head : c->rq_head, *n; r; r = n) n = r->next, free(r);
    ib_reg_put(&L->reg, c->reg);
    if (L->conns[c->peer] == c) L->conns[c->peer] = NULL;
    free(c->mem), free(c->ctsq), free(c->ss_owner), free(c);
}

/* Posts the receive WR of control buffer idx (it takes a clear-to-send or an immediate). */
static int post_recv(ib_conn *c, int idx) {
    struct ibv_sge sge = {
        .addr = (uintptr_t)&c->ctrl_recv[idx], .length = sizeof(ib_cts), .lkey = c->reg->mr->lkey};
    struct ibv_recv_wr wr = {.wr_id = wrid(c, WR_RECV, idx), .sg_list = &sge, .num_sge = 1}, *bad;
    return ibv_post_recv(c->qp, &wr, &bad);
}

/* Creates the RC queue pair on the communicator's PD and CQ and posts its receives. */
static int conn_make_qp(ib_conn *c, struct rdma_cm_id *id) {
    ib_listen *L = c->L;
    uint8_t t = ACK_TIMEOUT;
    if (rdma_set_option(id, RDMA_OPTION_ID, RDMA_OPTION_ID_ACK_TIMEOUT, &t, sizeof(t)))
        TP_LOG(c->L->ctx, PC_LOG_INFO, PC_SUB_NET, "ib: cannot set the ACK timeout: %s",
               strerror(errno));
    struct ibv_qp_init_attr a;
    memset(&a, 0, sizeof(a));
    a.send_cq = a.recv_cq = L->cq;
    a.qp_type = IBV_QPT_RC;
    a.sq_sig_all = 1;
    a.cap.max_send_wr = (uint32_t)L->sq_depth;
    a.cap.max_recv_wr = (uint32_t)L->rq_depth;
    a.cap.max_send_sge = a.cap.max_recv_sge = 1;
    if (rdma_create_qp(id, L->pd, &a)) return errno ? errno : EINVAL;
    c->qp = id->qp;
    for (int i = 0; i < L->rq_depth; i++) {
        int e = post_recv(c, i);
        if (e) return e;
    }
    return 0;
}

/* Connection parameters of both sides: no RDMA reads, infinite RNR retries. */
static struct rdma_conn_param conn_param(const ib_listen *L, const void *priv, size_t len) {
    struct rdma_conn_param p;
    memset(&p, 0, sizeof(p));
    p.private_data = priv;
    p.private_data_len = (uint8_t)len;
    p.responder_resources = L->dc.dev_attr.max_qp_rd_atom > 0 ? 1 : 0;
    p.initiator_depth = L->dc.dev_attr.max_qp_init_rd_atom > 0 ? 1 : 0;
    p.retry_count = 7;
    p.rnr_retry_count = 7;
    return p;
}

/* Connector: a new cm id on the communicator's channel, and address resolution. */
static void conn_start(ib_conn *c) {
    ib_listen *L = c->L;
    char a[80];
    ib_addr_str(&c->peer_addr.sa, 1, a, sizeof(a));
    c->gen = (int)(++L->gen & 0xff);
    c->tries++;
    if (rdma_create_id(L->ch, &c->id, c, RDMA_PS_TCP)) {
        setup_fail(c, 0, podcclSystemError, "rank %d: rdma_create_id for rank %d: %s", L->ctx->rank,
                   c->peer, strerror(errno));
        return;
    }
    ib_sockaddr src = L->dc.addr;
    if (rdma_resolve_addr(c->id, &src.sa, &c->peer_addr.sa, RESOLVE_MS)) {
        setup_fail(c, 1, podcclRemoteError, "rank %d: rdma_resolve_addr of rank %d at %s: %s",
                   L->ctx->rank, c->peer, a, strerror(errno));
        return;
    }
    c->state = C_ADDR;
}

/* ---- rdma_cm events ---------------------------------------------------------------------- */

/* A connect request on the listening id: accept it for a lower rank of this communicator on
 * another host, reject anything else. */
static void on_request(ib_listen *L, struct rdma_cm_event *ev) {
    const pc_tp_ctx *ctx = L->ctx;
    struct rdma_cm_id *id = ev->id;
    ib_priv p;
    memset(&p, 0, sizeof(p));
    int len = ev->param.conn.private_data_len, reason = 0;
    if (ev->param.conn.private_data && len >= (int)sizeof(p))
        memcpy(&p, ev->param.conn.private_data, sizeof(p));
    if (p.magic != IB_MAGIC || p.version != IB_VERSION || p.target_nonce != L->nonce ||
        p.rank < 0 || p.rank >= ctx->rank || ctx->host_of[p.rank] == ctx->host)
        reason = REJ_STRAY;
    else if (p.slot_bytes != L->slot || p.nslots != (uint32_t)L->R)
        reason = REJ_GEOMETRY;
    else if (L->conns[p.rank] && L->conns[p.rank]->state == C_UP)
        reason = REJ_DUPLICATE;
    rdma_ack_cm_event(ev);
    ib_conn *c = NULL;
    if (!reason) {
        /* A retry from the peer replaces a half-made connection. */
        if (L->conns[p.rank]) conn_destroy(L->conns[p.rank]);
        if (conn_new(L, p.rank, &c) != podcclSuccess) reason = REJ_INTERNAL;
    }
    if (reason) {
        ib_rej rej = {IB_MAGIC, (uint32_t)reason};
        rdma_reject(id, &rej, sizeof(rej));
        rdma_destroy_id(id);
        TP_LOG(ctx, PC_LOG_INFO, PC_SUB_NET, "ib: rank %d rejected a connect request (reason %d)",
               ctx->rank, reason);
        return;
    }
    c->id = id, id->context = c;
    c->peer_nonce = p.src_nonce;
    c->state = C_ACCEPTING;
    L->conns[p.rank] = c;
    int e = conn_make_qp(c, id);
    struct rdma_conn_param cp = conn_param(L, NULL, 0);
    if (e || rdma_accept(id, &cp)) {
        if (!e) e = errno;
        ib_rej rej = {IB_MAGIC, REJ_INTERNAL};
        rdma_reject(id, &rej, sizeof(rej));
        setup_fail(c, 0, podcclSystemError,
                   "rank %d: cannot accept the connection from rank %d on %s: %s%s", ctx->rank,
                   p.rank, L->dc.dev, strerror(e),
                   e == ENOMEM ? " (queue pair or locked-memory limits)" : "");
    }
}

/* Text for a rejected connect request. */
static void rejected(ib_conn *c, const struct rdma_cm_event *ev) {
    const pc_tp_ctx *ctx = c->L->ctx;
    ib_rej rej = {0, 0};
    if (ev->param.conn.private_data && ev->param.conn.private_data_len >= sizeof(rej))
        memcpy(&rej, ev->param.conn.private_data, sizeof(rej));
    char a[80];
    ib_addr_str(&c->peer_addr.sa, 1, a, sizeof(a));
    if (rej.magic != IB_MAGIC) {
        setup_fail(c, 1, podcclRemoteError,
                   "rank %d: rank %d at %s refused the connection (rdma_cm status %d: no "
                   "listener there; the peer exited, or the address is not its)",
                   ctx->rank, c->peer, a, ev->status);
        return;
    }
    const char *why = rej.reason == REJ_STRAY      ? "it does not belong to the same communicator"
                      : rej.reason == REJ_GEOMETRY ? "its PODCCL_CHUNK_BYTES / PODCCL_MAX_INFLIGHT "
                                                     "differ from ours"
                      : rej.reason == REJ_DUPLICATE ? "it is already connected to us"
                                                    : "it could not set up its side (see its log)";
    setup_fail(c, 0, rej.reason == REJ_INTERNAL ? podcclRemoteError : podcclInvalidUsage,
               "rank %d: rank %d rejected our connection: %s", ctx->rank, c->peer, why);
}

/* One event on the communicator's channel (acked here). */
static void on_event(ib_listen *L, struct rdma_cm_event *ev) {
    if (ev->event == RDMA_CM_EVENT_CONNECT_REQUEST) {
        on_request(L, ev);
        return;
    }
    ib_conn *c = ev->id ? ev->id->context : NULL;
    const pc_tp_ctx *ctx = L->ctx;
    enum rdma_cm_event_type type = ev->event;
    int status = ev->status;
    uint32_t rqp = ev->param.conn.qp_num;
    if (c && type == RDMA_CM_EVENT_REJECTED) rejected(c, ev);
    rdma_ack_cm_event(ev);
    if (!c) return;
    char a[80];
    ib_addr_str(&c->peer_addr.sa, 1, a, sizeof(a));
    int up = c->state == C_UP;
    switch (type) {
    case RDMA_CM_EVENT_ADDR_RESOLVED:
        if (c->id->verbs != L->dc.ctx)
            setup_fail(c, 0, podcclSystemError,
                       "rank %d: the route to rank %d (%s) leaves through device %s, not %s: "
                       "check the routing or PODCCL_IB_HCA",
                       ctx->rank, c->peer, a,
                       c->id->verbs ? ibv_get_device_name(c->id->verbs->device) : "?", L->dc.dev);
        else if (rdma_resolve_route(c->id, RESOLVE_MS))
            setup_fail(c, 1, podcclRemoteError, "rank %d: rdma_resolve_route to rank %d: %s",
                       ctx->rank, c->peer, strerror(errno));
        else
            c->state = C_ROUTE;
        break;
    case RDMA_CM_EVENT_ROUTE_RESOLVED: {
        ib_priv p = {IB_MAGIC,       IB_VERSION, ctx->rank,       (uint32_t)L->slot,
                     (uint32_t)L->R, 0,          c->target_nonce, L->nonce};
        int e = conn_make_qp(c, c->id);
        struct rdma_conn_param cp = conn_param(L, &p, sizeof(p));
        if (!e && rdma_connect(c->id, &cp)) e = errno;
        if (e)
            setup_fail(c, 0, podcclSystemError, "rank %d: cannot connect a QP to rank %d: %s",
                       ctx->rank, c->peer, strerror(e));
        else
            c->state = C_CONNECTING;
        break;
    }
    case RDMA_CM_EVENT_ESTABLISHED:
        c->state = C_UP;
        TP_LOG(ctx, PC_LOG_INFO, PC_SUB_NET, "ib: rank %d <-> rank %d (%s) connected: qp %u <-> %u",
               ctx->rank, c->peer, a, c->qp ? c->qp->qp_num : 0, rqp);
        break;
    case RDMA_CM_EVENT_REJECTED:
        break; /* handled above */
    case RDMA_CM_EVENT_ADDR_ERROR:
    case RDMA_CM_EVENT_ROUTE_ERROR:
    case RDMA_CM_EVENT_UNREACHABLE:
    case RDMA_CM_EVENT_CONNECT_ERROR:
        if (up) {
            conn_fail(c, podcclRemoteError, 0, "rank %d: connection with rank %d failed: %s",
                      ctx->rank, c->peer, rdma_event_str(type));
        } else {
            setup_fail(c, 1, podcclRemoteError,
                       "rank %d: cannot reach rank %d at %s: %s (status %d: %s): check the "
                       "network between the two hosts, the device's IP address and "
                       "PODCCL_IB_HCA / PODCCL_IB_GID_INDEX",
                       ctx->rank, c->peer, a, rdma_event_str(type), status,
                       strerror(status < 0 ? -status : status));
        }
        break;
    case RDMA_CM_EVENT_DISCONNECTED:
        c->disconnected = 1;
        if (up)
            conn_fail(c, podcclRemoteError, 0,
                      "rank %d: rank %d closed the connection (it exited, aborted, or destroyed "
                      "its communicator)",
                      ctx->rank, c->peer);
        else
            setup_fail(c, 1, podcclRemoteError, "rank %d: rank %d disconnected while connecting",
                       ctx->rank, c->peer);
        break;
    case RDMA_CM_EVENT_DEVICE_REMOVAL:
        if (up)
            conn_fail(c, podcclSystemError, 0, "rank %d: RDMA device %s was removed", ctx->rank,
                      L->dc.dev);
        else
            setup_fail(c, 0, podcclSystemError, "rank %d: RDMA device %s was removed", ctx->rank,
                       L->dc.dev);
        break;
    default:
        break; /* TIMEWAIT_EXIT, ADDR_CHANGE, ... */
    }
}

/* Handles every event waiting on the communicator's channel; never blocks. */
static podcclResult_t cm_poll(ib_listen *L) {
    struct rdma_cm_event *ev;
    while (rdma_get_cm_event(L->ch, &ev) == 0) on_event(L, ev);
    if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
        return TP_ERR(L->ctx, podcclSystemError, "rank %d: rdma_get_cm_event: %s", L->ctx->rank,
                      strerror(errno));
    return podcclSuccess;
}

/* ---- listen / connect / accept ----------------------------------------------------------- */

/* Ranks on other hosts that the rank with the most of them talks to: sizes the per-connection
 * queues identically on every rank, so that both ends agree. */
static int max_remote_peers(const pc_tp_ctx *ctx) {
    int *count = calloc((size_t)ctx->nhosts, sizeof(int)), least = ctx->nranks;
    if (!count) return ctx->nranks - 1;
    for (int r = 0; r < ctx->nranks; r++) count[ctx->host_of[r]]++;
    for (int h = 0; h < ctx->nhosts; h++)
        if (count[h] && count[h] < least) least = count[h];
    free(count);
    return ctx->nranks - least;
}

static podcclResult_t ib_close_listen(void *listen_comm);

/* The transport's listen: device, port and GID, the listening cm id, PD, CQ, staging geometry,
 * and the handle {address, nonce, geometry} for the peers. */
static podcclResult_t ib_listen_fn(const pc_tp_ctx *ctx, void *handle, void **listen_comm) {
    podcclResult_t res = podcclSuccess;
    ib_listen *L = calloc(1, sizeof(*L));
    if (!L || !(L->conns = calloc((size_t)ctx->nranks, sizeof(ib_conn *)))) {
        free(L);
        return TP_ERR(ctx, podcclSystemError, "out of memory");
    }
    L->ctx = ctx;
    int ndev = 0;
    L->ch = rdma_create_event_channel();
    if (!L->ch || fcntl(L->ch->fd, F_SETFL, fcntl(L->ch->fd, F_GETFL) | O_NONBLOCK)) {
        res = TP_ERR(ctx, podcclSystemError, "rank %d: rdma_create_event_channel: %s", ctx->rank,
                     strerror(errno));
        goto fail;
    }
    L->devs = rdma_get_devices(&ndev);
    if (!L->devs || ndev == 0) {
        res = TP_ERR(ctx, podcclSystemError, "rank %d: rdma_get_devices found no device: %s",
                     ctx->rank, strerror(errno));
        goto fail;
    }
    TP_CHECKGOTO(ib_dev_choose(ctx, L->devs, ndev, &L->dc), res, fail);
    char a[80];
    ib_addr_str(&L->dc.addr.sa, 0, a, sizeof(a));
    if (rdma_create_id(L->ch, &L->lid, NULL, RDMA_PS_TCP) ||
        rdma_bind_addr(L->lid, &L->dc.addr.sa) ||
        rdma_listen(L->lid, ctx->nranks > 128 ? ctx->nranks : 128)) {
        res = TP_ERR(ctx, podcclSystemError, "rank %d: cannot listen with rdma_cm on %s (%s): %s",
                     ctx->rank, a, L->dc.dev, strerror(errno));
        goto fail;
    }
    if (L->lid->verbs != L->dc.ctx) {
        res =
            TP_ERR(ctx, podcclSystemError,
                   "rank %d: address %s belongs to RDMA device %s, not to %s (the GID's): set "
                   "PODCCL_IB_GID_INDEX or PODCCL_IB_HCA",
                   ctx->rank, a,
                   L->lid->verbs ? ibv_get_device_name(L->lid->verbs->device) : "none", L->dc.dev);
        goto fail;
    }
    struct sockaddr *la = rdma_get_local_addr(L->lid);
    memcpy(&L->addr, la,
           la->sa_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6));

    /* Geometry: slots of one chunk; as many as max_inflight while every connection's queues
     * fit the device's CQ and QP limits (rxe: 32767 CQEs). */
    const struct ibv_device_attr *da = &L->dc.dev_attr;
    int maxp = max_remote_peers(ctx), npeers = ctx->nranks - ctx->nlocal;
    L->slot = ctx->chunk_bytes < MAX_SLOT_BYTES ? ctx->chunk_bytes : MAX_SLOT_BYTES;
    L->R = ctx->max_inflight;
    int by_cq = maxp > 0 ? (da->max_cqe / maxp - 4) / 6 : L->R;
    int by_qp = (da->max_qp_wr - 2) / 3;
    if (L->R > by_cq) L->R = by_cq;
    if (L->R > by_qp) L->R = by_qp;
    if (L->R < 1) {
        res = TP_ERR(ctx, podcclSystemError,
                     "rank %d: device %s's completion queue (%d entries) is too small for %d "
                     "peers",
                     ctx->rank, L->dc.dev, da->max_cqe, maxp);
        goto fail;
    }
    L->sq_depth = 3 * L->R + 2; /* writes (R) + clear-to-sends (2R) + an error notice */
    /* Receives: immediates into our slots (R) and the peer's clear-to-sends, stale ones of
     * messages that ended early included (2R). Too few would only cost RNR retries. */
    L->rq_depth = 3 * L->R + 2;
    int cqe = (npeers > 0 ? npeers : 1) * (L->sq_depth + L->rq_depth);
    if (cqe > da->max_cqe) cqe = da->max_cqe;
    L->pd = ibv_alloc_pd(L->dc.ctx);
    L->cq = L->pd ? ibv_create_cq(L->dc.ctx, cqe, NULL, NULL, 0) : NULL;
    if (!L->cq) {
        res = TP_ERR(ctx, podcclSystemError, "rank %d: cannot create %s of %d entries on %s: %s",
                     ctx->rank, L->pd ? "a completion queue" : "a protection domain", cqe,
                     L->dc.dev, strerror(errno));
        goto fail;
    }
    L->reg.pd = L->pd;
    uint64_t rnd = 0;
    if (getrandom(&rnd, sizeof(rnd), 0) != sizeof(rnd)) rnd = (uint64_t)(tp_now() * 1e9);
    L->nonce = rnd ^ ctx->job_key ^ ((uint64_t)ctx->rank << 48);

    ib_handle *hd = handle;
    memset(hd, 0, sizeof(*hd));
    hd->magic = IB_MAGIC, hd->version = IB_VERSION, hd->rank = ctx->rank;
    hd->slot_bytes = (uint32_t)L->slot, hd->nslots = (uint32_t)L->R, hd->nonce = L->nonce;
    hd->addr = L->addr;
    snprintf(hd->dev, sizeof(hd->dev), "%.47s", L->dc.dev);
    snprintf(L->provider, sizeof(L->provider), "%.24s:%d gid %d %s %.46s", L->dc.dev, L->dc.port,
             L->dc.gid_index, gid_type_name(L->dc.gid_type), a);
    char full[80];
    ib_addr_str(&L->addr.sa, 1, full, sizeof(full));
    TP_LOG(ctx, PC_LOG_INFO, PC_SUB_NET,
           "ib: rank %d listens on %s (%s); %d x %zu KiB staging slots per direction and peer, "
           "QP %d/%d WRs, CQ %d",
           ctx->rank, full, L->provider, L->R, L->slot >> 10, L->sq_depth, L->rq_depth, cqe);
    *listen_comm = L;
    return podcclSuccess;
fail:
    ib_close_listen(L);
    return res;
}

/* Hands a connection to the core once established; retries a failed attempt (connector),
 * reports a final failure. */
static podcclResult_t handout(ib_conn *c, void **conn) {
    const pc_tp_ctx *ctx = c->L->ctx;
    if (c->state == C_RETRY && c->peer > ctx->rank) {
        if (tp_now() < c->retry_at) return podcclSuccess;
        if (c->tries < CONNECT_TRIES && tp_now() - c->t0 < ctx->timeout) {
            conn_drop_id(c);
            conn_start(c);
        } else {
            c->state = C_FAILED;
        }
    }
    if (c->state == C_FAILED)
        return TP_ERR(ctx, c->err ? c->err : podcclSystemError, "%s (attempt %d)", c->errmsg,
                      c->tries);
    if (c->state == C_UP) *conn = c;
    return podcclSuccess;
}

/* Checks the peer's handle: same protocol and staging geometry. */
static podcclResult_t check_handle(ib_listen *L, int peer, const ib_handle *h) {
    const pc_tp_ctx *ctx = L->ctx;
    if (h->magic != IB_MAGIC || h->version != IB_VERSION || h->rank != peer)
        return TP_ERR(ctx, podcclInternalError, "rank %d: rank %d's ib handle is not valid",
                      ctx->rank, peer);
    if (h->slot_bytes != L->slot || h->nslots != (uint32_t)L->R)
        return TP_ERR(ctx, podcclInvalidUsage,
                      "rank %d: rank %d stages %u slots of %u bytes per connection, we %d of %zu: "
                      "set the same PODCCL_CHUNK_BYTES and PODCCL_MAX_INFLIGHT on every rank (or "
                      "the devices' queue limits differ)",
                      ctx->rank, peer, h->nslots, h->slot_bytes, L->R, L->slot);
    return podcclSuccess;
}

/* The transport's connect (lower rank): starts address resolution on the first call, then
 * drives the channel's events; *conn is set once the connection is established. */
static podcclResult_t ib_connect(void *listen_comm, int peer, const void *handle, void **conn) {
    ib_listen *L = listen_comm;
    ib_conn *c = L->conns[peer];
    if (!c) {
        const ib_handle *h = handle;
        TP_CHECK(check_handle(L, peer, h));
        TP_CHECK(conn_new(L, peer, &c));
        c->peer_addr = h->addr;
        c->target_nonce = h->nonce;
        L->conns[peer] = c;
        conn_start(c);
    }
    TP_CHECK(cm_poll(L));
    return handout(c, conn);
}

/* The transport's accept (higher rank): drives the channel's events (requests are accepted as
 * they come, see on_request) and hands out peer's connection once established. */
static podcclResult_t ib_accept(void *listen_comm, int peer, const void *handle, void **conn) {
    ib_listen *L = listen_comm;
    const pc_tp_ctx *ctx = L->ctx;
    const ib_handle *h = handle;
    TP_CHECK(check_handle(L, peer, h)); /* at once: a mismatched peer never connects */
    TP_CHECK(cm_poll(L));
    ib_conn *c = L->conns[peer];
    if (!c) return podcclSuccess;
    if (c->state == C_RETRY) { /* the connector will try again */
        conn_destroy(c);
        return podcclSuccess;
    }
    if (c->peer_nonce != h->nonce)
        return TP_ERR(ctx, podcclInternalError,
                      "rank %d: the connection from rank %d does not carry the nonce of its "
                      "handle",
                      ctx->rank, peer);
    return handout(c, conn);
}

/* The network transport serves every rank on another host. */
static int ib_can_reach(const pc_tp_ctx *ctx, int peer) {
    return ctx->host_of[peer] != ctx->host;
}

/* Name, provider string and rough speed of the chosen port (for logs and the cost model). */
static void ib_properties(void *listen_comm, pc_props *p) {
    ib_listen *L = listen_comm;
    memset(p, 0, sizeof(*p));
    p->name = "ib";
    snprintf(p->provider, sizeof(p->provider), "%s", L->provider);
    double gbps = ib_port_gbps(&L->dc.port_attr);
    int soft = L->dc.dev_attr.vendor_id == 0xffffff || strncmp(L->dc.dev, "rxe", 3) == 0;
    p->bw_gbps = gbps > 0 ? gbps / 8 : 1.0;
    if (soft && p->bw_gbps > 1.0) p->bw_gbps = 1.0; /* soft-RoCE: bound by a core's copy */
    p->latency_us = soft ? 50.0 : L->dc.link_layer == IBV_LINK_LAYER_INFINIBAND ? 2.0 : 4.0;
}

/* ---- data path --------------------------------------------------------------------------- */

/* Sends clear-to-sends for the receives in order, while receive slots and CTS buffers last. */
static void progress_recv(ib_conn *c) {
    ib_listen *L = c->L;
    ib_req *r;
    while (!c->err && (r = c->rq_cts)) {
        if (r->cts_sent >= r->pieces) {
            c->rq_cts = r->next;
            continue;
        }
        if (c->rs_count == L->R || c->cs_count == c->C) return;
        int slot = (c->rs_first + c->rs_count) % L->R, k = (c->cs_first + c->cs_count) % c->C;
        ib_cts *m = &c->ctrl_send[k];
        m->addr = (uint64_t)(uintptr_t)(c->rslots + (size_t)slot * L->slot);
        m->recv_bytes = r->bytes;
        m->rkey = c->reg->mr->rkey;
        m->slot_bytes = (uint32_t)L->slot;
        m->seq = r->seq;
        m->piece = (uint32_t)r->cts_sent;
        m->sig = r->sig;
        struct ibv_sge sge = {.addr = (uintptr_t)m, .length = sizeof(*m), .lkey = c->reg->mr->lkey};
        struct ibv_send_wr wr = {.wr_id = wrid(c, WR_CTS, k),
                                 .sg_list = &sge,
                                 .num_sge = 1,
                                 .opcode = IBV_WR_SEND,
                                 .send_flags = IBV_SEND_SIGNALED},
                           *bad;
        int e = ibv_post_send(c->qp, &wr, &bad);
        if (e) {
            conn_fail(c, podcclSystemError, 0, "rank %d: ibv_post_send to rank %d: %s",
                      L->ctx->rank, c->peer, strerror(e));
            return;
        }
        c->rs_count++, c->cs_count++, r->cts_sent++;
    }
}

/* Drops clear-to-sends of messages already sent in full (a message shorter than its receive
 * leaves some unused). */
static void drop_stale_cts(ib_conn *c) {
    while (c->cq_count && seq_before(c->ctsq[c->cq_first].seq, c->send_next))
        c->cq_first = (c->cq_first + 1) % c->C, c->cq_count--;
}

/* RDMA-writes (with immediate) the next pieces of the sends in order, as clear-to-sends and
 * send slots allow. */
static void progress_send(ib_conn *c) {
    ib_listen *L = c->L;
    const pc_tp_ctx *ctx = L->ctx;
    ib_req *r;
    while (!c->err && (r = c->sq_post)) {
        drop_stale_cts(c);
        if (!c->cq_count) return;
        const ib_cts *t = &c->ctsq[c->cq_first];
        if (t->seq != r->seq) {
            conn_fail(c, podcclInternalError, 0,
                      "rank %d: rank %d cleared message %u to send while we send %u: the ranks "
                      "disagree on the order of operations",
                      ctx->rank, c->peer, t->seq, r->seq);
            return;
        }
        struct ibv_sge sge = {.lkey = c->reg->mr->lkey};
        struct ibv_send_wr wr = {.opcode = IBV_WR_RDMA_WRITE_WITH_IMM,
                                 .send_flags = IBV_SEND_SIGNALED,
                                 .wr = {.rdma = {.remote_addr = t->addr, .rkey = t->rkey}}},
                           *bad;
        /* Another operation, or a longer message: nothing of it is written. */
        int refuse = r->got == 0 && (r->bytes > t->recv_bytes || t->sig.hash != r->sig.hash);
        if (c->ss_count == L->R) return;
        uint32_t len = 0, imm;
        int slot = (c->ss_first + c->ss_count) % L->R;
        if (refuse) { /* tell the receiver who we are, so that it fails too instead of waiting */
            ib_errpiece *ep = (ib_errpiece *)(c->sslots + (size_t)slot * L->slot);
            *ep = (ib_errpiece){.sig = r->sig, .bytes = r->bytes};
            len = sizeof(*ep);
            sge.addr = (uintptr_t)ep;
            sge.length = len;
            wr.wr_id = wrid(c, WR_ERR, slot);
            imm = IMM_ERR | IMM_LAST | len;
        } else {
            size_t left = r->bytes - r->off;
            len = (uint32_t)(left < t->slot_bytes ? left : t->slot_bytes);
            if (len > L->slot) len = (uint32_t)L->slot;
            if (len) memcpy(c->sslots + (size_t)slot * L->slot, r->buf + r->off, len);
            sge.addr = (uintptr_t)(c->sslots + (size_t)slot * L->slot);
            sge.length = len;
            wr.wr_id = wrid(c, WR_WRITE, slot);
            imm = len | (r->off + len == r->bytes ? IMM_LAST : 0);
        }
        wr.sg_list = len ? &sge : NULL;
        wr.num_sge = len ? 1 : 0;
        wr.imm_data = htonl(imm);
        int e = ibv_post_send(c->qp, &wr, &bad);
        if (e) {
            conn_fail(c, podcclSystemError, 0, "rank %d: ibv_post_send to rank %d: %s", ctx->rank,
                      c->peer, strerror(e));
            return;
        }
        c->cq_first = (c->cq_first + 1) % c->C, c->cq_count--;
        if (refuse) {
            c->mism = 1, c->mism_peer = (ib_errpiece){.sig = t->sig, .bytes = t->recv_bytes};
            conn_fail(c, podcclInvalidUsage, 0, "rank %d: rank %d's receive does not match",
                      ctx->rank, c->peer);
            return;
        }
        c->ss_owner[slot] = r;
        c->ss_count++, r->inflight++, r->got++;
        r->off += len;
        if (imm & IMM_LAST) {
            r->last_posted = 1;
            c->send_next = r->seq + 1;
            c->sq_post = r->next;
        }
    }
}

/* A piece arrived in the oldest promised receive slot: copy it out, free the slot, and finish
 * the receive on its last piece. */
static void on_imm(ib_conn *c, uint32_t imm) {
    ib_listen *L = c->L;
    const pc_tp_ctx *ctx = L->ctx;
    ib_req *r = c->rq_cur;
    if (!r || r->got >= r->cts_sent) {
        conn_fail(c, podcclInternalError, 0,
                  "rank %d: rank %d wrote data that no receive of ours asked for", ctx->rank,
                  c->peer);
        return;
    }
    size_t len = imm & IMM_LEN;
    if (imm & IMM_ERR) { /* the sender refused: its operation and size are in the slot */
        c->mism = 1, c->mism_peer = (ib_errpiece){.sig = {.coll = -1}, .bytes = r->bytes + 1};
        if (len >= sizeof(ib_errpiece))
            memcpy(&c->mism_peer, c->rslots + (size_t)c->rs_first * L->slot, sizeof(ib_errpiece));
        conn_fail(c, podcclInvalidUsage, 0, "rank %d: rank %d's send does not match", ctx->rank,
                  c->peer);
        return;
    }
    if (r->off + len > r->bytes) { /* cannot happen with a well-behaved sender */
        c->mism = 1, c->mism_peer = (ib_errpiece){.sig = r->sig, .bytes = r->off + len};
        conn_fail(c, podcclInvalidUsage, 0, "rank %d: rank %d sent too much", ctx->rank, c->peer);
        return;
    }
    if (len) memcpy(r->buf + r->off, c->rslots + (size_t)c->rs_first * L->slot, len);
    r->off += len, r->got++;
    c->rs_first = (c->rs_first + 1) % L->R, c->rs_count--;
    if (imm & IMM_LAST) {
        int unused = r->cts_sent - r->got; /* the sender ended early: free the rest */
        c->rs_first = (c->rs_first + unused) % L->R, c->rs_count -= unused;
        r->done = 1;
        c->rq_cur = r->next;
        if (c->rq_cts == r) c->rq_cts = r->next;
    }
}

/* A receive WR completed: a clear-to-send from the peer, or the immediate of a write. */
static void on_recv(ib_conn *c, const struct ibv_wc *wc, int idx) {
    const pc_tp_ctx *ctx = c->L->ctx;
    if (wc->opcode == IBV_WC_RECV_RDMA_WITH_IMM) {
        on_imm(c, ntohl(wc->imm_data));
    } else if (wc->byte_len == sizeof(ib_cts)) {
        const ib_cts *t = &c->ctrl_recv[idx];
        if (!seq_before(t->seq, c->send_next)) {
            if (c->cq_count == c->C) {
                conn_fail(c, podcclInternalError, 0,
                          "rank %d: too many clear-to-sends from rank %d", ctx->rank, c->peer);
                return;
            }
            c->ctsq[(c->cq_first + c->cq_count) % c->C] = *t;
            c->cq_count++;
        }
    } else {
        conn_fail(c, podcclInternalError, 0, "rank %d: unexpected %u-byte message from rank %d",
                  ctx->rank, wc->byte_len, c->peer);
        return;
    }
    int e = post_recv(c, idx);
    if (e)
        conn_fail(c, podcclSystemError, 1, "rank %d: ibv_post_recv for rank %d: %s", ctx->rank,
                  c->peer, strerror(e));
}

/* A write completed: its send slot is free; a send whose writes all completed is done. */
static void on_write_done(ib_conn *c, int slot) {
    if (slot != c->ss_first || !c->ss_count) {
        conn_fail(c, podcclInternalError, 0, "rank %d: write completions out of order (rank %d)",
                  c->L->ctx->rank, c->peer);
        return;
    }
    ib_req *r = c->ss_owner[slot];
    c->ss_first = (c->ss_first + 1) % c->L->R, c->ss_count--;
    if (--r->inflight == 0 && r->last_posted) r->done = 1;
}

/* Dispatches one completion to its connection (by peer and generation in wr_id). */
static void on_wc(ib_listen *L, const struct ibv_wc *wc) {
    int peer = (int)(wc->wr_id >> 40), gen = (int)((wc->wr_id >> 32) & 0xff);
    int kind = (int)((wc->wr_id >> 24) & 0xff), idx = (int)(wc->wr_id & 0xffffff);
    if (peer < 0 || peer >= L->ctx->nranks) return;
    ib_conn *c = L->conns[peer];
    if (!c || c->gen != gen) return; /* from a closed or replaced queue pair */
    if (wc->status != IBV_WC_SUCCESS) {
        char t[320];
        int remote;
        ib_wc_text(wc->status, peer, &remote, t, sizeof(t));
        static const char *what[] = {"?", "receive", "clear-to-send", "RDMA write", "error notice"};
        conn_fail(c, remote ? podcclRemoteError : podcclSystemError,
                  wc->status == IBV_WC_WR_FLUSH_ERR, "rank %d: %s [%s on %s, vendor error 0x%x]",
                  L->ctx->rank, t, what[kind <= WR_ERR ? kind : 0], L->dc.dev, wc->vendor_err);
        return;
    }
    switch (kind) {
    case WR_RECV:
        on_recv(c, wc, idx);
        break;
    case WR_CTS:
        c->cs_first = (c->cs_first + 1) % c->C, c->cs_count--;
        break;
    case WR_WRITE:
        on_write_done(c, idx);
        break;
    default:
        break;
    }
}

/* Drains the communicator's completion queue. */
static podcclResult_t cq_poll(ib_listen *L) {
    struct ibv_wc wc[16];
    for (int round = 0; round < 8; round++) {
        int n = ibv_poll_cq(L->cq, 16, wc);
        if (n < 0)
            return TP_ERR(L->ctx, podcclSystemError, "rank %d: ibv_poll_cq on %s failed (%d)",
                          L->ctx->rank, L->dc.dev, n);
        for (int i = 0; i < n; i++) on_wc(L, &wc[i]);
        if (n < 16) break;
    }
    return podcclSuccess;
}

/* A mismatch found on the connection (mism), named with both calls. */
static podcclResult_t mismatch(ib_conn *c, const pc_sig *mine, size_t my_bytes) {
    const pc_tp_ctx *ctx = c->L->ctx;
    const ib_errpiece *p = &c->mism_peer;
    if (p->sig.hash != mine->hash || p->sig.coll < 0)
        return ctx->mismatch(ctx->comm, c->peer, &p->sig);
    return ctx->size_mismatch(ctx->comm, c->peer, mine, p->bytes, my_bytes);
}

/* Queues a request on its connection (in posting order) and tries to start it. */
static podcclResult_t post(ib_conn *c, int is_send, void *buf, size_t bytes, const pc_sig *sig,
                           void **req) {
    const pc_tp_ctx *ctx = c->L->ctx;
    *req = NULL;
    if (c->mism) return mismatch(c, sig, bytes);
    if (c->err) return TP_ERR(ctx, c->err, "%s", c->errmsg);
    ib_req *r = calloc(1, sizeof(*r));
    if (!r) return podcclSuccess; /* retry later */
    r->c = c, r->is_send = is_send, r->buf = buf, r->bytes = bytes, r->sig = *sig;
    ib_req **head = is_send ? &c->sq_head : &c->rq_head,
           **tail = is_send ? &c->sq_tail : &c->rq_tail;
    r->prev = *tail;
    if (*tail)
        (*tail)->next = r;
    else
        *head = r;
    *tail = r;
    if (is_send) {
        r->seq = c->send_seq++;
        if (!c->sq_post) c->sq_post = r;
        progress_send(c);
    } else {
        r->seq = c->recv_seq++;
        r->pieces = bytes ? (int)((bytes + c->L->slot - 1) / c->L->slot) : 1;
        if (!c->rq_cts) c->rq_cts = r;
        if (!c->rq_cur) c->rq_cur = r;
        progress_recv(c);
    }
    *req = r;
    return podcclSuccess;
}

/* Posts a send; it progresses in test() once the receiver's clear-to-send arrives. */
static podcclResult_t ib_isend(void *conn, const void *buf, size_t bytes, const pc_sig *sig,
                               void **req) {
    return post(conn, 1, (void *)buf, bytes, sig, req);
}

/* Posts a receive; its clear-to-sends go out at once as far as staging slots allow. */
static podcclResult_t ib_irecv(void *conn, void *buf, size_t bytes, const pc_sig *sig, void **req) {
    return post(conn, 0, buf, bytes, sig, req);
}

/* Drives the communicator's completions (and, now and then, its rdma_cm events) and the
 * request's connection; frees the request once done. Never blocks. */
static podcclResult_t ib_test(void *req, int *done, size_t *bytes) {
    ib_req *r = req;
    ib_conn *c = r->c;
    ib_listen *L = c->L;
    TP_CHECK(cq_poll(L));
    if (++L->polls % CM_POLL_EVERY == 0) TP_CHECK(cm_poll(L));
    progress_recv(c);
    progress_send(c);
    *done = r->done;
    if (!r->done) {
        if (c->mism) return mismatch(c, &r->sig, r->bytes);
        if (c->err) return TP_ERR(L->ctx, c->err, "%s", c->errmsg);
        return podcclSuccess;
    }
    if (bytes) *bytes = r->is_send ? r->bytes : r->off;
    ib_req **head = r->is_send ? &c->sq_head : &c->rq_head,
           **tail = r->is_send ? &c->sq_tail : &c->rq_tail;
    if (r->prev)
        r->prev->next = r->next;
    else
        *head = r->next;
    if (r->next)
        r->next->prev = r->prev;
    else
        *tail = r->prev;
    free(r);
    return podcclSuccess;
}

/* ---- memory and teardown ------------------------------------------------------------------ */

/* Disconnects (so the peer learns at once) and frees a connection. */
static podcclResult_t ib_close(void *conn) {
    ib_conn *c = conn;
    /* Tell the peer at once (it fails fast instead of timing out if it still needed us). */
    if (c->id && c->state == C_UP && !c->disconnected) rdma_disconnect(c->id);
    conn_destroy(c);
    return podcclSuccess;
}

/* Frees what listen created, after the connections: leftover half-made connections, the
 * listening id, CQ, registrations, PD, channel and device list. */
static podcclResult_t ib_close_listen(void *listen_comm) {
    ib_listen *L = listen_comm;
    if (!L) return podcclSuccess;
    for (int p = 0; L->conns && p < L->ctx->nranks; p++)
        if (L->conns[p]) conn_destroy(L->conns[p]);
    if (L->lid) rdma_destroy_id(L->lid);
    if (L->cq) ibv_destroy_cq(L->cq);
    ib_reg_destroy(&L->reg);
    if (L->pd) ibv_dealloc_pd(L->pd);
    if (L->ch) rdma_destroy_event_channel(L->ch);
    if (L->devs) rdma_free_devices(L->devs);
    free(L->conns);
    free(L);
    return podcclSuccess;
}

/* The transport's available (see ib_dev_available). */
static int ib_available(const pc_tp_ctx *ctx, char *why, size_t len) {
    return ib_dev_available(ctx, why, len);
}

static const pc_transport ib_transport = {
    .name = "ib",
    .available = ib_available,
    .can_reach = ib_can_reach,
    .properties = ib_properties,
    .listen = ib_listen_fn,
    .connect = ib_connect,
    .accept = ib_accept,
    .isend = ib_isend,
    .irecv = ib_irecv,
    .test = ib_test,
    .close = ib_close,
    .close_listen = ib_close_listen,
};

/* The module's entry (podccl_net.h): podccl-net-ib.so. */
PC_NET_EXPORT const pc_net_plugin podcclNetPlugin_v1 = {
    .abi_version = PC_NET_ABI_VERSION,
    .struct_size = sizeof(pc_transport),
    .transport = &ib_transport,
};
