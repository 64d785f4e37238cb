/* Logging and the last-error message. */
#include "core.h"

#include <pthread.h>
#include <time.h>
#include <unistd.h>

#include "comm.h"

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

static void log_init_once(void) {
    gethostname(log_host, sizeof(log_host) - 1);
    char *dot = strchr(log_host, '.');
    if (dot) *dot = 0;
    const char *lvl = pc_param_str("PODCCL_DEBUG");
    int level = PC_LOG_WARN;
    if (lvl) {
        if (!strcasecmp(lvl, "NONE"))
            level = PC_LOG_NONE;
        else if (!strcasecmp(lvl, "INFO"))
            level = PC_LOG_INFO;
        else if (!strcasecmp(lvl, "TRACE"))
            level = PC_LOG_TRACE;
    }
    log_subsys = parse_subsys(pc_param_str("PODCCL_DEBUG_SUBSYS"));
    const char *file = pc_param_str("PODCCL_DEBUG_FILE");
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
        pc_log_set_rank(comm->rank); /* this thread may not be the one that made comm */
        pthread_mutex_lock(&comm->err_lock);
        snprintf(comm->last_err, sizeof(comm->last_err), "%s", thread_err);
        pthread_mutex_unlock(&comm->err_lock);
    }
    pc_log(PC_LOG_WARN, PC_SUB_ALL, "%s: %s", podcclGetErrorString(rc), thread_err);
    return rc;
}

const char *podcclGetLastError(podcclComm_t comm) {
    if (comm && pc_comm_live(comm, NULL) && comm->last_err[0]) return comm->last_err;
    return thread_err;
}

/* The first breaking error's message is written under err_lock together with async_err, so a
 * reader that sees async_err set and then takes the lock finds the message. Later errors (the
 * "broken by an earlier error" of every later call, harmless InvalidArguments) only change
 * last_err, so the cause is named once, and never replaced by a later or earlier harmless one. */
podcclResult_t pc_comm_fail_why(podcclComm_t comm, podcclResult_t rc, const char *why) {
    pthread_mutex_lock(&comm->err_lock);
    int expected = podcclSuccess;
    if (atomic_compare_exchange_strong(&comm->async_err, &expected, (int)rc)) {
        if (why)
            snprintf(comm->first_err, sizeof(comm->first_err), "%s", why);
        else if (thread_err_rc == rc && thread_err[0])
            snprintf(comm->first_err, sizeof(comm->first_err), "%s", thread_err);
        else /* rc came back without a message of its own on this thread */
            snprintf(comm->first_err, sizeof(comm->first_err), "rank %d: %s", comm->rank,
                     podcclGetErrorString(rc));
    }
    pthread_mutex_unlock(&comm->err_lock);
    return rc;
}

podcclResult_t pc_comm_fail(podcclComm_t comm, podcclResult_t rc) {
    return pc_comm_fail_why(comm, rc, NULL);
}

void pc_comm_first_err(podcclComm_t comm, char *buf, size_t len) {
    pthread_mutex_lock(&comm->err_lock);
    snprintf(buf, len, "%s", comm->first_err);
    pthread_mutex_unlock(&comm->err_lock);
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
