/* Cost models: predicted time of a plan, microseconds. Alpha-beta-gamma per level from the
 * link classes (latency, bandwidth per rank), reduction at the measured kernel speed; on a
 * single memory-semantic domain of one host, the times measured for each algorithm on the
 * reference machine (they capture cache effects that an alpha-beta formula misses). */
#ifndef PODCCL_COST_H
#define PODCCL_COST_H

#include "algorithms/algo.h"

/* The cost of an algorithm the planner does not pick on its own here: inside one host the
 * measured table decides, and an alpha-beta guess must not outbid a measurement. Forced with
 * PODCCL_ALGO, such an algorithm still runs. */
#define PC_COST_UNMEASURED 1e30

/* Whole-buffer bytes as ccl-bench counts them (all-to-all-v: 0, ranks know only their own). */
double cost_bytes(const pc_levels *lv, const pc_args *a);
/* Measured time of algorithm `algo` on one host (the reference table), scaled to this rank
 * count; -1 when the table has no row for it or the ranks span more than one
 * memory-semantic domain. */
double cost_table(const pc_env *e, const pc_args *a, const char *algo);
/* 1 when every rank is in one memory-semantic domain (one host, or a supernode level). */
int cost_one_domain(const pc_levels *lv);
/* The level at which positions p and q of world first share a unit. */
int cost_level_of(const pc_levels *lv, int p, int q);
/* Bandwidth in bytes/us of level l when every rank of a host sends at once (per_rank) or when
 * one rank of each host does (the whole link: per rank x ranks per host). */
double cost_beta(const pc_levels *lv, int l, int per_rank);
double cost_alpha(const pc_levels *lv, int l);
/* Reduction time of `bytes` of output, us. */
double cost_gamma(const pc_env *e, const pc_args *a, double bytes);
/* The slowest level a ring over world crosses: its alpha and its whole-link beta. */
void cost_ring_link(const pc_levels *lv, double *alpha, double *beta);
/* Recursive halving/doubling in world order: sum over the log2(p) steps (distance 1, 2, 4,
 * ...) of alpha + bytes(step) / beta(level crossed), where bytes(step k) = S / 2^(k+1) when
 * halving, S when doubling whole vectors; plus the fold of the n - p extra ranks. */
double cost_rhd(const pc_env *e, const pc_args *a, double S, int halving);
int cost_pow2_below(int n);
/* A chain along the ring pipelined in chunks (ring broadcast and reduce): n - 2 + S/chunk chunk
 * steps on the slowest level the ring crosses. No reduction term. */
double cost_chain(const pc_env *e, const pc_args *a);
/* A binomial tree pipelined in chunks (tree broadcast and reduce): log2(n) + S/chunk - 1 steps,
 * the root's link sending every chunk log2(n) times. No reduction term; *depth = log2(n). */
double cost_tree(const pc_env *e, const pc_args *a, int *depth);

#endif
