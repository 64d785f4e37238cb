/* Logging, the calling thread's last error, and a communicator's error state (pc_errs, which
 * the communicator embeds as its first member: this file sees nothing else of it). */
#include "core.h"

#include <pthread.h>
#include <time.h>
#include <unistd.h>

int pc_log_level = -1;
static int log_subsys = PC_SUB_ALL;
static FILE *log_file;
static char log_host[64];
static pthread_once_t log_once = PTHREAD_ONCE_INIT;
static __thread int log_rank = -1;
static __thread char thread_err[512];
static __thread podcclResult_t thread_err_rc; /* code of the error thread_err describes */

static const struct {
    const char *name;
    int bit;
} subsys_names[] = {{"INIT", PC_SUB_INIT}, {"COLL", PC_SUB_COLL}, {"TUNE", PC_SUB_TUNE},
                    {"SHM", PC_SUB_SHM},   {"NET", PC_SUB_NET},   {"BOOT", PC_SUB_BOOT},
                    {"ALL", PC_SUB_ALL}};

static int parse_subsys(const char *s) {
    int exclude = (*s == '^');
    if (exclude) s++;
    int mask = 0;
    char buf[256];
    snprintf(buf, sizeof(buf), "%s", s);
    for (char *save, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
        for (size_t i = 0; i < sizeof(subsys_names) / sizeof(subsys_names[0]); i++)
            if (strcasecmp(tok, subsys_names[i].name) == 0) mask |= subsys_names[i].bit;
    return exclude ? (PC_SUB_ALL & ~mask) : mask;
}

/* Expands %h and %p so that every process of a job can log to its own file. */
static void open_log_file(const char *pattern) {
    char path[512];
    size_t o = 0;
    for (const char *p = pattern; *p && o + 64 < sizeof(path); p++) {
        if (p[0] == '%' && p[1] == 'h') {
            o += snprintf(path + o, sizeof(path) - o, "%s", log_host);
            p++;
        } else if (p[0] == '%' && p[1] == 'p') {
            o += snprintf(path + o, sizeof(path) - o, "%d", (int)getpid());
            p++;
        } else {
            path[o++] = *p;
        }
    }
    path[o] = 0;
    log_file = fopen(path, "a");
    if (log_file) setvbuf(log_file, NULL, _IOLBF, 0);
}

/* Logging starts before the parameter table is checked (that check logs), so it reads its three
 * variables itself: an empty value counts as unset, and the defaults are the table's. */
static const char *log_env(const char *name, const char *dflt) {
    const char *v = getenv(name);
    return v && *v ? v : dflt;
}

static void log_init_once(void) {
    gethostname(log_host, sizeof(log_host) - 1);
    char *dot = strchr(log_host, '.');
    if (dot) *dot = 0;
    const char *lvl = log_env("PODCCL_DEBUG", "WARN");
    int level = PC_LOG_WARN;
    if (lvl) {
        if (!strcasecmp(lvl, "NONE"))
            level = PC_LOG_NONE;
        else if (!strcasecmp(lvl, "INFO"))
            level = PC_LOG_INFO;
        else if (!strcasecmp(lvl, "TRACE"))
            level = PC_LOG_TRACE;
    }
    log_subsys = parse_subsys(log_env("PODCCL_DEBUG_SUBSYS", "ALL"));
    const char *file = log_env("PODCCL_DEBUG_FILE", NULL);
    if (file) open_log_file(file);
    pc_log_level = level;
}

void pc_log_init(void) {
    pthread_once(&log_once, log_init_once);
}
void pc_log_set_rank(int rank) {
    log_rank = rank;
}

void pc_log_write(int level, int subsys, const char *fmt, ...) {
    pc_log_init();
    if (level > pc_log_level || !(subsys & log_subsys)) return;
    static const char *lname[] = {"", "WARN", "INFO", "TRACE"};
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    fprintf(log_file ? log_file : stderr, "%s:%d:%d [%d] podccl %s %s\n", log_host, (int)getpid(),
            (int)gettid(), log_rank, lname[level], msg);
}

podcclResult_t pc_err(podcclComm_t comm, podcclResult_t rc, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(thread_err, sizeof(thread_err), fmt, ap);
    va_end(ap);
    thread_err_rc = rc;
    if (comm) {
        pc_errs *e = pc_errs_of(comm);
        pc_log_set_rank(e->rank); /* this thread may not be the one that made comm */
        pthread_mutex_lock(&e->lock);
        snprintf(e->last, sizeof(e->last), "%s", thread_err);
        pthread_mutex_unlock(&e->lock);
    }
    pc_log(PC_LOG_WARN, PC_SUB_ALL, "%s: %s", podcclGetErrorString(rc), thread_err);
    return rc;
}

const char *pc_thread_err(void) {
    return thread_err;
}

/* The first breaking error's message is written under err_lock together with async_err, so a
 * reader that sees async_err set and then takes the lock finds the message. Later errors (the
 * "broken by an earlier error" of every later call, harmless InvalidArguments) only change
 * last_err, so the cause is named once, and never replaced by a later or earlier harmless one. */
podcclResult_t pc_comm_fail_why(podcclComm_t comm, podcclResult_t rc, const char *why) {
    pc_errs *e = pc_errs_of(comm);
    pthread_mutex_lock(&e->lock);
    int expected = podcclSuccess;
    if (atomic_compare_exchange_strong(&e->async, &expected, (int)rc)) {
        if (why)
            snprintf(e->first, sizeof(e->first), "%s", why);
        else if (thread_err_rc == rc && thread_err[0])
            snprintf(e->first, sizeof(e->first), "%s", thread_err);
        else /* rc came back without a message of its own on this thread */
            snprintf(e->first, sizeof(e->first), "rank %d: %s", e->rank, podcclGetErrorString(rc));
    }
    pthread_mutex_unlock(&e->lock);
    return rc;
}

podcclResult_t pc_comm_fail(podcclComm_t comm, podcclResult_t rc) {
    return pc_comm_fail_why(comm, rc, NULL);
}

void pc_comm_first_err(podcclComm_t comm, char *buf, size_t len) {
    pc_errs *e = pc_errs_of(comm);
    pthread_mutex_lock(&e->lock);
    snprintf(buf, len, "%s", e->first);
    pthread_mutex_unlock(&e->lock);
}

const char *pc_comm_last_err(podcclComm_t comm) {
    return pc_errs_of(comm)->last;
}

podcclResult_t pc_comm_async(podcclComm_t comm) {
    return (podcclResult_t)atomic_load(&pc_errs_of(comm)->async);
}

const char *podcclGetErrorString(podcclResult_t r) {
    switch (r) {
    case podcclSuccess:
        return "no error";
    case podcclSystemError:
        return "unhandled system error (run with PODCCL_DEBUG=INFO for details)";
    case podcclInternalError:
        return "internal error - please report this issue to the podccl developers";
    case podcclInvalidArgument:
        return "invalid argument (run with PODCCL_DEBUG=WARN for details)";
    case podcclInvalidUsage:
        return "invalid usage (run with PODCCL_DEBUG=WARN for details)";
    case podcclRemoteError:
        return "remote process exited or there was a network error";
    case podcclInProgress:
        return "operation in progress";
    case podcclTimeout:
        return "timeout: a peer did not make progress within PODCCL_TIMEOUT";
    default:
        return "unknown result code";
    }
}

double pc_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}
