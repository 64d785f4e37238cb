/* Connections (conn.h): the context the transports get, the network transport's module, and
 * the connection of every peer through the first transport that reaches it. */
#include "src/conn.h"

#include <dlfcn.h>
#include <errno.h>
#include <sched.h>
#include <strings.h>
#include <unistd.h>

#include "src/boot_sock.h"
#include "src/exec.h"
#include "src/sig.h"
#include "src/memdom.h"
#include "src/wait.h"

/* ---- what a transport may call (podccl_net.h: pc_tp_ctx) ----------------------------------- */

static void ctx_log(int level, int subsys, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    pc_log_write(level, subsys, "%s", msg);
}

static podcclResult_t ctx_err(void *comm, podcclResult_t rc, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return pc_err(comm, rc, "%s", msg);
}

static podcclResult_t ctx_mismatch(void *comm, int peer, const pc_sig *theirs) {
    return pc_mismatch(comm, peer, theirs);
}

static podcclResult_t ctx_size_mismatch(void *comm, int peer, const pc_sig *sig, size_t sent,
                                        size_t posted) {
    return pc_size_mismatch(comm, peer, sig, sent, posted);
}

static podcclResult_t ctx_notice(void *comm, int reporter, int culprit, const pc_sig *rep,
                                 const pc_sig *cul) {
    return pc_mismatch_notice(comm, reporter, culprit, rep, cul);
}

static const pc_sig *ctx_current(void *comm) {
    return &((podcclComm_t)comm)->ex->cur;
}

static int ctx_own_call(void *comm, uint64_t seq, pc_sig *out) {
    const pc_sig *h = &((podcclComm_t)comm)->ex->hist[seq % PC_SIG_HIST];
    if (!seq || h->seq != seq) return 0;
    *out = *h;
    return 1;
}

static int ctx_broken(void *comm) {
    return pc_comm_async(comm) != podcclSuccess;
}

static podcclResult_t ctx_peer_gone(void *comm, int peer) {
    pc_wait w = {.gone = peer};
    return pc_wait_gone(comm, &w);
}

static podcclResult_t ctx_peer_died_in_init(void *comm, int peer) {
    return pc_init_peer_died(comm, peer);
}

static void ctx_publish_failure(void *comm, int culprit, podcclResult_t rc) {
    pc_publish_failure(comm, culprit, rc);
}

/* 64 bits of the job's secret for transports that need a job-wide nonce (FNV-1a of its first
 * half: the secret itself never leaves the core). */
static uint64_t job_key(const pc_boot *b) {
    return pc_fnv1a(PC_FNV_OFFSET, b->secret, 16);
}

void pc_conn_ctx(podcclComm_t comm) {
    pc_tp_ctx *c = &comm->tr->ctx;
    const pc_topo *t = comm->topo;
    *c = (pc_tp_ctx){.comm = comm,
                     .rank = comm->rank,
                     .nranks = comm->nranks,
                     .host = t->host,
                     .nhosts = t->nhosts,
                     .host_of = t->host_of,
                     .nlocal = t->nlocal,
                     .local_rank = t->local_rank,
                     .local_ranks = t->local_ranks,
                     .local_idx = t->local_idx,
                     .pids = t->pids,
                     .chunk_bytes = comm->ex->chunk_bytes,
                     .max_inflight = comm->ex->max_inflight,
                     .timeout = comm->timeout,
                     .job_key = job_key(&comm->boot),
                     .log_level = &pc_log_level,
                     .log = ctx_log,
                     .err = ctx_err,
                     .param_str = pc_param_str,
                     .param_int = pc_param_int,
                     .mismatch = ctx_mismatch,
                     .size_mismatch = ctx_size_mismatch,
                     .mismatch_notice = ctx_notice,
                     .current = ctx_current,
                     .own_call = ctx_own_call,
                     .broken = ctx_broken,
                     .peer_gone = ctx_peer_gone,
                     .peer_died_in_init = ctx_peer_died_in_init,
                     .publish_failure = ctx_publish_failure};
    boot_addr_ip(&comm->boot.local, c->boot_addr, sizeof(c->boot_addr));
}

/* ---- network transport modules (podccl_net.h) --------------------------------------------- */

/* The network transports this build has as modules, in the automatic order of preference. */
static const char *const builtin_nets[] = {
#ifdef HAVE_VERBS
    "ib",
#endif
#ifdef HAVE_OFI
    "ofi",
#endif
    NULL};
#define PC_MAX_NET 3

/* Modules stay loaded for the life of the process (as NCCL's net plugins): a network library
 * unloaded under its own threads, or loaded twice, is not worth the memory it would free. */
typedef struct {
    char key[256]; /* what PODCCL_NET_PLUGIN said, or the built-in name */
    void *handle;
    const pc_transport *tp;
} net_module;
static pthread_mutex_t mod_lock = PTHREAD_MUTEX_INITIALIZER;
static net_module mods[8];
static int nmods;

/* Folders searched for podccl-net-NAME.so: next to libpodccl.so (the build tree keeps both in
 * .libs) and its podccl/ subfolder (where make install puts modules), then PODCCL_MODULEDIR. */
static int module_path(const char *file, char *path, size_t len) {
    Dl_info info;
    char dir[512] = "";
    if (dladdr((void *)pc_conn_ctx, &info) && info.dli_fname) {
        snprintf(dir, sizeof(dir), "%s", info.dli_fname);
        char *slash = strrchr(dir, '/');
        if (slash) *slash = 0;
    }
    const char *cands[3] = {"%s/podccl/%s", "%s/%s", NULL};
    for (int i = 0; *dir && cands[i]; i++) {
        snprintf(path, len, cands[i], dir, file);
        if (access(path, R_OK) == 0) return 1;
    }
    snprintf(path, len, "%s/%s", PODCCL_MODULEDIR, file);
    return access(path, R_OK) == 0;
}

/* libfabric links PSM (libinfinipath), whose constructor installs handlers for SIGSEGV, SIGTERM
 * and others that call exit() inside the signal: a process that gets SIGTERM while it exits can
 * deadlock in its own destructors. It reads these two variables when it loads, so they are set
 * before the module is opened unless the user set them. */
static void quiet_psm(const char *what) {
    const char *vars[] = {"IPATH_NO_BACKTRACE", "HFI_NO_BACKTRACE"};
    for (int i = 0; i < 2; i++) {
        const char *v = getenv(vars[i]);
        if (v) {
            pc_log(PC_LOG_INFO, PC_SUB_NET, "%s: %s=%s set by the user: left as it is", what,
                   vars[i], v);
            continue;
        }
        setenv(vars[i], "1", 0);
        pc_log(PC_LOG_INFO, PC_SUB_NET,
               "%s: %s=1 set before loading it, so that libfabric's PSM provider installs no "
               "signal handlers (set %s=0 to keep them)",
               what, vars[i], vars[i]);
    }
}

static podcclResult_t open_module(const char *key, const char *path, const pc_transport **tp) {
    quiet_psm(path);
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) return pc_err(NULL, podcclSystemError, "network module %s: %s", path, dlerror());
    const pc_net_plugin *p = dlsym(h, PC_NET_PLUGIN_SYMBOL);
    const char *bad = !p                                     ? "it exports no " PC_NET_PLUGIN_SYMBOL
                      : p->abi_version != PC_NET_ABI_VERSION ? "its ABI version differs"
                      : p->struct_size != sizeof(pc_transport) ? "its pc_transport size differs"
                      : !p->transport || !p->transport->name   ? "it names no transport"
                                                               : NULL;
    if (bad) {
        podcclResult_t r = pc_err(
            NULL, podcclInvalidArgument,
            "network module %s: %s (module: ABI %u, %u-byte table; this podccl: ABI %d, %zu-byte "
            "table): rebuild it against this podccl's podccl_net.h",
            path, bad, p ? p->abi_version : 0, p ? p->struct_size : 0, PC_NET_ABI_VERSION,
            sizeof(pc_transport));
        dlclose(h);
        return r;
    }
    net_module *m = &mods[nmods++];
    snprintf(m->key, sizeof(m->key), "%s", key);
    m->handle = h, m->tp = p->transport;
    *tp = m->tp;
    pc_log(PC_LOG_INFO, PC_SUB_NET, "network module %s: transport %s (ABI %u)", path, m->tp->name,
           p->abi_version);
    return podcclSuccess;
}

/* The transport of module `key`: a path (contains '/'), or NAME for podccl-net-NAME.so. */
static podcclResult_t load_module(const char *key, const pc_transport **tp) {
    podcclResult_t r = podcclSuccess;
    pthread_mutex_lock(&mod_lock);
    int i = 0;
    while (i < nmods && strcmp(mods[i].key, key) != 0) i++;
    if (i < nmods) {
        *tp = mods[i].tp;
    } else if (nmods == (int)(sizeof(mods) / sizeof(mods[0]))) {
        r = pc_err(NULL, podcclSystemError, "network module %s: too many modules loaded", key);
    } else {
        char file[300], path[1024];
        snprintf(file, sizeof(file), "podccl-net-%s.so", key);
        if (strchr(key, '/'))
            r = open_module(key, key, tp);
        else if (module_path(file, path, sizeof(path)))
            r = open_module(key, path, tp);
        else
            r = pc_err(NULL, podcclSystemError,
                       "network module %s not found next to libpodccl.so, in its podccl/ folder "
                       "nor in %s (is podccl installed completely?)",
                       file, PODCCL_MODULEDIR);
    }
    pthread_mutex_unlock(&mod_lock);
    return r;
}

/* ---- choosing the network transport ------------------------------------------------------- */

/* The candidates: PODCCL_NET_PLUGIN alone, else the built-in modules (PODCCL_NET among them). */
static podcclResult_t net_candidates(podcclComm_t comm, const char **names, int *n, int *forced) {
    const char *plugin = pc_param_str("PODCCL_NET_PLUGIN");
    const char *want = pc_param_str("PODCCL_NET");
    *n = 0, *forced = -1;
    if (plugin && *plugin) {
        names[(*n)++] = plugin;
        *forced = 0;
        return podcclSuccess;
    }
    for (int i = 0; builtin_nets[i]; i++) names[(*n)++] = builtin_nets[i];
    if (!want || !*want) return podcclSuccess;
    for (int i = 0; i < *n; i++)
        if (strcasecmp(want, names[i]) == 0) *forced = i;
    if (*forced >= 0) return podcclSuccess;
    char have[32] = "";
    for (int i = 0; i < *n; i++)
        snprintf(have + strlen(have), sizeof(have) - strlen(have), " %s", names[i]);
    return pc_err(comm, podcclInvalidArgument,
                  "PODCCL_NET=%s: this build does not include that transport (configure found "
                  "no libibverbs/librdmacm or libfabric; this build has:%s)",
                  want, *n ? have : " none");
}

/* All ranks must use the same network transport. Each rank says which candidates it can run (a
 * bit each); the forced one, else the first that every rank has, is used. A module is loaded only
 * to ask it, in order, and only when the ranks span hosts. Every rank reaches the all-gather,
 * so that a module one rank cannot load fails every rank at once, each with its own reason. */
static podcclResult_t pick_net(podcclComm_t comm) {
    int n = comm->nranks, me = comm->rank, nnet, forced;
    const char *names[PC_MAX_NET];
    PCCHECK(net_candidates(comm, names, &nnet, &forced));
    const pc_transport *tps[PC_MAX_NET] = {NULL};
    podcclResult_t why_rc[PC_MAX_NET];
    char why[PC_MAX_NET][400];
    unsigned char *mask = calloc((size_t)n, 1);
    if (!mask) return pc_err(comm, podcclSystemError, "out of memory");
    for (int i = 0; i < nnet; i++) {
        why[i][0] = 0, why_rc[i] = podcclSystemError;
        if (forced >= 0 && i != forced) continue;
        why_rc[i] = load_module(names[i], &tps[i]);
        if (why_rc[i] != podcclSuccess)
            snprintf(why[i], sizeof(why[i]), "%s", pc_thread_err());
        else if (!tps[i]->available || tps[i]->available(&comm->tr->ctx, why[i], sizeof(why[i])))
            mask[me] |= (unsigned char)(1u << i);
        else
            why_rc[i] = podcclSystemError;
        if (!(mask[me] & (1u << i)))
            pc_log(PC_LOG_INFO, PC_SUB_NET, "transport %s unavailable: %s", names[i], why[i]);
    }
    podcclResult_t res = boot_allgather(&comm->boot, mask, 1);
    int pick = -1;
    for (int i = 0; i < nnet && pick < 0 && res == podcclSuccess; i++) {
        if (forced >= 0 && i != forced) continue;
        int lacking = -1;
        for (int r = 0; r < n && lacking < 0; r++)
            if (!(mask[r] & (1u << i))) lacking = r;
        if (lacking < 0) {
            pick = i;
        } else if (forced >= 0) {
            const char *var =
                pc_param_str("PODCCL_NET_PLUGIN") ? "PODCCL_NET_PLUGIN" : "PODCCL_NET";
            res = !(mask[me] & (1u << i))
                      ? pc_err(comm, why_rc[i], "%s=%s: rank %d cannot use it: %s", var, names[i],
                               me, why[i])
                      : pc_err(comm, podcclSystemError,
                               "%s=%s, but rank %d cannot use it (its own error says why)", var,
                               names[i], lacking);
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
    comm->tr->net = tps[pick];
    return podcclSuccess;
}

/* ---- connecting --------------------------------------------------------------------------- */

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
            PCCHECK(p > comm->rank ? tp->connect(listen_comm, p, h, &comm->tr->conn[p])
                                   : tp->accept(listen_comm, p, h, &comm->tr->conn[p]));
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

/* Which transport reaches each peer: shared memory inside the domain, else the network. */
static podcclResult_t route(podcclComm_t comm) {
    pc_conns *tr = comm->tr;
    for (int p = 0; p < comm->nranks; p++) {
        if (pc_transport_shm.can_reach(&tr->ctx, p))
            tr->tp[p] = &pc_transport_shm;
        else if (tr->net && tr->net->can_reach(&tr->ctx, p))
            tr->tp[p] = tr->net;
        else
            return pc_err(comm, podcclInternalError, "rank %d: no transport reaches rank %d",
                          comm->rank, p);
        const pc_props *pp = tr->tp[p] == tr->net ? &tr->net_props : &tr->shm_props;
        pc_log(PC_LOG_INFO, PC_SUB_INIT, "rank %d -> rank %d via %s (%s)", comm->rank, p, pp->name,
               pp->provider);
    }
    return podcclSuccess;
}

/* Single copy only if every pair of local ranks may use it: all ranks must agree. */
static podcclResult_t agree_single_copy(podcclComm_t comm, char *buf) {
    int n = comm->nranks, ok = 1;
    memset(buf, 0, (size_t)n);
    buf[comm->rank] = (char)md_single_copy_probe(comm);
    PCCHECK(boot_allgather(&comm->boot, buf, 1));
    for (int p = 0; p < n; p++) ok &= buf[p] == 1 || comm->topo->local_idx[p] < 0;
    comm->tr->single_copy = ok;
    pc_log(PC_LOG_INFO, PC_SUB_SHM, "large messages: %s",
           ok ? "single copy (process_vm_readv)"
              : "staged through shared memory (no process_vm_readv)");
    return podcclSuccess;
}

podcclResult_t pc_conn_setup(podcclComm_t comm) {
    int n = comm->nranks;
    pc_conns *tr = comm->tr;
    const size_t stride = 2 * PC_HANDLE_BYTES;
    if (comm->topo->nhosts > 1) PCCHECK(pick_net(comm));
    char *handles = calloc((size_t)n, stride);
    if (!handles) return pc_err(comm, podcclSystemError, "out of memory");
    char *mine = handles + (size_t)comm->rank * stride;
    podcclResult_t res;
    PCCHECKGOTO(pc_transport_shm.listen(&tr->ctx, mine, &tr->shm), res, out);
    pc_transport_shm.properties(tr->shm, &tr->shm_props);
    /* The domains work from here on: init's failures reach the local peers (and are found again
     * by the init fail path, to name the culprit in the abort notice). */
    tr->md = &pc_shm_memdom;
    comm->live = &pc_shm_live;
    comm->live_dom = tr->shm;
    if (tr->net) {
        PCCHECKGOTO(tr->net->listen(&tr->ctx, mine + PC_HANDLE_BYTES, &tr->net_listen), res, out);
        tr->net->properties(tr->net_listen, &tr->net_props);
    }
    PCCHECKGOTO(boot_allgather(&comm->boot, handles, stride), res, out);
    PCCHECKGOTO(route(comm), res, out);
    PCCHECKGOTO(connect_all(comm, &pc_transport_shm, tr->shm, handles, stride, 0), res, out);
    if (tr->net)
        PCCHECKGOTO(connect_all(comm, tr->net, tr->net_listen, handles, stride, PC_HANDLE_BYTES),
                    res, out);
    PCCHECKGOTO(boot_barrier(&comm->boot), res, out);
    PCCHECKGOTO(pc_transport_shm.connected(tr->shm), res, out);
    if (tr->net && tr->net->connected) PCCHECKGOTO(tr->net->connected(tr->net_listen), res, out);
    res = agree_single_copy(comm, handles);
out:
    free(handles);
    return res;
}

void pc_conn_free(podcclComm_t comm) {
    pc_conns *tr = comm->tr;
    if (!tr) return;
    if (tr->conn)
        for (int p = 0; p < comm->nranks; p++)
            if (tr->conn[p]) tr->tp[p]->close(tr->conn[p]);
    if (tr->net_listen) tr->net->close_listen(tr->net_listen);
    if (tr->shm) pc_transport_shm.close_listen(tr->shm);
    comm->live = NULL, comm->live_dom = NULL;
    free(tr->conn), free(tr->tp);
    free(tr);
    comm->tr = NULL;
}
