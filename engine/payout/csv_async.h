/* csv_async.h - the statement CSV written on a second thread (engine/payout only).
 *
 * A streamed run (acr_comm_output_t.csv_write) spends a sixth of its CPU in write(2),
 * copying ~100 bytes a line into the page cache, while the log reader's core sits idle
 * once the replay is done. The wrapper below takes the processor's chunks into a few
 * large buffers and hands each full one to a writer thread, so formatting and writing
 * overlap. The bytes reach the caller's sink in the same order; with the thread every chunk
 * but the last is one whole buffer (1 MiB, page-aligned in memory and, being whole, in the
 * file), so a sink may write them with O_DIRECT (the CLI's --out does); the fingerprint is
 * unchanged (the processor hashes what it hands over). Without a thread it writes the
 * processor's chunks synchronously, as they come.
 */
#ifndef ACCRUE_ENGINE_PAYOUT_CSV_ASYNC_H
#define ACCRUE_ENGINE_PAYOUT_CSV_ASYNC_H

#include <stddef.h>

#include "accrue/commission.h"

typedef struct acr__csv_async acr__csv_async_t;

/* A writer in front of o->csv_write / o->csv_arg; *wrapped is o with the wrapper's
 * callback and argument (omit_lines kept). NULL on out of memory. */
acr__csv_async_t *acr__csv_async_open(const acr_comm_output_t *o, acr_comm_output_t *wrapped);

/* Writes what is buffered, waits for the thread and frees the writer: 0 or the first
 * error code the caller's sink returned (also returned by the wrapper's later calls,
 * which ends the run early). */
int acr__csv_async_close(acr__csv_async_t *w);

#endif
