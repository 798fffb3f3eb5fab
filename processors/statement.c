/* statement.c - the statement's bytes: CSV, fingerprint, totals.
 *
 * The lines of lines.c become the exact CSV of commissions.md
 * (header, no quoting, "\n" after every record, integers without "+" or
 * leading zeros, at in canonical UTC, empty source_seq/at for period-level
 * lines), numbered 1.. within each partner; the fingerprint is XXH3-128 of
 * those bytes in canonical big-endian hex, which is what xxh128sum prints.
 * Rows are formatted by hand rather than with printf: a 10 M-line run spends
 * most of its output time here. Parsing a stored statement back into paid
 * amounts is paid.c.
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

/* ---- building the statement ---- */

static char *put_str(char *o, const char *s)
{
    size_t n = strlen(s);
    memcpy(o, s, n);
    return o + n;
}

/* v in decimal at o, written from its last digit back (no copy: the digits are counted
 * first; a libc memcpy of the few digits was ~2 % of a 10 M-event run). */
static char *put_u64(char *o, uint64_t v)
{
    static const char pairs[201] = "00010203040506070809101112131415161718192021222324"
                                   "25262728293031323334353637383940414243444546474849"
                                   "50515253545556575859606162636465666768697071727374"
                                   "75767778798081828384858687888990919293949596979899";
    size_t n = 1;
    for (uint64_t x = v; x >= 10; x /= 10)
        n++;
    char *t = o + n;
    while (v >= 100) {
        t -= 2;
        memcpy(t, pairs + 2 * (v % 100), 2);
        v /= 100;
    }
    if (v >= 10) {
        t -= 2;
        memcpy(t, pairs + 2 * v, 2);
    } else {
        *--t = (char)('0' + v);
    }
    return o + n;
}

static char *put_i64(char *o, int64_t v)
{
    if (v < 0) {
        *o++ = '-';
        return put_u64(o, 0 - (uint64_t)v);
    }
    return put_u64(o, (uint64_t)v);
}

/* Strings repeated across rows, formatted once: a row's "run,partner_id," prefix, its
 * origin period, the date of its at, its rule. */
typedef struct period_cache {
    int32_t period;
    char id[ACR_PERIOD_ID_MAX];
    size_t id_len;
    int32_t day;  /* the date last formatted */
    char date[11];
    const char *prefix_partner; /* the partner_id the prefix was made for */
    char prefix[ACR_PERIOD_ID_MAX + ACR_ID_LEN_MAX + 4];
    size_t prefix_len;
    const char *rule;           /* the rule string of rule_len */
    size_t rule_len;
} period_cache_t;

static char *put_period(char *o, const acr_comm_t *c, period_cache_t *pc, int32_t period)
{
    if (pc->period != period || pc->id[0] == '\0') {
        acr_period_format(c->cfg.period_kind, period, pc->id);
        pc->period = period;
        pc->id_len = strlen(pc->id);
    }
    memcpy(o, pc->id, pc->id_len);
    return o + pc->id_len;
}

/* kind names with their comma */
static const struct {
    char s[24];
    uint8_t n;
} kind_col[ACR_LINE__COUNT] = {
#define XX(name, wire) {wire ",", sizeof wire},
    ACR_LINE_KIND_MAP(XX)
#undef XX
};

static char *put_2(char *o, unsigned v)
{
    *o++ = (char)('0' + v / 10);
    *o++ = (char)('0' + v % 10);
    return o;
}

/* The canonical UTC form of events.md (acr_ts_format's), without printf: the date part is
 * cached per day, since a statement's lines cluster on few days. */
static char *put_ts(char *o, int64_t ms, int32_t *cached_day, char date[11])
{
    int64_t day = ms >= 0 ? ms / ACR_MS_PER_DAY : -((-ms + ACR_MS_PER_DAY - 1) / ACR_MS_PER_DAY);
    int64_t rem = ms - day * ACR_MS_PER_DAY;
    if (day < INT32_MIN || day > INT32_MAX) {
        char ts[ACR_TS_BUF];
        size_t n = acr_ts_format(ms, ts);
        memcpy(o, ts, n);
        return o + n;
    }
    if ((int32_t)day != *cached_day || date[0] == '\0') {
        acr_date_format((int32_t)day, date);
        *cached_day = (int32_t)day;
    }
    o = put_str(o, date);
    *o++ = 'T';
    o = put_2(o, (unsigned)(rem / 3600000));
    *o++ = ':';
    o = put_2(o, (unsigned)(rem / 60000 % 60));
    *o++ = ':';
    o = put_2(o, (unsigned)(rem / 1000 % 60));
    if (rem % 1000 != 0) {
        *o++ = '.';
        *o++ = (char)('0' + rem % 1000 / 100);
        o = put_2(o, (unsigned)(rem % 100));
    }
    *o++ = 'Z';
    return o;
}

/* One CSV record; o has room for the longest one (< 512 bytes). */
static char *put_row(char *o, const acr_comm_t *c, const char *run_id, period_cache_t *pc,
                     const acr_line_t *l)
{
    if (l->partner_id != pc->prefix_partner) {
        size_t r = strlen(run_id), p = strlen(l->partner_id);
        if (r + p + 2 <= sizeof pc->prefix) {
            memcpy(pc->prefix, run_id, r);
            pc->prefix[r] = ',';
            memcpy(pc->prefix + r + 1, l->partner_id, p);
            pc->prefix[r + 1 + p] = ',';
            pc->prefix_len = r + p + 2;
            pc->prefix_partner = l->partner_id;
        } else { /* (ids are at most ACR_ID_LEN_MAX bytes) */
            o = put_str(o, run_id);
            *o++ = ',';
            o = put_str(o, l->partner_id);
            *o++ = ',';
            pc->prefix_partner = NULL;
        }
    }
    if (pc->prefix_partner != NULL) {
        memcpy(o, pc->prefix, pc->prefix_len);
        o += pc->prefix_len;
    }
    o = put_u64(o, l->line_no);
    *o++ = ',';
    o = put_period(o, c, pc, l->origin_period);
    *o++ = ',';
    if (l->kind < ACR_LINE__COUNT) {
        memcpy(o, kind_col[l->kind].s, kind_col[l->kind].n);
        o += kind_col[l->kind].n;
    } else {
        o = put_str(o, acr_line_kind_name(l->kind));
        *o++ = ',';
    }
    o = put_str(o, l->source_id);
    *o++ = ',';
    if (l->source_seq != 0) {
        o = put_u64(o, l->source_seq);
        *o++ = ',';
        o = put_ts(o, l->at_ms, &pc->day, pc->date);
    } else {
        *o++ = ',';
    }
    *o++ = ',';
    if (l->rule != pc->rule) {
        pc->rule = l->rule;
        pc->rule_len = strlen(l->rule);
    }
    memcpy(o, l->rule, pc->rule_len);
    o += pc->rule_len;
    *o++ = ',';
    o = put_i64(o, l->basis_minor);
    *o++ = ',';
    o = put_i64(o, l->amount_minor);
    *o++ = ',';
    o = put_str(o, l->currency);
    *o++ = '\n';
    return o;
}

/* The output of a statement being built: one line at a time, in statement order. */
struct acr__out {
    acr_comm_t *c;
    acr_statement_t *st;
    char run_id[ACR_PERIOD_ID_MAX];
    period_cache_t pc;
    acr_buf_t csv;              /* the whole CSV, or the unflushed bytes when streaming */
    size_t flushed;             /* bytes already streamed */
    XXH3_state_t *hs;           /* streaming: the fingerprint state */
    size_t lines_cap, pcap, ccap, plans_cap;
    acr_partner_total_t *t;     /* the current partner's totals */
    const char *last_rule;      /* the last rule string seen by plans_used */
};

#define OUT_FLUSH_BYTES (256u << 10)

static int out_flush(acr__out_t *o, acr_err_t *err)
{
    if (o->csv.len == 0)
        return 0;
    XXH3_128bits_update(o->hs, o->csv.data, o->csv.len);
    int rc = o->c->output.csv_write(o->c->output.csv_arg, o->csv.data, o->csv.len);
    if (rc != 0)
        return acr_err_set(err, rc, "cannot write the statement CSV");
    o->flushed += o->csv.len;
    o->csv.len = 0;
    return 0;
}

acr__out_t *acr__out_begin(acr_comm_t *c, acr_statement_t *st, acr_err_t *err)
{
    acr__out_t *o = calloc(1, sizeof *o);
    if (o == NULL) {
        acr_err_set(err, ACR_ENOMEM, "out of memory formatting the statement");
        return NULL;
    }
    o->c = c;
    o->st = st;
    acr_period_format(c->cfg.period_kind, st->period, o->run_id);
    acr_buf_init(&o->csv);
    int rc = 0;
    if (c->output.csv_write != NULL) {
        if ((o->hs = XXH3_createState()) == NULL)
            rc = ACR_ENOMEM;
        else
            XXH3_128bits_reset(o->hs);
    }
    size_t want = c->output.csv_write != NULL ? OUT_FLUSH_BYTES + 1024 : 1u << 16;
    if (rc == 0)
        rc = acr_buf_reserve(&o->csv, want);
    if (rc == 0)
        rc = acr_buf_append_str(&o->csv, ACR_STATEMENT_HEADER);
    if (rc != 0) {
        acr_err_set(err, ACR_ENOMEM, "out of memory formatting the statement");
        acr__out_abort(o);
        return NULL;
    }
    return o;
}

void acr__out_abort(acr__out_t *o)
{
    if (o == NULL)
        return;
    acr_buf_destroy(&o->csv);
    if (o->hs != NULL)
        XXH3_freeState(o->hs);
    free(o);
}

static int add_currency_total(acr_statement_t *st, size_t *cap, const acr_line_t *l)
{
    size_t i = 0;
    while (i < st->currency_count && strcmp(st->currency_totals[i].currency, l->currency) != 0)
        i++;
    if (i == st->currency_count) {
        if (acr__grow((void **)&st->currency_totals, cap, i + 1, sizeof *st->currency_totals))
            return ACR_ENOMEM;
        memset(&st->currency_totals[i], 0, sizeof st->currency_totals[i]);
        memcpy(st->currency_totals[i].currency, l->currency, 4);
        st->currency_count++;
    }
    return acr_add_checked(&st->currency_totals[i].total_minor, l->amount_minor) ? 0
                                                                                : ACR_EOVERFLOW;
}

/* The distinct "plan_id@version" of the lines' rule strings. */
static int note_plan_used(acr__out_t *o, const char *rule)
{
    acr_statement_t *st = o->st;
    if (rule[0] == '\0' || rule == o->last_rule)
        return 0;
    o->last_rule = rule;
    size_t n = strcspn(rule, "#"), k = 0;
    while (k < st->plans_used_count &&
           !(strncmp(st->plans_used[k], rule, n) == 0 && st->plans_used[k][n] == '\0'))
        k++;
    if (k < st->plans_used_count)
        return 0;
    char *s = acr__arena_strdup(&o->c->arena, rule, n);
    if (s == NULL || acr__grow((void **)&st->plans_used, &o->plans_cap, st->plans_used_count + 1,
                               sizeof *st->plans_used) != 0)
        return ACR_ENOMEM;
    st->plans_used[st->plans_used_count++] = s;
    return 0;
}

int acr__out_line(acr__out_t *o, const acr_line_t *line, bool stable, acr_err_t *err)
{
    acr_statement_t *st = o->st;
    acr_line_t l = *line;
    /* line numbers, per-partner and per-currency totals */
    acr_partner_total_t *t = o->t;
    if (t == NULL || t->partner_id != l.partner_id) {
        if (acr__grow((void **)&st->partners, &o->pcap, st->partner_count + 1, sizeof *t))
            return acr_err_set(err, ACR_ENOMEM, "out of memory");
        t = o->t = &st->partners[st->partner_count++];
        memset(t, 0, sizeof *t);
        t->partner_id = l.partner_id;
        memcpy(t->currency, l.currency, 4);
    }
    l.line_no = ++t->line_count;
    st->line_count++;
    if (o->c->output.window && l.origin_period >= o->c->output.window_lo)
        t->window_minor += l.amount_minor; /* i128: no bound a sum of int64s reaches */
    bool ok = acr_add_checked(&t->by_kind_minor[l.kind], l.amount_minor) &&
              acr_add_checked(&t->total_minor, l.amount_minor) &&
              (l.origin_period == st->period ||
               acr_add_checked(&t->prior_period_minor, l.amount_minor));
    int rc = ok ? add_currency_total(st, &o->ccap, &l) : ACR_EOVERFLOW;
    if (rc == ACR_ENOMEM)
        return acr_err_set(err, ACR_ENOMEM, "out of memory");
    if (rc != 0)
        return acr__overflow(o->c, err, l.partner_id, st->period);
    if (l.kind == ACR_LINE_PROMOTION)
        acr__promo_tally(o->c, &l); /* its rule is "promotion:<id>", not a plan version */
    else if (note_plan_used(o, l.rule) != 0)
        return acr_err_set(err, ACR_ENOMEM, "out of memory");
    /* the CSV record */
    if (!o->c->output.omit_csv) {
        if (acr_buf_reserve(&o->csv, 512) != 0)
            return acr_err_set(err, ACR_ENOMEM, "out of memory formatting the statement");
        char *end = put_row((char *)o->csv.data + o->csv.len, o->c, o->run_id, &o->pc, &l);
        o->csv.len = (size_t)(end - (char *)o->csv.data);
        if (o->hs != NULL && o->csv.len >= OUT_FLUSH_BYTES && (rc = out_flush(o, err)) != 0)
            return rc;
    }
    /* the line itself */
    if (o->c->output.omit_lines)
        return 0;
    if (!stable && (l.source_id = acr__arena_strdup(&o->c->arena, l.source_id,
                                                    strlen(l.source_id))) == NULL)
        return acr_err_set(err, ACR_ENOMEM, "out of memory");
    if (acr__grow((void **)&st->lines, &o->lines_cap, st->line_count, sizeof *st->lines))
        return acr_err_set(err, ACR_ENOMEM, "out of memory");
    st->lines[st->line_count - 1] = l;
    return 0;
}

static int cur_cmp(const void *a, const void *b)
{
    return strcmp(((const acr_currency_total_t *)a)->currency,
                  ((const acr_currency_total_t *)b)->currency);
}

static int str_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int acr__out_end(acr__out_t *o, acr_err_t *err)
{
    acr_statement_t *st = o->st;
    XXH128_hash_t h = {0, 0};
    int rc = 0;
    if (o->c->output.omit_csv) {
        st->csv = NULL; /* no bytes, no fingerprint */
        st->csv_len = 0;
    } else if (o->hs != NULL) {
        if ((rc = out_flush(o, err)) == 0) {
            h = XXH3_128bits_digest(o->hs);
            st->csv_len = o->flushed;
        }
    } else {
        h = XXH3_128bits(o->csv.data, o->csv.len);
        st->csv = (char *)o->csv.data;
        st->csv_len = o->csv.len;
        acr_buf_init(&o->csv); /* handed over */
    }
    if (rc == 0 && !o->c->output.omit_csv) {
        XXH128_canonical_t canon;
        XXH128_canonicalFromHash(&canon, h);
        static const char hex[] = "0123456789abcdef";
        for (int i = 0; i < 16; i++) {
            st->fingerprint[2 * i] = hex[canon.digest[i] >> 4];
            st->fingerprint[2 * i + 1] = hex[canon.digest[i] & 15];
        }
        st->fingerprint[32] = '\0';
    }
    if (rc == 0) {
        if (st->currency_count > 1)
            qsort(st->currency_totals, st->currency_count, sizeof *st->currency_totals,
                  cur_cmp);
        if (st->plans_used_count > 1)
            qsort(st->plans_used, st->plans_used_count, sizeof *st->plans_used, str_cmp);
    }
    acr__out_abort(o);
    return rc;
}
