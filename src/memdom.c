/* The memory-semantic domain as the executor uses it (memdom.h), over the domain's table. */
#include "src/memdom.h"

#include <errno.h>
#include <unistd.h>

#include "src/sig.h"
#include "src/wait.h"

_Static_assert(MD_NWORDS <= PC_MD_WORDS, "the domain has too few flag words");

#define DOM(comm) ((comm)->tr->shm)
#define OPS(comm) ((comm)->tr->md)

size_t md_direct_bytes(podcclComm_t comm) {
    return OPS(comm) ? OPS(comm)->direct_bytes(DOM(comm)) : 0;
}

int md_direct_slots(podcclComm_t comm) {
    return OPS(comm)->direct_slots(DOM(comm));
}

char *md_direct_buf(podcclComm_t comm, int lidx, uint64_t seq) {
    return OPS(comm)->direct_buf(DOM(comm), lidx, seq);
}

void md_word_set(podcclComm_t comm, int word, uint64_t v) {
    atomic_store_explicit(OPS(comm)->word(DOM(comm), comm->topo->local_rank, word), v,
                          memory_order_release);
}

uint64_t md_word_get(podcclComm_t comm, int lidx, int word) {
    return atomic_load_explicit(OPS(comm)->word(DOM(comm), lidx, word), memory_order_acquire);
}

podcclResult_t md_word_wait(podcclComm_t comm, int lidx, int word, uint64_t v) {
    return md_wait_ge(comm, lidx, OPS(comm)->word(DOM(comm), lidx, word), v);
}

podcclResult_t md_wait_ge(podcclComm_t comm, int lidx, _Atomic uint64_t *w, uint64_t v) {
    if (atomic_load_explicit(w, memory_order_acquire) >= v) return podcclSuccess;
    pc_wait wt;
    pc_wait_reset(&wt);
    int peer = comm->topo->local_ranks[lidx];
    while (atomic_load_explicit(w, memory_order_acquire) < v) {
        PCCHECK(pc_sig_idle_check(comm, &wt));
        podcclResult_t r = pc_wait_idle(comm, &wt, &peer, 1);
        if (r == podcclInProgress) {
            if (atomic_load_explicit(w, memory_order_acquire) >= v) break;
            r = pc_wait_gone(comm, &wt);
        }
        /* A mismatch found meanwhile is the cause, not the peer that left after finding it. */
        if (r != podcclSuccess && pc_sig_idle_check(comm, NULL) != podcclSuccess)
            return podcclInvalidUsage;
        if (r != podcclSuccess) return r;
    }
    return podcclSuccess;
}

/* ---- single copy ---------------------------------------------------------------------------- */

int md_single_copy_probe(podcclComm_t comm) {
    return OPS(comm) && OPS(comm)->single_copy_probe(DOM(comm));
}

void md_publish(podcclComm_t comm, const void *const buf[3], const size_t len[3],
                const size_t *counts, const size_t *displs) {
    pc_md_bufs b = {.seq = comm->ex->cur.seq, .hash = comm->ex->cur.hash};
    for (int i = 0; i < 3; i++)
        b.addr[i] = (uint64_t)(uintptr_t)buf[i], b.len[i] = buf[i] ? len[i] : 0;
    OPS(comm)->publish(DOM(comm), &b, counts, displs);
}

void md_counts(podcclComm_t comm, int lidx, int to, size_t *count, size_t *displ) {
    OPS(comm)->counts(DOM(comm), lidx, to, count, displ);
}

/* Names local rank lidx's call of its published operation (seq, hash). */
static podcclResult_t published_mismatch(podcclComm_t comm, int lidx, const pc_md_bufs *b) {
    pc_sig theirs = {.hash = b->hash, .seq = b->seq, .coll = -1};
    int peer = comm->topo->local_ranks[lidx];
    pc_sig_of(comm, peer, b->seq, &theirs);
    return pc_mismatch(comm, peer, &theirs);
}

podcclResult_t md_enter(podcclComm_t comm, int lidx, uint64_t seq) {
    PCCHECK(md_word_wait(comm, lidx, MD_W_CMA_ENTER, seq));
    pc_md_bufs b;
    OPS(comm)->published(DOM(comm), lidx, &b);
    return b.hash == comm->ex->cur.hash ? podcclSuccess : published_mismatch(comm, lidx, &b);
}

podcclResult_t md_read(podcclComm_t comm, int lidx, int which, size_t off, void *local,
                       size_t bytes) {
    pc_md_bufs b;
    OPS(comm)->published(DOM(comm), lidx, &b);
    int peer = comm->topo->local_ranks[lidx];
    uint64_t len = b.len[which];
    if (bytes && (off > len || bytes > len - off)) { /* never past what the peer declared */
        if (b.hash != comm->ex->cur.hash) return published_mismatch(comm, lidx, &b);
        return pc_size_mismatch(comm, peer, &comm->ex->cur, (size_t)len, off + bytes);
    }
    if (!bytes) return podcclSuccess;
    int e = OPS(comm)->read(DOM(comm), lidx, b.addr[which] + off, local, bytes);
    if (!e) return podcclSuccess;
    /* A peer that is exiting loses its memory before it is reaped: EFAULT then means it is gone
     * (pc_wait_gone names the first cause, which may be another rank). */
    int gone = e == ESRCH;
    for (double end = pc_now() + 0.1; !gone && pc_now() < end; usleep(1000))
        gone = comm->live && comm->live->peer_dead(comm->live_dom, peer);
    if (gone) {
        pc_wait w = {.gone = peer};
        return pc_wait_gone(comm, &w);
    }
    return pc_err(comm, podcclSystemError, "rank %d: process_vm_readv from rank %d: %s", comm->rank,
                  peer, strerror(e));
}

/* ---- mismatches ------------------------------------------------------------------------- */

podcclResult_t md_mismatch_hash(podcclComm_t comm, int lidx, uint64_t hash, uint64_t seq) {
    pc_sig theirs = {.hash = hash, .seq = seq, .coll = -1}, g;
    int peer = comm->topo->local_ranks[lidx];
    uint64_t last = OPS(comm)->sig_last(DOM(comm), lidx);
    for (uint64_t s = last; s > 0 && s + PC_SIG_HIST > last; s--)
        if (pc_sig_of(comm, peer, s, &g) && g.hash == hash) {
            theirs = g;
            break;
        }
    return pc_mismatch(comm, peer, &theirs);
}

size_t md_segment_bytes(podcclComm_t comm) {
    return OPS(comm) ? OPS(comm)->segment_bytes(DOM(comm)) : 0;
}

/* ---- the view of a run function (algo.h) -------------------------------------------------- */

static char *v_direct_buf(pc_md *m, int r, uint64_t seq) {
    return md_direct_buf(m->comm, r, seq);
}
static void v_set(pc_md *m, int word, uint64_t v) {
    md_word_set(m->comm, word, v);
}
static uint64_t v_get(pc_md *m, int r, int word) {
    return md_word_get(m->comm, r, word);
}
static podcclResult_t v_wait(pc_md *m, int r, int word, uint64_t v) {
    return md_word_wait(m->comm, r, word, v);
}
static podcclResult_t v_wait_ge(pc_md *m, int r, _Atomic uint64_t *w, uint64_t v) {
    return md_wait_ge(m->comm, r, w, v);
}
static podcclResult_t v_mismatch(pc_md *m, int r, uint64_t hash) {
    return md_mismatch_hash(m->comm, r, hash, 0);
}
static void v_publish(pc_md *m, const void *const buf[3], const size_t len[3], const size_t *counts,
                      const size_t *displs) {
    md_publish(m->comm, buf, len, counts, displs);
}
static podcclResult_t v_enter(pc_md *m, int r, uint64_t seq) {
    return md_enter(m->comm, r, seq);
}
static void v_counts(pc_md *m, int r, int to, size_t *count, size_t *displ) {
    md_counts(m->comm, r, to, count, displ);
}
static podcclResult_t v_read(pc_md *m, int r, int which, size_t off, void *dst, size_t bytes) {
    return md_read(m->comm, r, which, off, dst, bytes);
}
static podcclResult_t v_size_mismatch(pc_md *m, int r, size_t theirs, size_t mine) {
    podcclComm_t comm = m->comm;
    return pc_size_mismatch(comm, comm->topo->local_ranks[r], &comm->ex->cur, theirs, mine);
}
static char *v_tmp(pc_md *m, size_t bytes) {
    return pc_comm_tmp(m->comm, bytes) == podcclSuccess ? m->comm->ex->tmp : NULL;
}

static const pc_md_ops view_ops = {
    .direct_buf = v_direct_buf,
    .set = v_set,
    .get = v_get,
    .wait = v_wait,
    .wait_ge = v_wait_ge,
    .mismatch = v_mismatch,
    .publish = v_publish,
    .enter = v_enter,
    .counts = v_counts,
    .read = v_read,
    .size_mismatch = v_size_mismatch,
    .tmp = v_tmp,
};

void md_view(podcclComm_t comm, pc_md *m) {
    pc_exec_state *ex = comm->ex;
    *m = (pc_md){.ops = &view_ops,
                 .comm = comm,
                 .n = comm->topo->nlocal,
                 .me = comm->topo->local_rank,
                 .slots = md_direct_slots(comm),
                 .chunk = ex->chunk_bytes,
                 .hash = ex->cur.hash,
                 .direct_seq = &ex->direct_seq,
                 .direct_synced = &ex->direct_synced,
                 .cma_seq = &ex->cma_seq};
}
