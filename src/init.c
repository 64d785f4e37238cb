/* Communicator life: unique id, init (bootstrap, topology, planner, connections), destroy,
 * abort. */
#include <strings.h>
#include <unistd.h>

#include "src/boot_root.h"
#include "src/comm.h"
#include "src/conn.h"
#include "src/enqueue.h"
#include "src/memdom.h"
#include "src/topo.h"
#include "src/trace.h"
#include "src/tune.h"
#include "src/wait.h"

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

static void comm_free(podcclComm_t comm) {
    trace_comm_free(comm);
    pc_conn_free(comm);
    boot_close(&comm->boot);
    topo_free(comm->topo);
    if (comm->tune) tune_free(comm);
    if (comm->ex) free(comm->ex->scratch), free(comm->ex->tmp);
    free(comm->ex);
    pthread_mutex_destroy(&comm->err.lock);
    pthread_mutex_destroy(&comm->use_lock);
    comm->magic = PC_COMM_DEAD;
    free(comm);
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

/* The arguments of an init call: podcclInvalidArgument with a message for each bad one. */
static podcclResult_t check_init(podcclComm_t *out, int nranks, int rank, podcclConfig_t *config,
                                 const podcclUniqueId *commId, pc_id *id) {
    if (!out) return pc_err(NULL, podcclInvalidArgument, "podcclCommInitRank: comm is NULL");
    *out = NULL;
    if (nranks < 1 || nranks > (1 << 20))
        return pc_err(NULL, podcclInvalidArgument, "podcclCommInitRank: nranks %d not in [1, 2^20]",
                      nranks);
    if (rank < 0 || rank >= nranks)
        return pc_err(NULL, podcclInvalidArgument, "podcclCommInitRank: rank %d not in [0, %d)",
                      rank, nranks);
    PCCHECK(check_config(config));
    if (boot_decode_id(commId->internal, sizeof(commId->internal), id) != podcclSuccess) {
        char why[256];
        snprintf(why, sizeof(why), "%s", pc_thread_err());
        return pc_err(NULL, podcclInvalidArgument, "podcclCommInitRank: %s", why);
    }
    return podcclSuccess;
}

/* A communicator with its parts allocated and its own settings read; nothing connected. */
static podcclComm_t comm_new(int nranks, int rank, const podcclConfig_t *config) {
    podcclComm_t comm = calloc(1, sizeof(*comm));
    if (!comm) return NULL;
    comm->tr = calloc(1, sizeof(*comm->tr));
    comm->ex = calloc(1, sizeof(*comm->ex));
    if (comm->tr) {
        comm->tr->tp = calloc((size_t)nranks, sizeof(*comm->tr->tp));
        comm->tr->conn = calloc((size_t)nranks, sizeof(void *));
    }
    if (!comm->tr || !comm->ex || !comm->tr->tp || !comm->tr->conn) {
        if (comm->tr) free(comm->tr->tp), free(comm->tr->conn);
        free(comm->tr), free(comm->ex), free(comm);
        return NULL;
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
    comm->ex->chunk_bytes = (size_t)pc_param_int("PODCCL_CHUNK_BYTES");
    if (comm->ex->chunk_bytes < 4096) comm->ex->chunk_bytes = 4096;
    comm->ex->chunk_bytes = comm->ex->chunk_bytes / 64 * 64;
    comm->ex->max_inflight = (int)pc_param_int("PODCCL_MAX_INFLIGHT");
    if (comm->ex->max_inflight < 2) comm->ex->max_inflight = 2;
    return comm;
}

/* Joins the rendezvous (*booted: joined) and learns where every rank is. */
static podcclResult_t boot_and_topo(podcclComm_t comm, const pc_id *id, int *booted) {
    pc_host_info *all = calloc((size_t)comm->nranks, sizeof(*all));
    if (!all) return pc_err(NULL, podcclSystemError, "out of memory");
    podcclResult_t res = boot_init(&comm->boot, id, comm->rank, comm->nranks, comm->timeout);
    *booted = res == podcclSuccess;
    if (res == podcclSuccess) res = topo_local_info(&comm->boot.local, &all[comm->rank]);
    if (res == podcclSuccess) res = boot_allgather(&comm->boot, all, sizeof(*all));
    if (res == podcclSuccess) res = topo_build(&comm->topo, &comm->boot, all);
    free(all);
    return res;
}

/* How the executor waits and how deep it keeps each connection, once the transports are known. */
static void exec_settings(podcclComm_t comm) {
    pc_exec_state *ex = comm->ex;
    ex->recv_depth = ex->max_inflight;
    if (comm->tr->net) {
        /* Receives from the network run 4 x as deep as sends: a receive grants the sender its
         * clear-to-send, and that grant travels behind the data already queued towards the peer,
         * so the granted window must exceed that queue (docs/multihost.md: 85% of a 1 Gbit/s
         * link with receives as deep as sends, 95% at 4 x). Sends keep the transport's advice in
         * flight (PODCCL_NET_SEND_DEPTH): over sockets, writes queued in the provider hold back
         * the clear-to-sends this rank owes its peer. */
        ex->recv_depth = 4 * ex->max_inflight;
        const char *sd = pc_param_str("PODCCL_NET_SEND_DEPTH");
        int depth = sd && strcasecmp(sd, "auto") != 0 ? (int)pc_param_int("PODCCL_NET_SEND_DEPTH")
                                                      : comm->tr->net_props.send_depth;
        if (depth <= 0 || depth > ex->max_inflight) depth = ex->max_inflight;
        ex->net_send_depth = depth;
        pc_log(PC_LOG_INFO, PC_SUB_NET, "network: %d sends and %d receives in flight per peer",
               depth, ex->recv_depth);
    }
    long long nap = pc_param_int("PODCCL_NET_NAP_US");
    ex->nap_after = nap < 0 ? -1.0 : (double)nap * 1e-6;
    nap = pc_param_int("PODCCL_SHM_NAP_US");
    ex->shm_nap_after = nap < 0 ? -1.0 : (double)nap * 1e-6;
    const char *spin = pc_param_str("PODCCL_SHM_SPIN");
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    ex->spin = spin && strcasecmp(spin, "auto") != 0 ? (int)pc_param_int("PODCCL_SHM_SPIN")
                                                     : (comm->topo->nmachine <= ncpu ? 2000 : 20);
}

/* Tells the others at once, naming the culprit, instead of letting them wait for their
 * timeouts; local peers read the cause from shared memory before they see this rank exit. */
static void init_failed(podcclComm_t comm, podcclResult_t res) {
    char why[256];
    snprintf(why, sizeof(why), "%s", pc_thread_err());
    int culprit = pc_init_culprit(comm, res);
    if (culprit >= 0 && culprit != comm->rank) pc_publish_failure(comm, culprit, res);
    boot_send_abort(&comm->boot, culprit, why);
}

podcclResult_t podcclCommInitRankConfig(podcclComm_t *out, int nranks, podcclUniqueId commId,
                                        int rank, podcclConfig_t *config) {
    pc_log_init();
    PCCHECK(pc_param_check_all());
    pc_id id;
    PCCHECK(check_init(out, nranks, rank, config, &commId, &id));
    podcclComm_t comm = comm_new(nranks, rank, config);
    if (!comm) return pc_err(NULL, podcclSystemError, "out of memory");
    pc_log_set_rank(rank);
    const char *algo = config && config->algo ? config->algo : pc_param_str("PODCCL_ALGO");
    int booted;
    podcclResult_t res = boot_and_topo(comm, &id, &booted);
    if (res == podcclSuccess) res = tune_init(comm, algo);
    if (res == podcclSuccess) res = tune_agree(comm);
    if (res == podcclSuccess) pc_conn_ctx(comm), res = pc_conn_setup(comm);
    if (res != podcclSuccess) {
        if (booted) init_failed(comm, res);
        comm_free(comm);
        return res;
    }
    pc_conns *tr = comm->tr;
    tune_set_domain(comm, md_direct_bytes(comm), tr->single_copy && comm->topo->nlocal == nranks);
    if (tr->net) topo_set_net_link(comm->topo, tr->net_props.bw_gbps, tr->net_props.latency_us);
    exec_settings(comm);
    pc_heartbeat(comm);
    res = pc_comm_register(comm);
    if (res != podcclSuccess) {
        init_failed(comm, res);
        comm_free(comm);
        return res;
    }
    trace_comm_init(comm, &id.addr, sizeof(id.addr)); /* the id without its secret */
    pc_log(PC_LOG_INFO, PC_SUB_INIT, "communicator ready: rank %d of %d, %zu KiB shared memory",
           rank, nranks, md_segment_bytes(comm) >> 10);
    *out = comm;
    return podcclSuccess;
}

podcclResult_t podcclCommInitRank(podcclComm_t *comm, int nranks, podcclUniqueId commId, int rank) {
    return podcclCommInitRankConfig(comm, nranks, commId, rank, NULL);
}

/* References still held on comm (calls in progress, operations queued on streams) go before it
 * does: they finish, or fail at once when it is aborted. */
static void wait_idle(podcclComm_t comm) {
    while (atomic_load(&comm->active) > 0) usleep(1000);
}

podcclResult_t podcclCommDestroy(podcclComm_t comm) {
    uint64_t serial = 0;
    PCCHECK(pc_comm_check_live(comm, "podcclCommDestroy", &serial));
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
    if (!pc_comm_unregister(comm, serial))
        return pc_err(NULL, podcclInvalidArgument,
                      "podcclCommDestroy: comm is not a live communicator (destroyed?)");
    wait_idle(comm);
    comm_free(comm);
    return podcclSuccess;
}

podcclResult_t podcclCommAbort(podcclComm_t comm) {
    uint64_t serial = 0;
    PCCHECK(pc_comm_check_live(comm, "podcclCommAbort", &serial));
    int dropped = pc_group_drop(comm, serial);
    if (!pc_comm_unregister(comm, serial))
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
