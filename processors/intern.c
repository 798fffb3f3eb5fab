/* intern.c - the processor's memory: an arena, string interning, index sort.
 *
 * The hot loop of acr_comm_feed must not call malloc per event, and strings
 * in an event are only valid during the feed call. So every kept string is
 * copied once into a chunked arena and interned in an open-addressing table
 * (slots hold an index, the entry holds the hash, so a lookup compares
 * 4-byte hashes before bytes). Records then carry u32 indexes, never
 * pointers to event bytes. Arrays grow by doubling (amortised O(1)).
 */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#define XXH_INLINE_ALL /* the short-id paths inline: a few instructions, no call */
#include <xxhash.h>

#include "accrue/error.h"
#include "comm_internal.h"

#define CHUNK_BYTES (1u << 20) /* 1 MiB: few chunks, little waste */

void *acr__arena_alloc(acr__arena_t *a, size_t n)
{
    n = (n + 7) & ~(size_t)7;
    acr__chunk_t *h = a->head;
    if (h == NULL || h->cap - h->used < n) {
        size_t cap = n > CHUNK_BYTES ? n : CHUNK_BYTES;
        acr__chunk_t *c = malloc(sizeof *c + cap);
        if (c == NULL)
            return NULL;
        c->next = h;
        c->used = 0;
        c->cap = cap;
        a->head = h = c;
    }
    void *p = h->data + h->used;
    h->used += n;
    return p;
}

char *acr__arena_strdup(acr__arena_t *a, const char *s, size_t n)
{
    char *p = acr__arena_alloc(a, n + 1);
    if (p == NULL)
        return NULL;
    if (n > 0)
        memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

void acr__arena_free(acr__arena_t *a)
{
    acr__chunk_t *c = a->head;
    while (c != NULL) {
        acr__chunk_t *next = c->next;
        free(c);
        c = next;
    }
    a->head = NULL;
}

void acr__arena_move(acr__arena_t *to, acr__arena_t *from)
{
    acr__chunk_t *tail = from->head;
    if (tail == NULL)
        return;
    while (tail->next != NULL)
        tail = tail->next;
    tail->next = to->head; /* to's chunks become the older ones */
    to->head = from->head;
    from->head = NULL;
}

uint32_t acr__hash(const void *p, size_t n)
{
    return (uint32_t)XXH3_64bits(p, n);
}

#define HUGE_BYTES ((size_t)2 << 20) /* a transparent huge page */

/* Advises the whole huge pages inside [p, p + n) for transparent huge pages: the big
 * tables are probed at random, and with 4 KiB pages nearly every probe of a 64+ MiB
 * table also misses the TLB. Advice only: a failure changes nothing. */
static void advise_huge(void *p, size_t n)
{
#ifdef MADV_HUGEPAGE
    uintptr_t lo = ((uintptr_t)p + HUGE_BYTES - 1) & ~(uintptr_t)(HUGE_BYTES - 1);
    uintptr_t hi = ((uintptr_t)p + n) & ~(uintptr_t)(HUGE_BYTES - 1);
    if (hi > lo)
        madvise((void *)lo, hi - lo, MADV_HUGEPAGE);
#else
    (void)p, (void)n;
#endif
}

void *acr__table_alloc(size_t bytes)
{
    if (bytes < 2 * HUGE_BYTES) {
        void *p = aligned_alloc(64, (bytes + 63) & ~(size_t)63);
        if (p != NULL)
            memset(p, 0, bytes);
        return p;
    }
    /* fresh anonymous pages are zero: no memset; 2 MiB-aligned so every page can be huge */
    size_t len = (bytes + HUGE_BYTES - 1) & ~(HUGE_BYTES - 1);
    char *base = mmap(NULL, len + HUGE_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                      -1, 0);
    if (base == MAP_FAILED)
        return NULL;
    char *p = (char *)(((uintptr_t)base + HUGE_BYTES - 1) & ~(uintptr_t)(HUGE_BYTES - 1));
    if (p > base)
        munmap(base, (size_t)(p - base));
    if (p + len < base + len + HUGE_BYTES)
        munmap(p + len, (size_t)(base + len + HUGE_BYTES - (p + len)));
    advise_huge(p, len);
    return p;
}

void acr__table_free(void *p, size_t bytes)
{
    if (p == NULL)
        return;
    if (bytes < 2 * HUGE_BYTES)
        free(p);
    else
        munmap(p, (bytes + HUGE_BYTES - 1) & ~(HUGE_BYTES - 1));
}

int acr__grow(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    size_t n = *cap ? *cap : 16;
    while (n < need)
        n *= 2;
    if (n > SIZE_MAX / elem)
        return ACR_ENOMEM;
    void *q = realloc(*p, n * elem);
    if (q == NULL)
        return ACR_ENOMEM;
    if (n * elem >= 4 * HUGE_BYTES)
        advise_huge(q, n * elem);
    *p = q;
    *cap = n;
    return 0;
}

/* A slot holds idx + 1 in its low SLOT_IDX_BITS and the hash's top bits above, so a probe
 * rejects most other keys without touching the entry (a cache miss each at 10 M ids). */
#define SLOT_IDX_BITS 27
#define SLOT_IDX_MASK ((1u << SLOT_IDX_BITS) - 1)
#define SLOT_TAG(hash) ((hash) & ~SLOT_IDX_MASK)

uint32_t acr__strtab_find(const acr__strtab_t *t, const char *s, uint32_t len, uint32_t hash)
{
    if (t->mask == 0)
        return ACR__NONE;
    uint32_t tag = SLOT_TAG(hash);
    for (uint32_t i = hash & t->mask;; i = (i + 1) & t->mask) {
        uint32_t slot = t->slots[i];
        if (slot == 0)
            return ACR__NONE;
        if ((slot & ~SLOT_IDX_MASK) != tag)
            continue;
        const acr__strent_t *e = &t->ents[(slot & SLOT_IDX_MASK) - 1];
        if (e->hash == hash && e->len == len && acr__bytes_eq(e->s, s, len))
            return (slot & SLOT_IDX_MASK) - 1;
    }
}

/* Doubles the slot array (load factor kept <= 1/2) and reinserts. */
static int rehash(acr__strtab_t *t)
{
    uint32_t nslots = t->mask ? (t->mask + 1) * 2 : 64;
    if (nslots == 0)
        return ACR_ENOMEM;
    uint32_t *slots = calloc(nslots, sizeof *slots);
    if (slots == NULL)
        return ACR_ENOMEM;
    uint32_t mask = nslots - 1;
    for (uint32_t k = 0; k < t->count; k++) {
        uint32_t h = t->ents[k].hash, i = h & mask;
        while (slots[i] != 0)
            i = (i + 1) & mask;
        slots[i] = SLOT_TAG(h) | (k + 1);
    }
    free(t->slots);
    t->slots = slots;
    t->mask = mask;
    return 0;
}

int acr__strtab_intern(acr__strtab_t *t, acr__arena_t *a, const char *s, uint32_t len,
                       uint32_t *out_idx, bool *out_new)
{
    uint32_t hash = acr__hash(s, len);
    uint32_t idx = acr__strtab_find(t, s, len, hash);
    if (out_new != NULL)
        *out_new = idx == ACR__NONE;
    if (idx != ACR__NONE) {
        *out_idx = idx;
        return 0;
    }
    if (t->count >= SLOT_IDX_MASK - 1)
        return ACR_ENOMEM; /* 134 M distinct ids per table: far beyond the 10 M-event target */
    if ((size_t)(t->count + 1) * 2 > (size_t)t->mask + 1 && rehash(t) != 0)
        return ACR_ENOMEM;
    size_t cap = t->ents_cap;
    if (acr__grow((void **)&t->ents, &cap, (size_t)t->count + 1, sizeof *t->ents) != 0)
        return ACR_ENOMEM;
    t->ents_cap = (uint32_t)(cap > UINT32_MAX ? UINT32_MAX : cap);
    const char *copy = acr__arena_strdup(a, s, len);
    if (copy == NULL)
        return ACR_ENOMEM;
    idx = t->count++;
    t->ents[idx] = (acr__strent_t){copy, len, hash};
    uint32_t i = hash & t->mask;
    while (t->slots[i] != 0)
        i = (i + 1) & t->mask;
    t->slots[i] = SLOT_TAG(hash) | (idx + 1);
    *out_idx = idx;
    return 0;
}

void acr__strtab_free(acr__strtab_t *t)
{
    free(t->ents);
    free(t->slots);
    memset(t, 0, sizeof *t);
}

/* Bottom-up merge sort: stable, O(n log n) worst case, no recursion. */
void acr__sort_idx(uint32_t *idx, uint32_t *tmp, size_t n, acr__less_fn less, const void *ctx)
{
    size_t i = 1;
    while (i < n && !less(ctx, idx[i], idx[i - 1]))
        i++;
    if (i >= n)
        return; /* already in order: the common case (events mostly arrive in time order) */
    uint32_t *src = idx, *dst = tmp;
    for (size_t width = 1; width < n; width *= 2) {
        for (size_t lo = 0; lo < n; lo += 2 * width) {
            size_t mid = lo + width < n ? lo + width : n;
            size_t hi = lo + 2 * width < n ? lo + 2 * width : n;
            size_t a = lo, b = mid, k = lo;
            while (a < mid && b < hi)
                dst[k++] = less(ctx, src[b], src[a]) ? src[b++] : src[a++];
            while (a < mid)
                dst[k++] = src[a++];
            while (b < hi)
                dst[k++] = src[b++];
        }
        uint32_t *t = src;
        src = dst;
        dst = t;
    }
    if (src != idx)
        memcpy(idx, src, n * sizeof *idx);
}

/* ---- the big tables: sale ids, customers, long ids, refund sums ---- */

int acr__pool_add(acr__pool_t *pl, const char *s, uint32_t n, uint64_t *out_off)
{
    size_t need = pl->len + 4 + (size_t)n;
    if (need > pl->cap) {
        size_t cap = pl->cap ? pl->cap : 4096;
        while (cap < need)
            cap *= 2;
        char *d = realloc(pl->data, cap);
        if (d == NULL)
            return ACR_ENOMEM;
        pl->data = d;
        pl->cap = cap;
    }
    *out_off = pl->len;
    memcpy(pl->data + pl->len, &n, 4);
    memcpy(pl->data + pl->len + 4, s, n);
    pl->len = need;
    return 0;
}

static uint64_t rsum_slot(uint32_t sale)
{
    return (uint64_t)sale * 0x9E3779B97F4A7C15ull >> 32;
}

acr__rsum_t *acr__rsum_get(acr_comm_t *c, uint32_t sale, bool create)
{
    if (c->rsums != NULL) {
        for (size_t i = rsum_slot(sale) & c->rsum_mask;; i = (i + 1) & c->rsum_mask) {
            if (c->rsums[i].sale == sale + 1)
                return &c->rsums[i];
            if (c->rsums[i].sale == 0)
                break;
        }
    }
    if (!create)
        return NULL;
    if (c->rsums == NULL || (c->rsum_count + 1) * 2 > c->rsum_mask + 1) {
        size_t n = c->rsums ? (c->rsum_mask + 1) * 2 : 256;
        acr__rsum_t *t = calloc(n, sizeof *t);
        if (t == NULL)
            return NULL;
        for (size_t k = 0; c->rsums != NULL && k <= c->rsum_mask; k++) {
            if (c->rsums[k].sale == 0)
                continue;
            size_t i = rsum_slot(c->rsums[k].sale - 1) & (n - 1);
            while (t[i].sale != 0)
                i = (i + 1) & (n - 1);
            t[i] = c->rsums[k];
        }
        free(c->rsums);
        c->rsums = t;
        c->rsum_mask = n - 1;
    }
    size_t i = rsum_slot(sale) & c->rsum_mask;
    while (c->rsums[i].sale != 0)
        i = (i + 1) & c->rsum_mask;
    c->rsums[i] = (acr__rsum_t){sale + 1, 0, 0};
    c->rsum_count++;
    return &c->rsums[i];
}

/* Sets ACR__SALE_NEWCUST on each customer's first sale, then frees the feed-only tables. */
void acr__mark_new_customers(acr_comm_t *c)
{
    const acr__cust_t *e = c->customers.ents;
    size_t n = e ? c->customers.mask + 1 : 0;
    for (size_t i = 0; i < n; i++) {
        if (i + 16 < n && e[i + 16].len != 0 && e[i + 16].first_sale != ACR__NONE)
            __builtin_prefetch(&c->sales[e[i + 16].first_sale], 1);
        if (e[i].len != 0 && e[i].first_sale != ACR__NONE)
            c->sales[e[i].first_sale].meta |= ACR__SALE_NEWCUST;
    }
    acr__table_free(c->customers.ents, n * sizeof *e);
    memset(&c->customers, 0, sizeof c->customers);
    acr__table_free(c->sale_ids.slots,
                    c->sale_ids.slots ? (c->sale_ids.mask + 1) * sizeof *c->sale_ids.slots : 0);
    memset(&c->sale_ids, 0, sizeof c->sale_ids);
}
