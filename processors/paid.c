/* paid.c - the paid lines: what earlier closes already paid, per line identity.
 *
 * acr_comm_add_closed keeps a stored statement (the CSV bytes of a close)
 * where it lies, and cuts it into blocks, one per partner: statements are in
 * partner_id order, so each partner's lines are one run of lines. Nothing
 * else of a line is read then. lines.c, partner by partner, has
 * acr__paid_load parse that partner's blocks of every close into one array
 * in statement order, with one entry per line identity (origin period, kind,
 * source id: paid amounts summed, the latest close's fields kept), and walks
 * it beside the partner's now-side lines, which come in the same order: a
 * merge, no look-up. So a run with a year of closes holds one partner's paid
 * lines at a time, not the ~10 M of every close, and parses them on whichever
 * core computes the partner. The CSV writer is statement.c.
 *
 * The order is the statement's: origin, kind, at, source_seq, source_id.
 * An identity's at and source_seq are those of its sale, refund or
 * adjustment event (empty for target_bonus and cap), so the same identity
 * sorts alike in every close and in the run, and each close's block is
 * already in order: the blocks are merged, not sorted (a block out of order,
 * which no close writes, is sorted instead).
 */
#include <stdlib.h>
#include <string.h>

#include "accrue/buf.h"
#include "accrue/date.h"
#include "accrue/limits.h"
#include "accrue/money.h"
#include "comm_internal.h"

/* ---- paid identities ---- */

/* A line's place in statement order, within its partner. */
typedef struct line_key {
    int32_t origin;
    unsigned kind;
    int64_t at_ms;
    uint64_t seq;
    const char *src;
    size_t src_len;
} line_key_t;

static int key_cmp(line_key_t a, line_key_t b)
{
    if (a.origin != b.origin)
        return a.origin < b.origin ? -1 : 1;
    if (a.kind != b.kind)
        return a.kind < b.kind ? -1 : 1;
    if (a.at_ms != b.at_ms)
        return a.at_ms < b.at_ms ? -1 : 1;
    if (a.seq != b.seq)
        return a.seq < b.seq ? -1 : 1;
    int d = memcmp(a.src, b.src, a.src_len < b.src_len ? a.src_len : b.src_len);
    return d != 0 ? d : (a.src_len > b.src_len) - (a.src_len < b.src_len);
}

static line_key_t paid_key(const acr__paid_t *p)
{
    return (line_key_t){p->origin, p->kind, p->at_ms, p->seq, p->source, p->source_len};
}

/* Statement order of two paid entries; 0: the same identity. */
static int paid_cmp(const acr__paid_t *a, const acr__paid_t *b)
{
    return key_cmp(paid_key(a), paid_key(b));
}

int acr__paid_line_cmp(const acr__paid_t *p, const acr_line_t *l, size_t src_len)
{
    return key_cmp(paid_key(p), (line_key_t){l->origin_period, l->kind, l->at_ms, l->source_seq,
                                             l->source_id, src_len});
}

static bool paid_less(const void *ctx, uint32_t a, uint32_t b)
{
    const acr__paid_t *v = ctx;
    return paid_cmp(&v[a], &v[b]) < 0;
}

/* Room for n entries in each array of ps. */
static int set_reserve(acr__paid_set_t *ps, size_t n)
{
    size_t cap = ps->cap;
    if (n == 0)
        n = 1;
    if (acr__grow((void **)&ps->v, &cap, n, sizeof *ps->v) != 0)
        return ACR_ENOMEM;
    cap = ps->cap;
    if (acr__grow((void **)&ps->w, &cap, n, sizeof *ps->w) != 0)
        return ACR_ENOMEM;
    cap = ps->cap;
    if (acr__grow((void **)&ps->idx, &cap, n, sizeof *ps->idx) != 0)
        return ACR_ENOMEM;
    cap = ps->cap;
    if (acr__grow((void **)&ps->tmp, &cap, n, sizeof *ps->tmp) != 0)
        return ACR_ENOMEM;
    ps->cap = cap;
    return 0;
}

void acr__paid_set_free(acr__paid_set_t *ps)
{
    free(ps->v);
    free(ps->w);
    free(ps->idx);
    free(ps->tmp);
    free(ps->runs);
    memset(ps, 0, sizeof *ps);
}

/* Merges the sorted runs of ps->idx (starts in ps->runs[0 .. nruns), ps->runs[nruns] = n)
 * pairwise until one is left; stable: of equal entries, the earlier run's come first. */
static void merge_runs(acr__paid_set_t *ps, size_t nruns, size_t n)
{
    uint32_t *src = ps->idx, *dst = ps->tmp;
    size_t *runs = ps->runs;
    while (nruns > 1) {
        size_t out = 0;
        for (size_t i = 0; i < nruns; i += 2) {
            size_t lo = runs[i], mid = runs[i + 1], hi = i + 2 <= nruns ? runs[i + 2] : mid;
            size_t a = lo, b = mid, k = lo;
            if (mid < hi && !paid_less(ps->v, src[mid], src[mid - 1])) {
                memcpy(dst + lo, src + lo, (hi - lo) * sizeof *src); /* already in order */
            } else {
                while (a < mid && b < hi)
                    dst[k++] = paid_less(ps->v, src[b], src[a]) ? src[b++] : src[a++];
                memcpy(dst + k, src + a, (mid - a) * sizeof *src);
                k += mid - a;
                memcpy(dst + k, src + b, (hi - b) * sizeof *src);
            }
            runs[out++] = lo;
        }
        runs[out] = n;
        nruns = out;
        uint32_t *t = src;
        src = dst;
        dst = t;
    }
    ps->idx = src;
    ps->tmp = dst;
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

/* One line of a block into *pd. */
static int parse_line(const acr_comm_t *c, const char *p, size_t n, size_t line_no,
                      acr__paid_t *pd, acr_err_t *err)
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
    pd->source = f[5].p;
    pd->source_len = (uint32_t)f[5].n;
    pd->rule = f[8].p;
    pd->rule_len = (uint32_t)f[8].n;
    pd->origin = cl.origin;
    pd->kind = (uint8_t)cl.kind;
    memcpy(pd->currency, f[11].p, 3);
    pd->currency[3] = '\0';
    pd->amount_minor = cl.amount_minor;
    pd->seq = (uint64_t)cl.seq;
    pd->at_ms = cl.at_ms;
    pd->basis_minor = cl.basis_minor;
    return 0;
}

int acr__paid_load(const acr_comm_t *c, const uint32_t *blk, uint32_t partner, size_t lines,
                   acr__paid_set_t *ps, acr_err_t *err)
{
    size_t runs_cap = ps->runs_cap;
    if (set_reserve(ps, lines) != 0 ||
        acr__grow((void **)&ps->runs, &runs_cap, c->closed_count + 1, sizeof *ps->runs) != 0)
        return acr_err_set(err, ACR_ENOMEM, "out of memory reading a stored statement");
    ps->runs_cap = runs_cap;
    uint32_t np = c->partner_ids.count;
    size_t n = 0, nruns = 0;
    bool sorted = true;
    for (size_t k = 0; k < c->closed_count; k++) {
        uint32_t b = blk[k * np + partner];
        if (b == 0)
            continue;
        const acr__closed_t *cs = &c->closed[k];
        const acr__closed_block_t *bl = &cs->blocks[b - 1];
        size_t line_no = bl->line_no, start = n;
        for (size_t pos = bl->off; pos < bl->end && n < lines; line_no++) {
            const char *nl = memchr(cs->csv + pos, '\n', bl->end - pos);
            size_t len = (size_t)(nl - (cs->csv + pos)); /* found: the block ends with one */
            int rc = parse_line(c, cs->csv + pos, len, line_no, &ps->v[n], err);
            if (rc != 0)
                return rc;
            sorted = sorted && (n == start || paid_cmp(&ps->v[n - 1], &ps->v[n]) < 0);
            ps->idx[n] = (uint32_t)n;
            n++;
            pos += len + 1;
        }
        if (n > start)
            ps->runs[nruns++] = start;
    }
    ps->runs[nruns] = n;
    if (sorted)
        merge_runs(ps, nruns, n);
    else
        acr__sort_idx(ps->idx, ps->tmp, n, paid_less, ps->v);
    /* one entry per identity: amounts summed, the latest close's fields */
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        const acr__paid_t *e = &ps->v[ps->idx[i]];
        if (m > 0 && paid_cmp(&ps->w[m - 1], e) == 0) {
            acr__paid_t *pd = &ps->w[m - 1];
            int64_t sum = pd->amount_minor;
            if (!acr_add_checked(&sum, e->amount_minor))
                return acr__overflow(c, err, c->partners[partner].id, e->origin);
            *pd = *e;
            pd->amount_minor = sum;
        } else {
            ps->w[m++] = *e;
        }
    }
    acr__paid_t *t = ps->v;
    ps->v = ps->w;
    ps->w = t;
    ps->n = m;
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
