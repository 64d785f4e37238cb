/* podcclCommInitFromEnv: rank, size, rendezvous address and secret from the launcher's
 * environment (mpirun, Slurm, torchrun, or PODCCL_* variables). The secret is one that only the
 * job's owner can know (docs/security.md): PODCCL_SECRET, PODCCL_SECRET_FILE (mode 0600, owned
 * by the user), Open MPI's per-job random key, else a per-user secret file created 0600 in the
 * user's config directory. Nothing is derived from values another user can see. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "src/boot_proto.h"
#include "src/comm.h"
#include "src/boot_root.h"
#include "src/boot_sock.h"

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

/* ---- the job's secret ------------------------------------------------------------------------ */

/* Reads a secret file after checking it is a regular file owned by this user with no group or
 * other permission bits. */
static podcclResult_t read_secret_file(const char *path, uint8_t key[BP_KEY]) {
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return pc_err(NULL, podcclInvalidArgument, "secret file %s: %s", path, strerror(errno));
    struct stat st;
    podcclResult_t res = podcclSuccess;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
        res = pc_err(NULL, podcclInvalidArgument, "secret file %s is not a regular file", path);
    else if (st.st_uid != geteuid())
        res = pc_err(NULL, podcclInvalidArgument,
                     "secret file %s is owned by uid %u, not by this user (uid %u): refused", path,
                     (unsigned)st.st_uid, (unsigned)geteuid());
    else if (st.st_mode & 077)
        res = pc_err(NULL, podcclInvalidArgument,
                     "secret file %s has mode %04o: refused, other users may read it (chmod 600 "
                     "%s)",
                     path, (unsigned)(st.st_mode & 07777), path);
    char buf[4096];
    ssize_t n = res == podcclSuccess ? read(fd, buf, sizeof(buf)) : 0;
    close(fd);
    if (res == podcclSuccess && n < 16)
        res = pc_err(NULL, podcclInvalidArgument,
                     "secret file %s holds %zd bytes; at least 16 are needed", path, n);
    if (res == podcclSuccess)
        bp_derive((const uint8_t *)buf, (size_t)n, "podccl/secret-file", NULL, 0, key);
    memset(buf, 0, sizeof(buf));
    return res;
}

/* The per-user secret: $XDG_CONFIG_HOME/podccl/secret or ~/.config/podccl/secret, created with
 * 32 random bytes (hex) on first use. Ranks racing to create it agree: the file appears whole
 * (link of a finished temporary file) or not at all. */
static podcclResult_t user_secret(uint8_t key[BP_KEY], char *path, size_t len) {
    const char *xdg = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");
    char dir[512];
    if (xdg && *xdg == '/')
        snprintf(dir, sizeof(dir), "%s/podccl", xdg);
    else if (home && *home == '/')
        snprintf(dir, sizeof(dir), "%s/.config/podccl", home);
    else
        return pc_err(NULL, podcclInvalidArgument,
                      "no secret for podcclCommInitFromEnv: set PODCCL_SECRET_FILE (or "
                      "PODCCL_SECRET), or HOME for the per-user secret file");
    /* mkdir -p, new directories 0700 */
    for (char *q = dir + 1; *q; q++)
        if (*q == '/') {
            *q = 0;
            mkdir(dir, 0700);
            *q = '/';
        }
    mkdir(dir, 0700);
    snprintf(path, len, "%s/secret", dir);
    if (access(path, F_OK) != 0) {
        char tmp[640], hex[65];
        uint8_t rnd[32];
        snprintf(tmp, sizeof(tmp), "%s/.secret.%d", dir, (int)getpid());
        if (bp_random(rnd, sizeof(rnd)) != 0)
            return pc_err(NULL, podcclSystemError, "no random bytes for the secret file");
        for (int i = 0; i < 32; i++) snprintf(hex + 2 * i, 3, "%02x", rnd[i]);
        int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0)
            return pc_err(NULL, podcclSystemError, "cannot create %s: %s", tmp, strerror(errno));
        int ok = write(fd, hex, 64) == 64 && write(fd, "\n", 1) == 1 && fsync(fd) == 0;
        close(fd);
        if (ok && link(tmp, path) == 0)
            pc_log(PC_LOG_WARN, PC_SUB_BOOT,
                   "created the per-user secret %s (0600); ranks on other hosts need the same "
                   "file (a shared home directory) or PODCCL_SECRET_FILE",
                   path);
        unlink(tmp);
    }
    return read_secret_file(path, key);
}

/* Fills key with the job's secret, bound to the rendezvous address, and names its source. */
static podcclResult_t env_secret(uint8_t key[BP_KEY], const char *addr, char *src, size_t len) {
    uint8_t base[BP_KEY];
    const char *s = getenv("PODCCL_SECRET"), *f = getenv("PODCCL_SECRET_FILE");
    const char *ompi = getenv("OMPI_MCA_orte_precondition_transports");
    if (s && *s) {
        bp_derive((const uint8_t *)s, strlen(s), "podccl/secret", NULL, 0, base);
        snprintf(src, len, "PODCCL_SECRET");
    } else if (f && *f) {
        PCCHECK(read_secret_file(f, base));
        snprintf(src, len, "PODCCL_SECRET_FILE=%s", f);
    } else if (ompi && strlen(ompi) >= 16) {
        /* Open MPI's per-job random key: in the environment of the job's processes only. */
        bp_derive((const uint8_t *)ompi, strlen(ompi), "podccl/ompi", NULL, 0, base);
        snprintf(src, len, "Open MPI's per-job key");
    } else {
        char path[700];
        PCCHECK(user_secret(base, path, sizeof(path)));
        snprintf(src, len, "the per-user secret file %s", path);
    }
    bp_derive(base, sizeof(base), "podccl/env-init", addr, strlen(addr), key);
    memset(base, 0, sizeof(base));
    return podcclSuccess;
}

/* ---- rank, size, address -------------------------------------------------------------------- */

/* 1 when the launcher says every rank is on this host. */
static int launcher_one_host(long size) {
    long lsize = -1, nnodes = -1;
    return (env_int("OMPI_COMM_WORLD_LOCAL_SIZE", &lsize) && lsize == size) ||
           (env_int("MPI_LOCALNRANKS", &lsize) && lsize == size) || /* MPICH's hydra */
           (env_int("SLURM_NNODES", &nnodes) && nnodes == 1) ||
           (env_int("LOCAL_WORLD_SIZE", &lsize) && lsize == size) || size == 1;
}

/* The rendezvous address: PODCCL_COMM_ID, else torchrun's MASTER_ADDR:MASTER_PORT+1, else (all
 * ranks on this host) 127.0.0.1 at a port derived from the job's identity. */
static podcclResult_t env_addr(long size, pc_sockaddr *addr, char *text, size_t len) {
    const char *commid = getenv("PODCCL_COMM_ID"), *maddr = getenv("MASTER_ADDR"),
               *mport = getenv("MASTER_PORT");
    long port;
    if (commid && *commid) {
        snprintf(text, len, "%s", commid);
    } else if (maddr && *maddr && mport && *mport) {
        char *end;
        port = strtol(mport, &end, 10);
        if (*end || port < 1 || port > 65534)
            return pc_err(NULL, podcclInvalidArgument, "MASTER_PORT=%s is not a port in 1..65534",
                          mport);
        snprintf(text, len, "%s:%ld", maddr, port + 1);
    } else {
        if (!launcher_one_host(size))
            return pc_err(
                NULL, podcclInvalidArgument,
                "podcclCommInitFromEnv: the launcher does not say that all %ld ranks are on this "
                "host (no OMPI_COMM_WORLD_LOCAL_SIZE, MPI_LOCALNRANKS, SLURM_NNODES=1 or "
                "LOCAL_WORLD_SIZE equal to it): set PODCCL_COMM_ID=host:port (a host that runs "
                "rank 0)",
                size);
        /* The port only needs to differ between jobs on this host: the job's identity picks
         * it (it is not secret and not used as one). */
        const char *jobvars[] = {"PMIX_NAMESPACE", "OMPI_MCA_orte_hnp_uri", "PMI_PORT",
                                 "SLURM_JOB_ID",   "SLURM_STEP_ID",         "TORCHELASTIC_RUN_ID"};
        uint64_t h = PC_FNV_OFFSET;
        for (size_t i = 0; i < sizeof(jobvars) / sizeof(jobvars[0]); i++)
            h = pc_fnv1a_str(pc_fnv1a_str(h, jobvars[i]), getenv(jobvars[i]));
        snprintf(text, len, "127.0.0.1:%d", (int)(20000 + (h >> 8) % 30000));
    }
    return boot_parse_addr(text, addr);
}

podcclResult_t podcclCommInitFromEnv(podcclComm_t *comm, podcclConfig_t *config) {
    pc_log_init();
    PCCHECK(pc_param_check_all());
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
    if (size < 1 || size > BP_MAX_RANKS || rank < 0 || rank >= size)
        return pc_err(NULL, podcclInvalidArgument,
                      "podcclCommInitFromEnv: %s=%ld, %s=%ld are inconsistent", vars[which][0],
                      rank, vars[which][1], size);
    pc_id id = {.magic = PC_ID_MAGIC};
    char addr[300], src[800];
    PCCHECK(env_addr(size, &id.addr, addr, sizeof(addr)));
    PCCHECK(env_secret(id.secret, addr, src, sizeof(src)));
    pc_log(PC_LOG_INFO, PC_SUB_BOOT, "env init: rank %ld of %ld, rendezvous %s, secret from %s",
           rank, size, addr, src);
    double timeout = config && config->timeoutSec > 0 ? config->timeoutSec : env_timeout();
    if (rank == 0) {
        /* The root listens only where it was told to: that address must be this host's. */
        pc_id root = id;
        PCCHECK(boot_root_start_secret(&root, timeout));
    }
    podcclUniqueId uid;
    memset(&uid, 0, sizeof(uid));
    memcpy(uid.internal, &id, sizeof(id));
    podcclResult_t r = podcclCommInitRankConfig(comm, (int)size, uid, (int)rank, config);
    if (r == podcclRemoteError && strstr(pc_thread_err(), "secret")) {
        char why[400];
        snprintf(why, sizeof(why), "%s", pc_thread_err());
        pc_err(NULL, r,
               "%s (this rank's secret came from %s; every rank must use the same: "
               "docs/security.md)",
               why, src);
    }
    return r;
}
