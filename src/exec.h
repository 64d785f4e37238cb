/* The executor: walks a schedule, posts each step on the connection to its peer, polls
 * completions, keeps a bounded number of chunks in flight, and turns a dead or silent peer
 * into an error instead of a hang (through src/wait.h). */
#ifndef PODCCL_EXEC_H
#define PODCCL_EXEC_H

#include "algorithms/algo.h"
#include "src/comm.h"

#include "src/wait.h"

/* Runs the schedule to completion. Its messages carry comm->ex->cur (pc_op_begin, pc_op_p2p). */
podcclResult_t pc_exec(podcclComm_t comm, pc_sched *s);

/* Starts collective a: numbers it (comm->ex->op_seq, counted alike by every rank for every
 * collective, whichever path runs it), makes it comm->ex->cur and publishes its signature to the
 * peers of this host. podcclInvalidUsage if a peer of this host has already reported a mismatch
 * (so that a rank whose own part of a mismatched call ended early learns it at its next call). */
podcclResult_t pc_op_begin(podcclComm_t comm, const pc_args *a);
/* Starts a group of point-to-point operations: comm->ex->cur becomes the point-to-point
 * signature (seq 0), which both sides share. */
void pc_op_p2p(podcclComm_t comm);
/* For loops that wait without progress (after pc_wait_idle's spinning, on every 16th pass; else
 * nothing; w NULL: now): whether a peer of this host published another signature for the running
 * operation, or reported a mismatch; podcclInvalidUsage naming both calls (pc_mismatch), else
 * podcclSuccess. */
podcclResult_t pc_sig_idle_check(podcclComm_t comm, const pc_wait *w);
/* "podcclAllReduce(count 1024, float32, sum)"; returns buf. */
const char *pc_sig_str(const pc_sig *s, char *buf, size_t len);

#endif
