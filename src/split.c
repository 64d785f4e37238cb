/* podcclCommSplit (ncclCommSplit, MPI_Comm_split): an all-gather of (color, key) over the parent
 * (podcclAllGather), then the new rank 0 of each color starts a rendezvous on the parent's
 * bootstrap address (as NCCL's split uses the parent's bootstrap), a second all-gather hands every
 * member its leader's unique id, and every member runs podcclCommInitRankConfig for its color.
 * The parent is only read (rank, size, timeout, name, bootstrap address). */
#include <limits.h>

#include "src/comm.h"
#include "src/boot_root.h"

/* What each rank contributes to the first all-gather. */
typedef struct {
    int32_t color, key;
} split_ck;

/* What each rank contributes to the second: a leader's id, or zeros from the others. rc is the
 * leader's podcclGetUniqueId result, so that the members of its color fail with it instead of
 * joining a rendezvous nobody started. */
typedef struct {
    int32_t rc, pad;
    podcclUniqueId id;
} split_id;

/* Where this rank lands: size of its color, its new rank, and the parent rank of new rank 0. */
typedef struct {
    int size, rank, leader;
} split_place;

static podcclResult_t check_args(podcclComm_t comm, int color, podcclComm_t *newcomm,
                                 const podcclConfig_t *config) {
    if (newcomm) *newcomm = NULL;
    if (!comm) return pc_err(NULL, podcclInvalidArgument, "podcclCommSplit: comm is NULL");
    if (!pc_comm_live(comm, NULL)) /* checked without reading comm: it may be freed memory */
        return pc_err(NULL, podcclInvalidArgument,
                      "podcclCommSplit: comm is not a live communicator (destroyed?)");
    if (!newcomm) return pc_err(comm, podcclInvalidArgument, "podcclCommSplit: newcomm is NULL");
    if (color < 0 && color != PODCCL_SPLIT_NOCOLOR)
        return pc_err(comm, podcclInvalidArgument,
                      "podcclCommSplit: color %d is negative and not PODCCL_SPLIT_NOCOLOR (%d)",
                      color, PODCCL_SPLIT_NOCOLOR);
    if (!config) return podcclSuccess;
    /* The same checks as podcclCommInitRankConfig, but before any communication. */
    if (config->size < offsetof(podcclConfig_t, name) + sizeof(config->name) ||
        config->magic != PODCCL_CONFIG_MAGIC || config->version < 100)
        return pc_err(comm, podcclInvalidArgument,
                      "podcclCommSplit: config size/magic/version invalid (initialize it with "
                      "PODCCL_CONFIG_INITIALIZER)");
    if (config->timeoutSec != PODCCL_CONFIG_UNDEF_INT && config->timeoutSec <= 0)
        return pc_err(comm, podcclInvalidArgument,
                      "podcclCommSplit: config timeoutSec must be > 0 (got %d)",
                      config->timeoutSec);
    return podcclSuccess;
}

/* Orders the members of this rank's color by (key, parent rank). */
static split_place place(const split_ck *all, int n, int me) {
    split_place p = {0, 0, -1};
    int32_t color = all[me].color, key = all[me].key;
    for (int r = 0; r < n; r++) {
        if (all[r].color != color) continue;
        p.size++;
        if (all[r].key < key || (all[r].key == key && r < me)) p.rank++;
        if (p.leader < 0 || all[r].key < all[p.leader].key) p.leader = r; /* ties: lower r */
    }
    return p;
}

/* The parent's timeout in whole seconds, rounded up, within (0, INT_MAX]. */
static int inherited_timeout(double t) {
    if (!(t >= 1)) return 1;
    if (t >= (double)INT_MAX) return INT_MAX;
    int s = (int)t;
    return s < t ? s + 1 : s;
}

/* The new communicator's configuration: config's fields, the parent's where undefined. */
static void child_config(podcclComm_t comm, int color, const podcclConfig_t *config,
                         podcclConfig_t *cfg, char *name, size_t len) {
    podcclConfig_t def = PODCCL_CONFIG_INITIALIZER;
    *cfg = def;
    if (config) cfg->timeoutSec = config->timeoutSec, cfg->algo = config->algo;
    if (cfg->timeoutSec == PODCCL_CONFIG_UNDEF_INT)
        cfg->timeoutSec = inherited_timeout(comm->timeout);
    if (config && config->name) {
        cfg->name = config->name;
    } else {
        int k = snprintf(name, len, "%s%sc%d", comm->name, comm->name[0] ? "." : "", color);
        if (k < 0) name[0] = 0;
        cfg->name = name;
    }
}

/* Second all-gather: the leader of each color publishes its new unique id; *id gets the one of
 * this rank's leader (leader < 0: none wanted). */
static podcclResult_t exchange_ids(podcclComm_t comm, int leader, podcclUniqueId *id) {
    int n = comm->nranks, me = comm->rank;
    split_id mine;
    memset(&mine, 0, sizeof(mine));
    char why[512] = "";
    if (leader == me) {
        /* The rendezvous listens where this rank's bootstrap does (as NCCL's split uses the
         * parent's bootstrap address), not at PODCCL_COMM_ID, which the parent's root owns. */
        pc_id pid;
        mine.rc = (int32_t)boot_root_start(&pid, &comm->boot.local, comm->timeout);
        if (mine.rc == podcclSuccess) memcpy(mine.id.internal, &pid, sizeof(pid));
        if (mine.rc != podcclSuccess) snprintf(why, sizeof(why), "%s", pc_thread_err());
    }
    split_id *all = calloc((size_t)n, sizeof(*all));
    if (!all) return pc_err(comm, podcclSystemError, "podcclCommSplit: out of memory");
    podcclResult_t res = podcclAllGather(&mine, all, sizeof(mine), podcclUint8, comm, NULL);
    if (res == podcclSuccess && leader >= 0) {
        res = (podcclResult_t)all[leader].rc;
        if (res == podcclSuccess)
            *id = all[leader].id;
        else if (leader == me)
            pc_err(comm, res, "podcclCommSplit: podcclGetUniqueId failed: %s", why);
        else
            pc_err(comm, res,
                   "podcclCommSplit: rank %d, new rank 0 of this rank's color, could not create "
                   "the unique id (its podcclGetUniqueId returned %d)",
                   leader, (int)res);
    }
    free(all);
    return res;
}

/* First all-gather: (color, key) of every rank; *p gets where this rank lands. */
static podcclResult_t exchange_colors(podcclComm_t comm, int color, int key, split_place *p) {
    split_ck mine = {color, key};
    split_ck *all = calloc((size_t)comm->nranks, sizeof(*all));
    if (!all) return pc_err(comm, podcclSystemError, "podcclCommSplit: out of memory");
    podcclResult_t res = podcclAllGather(&mine, all, 2, podcclInt32, comm, NULL);
    if (res == podcclSuccess) *p = place(all, comm->nranks, comm->rank);
    free(all);
    return res;
}

podcclResult_t podcclCommSplit(podcclComm_t comm, int color, int key, podcclComm_t *newcomm,
                               podcclConfig_t *config) {
    pc_log_init();
    PCCHECK(check_args(comm, color, newcomm, config));
    split_place p = {0, 0, -1};
    PCCHECK(exchange_colors(comm, color, key, &p));
    if (color == PODCCL_SPLIT_NOCOLOR) p.leader = -1;
    podcclUniqueId id;
    memset(&id, 0, sizeof(id));
    PCCHECK(exchange_ids(comm, p.leader, &id));
    if (color == PODCCL_SPLIT_NOCOLOR) return podcclSuccess;

    podcclConfig_t cfg;
    char name[sizeof(comm->name) + 16];
    child_config(comm, color, config, &cfg, name, sizeof(name));
    podcclComm_t child = NULL;
    podcclResult_t res = podcclCommInitRankConfig(&child, p.size, id, p.rank, &cfg);
    pc_log_set_rank(comm->rank); /* the init set this thread's log rank to the new rank */
    if (res != podcclSuccess) {
        char why[512];
        snprintf(why, sizeof(why), "%s", pc_thread_err());
        return pc_err(comm, res, "podcclCommSplit: color %d, new rank %d of %d: %s", color, p.rank,
                      p.size, why);
    }
    pc_log(PC_LOG_INFO, PC_SUB_INIT, "podcclCommSplit: rank %d -> color %d, rank %d of %d (%s)",
           comm->rank, color, p.rank, p.size, cfg.name);
    *newcomm = child;
    return podcclSuccess;
}
