/* fuzz_common.h - shared bits of the libFuzzer targets (tests/fuzz/).
 *
 * A target returns 0 for every input; an oracle that fails calls
 * FUZZ_ASSERT, which aborts so libFuzzer saves the input as a crash.
 */
#ifndef ACCRUE_FUZZ_COMMON_H
#define ACCRUE_FUZZ_COMMON_H

#include <stdio.h>
#include <stdlib.h>

#define FUZZ_ASSERT(cond, what)                                                                   \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz oracle failed: %s (%s:%d)\n", what, __FILE__, __LINE__);        \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#endif
