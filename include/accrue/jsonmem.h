/* jsonmem.h - jansson's allocator, watched for out-of-memory.
 *
 * jansson 2.14 does not always fail a parse when an allocation fails: its
 * lexer can drop a byte and still return a tree (found by fault injection,
 * docs/reliability.md K2). Every JSON parse in accrue therefore runs with
 * allocation hooks that record a failure, and a parse during which any
 * allocation failed is treated as out of memory, whatever jansson returned.
 */
#ifndef ACCRUE_JSONMEM_H
#define ACCRUE_JSONMEM_H

#include <stdbool.h>

/* Installs the hooks (once per process; thread-safe). Call before parsing. */
void acr_jsonmem_init(void);
/* Clears this thread's failure flag; call right before a parse. */
void acr_jsonmem_begin(void);
/* true when an allocation failed on this thread since acr_jsonmem_begin. */
bool acr_jsonmem_failed(void);

#endif
