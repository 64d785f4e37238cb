/* Binomial trees over the positions of a group, relative to a root (broadcast_tree.c,
 * reduce_tree.c). Virtual rank v = (position - root) mod n; the parent of v > 0 is v with its
 * lowest set bit cleared; its children are v + m for the powers of two m below that bit (all,
 * for the root) with v + m < n, largest first, so the largest subtree starts first and the
 * topology's farthest hop is taken once, near the root. */
#ifndef PODCCL_TREE_COMMON_H
#define PODCCL_TREE_COMMON_H

static inline int tree_lowbit(int v, int n) {
    if (v == 0) {
        int m = 1;
        while (m < n) m *= 2;
        return m;
    }
    return v & -v;
}

/* Children of v, largest first, into ch (at most 32); returns how many. */
static inline int tree_children(int v, int n, int *ch) {
    int k = 0;
    for (int m = tree_lowbit(v, n) / 2; m >= 1; m /= 2)
        if (v + m < n) ch[k++] = v + m;
    return k;
}

static inline int tree_parent(int v) {
    return v - (v & -v);
}

#endif
