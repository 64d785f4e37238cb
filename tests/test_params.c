/* Environment parameters (issue 9 item 14): every type's accepted and refused values through
 * pc_param_validate; init (podcclGetUniqueId, podcclCommInitRank, podcclCommInitFromEnv) refusing a
 * bad value with podcclInvalidArgument and a message naming variable, value and range; the
 * extremes of every allowed range working in a 2-rank job; and the warning for unknown
 * PODCCL_* names. The 2-rank jobs fork, so they run first, before this process has threads. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"
#include "src/core.h"

static char log_path[64];

/* ---- pc_param_validate: one value of one parameter ---------------------------------------- */

static int valid(const char *name, const char *value) {
    char err[256] = "unchanged";
    int r = pc_param_validate(name, value, err, sizeof(err));
    if (r == 0 && err[0]) {
        print_error("%s=%s: valid but the message is '%s'\n", name, value, err);
        return -2;
    }
    if (r != 0 && !strstr(err, name)) {
        print_error("%s=%s: the message '%s' does not name the variable\n", name, value, err);
        return -2;
    }
    return r;
}
#define OK(name, value) assert_int_equal(valid(name, value), 0)
#define BAD(name, value) assert_int_equal(valid(name, value), -1)

/* The message names the variable, the value and what is allowed. */
static void message_has(const char *name, const char *value, const char *want) {
    char err[256];
    assert_int_equal(pc_param_validate(name, value, err, sizeof(err)), -1);
    if (!strstr(err, want)) print_error("message '%s' lacks '%s'\n", err, want);
    assert_non_null(strstr(err, want));
}

static void test_integers(void **state) {
    (void)state;
    OK("PODCCL_TIMEOUT", "300");
    OK("PODCCL_TIMEOUT", "1");
    OK("PODCCL_TIMEOUT", "86400");
    BAD("PODCCL_TIMEOUT", "0");
    BAD("PODCCL_TIMEOUT", "-1");
    BAD("PODCCL_TIMEOUT", "86401");
    BAD("PODCCL_TIMEOUT", "010"); /* C reads 8 */
    BAD("PODCCL_TIMEOUT", "0x4"); /* C reads 4 */
    BAD("PODCCL_TIMEOUT", "00");
    BAD("PODCCL_TIMEOUT", "");
    BAD("PODCCL_TIMEOUT", "-");
    BAD("PODCCL_TIMEOUT", " 5");
    BAD("PODCCL_TIMEOUT", "5 ");
    BAD("PODCCL_TIMEOUT", "+5");
    BAD("PODCCL_TIMEOUT", "5s");
    BAD("PODCCL_TIMEOUT", "1e3");
    BAD("PODCCL_TIMEOUT", "9223372036854775807");  /* 2^63 - 1: parses, out of range */
    BAD("PODCCL_TIMEOUT", "9223372036854775808");  /* 2^63: overflow */
    BAD("PODCCL_TIMEOUT", "-9223372036854775808"); /* -2^63: parses, out of range */
    BAD("PODCCL_TIMEOUT", "-9223372036854775809");
    BAD("PODCCL_TIMEOUT", "18446744073709551621"); /* 2^64 + 5: wraps to 5 in 64 bits */
    message_has("PODCCL_TIMEOUT", "0", "PODCCL_TIMEOUT=0");
    message_has("PODCCL_TIMEOUT", "0", "1..86400");
    message_has("PODCCL_TIMEOUT", "010", "leading zero");
    message_has("PODCCL_TIMEOUT", "9223372036854775808", "64 bits");
    /* 0 and negative values where the range has them */
    OK("PODCCL_NET_NAP_US", "-1");
    OK("PODCCL_NET_NAP_US", "0");
    BAD("PODCCL_NET_NAP_US", "-2");
    OK("PODCCL_IB_GID_INDEX", "-1");
    OK("PODCCL_IB_GID_INDEX", "255");
    BAD("PODCCL_IB_GID_INDEX", "256");
    OK("PODCCL_SHM_DIRECT_BYTES", "0");
    OK("PODCCL_SHM_DIRECT_BYTES", "67108864");
    BAD("PODCCL_SHM_DIRECT_BYTES", "67108865");
    BAD("PODCCL_SHM_DIRECT_BYTES", "-1");
    BAD("PODCCL_SHM_DIRECT_BYTES", "9223372036854775807");
    OK("PODCCL_CHUNK_BYTES", "4096");
    OK("PODCCL_CHUNK_BYTES", "1073741824");
    BAD("PODCCL_CHUNK_BYTES", "4095");
    BAD("PODCCL_CHUNK_BYTES", "-9223372036854775808");
    OK("PODCCL_TRACE_OPS", "1");
    OK("PODCCL_TRACE_OPS", "256");
    OK("PODCCL_TRACE_OPS", "1048576");
    BAD("PODCCL_TRACE_OPS", "0");
    BAD("PODCCL_TRACE_OPS", "1048577");
    OK("PODCCL_RANK", "0");
    BAD("PODCCL_RANK", "-1");
    BAD("PODCCL_NRANKS", "0");
}

static void test_int_or_auto(void **state) {
    (void)state;
    OK("PODCCL_SHM_SPIN", "auto");
    OK("PODCCL_SHM_SPIN", "AUTO");
    OK("PODCCL_SHM_SPIN", "0");
    OK("PODCCL_SHM_SPIN", "1000000");
    BAD("PODCCL_SHM_SPIN", "-1");         /* was a spin of 2^32 polls */
    BAD("PODCCL_SHM_SPIN", "2147483647"); /* never reached the dead-peer check */
    BAD("PODCCL_SHM_SPIN", "1000001");
    BAD("PODCCL_SHM_SPIN", "");
    BAD("PODCCL_SHM_SPIN", "autox");
    BAD("PODCCL_SHM_SPIN", "auto ");
    message_has("PODCCL_SHM_SPIN", "-1", "auto or integer 0..1000000");
    OK("PODCCL_NET_SEND_DEPTH", "auto");
    OK("PODCCL_NET_SEND_DEPTH", "1");
    BAD("PODCCL_NET_SEND_DEPTH", "0");
}

static void test_enums(void **state) {
    (void)state;
    OK("PODCCL_DEBUG", "INFO");
    OK("PODCCL_DEBUG", "info");
    OK("PODCCL_DEBUG", "NONE");
    OK("PODCCL_DEBUG", "TRACE");
    BAD("PODCCL_DEBUG", "VERBOSE");
    BAD("PODCCL_DEBUG", "INF");
    BAD("PODCCL_DEBUG", "INFOS");
    BAD("PODCCL_DEBUG", " INFO");
    BAD("PODCCL_DEBUG", "");
    BAD("PODCCL_DEBUG", "NONE|WARN");
    message_has("PODCCL_DEBUG", "VERBOSE", "one of NONE, WARN, INFO, TRACE");
    OK("PODCCL_SHM_CMA", "auto");
    OK("PODCCL_SHM_CMA", "0");
    OK("PODCCL_SHM_CMA", "1");
    BAD("PODCCL_SHM_CMA", "2");
    BAD("PODCCL_SHM_CMA", "-1");
    BAD("PODCCL_SHM_CMA", "yes");
    OK("PODCCL_NET", "ib");
    OK("PODCCL_NET", "ofi");
    BAD("PODCCL_NET", "bogus");
    BAD("PODCCL_NET", "i");
}

static void test_strings(void **state) {
    char s[1100];
    (void)state;
    OK("PODCCL_ALGO", "allreduce:ring,allgather:bruck");
    OK("PODCCL_ALGO", "");                        /* text: empty is unset */
    OK("PODCCL_TOPO_FILE", "/no/such/file.json"); /* syntax only; the reader opens it */
    OK("PODCCL_SECRET", "s3cr3t with spaces");
    OK("PODCCL_SECRET_FILE", "~/.config/podccl/secret");
    OK("PODCCL_TRACE_DIR", "/tmp/trace");
    OK("PODCCL_SOCKET_IFNAME", "^docker,lo");
    memset(s, 'a', sizeof(s));
    s[1024] = 0;
    OK("PODCCL_ALGO", s);
    s[1024] = 'a', s[1025] = 0;
    BAD("PODCCL_ALGO", s);
    message_has("PODCCL_ALGO", s, "up to 1024 bytes");
    s[63] = 0; /* topo.c keeps 63 bytes of a host id */
    OK("PODCCL_HOSTID", s);
    s[63] = 'a', s[64] = 0;
    BAD("PODCCL_HOSTID", s);
}

static void test_hostport(void **state) {
    char s[300];
    (void)state;
    OK("PODCCL_COMM_ID", "127.0.0.1:29500");
    OK("PODCCL_COMM_ID", "node0:1");
    OK("PODCCL_COMM_ID", "h:65535");
    OK("PODCCL_COMM_ID", "[::1]:5000");
    OK("PODCCL_COMM_ID", "::1:5000");
    OK("PODCCL_COMM_ID", "no-such-host.invalid:5000"); /* no name resolution */
    BAD("PODCCL_COMM_ID", "127.0.0.1:99999");          /* was port 34463 */
    BAD("PODCCL_COMM_ID", "127.0.0.1:65536");
    BAD("PODCCL_COMM_ID", "127.0.0.1:0");
    BAD("PODCCL_COMM_ID", "127.0.0.1:-1");
    BAD("PODCCL_COMM_ID", "127.0.0.1:010");
    BAD("PODCCL_COMM_ID", "127.0.0.1:0x10");
    BAD("PODCCL_COMM_ID", "127.0.0.1:9223372036854775808");
    BAD("PODCCL_COMM_ID", "127.0.0.1:");
    BAD("PODCCL_COMM_ID", "127.0.0.1");
    BAD("PODCCL_COMM_ID", ":5000");
    BAD("PODCCL_COMM_ID", "[]:5000");
    BAD("PODCCL_COMM_ID", "[::1:5000");
    BAD("PODCCL_COMM_ID", "");
    message_has("PODCCL_COMM_ID", "127.0.0.1:99999", "PODCCL_COMM_ID=127.0.0.1:99999");
    message_has("PODCCL_COMM_ID", "127.0.0.1:99999", "port 1..65535");
    memset(s, 'h', sizeof(s));
    memcpy(s + 255, ":80", 4);
    OK("PODCCL_COMM_ID", s);
    memcpy(s + 255, "h:80", 5);
    BAD("PODCCL_COMM_ID", s);
}

static void test_validate_edges(void **state) {
    char err[8];
    (void)state;
    assert_int_equal(pc_param_validate("PODCCL_TIMOUT", "5", NULL, 0), -1); /* unknown */
    assert_int_equal(pc_param_validate("TIMEOUT", "5", NULL, 0), -1);
    assert_int_equal(pc_param_validate(NULL, "5", NULL, 0), -1);
    assert_int_equal(pc_param_validate("PODCCL_TIMEOUT", NULL, NULL, 0), -1);
    assert_int_equal(pc_param_validate("PODCCL_TIMEOUT", "5", NULL, 0), 0);
    memset(err, 'x', sizeof(err)); /* a short buffer: cut, terminated */
    assert_int_equal(pc_param_validate("PODCCL_TIMEOUT", "0", err, sizeof(err)), -1);
    assert_int_equal(strlen(err), sizeof(err) - 1);
    /* a long value is cut in the message */
    char v[4000], msg[512];
    memset(v, '9', sizeof(v) - 1);
    v[sizeof(v) - 1] = 0;
    assert_int_equal(pc_param_validate("PODCCL_TIMEOUT", v, msg, sizeof(msg)), -1);
    assert_true(strlen(msg) < 300);
}

/* ---- the environment at init --------------------------------------------------------------- */

static const char *const bad_values[][2] = {
    {"PODCCL_TIMEOUT", "0"},
    {"PODCCL_TIMEOUT", "-1"},
    {"PODCCL_TIMEOUT", "010"},
    {"PODCCL_TIMEOUT", "0x4"},
    {"PODCCL_SHM_SPIN", "-1"},
    {"PODCCL_SHM_SPIN", "2147483647"},
    {"PODCCL_CHUNK_BYTES", "9223372036854775807"},
    {"PODCCL_CHUNK_BYTES", "-4096"},
    {"PODCCL_SHM_DIRECT_BYTES", "9223372036854775807"},
    {"PODCCL_SHM_DIRECT_BYTES", "-1"},
    {"PODCCL_COMM_ID", "127.0.0.1:99999"},
    {"PODCCL_DEBUG", "LOUD"},
    {"PODCCL_RANK", "01"},
};

/* rc is InvalidArgument and the last error names name=value and what is allowed. */
static int refused(podcclResult_t rc, const char *call, const char *name, const char *value) {
    char want[128];
    snprintf(want, sizeof(want), "%s=%s ", name, value);
    const char *msg = podcclGetLastError(NULL);
    if (rc == podcclInvalidArgument && strstr(msg, want) && strstr(msg, "allowed: ")) return 0;
    print_error("%s with %s=%s: returned %d, message '%s'\n", call, name, value, (int)rc, msg);
    return 1;
}

static void test_init_refuses(void **state) {
    podcclUniqueId id;
    podcclComm_t c = NULL;
    (void)state;
    assert_int_equal(pc_param_check_all(), podcclSuccess);
    assert_int_equal(podcclGetUniqueId(&id), podcclSuccess); /* clean environment */
    for (size_t i = 0; i < sizeof(bad_values) / sizeof(bad_values[0]); i++) {
        const char *n = bad_values[i][0], *v = bad_values[i][1];
        podcclUniqueId other;
        setenv(n, v, 1);
        assert_int_equal(refused(podcclGetUniqueId(&other), "podcclGetUniqueId", n, v), 0);
        assert_int_equal(refused(podcclCommInitRank(&c, 1, id, 0), "podcclCommInitRank", n, v), 0);
        assert_null(c);
        if (strcmp(n, "PODCCL_RANK") != 0) setenv("PODCCL_RANK", "0", 1);
        setenv("PODCCL_NRANKS", "1", 1);
        assert_int_equal(refused(podcclCommInitFromEnv(&c, NULL), "podcclCommInitFromEnv", n, v),
                         0);
        assert_null(c);
        unsetenv("PODCCL_RANK");
        unsetenv("PODCCL_NRANKS");
        unsetenv(n);
    }
    /* two at once: both named */
    setenv("PODCCL_SHM_SLOTS", "1", 1);
    setenv("PODCCL_MAX_INFLIGHT", "1000", 1);
    assert_int_equal(podcclCommInitRank(&c, 1, id, 0), podcclInvalidArgument);
    assert_non_null(strstr(podcclGetLastError(NULL), "PODCCL_SHM_SLOTS=1 "));
    assert_non_null(strstr(podcclGetLastError(NULL), "PODCCL_MAX_INFLIGHT=1000 "));
    unsetenv("PODCCL_SHM_SLOTS");
    unsetenv("PODCCL_MAX_INFLIGHT");
    /* empty counts as unset; the refused calls above left the id usable */
    setenv("PODCCL_TIMEOUT", "", 1);
    assert_int_equal(podcclCommInitRank(&c, 1, id, 0), podcclSuccess);
    unsetenv("PODCCL_TIMEOUT");
    assert_int_equal(harness_allreduce_ok(c, 0, 1, 1000), 0);
    assert_int_equal(podcclCommDestroy(c), podcclSuccess);
}

/* A value changed after init's check is not trusted: the reader falls back to the default. */
static void test_reader_fallback(void **state) {
    (void)state;
    setenv("PODCCL_CHUNK_BYTES", "-1", 1);
    assert_int_equal(pc_param_int("PODCCL_CHUNK_BYTES"), 131072);
    setenv("PODCCL_CHUNK_BYTES", "010", 1);
    assert_int_equal(pc_param_int("PODCCL_CHUNK_BYTES"), 131072);
    setenv("PODCCL_CHUNK_BYTES", "8192", 1);
    assert_int_equal(pc_param_int("PODCCL_CHUNK_BYTES"), 8192);
    unsetenv("PODCCL_CHUNK_BYTES");
    assert_int_equal(pc_param_int("PODCCL_CHUNK_BYTES"), 131072);
    assert_int_equal(pc_param_int("PODCCL_NET_NAP_US"), 200);
    assert_int_equal(pc_param_int("PODCCL_IB_GID_INDEX"), -1);
}

/* The first library call warned (once) about the typo set in main, naming the closest known
 * parameter, and not about a variable of podccl's own tools. */
static void test_unknown_warned(void **state) {
    (void)state;
    FILE *f = fopen(log_path, "r");
    assert_non_null(f);
    char line[1024];
    int typo = 0, tool = 0;
    while (fgets(line, sizeof(line), f)) {
        if (strstr(line, "PODCCL_TIMOUT is not a podccl parameter") &&
            strstr(line, "closest known: PODCCL_TIMEOUT"))
            typo++;
        if (strstr(line, "PODCCL_BENCH_BIND")) tool++;
    }
    fclose(f);
    assert_int_equal(typo, 1);
    assert_int_equal(tool, 0);
}

/* ---- both ends of the ranges in a real job ------------------------------------------------- */

static int extremes_body(podcclComm_t comm, int rank, int nranks, void *arg) {
    (void)arg;
    /* one-shot sizes, then pipelined ones over many chunks */
    static const size_t counts[] = {1, 1000, 300000};
    for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++)
        if (harness_allreduce_ok(comm, rank, nranks, counts[i])) return 1;
    return 0;
}

static void run_with(const char *const (*vars)[2], size_t n) {
    char *timeout = strdup(getenv("PODCCL_TIMEOUT"));
    for (size_t i = 0; i < n; i++) setenv(vars[i][0], vars[i][1], 1);
    int rc = harness_run(2, extremes_body, NULL);
    for (size_t i = 0; i < n; i++) unsetenv(vars[i][0]);
    setenv("PODCCL_TIMEOUT", timeout, 1);
    free(timeout);
    assert_int_equal(rc, 0);
}

static void test_range_minimums(void **state) {
    static const char *const vars[][2] = {
        {"PODCCL_CHUNK_BYTES", "4096"},      {"PODCCL_SHM_DIRECT_BYTES", "0"},
        {"PODCCL_SHM_DIRECT_SLOTS", "2"},    {"PODCCL_SHM_SLOTS", "2"},
        {"PODCCL_SHM_MAX_BYTES", "1048576"}, {"PODCCL_SHM_SPIN", "0"},
        {"PODCCL_MAX_INFLIGHT", "2"},        {"PODCCL_HIER_SEGMENTS", "1"},
        {"PODCCL_NET_NAP_US", "-1"},         {"PODCCL_TRACE_OPS", "1"}};
    (void)state;
    run_with(vars, sizeof(vars) / sizeof(vars[0]));
}

static void test_range_maximums(void **state) {
    /* Direct slots stay at 2 here: 64 of 64 MiB would be 4 GiB of /dev/shm per rank. */
    static const char *const vars[][2] = {
        {"PODCCL_CHUNK_BYTES", "1073741824"}, {"PODCCL_SHM_DIRECT_BYTES", "67108864"},
        {"PODCCL_SHM_DIRECT_SLOTS", "2"},     {"PODCCL_SHM_SLOTS", "64"},
        {"PODCCL_SHM_SPIN", "1000000"},       {"PODCCL_MAX_INFLIGHT", "64"},
        {"PODCCL_HIER_SEGMENTS", "256"},      {"PODCCL_TIMEOUT", "86400"},
        {"PODCCL_NET_NAP_US", "1000000"},     {"PODCCL_TRACE_OPS", "1048576"}};
    (void)state;
    run_with(vars, sizeof(vars) / sizeof(vars[0]));
}

int main(void) {
    const struct CMUnitTest forked[] = {cmocka_unit_test(test_range_minimums),
                                        cmocka_unit_test(test_range_maximums)};
    const struct CMUnitTest local[] = {
        cmocka_unit_test(test_integers),       cmocka_unit_test(test_int_or_auto),
        cmocka_unit_test(test_enums),          cmocka_unit_test(test_strings),
        cmocka_unit_test(test_hostport),       cmocka_unit_test(test_validate_edges),
        cmocka_unit_test(test_init_refuses),   cmocka_unit_test(test_reader_fallback),
        cmocka_unit_test(test_unknown_warned),
    };
    /* The log goes to a file read by test_unknown_warned; set before any podccl call. */
    snprintf(log_path, sizeof(log_path), "/tmp/test_params.%d.log", (int)getpid());
    setenv("PODCCL_DEBUG_FILE", log_path, 1);
    setenv("PODCCL_BENCH_BIND", "0", 1);
    setenv("PODCCL_TIMEOUT", "20", 0);
    /* the harness forks: run it before this process has podccl threads */
    int fails = cmocka_run_group_tests_name("params, 2 ranks", forked, NULL, NULL);
    setenv("PODCCL_TIMOUT", "5", 1); /* after the forked ranks: only this process warns */
    fails += cmocka_run_group_tests_name("params", local, NULL, NULL);
    unlink(log_path);
    return fails != 0;
}
