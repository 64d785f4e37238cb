/* podcclCommInitFromEnv: rank, size, rendezvous address and secret from the launcher's
 * environment (mpirun, Slurm, torchrun, or PODCCL_* variables). */
#include <arpa/inet.h>

#include "src/comm.h"

/* ---- launcher environments ----------------------------------------------------------------- */

static double env_timeout(void) {
    long long t = pc_param_int("PODCCL_TIMEOUT");
    return t > 0 ? (double)t : 300.0;
}

static int env_int(const char *name, long *v) {
    const char *s = getenv(name);
    if (!s || !*s) return 0;
    char *end;
    *v = strtol(s, &end, 10);
    return *end == 0;
}

static uint64_t hash_str(uint64_t h, const char *s) {
    for (; s && *s; s++) h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
    return h;
}

podcclResult_t podcclCommInitFromEnv(podcclComm_t *comm, podcclConfig_t *config) {
    pc_log_init();
    if (!comm) return pc_err(NULL, podcclInvalidArgument, "podcclCommInitFromEnv: comm is NULL");
    static const char *vars[][2] = {{"PODCCL_RANK", "PODCCL_NRANKS"},
                                    {"OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE"},
                                    {"PMI_RANK", "PMI_SIZE"},
                                    {"SLURM_PROCID", "SLURM_NTASKS"},
                                    {"RANK", "WORLD_SIZE"}};
    long rank = -1, size = -1;
    int which = -1;
    for (int i = 0; i < 5 && which < 0; i++)
        if (env_int(vars[i][0], &rank) && env_int(vars[i][1], &size)) which = i;
    if (which < 0)
        return pc_err(NULL, podcclInvalidArgument,
                      "podcclCommInitFromEnv: no launcher environment found (set PODCCL_RANK and "
                      "PODCCL_NRANKS, or start under mpirun, srun or torchrun)");
    if (size < 1 || rank < 0 || rank >= size)
        return pc_err(NULL, podcclInvalidArgument,
                      "podcclCommInitFromEnv: %s=%ld, %s=%ld are inconsistent", vars[which][0],
                      rank, vars[which][1], size);

    /* The job id makes the secret and, on one host, the port: ranks of one job agree, two
     * jobs on one host do not collide. */
    const char *jobvars[] = {
        "PODCCL_SECRET", "PMIX_NAMESPACE", "OMPI_MCA_orte_precondition_transports",
        "SLURM_JOB_ID",  "SLURM_STEP_ID",  "TORCHELASTIC_RUN_ID",
        "MASTER_ADDR",   "MASTER_PORT",    "PODCCL_COMM_ID"};
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < sizeof(jobvars) / sizeof(jobvars[0]); i++)
        h = hash_str(hash_str(h, jobvars[i]), getenv(jobvars[i]));
    pc_id id = {.magic = PC_ID_MAGIC};
    for (int i = 0; i < 16; i++) {
        h = (h ^ (uint64_t)i) * 0x100000001b3ull;
        id.secret[i] = (uint8_t)(h >> 56);
    }
    const char *commid = getenv("PODCCL_COMM_ID"), *maddr = getenv("MASTER_ADDR"),
               *mport = getenv("MASTER_PORT");
    char buf[300];
    if (commid && *commid) {
        PCCHECK(boot_parse_addr(commid, &id.addr));
    } else if (maddr && *maddr && mport && *mport) {
        snprintf(buf, sizeof(buf), "%s:%ld", maddr, strtol(mport, NULL, 10) + 1);
        PCCHECK(boot_parse_addr(buf, &id.addr));
    } else {
        long lsize = -1, nnodes = -1;
        int one_host = (env_int("OMPI_COMM_WORLD_LOCAL_SIZE", &lsize) && lsize == size) ||
                       (env_int("SLURM_NNODES", &nnodes) && nnodes == 1) ||
                       (env_int("LOCAL_WORLD_SIZE", &lsize) && lsize == size) || size == 1;
        if (!one_host)
            return pc_err(
                NULL, podcclInvalidArgument,
                "podcclCommInitFromEnv: ranks on several hosts need a rendezvous address: "
                "set PODCCL_COMM_ID=host:port (a host that runs rank 0)");
        snprintf(buf, sizeof(buf), "127.0.0.1:%d", (int)(20000 + (h >> 8) % 30000));
        PCCHECK(boot_parse_addr(buf, &id.addr));
    }
    double timeout = config && config->timeoutSec > 0 ? config->timeoutSec : env_timeout();
    if (rank == 0) {
        pc_sockaddr bind = id.addr;
        /* Listen on every interface at that port: the address may name this host by any of
         * its addresses. */
        if (bind.sa.sa_family == AF_INET)
            bind.sin.sin_addr.s_addr = htonl(INADDR_ANY);
        else
            bind.sin6.sin6_addr = in6addr_any;
        pc_id root = id;
        root.addr = bind;
        PCCHECK(boot_root_start_secret(&root, timeout));
    }
    podcclUniqueId uid;
    memset(&uid, 0, sizeof(uid));
    memcpy(uid.internal, &id, sizeof(id));
    return podcclCommInitRankConfig(comm, (int)size, uid, (int)rank, config);
}

