/* Unit test of the topology-file parser (src/topo_file.c): each file is written to /tmp and
 * loaded against a host list written here. Successful loads are checked field by field (every
 * group_of_host entry, group name and link class); failed ones for -1, a zeroed result and a
 * message that starts with "PATH:LINE:" at the line where the fault is and names it. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "src/topo_file.h"

/* ---- Helpers ------------------------------------------------------------------------------- */

/* Writes text to a new file under /tmp; the caller unlinks and frees the returned path. */
static char *write_tmp(const char *text) {
    char *path = strdup("/tmp/test_topo_file_XXXXXX.json");
    assert_non_null(path);
    int fd = mkstemps(path, 5);
    assert_true(fd >= 0);
    size_t len = strlen(text);
    assert_int_equal(write(fd, text, len), (ssize_t)len);
    close(fd);
    return path;
}

static void load_ok(const char *json, const pc_topo_host *hosts, int n, pc_topo_file *f) {
    char err[512] = "";
    char *path = write_tmp(json);
    int rc = topo_file_load(path, hosts, n, f, err, sizeof(err));
    if (rc != 0) print_error("unexpected failure: %s\n", err);
    assert_int_equal(rc, 0);
    unlink(path);
    free(path);
}

static void assert_zeroed(const pc_topo_file *f) {
    static const pc_topo_file zero;
    assert_memory_equal(f, &zero, sizeof(zero));
}

/* Checks one level completely: name, link class, groups and the group of every host. */
static void check_level(const pc_topo_file_level *L, const char *name, double bw, double lat,
                        int memsem, int ngroups, const char *const *gnames, const int *goh,
                        int nhosts) {
    assert_string_equal(L->name, name);
    assert_true(L->link.bw_GBps == bw);
    assert_true(L->link.lat_us == lat);
    assert_int_equal(L->link.memsem, memsem);
    assert_int_equal(L->ngroups, ngroups);
    for (int g = 0; g < ngroups; g++) assert_string_equal(L->group_name[g], gnames[g]);
    for (int h = 0; h < nhosts; h++) {
        if (L->group_of_host[h] != goh[h])
            print_error("level %s, host %d: group %d, expected %d\n", name, h, L->group_of_host[h],
                        goh[h]);
        assert_int_equal(L->group_of_host[h], goh[h]);
    }
}

/* Four hosts by name, with addresses in 10.1.0.0/24 and no host id. */
static const pc_topo_host four[] = {{"h0", NULL, "10.1.0.1"},
                                    {"h1", NULL, "10.1.0.2"},
                                    {"h2", "", "10.1.0.3"},
                                    {"h3", NULL, "10.1.0.4"}};

static const int all0[96]; /* every host in group 0 */

/* ---- Successful loads ---------------------------------------------------------------------- */

static void test_two_cabinets_by_name(void **state) {
    (void)state;
    const char *json =
        "{\n"
        "  \"levels\": [\n"
        "    {\"name\": \"cabinet\", \"bandwidth_GBps\": 0.125, \"latency_us\": 50,\n"
        "     \"memory_semantics\": false,\n"
        "     \"groups\": [ {\"name\": \"cab0\", \"hosts\": [\"h0\", \"h1\"]},\n"
        "                 {\"name\": \"cab1\", \"hosts\": [\"h2\", \"h3\"]} ]},\n"
        "    {\"name\": \"cluster\", \"bandwidth_GBps\": 0.03125, \"latency_us\": 100}\n"
        "  ]\n"
        "}\n";
    pc_topo_file f;
    load_ok(json, four, 4, &f);
    assert_int_equal(f.nlevels, 2);
    assert_int_equal(f.has_host_link, 0);
    check_level(&f.lv[0], "cabinet", 0.125, 50, 0, 2, (const char *[]){"cab0", "cab1"},
                (int[]){0, 0, 1, 1}, 4);
    check_level(&f.lv[1], "cluster", 0.03125, 100, 0, 1, (const char *[]){"cluster"}, all0, 4);
    topo_file_free(&f);
    assert_zeroed(&f);
    topo_file_free(&f); /* twice is harmless */
    assert_zeroed(&f);

    /* Groups are numbered in file order, not in the order of the job's hosts. */
    const pc_topo_host mixed[] = {{"h3", NULL, NULL}, {"h0", NULL, NULL}, {"h2", NULL, NULL}};
    const char *rev =
        "{\"levels\": [{\"name\": \"cabinet\", \"bandwidth_GBps\": 1, \"latency_us\": 5,\n"
        "  \"groups\": [{\"name\": \"cabB\", \"hosts\": [\"h2\", \"h3\"]},\n"
        "             {\"name\": \"cabA\", \"hosts\": [\"h0\", \"h1\"]}]}]}";
    load_ok(rev, mixed, 3, &f);
    assert_int_equal(f.nlevels, 1);
    check_level(&f.lv[0], "cabinet", 1, 5, 0, 2, (const char *[]){"cabB", "cabA"}, (int[]){0, 1, 0},
                3);
    topo_file_free(&f);
}

/* Namespaces of one machine: one UTS name, told apart by PODCCL_HOSTID. */
static void test_by_hostid(void **state) {
    (void)state;
    const pc_topo_host ns[] = {
        {"box", "ns2", NULL}, {"box", "ns0", NULL}, {"box", "ns3", NULL}, {"box", "ns1", NULL}};
    const char *json = "{\"levels\": [\n"
                       " {\"name\": \"supernode\", \"bandwidth_GBps\": 50, \"latency_us\": 1.5,\n"
                       "  \"memory_semantics\": true,\n"
                       "  \"groups\": [{\"name\": \"sn0\", \"hosts\": [\"ns0\", \"ns1\"]},\n"
                       "             {\"name\": \"sn1\", \"hosts\": [\"ns2\", \"ns3\"]}]},\n"
                       " {\"name\": \"cluster\", \"bandwidth_GBps\": 3, \"latency_us\": 20}]}\n";
    pc_topo_file f;
    load_ok(json, ns, 4, &f);
    assert_int_equal(f.nlevels, 2);
    check_level(&f.lv[0], "supernode", 50, 1.5, 1, 2, (const char *[]){"sn0", "sn1"},
                (int[]){1, 0, 1, 0}, 4);
    check_level(&f.lv[1], "cluster", 3, 20, 0, 1, (const char *[]){"cluster"}, all0, 4);
    topo_file_free(&f);
}

static void test_by_address_and_cidr(void **state) {
    (void)state;
    const pc_topo_host hosts[] = {
        {"a0", NULL, "10.1.0.2"},   {"a1", NULL, "10.1.0.3"},
        {"a2", NULL, "10.1.1.200"}, {"a3", NULL, "::ffff:10.1.1.201"},
        {"a4", NULL, "fd00:1::5"},  {"a5", NULL, "fd00:1:0:0::6"},
        {"a6", NULL, "fd00:2::7"},  {"a7", NULL, "fe80::1%eth0"},
        {"a8", NULL, "10.1.0.20"},  {"a9", NULL, "10.1.0.33"},
    };
    const char *json =
        "{\"levels\": [{\"name\": \"net\", \"bandwidth_GBps\": 2.5, \"latency_us\": 3,\n"
        " \"groups\": [\n"
        "  {\"name\": \"v4a\", \"hosts\": [\"10.1.0.2\", \"10.1.0.3\"]},\n"
        "  {\"name\": \"other\", \"hosts\": [\"10.9.0.0/16\", \"fd00:9::/32\", \"nohost\"]},\n"
        "  {\"name\": \"v4b\", \"hosts\": [\"10.1.1.77/24\"]},\n"
        "  {\"name\": \"v6a\", \"hosts\": [\"fd00:1::/64\"]},\n"
        "  {\"name\": \"v6b\", \"hosts\": [\"fd00:2:0:0:0:0:0:7\"]},\n"
        "  {\"name\": \"ll\", \"hosts\": [\"fe80::/10\"]},\n"
        "  {\"name\": \"v4c\", \"hosts\": [\"10.1.0.16/28\"]},\n"
        "  {\"name\": \"v4d\", \"hosts\": [\"::ffff:10.1.0.32/123\"]}]}]}\n";
    pc_topo_file f;
    load_ok(json, hosts, 10, &f);
    assert_int_equal(f.nlevels, 1);
    check_level(&f.lv[0], "net", 2.5, 3, 0, 7,
                (const char *[]){"v4a", "v4b", "v6a", "v6b", "ll", "v4c", "v4d"},
                (int[]){0, 0, 1, 1, 2, 2, 3, 4, 5, 6}, 10);
    topo_file_free(&f);

    /* The example of docs/topology.md: names and a CIDR side by side. */
    const pc_topo_host doc[] = {{"h0", NULL, "192.168.0.1"},
                                {"h1", NULL, "192.168.0.2"},
                                {"h2", NULL, "10.1.0.7"},
                                {"h3", NULL, "10.1.0.9"}};
    const char *ex = "{\n"
                     "  \"host\": {\"bandwidth_GBps\": 8.0, \"latency_us\": 0.5},\n"
                     "  \"levels\": [\n"
                     "    {\"name\": \"cabinet\", \"bandwidth_GBps\": 0.125, \"latency_us\": 50, "
                     "\"memory_semantics\": false,\n"
                     "     \"groups\": [ {\"name\": \"cab0\", \"hosts\": [\"h0\", \"h1\"]},\n"
                     "                 {\"name\": \"cab1\", \"hosts\": [\"h2\", \"10.1.0.0/24\"]} "
                     "]},\n"
                     "    {\"name\": \"cluster\", \"bandwidth_GBps\": 0.03125, \"latency_us\": "
                     "100, \"memory_semantics\": false}\n"
                     "  ]\n"
                     "}\n";
    load_ok(ex, doc, 4, &f);
    assert_int_equal(f.nlevels, 2);
    assert_int_equal(f.has_host_link, 1);
    check_level(&f.lv[0], "cabinet", 0.125, 50, 0, 2, (const char *[]){"cab0", "cab1"},
                (int[]){0, 0, 1, 1}, 4);
    check_level(&f.lv[1], "cluster", 0.03125, 100, 0, 1, (const char *[]){"cluster"}, all0, 4);
    topo_file_free(&f);
}

/* Groups of 3, 1, 2 and 2 hosts, a group with no job host, unknown keys, three levels. */
static void test_uneven_groups(void **state) {
    (void)state;
    pc_topo_host h[8];
    char names[8][16];
    for (int i = 0; i < 8; i++) {
        snprintf(names[i], sizeof(names[i]), "n%d", i);
        h[i] = (pc_topo_host){names[i], NULL, NULL};
    }
    const char *json =
        "{\"version\": 2, \"comment\": \"unknown keys are ignored\",\n"
        " \"levels\": [\n"
        "  {\"name\": \"cabinet\", \"bandwidth_GBps\": 12.5, \"latency_us\": 2, \"rack_units\": "
        "[1],\n"
        "   \"groups\": [{\"name\": \"c0\", \"hosts\": [\"n0\", \"n1\", \"n2\"], \"pdu\": {}},\n"
        "              {\"name\": \"spare\", \"hosts\": [\"n8\", \"n9\"]},\n"
        "              {\"name\": \"c1\", \"hosts\": [\"n3\"]},\n"
        "              {\"name\": \"c2\", \"hosts\": [\"n4\", \"n5\"]},\n"
        "              {\"name\": \"c3\", \"hosts\": [\"n7\", \"n6\", \"n7\"]}]},\n"
        "  {\"name\": \"row\", \"bandwidth_GBps\": 5, \"latency_us\": 4,\n"
        "   \"groups\": [{\"name\": \"r0\", \"hosts\": [\"n0\", \"n1\", \"n2\", \"n3\"]},\n"
        "              {\"name\": \"r1\", \"hosts\": [\"n4\", \"n5\", \"n6\", \"n7\"]}]},\n"
        "  {\"name\": \"cluster\", \"bandwidth_GBps\": 1, \"latency_us\": 8}]}\n";
    pc_topo_file f;
    load_ok(json, h, 8, &f);
    assert_int_equal(f.nlevels, 3);
    check_level(&f.lv[0], "cabinet", 12.5, 2, 0, 4, (const char *[]){"c0", "c1", "c2", "c3"},
                (int[]){0, 0, 0, 1, 2, 2, 3, 3}, 8);
    check_level(&f.lv[1], "row", 5, 4, 0, 2, (const char *[]){"r0", "r1"},
                (int[]){0, 0, 0, 0, 1, 1, 1, 1}, 8);
    check_level(&f.lv[2], "cluster", 1, 8, 0, 1, (const char *[]){"cluster"}, all0, 8);
    topo_file_free(&f);
}

/* One level, no groups: every job host in one group named after the level; integers accepted. */
static void test_level_without_groups(void **state) {
    (void)state;
    const char *json = "{\"levels\": [{\"name\": \"pool\", \"bandwidth_GBps\": 12, "
                       "\"latency_us\": 0, \"memory_semantics\": true}]}";
    pc_topo_file f;
    load_ok(json, four, 4, &f);
    assert_int_equal(f.nlevels, 1);
    check_level(&f.lv[0], "pool", 12, 0, 1, 1, (const char *[]){"pool"}, all0, 4);
    topo_file_free(&f);

    /* No job hosts at all: nothing to place, no group holds one. */
    load_ok(json, NULL, 0, &f);
    assert_int_equal(f.nlevels, 1);
    assert_int_equal(f.lv[0].ngroups, 0);
    topo_file_free(&f);
}

/* A CloudMatrix-384-like file: supernodes of 48 nodes ("nodeNN") on the memory-semantic UB
 * fabric, RoCE above. The file describes two supernodes; the job uses 48 nodes. */
static char *cloudmatrix_json(void) {
    size_t cap = 16384, n = 0;
    char *s = malloc(cap);
    assert_non_null(s);
    n += (size_t)snprintf(s + n, cap - n,
                          "{\"host\": {\"bandwidth_GBps\": 196, \"latency_us\": 1},\n"
                          " \"levels\": [\n"
                          "  {\"name\": \"supernode\", \"bandwidth_GBps\": 196, \"latency_us\": "
                          "1.5, \"memory_semantics\": true,\n"
                          "   \"groups\": [\n");
    for (int sn = 0; sn < 2; sn++) {
        n += (size_t)snprintf(s + n, cap - n, "    {\"name\": \"sn%d\", \"hosts\": [", sn);
        for (int i = 0; i < 48; i++)
            n += (size_t)snprintf(s + n, cap - n, "%s\"node%02d\"", i ? ", " : "", sn * 48 + i);
        n += (size_t)snprintf(s + n, cap - n, "]}%s\n", sn ? "" : ",");
    }
    n += (size_t)snprintf(s + n, cap - n,
                          "  ]},\n"
                          "  {\"name\": \"cluster\", \"bandwidth_GBps\": 25, \"latency_us\": 10, "
                          "\"memory_semantics\": false}]}\n");
    assert_true(n < cap);
    return s;
}

static void check_cloudmatrix(const pc_topo_file *f, int first) {
    int goh[48];
    for (int i = 0; i < 48; i++) goh[i] = first + i >= 48 && first < 48;
    int two = first % 48 != 0;
    assert_int_equal(f->nlevels, 2);
    assert_int_equal(f->has_host_link, 1);
    assert_true(f->host_link.bw_GBps == 196 && f->host_link.lat_us == 1);
    assert_int_equal(f->host_link.memsem, 0);
    const char *names[] = {first < 48 ? "sn0" : "sn1", "sn1"};
    check_level(&f->lv[0], "supernode", 196, 1.5, 1, two ? 2 : 1, names, goh, 48);
    check_level(&f->lv[1], "cluster", 25, 10, 0, 1, (const char *[]){"cluster"}, all0, 48);
}

static void test_cloudmatrix(void **state) {
    (void)state;
    char *json = cloudmatrix_json();
    pc_topo_host h[48];
    char names[48][16];
    for (int first = 0; first <= 48; first += 24) { /* sn0, half of each, sn1 */
        for (int i = 0; i < 48; i++) {
            snprintf(names[i], sizeof(names[i]), "node%02d", first + i);
            h[i] = (pc_topo_host){names[i], NULL, NULL};
        }
        pc_topo_file f;
        load_ok(json, h, 48, &f);
        check_cloudmatrix(&f, first);
        topo_file_free(&f);
    }
    free(json);
}

static void test_host_object(void **state) {
    (void)state;
    const char *json = "{\"host\": {\"bandwidth_GBps\": 8.0, \"latency_us\": 0.5, \"numa\": 2},\n"
                       " \"levels\": [{\"name\": \"cluster\", \"bandwidth_GBps\": 0.03125, "
                       "\"latency_us\": 100}]}";
    pc_topo_file f;
    load_ok(json, four, 4, &f);
    assert_int_equal(f.has_host_link, 1);
    assert_true(f.host_link.bw_GBps == 8.0);
    assert_true(f.host_link.lat_us == 0.5);
    assert_int_equal(f.host_link.memsem, 0);
    assert_int_equal(f.nlevels, 1);
    check_level(&f.lv[0], "cluster", 0.03125, 100, 0, 1, (const char *[]){"cluster"}, all0, 4);
    topo_file_free(&f);

    pc_topo_file zero = {0};
    topo_file_free(&zero); /* a zeroed struct is fine */
    topo_file_free(NULL);
}

typedef struct {
    const char *path;
    int ok;
} thread_arg;

static void *load_thread(void *p) {
    thread_arg *a = p;
    pc_topo_host h[48];
    char names[48][16], err[256];
    for (int i = 0; i < 48; i++) {
        snprintf(names[i], sizeof(names[i]), "node%02d", 24 + i);
        h[i] = (pc_topo_host){names[i], NULL, NULL};
    }
    a->ok = 1;
    for (int it = 0; it < 50 && a->ok; it++) {
        pc_topo_file f;
        a->ok = topo_file_load(a->path, h, 48, &f, err, sizeof(err)) == 0 && f.lv[0].ngroups == 2 &&
                f.lv[0].group_of_host[23] == 0 && f.lv[0].group_of_host[24] == 1;
        topo_file_free(&f);
    }
    return NULL;
}

static void test_threads(void **state) {
    (void)state;
    char *json = cloudmatrix_json();
    char *path = write_tmp(json);
    pthread_t t[8];
    thread_arg a[8];
    for (int i = 0; i < 8; i++) {
        a[i] = (thread_arg){path, 0};
        assert_int_equal(pthread_create(&t[i], NULL, load_thread, &a[i]), 0);
    }
    for (int i = 0; i < 8; i++) {
        pthread_join(t[i], NULL);
        assert_true(a[i].ok);
    }
    unlink(path);
    free(path);
    free(json);
}

/* ---- Errors -------------------------------------------------------------------------------- */

typedef struct {
    const char *name;
    const char *json;
    int line;             /* where the message must point */
    const char *words[5]; /* must all appear in the message */
} err_case;

/* Lines 1-2 of most cases; the level under test starts on line 3. */
#define HEAD "{\n  \"levels\": [\n"
#define CAB(groups)                                                                                \
    "    {\"name\": \"cabinet\", \"bandwidth_GBps\": 0.125, \"latency_us\": 50,\n"                 \
    "     \"groups\": [" groups "]}"
#define CLUSTER "    {\"name\": \"cluster\", \"bandwidth_GBps\": 0.03125, \"latency_us\": 100}"
#define TAIL "  ]\n}\n"
#define G01 "{\"name\": \"cab0\", \"hosts\": [\"h0\", \"h1\"]}"
#define G23 "{\"name\": \"cab1\", \"hosts\": [\"h2\", \"h3\"]}"

static const err_case err_cases[] = {
    {"bad JSON: missing comma",
     HEAD "    {\"name\": \"cabinet\", \"bandwidth_GBps\": 0.125\n"
          "     \"latency_us\": 50}\n" TAIL,
     4,
     {"'}' expected", "latency_us"}},
    {"bad JSON: trailing comma", HEAD CLUSTER ",\n" TAIL, 4, {"unexpected token"}},
    {"bad JSON: duplicate key",
     HEAD "    {\"name\": \"cluster\", \"bandwidth_GBps\": 1, \"latency_us\": 1,\n"
          "     \"name\": \"again\"}\n" TAIL,
     4,
     {"duplicate", "name"}},
    {"bad JSON: empty file", "", 1, {"expected"}},
    {"top level not an object", "\n[1]\n", 2, {"top level", "object"}},
    {"levels missing",
     "{\n  \"host\": {\"bandwidth_GBps\": 8, \"latency_us\": 1}\n}\n",
     1,
     {"\"levels\"", "missing"}},
    {"levels empty", "{\n  \"x\": 1,\n  \"levels\": []\n}\n", 3, {"\"levels\"", "non-empty"}},
    {"levels not an array",
     "{\n\n  \"levels\": {\"name\": \"cluster\"}\n}\n",
     3,
     {"\"levels\"", "array"}},
    {"too many levels",
     HEAD "{\"name\": \"l0\", \"bandwidth_GBps\": 1, \"latency_us\": 1},\n"
          "{\"name\": \"l1\", \"bandwidth_GBps\": 1, \"latency_us\": 1},\n"
          "{\"name\": \"l2\", \"bandwidth_GBps\": 1, \"latency_us\": 1},\n"
          "{\"name\": \"l3\", \"bandwidth_GBps\": 1, \"latency_us\": 1},\n"
          "{\"name\": \"l4\", \"bandwidth_GBps\": 1, \"latency_us\": 1},\n"
          "{\"name\": \"l5\", \"bandwidth_GBps\": 1, \"latency_us\": 1},\n"
          "{\"name\": \"l6\", \"bandwidth_GBps\": 1, \"latency_us\": 1}\n" TAIL,
     9,
     {"7 levels", "at most 6"}},
    {"level not an object", HEAD CLUSTER ",\n    42\n" TAIL, 4, {"level 1 must be an object"}},
    {"level name missing",
     HEAD CLUSTER ",\n    {\"bandwidth_GBps\": 1,\n     \"latency_us\": 1}\n" TAIL,
     4,
     {"level 1: \"name\" is missing"}},
    {"level name not a string",
     HEAD "    {\"bandwidth_GBps\": 1,\n     \"name\": 7, \"latency_us\": 1}\n" TAIL,
     4,
     {"level 0", "\"name\" must be a non-empty string"}},
    {"level name too long",
     HEAD "    {\"bandwidth_GBps\": 1, \"latency_us\": 1,\n"
          "     \"name\": \"abcdefghijklmnopqrstuvwxyz012345\"}\n" TAIL,
     4,
     {"level 0", "\"name\"", "at most 31 bytes"}},
    {"level name repeated",
     HEAD CLUSTER ",\n" CLUSTER "\n" TAIL,
     4,
     {"level 1 (\"cluster\")", "level 0", "same name"}},
    {"bandwidth missing",
     HEAD CAB(G01 ", " G23) ",\n    {\"name\": \"cluster\",\n     \"latency_us\": 100}\n" TAIL,
     5,
     {"level 1 (\"cluster\")", "\"bandwidth_GBps\" is missing"}},
    {"bandwidth a string",
     HEAD CAB(G01 ", " G23) ",\n    {\"name\": \"cluster\", \"latency_us\": 100,\n"
                            "     \"bandwidth_GBps\": \"fast\"}\n" TAIL,
     6,
     {"level 1 (\"cluster\")", "\"bandwidth_GBps\" must be a number > 0"}},
    {"bandwidth zero",
     HEAD "    {\"name\": \"cluster\", \"latency_us\": 100,\n"
          "     \"bandwidth_GBps\": 0}\n" TAIL,
     4,
     {"level 0 (\"cluster\")", "\"bandwidth_GBps\" must be a number > 0"}},
    {"latency missing",
     HEAD "    {\"name\": \"cluster\", \"bandwidth_GBps\": 1}\n" TAIL,
     3,
     {"level 0 (\"cluster\")", "\"latency_us\" is missing"}},
    {"latency negative",
     HEAD "    {\"name\": \"cluster\", \"bandwidth_GBps\": 1,\n"
          "     \"latency_us\": -1}\n" TAIL,
     4,
     {"level 0 (\"cluster\")", "\"latency_us\" must be a number >= 0"}},
    {"latency a bool",
     HEAD "    {\"name\": \"cluster\", \"bandwidth_GBps\": 1,\n"
          "     \"latency_us\": true}\n" TAIL,
     4,
     {"\"latency_us\" must be a number >= 0"}},
    {"memory_semantics a string",
     HEAD "    {\"name\": \"cluster\", \"bandwidth_GBps\": 1, \"latency_us\": 1,\n"
          "     \"memory_semantics\": \"yes\"}\n" TAIL,
     4,
     {"level 0 (\"cluster\")", "\"memory_semantics\" must be true or false"}},
    {"groups not an array",
     HEAD "    {\"name\": \"cabinet\", \"bandwidth_GBps\": 1, \"latency_us\": 1,\n"
          "     \"groups\": {\"name\": \"cab0\"}}\n" TAIL,
     4,
     {"level 0 (\"cabinet\")", "\"groups\" must be an array"}},
    {"group not an object",
     HEAD CAB(G01 ",\n       \"h2\"") "\n" TAIL,
     5,
     {"level 0 (\"cabinet\"): group 1 must be an object"}},
    {"group name missing",
     HEAD CAB(G01 ",\n       {\"hosts\": [\"h2\", \"h3\"]}") "\n" TAIL,
     5,
     {"level 0 (\"cabinet\"): group 1: \"name\" is missing"}},
    {"group hosts missing",
     HEAD CAB("\n       {\"name\": \"cab0\"}, " G23) "\n" TAIL,
     5,
     {"level 0 (\"cabinet\"): group 0 (\"cab0\"): \"hosts\" is missing"}},
    {"group hosts empty",
     HEAD CAB(G01 ",\n       {\"name\": \"cab1\", \"hosts\": []}") "\n" TAIL,
     5,
     {"group 1 (\"cab1\")", "\"hosts\" must be a non-empty array of strings"}},
    {"group hosts not an array",
     HEAD CAB(G01 ",\n       {\"name\": \"cab1\", \"hosts\": \"h2\"}") "\n" TAIL,
     5,
     {"group 1 (\"cab1\")", "\"hosts\" must be a non-empty array of strings"}},
    {"group host a number",
     HEAD CAB(G01
              ", {\"name\": \"cab1\", \"hosts\": [\"h2\",\n                         3]}") "\n" TAIL,
     5,
     {"group 1 (\"cab1\")", "\"hosts\" must be a non-empty array of strings"}},
    {"group host a bad CIDR",
     HEAD CAB(G01 ", {\"name\": \"cab1\", \"hosts\": [\"h2\",\n \"10.1.0.0/33\"]}") "\n" TAIL,
     5,
     {"group 1 (\"cab1\")", "\"10.1.0.0/33\"", "not a host name, address or CIDR"}},
    {"host object not an object",
     "{\n  \"levels\": [" CLUSTER "],\n  \"host\": 8\n}\n",
     3,
     {"\"host\" must be an object"}},
    {"host bandwidth missing",
     "{\n  \"levels\": [" CLUSTER "],\n  \"host\": {\"latency_us\": 1}\n}\n",
     3,
     {"\"host\": \"bandwidth_GBps\" is missing"}},
    {"host latency missing",
     "{\n  \"levels\": [" CLUSTER "],\n  \"host\": {\"bandwidth_GBps\": 1}\n}\n",
     3,
     {"\"host\": \"latency_us\" is missing"}},
    {"host latency a string",
     "{\n  \"levels\": [" CLUSTER "],\n  \"host\": {\"bandwidth_GBps\": 1,\n"
     "           \"latency_us\": \"1\"}\n}\n",
     4,
     {"\"host\": \"latency_us\" must be a number >= 0"}},
    {"unknown host",
     HEAD CAB(G01 ", {\"name\": \"cab1\", \"hosts\": [\"h2\", \"h9\"]}") ",\n" CLUSTER "\n" TAIL,
     4,
     {"level \"cabinet\": host h3 (hostid -, address 10.1.0.4) is in none of its groups"}},
    {"host in two groups",
     HEAD CAB(G01 ",\n       {\"name\": \"cab1\", \"hosts\": [\"h2\", \"h3\",\n"
                  "                                   \"10.1.0.2/31\"]}") "\n" TAIL,
     6,
     {"level \"cabinet\"", "host h1 (hostid -, address 10.1.0.2)", "two groups",
      "\"cab0\" and \"cab1\""}},
    {"fault after strings with escapes and brackets",
     HEAD "    {\"note\": \"a \\\"quoted\\\" ], {\\\\\", \"name\": \"l0\", \"bandwidth_GBps\": 1,\n"
          "     \"latency_us\": 1},\n"
          "    {\"name\": \"l1\", \"x\": [\"]}\\\"\", {\"y\": \"[\"}], \"latency_us\": 1,\n"
          "     \"bandwidth_GBps\": -2}\n" TAIL,
     6,
     {"level 1 (\"l1\")", "\"bandwidth_GBps\" must be a number > 0"}},
    {"nesting violated",
     HEAD CAB(G01
              ", " G23) ",\n"
                        "    {\"name\": \"pod\", \"bandwidth_GBps\": 0.1, \"latency_us\": 60,\n"
                        "     \"groups\": [{\"name\": \"p0\", \"hosts\": [\"h0\", \"h2\"]},\n"
                        "                {\"name\": \"p1\", \"hosts\": [\"h1\", \"h3\"]}]}\n" TAIL,
     5,
     {"level \"pod\"", "h0 (hostid -, address 10.1.0.1) and h1 (hostid -, address 10.1.0.2)",
      "\"cab0\" of level \"cabinet\"", "\"p0\" and \"p1\"", "nest"}},
    {"nesting violated under a level without groups",
     HEAD CLUSTER ",\n" CAB(G01 ", " G23) "\n" TAIL,
     4,
     {"level \"cabinet\"", "h0 (hostid -, address 10.1.0.1) and h2 (hostid -, address 10.1.0.3)",
      "\"cluster\" of level \"cluster\"", "\"cab0\" and \"cab1\""}},
};
#define NERR (sizeof(err_cases) / sizeof(err_cases[0]))

static void run_err_case(void **state) {
    const err_case *c = *state;
    char err[1024] = "", prefix[128];
    char *path = write_tmp(c->json);
    pc_topo_file f;
    memset(&f, 0xa5, sizeof(f));
    int rc = topo_file_load(path, four, 4, &f, err, sizeof(err));
    print_message("    %s\n", err);
    assert_int_equal(rc, -1);
    assert_zeroed(&f);
    snprintf(prefix, sizeof(prefix), "%s:%d:", path, c->line);
    if (strncmp(err, prefix, strlen(prefix)))
        print_error("message does not start with %s\n", prefix);
    assert_true(strncmp(err, prefix, strlen(prefix)) == 0);
    for (int i = 0; i < 5 && c->words[i]; i++) {
        if (!strstr(err, c->words[i])) print_error("missing: %s\n", c->words[i]);
        assert_non_null(strstr(err, c->words[i]));
    }
    unlink(path);
    free(path);
}

static void test_unreadable(void **state) {
    (void)state;
    char err[512];
    pc_topo_file f;
    memset(&f, 0xa5, sizeof(f));
    const char *path = "/tmp/test_topo_file_does_not_exist.json";
    assert_int_equal(topo_file_load(path, four, 4, &f, err, sizeof(err)), -1);
    assert_zeroed(&f);
    assert_string_equal(err, "/tmp/test_topo_file_does_not_exist.json: cannot open: No such file "
                             "or directory");

    memset(&f, 0xa5, sizeof(f));
    assert_int_equal(topo_file_load("/tmp", four, 4, &f, err, sizeof(err)), -1);
    assert_zeroed(&f);
    assert_string_equal(err, "/tmp: cannot read: Is a directory");

    /* A short buffer truncates the message, nothing more. */
    char small[8];
    assert_int_equal(topo_file_load(path, four, 4, &f, small, sizeof(small)), -1);
    assert_string_equal(small, "/tmp/te");
}

int main(void) {
    struct CMUnitTest tests[9 + NERR] = {
        cmocka_unit_test(test_two_cabinets_by_name), cmocka_unit_test(test_by_hostid),
        cmocka_unit_test(test_by_address_and_cidr),  cmocka_unit_test(test_uneven_groups),
        cmocka_unit_test(test_level_without_groups), cmocka_unit_test(test_cloudmatrix),
        cmocka_unit_test(test_host_object),          cmocka_unit_test(test_threads),
        cmocka_unit_test(test_unreadable),
    };
    for (size_t i = 0; i < NERR; i++)
        tests[9 + i] =
            (struct CMUnitTest){err_cases[i].name, run_err_case, NULL, NULL, (void *)&err_cases[i]};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
