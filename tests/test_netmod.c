/* Network transport modules (docs/multihost.md, include/podccl_net.h): libpodccl.so never loads
 * libfabric or libibverbs by itself; a job on one host maps neither; a job across "hosts"
 * (PODCCL_HOSTID) loads the ofi module, with IPATH_NO_BACKTRACE/HFI_NO_BACKTRACE set before it
 * unless the user set them; PODCCL_NET_PLUGIN loads a module by path, and refuses one of another
 * ABI version or one that does not exist, with a message, on every rank and without a hang.
 * Run from the build directory (make check), or with top_builddir set. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

static char builddir[512];

/* 1 if this process has mapped a file whose name contains `name`. */
static int mapped(const char *name) {
    FILE *f = fopen("/proc/self/maps", "r");
    char line[1024];
    int found = 0;
    while (f && !found && fgets(line, sizeof(line), f)) found = strstr(line, name) != NULL;
    if (f) fclose(f);
    return found;
}

typedef struct {
    int hosts;          /* 1: each rank its own PODCCL_HOSTID (the network transport) */
    const char *net;    /* PODCCL_NET, or NULL */
    const char *plugin; /* PODCCL_NET_PLUGIN, or NULL */
    const char *ipath;  /* IPATH_NO_BACKTRACE set by the "user", or NULL: unset */
    podcclResult_t want;
    const char *want_text; /* in podcclGetLastError when init must fail */
} job_t;

static int body(podcclComm_t unused, int rank, int nranks, void *arg) {
    const job_t *j = arg;
    (void)unused;
    char host[32];
    snprintf(host, sizeof(host), "netmod-%d", rank);
    if (j->hosts) setenv("PODCCL_HOSTID", host, 1);
    if (j->net) setenv("PODCCL_NET", j->net, 1);
    if (j->plugin) setenv("PODCCL_NET_PLUGIN", j->plugin, 1);
    if (j->ipath) setenv("IPATH_NO_BACKTRACE", j->ipath, 1);
    podcclComm_t comm = NULL;
    podcclResult_t r = podcclCommInitRank(&comm, nranks, harness_unique_id(), rank);
    harness_ctx c = {.coll = "init", .rank = rank, .op = -1, .root = -1};
    if (j->want != podcclSuccess) {
        /* Its own error, or the same cause told by a rank that failed first. */
        if (r != j->want && r != podcclRemoteError) return harness_expect_rc(&c, r, j->want, NULL);
        if (!strstr(podcclGetLastError(NULL), j->want_text)) {
            harness_fail(&c, "error does not say '%s': %s", j->want_text, podcclGetLastError(NULL));
            return 1;
        }
        return 0;
    }
    if (harness_expect_rc(&c, r, podcclSuccess, NULL)) return 1;
    int bad = harness_allreduce_ok(comm, rank, nranks, 4099);
    const char *ipath = getenv("IPATH_NO_BACKTRACE"), *hfi = getenv("HFI_NO_BACKTRACE");
    if (!j->hosts) { /* one host: no network library may be in this process */
        if (mapped("libfabric") || mapped("libibverbs") || mapped("podccl-net-"))
            harness_fail(&c, "a job on one host loaded a network library"), bad = 1;
        if (ipath || hfi) harness_fail(&c, "IPATH/HFI_NO_BACKTRACE set with no module"), bad = 1;
    } else {
        if (!mapped("podccl-net-ofi") || !mapped("libfabric"))
            harness_fail(&c, "a job across hosts did not load the ofi module"), bad = 1;
        const char *want = j->ipath ? j->ipath : "1";
        if (!ipath || strcmp(ipath, want) != 0 || !hfi || strcmp(hfi, "1") != 0)
            harness_fail(&c, "IPATH_NO_BACKTRACE=%s HFI_NO_BACKTRACE=%s, expected %s and 1",
                         ipath ? ipath : "(unset)", hfi ? hfi : "(unset)", want),
                bad = 1;
    }
    podcclCommDestroy(comm);
    harness_comm_freed();
    return bad;
}

static int run(const char *what, int nranks, const job_t *j) {
    harness_opts o = {.no_comm = 1, .timeout_sec = 120};
    int rc = harness_run_opts(nranks, body, (void *)j, &o);
    printf("%s: %s\n", rc ? "FAIL" : "ok", what);
    return rc != 0;
}

int main(void) {
    const char *b = getenv("top_builddir");
    snprintf(builddir, sizeof(builddir), "%s", b && *b ? b : ".");
    /* make check sets both; the point here is that podccl does not need them. */
    unsetenv("IPATH_NO_BACKTRACE");
    unsetenv("HFI_NO_BACKTRACE");
    int fail = 0;
    fail += run("one host: no network library loaded", 3, &(job_t){.hosts = 0});
#ifdef HAVE_OFI
    char path[700];
    fail += run("three hosts over ofi: the module loaded, PSM quieted before it", 3,
                &(job_t){.hosts = 1, .net = "ofi"});
    fail += run("the user's IPATH_NO_BACKTRACE=0 is kept", 2,
                &(job_t){.hosts = 1, .net = "ofi", .ipath = "0"});
    snprintf(path, sizeof(path), "%s/.libs/podccl-net-ofi.so", builddir);
    fail += run("PODCCL_NET_PLUGIN by path", 2, &(job_t){.hosts = 1, .plugin = path});
    snprintf(path, sizeof(path), "%s/tests/.libs/netmod_badabi.so", builddir);
    fail +=
        run("a module of another ABI version is refused", 2,
            &(job_t){
                .hosts = 1, .plugin = path, .want = podcclInvalidArgument, .want_text = "ABI 999"});
    fail += run("a module that does not exist", 2,
                &(job_t){.hosts = 1,
                         .plugin = "nosuchnet",
                         .want = podcclSystemError,
                         .want_text = "podccl-net-nosuchnet.so not found"});
#else
    printf("SKIP (parts): this build has no libfabric; the module tests need the ofi module\n");
#endif
    printf("test_netmod: %s\n", fail ? "FAIL" : "PASS");
    return fail ? 1 : 0;
}
