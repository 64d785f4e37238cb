/* Fuzz target: the topology file parser (src/topo_file.c, PODCCL_TOPO_FILE). The input is the
 * file's text, as is, so that corpus files are plain topology files; it reaches the parser
 * through a memfd named by /proc/self/fd/N (no disk). Each input is loaded three times: against
 * a job of 7 hosts matched by every means (name, host id, IPv4, IPv6 with a zone, IPv4-mapped,
 * a host without a name or address) with room for the message, against 2 of them with a 9-byte
 * message buffer (truncation) and against an empty job.
 *
 * Beyond "no crash, no leak", every result is checked against topo_file.h's promises: on
 * success, levels within bounds and nesting, names terminated, every host in one valid group,
 * link classes in range; on failure, -1, a zeroed result and a message that starts with the
 * file's name. A broken promise aborts. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "src/topo_file.h"

static const pc_topo_host hosts[] = {
    {"h0", NULL, "10.1.0.1"},
    {"h1", "rackA-1", "::ffff:10.1.0.2"},
    {"h2", "", "fd00:1::3"},
    {"h3", NULL, "fe80::4%eth0"},
    {"h4", "id4", NULL},
    {NULL, "id5", "10.2.0.5"},
    {"h6", NULL, "not-an-address"},
};
#define NHOSTS ((int)(sizeof(hosts) / sizeof(hosts[0])))

static void check(int cond, const char *what, const char *path) {
    if (cond) return;
    fprintf(stderr, "fuzz_topo_file: %s: broken promise: %s\n", path, what);
    abort();
}

static int terminated(const char *s, size_t cap) {
    return memchr(s, 0, cap) != NULL;
}

static void check_ok(const pc_topo_file *f, int n, const char *path) {
    check(f->nlevels >= 1 && f->nlevels <= PC_TOPO_MAX_FILE_LEVELS, "level count", path);
    check(!f->has_host_link || (f->host_link.bw_GBps > 0 && f->host_link.lat_us >= 0),
          "host link class", path);
    for (int i = 0; i < f->nlevels; i++) {
        const pc_topo_file_level *L = &f->lv[i];
        check(terminated(L->name, sizeof(L->name)) && L->name[0], "level name", path);
        check(L->link.bw_GBps > 0 && L->link.lat_us >= 0 && (L->link.memsem & ~1) == 0,
              "level link class", path);
        check(n == 0 ? L->ngroups == 0 : L->ngroups >= 1 && L->ngroups <= n, "group count", path);
        for (int g = 0; g < L->ngroups; g++)
            check(terminated(L->group_name[g], PC_TOPO_NAME_BYTES) && L->group_name[g][0],
                  "group name", path);
        for (int h = 0; h < n; h++)
            check(L->group_of_host[h] >= 0 && L->group_of_host[h] < L->ngroups, "group of host",
                  path);
        for (int h = 0; i > 0 && h < n; h++) /* nesting: same group below, same group here */
            for (int o = 0; o < h; o++)
                if (f->lv[i - 1].group_of_host[h] == f->lv[i - 1].group_of_host[o])
                    check(L->group_of_host[h] == L->group_of_host[o], "levels nest", path);
    }
    for (int i = f->nlevels; i < PC_TOPO_MAX_FILE_LEVELS; i++)
        check(!f->lv[i].group_of_host && !f->lv[i].group_name, "unused level", path);
}

static void load_once(const char *path, int n, size_t errlen) {
    static const pc_topo_file zero;
    pc_topo_file f;
    char *err = malloc(errlen); /* exactly errlen: ASan sees a write past it */
    if (!err) abort();
    memset(err, 'x', errlen);
    int rc = topo_file_load(path, hosts, n, &f, err, errlen);
    check(terminated(err, errlen), "message terminated", path);
    if (rc == 0) {
        check_ok(&f, n, path);
    } else {
        check(rc == -1, "return value", path);
        check(!memcmp(&f, &zero, sizeof(f)), "zeroed on failure", path);
        size_t plen = strlen(path) < errlen - 1 ? strlen(path) : errlen - 1;
        check(err[0] && !strncmp(err, path, plen), "message names the file", path);
    }
    topo_file_free(&f);
    topo_file_free(&f); /* twice is allowed */
    free(err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static int fd = -1;
    static char path[64];
    if (fd < 0) {
        fd = memfd_create("fuzz_topo_file", 0);
        if (fd < 0) {
            perror("memfd_create");
            abort();
        }
        snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    }
    if (ftruncate(fd, 0) || (size && pwrite(fd, data, size, 0) != (ssize_t)size)) {
        perror("fuzz_topo_file: memfd");
        abort();
    }
    load_once(path, NHOSTS, 512);
    load_once(path, 2, 9);
    load_once(path, 0, 64);
    return 0;
}
