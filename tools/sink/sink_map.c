/* sink_map.c - a string-keyed hash index (open addressing, linear probing).
 *
 * One transaction of the sink finds "the row of partner P / deal D / sale S
 * touched earlier in this range" through it. Keys are slices of the read
 * snapshot's pages, not copies: the map lives no longer than the reader.
 * Reset keeps the memory, so a follow loop does not allocate per commit.
 */
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "sink.h"

typedef struct acr__sink_slot {
    const char *ptr; /* key bytes, NULL for an empty slot */
    uint32_t len;    /* key length */
    uint32_t value;  /* the caller's index */
} slot_t;

void acr__sink_map_init(acr__sink_map_t *m)
{
    memset(m, 0, sizeof *m);
}

void acr__sink_map_destroy(acr__sink_map_t *m)
{
    free(m->slots);
    memset(m, 0, sizeof *m);
}

void acr__sink_map_reset(acr__sink_map_t *m)
{
    if (m->count > 0)
        memset(m->slots, 0, m->cap * sizeof *m->slots);
    m->count = 0;
}

static size_t find(const slot_t *slots, size_t cap, acr_str_t key)
{
    size_t i = (size_t)XXH3_64bits(key.ptr, key.len) & (cap - 1);
    while (slots[i].ptr != NULL &&
           (slots[i].len != key.len || memcmp(slots[i].ptr, key.ptr, key.len) != 0))
        i = (i + 1) & (cap - 1);
    return i;
}

uint32_t acr__sink_map_get(const acr__sink_map_t *m, acr_str_t key)
{
    if (m->count == 0)
        return UINT32_MAX;
    size_t i = find(m->slots, m->cap, key);
    return m->slots[i].ptr != NULL ? m->slots[i].value : UINT32_MAX;
}

static int grow(acr__sink_map_t *m)
{
    size_t cap = m->cap ? m->cap * 2 : 1024;
    slot_t *slots = calloc(cap, sizeof *slots);
    if (slots == NULL)
        return ACR_ENOMEM;
    for (size_t i = 0; i < m->cap; i++) {
        if (m->slots[i].ptr == NULL)
            continue;
        acr_str_t k = {m->slots[i].ptr, m->slots[i].len};
        slots[find(slots, cap, k)] = m->slots[i];
    }
    free(m->slots);
    m->slots = slots;
    m->cap = cap;
    return 0;
}

int acr__sink_map_put(acr__sink_map_t *m, acr_str_t key, uint32_t value)
{
    if ((m->count + 1) * 2 > m->cap && grow(m) != 0) /* load factor <= 1/2 */
        return ACR_ENOMEM;
    size_t i = find(m->slots, m->cap, key);
    if (m->slots[i].ptr == NULL)
        m->count++;
    m->slots[i] = (slot_t){key.ptr, key.len, value};
    return 0;
}
