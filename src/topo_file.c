/* The topology file (PODCCL_TOPO_FILE): see topo_file.h, and docs/topology.md for the format.
 *
 * jansson returns values without positions, yet an error should point at a line. Once jansson
 * has accepted the text it is valid JSON, so a small walker over the raw text (skip strings,
 * count brackets) finds the byte offset of the N-th level, of a member's value or of the K-th
 * host string exactly, and the line is one plus the newlines before it. A key written with
 * escapes is not found that way; the message then falls back to the enclosing object's line. */
#include "src/topo_file.h"

#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define NPOS ((size_t)-1)

/* The file's text, and where messages go. */
typedef struct {
    const char *path;
    char *text;
    size_t len;
    char *err;
    size_t errlen;
} src_t;

/* A binary address; IPv4-mapped IPv6 addresses are folded to IPv4 so a v4 CIDR covers them. */
typedef struct {
    int family; /* AF_INET, AF_INET6, or 0: not an address */
    int prefix; /* bits that must match */
    unsigned char a[16];
} ipnet_t;

/* The job's hosts and per-level scratch, allocated once per load. */
typedef struct {
    const pc_topo_host *h;
    int n;
    ipnet_t *addr; /* [n] each host's parsed address */
    int *grp;      /* [n] file index of the host's group at the level being read, -1: none */
    int *first;    /* [n] per group of the level below: its first host, for the nesting check */
} job_t;

/* ---- Positions in the raw text ---------------------------------------------------------- */

static int is_ws(char c) {
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static size_t skip_ws(const src_t *s, size_t p) {
    while (p < s->len && is_ws(s->text[p])) p++;
    return p;
}

/* p on an opening quote; returns the offset past the closing one. */
static size_t skip_string(const src_t *s, size_t p) {
    for (p++; p < s->len; p++) {
        if (s->text[p] == '\\')
            p++;
        else if (s->text[p] == '"')
            return p + 1;
    }
    return NPOS;
}

/* p on the first byte of a value; returns the offset past it. */
static size_t skip_value(const src_t *s, size_t p) {
    int depth = 0;
    while (p < s->len) {
        char c = s->text[p];
        if (c == '"') {
            p = skip_string(s, p);
            if (depth == 0 || p == NPOS) return p;
            continue;
        }
        if (depth == 0 && (c == ',' || c == '}' || c == ']' || is_ws(c))) return p;
        if (c == '{' || c == '[')
            depth++;
        else if ((c == '}' || c == ']') && --depth == 0)
            return p + 1;
        p++;
    }
    return depth == 0 ? p : NPOS;
}

/* Offset of the value of member key in the object at p, or NPOS. */
static size_t member_at(const src_t *s, size_t p, const char *key) {
    size_t klen = strlen(key);
    if (p >= s->len || s->text[p] != '{') return NPOS;
    for (p++;;) {
        p = skip_ws(s, p);
        if (p >= s->len || s->text[p] != '"') return NPOS;
        size_t k = p + 1, e = skip_string(s, p);
        p = skip_ws(s, e);
        if (p >= s->len || s->text[p] != ':') return NPOS;
        p = skip_ws(s, p + 1);
        if (e - k - 1 == klen && memcmp(s->text + k, key, klen) == 0) return p;
        p = skip_ws(s, skip_value(s, p));
        if (p >= s->len || s->text[p] != ',') return NPOS;
        p++;
    }
}

/* Offset of element idx of the array at p, or NPOS. */
static size_t elem_at(const src_t *s, size_t p, size_t idx) {
    if (p >= s->len || s->text[p] != '[') return NPOS;
    p = skip_ws(s, p + 1);
    for (size_t i = 0; i < idx; i++) {
        p = skip_ws(s, skip_value(s, p));
        if (p >= s->len || s->text[p] != ',') return NPOS;
        p = skip_ws(s, p + 1);
    }
    return p < s->len && s->text[p] != ']' ? p : NPOS;
}

static size_t pick(size_t a, size_t b) {
    return a != NPOS ? a : b;
}

/* 1-based line of offset p; 1 when p is unknown. */
static int line_of(const src_t *s, size_t p) {
    int line = 1;
    if (p >= s->len) return 1;
    for (const char *c = s->text; (c = memchr(c, '\n', p - (size_t)(c - s->text))); c++) line++;
    return line;
}

__attribute__((format(printf, 3, 4))) static int fail(const src_t *s, size_t p, const char *fmt,
                                                      ...) {
    if (!s->err || !s->errlen) return -1;
    int n = snprintf(s->err, s->errlen, "%s:%d: ", s->path, line_of(s, p));
    if (n >= 0 && (size_t)n < s->errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(s->err + n, s->errlen - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* ---- Host matching ------------------------------------------------------------------------ */

/* Parses "ADDR" or "ADDR/BITS" (an IPv6 ADDR may carry a "%zone", ignored). Returns 0 with
 * family 0 when str is no address at all (a host name), -1 when it has a '/' but is no CIDR. */
static int parse_net(const char *str, ipnet_t *net) {
    char buf[INET6_ADDRSTRLEN + 16];
    const char *slash = strchr(str, '/');
    size_t alen = slash ? (size_t)(slash - str) : strlen(str);
    memset(net, 0, sizeof(*net));
    if (alen >= sizeof(buf)) return slash ? -1 : 0;
    memcpy(buf, str, alen);
    buf[alen] = 0;
    char *zone = strchr(buf, '%');
    if (zone && strchr(buf, ':')) *zone = 0; /* link-local IPv6 "fe80::1%eth0" */
    if (inet_pton(AF_INET, buf, net->a) == 1)
        net->family = AF_INET, net->prefix = 32;
    else if (inet_pton(AF_INET6, buf, net->a) == 1)
        net->family = AF_INET6, net->prefix = 128;
    else
        return slash ? -1 : 0;
    if (slash) {
        char *end;
        errno = 0;
        long bits = strtol(slash + 1, &end, 10);
        if (slash[1] < '0' || slash[1] > '9' || *end || errno || bits > net->prefix) return -1;
        net->prefix = (int)bits;
    }
    static const unsigned char v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (net->family == AF_INET6 && net->prefix >= 96 && !memcmp(net->a, v4mapped, 12)) {
        memmove(net->a, net->a + 12, 4);
        memset(net->a + 4, 0, 12);
        net->family = AF_INET, net->prefix -= 96;
    }
    return 0;
}

static int net_contains(const ipnet_t *net, const ipnet_t *addr) {
    if (!net->family || net->family != addr->family) return 0;
    int full = net->prefix / 8, rest = net->prefix % 8;
    if (memcmp(net->a, addr->a, (size_t)full)) return 0;
    unsigned char mask = (unsigned char)(0xff00 >> rest);
    return !rest || !((net->a[full] ^ addr->a[full]) & mask);
}

static int host_matches(const char *str, const ipnet_t *net, const pc_topo_host *h,
                        const ipnet_t *addr) {
    return (h->name && !strcmp(str, h->name)) ||
           (h->hostid && *h->hostid && !strcmp(str, h->hostid)) ||
           (h->addr && !strcmp(str, h->addr)) || net_contains(net, addr);
}

static const char *describe(const pc_topo_host *h, char *buf, size_t n) {
    snprintf(buf, n, "%s (hostid %s, address %s)", h->name ? h->name : "?",
             h->hostid && *h->hostid ? h->hostid : "-", h->addr ? h->addr : "-");
    return buf;
}

/* ---- Fields ------------------------------------------------------------------------------- */

/* A required number, > 0 when positive, else >= 0; obj is at offset p. */
static int get_num(const src_t *s, json_t *obj, size_t p, const char *who, const char *key,
                   int positive, double *out) {
    json_t *v = json_object_get(obj, key);
    if (!v) return fail(s, p, "%s: \"%s\" is missing", who, key);
    double x = json_is_number(v) ? json_number_value(v) : -1;
    if (!json_is_number(v) || (positive ? !(x > 0) : !(x >= 0)))
        return fail(s, pick(member_at(s, p, key), p), "%s: \"%s\" must be a number %s", who, key,
                    positive ? "> 0" : ">= 0");
    *out = x;
    return 0;
}

static int get_name(const src_t *s, json_t *obj, size_t p, const char *who,
                    char dst[PC_TOPO_NAME_BYTES]) {
    json_t *v = json_object_get(obj, "name");
    if (!v) return fail(s, p, "%s: \"name\" is missing", who);
    size_t n = json_is_string(v) ? json_string_length(v) : 0;
    if (n == 0 || n >= PC_TOPO_NAME_BYTES)
        return fail(s, pick(member_at(s, p, "name"), p),
                    "%s: \"name\" must be a non-empty string of at most %d bytes", who,
                    PC_TOPO_NAME_BYTES - 1);
    memcpy(dst, json_string_value(v), n + 1);
    return 0;
}

static int get_link(const src_t *s, json_t *obj, size_t p, const char *who, pc_link_class *l) {
    if (get_num(s, obj, p, who, "bandwidth_GBps", 1, &l->bw_GBps)) return -1;
    return get_num(s, obj, p, who, "latency_us", 0, &l->lat_us);
}

static int load_host_link(const src_t *s, json_t *v, size_t p, pc_topo_file *out) {
    if (!json_is_object(v)) return fail(s, p, "\"host\" must be an object");
    if (get_link(s, v, p, "\"host\"", &out->host_link)) return -1;
    out->has_host_link = 1;
    return 0;
}

/* ---- Groups ------------------------------------------------------------------------------- */

/* Checks group j (at offset p) and assigns it the job hosts its "hosts" list matches. */
static int read_group(const src_t *s, job_t *job, json_t *groups, size_t j, size_t p,
                      const char *lwho, const char *lname) {
    json_t *g = json_array_get(groups, j);
    char who[160], gname[PC_TOPO_NAME_BYTES], d[256];
    snprintf(who, sizeof(who), "%s: group %zu", lwho, j);
    if (!json_is_object(g)) return fail(s, p, "%s must be an object", who);
    if (get_name(s, g, p, who, gname)) return -1;
    snprintf(who, sizeof(who), "%s: group %zu (\"%s\")", lwho, j, gname);
    json_t *list = json_object_get(g, "hosts");
    size_t lp = member_at(s, p, "hosts");
    if (!list) return fail(s, p, "%s: \"hosts\" is missing", who);
    if (!json_is_array(list) || !json_array_size(list))
        return fail(s, pick(lp, p), "%s: \"hosts\" must be a non-empty array of strings", who);
    for (size_t k = 0; k < json_array_size(list); k++) {
        json_t *e = json_array_get(list, k);
        size_t ep = pick(elem_at(s, lp, k), pick(lp, p));
        ipnet_t net;
        if (!json_is_string(e) || !json_string_length(e))
            return fail(s, ep, "%s: \"hosts\" must be a non-empty array of strings", who);
        const char *str = json_string_value(e);
        if (parse_net(str, &net))
            return fail(s, ep, "%s: \"%s\" is not a host name, address or CIDR", who, str);
        for (int h = 0; h < job->n; h++) {
            if (!host_matches(str, &net, &job->h[h], &job->addr[h])) continue;
            if (job->grp[h] >= 0 && job->grp[h] != (int)j) {
                json_t *o = json_object_get(json_array_get(groups, (size_t)job->grp[h]), "name");
                return fail(s, ep, "level \"%s\": host %s is in two groups: \"%s\" and \"%s\"",
                            lname, describe(&job->h[h], d, sizeof(d)), json_string_value(o), gname);
            }
            job->grp[h] = (int)j;
        }
    }
    return 0;
}

/* Numbers the groups that hold job hosts in file order and fills group_of_host, group_name. */
static int compact_groups(json_t *groups, job_t *job, pc_topo_file_level *L) {
    size_t ng = json_array_size(groups);
    int *map = malloc((ng ? ng : 1) * sizeof(int));
    if (!map) return -1;
    for (size_t j = 0; j < ng; j++) map[j] = -1;
    for (int h = 0; h < job->n; h++) map[job->grp[h]] = 0;
    for (size_t j = 0; j < ng; j++)
        if (map[j] == 0) map[j] = 1 + L->ngroups++;
    L->group_name = calloc(L->ngroups ? (size_t)L->ngroups : 1, PC_TOPO_NAME_BYTES);
    if (!L->group_name) return free(map), -1;
    for (size_t j = 0; j < ng; j++) {
        if (map[j] < 0) continue;
        json_t *name = json_object_get(json_array_get(groups, j), "name");
        memcpy(L->group_name[map[j] - 1], json_string_value(name), json_string_length(name) + 1);
    }
    for (int h = 0; h < job->n; h++) L->group_of_host[h] = map[job->grp[h]] - 1;
    free(map);
    return 0;
}

static int read_groups(const src_t *s, job_t *job, json_t *groups, size_t p, size_t lp,
                       const char *lwho, pc_topo_file_level *L) {
    char d[256];
    if (!json_is_array(groups))
        return fail(s, pick(p, lp), "%s: \"groups\" must be an array of objects", lwho);
    for (int h = 0; h < job->n; h++) job->grp[h] = -1;
    for (size_t j = 0; j < json_array_size(groups); j++)
        if (read_group(s, job, groups, j, pick(elem_at(s, p, j), pick(p, lp)), lwho, L->name))
            return -1;
    for (int h = 0; h < job->n; h++)
        if (job->grp[h] < 0)
            return fail(s, pick(p, lp), "level \"%s\": host %s is in none of its groups", L->name,
                        describe(&job->h[h], d, sizeof(d)));
    if (compact_groups(groups, job, L)) return fail(s, lp, "out of memory");
    return 0;
}

/* ---- Levels ------------------------------------------------------------------------------- */

/* Every two hosts that share a group of level i-1 must share one of level i. */
static int check_nesting(const src_t *s, job_t *job, const pc_topo_file *f, int i, size_t lp) {
    const pc_topo_file_level *lo = &f->lv[i - 1], *hi = &f->lv[i];
    char d1[256], d2[256];
    for (int g = 0; g < lo->ngroups; g++) job->first[g] = -1;
    for (int h = 0; h < job->n; h++) {
        int g = lo->group_of_host[h], o = job->first[g];
        if (o < 0)
            job->first[g] = h;
        else if (hi->group_of_host[h] != hi->group_of_host[o])
            return fail(s, lp,
                        "level \"%s\": hosts %s and %s share group \"%s\" of level \"%s\" but are "
                        "in different groups here (\"%s\" and \"%s\"): levels must nest",
                        hi->name, describe(&job->h[o], d1, sizeof(d1)),
                        describe(&job->h[h], d2, sizeof(d2)), lo->group_name[g], lo->name,
                        hi->group_name[hi->group_of_host[o]], hi->group_name[hi->group_of_host[h]]);
    }
    return 0;
}

static int read_level(const src_t *s, job_t *job, json_t *v, int i, size_t lp, pc_topo_file *f) {
    pc_topo_file_level *L = &f->lv[i];
    char who[96];
    snprintf(who, sizeof(who), "level %d", i);
    if (!json_is_object(v)) return fail(s, lp, "%s must be an object", who);
    if (get_name(s, v, lp, who, L->name)) return -1;
    snprintf(who, sizeof(who), "level %d (\"%s\")", i, L->name);
    for (int k = 0; k < i; k++)
        if (!strcmp(f->lv[k].name, L->name))
            return fail(s, pick(member_at(s, lp, "name"), lp), "%s: level %d has the same name",
                        who, k);
    if (get_link(s, v, lp, who, &L->link)) return -1;
    json_t *ms = json_object_get(v, "memory_semantics");
    if (ms && !json_is_boolean(ms))
        return fail(s, pick(member_at(s, lp, "memory_semantics"), lp),
                    "%s: \"memory_semantics\" must be true or false", who);
    L->link.memsem = ms && json_is_true(ms);
    L->group_of_host = calloc(job->n ? (size_t)job->n : 1, sizeof(int));
    if (!L->group_of_host) return fail(s, lp, "out of memory");
    json_t *groups = json_object_get(v, "groups");
    if (groups) {
        if (read_groups(s, job, groups, member_at(s, lp, "groups"), lp, who, L)) return -1;
    } else { /* one group of every job host, named after the level */
        L->ngroups = job->n > 0;
        L->group_name = calloc(1, PC_TOPO_NAME_BYTES);
        if (!L->group_name) return fail(s, lp, "out of memory");
        memcpy(L->group_name[0], L->name, sizeof(L->name));
    }
    return i > 0 ? check_nesting(s, job, f, i, lp) : 0;
}

static int read_root(const src_t *s, job_t *job, json_t *root, pc_topo_file *f) {
    size_t top = skip_ws(s, 0);
    if (!json_is_object(root)) return fail(s, top, "the top level must be an object");
    json_t *host = json_object_get(root, "host");
    if (host && load_host_link(s, host, pick(member_at(s, top, "host"), top), f)) return -1;
    json_t *levels = json_object_get(root, "levels");
    size_t lp = member_at(s, top, "levels");
    if (!levels) return fail(s, top, "\"levels\" is missing");
    size_t n = json_is_array(levels) ? json_array_size(levels) : 0;
    if (n == 0) return fail(s, pick(lp, top), "\"levels\" must be a non-empty array of objects");
    if (n > PC_TOPO_MAX_FILE_LEVELS)
        return fail(s, pick(elem_at(s, lp, PC_TOPO_MAX_FILE_LEVELS), pick(lp, top)),
                    "%zu levels, at most %d are allowed", n, PC_TOPO_MAX_FILE_LEVELS);
    for (size_t i = 0; i < n; i++) {
        if (read_level(s, job, json_array_get(levels, i), (int)i,
                       pick(elem_at(s, lp, i), pick(lp, top)), f))
            return -1;
        f->nlevels = (int)i + 1;
    }
    return 0;
}

/* ---- Entry points ------------------------------------------------------------------------- */

static int read_text(src_t *s) {
    char eb[128];
    FILE *fp = fopen(s->path, "rb");
    if (!fp) {
        int e = errno;
        snprintf(s->err, s->errlen, "%s: cannot open: %s", s->path, strerror_r(e, eb, sizeof(eb)));
        return -1;
    }
    size_t cap = 0;
    int e = 0;
    while (!e) {
        if (s->len + 1 >= cap) { /* room for the data and a terminating NUL */
            char *t = cap > ((size_t)-1) / 4 ? NULL : realloc(s->text, cap ? 2 * cap : 65536);
            if (!t) {
                e = ENOMEM;
                break;
            }
            s->text = t, cap = cap ? 2 * cap : 65536;
        }
        errno = 0;
        s->len += fread(s->text + s->len, 1, cap - 1 - s->len, fp);
        if (ferror(fp))
            e = errno ? errno : EIO;
        else if (feof(fp))
            break;
    }
    fclose(fp);
    if (e) {
        snprintf(s->err, s->errlen, "%s: cannot read: %s", s->path, strerror_r(e, eb, sizeof(eb)));
        return -1;
    }
    s->text[s->len] = 0;
    return 0;
}

static int load(src_t *s, job_t *job, pc_topo_file *out) {
    if (read_text(s)) return -1;
    for (int h = 0; h < job->n; h++)
        if (!job->h[h].addr || parse_net(job->h[h].addr, &job->addr[h]) ||
            job->addr[h].prefix != (job->addr[h].family == AF_INET ? 32 : 128))
            memset(&job->addr[h], 0, sizeof(job->addr[h])); /* no address: match by name only */
    json_error_t je;
    json_t *root = json_loadb(s->text, s->len, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        snprintf(s->err, s->errlen, "%s:%d:%d: %s", s->path, je.line > 0 ? je.line : 1,
                 je.column > 0 ? je.column : 1, je.text);
        return -1;
    }
    int rc = read_root(s, job, root, out);
    json_decref(root);
    return rc;
}

int topo_file_load(const char *path, const pc_topo_host *hosts, int nhosts, pc_topo_file *out,
                   char *err, size_t errlen) {
    char dummy[1];
    src_t s = {path, NULL, 0, err && errlen ? err : dummy, err && errlen ? errlen : sizeof(dummy)};
    s.err[0] = 0;
    if (!out) return -1;
    memset(out, 0, sizeof(*out));
    if (!path || nhosts < 0 || (nhosts > 0 && !hosts)) {
        snprintf(s.err, s.errlen, "%s: topo_file_load: invalid arguments", path ? path : "?");
        return -1;
    }
    size_t n = nhosts > 0 ? (size_t)nhosts : 1;
    job_t job = {hosts, nhosts, calloc(n, sizeof(ipnet_t)), calloc(n, sizeof(int)),
                 calloc(n, sizeof(int))};
    int rc = -1;
    if (!job.addr || !job.grp || !job.first)
        snprintf(s.err, s.errlen, "%s: out of memory", path);
    else
        rc = load(&s, &job, out);
    free(job.addr), free(job.grp), free(job.first), free(s.text);
    if (rc) topo_file_free(out);
    return rc;
}

void topo_file_free(pc_topo_file *f) {
    if (!f) return;
    for (int i = 0; i < PC_TOPO_MAX_FILE_LEVELS; i++) {
        free(f->lv[i].group_of_host);
        free(f->lv[i].group_name);
    }
    memset(f, 0, sizeof(*f));
}
