/* Topology levels as plain data: which ranks form each group ("unit") at each level, from the
 * ranks of one host (level 0) up to the whole communicator (the top level, one unit), with each
 * level's link class. Built from arrays alone, with no communicator, so that the schedule tests
 * can build any topology (1 to thousands of ranks, uneven groups) in one process.
 *
 * Coordinates: c_0(x) is rank x's index among the ranks of its host (ascending rank); for
 * l >= 1, c_l(x) is the index of x's level-(l-1) unit among the children of x's level-l unit
 * (children ordered by their smallest rank). Topology order lists the ranks so that every unit
 * of every level is contiguous (a depth-first walk in child order). */
#ifndef PODCCL_LEVELS_H
#define PODCCL_LEVELS_H

#include "src/topo_file.h"

#define PC_MAX_LEVELS (PC_TOPO_MAX_FILE_LEVELS + 2)

/* A group: position -> global rank. me is this rank's position, or -1 if not a member. */
typedef struct {
    int n, me;
    const int *rank;
} pc_group;

typedef struct {
    char name[PC_TOPO_NAME_BYTES];
    pc_link_class link;
    int nunits;
    int *unit_of;     /* [nranks] unit of every rank at this level */
    int *coord;       /* [nranks] c_l of every rank */
    int *child_start; /* [nunits + 1] children of unit u: child_list[child_start[u] ..) */
    int *child_list;  /* level 0: ranks (ascending); level l: level-(l-1) units, in order */
    /* Rails: ranks with equal coordinates below this level (c_0 .. c_{l-1}) share a key. */
    int nkeys;
    int *key_of;  /* [nranks] dense key id of each rank */
    int *key_rep; /* [nkeys] the smallest rank with that key */
} pc_level;

typedef struct {
    int nranks, rank;
    int nlevels; /* level 0 = host; nlevels - 1 = the top, a single unit */
    pc_level lv[PC_MAX_LEVELS];
    int *order;     /* [nranks] ranks in topology order */
    int *pos_of;    /* [nranks] position of each rank in order */
    pc_group world; /* order as a group */
    int memsem;     /* highest level l such that levels 0..l all have memory semantics */
} pc_levels;

/* Builds L from unit_of[l][r] for levels 0..nlv-1 (level 0 = host; units numbered from 0;
 * every unit of level l must lie inside one unit of level l+1), names and link classes. A top
 * level with more than one unit gets one more level above it ("network", with the link class
 * of the level below it). Returns 0, or -1 when out of memory or the levels do not nest (why
 * says which). */
int levels_build(pc_levels *L, int nranks, int rank, int nlv, int *const *unit_of,
                 const char (*names)[PC_TOPO_NAME_BYTES], const pc_link_class *links, char *why,
                 size_t len);
void levels_free(pc_levels *L);
/* The same levels seen from another rank (tests build every rank's schedule from one L). */
void levels_set_rank(pc_levels *L, int rank);

/* The rank that represents unit u of level l for coordinates key[0 .. l] (raw coordinates of
 * some rank, as in the hierarchical algorithms' rails): descend from u, at each level k picking
 * child key[k] mod (number of children). */
int levels_owner(const pc_levels *L, int l, int u, const int *key);

/* Writes a readable description of the levels (names, link classes, units with their ranks,
 * leaders, rails) into buf (at most len bytes). */
void levels_describe(const pc_levels *L, char *buf, size_t len);

#endif
