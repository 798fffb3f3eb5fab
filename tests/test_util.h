/* test_util.h - shared helpers for the Criterion unit tests. */
#ifndef ACCRUE_TEST_UTIL_H
#define ACCRUE_TEST_UTIL_H

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Asserts two byte strings are equal, printing both. */
#define ASSERT_BYTES_EQ(got, got_len, want, want_len)                                              \
    cr_assert((got_len) == (want_len) && memcmp((got), (want), (want_len)) == 0,                   \
              "bytes differ:\n--- got (%zu)\n%.*s\n--- want (%zu)\n%.*s", (size_t)(got_len),       \
              (int)(got_len), (const char *)(got), (size_t)(want_len), (int)(want_len),            \
              (const char *)(want))

#define ASSERT_STR_EQ(got, want)                                                                   \
    cr_assert(strcmp((got), (want)) == 0, "got \"%s\", want \"%s\"", (got), (want))

#endif
