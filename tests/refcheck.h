/* Exact inputs and independent reference results, shared by the tests and ccl-bench's -c check.
 *
 * Every input value is a small integer chosen so that the exact result of every reduction op is
 * representable in every podccl datatype (int8 .. fp64, fp16 and bf16 included) and does not
 * depend on the order of reduction; a wrong, missing or duplicated contribution changes it.
 * The reference is computed here with plain loops in double, never with podccl code. */
#ifndef PODCCL_REFCHECK_H
#define PODCCL_REFCHECK_H

#include <stddef.h>
#include <stdint.h>

#include "podccl.h"

/* Input value of element `idx` (global element index) on rank `rank` of `nranks`, for `op`
 * (sum/avg/prod/max/min each get values that stay exact). `salt` varies the pattern between
 * calls so that a stale buffer from an earlier call is caught. Requires nranks <= 64. */
double rc_value(podcclRedOp_t op, int rank, int nranks, size_t idx, uint64_t salt);

/* The exact result of reducing rc_value over all ranks with op (avg included). */
double rc_reduced(podcclRedOp_t op, int nranks, size_t idx, uint64_t salt);

/* Element i of a buffer of type t, to and from double (exact for the values above). */
void rc_store(void *buf, size_t i, podcclDataType_t t, double v);
double rc_load(const void *buf, size_t i, podcclDataType_t t);
size_t rc_type_size(podcclDataType_t t);

/* buf[i] = rc_value(op, rank, nranks, first + i, salt) for i < count. */
void rc_fill(void *buf, size_t count, podcclDataType_t t, podcclRedOp_t op, int rank, int nranks,
             size_t first, uint64_t salt);

/* Number of i < count with buf[i] != rc_reduced(op, nranks, first + i, salt), compared bit for
 * bit after conversion to the buffer's type. */
size_t rc_check_reduced(const void *buf, size_t count, podcclDataType_t t, podcclRedOp_t op,
                        int nranks, size_t first, uint64_t salt);

/* Number of i < count with buf[i] != rc_value(op, rank, nranks, first + i, salt): checks that a
 * buffer holds rank `rank`'s input (all-gather, broadcast, all-to-all). */
size_t rc_check_values(const void *buf, size_t count, podcclDataType_t t, podcclRedOp_t op,
                       int rank, int nranks, size_t first, uint64_t salt);

/* Fills buf (count elements of t) with a byte pattern no correct result can contain (0xA5...),
 * so that elements a collective forgot to write are caught. */
void rc_poison(void *buf, size_t count, podcclDataType_t t);

#endif
