/* The communicator object (comm.h): the process-wide set of live communicators, references,
 * the grow-only temporary, and podcclGetLastError. */
#include "src/comm.h"

podcclResult_t pc_comm_tmp(podcclComm_t comm, size_t bytes) {
    if (bytes <= comm->ex->tmp_bytes) return podcclSuccess;
    char *p = realloc(comm->ex->tmp, bytes);
    if (!p)
        return pc_err(comm, podcclSystemError, "cannot allocate %zu bytes of temporary memory",
                      bytes);
    comm->ex->tmp = p, comm->ex->tmp_bytes = bytes;
    return podcclSuccess;
}

/* ---- the registry of live communicators ------------------------------------------------------
 * An open-addressing hash set of pointers (linear probing, deletion by backward shift), guarded
 * by one mutex. A call checks membership before it reads the communicator, so a destroyed
 * pointer is an InvalidArgument and never a read of freed memory; a reference (comm->active) is
 * taken under the same mutex, so destroy and abort, which leave the set first, then wait for the
 * references, never free a communicator that a call is using. */

typedef struct {
    podcclComm_t comm; /* NULL: empty */
    uint64_t serial;
} reg_entry;

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static reg_entry *reg_tab;
static size_t reg_cap, reg_n; /* reg_cap: 0 or a power of 2 */
static uint64_t reg_next_serial;

static size_t reg_slot(podcclComm_t c) {
    return (size_t)pc_fmix64((uint64_t)(uintptr_t)c) & (reg_cap - 1);
}

static reg_entry *reg_find(podcclComm_t c) {
    if (reg_n == 0) return NULL;
    for (size_t i = reg_slot(c);; i = (i + 1) & (reg_cap - 1)) {
        if (reg_tab[i].comm == c) return &reg_tab[i];
        if (!reg_tab[i].comm) return NULL;
    }
}

static void reg_put(reg_entry e) {
    size_t i = reg_slot(e.comm);
    while (reg_tab[i].comm) i = (i + 1) & (reg_cap - 1);
    reg_tab[i] = e;
    reg_n++;
}

/* Empties slot i, moving later entries of its probe run back so that lookups stay correct. */
static void reg_remove_at(size_t i) {
    size_t mask = reg_cap - 1, j = i;
    reg_tab[i].comm = NULL;
    reg_n--;
    for (;;) {
        j = (j + 1) & mask;
        if (!reg_tab[j].comm) return;
        size_t k = reg_slot(reg_tab[j].comm);
        /* The entry at j may move to i unless its home slot k lies cyclically in (i, j]. */
        if (i <= j ? (i < k && k <= j) : (i < k || k <= j)) continue;
        reg_tab[i] = reg_tab[j];
        reg_tab[j].comm = NULL;
        i = j;
    }
}

podcclResult_t pc_comm_register(podcclComm_t comm) {
    pthread_mutex_lock(&reg_lock);
    if (2 * (reg_n + 1) > reg_cap) {
        size_t cap = reg_cap ? 2 * reg_cap : 16, old_cap = reg_cap;
        reg_entry *old = reg_tab, *tab = calloc(cap, sizeof(*tab));
        if (!tab) {
            pthread_mutex_unlock(&reg_lock);
            return pc_err(NULL, podcclSystemError, "out of memory registering a communicator");
        }
        reg_tab = tab, reg_cap = cap, reg_n = 0;
        for (size_t i = 0; i < old_cap; i++)
            if (old[i].comm) reg_put(old[i]);
        free(old);
    }
    reg_put((reg_entry){comm, ++reg_next_serial});
    pthread_mutex_unlock(&reg_lock);
    return podcclSuccess;
}

const char *podcclGetLastError(podcclComm_t comm) {
    if (comm && pc_comm_live(comm, NULL) && pc_comm_last_err(comm)[0])
        return pc_comm_last_err(comm);
    return pc_thread_err();
}

int pc_comm_live(podcclComm_t comm, uint64_t *serial) {
    pthread_mutex_lock(&reg_lock);
    reg_entry *e = reg_find(comm);
    if (e && serial) *serial = e->serial;
    pthread_mutex_unlock(&reg_lock);
    return e != NULL;
}

int pc_comm_acquire(podcclComm_t comm, uint64_t serial, uint64_t *got) {
    pthread_mutex_lock(&reg_lock);
    reg_entry *e = reg_find(comm);
    int ok = e && (serial == 0 || e->serial == serial);
    if (ok) atomic_fetch_add(&comm->active, 1);
    if (ok && got) *got = e->serial;
    pthread_mutex_unlock(&reg_lock);
    return ok;
}

void pc_comm_release(podcclComm_t comm) {
    atomic_fetch_sub(&comm->active, 1);
}

int pc_comm_unregister(podcclComm_t comm, uint64_t serial) {
    pthread_mutex_lock(&reg_lock);
    reg_entry *e = reg_find(comm);
    int ok = e && e->serial == serial;
    if (ok) reg_remove_at((size_t)(e - reg_tab));
    pthread_mutex_unlock(&reg_lock);
    return ok;
}

podcclResult_t pc_comm_check_live(podcclComm_t comm, const char *fn, uint64_t *serial) {
    if (!comm) return pc_err(NULL, podcclInvalidArgument, "%s: comm is NULL", fn);
    if (!pc_comm_live(comm, serial))
        return pc_err(NULL, podcclInvalidArgument,
                      "%s: comm is not a live communicator (destroyed?)", fn);
    return podcclSuccess;
}
