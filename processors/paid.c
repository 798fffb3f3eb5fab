/* paid.c - the paid lines: what earlier closes already paid, per line identity.
 *
 * acr_comm_add_closed parses a stored statement (the CSV bytes of a close)
 * back into paid amounts per line identity (partner, origin period, kind,
 * source id), summed over every close, keeping the fields of the latest
 * close's line for identities whose now-side line has gone. lines.c looks
 * them up in a table per partner (paid_index) to subtract what was already
 * paid. The CSV writer is statement.c.
 */
#include <stdlib.h>
#include <string.h>
#define XXH_INLINE_ALL /* the short-id paths inline: a few instructions, no call */
#include <xxhash.h>

#include "accrue/buf.h"
#include "accrue/date.h"
#include "accrue/limits.h"
#include "accrue/money.h"
#include "comm_internal.h"

/* ---- paid identities ---- */

uint32_t acr__identity_hash(uint32_t partner, int32_t origin, unsigned kind, const char *src,
                            size_t src_len)
{
    uint64_t seed = ((uint64_t)partner << 32) ^ ((uint64_t)(uint32_t)origin << 4) ^ kind;
    return (uint32_t)XXH3_64bits_withSeed(src, src_len, seed);
}

/* Each line of every stored statement read back finds or adds its identity here (~10 M
 * with a year of closes; the lines of a run look theirs up in their partner's own table,
 * lines.c): a slot holds the identity's hash beside its index, so a probe past another
 * identity does not touch that entry (a cache miss each). */
static acr__paid_t *paid_find(const acr_comm_t *c, uint32_t partner, int32_t origin,
                              unsigned kind, const char *src, size_t src_len, uint32_t hash)
{
    if (c->paid_slots == NULL)
        return NULL;
    for (size_t i = hash & c->paid_mask;; i = (i + 1) & c->paid_mask) {
        uint64_t slot = c->paid_slots[i];
        if (slot == 0)
            return NULL;
        if ((uint32_t)(slot >> 32) != hash)
            continue;
        acr__paid_t *pd = &c->paid[(uint32_t)slot - 1];
        if (pd->partner == partner && pd->origin == origin &&
            pd->kind == kind && strncmp(pd->source, src, src_len) == 0 &&
            pd->source[src_len] == '\0')
            return pd;
    }
}

/* Rehashes into a table of at least 2 * want slots (a power of two, at least double the
 * current one): zeroed, 2 MiB-aligned and huge-page advised when large (a probe is a
 * random access). */
static int paid_rehash(acr_comm_t *c, size_t want)
{
    size_t n = c->paid_slots ? (c->paid_mask + 1) * 2 : 256;
    while (n < 2 * want)
        n *= 2;
    uint64_t *slots = acr__table_alloc(n * sizeof *slots);
    if (slots == NULL)
        return ACR_ENOMEM;
    for (size_t k = 0; k < c->paid_count; k++) {
        size_t i = c->paid[k].hash & (n - 1);
        while (slots[i] != 0)
            i = (i + 1) & (n - 1);
        slots[i] = (uint64_t)c->paid[k].hash << 32 | ((uint32_t)k + 1);
    }
    acr__table_free(c->paid_slots, c->paid_slots ? (c->paid_mask + 1) * sizeof *slots : 0);
    c->paid_slots = slots;
    c->paid_mask = n - 1;
    return 0;
}

/* The paid entry of an identity, created with amount 0 when new. */
static acr__paid_t *paid_get(acr_comm_t *c, uint32_t partner, int32_t origin, unsigned kind,
                             const char *src, size_t src_len)
{
    uint32_t h = acr__identity_hash(partner, origin, kind, src, src_len);
    acr__paid_t *pd = paid_find(c, partner, origin, kind, src, src_len, h);
    if (pd != NULL)
        return pd;
    if (c->paid_count + 1 >= UINT32_MAX)
        return NULL;
    if (((c->paid_count + 1) * 2 > (c->paid_slots ? c->paid_mask + 1 : 0) &&
         paid_rehash(c, c->paid_count + 1)) ||
        acr__grow((void **)&c->paid, &c->paid_cap, c->paid_count + 1, sizeof *c->paid) != 0)
        return NULL;
    pd = &c->paid[c->paid_count];
    memset(pd, 0, sizeof *pd);
    if ((pd->source = acr__arena_strdup(&c->arena, src, src_len)) == NULL)
        return NULL;
    pd->partner = partner;
    pd->origin = origin;
    pd->kind = (uint8_t)kind;
    pd->hash = h;
    size_t i = h & c->paid_mask;
    while (c->paid_slots[i] != 0)
        i = (i + 1) & c->paid_mask;
    c->paid_slots[i] = (uint64_t)h << 32 | (uint32_t)++c->paid_count;
    return pd;
}

/* ---- parsing a stored statement ---- */

typedef struct field {
    const char *p;
    size_t n;
} field_t;

static bool parse_i64(field_t f, int64_t *out)
{
    size_t i = 0;
    bool neg = f.n > 0 && f.p[0] == '-';
    i = neg;
    if (i == f.n)
        return false;
    uint64_t v = 0;
    for (; i < f.n; i++) {
        if (f.p[i] < '0' || f.p[i] > '9' || v > (UINT64_MAX - 9) / 10)
            return false;
        v = v * 10 + (uint64_t)(f.p[i] - '0');
    }
    if (v > (uint64_t)INT64_MAX + neg)
        return false;
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return true;
}

static int kind_of(field_t f)
{
    for (int k = 0; k < ACR_LINE__COUNT; k++) {
        const char *name = acr_line_kind_name(k);
        if (strlen(name) == f.n && memcmp(name, f.p, f.n) == 0)
            return k;
    }
    return -1;
}

typedef struct closed_line {
    int32_t origin;
    int kind;
    int64_t seq, at_ms, basis_minor, amount_minor;
} closed_line_t;

static bool parse_numbers(const acr_comm_t *c, const field_t *f, closed_line_t *out)
{
    out->seq = 0;
    out->at_ms = 0;
    out->kind = kind_of(f[4]);
    return acr_period_parse(c->cfg.period_kind, f[3].p, f[3].n, &out->origin) &&
           out->kind >= 0 && (f[6].n == 0 || (parse_i64(f[6], &out->seq) && out->seq >= 0)) &&
           (f[7].n == 0 || acr_ts_parse(f[7].p, f[7].n, &out->at_ms)) &&
           parse_i64(f[9], &out->basis_minor) && parse_i64(f[10], &out->amount_minor) &&
           f[1].n >= 1 && f[1].n <= ACR_ID_LEN_MAX && f[5].n >= 1 && f[11].n == 3;
}

static int add_record(acr_comm_t *c, const char *p, size_t n, size_t line_no, acr_err_t *err)
{
    field_t f[12];
    size_t k = 0, start = 0;
    for (size_t i = 0; i <= n && k < 12; i++) {
        if (i == n || p[i] == ',') {
            f[k++] = (field_t){p + start, i - start};
            start = i + 1;
        }
    }
    closed_line_t cl;
    if (k != 12 || start != n + 1 || !parse_numbers(c, f, &cl))
        return acr_err_set(err, ACR_ECORRUPT, "stored statement line %zu does not parse",
                           line_no);
    uint32_t partner, rule;
    if (acr__partner_intern(c, f[1].p, (uint32_t)f[1].n, &partner) != 0 ||
        acr__strtab_intern(&c->attrs, &c->arena, f[8].p, (uint32_t)f[8].n, &rule, NULL) != 0)
        return acr_err_set(err, ACR_ENOMEM, "out of memory reading a stored statement");
    acr__paid_t *pd = paid_get(c, partner, cl.origin, (unsigned)cl.kind, f[5].p, f[5].n);
    if (pd == NULL)
        return acr_err_set(err, ACR_ENOMEM, "out of memory reading a stored statement");
    if (!acr_add_checked(&pd->amount_minor, cl.amount_minor))
        return acr__overflow(c, err, c->partners[partner].id, cl.origin);
    pd->seq = (uint64_t)cl.seq; /* the latest close's fields win */
    pd->at_ms = cl.at_ms;
    pd->rule = c->attrs.ents[rule].s;
    pd->basis_minor = cl.basis_minor;
    memcpy(pd->currency, f[11].p, 3);
    pd->currency[3] = '\0';
    return 0;
}

/* The shortest statement line: 12 fields, 11 commas and a newline, of which the period and
 * origin (7 bytes each at least), the line number, partner, kind, source, amounts (1 each)
 * and the currency (3). An estimate of the lines from above: a wrong one costs only room. */
#define LINE_BYTES_MIN 32

int acr_comm_add_closed(acr_comm_t *c, const char *csv, size_t len, acr_err_t *err)
{
    size_t hl = strlen(ACR_STATEMENT_HEADER);
    if (len < hl || memcmp(csv, ACR_STATEMENT_HEADER, hl) != 0)
        return acr_err_set(err, ACR_ECORRUPT, "stored statement has no statement header");
    /* room for its lines at once (each is a new identity at most, and longer than
     * LINE_BYTES_MIN): growing by doubling rehashed and copied ~10 M identities over and
     * over, a third of a run with a year of closes */
    size_t most = c->paid_count + (len - hl) / LINE_BYTES_MIN + 1;
    if ((most * 2 > (c->paid_slots ? c->paid_mask + 1 : 0) && paid_rehash(c, most) != 0) ||
        acr__grow((void **)&c->paid, &c->paid_cap, most, sizeof *c->paid) != 0)
        return acr_err_set(err, ACR_ENOMEM, "out of memory reading a stored statement");
    size_t line_no = 1;
    for (size_t pos = hl; pos < len;) {
        const char *nl = memchr(csv + pos, '\n', len - pos);
        line_no++;
        if (nl == NULL)
            return acr_err_set(err, ACR_ECORRUPT, "stored statement line %zu has no newline",
                               line_no);
        size_t n = (size_t)(nl - (csv + pos));
        int rc = add_record(c, csv + pos, n, line_no, err);
        if (rc != 0)
            return rc;
        pos += n + 1;
    }
    return 0;
}
