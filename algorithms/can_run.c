/* Feasibility checks that several descriptors share as their can_run (flat.h). */
#include "algorithms/flat.h"

int can_always(const pc_env *e, const pc_args *a, char *why, size_t len) {
    (void)e, (void)a, (void)why, (void)len;
    return 1;
}

int can_multilevel(const pc_env *e, const pc_args *a, char *why, size_t len) {
    (void)a;
    if (e->lv->nlevels > 1) return 1;
    snprintf(why, len, "every rank is on one host: there is no level to compose");
    return 0;
}

int can_memsem(const pc_env *e, const pc_args *a, char *why, size_t len) {
    (void)a;
    const pc_levels *lv = e->lv;
    if (lv->memsem == lv->nlevels - 1 && e->direct_bytes > 0) return 1;
    snprintf(why, len,
             "the ranks span %d groups of level %s without memory semantics (shared-memory "
             "algorithms need every rank in one memory-semantic domain)",
             lv->lv[lv->memsem + 1 < lv->nlevels ? lv->memsem : 0].nunits, lv->lv[lv->memsem].name);
    return 0;
}
