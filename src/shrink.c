/* podcclCommShrink (ncclCommShrink, NCCL 2.27): after a failure, the survivors build a
 * communicator without the excluded ranks, without needing any of them and without a new unique
 * id: the lowest surviving rank becomes the new rendezvous root on the bootstrap listener it has
 * kept since init (every rank knows its address), and the key of the new rendezvous is derived
 * from the parent's secret, the exclusion list and a count of shrinks, so every survivor
 * computes the same id by itself and nobody outside the job can join. The parent is left as it
 * is (aborted first with PODCCL_SHRINK_ABORT); destroy it afterwards. */
#include <errno.h>
#include <unistd.h>

#include "src/boot_proto.h"
#include "src/comm.h"
#include "src/boot_root.h"

static int cmp_int(const void *a, const void *b) {
    return (*(const int *)a > *(const int *)b) - (*(const int *)a < *(const int *)b);
}

/* Checks the arguments and returns the sorted exclusion list in *sorted (caller frees). */
static podcclResult_t check_args(podcclComm_t comm, const int *excl, int nexcl,
                                 podcclComm_t *newcomm, int flags, int **sorted) {
    if (newcomm) *newcomm = NULL;
    if (!comm || !pc_comm_live(comm, NULL))
        return pc_err(NULL, podcclInvalidArgument,
                      "podcclCommShrink: comm is NULL or not a live communicator (destroyed?)");
    if (!newcomm) return pc_err(comm, podcclInvalidArgument, "podcclCommShrink: newcomm is NULL");
    if (flags != PODCCL_SHRINK_DEFAULT && flags != PODCCL_SHRINK_ABORT)
        return pc_err(comm, podcclInvalidArgument, "podcclCommShrink: unknown flags %d", flags);
    if (nexcl < 0 || nexcl >= comm->nranks || (nexcl > 0 && !excl))
        return pc_err(comm, podcclInvalidArgument,
                      "podcclCommShrink: excludeRanksCount %d must be in [0, %d) with a list",
                      nexcl, comm->nranks);
    int *s = malloc(sizeof(int) * (size_t)(nexcl + 1));
    if (!s) return pc_err(comm, podcclSystemError, "out of memory");
    memcpy(s, excl, sizeof(int) * (size_t)nexcl);
    qsort(s, (size_t)nexcl, sizeof(int), cmp_int);
    for (int i = 0; i < nexcl; i++) {
        const char *bad = s[i] < 0 || s[i] >= comm->nranks ? "is not a rank of comm"
                          : i > 0 && s[i] == s[i - 1]      ? "is listed twice"
                          : s[i] == comm->rank ? "is this rank: an excluded rank must not call "
                                                 "podcclCommShrink"
                                               : NULL;
        if (bad) {
            int r = s[i];
            free(s);
            return pc_err(comm, podcclInvalidArgument, "podcclCommShrink: excluded rank %d %s", r,
                          bad);
        }
    }
    *sorted = s;
    return podcclSuccess;
}

podcclResult_t podcclCommShrink(podcclComm_t comm, int *excludeRanksList, int excludeRanksCount,
                                podcclComm_t *newcomm, podcclConfig_t *config, int shrinkFlags) {
    int *ex = NULL, nex = excludeRanksCount;
    PCCHECK(check_args(comm, excludeRanksList, nex, newcomm, shrinkFlags, &ex));
    if (shrinkFlags == PODCCL_SHRINK_ABORT) {
        /* Operations in flight on other threads or streams fail as soon as they notice. */
        atomic_store(&comm->aborted, 1);
        pc_comm_fail_why(comm, podcclRemoteError, "communicator aborted by podcclCommShrink");
    }
    while (atomic_load(&comm->active) > 0) usleep(1000);
    /* New rank: survivors keep their order. Root: the lowest survivor. */
    int newrank = comm->rank, root = -1;
    for (int i = 0; i < nex; i++) newrank -= ex[i] < comm->rank;
    for (int r = 0, i = 0; r < comm->nranks && root < 0; r++) {
        while (i < nex && ex[i] < r) i++;
        if (i >= nex || ex[i] != r) root = r;
    }
    pc_boot *b = &comm->boot;
    podcclResult_t res = podcclSuccess;
    if (!b->has_lfd || !b->addrs)
        res = pc_err(comm, podcclInternalError, "podcclCommShrink: no bootstrap listener kept");
    pc_id id = {.magic = PC_ID_MAGIC};
    if (res == podcclSuccess) {
        /* The key: the parent's secret, which ranks are excluded, and how many shrinks came
         * before (all survivors shrink a communicator the same number of times). */
        int32_t *data = calloc((size_t)nex + 2, sizeof(int32_t));
        if (!data) res = pc_err(comm, podcclSystemError, "out of memory");
        for (int i = 0; data && i < nex; i++) data[i] = ex[i];
        if (data) {
            data[nex] = b->shrinks++;
            data[nex + 1] = comm->nranks;
            bp_derive(b->secret, PC_SECRET_BYTES, "podccl/shrink", data,
                      sizeof(int32_t) * ((size_t)nex + 2), id.secret);
        }
        free(data);
        id.addr = b->addrs[root];
    }
    double timeout = config && config->timeoutSec > 0 ? config->timeoutSec : comm->timeout;
    if (res == podcclSuccess && comm->rank == root) {
        /* The service takes a second descriptor of the listener: comm keeps its own. */
        int fd = dup(b->lfd);
        res = fd < 0 ? pc_err(comm, podcclSystemError, "podcclCommShrink: dup: %s", strerror(errno))
                     : boot_root_serve(fd, id.secret, timeout);
    }
    free(ex);
    if (res != podcclSuccess) return res;
    podcclUniqueId uid;
    memset(&uid, 0, sizeof(uid));
    memcpy(uid.internal, &id, sizeof(id));
    podcclConfig_t cfg = PODCCL_CONFIG_INITIALIZER;
    if (config) cfg = *config;
    if (cfg.timeoutSec == PODCCL_CONFIG_UNDEF_INT) cfg.timeoutSec = (int)(timeout + 0.5);
    if (!config || !config->name) cfg.name = comm->name[0] ? comm->name : NULL;
    pc_log(PC_LOG_INFO, PC_SUB_INIT, "shrink: rank %d -> %d of %d (root: old rank %d)", comm->rank,
           newrank, comm->nranks - nex, root);
    res = podcclCommInitRankConfig(newcomm, comm->nranks - nex, uid, newrank, &cfg);
    if (res != podcclSuccess) {
        char why[400];
        snprintf(why, sizeof(why), "%s", pc_thread_err());
        pc_err(comm, res, "podcclCommShrink: %s", why);
    }
    return res;
}
