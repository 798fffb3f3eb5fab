/* paid.c - the paid lines: what earlier closes already paid, per line identity.
 *
 * acr_comm_add_closed keeps a stored statement (the CSV bytes of a close)
 * where it lies, and cuts it into blocks, one per partner: statements are in
 * partner_id order, so each partner's lines are one run of lines. Nothing
 * else of a line is read then. lines.c, partner by partner, has
 * acr__paid_load parse that partner's blocks of every close, in close order,
 * into a table of the partner's own (paid amounts summed per line identity
 * (origin period, kind, source id), the latest close's fields kept), and
 * subtracts what was already paid. So a run with a year of closes holds one
 * partner's paid lines at a time, not the ~10 M of every close, and parses
 * them on whichever core computes the partner. The CSV writer is statement.c.
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

acr__paid_t *acr__paid_find(const acr__paid_set_t *ps, uint32_t hash, int32_t origin,
                            unsigned kind, const char *src, size_t n)
{
    for (size_t j = hash & ps->mask;; j = (j + 1) & ps->mask) {
        uint64_t s = ps->slots[j];
        if (s == 0)
            return NULL;
        if ((uint32_t)(s >> 32) != hash)
            continue; /* another identity: its entry is not touched */
        acr__paid_t *pd = &ps->v[(uint32_t)s - 1];
        if (pd->origin == origin && pd->kind == kind && pd->source_len == n &&
            memcmp(pd->source, src, n) == 0)
            return pd;
    }
}

/* Room for `most` identities: the entries, and a table of at least twice as many slots
 * (a power of two), zeroed. */
static int set_reserve(acr__paid_set_t *ps, size_t most)
{
    if (acr__grow((void **)&ps->v, &ps->cap, most ? most : 1, sizeof *ps->v) != 0)
        return ACR_ENOMEM;
    size_t n = 16;
    while (n < 2 * most)
        n *= 2;
    if (n > ps->slots_cap) {
        free(ps->slots);
        ps->slots_cap = 0;
        if ((ps->slots = malloc(n * sizeof *ps->slots)) == NULL)
            return ACR_ENOMEM;
        ps->slots_cap = n;
    }
    memset(ps->slots, 0, n * sizeof *ps->slots);
    ps->mask = n - 1;
    ps->n = 0;
    return 0;
}

void acr__paid_set_free(acr__paid_set_t *ps)
{
    free(ps->v);
    free(ps->slots);
    memset(ps, 0, sizeof *ps);
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
           f[5].n >= 1 && f[5].n <= UINT32_MAX && f[8].n <= UINT32_MAX && f[11].n == 3;
}

/* One line of partner `partner`'s block into ps (which has room for it). */
static int add_line(const acr_comm_t *c, uint32_t partner, const char *p, size_t n,
                    size_t line_no, acr__paid_set_t *ps, acr_err_t *err)
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
    uint32_t h = acr__identity_hash(partner, cl.origin, (unsigned)cl.kind, f[5].p, f[5].n);
    acr__paid_t *pd = acr__paid_find(ps, h, cl.origin, (unsigned)cl.kind, f[5].p, f[5].n);
    if (pd == NULL) {
        pd = &ps->v[ps->n];
        memset(pd, 0, sizeof *pd);
        pd->origin = cl.origin;
        pd->kind = (uint8_t)cl.kind;
        pd->hash = h;
        pd->source = f[5].p;
        pd->source_len = (uint32_t)f[5].n;
        size_t j = h & ps->mask;
        while (ps->slots[j] != 0)
            j = (j + 1) & ps->mask;
        ps->slots[j] = (uint64_t)h << 32 | (uint32_t)++ps->n;
    }
    if (!acr_add_checked(&pd->amount_minor, cl.amount_minor))
        return acr__overflow(c, err, c->partners[partner].id, cl.origin);
    pd->seq = (uint64_t)cl.seq; /* the latest close's fields win */
    pd->at_ms = cl.at_ms;
    pd->rule = f[8].p;
    pd->rule_len = (uint32_t)f[8].n;
    pd->basis_minor = cl.basis_minor;
    memcpy(pd->currency, f[11].p, 3);
    pd->currency[3] = '\0';
    return 0;
}

int acr__paid_load(const acr_comm_t *c, const uint32_t *blk, uint32_t partner, size_t lines,
                   acr__paid_set_t *ps, acr_err_t *err)
{
    if (set_reserve(ps, lines) != 0)
        return acr_err_set(err, ACR_ENOMEM, "out of memory reading a stored statement");
    uint32_t np = c->partner_ids.count;
    for (size_t k = 0; k < c->closed_count; k++) {
        uint32_t b = blk[k * np + partner];
        if (b == 0)
            continue;
        const acr__closed_t *cs = &c->closed[k];
        const acr__closed_block_t *bl = &cs->blocks[b - 1];
        size_t line_no = bl->line_no;
        for (size_t pos = bl->off; pos < bl->end; line_no++) {
            const char *nl = memchr(cs->csv + pos, '\n', bl->end - pos);
            size_t n = (size_t)(nl - (cs->csv + pos)); /* found: the block ends with one */
            int rc = add_line(c, partner, cs->csv + pos, n, line_no, ps, err);
            if (rc != 0)
                return rc;
            pos += n + 1;
        }
    }
    return 0;
}

int acr__paid_index(const acr_comm_t *c, uint32_t **blk_out, size_t **lines_out)
{
    uint32_t np = c->partner_ids.count;
    uint32_t *blk = calloc(c->closed_count * np + 1, sizeof *blk);
    size_t *lines = calloc((size_t)np + 1, sizeof *lines);
    if (blk == NULL || lines == NULL) {
        free(blk);
        free(lines);
        return ACR_ENOMEM;
    }
    for (size_t k = 0; k < c->closed_count; k++) {
        const acr__closed_t *cs = &c->closed[k];
        for (size_t b = 0; b < cs->nblocks; b++) {
            blk[k * np + cs->blocks[b].partner] = (uint32_t)b + 1;
            lines[cs->blocks[b].partner] += cs->blocks[b].lines;
        }
    }
    *blk_out = blk;
    *lines_out = lines;
    return 0;
}

/* ---- a stored statement, cut into blocks ---- */

/* The partner field of a line (the second), or false when the line has fewer fields. */
static bool partner_field(const char *p, size_t n, field_t *out)
{
    const char *a = memchr(p, ',', n);
    if (a == NULL)
        return false;
    const char *b = memchr(a + 1, ',', n - (size_t)(a + 1 - p));
    if (b == NULL)
        return false;
    *out = (field_t){a + 1, (size_t)(b - (a + 1))};
    return true;
}

/* Bytewise order of two ids, as statements order partner_id. */
static int id_cmp(field_t a, field_t b)
{
    int d = memcmp(a.p, b.p, a.n < b.n ? a.n : b.n);
    return d != 0 ? d : (a.n > b.n) - (a.n < b.n);
}

int acr_comm_add_closed(acr_comm_t *c, const char *csv, size_t len, acr_err_t *err)
{
    size_t hl = strlen(ACR_STATEMENT_HEADER);
    if (len < hl || memcmp(csv, ACR_STATEMENT_HEADER, hl) != 0)
        return acr_err_set(err, ACR_ECORRUPT, "stored statement has no statement header");
    if (acr__grow((void **)&c->closed, &c->closed_cap, c->closed_count + 1, sizeof *c->closed))
        return acr_err_set(err, ACR_ENOMEM, "out of memory reading a stored statement");
    acr__closed_t *cs = &c->closed[c->closed_count];
    memset(cs, 0, sizeof *cs);
    cs->csv = csv;
    cs->len = len;
    size_t cap = 0, line_no = 1;
    field_t prev = {NULL, 0};
    int rc = 0;
    for (size_t pos = hl; rc == 0 && pos < len;) {
        const char *nl = memchr(csv + pos, '\n', len - pos);
        line_no++;
        size_t n = nl ? (size_t)(nl - (csv + pos)) : 0;
        field_t f;
        if (nl == NULL) {
            rc = acr_err_set(err, ACR_ECORRUPT, "stored statement line %zu has no newline",
                             line_no);
        } else if (!partner_field(csv + pos, n, &f) || f.n < 1 || f.n > ACR_ID_LEN_MAX) {
            rc = acr_err_set(err, ACR_ECORRUPT, "stored statement line %zu does not parse",
                             line_no);
        } else if (prev.p != NULL && id_cmp(f, prev) == 0) {
            cs->blocks[cs->nblocks - 1].end = pos + n + 1;
            cs->blocks[cs->nblocks - 1].lines++;
        } else if (prev.p != NULL && id_cmp(f, prev) < 0) {
            rc = acr_err_set(err, ACR_ECORRUPT,
                             "stored statement line %zu is out of partner_id order", line_no);
        } else {
            uint32_t partner;
            if (acr__partner_intern(c, f.p, (uint32_t)f.n, &partner) != 0 ||
                acr__grow((void **)&cs->blocks, &cap, cs->nblocks + 1, sizeof *cs->blocks))
                rc = acr_err_set(err, ACR_ENOMEM, "out of memory reading a stored statement");
            else
                cs->blocks[cs->nblocks++] =
                    (acr__closed_block_t){partner, 1, pos, pos + n + 1, line_no};
            prev = f;
        }
        pos += n + 1;
    }
    if (rc != 0) {
        free(cs->blocks);
        return rc;
    }
    c->closed_count++;
    return 0;
}
