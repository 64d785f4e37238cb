/* Communicator life: unique id, init (bootstrap, topology, transports), destroy, abort. */
#include "src/comm.h"
#include "src/boot_root.h"

#include <errno.h>
#include <sched.h>
#include <unistd.h>

#include "src/enqueue.h"
#include "src/memdom.h"
#include "src/topo.h"
#include "src/trace.h"
#include "src/wait.h"
#include "src/tune.h"
#include "transports/shm/shm.h"

podcclResult_t podcclGetVersion(int *version) {
    if (!version) return pc_err(NULL, podcclInvalidArgument, "podcclGetVersion: version is NULL");
    *version = PODCCL_VERSION_CODE;
    return podcclSuccess;
}

static double param_timeout(void) {
    long long t = pc_param_int("PODCCL_TIMEOUT");
    return t > 0 ? (double)t : 300.0;
}

podcclResult_t podcclGetUniqueId(podcclUniqueId *uniqueId) {
    pc_log_init();
    PCCHECK(pc_param_check_all());
    if (!uniqueId)
        return pc_err(NULL, podcclInvalidArgument, "podcclGetUniqueId: uniqueId is NULL");
    memset(uniqueId, 0, sizeof(*uniqueId));
    /* The public id is a byte array with no alignment: build the id aside and copy it in. */
    pc_id id;
    PCCHECK(boot_root_start(&id, NULL, param_timeout()));
    memcpy(uniqueId->internal, &id, sizeof(id));
    return podcclSuccess;
}

podcclResult_t pc_comm_tmp(podcclComm_t comm, size_t bytes) {
    if (bytes <= comm->ex->tmp_bytes) return podcclSuccess;
    char *p = realloc(comm->ex->tmp, bytes);
    if (!p)
        return pc_err(comm, podcclSystemError, "cannot allocate %zu bytes of temporary memory",
                      bytes);
    comm->ex->tmp = p, comm->ex->tmp_bytes = bytes;
    return podcclSuccess;
}

static void comm_free(podcclComm_t comm) {
    trace_comm_free(comm);
    pc_conns *tr = comm->tr;
    if (tr && tr->conn)
        for (int p = 0; p < comm->nranks; p++)
            if (tr->conn[p]) tr->tp[p]->close(tr->conn[p]);
    if (tr && tr->net_listen) tr->net->close_listen(tr->net_listen);
    if (tr && tr->shm) pc_transport_shm.close_listen(tr->shm);
    boot_close(&comm->boot);
    if (tr) free(tr->conn), free(tr->tp);
    free(tr);
    topo_free(comm->topo);
    if (comm->tune) tune_free(comm);
    if (comm->ex) free(comm->ex->scratch), free(comm->ex->tmp);
    free(comm->ex);
    pthread_mutex_destroy(&comm->err.lock);
    pthread_mutex_destroy(&comm->use_lock);
    comm->magic = PC_COMM_DEAD;
    free(comm);
}

/* The network transports this build has, in the automatic order of preference. */
static const pc_transport *const net_transports[] = {
#ifdef HAVE_VERBS
    &pc_transport_ib,
#endif
#ifdef HAVE_OFI
    &pc_transport_ofi,
#endif
    NULL};
#define PC_MAX_NET 2

/* All ranks must use the same network transport. Each rank says which ones it can run (a bit
 * per entry of net_transports); PODCCL_NET picks one that every rank has, else the first that
 * every rank has is used. */
static podcclResult_t pick_net(podcclComm_t comm) {
    int n = comm->nranks, nnet = 0;
    while (net_transports[nnet]) nnet++;
    const char *want = pc_param_str("PODCCL_NET");
    int forced = -1;
    if (want && *want) {
        for (int i = 0; i < nnet; i++)
            if (strcasecmp(want, net_transports[i]->name) == 0) forced = i;
        if (forced < 0) {
            int known = strcasecmp(want, "ib") == 0 || strcasecmp(want, "ofi") == 0;
            char have[32] = "";
            for (int i = 0; i < nnet; i++)
                snprintf(have + strlen(have), sizeof(have) - strlen(have), " %s",
                         net_transports[i]->name);
            return pc_err(comm, podcclInvalidArgument, "PODCCL_NET=%s: %s (this build has:%s)",
                          want,
                          known ? "this build does not include that transport "
                                  "(configure found no libibverbs/librdmacm or libfabric)"
                                : "unknown network transport; use ib or ofi",
                          nnet ? have : " none");
        }
    }
    char why[PC_MAX_NET][256];
    unsigned char *mask = calloc((size_t)n, 1);
    if (!mask) return pc_err(comm, podcclSystemError, "out of memory");
    for (int i = 0; i < nnet; i++) {
        why[i][0] = 0;
        int ok = !net_transports[i]->available ||
                 net_transports[i]->available(comm, why[i], sizeof(why[i]));
        if (ok)
            mask[comm->rank] |= (unsigned char)(1u << i);
        else
            pc_log(PC_LOG_INFO, PC_SUB_NET, "transport %s unavailable: %s", net_transports[i]->name,
                   why[i]);
    }
    podcclResult_t res = boot_allgather(&comm->boot, mask, 1);
    if (res != podcclSuccess) return free(mask), res;
    int pick = -1;
    for (int i = 0; i < nnet && pick < 0; i++) {
        if (forced >= 0 && i != forced) continue;
        int lacking = -1;
        for (int r = 0; r < n && lacking < 0; r++)
            if (!(mask[r] & (1u << i))) lacking = r;
        if (lacking < 0) {
            pick = i;
        } else if (forced >= 0) {
            res = pc_err(comm, podcclSystemError, "PODCCL_NET=%s, but rank %d cannot use it%s%s",
                         want, lacking, lacking == comm->rank ? ": " : "",
                         lacking == comm->rank ? why[i] : " (see its log)");
        }
    }
    free(mask);
    if (res != podcclSuccess) return res;
    if (pick < 0)
        return pc_err(comm, podcclSystemError,
                      "the ranks span %d hosts, but no network transport works on every rank%s%s",
                      comm->topo->nhosts,
                      nnet ? ": " : " (this build has neither libfabric nor verbs)",
                      nnet ? why[nnet - 1] : "");
    comm->tr->net = net_transports[pick];
    return podcclSuccess;
}

/* Connects to every peer over tp (the lower rank of a pair connects, the higher accepts);
 * neither call blocks, so all pending peers progress together until the timeout. Every pass
 * also looks for init failing elsewhere (pc_init_check: abort notices, dead local peers). */
static podcclResult_t connect_all(podcclComm_t comm, const pc_transport *tp, void *listen_comm,
                                  const char *handles, size_t stride, size_t off) {
    int n = comm->nranks, pending = 0;
    for (int p = 0; p < n; p++)
        if (comm->tr->tp[p] == tp && !comm->tr->conn[p]) pending++;
    double deadline = pc_now() + comm->timeout;
    while (pending > 0) {
        for (int p = 0; p < n; p++) {
            if (comm->tr->tp[p] != tp || comm->tr->conn[p]) continue;
            const void *h = handles + (size_t)p * stride + off;
            PCCHECK(p > comm->rank ? tp->connect(comm, listen_comm, p, h, &comm->tr->conn[p])
                                   : tp->accept(comm, listen_comm, p, h, &comm->tr->conn[p]));
            if (comm->tr->conn[p]) pending--;
        }
        if (pending == 0) break;
        PCCHECK(pc_init_check(comm));
        if (pc_now() > deadline) {
            int p = 0;
            while (p < n && !(comm->tr->tp[p] == tp && !comm->tr->conn[p])) p++;
            pc_publish_failure(comm, p, podcclTimeout);
            return pc_err(comm, podcclTimeout,
                          "rank %d: no %s connection with rank %d after %.0f s (PODCCL_TIMEOUT)",
                          comm->rank, tp->name, p, comm->timeout);
        }
        sched_yield();
    }
    return podcclSuccess;
}

/* Every rank listens on shared memory (and, across hosts, on the network transport), the
 * handles travel by bootstrap all-gather, every rank connects to each peer through the first
 * transport that reaches it (shm on the same host, else the network), and after a barrier the
 * transports drop what peers no longer need (shared-memory names). */
static podcclResult_t connect_transports(podcclComm_t comm) {
    int n = comm->nranks;
    const size_t stride = 2 * PC_HANDLE_BYTES;
    if (comm->topo->nhosts > 1) PCCHECK(pick_net(comm));
    char *handles = calloc((size_t)n, stride);
    if (!handles) return pc_err(comm, podcclSystemError, "out of memory");
    char *mine = handles + (size_t)comm->rank * stride;
    podcclResult_t res;
    void *listen_comm;
    PCCHECKGOTO(pc_transport_shm.listen(comm, mine, &listen_comm), res, out);
    pc_transport_shm.properties(comm, listen_comm, &comm->tr->shm_props);
    if (comm->tr->net) {
        PCCHECKGOTO(comm->tr->net->listen(comm, mine + PC_HANDLE_BYTES, &comm->tr->net_listen), res,
                    out);
        comm->tr->net->properties(comm, comm->tr->net_listen, &comm->tr->net_props);
    }
    PCCHECKGOTO(boot_allgather(&comm->boot, handles, stride), res, out);
    for (int p = 0; p < n; p++) {
        if (pc_transport_shm.can_reach(comm, p))
            comm->tr->tp[p] = &pc_transport_shm;
        else if (comm->tr->net && comm->tr->net->can_reach(comm, p))
            comm->tr->tp[p] = comm->tr->net;
        else {
            res = pc_err(comm, podcclInternalError, "rank %d: no transport reaches rank %d",
                         comm->rank, p);
            goto out;
        }
        const pc_props *pp =
            comm->tr->tp[p] == comm->tr->net ? &comm->tr->net_props : &comm->tr->shm_props;
        pc_log(PC_LOG_INFO, PC_SUB_INIT, "rank %d -> rank %d via %s (%s)", comm->rank, p, pp->name,
               pp->provider);
    }
    PCCHECKGOTO(connect_all(comm, &pc_transport_shm, listen_comm, handles, stride, 0), res, out);
    if (comm->tr->net)
        PCCHECKGOTO(connect_all(comm, comm->tr->net, comm->tr->net_listen, handles, stride,
                                PC_HANDLE_BYTES),
                    res, out);
    PCCHECKGOTO(boot_barrier(&comm->boot), res, out);
    PCCHECKGOTO(pc_transport_shm.connected(comm, listen_comm), res, out);
    if (comm->tr->net && comm->tr->net->connected)
        PCCHECKGOTO(comm->tr->net->connected(comm, comm->tr->net_listen), res, out);
    /* Single copy only if every pair of local ranks may use it: all ranks must agree. */
    memset(handles, 0, (size_t)n);
    handles[comm->rank] = (char)md_cma_probe(comm);
    PCCHECKGOTO(boot_allgather(&comm->boot, handles, 1), res, out);
    int cma = 1;
    for (int p = 0; p < n; p++) cma &= handles[p] == 1 || comm->topo->local_idx[p] < 0;
    md_cma_set_ok(comm, cma);
    tune_set_domain(comm, md_direct_bytes(comm), cma && comm->topo->nlocal == n);
    pc_log(PC_LOG_INFO, PC_SUB_SHM, "large messages: %s",
           cma ? "single copy (process_vm_readv)"
               : "staged through shared memory (no process_vm_readv)");
out:
    free(handles);
    return res;
}

static podcclResult_t check_config(podcclConfig_t *cfg) {
    if (!cfg) return podcclSuccess;
    if (cfg->size < offsetof(podcclConfig_t, name) + sizeof(cfg->name) ||
        cfg->magic != PODCCL_CONFIG_MAGIC || cfg->version < 100)
        return pc_err(
            NULL, podcclInvalidArgument,
            "config: size/magic/version invalid (initialize it with PODCCL_CONFIG_INITIALIZER)");
    if (cfg->timeoutSec != PODCCL_CONFIG_UNDEF_INT && cfg->timeoutSec <= 0)
        return pc_err(NULL, podcclInvalidArgument, "config: timeoutSec must be > 0 (got %d)",
                      cfg->timeoutSec);
    return podcclSuccess;
}

podcclResult_t podcclCommInitRankConfig(podcclComm_t *out, int nranks, podcclUniqueId commId,
                                        int rank, podcclConfig_t *config) {
    pc_log_init();
    PCCHECK(pc_param_check_all());
    if (!out) return pc_err(NULL, podcclInvalidArgument, "podcclCommInitRank: comm is NULL");
    *out = NULL;
    if (nranks < 1 || nranks > (1 << 20))
        return pc_err(NULL, podcclInvalidArgument, "podcclCommInitRank: nranks %d not in [1, 2^20]",
                      nranks);
    if (rank < 0 || rank >= nranks)
        return pc_err(NULL, podcclInvalidArgument, "podcclCommInitRank: rank %d not in [0, %d)",
                      rank, nranks);
    PCCHECK(check_config(config));
    pc_id idbuf;
    const pc_id *id = &idbuf;
    if (boot_decode_id(commId.internal, sizeof(commId.internal), &idbuf) != podcclSuccess) {
        char why[256];
        snprintf(why, sizeof(why), "%s", pc_thread_err());
        return pc_err(NULL, podcclInvalidArgument, "podcclCommInitRank: %s", why);
    }

    podcclComm_t comm = calloc(1, sizeof(*comm));
    if (!comm) return pc_err(NULL, podcclSystemError, "out of memory");
    comm->tr = calloc(1, sizeof(*comm->tr));
    comm->ex = calloc(1, sizeof(*comm->ex));
    if (!comm->tr || !comm->ex) {
        free(comm->tr), free(comm->ex), free(comm);
        return pc_err(NULL, podcclSystemError, "out of memory");
    }
    comm->magic = PC_COMM_MAGIC;
    comm->rank = rank, comm->nranks = nranks, comm->err.rank = rank;
    comm->boot.next_fd = comm->boot.prev_fd = -1;
    pthread_mutex_init(&comm->err.lock, NULL);
    pthread_mutex_init(&comm->use_lock, NULL);
    const int cfg_timeout = config && config->timeoutSec != PODCCL_CONFIG_UNDEF_INT;
    comm->timeout = cfg_timeout ? config->timeoutSec : param_timeout();
    comm->timeout_src = cfg_timeout ? "the communicator's config timeoutSec" : "PODCCL_TIMEOUT";
    snprintf(comm->name, sizeof(comm->name), "%s", config && config->name ? config->name : "");
    pc_log_set_rank(rank);
    podcclResult_t res;
    int booted = 0;
    comm->ex->chunk_bytes = (size_t)pc_param_int("PODCCL_CHUNK_BYTES");
    if (comm->ex->chunk_bytes < 4096) comm->ex->chunk_bytes = 4096;
    comm->ex->chunk_bytes = comm->ex->chunk_bytes / 64 * 64;
    comm->ex->max_inflight = (int)pc_param_int("PODCCL_MAX_INFLIGHT");
    if (comm->ex->max_inflight < 2) comm->ex->max_inflight = 2;
    const char *algo = config && config->algo ? config->algo : pc_param_str("PODCCL_ALGO");
    comm->tr->tp = calloc((size_t)nranks, sizeof(*comm->tr->tp));
    comm->tr->conn = calloc((size_t)nranks, sizeof(void *));
    pc_host_info *all = calloc((size_t)nranks, sizeof(*all));
    if (!comm->tr->tp || !comm->tr->conn || !all) {
        free(all);
        res = pc_err(NULL, podcclSystemError, "out of memory");
        goto fail;
    }
    res = boot_init(&comm->boot, id, rank, nranks, comm->timeout);
    booted = res == podcclSuccess;
    if (res == podcclSuccess) res = topo_local_info(&comm->boot.local, &all[rank]);
    if (res == podcclSuccess) res = boot_allgather(&comm->boot, all, sizeof(*all));
    if (res == podcclSuccess) res = topo_build(&comm->topo, &comm->boot, all);
    free(all);
    if (res != podcclSuccess) goto fail;
    PCCHECKGOTO(tune_init(comm, algo), res, fail);
    PCCHECKGOTO(tune_agree(comm), res, fail);
    PCCHECKGOTO(connect_transports(comm), res, fail);
    if (comm->tr->net)
        topo_set_net_link(comm->topo, comm->tr->net_props.bw_gbps, comm->tr->net_props.latency_us);
    comm->ex->recv_depth = comm->ex->max_inflight;
    if (comm->tr->net) {
        /* Receives from the network run 4 x as deep as sends: a receive grants the sender its
         * clear-to-send, and that grant travels behind the data already queued towards the peer,
         * so the granted window must exceed that queue (docs/multihost.md: 85% of a 1 Gbit/s
         * link with receives as deep as sends, 95% at 4 x). Sends keep the transport's advice in
         * flight (PODCCL_NET_SEND_DEPTH): over sockets, writes queued in the provider hold back
         * the clear-to-sends this rank owes its peer. */
        comm->ex->recv_depth = 4 * comm->ex->max_inflight;
        const char *sd = pc_param_str("PODCCL_NET_SEND_DEPTH");
        int depth = sd && strcasecmp(sd, "auto") != 0 ? (int)pc_param_int("PODCCL_NET_SEND_DEPTH")
                                                      : comm->tr->net_props.send_depth;
        if (depth <= 0 || depth > comm->ex->max_inflight) depth = comm->ex->max_inflight;
        comm->ex->net_send_depth = depth;
        pc_log(PC_LOG_INFO, PC_SUB_NET, "network: %d sends and %d receives in flight per peer",
               depth, comm->ex->recv_depth);
    }
    long long nap = pc_param_int("PODCCL_NET_NAP_US");
    comm->ex->nap_after = nap < 0 ? -1.0 : (double)nap * 1e-6;
    nap = pc_param_int("PODCCL_SHM_NAP_US");
    comm->ex->shm_nap_after = nap < 0 ? -1.0 : (double)nap * 1e-6;
    comm->live = &shm_live_ops;
    comm->live_dom = comm->tr->shm;
    pc_heartbeat(comm);
    const char *spin = pc_param_str("PODCCL_SHM_SPIN");
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    comm->ex->spin = spin && strcasecmp(spin, "auto") != 0
                         ? (int)pc_param_int("PODCCL_SHM_SPIN")
                         : (comm->topo->nmachine <= ncpu ? 2000 : 20);
    PCCHECKGOTO(pc_comm_register(comm), res, fail);
    trace_comm_init(comm, &id->addr, sizeof(id->addr)); /* the id without its secret */
    pc_log(PC_LOG_INFO, PC_SUB_INIT, "communicator ready: rank %d of %d, %zu KiB shared memory",
           rank, nranks, shm_segment_bytes(comm) >> 10);
    *out = comm;
    return podcclSuccess;
fail:
    if (booted) { /* tell the others at once, naming the culprit, instead of their timeouts */
        char why[256];
        snprintf(why, sizeof(why), "%s", pc_thread_err());
        int culprit = pc_init_culprit(comm, res);
        /* Local peers read the cause from shared memory, before they see this rank exit. */
        if (culprit >= 0 && culprit != comm->rank) pc_publish_failure(comm, culprit, res);
        boot_send_abort(&comm->boot, culprit, why);
    }
    comm_free(comm);
    return res;
}

podcclResult_t podcclCommInitRank(podcclComm_t *comm, int nranks, podcclUniqueId commId, int rank) {
    return podcclCommInitRankConfig(comm, nranks, commId, rank, NULL);
}

/* ---- the registry of live communicators ------------------------------------------------------
 * An open-addressing hash set of pointers (linear probing, deletion by backward shift), guarded
 * by one mutex. A call checks membership before it reads the communicator, so a destroyed
 * pointer is an InvalidArgument and never a read of freed memory; a reference (comm->active) is
 * taken under the same mutex, so destroy and abort, which leave the set first, then wait for the
 * references, never free a communicator that a call is using. */

typedef struct {
    podcclComm_t comm; /* NULL: empty */
    uint64_t serial;
} reg_entry;

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static reg_entry *reg_tab;
static size_t reg_cap, reg_n; /* reg_cap: 0 or a power of 2 */
static uint64_t reg_next_serial;

static size_t reg_slot(podcclComm_t c) {
    uint64_t x = (uint64_t)(uintptr_t)c;
    x ^= x >> 33, x *= 0xff51afd7ed558ccdull, x ^= x >> 33;
    return (size_t)x & (reg_cap - 1);
}

static reg_entry *reg_find(podcclComm_t c) {
    if (reg_n == 0) return NULL;
    for (size_t i = reg_slot(c);; i = (i + 1) & (reg_cap - 1)) {
        if (reg_tab[i].comm == c) return &reg_tab[i];
        if (!reg_tab[i].comm) return NULL;
    }
}

static void reg_put(reg_entry e) {
    size_t i = reg_slot(e.comm);
    while (reg_tab[i].comm) i = (i + 1) & (reg_cap - 1);
    reg_tab[i] = e;
    reg_n++;
}

/* Empties slot i, moving later entries of its probe run back so that lookups stay correct. */
static void reg_remove_at(size_t i) {
    size_t mask = reg_cap - 1, j = i;
    reg_tab[i].comm = NULL;
    reg_n--;
    for (;;) {
        j = (j + 1) & mask;
        if (!reg_tab[j].comm) return;
        size_t k = reg_slot(reg_tab[j].comm);
        /* The entry at j may move to i unless its home slot k lies cyclically in (i, j]. */
        if (i <= j ? (i < k && k <= j) : (i < k || k <= j)) continue;
        reg_tab[i] = reg_tab[j];
        reg_tab[j].comm = NULL;
        i = j;
    }
}

podcclResult_t pc_comm_register(podcclComm_t comm) {
    pthread_mutex_lock(&reg_lock);
    if (2 * (reg_n + 1) > reg_cap) {
        size_t cap = reg_cap ? 2 * reg_cap : 16, old_cap = reg_cap;
        reg_entry *old = reg_tab, *tab = calloc(cap, sizeof(*tab));
        if (!tab) {
            pthread_mutex_unlock(&reg_lock);
            return pc_err(NULL, podcclSystemError, "out of memory registering a communicator");
        }
        reg_tab = tab, reg_cap = cap, reg_n = 0;
        for (size_t i = 0; i < old_cap; i++)
            if (old[i].comm) reg_put(old[i]);
        free(old);
    }
    reg_put((reg_entry){comm, ++reg_next_serial});
    pthread_mutex_unlock(&reg_lock);
    return podcclSuccess;
}

const char *podcclGetLastError(podcclComm_t comm) {
    if (comm && pc_comm_live(comm, NULL) && pc_comm_last_err(comm)[0])
        return pc_comm_last_err(comm);
    return pc_thread_err();
}

int pc_comm_live(podcclComm_t comm, uint64_t *serial) {
    pthread_mutex_lock(&reg_lock);
    reg_entry *e = reg_find(comm);
    if (e && serial) *serial = e->serial;
    pthread_mutex_unlock(&reg_lock);
    return e != NULL;
}

int pc_comm_acquire(podcclComm_t comm, uint64_t serial, uint64_t *got) {
    pthread_mutex_lock(&reg_lock);
    reg_entry *e = reg_find(comm);
    int ok = e && (serial == 0 || e->serial == serial);
    if (ok) atomic_fetch_add(&comm->active, 1);
    if (ok && got) *got = e->serial;
    pthread_mutex_unlock(&reg_lock);
    return ok;
}

void pc_comm_release(podcclComm_t comm) {
    atomic_fetch_sub(&comm->active, 1);
}

/* Takes comm out of the set, if it is still registration `serial`; 1 if it was. */
static int reg_remove(podcclComm_t comm, uint64_t serial) {
    pthread_mutex_lock(&reg_lock);
    reg_entry *e = reg_find(comm);
    int ok = e && e->serial == serial;
    if (ok) reg_remove_at((size_t)(e - reg_tab));
    pthread_mutex_unlock(&reg_lock);
    return ok;
}

/* ---- queries, destroy, abort --------------------------------------------------------------- */

static podcclResult_t live_serial(podcclComm_t comm, const char *fn, uint64_t *serial) {
    if (!comm) return pc_err(NULL, podcclInvalidArgument, "%s: comm is NULL", fn);
    if (!pc_comm_live(comm, serial))
        return pc_err(NULL, podcclInvalidArgument,
                      "%s: comm is not a live communicator (destroyed?)", fn);
    return podcclSuccess;
}

static podcclResult_t live(podcclComm_t comm, const char *fn) {
    return live_serial(comm, fn, NULL);
}

podcclResult_t podcclCommCount(const podcclComm_t comm, int *count) {
    PCCHECK(live(comm, "podcclCommCount"));
    if (!count) return pc_err(comm, podcclInvalidArgument, "podcclCommCount: count is NULL");
    *count = comm->nranks;
    return podcclSuccess;
}

podcclResult_t podcclCommUserRank(const podcclComm_t comm, int *rank) {
    PCCHECK(live(comm, "podcclCommUserRank"));
    if (!rank) return pc_err(comm, podcclInvalidArgument, "podcclCommUserRank: rank is NULL");
    *rank = comm->rank;
    return podcclSuccess;
}

podcclResult_t podcclCommMemoryUsage(const podcclComm_t comm, size_t *shmBytes, size_t *hostBytes) {
    PCCHECK(live(comm, "podcclCommMemoryUsage"));
    if (shmBytes) *shmBytes = shm_segment_bytes(comm);
    if (hostBytes) *hostBytes = comm->ex->scratch_bytes + comm->ex->tmp_bytes;
    return podcclSuccess;
}

podcclResult_t podcclCommTransportInfo(const podcclComm_t comm, char *buf, size_t len) {
    PCCHECK(live(comm, "podcclCommTransportInfo"));
    if (!buf || len == 0)
        return pc_err(comm, podcclInvalidArgument,
                      "podcclCommTransportInfo: buf is NULL or len is 0");
    int nremote = comm->nranks - comm->topo->nlocal;
    int k = snprintf(buf, len, "shm to %d local peer%s (%s)", comm->topo->nlocal - 1,
                     comm->topo->nlocal - 1 == 1 ? "" : "s", comm->tr->shm_props.provider);
    if (comm->tr->net && k >= 0 && (size_t)k < len)
        snprintf(buf + k, len - (size_t)k, "; %s to %d remote rank%s on %d other host%s (%s)",
                 comm->tr->net_props.name, nremote, nremote == 1 ? "" : "s", comm->topo->nhosts - 1,
                 comm->topo->nhosts - 1 == 1 ? "" : "s", comm->tr->net_props.provider);
    return podcclSuccess;
}

podcclResult_t podcclCommTopoInfo(const podcclComm_t comm, char *buf, size_t len) {
    PCCHECK(live(comm, "podcclCommTopoInfo"));
    if (!buf || len == 0)
        return pc_err(comm, podcclInvalidArgument, "podcclCommTopoInfo: buf is NULL or len is 0");
    levels_describe(&comm->topo->lv, buf, len);
    return podcclSuccess;
}

podcclResult_t podcclCommExplain(const podcclComm_t comm, const char *collective, size_t count,
                                 podcclDataType_t datatype, podcclRedOp_t op, char *buf,
                                 size_t len) {
    PCCHECK(live(comm, "podcclCommExplain"));
    if (!buf || len == 0)
        return pc_err(comm, podcclInvalidArgument, "podcclCommExplain: buf is NULL or len is 0");
    int coll = collective ? algo_coll_find(collective, strlen(collective)) : -1;
    if (coll < 0 || coll == PC_SEND || coll == PC_RECV)
        return pc_err(comm, podcclInvalidArgument, "podcclCommExplain: unknown collective '%s'",
                      collective ? collective : "(null)");
    if ((unsigned)datatype >= podcclNumTypes || (unsigned)op >= podcclNumOps)
        return pc_err(comm, podcclInvalidArgument,
                      "podcclCommExplain: unknown datatype %d or op %d", (int)datatype, (int)op);
    size_t *counts = NULL;
    if (coll == PC_ALLTOALLV) {
        counts = calloc(4 * (size_t)comm->nranks, sizeof(size_t));
        if (!counts) return pc_err(comm, podcclSystemError, "out of memory");
    }
    pc_args a = {.coll = coll, .count = count, .dtype = datatype, .op = op, .counts = counts};
    tune_explain(comm, &a, buf, len);
    free(counts);
    return podcclSuccess;
}

podcclResult_t podcclCommGetAsyncError(podcclComm_t comm, podcclResult_t *asyncError) {
    PCCHECK(live(comm, "podcclCommGetAsyncError"));
    if (!asyncError)
        return pc_err(comm, podcclInvalidArgument, "podcclCommGetAsyncError: asyncError is NULL");
    /* Thread-safe: a reference keeps a concurrent podcclCommAbort from freeing comm meanwhile. */
    if (!pc_comm_acquire(comm, 0, NULL))
        return pc_err(NULL, podcclInvalidArgument,
                      "podcclCommGetAsyncError: comm is not a live communicator (destroyed?)");
    *asyncError = pc_comm_async(comm);
    pc_comm_release(comm);
    return podcclSuccess;
}

/* References still held on comm (calls in progress, operations queued on streams) go before it
 * does: they finish, or fail at once when it is aborted. */
static void wait_idle(podcclComm_t comm) {
    while (atomic_load(&comm->active) > 0) usleep(1000);
}

podcclResult_t podcclCommDestroy(podcclComm_t comm) {
    uint64_t serial = 0;
    PCCHECK(live_serial(comm, "podcclCommDestroy", &serial));
    /* Waiting for operations of the calling thread's own open group would wait forever: they
     * run only at its podcclGroupEnd. */
    int queued = pc_group_pending(comm, serial);
    if (queued)
        return pc_err(comm, podcclInvalidUsage,
                      "podcclCommDestroy: rank %d: %d operation%s on this communicator %s queued "
                      "in the calling thread's open group (podcclGroupStart without "
                      "podcclGroupEnd); call podcclGroupEnd first, or podcclCommAbort to drop "
                      "them; nothing was freed",
                      comm->rank, queued, queued == 1 ? "" : "s", queued == 1 ? "is" : "are");
    if (!reg_remove(comm, serial))
        return pc_err(NULL, podcclInvalidArgument,
                      "podcclCommDestroy: comm is not a live communicator (destroyed?)");
    wait_idle(comm);
    comm_free(comm);
    return podcclSuccess;
}

podcclResult_t podcclCommAbort(podcclComm_t comm) {
    uint64_t serial = 0;
    PCCHECK(live_serial(comm, "podcclCommAbort", &serial));
    int dropped = pc_group_drop(comm, serial);
    if (!reg_remove(comm, serial))
        return pc_err(NULL, podcclInvalidArgument,
                      "podcclCommAbort: comm is not a live communicator (destroyed?)");
    char why[128];
    snprintf(why, sizeof(why), "rank %d: communicator aborted (podcclCommAbort)", comm->rank);
    /* Broken first: operations queued on streams then fail when they start, and a running one
     * returns at its next look at `aborted`, so the wait below is short. */
    atomic_store(&comm->aborted, 1);
    pc_comm_fail_why(comm, podcclRemoteError, why);
    if (dropped)
        pc_log(PC_LOG_INFO, PC_SUB_INIT,
               "podcclCommAbort: dropped %d operation%s queued in this thread's open group",
               dropped, dropped == 1 ? "" : "s");
    wait_idle(comm);
    comm_free(comm);
    return podcclSuccess;
}
