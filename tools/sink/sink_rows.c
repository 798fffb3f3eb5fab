/* sink_rows.c - a range of the log turned into the rows of every table.
 *
 * The append-only tables (events, reps, trainings, deal_stages, closes,
 * statement_lines) get one row per event, straight into a COPY buffer. The
 * tables that hold state (partners, deals, sales) follow the engine's
 * projections (engine/projection.c) event by event:
 *
 *   - a partner, deal or sale first seen in this range is a new row, built in
 *     memory and changed in place by the later events of the range, then
 *     COPYed whole;
 *   - one that PostgreSQL already holds gets a patch: what this range changed
 *     (the last stage and when it was entered, amounts, a close, refund sums,
 *     a partner attribute with the business time that set it), COPYed into a
 *     temporary table and applied by one UPDATE ... FROM. The patch rules
 *     compose with the row as of the position exactly as the engine's apply
 *     does with its stored row, so after the transaction the tables equal
 *     the ledger's projections as of the new position without the sink ever
 *     reading a row back.
 *
 * Partner attributes follow business time as in the engine: a value set by
 * an event whose `at` is earlier than the one that set the current value is
 * ignored (later seq wins ties). A deal's stage_entered_at only moves when
 * the stage changes. String slices point into the read snapshot.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "accrue/limits.h"
#include "sink.h"

#define S(ev, f) ((ev)->str[ACR_F_##f])
#define HAS(ev, f) ACR_HAS(ev, ACR_F_##f)

typedef struct prow {
    acr_str_t id, name, kind, tier, plan_id, currency, region, source, status;
    int64_t registered_at_ms, name_at_ms, tier_at_ms, plan_at_ms, region_at_ms;
    uint64_t seq;                                    /* seq of partner.registered (new rows) */
    bool is_new;                                     /* registered in this range */
    bool has_region, has_source;                     /* new rows: optional fields given */
    bool p_name, p_tier, p_plan, p_region, p_status; /* patches: what changed */
    bool r_name, r_tier, r_plan, r_region;           /* new rows: still the registration's */
} prow_t;

typedef struct drow {
    acr_str_t id, partner, customer, name, currency, expected_close, rep, stage, outcome, reason;
    int64_t amount_minor, entered_at_ms, registered_at_ms, closed_at_ms;
    uint64_t seq; /* seq of deal.registered (new rows) */
    bool is_new;
    bool has_name, has_amount, has_ec, has_rep, has_outcome, has_reason;
    bool has_stage; /* patches: a stage move in this range */
    bool run_all;   /* patches: every move of the range went to `stage` */
} drow_t;

typedef struct srow {
    acr_str_t id, partner, customer, product, currency, deal, rep;
    int64_t amount_minor, at_ms, refunded_minor, last_refund_at_ms;
    uint32_t refunds;
    uint64_t seq;
    bool is_new, has_deal, has_rep;
} srow_t;

struct acr__sink_rows {
    acr_buf_t events, reps, trainings, deal_stages, closes, lines, stages; /* COPY text */
    acr_buf_t tmp;    /* scratch: an event's JSON */
    prow_t *partners; /* touched partners, in first-touch order */
    drow_t *deals;
    srow_t *sales;
    size_t np, nd, ns, cap_p, cap_d, cap_s;
    acr__sink_map_t pmap, dmap, smap; /* id -> index */
    char **names;                     /* first-stage names owned by this range */
    size_t nnames, cap_names;
    acr_str_t first_stage; /* the current pipeline's first stage */
    bool pipeline_changed; /* a pipeline.defined in the range */
    acr_buf_t touched;     /* COPY text: partners whose onboarding rows this range may change */
    acr__sink_map_t tmap;  /* partner id -> 1, for touched */
    bool onboarding_all;   /* an onboarding.defined in the range: every partner's rows */
    int32_t utc_offset_min;
};

int acr__sink_rows_new(acr__sink_rows_t **out)
{
    acr__sink_rows_t *r = calloc(1, sizeof *r);
    if (r == NULL)
        return ACR_ENOMEM;
    acr_buf_t *bufs[] = {&r->events, &r->reps,  &r->trainings, &r->deal_stages,
                         &r->closes, &r->lines, &r->stages,    &r->tmp, &r->touched};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        acr_buf_init(bufs[i]);
    acr__sink_map_init(&r->tmap);
    acr__sink_map_init(&r->pmap);
    acr__sink_map_init(&r->dmap);
    acr__sink_map_init(&r->smap);
    *out = r;
    return 0;
}

static void free_names(acr__sink_rows_t *r)
{
    for (size_t i = 0; i < r->nnames; i++)
        free(r->names[i]);
    r->nnames = 0;
}

void acr__sink_rows_free(acr__sink_rows_t *r)
{
    if (r == NULL)
        return;
    acr_buf_t *bufs[] = {&r->events, &r->reps,  &r->trainings, &r->deal_stages,
                         &r->closes, &r->lines, &r->stages,    &r->tmp, &r->touched};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        acr_buf_destroy(bufs[i]);
    acr__sink_map_destroy(&r->tmap);
    acr__sink_map_destroy(&r->pmap);
    acr__sink_map_destroy(&r->dmap);
    acr__sink_map_destroy(&r->smap);
    free_names(r);
    free(r->names);
    free(r->partners);
    free(r->deals);
    free(r->sales);
    free(r);
}

/* Keeps a copy of a stage name for the rest of the range. */
static int own_name(acr__sink_rows_t *r, const char *s, size_t n, acr_str_t *out)
{
    if (r->nnames == r->cap_names) {
        size_t cap = r->cap_names ? 2 * r->cap_names : 8;
        char **p = realloc(r->names, cap * sizeof *p);
        if (p == NULL)
            return ACR_ENOMEM;
        r->names = p;
        r->cap_names = cap;
    }
    char *c = malloc(n + 1);
    if (c == NULL)
        return ACR_ENOMEM;
    memcpy(c, s, n);
    c[n] = '\0';
    r->names[r->nnames++] = c;
    *out = (acr_str_t){c, (uint32_t)n};
    return 0;
}

void acr__sink_rows_reset(acr__sink_rows_t *r, const char *first_stage, int32_t utc_offset_min)
{
    acr_buf_t *bufs[] = {&r->events, &r->reps,  &r->trainings, &r->deal_stages,
                         &r->closes, &r->lines, &r->stages,    &r->touched};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        acr_buf_reset(bufs[i]);
    acr__sink_map_reset(&r->tmap);
    r->onboarding_all = false;
    r->utc_offset_min = utc_offset_min;
    acr__sink_map_reset(&r->pmap);
    acr__sink_map_reset(&r->dmap);
    acr__sink_map_reset(&r->smap);
    r->np = r->nd = r->ns = 0;
    free_names(r);
    r->pipeline_changed = false;
    r->first_stage = (acr_str_t){"", 0};
    if (own_name(r, first_stage, strlen(first_stage), &r->first_stage) != 0)
        r->first_stage = (acr_str_t){"", 0}; /* reported by the first deal that needs it */
}

/* ---- Row slots ------------------------------------------------------------------------- */

#define GROW(arr, n, cap)                                                                          \
    do {                                                                                           \
        if ((n) == (cap)) {                                                                        \
            size_t c_ = (cap) ? 2 * (cap) : 256;                                                   \
            void *p_ = realloc((arr), c_ * sizeof *(arr));                                         \
            if (p_ == NULL)                                                                        \
                return NULL;                                                                       \
            (arr) = p_;                                                                            \
            (cap) = c_;                                                                            \
        }                                                                                          \
    } while (0)

/* The row of id in this range, created (zeroed, is_new false) when absent. */
static prow_t *partner_slot(acr__sink_rows_t *r, acr_str_t id)
{
    uint32_t i = acr__sink_map_get(&r->pmap, id);
    if (i != UINT32_MAX)
        return &r->partners[i];
    GROW(r->partners, r->np, r->cap_p);
    if (acr__sink_map_put(&r->pmap, id, (uint32_t)r->np) != 0)
        return NULL;
    prow_t *p = &r->partners[r->np++];
    memset(p, 0, sizeof *p);
    p->id = id;
    return p;
}

static drow_t *deal_slot(acr__sink_rows_t *r, acr_str_t id)
{
    uint32_t i = acr__sink_map_get(&r->dmap, id);
    if (i != UINT32_MAX)
        return &r->deals[i];
    GROW(r->deals, r->nd, r->cap_d);
    if (acr__sink_map_put(&r->dmap, id, (uint32_t)r->nd) != 0)
        return NULL;
    drow_t *d = &r->deals[r->nd++];
    memset(d, 0, sizeof *d);
    d->id = id;
    return d;
}

static srow_t *sale_slot(acr__sink_rows_t *r, acr_str_t id)
{
    uint32_t i = acr__sink_map_get(&r->smap, id);
    if (i != UINT32_MAX)
        return &r->sales[i];
    GROW(r->sales, r->ns, r->cap_s);
    if (acr__sink_map_put(&r->smap, id, (uint32_t)r->ns) != 0)
        return NULL;
    srow_t *s = &r->sales[r->ns++];
    memset(s, 0, sizeof *s);
    s->id = id;
    return s;
}

static bool str_eq(acr_str_t a, acr_str_t b)
{
    return a.len == b.len && memcmp(a.ptr, b.ptr, a.len) == 0;
}

/* ---- COPY field helpers ------------------------------------------------------------------ */

static int f_str(acr_buf_t *b, acr_str_t s, char sep)
{
    int rc = acr__sink_copy_str(b, s.ptr, s.len);
    return rc ? rc : acr_buf_append(b, &sep, 1);
}

static int f_opt(acr_buf_t *b, bool has, acr_str_t s, char sep)
{
    if (has)
        return f_str(b, s, sep);
    int rc = acr__sink_copy_null(b);
    return rc ? rc : acr_buf_append(b, &sep, 1);
}

static int f_i64(acr_buf_t *b, int64_t v, char sep)
{
    int rc = acr__sink_copy_i64(b, v);
    return rc ? rc : acr_buf_append(b, &sep, 1);
}

static int f_ts(acr_buf_t *b, int64_t ms, char sep)
{
    int rc = acr__sink_copy_ts(b, ms);
    return rc ? rc : acr_buf_append(b, &sep, 1);
}

static int f_opt_ts(acr_buf_t *b, bool has, int64_t ms, char sep)
{
    if (has)
        return f_ts(b, ms, sep);
    int rc = acr__sink_copy_null(b);
    return rc ? rc : acr_buf_append(b, &sep, 1);
}

static int f_opt_i64(acr_buf_t *b, bool has, int64_t v, char sep)
{
    if (has)
        return f_i64(b, v, sep);
    int rc = acr__sink_copy_null(b);
    return rc ? rc : acr_buf_append(b, &sep, 1);
}

static int f_bool(acr_buf_t *b, bool v, char sep)
{
    char s[2] = {v ? 't' : 'f', sep};
    return acr_buf_append(b, s, 2);
}

/* ---- events ---------------------------------------------------------------------------- */

static const char *find_data(const char *j, size_t n)
{
    static const char key[] = ",\"data\":";
    for (size_t i = 0; i + 8 <= n; i++)
        if (j[i] == ',' && memcmp(j + i, key, 8) == 0)
            return j + i;
    return NULL;
}

static int event_row(acr__sink_rows_t *r, const acr_event_t *ev, const uint8_t hash[16],
                     acr_err_t *err)
{
    acr_buf_t *b = &r->events;
    char stream[ACR_STRING_LEN_MAX + 64], hex[33];
    size_t slen = acr_event_stream(ev, stream, sizeof stream);
    acr_hash_hex(hash, hex);
    acr_buf_reset(&r->tmp);
    if (acr_event_to_json(ev, NULL, false, &r->tmp) != 0)
        return acr_err_set(err, ACR_ENOMEM, "out of memory formatting event %llu",
                           (unsigned long long)ev->seq);
    /* {"id":..,"type":..,"at":..,"data":{...}}: id, type and at hold no '"', so the first
     * ,"data": is the member; its value runs to the closing brace of the object. */
    const char *j = (const char *)r->tmp.data;
    const char *d = find_data(j, r->tmp.len);
    if (d == NULL || r->tmp.len < 2 || j[r->tmp.len - 1] != '}')
        return acr_err_set(err, ACR_ECORRUPT, "event %llu: unexpected JSON form",
                           (unsigned long long)ev->seq);
    d += 8;
    size_t dlen = (size_t)(j + r->tmp.len - 1 - d);
    int rc = f_i64(b, (int64_t)ev->seq, '\t');
    rc = rc ? rc : f_str(b, ev->id, '\t');
    const char *tn = acr_event_type_name(ev->type);
    rc = rc ? rc : f_str(b, (acr_str_t){tn, (uint32_t)strlen(tn)}, '\t');
    rc = rc ? rc : f_ts(b, ev->at_ms, '\t');
    rc = rc ? rc : f_ts(b, ev->recorded_at_ms, '\t');
    rc = rc ? rc : f_str(b, (acr_str_t){stream, (uint32_t)slen}, '\t');
    rc = rc ? rc : f_i64(b, (int64_t)ev->version, '\t');
    rc = rc ? rc : f_str(b, (acr_str_t){hex, 32}, '\t');
    rc = rc ? rc : f_str(b, (acr_str_t){d, (uint32_t)dlen}, '\t');
    rc = rc ? rc : f_opt(b, ev->actor.len > 0, ev->actor, '\n'); /* older records have none */
    return rc ? acr_err_set(err, ACR_ENOMEM, "out of memory") : 0;
}

/* ---- partners, reps, training -------------------------------------------------------------- */

static int partner_registered(acr__sink_rows_t *r, const acr_event_t *ev)
{
    prow_t *p = partner_slot(r, S(ev, PARTNER_ID));
    if (p == NULL)
        return ACR_ENOMEM;
    *p = (prow_t){
        .id = S(ev, PARTNER_ID),
        .name = S(ev, NAME),
        .kind = S(ev, KIND),
        .tier = S(ev, TIER),
        .plan_id = S(ev, PLAN_ID),
        .currency = S(ev, CURRENCY),
        .region = S(ev, REGION),
        .source = S(ev, SOURCE),
        .status = {"active", 6},
        .registered_at_ms = ev->at_ms,
        .name_at_ms = ev->at_ms,
        .tier_at_ms = ev->at_ms,
        .plan_at_ms = ev->at_ms,
        .region_at_ms = ev->at_ms,
        .seq = ev->seq,
        .is_new = true,
        .has_region = HAS(ev, REGION),
        .has_source = HAS(ev, SOURCE),
        .r_name = true,
        .r_tier = true,
        .r_plan = true,
        .r_region = true,
    };
    return 0;
}

/* One attribute under the business-time rule (program.md: the registration with every update
 * applied in (at, seq) order, whatever its `at`): true when the event set it. `known` says
 * the row holds a value with its time (a new row, or a patch field already changed); `reg`
 * that the value is still the registration's, which every update overrides. */
static bool attr_set(const acr_event_t *ev, int field, acr_str_t *val, int64_t *at_ms, bool *known,
                     bool *reg)
{
    if (!ACR_HAS(ev, field) || (*known && !*reg && ev->at_ms < *at_ms))
        return false; /* absent, or an earlier `at` than an update's value: the value stays */
    *val = ev->str[field];
    *at_ms = ev->at_ms;
    *known = true;
    *reg = false;
    return true;
}

static int partner_changed(acr__sink_rows_t *r, const acr_event_t *ev)
{
    prow_t *p = partner_slot(r, S(ev, PARTNER_ID));
    if (p == NULL)
        return ACR_ENOMEM;
    if (ev->type == ACR_EV_PARTNER_STATUS_CHANGED) {
        p->status = S(ev, STATUS);
        p->p_status = true;
        return 0;
    }
    bool k_name = p->is_new || p->p_name, k_tier = p->is_new || p->p_tier;
    bool k_plan = p->is_new || p->p_plan, k_region = p->is_new || p->p_region;
    attr_set(ev, ACR_F_NAME, &p->name, &p->name_at_ms, &k_name, &p->r_name);
    attr_set(ev, ACR_F_TIER, &p->tier, &p->tier_at_ms, &k_tier, &p->r_tier);
    attr_set(ev, ACR_F_PLAN_ID, &p->plan_id, &p->plan_at_ms, &k_plan, &p->r_plan);
    if (attr_set(ev, ACR_F_REGION, &p->region, &p->region_at_ms, &k_region, &p->r_region))
        p->has_region = true;
    if (!p->is_new)
        p->p_name = k_name, p->p_tier = k_tier, p->p_plan = k_plan, p->p_region = k_region;
    return 0;
}

static int rep_added(acr__sink_rows_t *r, const acr_event_t *ev)
{
    acr_buf_t *b = &r->reps;
    int rc = f_str(b, S(ev, PARTNER_ID), '\t');
    rc = rc ? rc : f_str(b, S(ev, REP_ID), '\t');
    rc = rc ? rc : f_str(b, S(ev, NAME), '\t');
    rc = rc ? rc : f_ts(b, ev->at_ms, '\t');
    return rc ? rc : f_i64(b, (int64_t)ev->seq, '\n');
}

static int training_completed(acr__sink_rows_t *r, const acr_event_t *ev)
{
    acr_buf_t *b = &r->trainings;
    int rc = f_i64(b, (int64_t)ev->seq, '\t');
    rc = rc ? rc : f_str(b, S(ev, PARTNER_ID), '\t');
    rc = rc ? rc : f_opt(b, HAS(ev, REP_ID), S(ev, REP_ID), '\t');
    rc = rc ? rc : f_str(b, S(ev, MODULE), '\t');
    return rc ? rc : f_ts(b, ev->at_ms, '\n');
}

/* pipeline.defined replaces the stage list; later deals of the range start in its first stage. */
static int pipeline_defined(acr__sink_rows_t *r, const acr_event_t *ev, acr_err_t *err)
{
    json_error_t jerr;
    json_t *stages = json_loadb(S(ev, STAGES).ptr, S(ev, STAGES).len, 0, &jerr);
    if (!json_is_array(stages) || json_array_size(stages) == 0) {
        json_decref(stages);
        return acr_err_set(err, ACR_ECORRUPT, "event %llu: stored stages do not parse",
                           (unsigned long long)ev->seq);
    }
    acr_buf_reset(&r->stages);
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < json_array_size(stages); i++) {
        json_t *st = json_array_get(stages, i);
        const char *name = json_string_value(json_object_get(st, "name"));
        json_t *req = json_object_get(st, "exit_requires");
        if (name == NULL || !json_is_array(req)) {
            rc = acr_err_set(err, ACR_ECORRUPT, "event %llu: a stored stage lacks its name",
                             (unsigned long long)ev->seq);
            break;
        }
        if (i == 0 && own_name(r, name, strlen(name), &r->first_stage) != 0)
            rc = ACR_ENOMEM;
        rc = rc ? rc : f_i64(&r->stages, (int64_t)i + 1, '\t');
        rc = rc ? rc : f_str(&r->stages, (acr_str_t){name, (uint32_t)strlen(name)}, '\t');
        /* text[] literal: the names are id-like (no quotes, commas or braces) but are
         * quoted anyway so any stored string survives. */
        rc = rc ? rc : acr_buf_append(&r->stages, "{", 1);
        for (size_t k = 0; rc == 0 && k < json_array_size(req); k++) {
            const char *x = json_string_value(json_array_get(req, k));
            x = x ? x : "";
            rc = acr_buf_printf(&r->stages, "%s\"", k ? "," : "");
            for (const char *c = x; rc == 0 && *c; c++)
                rc = acr_buf_printf(&r->stages, "%s%c", *c == '"' || *c == '\\' ? "\\\\" : "", *c);
            rc = rc ? rc : acr_buf_append(&r->stages, "\"", 1);
        }
        rc = rc ? rc : acr_buf_append(&r->stages, "}\n", 2);
    }
    json_decref(stages);
    r->pipeline_changed = true;
    return rc;
}

/* ---- deals ------------------------------------------------------------------------------- */

static int stage_row(acr__sink_rows_t *r, acr_str_t deal, const acr_event_t *ev, acr_str_t st)
{
    acr_buf_t *b = &r->deal_stages;
    int rc = f_str(b, deal, '\t');
    rc = rc ? rc : f_i64(b, (int64_t)ev->seq, '\t');
    rc = rc ? rc : f_str(b, st, '\t');
    return rc ? rc : f_ts(b, ev->at_ms, '\n');
}

static int deal_registered(acr__sink_rows_t *r, const acr_event_t *ev, acr_err_t *err)
{
    if (r->first_stage.len == 0)
        return acr_err_set(err, ACR_ECORRUPT, "no pipeline stage known for deal.registered");
    drow_t *d = deal_slot(r, S(ev, DEAL_ID));
    if (d == NULL)
        return ACR_ENOMEM;
    *d = (drow_t){
        .id = S(ev, DEAL_ID),
        .partner = S(ev, PARTNER_ID),
        .customer = S(ev, CUSTOMER_ID),
        .name = S(ev, NAME),
        .currency = S(ev, CURRENCY),
        .expected_close = S(ev, EXPECTED_CLOSE),
        .rep = S(ev, REP_ID),
        .stage = r->first_stage,
        .amount_minor = ev->num[ACR_F_AMOUNT_MINOR],
        .entered_at_ms = ev->at_ms,
        .registered_at_ms = ev->at_ms,
        .seq = ev->seq,
        .is_new = true,
        .has_name = HAS(ev, NAME),
        .has_amount = HAS(ev, AMOUNT_MINOR),
        .has_ec = HAS(ev, EXPECTED_CLOSE),
        .has_rep = HAS(ev, REP_ID),
        .has_stage = true,
    };
    return stage_row(r, d->id, ev, r->first_stage);
}

static int deal_stage_changed(acr__sink_rows_t *r, const acr_event_t *ev)
{
    drow_t *d = deal_slot(r, S(ev, DEAL_ID));
    if (d == NULL)
        return ACR_ENOMEM;
    if (HAS(ev, AMOUNT_MINOR))
        d->amount_minor = ev->num[ACR_F_AMOUNT_MINOR], d->has_amount = true;
    if (HAS(ev, EXPECTED_CLOSE))
        d->expected_close = S(ev, EXPECTED_CLOSE), d->has_ec = true;
    if (HAS(ev, REP_ID))
        d->rep = S(ev, REP_ID), d->has_rep = true;
    acr_str_t st = S(ev, STAGE);
    if (!d->has_stage) { /* the first move of a stored deal in this range */
        d->stage = st, d->entered_at_ms = ev->at_ms, d->has_stage = true, d->run_all = true;
    } else if (!str_eq(d->stage, st)) {
        d->stage = st, d->entered_at_ms = ev->at_ms, d->run_all = false;
    }
    return stage_row(r, d->id, ev, st);
}

static int deal_closed(acr__sink_rows_t *r, const acr_event_t *ev)
{
    drow_t *d = deal_slot(r, S(ev, DEAL_ID));
    if (d == NULL)
        return ACR_ENOMEM;
    d->outcome = S(ev, OUTCOME);
    d->has_outcome = true;
    d->reason = S(ev, REASON);
    d->has_reason = HAS(ev, REASON);
    d->closed_at_ms = ev->at_ms;
    return 0;
}

/* ---- sales ------------------------------------------------------------------------------- */

static int sale_recorded(acr__sink_rows_t *r, const acr_event_t *ev)
{
    srow_t *s = sale_slot(r, S(ev, SALE_ID));
    if (s == NULL)
        return ACR_ENOMEM;
    *s = (srow_t){
        .id = S(ev, SALE_ID),
        .partner = S(ev, PARTNER_ID),
        .customer = S(ev, CUSTOMER_ID),
        .product = S(ev, PRODUCT),
        .currency = S(ev, CURRENCY),
        .deal = S(ev, DEAL_ID),
        .rep = S(ev, REP_ID),
        .amount_minor = ev->num[ACR_F_AMOUNT_MINOR],
        .at_ms = ev->at_ms,
        .seq = ev->seq,
        .is_new = true,
        .has_deal = HAS(ev, DEAL_ID),
        .has_rep = HAS(ev, REP_ID),
    };
    return 0;
}

static int sale_refunded(acr__sink_rows_t *r, const acr_event_t *ev)
{
    srow_t *s = sale_slot(r, S(ev, SALE_ID));
    if (s == NULL)
        return ACR_ENOMEM;
    s->refunded_minor += ev->num[ACR_F_AMOUNT_MINOR]; /* <= the sale's amount: no overflow */
    s->refunds++;
    if (s->refunds == 1 || ev->at_ms > s->last_refund_at_ms)
        s->last_refund_at_ms = ev->at_ms;
    return 0;
}

/* ---- closes and their statements ------------------------------------------------------------ */

/* One stored statement CSV line (12 fields, no quoting) as a statement_lines row. */
static int line_row(acr_buf_t *b, const char *p, size_t n)
{
    const char *f[12];
    size_t fl[12], k = 0, start = 0;
    for (size_t i = 0; i <= n && k < 12; i++) {
        if (i == n || p[i] == ',') {
            f[k] = p + start, fl[k] = i - start, k++;
            start = i + 1;
        }
    }
    if (k != 12 || start != n + 1)
        return ACR_ECORRUPT;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < 12; i++) {
        char sep = i == 11 ? '\n' : '\t';
        bool nullable = i == 6 || i == 7 || i == 8; /* source_seq, at, rule: empty = none */
        rc = f_opt(b, !(nullable && fl[i] == 0), (acr_str_t){f[i], (uint32_t)fl[i]}, sep);
    }
    return rc;
}

static int period_closed(acr__sink_rows_t *r, acr_reader_t *rd, const acr_event_t *ev,
                         acr_err_t *err)
{
    acr_buf_t *b = &r->closes;
    int rc = f_str(b, S(ev, PERIOD), '\t');
    rc = rc ? rc : f_i64(b, (int64_t)ev->seq, '\t');
    rc = rc ? rc : f_i64(b, ev->num[ACR_F_THROUGH_SEQ], '\t');
    rc = rc ? rc : f_str(b, S(ev, FINGERPRINT), '\t');
    rc = rc ? rc : f_i64(b, ev->num[ACR_F_LINES], '\t');
    rc = rc ? rc : f_str(b, S(ev, TOTALS), '\t');
    rc = rc ? rc : f_ts(b, ev->at_ms, '\t');
    rc = rc ? rc : f_ts(b, ev->recorded_at_ms, '\n');
    if (rc != 0)
        return acr_err_set(err, ACR_ENOMEM, "out of memory");
    char period[ACR_PERIOD_ID_MAX + 8];
    snprintf(period, sizeof period, "%.*s", (int)S(ev, PERIOD).len, S(ev, PERIOD).ptr);
    const char *csv;
    size_t len;
    if ((rc = acr_reader_statement(rd, period, &csv, &len, NULL, err)) != 0)
        return rc;
    const char *end = csv + len, *line = memchr(csv, '\n', len); /* skip the header */
    uint64_t nlines = 0;
    for (line = line ? line + 1 : end; line < end;) {
        const char *nl = memchr(line, '\n', (size_t)(end - line));
        size_t n = nl ? (size_t)(nl - line) : (size_t)(end - line);
        if ((rc = line_row(&r->lines, line, n)) != 0)
            return acr_err_set(err, rc == ACR_ENOMEM ? ACR_ENOMEM : ACR_ECORRUPT,
                               "period %s: stored statement line %llu does not parse", period,
                               (unsigned long long)nlines + 2);
        nlines++;
        line += n + 1;
    }
    if (nlines != (uint64_t)ev->num[ACR_F_LINES])
        return acr_err_set(err, ACR_ECORRUPT, "period %s: %llu stored lines, the close says %lld",
                           period, (unsigned long long)nlines, (long long)ev->num[ACR_F_LINES]);
    return 0;
}

/* Notes that the partner's onboarding rows must be recomputed at the end of the range. */
static int touch(acr__sink_rows_t *r, acr_str_t partner)
{
    if (r->onboarding_all || acr__sink_map_get(&r->tmap, partner) != UINT32_MAX)
        return 0;
    int rc = acr__sink_map_put(&r->tmap, partner, 1);
    return rc ? rc : f_str(&r->touched, partner, '\n');
}

int acr__sink_rows_add(acr__sink_rows_t *r, acr_reader_t *rd, const acr_event_t *ev,
                       const uint8_t hash[ACR_HASH_LEN], acr_err_t *err)
{
    int rc = event_row(r, ev, hash, err);
    if (rc != 0)
        return rc;
    if (ev->type == ACR_EV_ONBOARDING_DEFINED)
        r->onboarding_all = true;
    else if (ev->type == ACR_EV_PARTNER_REGISTERED || ev->type == ACR_EV_REP_ADDED ||
             ev->type == ACR_EV_TRAINING_COMPLETED)
        rc = touch(r, S(ev, PARTNER_ID));
    if (rc != 0)
        return acr_err_set(err, ACR_ENOMEM, "out of memory");
    switch (ev->type) {
    case ACR_EV_PARTNER_REGISTERED:
        rc = partner_registered(r, ev);
        break;
    case ACR_EV_PARTNER_UPDATED:
    case ACR_EV_PARTNER_STATUS_CHANGED:
        rc = partner_changed(r, ev);
        break;
    case ACR_EV_REP_ADDED:
        rc = rep_added(r, ev);
        break;
    case ACR_EV_TRAINING_COMPLETED:
        rc = training_completed(r, ev);
        break;
    case ACR_EV_PIPELINE_DEFINED:
        return pipeline_defined(r, ev, err);
    case ACR_EV_DEAL_REGISTERED:
        return deal_registered(r, ev, err);
    case ACR_EV_DEAL_STAGE_CHANGED:
        rc = deal_stage_changed(r, ev);
        break;
    case ACR_EV_DEAL_CLOSED:
        rc = deal_closed(r, ev);
        break;
    case ACR_EV_SALE_RECORDED:
        rc = sale_recorded(r, ev);
        break;
    case ACR_EV_SALE_REFUNDED:
        rc = sale_refunded(r, ev);
        break;
    case ACR_EV_PERIOD_CLOSED:
        return period_closed(r, rd, ev, err);
    default:
        break; /* plans, adjustments, the program's lists: the events table holds them */
    }
    return rc ? acr_err_set(err, ACR_ENOMEM, "out of memory") : 0;
}

/* ---- Writing ----------------------------------------------------------------------------- */

static int partner_rows(acr__sink_rows_t *r, acr_buf_t *nb, acr_buf_t *pb)
{
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < r->np; i++) {
        const prow_t *p = &r->partners[i];
        if (p->is_new) {
            rc = f_str(nb, p->id, '\t');
            rc = rc ? rc : f_str(nb, p->name, '\t');
            rc = rc ? rc : f_str(nb, p->kind, '\t');
            rc = rc ? rc : f_str(nb, p->tier, '\t');
            rc = rc ? rc : f_str(nb, p->plan_id, '\t');
            rc = rc ? rc : f_str(nb, p->currency, '\t');
            rc = rc ? rc : f_opt(nb, p->has_region, p->region, '\t');
            rc = rc ? rc : f_opt(nb, p->has_source, p->source, '\t');
            rc = rc ? rc : f_str(nb, p->status, '\t');
            rc = rc ? rc : f_ts(nb, p->registered_at_ms, '\t');
            rc = rc ? rc : f_i64(nb, (int64_t)p->seq, '\t');
            rc = rc ? rc : f_ts(nb, p->name_at_ms, '\t');
            rc = rc ? rc : f_ts(nb, p->tier_at_ms, '\t');
            rc = rc ? rc : f_ts(nb, p->plan_at_ms, '\t');
            rc = rc ? rc : f_ts(nb, p->region_at_ms, '\n');
            continue;
        }
        rc = f_str(pb, p->id, '\t');
        rc = rc ? rc : f_opt(pb, p->p_name, p->name, '\t');
        rc = rc ? rc : f_opt_ts(pb, p->p_name, p->name_at_ms, '\t');
        rc = rc ? rc : f_opt(pb, p->p_tier, p->tier, '\t');
        rc = rc ? rc : f_opt_ts(pb, p->p_tier, p->tier_at_ms, '\t');
        rc = rc ? rc : f_opt(pb, p->p_plan, p->plan_id, '\t');
        rc = rc ? rc : f_opt_ts(pb, p->p_plan, p->plan_at_ms, '\t');
        rc = rc ? rc : f_opt(pb, p->p_region, p->region, '\t');
        rc = rc ? rc : f_opt_ts(pb, p->p_region, p->region_at_ms, '\t');
        rc = rc ? rc : f_opt(pb, p->p_status, p->status, '\n');
    }
    return rc;
}

static int deal_rows(acr__sink_rows_t *r, acr_buf_t *nb, acr_buf_t *pb)
{
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < r->nd; i++) {
        const drow_t *d = &r->deals[i];
        if (d->is_new) {
            rc = f_str(nb, d->id, '\t');
            rc = rc ? rc : f_str(nb, d->partner, '\t');
            rc = rc ? rc : f_str(nb, d->customer, '\t');
            rc = rc ? rc : f_opt(nb, d->has_name, d->name, '\t');
            rc = rc ? rc : f_str(nb, d->currency, '\t');
            rc = rc ? rc : f_opt_i64(nb, d->has_amount, d->amount_minor, '\t');
            rc = rc ? rc : f_opt(nb, d->has_ec, d->expected_close, '\t');
            rc = rc ? rc : f_opt(nb, d->has_rep, d->rep, '\t');
            rc = rc ? rc : f_str(nb, d->stage, '\t');
            rc = rc ? rc : f_ts(nb, d->entered_at_ms, '\t');
            rc = rc ? rc : f_opt(nb, d->has_outcome, d->outcome, '\t');
            rc = rc ? rc : f_opt(nb, d->has_reason, d->reason, '\t');
            rc = rc ? rc : f_ts(nb, d->registered_at_ms, '\t');
            rc = rc ? rc : f_i64(nb, (int64_t)d->seq, '\t');
            rc = rc ? rc : f_opt_ts(nb, d->has_outcome, d->closed_at_ms, '\n');
            continue;
        }
        rc = f_str(pb, d->id, '\t');
        rc = rc ? rc : f_opt(pb, d->has_stage, d->stage, '\t');
        rc = rc ? rc : f_bool(pb, d->run_all, '\t');
        rc = rc ? rc : f_opt_ts(pb, d->has_stage, d->entered_at_ms, '\t');
        rc = rc ? rc : f_opt_i64(pb, d->has_amount, d->amount_minor, '\t');
        rc = rc ? rc : f_opt(pb, d->has_ec, d->expected_close, '\t');
        rc = rc ? rc : f_opt(pb, d->has_rep, d->rep, '\t');
        rc = rc ? rc : f_opt(pb, d->has_outcome, d->outcome, '\t');
        rc = rc ? rc : f_opt(pb, d->has_reason, d->reason, '\t');
        rc = rc ? rc : f_opt_ts(pb, d->has_outcome, d->closed_at_ms, '\n');
    }
    return rc;
}

static int sale_rows(acr__sink_rows_t *r, acr_buf_t *nb, acr_buf_t *pb)
{
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < r->ns; i++) {
        const srow_t *s = &r->sales[i];
        if (s->is_new) {
            rc = f_str(nb, s->id, '\t');
            rc = rc ? rc : f_i64(nb, (int64_t)s->seq, '\t');
            rc = rc ? rc : f_str(nb, s->partner, '\t');
            rc = rc ? rc : f_str(nb, s->customer, '\t');
            rc = rc ? rc : f_str(nb, s->product, '\t');
            rc = rc ? rc : f_i64(nb, s->amount_minor, '\t');
            rc = rc ? rc : f_str(nb, s->currency, '\t');
            rc = rc ? rc : f_ts(nb, s->at_ms, '\t');
            rc = rc ? rc : f_opt(nb, s->has_deal, s->deal, '\t');
            rc = rc ? rc : f_opt(nb, s->has_rep, s->rep, '\t');
            rc = rc ? rc : f_i64(nb, s->refunded_minor, '\t');
            rc = rc ? rc : f_i64(nb, s->refunds, '\t');
            rc = rc ? rc : f_opt_ts(nb, s->refunds > 0, s->last_refund_at_ms, '\n');
            continue;
        }
        rc = f_str(pb, s->id, '\t');
        rc = rc ? rc : f_i64(pb, s->refunded_minor, '\t');
        rc = rc ? rc : f_i64(pb, s->refunds, '\t');
        rc = rc ? rc : f_ts(pb, s->last_refund_at_ms, '\n');
    }
    return rc;
}

static const char PARTNER_COLS[] =
    "partner_id, name, kind, tier, plan_id, currency, region, source, status, registered_at, "
    "registered_seq, name_at, tier_at, plan_at, region_at";
static const char DEAL_COLS[] =
    "deal_id, partner_id, customer_id, name, currency, amount_minor, expected_close, rep_id, "
    "stage, stage_entered_at, outcome, reason, registered_at, registered_seq, closed_at";
static const char SALE_COLS[] =
    "sale_id, seq, partner_id, customer_id, product, amount_minor, currency, at, deal_id, "
    "rep_id, refunded_minor, refunds, last_refund_at";

/* The UPDATE ... FROM of each patch table. %1$s is the schema.
 *
 * A patched attribute c (with its event's key k) wins when its `at` is at least the row's, or
 * when the row's value is still the registration's, which every update overrides
 * (program.md): stamped with the registration's `at` and no partner.updated of that partner
 * at that instant names k (one that did would have set it, and only a later `at` replaces
 * it). The events of this range are already in `events`; one of them at that instant naming
 * k would make the patch's own `at` the later, so the first test decides first. */
#define PATCH_WINS(c, k)                                                                    \
    "(s." c "_at IS NOT NULL AND (s." c "_at >= p." c "_at OR (p." c "_at = p.registered_at "  \
    "AND NOT EXISTS (SELECT 1 FROM \"%1$s\".events e WHERE e.type = 'partner.updated' "       \
    "AND e.at = p.registered_at AND e.data->>'partner_id' = p.partner_id AND e.data ? '" k   \
    "'))))"
#define PATCH_SET(v, c, k)                                                                  \
    v " = CASE WHEN " PATCH_WINS(c, k) " THEN s." v " ELSE p." v " END, "                   \
    c "_at = CASE WHEN " PATCH_WINS(c, k) " THEN s." c "_at ELSE p." c "_at END, "
static const char PARTNER_UPDATE[] =
    "UPDATE \"%1$s\".partners p SET "
    PATCH_SET("name", "name", "name") PATCH_SET("tier", "tier", "tier")
    PATCH_SET("plan_id", "plan", "plan_id") PATCH_SET("region", "region", "region")
    "status = COALESCE(s.status, p.status) "
    "FROM pg_temp.accrue_partner_patch s WHERE p.partner_id = s.partner_id";
static const char DEAL_UPDATE[] =
    "UPDATE \"%1$s\".deals d SET "
    "stage = COALESCE(s.stage, d.stage), "
    "stage_entered_at = CASE WHEN s.stage IS NULL OR (s.stage_run_all AND s.stage = d.stage) "
    "THEN d.stage_entered_at ELSE s.stage_entered_at END, "
    "amount_minor = COALESCE(s.amount_minor, d.amount_minor), "
    "expected_close = COALESCE(s.expected_close, d.expected_close), "
    "rep_id = COALESCE(s.rep_id, d.rep_id), "
    "outcome = COALESCE(s.outcome, d.outcome), "
    "reason = CASE WHEN s.outcome IS NOT NULL THEN s.reason ELSE d.reason END, "
    "closed_at = COALESCE(s.closed_at, d.closed_at) "
    "FROM pg_temp.accrue_deal_patch s WHERE d.deal_id = s.deal_id";
static const char SALE_UPDATE[] =
    "UPDATE \"%1$s\".sales x SET "
    "refunded_minor = x.refunded_minor + s.refunded_minor, refunds = x.refunds + s.refunds, "
    "last_refund_at = GREATEST(x.last_refund_at, s.last_refund_at) "
    "FROM pg_temp.accrue_sale_patch s WHERE x.sale_id = s.sale_id";

/* COPY the new rows, then the patch rows and their UPDATE. */
static int write_state(acr__sink_pg_t *pg, const char *table, const char *cols, const acr_buf_t *nb,
                       const char *patch_table, const char *patch_cols, const acr_buf_t *pb,
                       const char *update, acr_err_t *err)
{
    int rc = nb->len ? acr__sink_pg_copy(pg, table, cols, nb, err) : 0;
    if (rc == 0 && pb->len)
        rc = acr__sink_pg_copy(pg, patch_table, patch_cols, pb, err);
    if (rc == 0 && pb->len) {
        char sql[8192];
        int n = snprintf(sql, sizeof sql, update, pg->schema);
        rc = n < 0 || (size_t)n >= sizeof sql
                 ? acr_err_set(err, ACR_ENOMEM, "%s: the update statement is too long", table)
                 : acr__sink_pg_exec(pg, sql, table, err);
    }
    return rc;
}

int acr__sink_rows_write(acr__sink_rows_t *r, acr__sink_pg_t *pg, acr_err_t *err)
{
    acr_buf_t nb, pb;
    acr_buf_init(&nb);
    acr_buf_init(&pb);
    int rc = r->events.len ? acr__sink_pg_copy(pg, "events",
                                               "seq, id, type, at, recorded_at, stream, version, "
                                               "hash, data, actor",
                                               &r->events, err)
                           : 0;
    if (rc == 0 && (rc = partner_rows(r, &nb, &pb)) != 0)
        rc = acr_err_set(err, ACR_ENOMEM, "out of memory");
    if (rc == 0)
        rc = write_state(pg, "partners", PARTNER_COLS, &nb, "pg_temp.accrue_partner_patch",
                         "partner_id, name, name_at, tier, tier_at, plan_id, plan_at, region, "
                         "region_at, status",
                         &pb, PARTNER_UPDATE, err);
    if (rc == 0 && r->reps.len)
        rc = acr__sink_pg_copy(pg, "reps", "partner_id, rep_id, name, added_at, added_seq",
                               &r->reps, err);
    if (rc == 0 && r->trainings.len)
        rc = acr__sink_pg_copy(pg, "trainings", "seq, partner_id, rep_id, module, at",
                               &r->trainings, err);
    if (rc == 0)
        rc = acr__sink_onboarding_write(pg, r->onboarding_all, &r->touched, r->utc_offset_min,
                                        err);
    if (rc == 0 && r->pipeline_changed) {
        char sql[256];
        snprintf(sql, sizeof sql, "DELETE FROM \"%s\".pipeline_stages", pg->schema);
        rc = acr__sink_pg_exec(pg, sql, "replacing the pipeline", err);
        if (rc == 0)
            rc = acr__sink_pg_copy(pg, "pipeline_stages", "position, name, exit_requires",
                                   &r->stages, err);
    }
    acr_buf_reset(&nb);
    acr_buf_reset(&pb);
    if (rc == 0 && (rc = deal_rows(r, &nb, &pb)) != 0)
        rc = acr_err_set(err, ACR_ENOMEM, "out of memory");
    if (rc == 0)
        rc = write_state(pg, "deals", DEAL_COLS, &nb, "pg_temp.accrue_deal_patch",
                         "deal_id, stage, stage_run_all, stage_entered_at, amount_minor, "
                         "expected_close, rep_id, outcome, reason, closed_at",
                         &pb, DEAL_UPDATE, err);
    if (rc == 0 && r->deal_stages.len)
        rc = acr__sink_pg_copy(pg, "deal_stages", "deal_id, seq, stage, at", &r->deal_stages, err);
    acr_buf_reset(&nb);
    acr_buf_reset(&pb);
    if (rc == 0 && (rc = sale_rows(r, &nb, &pb)) != 0)
        rc = acr_err_set(err, ACR_ENOMEM, "out of memory");
    if (rc == 0)
        rc = write_state(pg, "sales", SALE_COLS, &nb, "pg_temp.accrue_sale_patch",
                         "sale_id, refunded_minor, refunds, last_refund_at", &pb, SALE_UPDATE, err);
    if (rc == 0 && r->closes.len)
        rc = acr__sink_pg_copy(pg, "closes",
                               "period, seq, through_seq, fingerprint, lines, totals, "
                               "period_end, recorded_at",
                               &r->closes, err);
    if (rc == 0 && r->lines.len)
        rc = acr__sink_pg_copy(pg, "statement_lines",
                               "period, partner_id, line, origin_period, kind, source_id, "
                               "source_seq, at, rule, basis_minor, amount_minor, currency",
                               &r->lines, err);
    acr_buf_destroy(&nb);
    acr_buf_destroy(&pb);
    return rc;
}
