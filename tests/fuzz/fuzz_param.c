/* Fuzz target: the environment parameter parser, pc_param_validate (src/param.c), over every
 * parameter of the table. The first input byte picks the parameter (modulo the count plus one;
 * the extra value means "the name is in the input too": NAME NUL VALUE, for unknown names);
 * the rest, up to the first NUL, is the value, in a buffer of exactly its size.
 *
 * The table is read once from podcclPrintParams (stdout caught in a memfd), so a parameter added
 * to param.c is fuzzed with no change here. Its "allowed" text gives an independent oracle:
 * "integer A..B" (strict decimal, in range), "auto or integer A..B", "one of X, Y",
 * "text up to N bytes", and for host:port one direction (valid implies a decimal port in range
 * and a host). Every default must validate. Each value is checked with a roomy message buffer,
 * a tiny one and none, which must all agree; a failure must leave a terminated, non-empty
 * message that names the parameter. A disagreement aborts. */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <unistd.h>

#include "src/core.h"

#define MAX_PARAMS 128

typedef enum { K_NONE, K_INT, K_INT_AUTO, K_ENUM, K_STR, K_HOSTPORT } kind_t;

typedef struct {
    char name[64];
    char def[64]; /* "unset": no default */
    kind_t kind;
    long long lo, hi;  /* K_INT, K_INT_AUTO: range; K_STR: max bytes */
    char choices[256]; /* K_ENUM: "A, B, C" */
} param_t;

static param_t params[MAX_PARAMS];
static int nparams;

static void die(const char *fmt, const char *a, const char *b) {
    fprintf(stderr, "fuzz_param: ");
    fprintf(stderr, fmt, a, b);
    fputc('\n', stderr);
    abort();
}

/* One line of podcclPrintParams: "NAME = VALUE (default DEF; ALLOWED)". */
static void parse_line(char *line) {
    char *open = NULL, *close = strrchr(line, ')');
    for (char *p = line; (p = strstr(p, " (default ")); p++) open = p;
    if (!open || !close || close < open || nparams == MAX_PARAMS) return;
    param_t *p = &params[nparams++];
    memset(p, 0, sizeof(*p));
    snprintf(p->name, sizeof(p->name), "%.*s", (int)strcspn(line, " "), line);
    char *def = open + strlen(" (default "), *semi = strstr(def, "; ");
    if (!semi || semi > close) return; /* no allowed text: no oracle */
    snprintf(p->def, sizeof(p->def), "%.*s", (int)(semi - def), def);
    char allowed[256];
    snprintf(allowed, sizeof(allowed), "%.*s", (int)(close - semi - 2), semi + 2);
    if (sscanf(allowed, "auto or integer %lld..%lld", &p->lo, &p->hi) == 2)
        p->kind = K_INT_AUTO;
    else if (sscanf(allowed, "integer %lld..%lld", &p->lo, &p->hi) == 2)
        p->kind = K_INT;
    else if (sscanf(allowed, "text up to %lld bytes", &p->hi) == 1)
        p->kind = K_STR;
    else if (!strncmp(allowed, "one of ", 7))
        p->kind = K_ENUM, snprintf(p->choices, sizeof(p->choices), "%s", allowed + 7);
    else if (!strncmp(allowed, "host:port", 9))
        p->kind = K_HOSTPORT;
}

static void load_table(void) {
    fflush(stdout);
    int mfd = memfd_create("fuzz_param", 0), saved = dup(1);
    if (mfd < 0 || saved < 0 || dup2(mfd, 1) < 0) die("%s%s", "cannot catch stdout", "");
    podcclPrintParams();
    fflush(stdout);
    dup2(saved, 1);
    close(saved);
    FILE *f = fdopen(mfd, "r");
    if (!f) die("%s%s", "fdopen", "");
    rewind(f);
    char line[2048];
    while (fgets(line, sizeof(line), f))
        if (!strncmp(line, "PODCCL_", 7)) parse_line(line);
    fclose(f);
    if (nparams == 0) die("%s%s", "podcclPrintParams listed no parameter", "");
    for (int i = 0; i < nparams; i++) /* every default must be a valid value */
        if (strcmp(params[i].def, "unset") && params[i].def[0] &&
            pc_param_validate(params[i].name, params[i].def, NULL, 0))
            die("the default of %s (%s) is refused", params[i].name, params[i].def);
}

/* Strict decimal in [lo, hi], the independent way: syntax by hand, value by strtoll. */
static int oracle_int(const char *v, long long lo, long long hi) {
    const char *d = v + (*v == '-');
    if (!*d || (d[0] == '0' && d[1])) return 0;
    for (const char *q = d; *q; q++)
        if (!isdigit((unsigned char)*q)) return 0;
    errno = 0;
    long long x = strtoll(v, NULL, 10);
    return errno != ERANGE && x >= lo && x <= hi;
}

static int oracle_enum(const char *choices, const char *v) {
    size_t n = strlen(v);
    for (const char *c = choices; *c;) {
        size_t l = strcspn(c, ",");
        if (l == n && n && !strncasecmp(c, v, n)) return 1;
        c += l;
        c += strspn(c, ", ");
    }
    return 0;
}

/* 1 valid, 0 invalid, -1 no full oracle (the one-way host:port check is done here). */
static int oracle(const param_t *p, const char *v) {
    switch (p->kind) {
    case K_INT_AUTO:
        if (!strcasecmp(v, "auto")) return 1;
        /* fall through */
    case K_INT:
        return oracle_int(v, p->lo, p->hi);
    case K_ENUM:
        return oracle_enum(p->choices, v);
    case K_STR:
        return (long long)strlen(v) <= p->hi;
    case K_HOSTPORT: {
        const char *colon = strrchr(v, ':');
        if (pc_param_validate(p->name, v, NULL, 0) == 0 &&
            (!colon || colon == v || !oracle_int(colon + 1, 1, 65535)))
            die("%s accepted host:port \"%s\"", p->name, v);
        return -1;
    }
    default:
        return -1;
    }
}

/* Validates with three message buffers; they must agree, and a refusal must explain itself. */
static int validate(const char *name, const char *value, size_t small) {
    char *big = malloc(200), *tiny = malloc(small); /* exact sizes: ASan sees overruns */
    if (!big || !tiny) abort();
    int r1 = pc_param_validate(name, value, big, 200);
    int r2 = pc_param_validate(name, value, tiny, small);
    int r3 = pc_param_validate(name, value, NULL, 0);
    if (r1 != r2 || r1 != r3 || (r1 != 0 && r1 != -1)) die("%s: results disagree", name, "");
    if (!memchr(big, 0, 200) || !memchr(tiny, 0, small)) die("%s: unterminated message", name, "");
    if (r1 == 0 && big[0]) die("%s: message on success: %s", name, big);
    if (r1 && name && strncmp(big, name, strlen(name) < 199 ? strlen(name) : 199))
        die("%s: the message does not name it: %s", name, big);
    free(big), free(tiny);
    return r1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!nparams) load_table();
    if (size < 1) return 0;
    int pick = data[0] % (nparams + 1);
    size_t len = size - 1;
    char *buf = malloc(len + 1); /* the input as C text: everything up to the first NUL */
    if (!buf) abort();
    memcpy(buf, data + 1, len);
    buf[len] = 0;
    size_t small = 1 + len % 8;
    if (pick == nparams) { /* NAME NUL VALUE: unknown names, and a NULL value */
        char *value = strlen(buf) < len ? buf + strlen(buf) + 1 : NULL;
        int known = 0;
        for (int i = 0; i < nparams; i++) known |= !strcmp(params[i].name, buf);
        if (validate(buf, value, small) == 0 && (!known || !value))
            die("accepted unknown parameter or no value: %s", buf, "");
    } else {
        const param_t *p = &params[pick];
        int want = oracle(p, buf), got = validate(p->name, buf, small) == 0;
        if (want >= 0 && want != got)
            die(got ? "%s: accepted \"%s\", which it should refuse"
                    : "%s: refused \"%s\", which it should accept",
                p->name, buf);
    }
    free(buf);
    return 0;
}
