/* commission.c - the commission processor's feed side (commissions.md).
 *
 * acr_comm_feed runs once per event of a 10 M-event replay, so it does
 * constant work per event: hash the ids it needs, intern the strings it
 * keeps (an event's bytes die with the feed call), append a compact record
 * to a growable array. Nothing is computed here that later events could
 * change: partner updates are applied by business time and late sales move
 * "first sale of a customer", so all commission math waits for
 * acr_comm_finish (lines.c, paid.c, statement.c). Only sales, refunds and
 * adjustments whose period is <= the run's period U get records, and only
 * sales up to U update the customer -> first sale map: whether a sale is its
 * customer's first "across the whole log" is decided by sales ordered before
 * it, which all lie in periods <= U (feed_sale).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#define XXH_INLINE_ALL /* the short-id paths inline: a few instructions, no call */
#include <xxhash.h>

#include "accrue/date.h"
#include "accrue/limits.h"
#include "accrue/money.h"
#include "comm_internal.h"

#define SALES_RESERVE_MAX ((uint64_t)1 << 26) /* 2.5 GiB of address space at most */

acr_comm_t *acr_comm_new(const acr_comm_config_t *cfg)
{
    acr_comm_t *c = calloc(1, sizeof *c);
    if (c != NULL) {
        c->cfg = *cfg;
        /* at most through_seq sales get a record: reserving that much address space up
         * front (pages are touched only as records are added) spares the doubling's copies */
        if (cfg->through_seq > 0 && cfg->through_seq <= SALES_RESERVE_MAX)
            (void)acr__grow((void **)&c->sales, &c->sales_cap, (size_t)cfg->through_seq,
                            sizeof *c->sales); /* on failure the feed grows it as it goes */
        c->run_end_ms = acr_period_end_ms(cfg->period_kind, cfg->run_period, cfg->utc_offset_min);
        c->feed_end_ms = c->run_end_ms;
    }
    return c;
}

void acr_comm_budgets_through(acr_comm_t *c, int32_t period)
{
    if (period > c->cfg.run_period)
        c->feed_end_ms = acr_period_end_ms(c->cfg.period_kind, period, c->cfg.utc_offset_min);
}

void acr_comm_set_output(acr_comm_t *c, const acr_comm_output_t *o)
{
    c->output = *o;
}

void acr_comm_free(acr_comm_t *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < c->plan_count; i++) {
        acr_plan_destroy(&c->plans[i].plan);
        free(c->plans[i].match);
        free(c->plans[i].rule_tags);
    }
    free(c->plans);
    acr__prog_free(c);
    acr__strtab_free(&c->partner_ids);
    acr__strtab_free(&c->attrs);
    acr__table_free(c->sale_ids.slots,
                    c->sale_ids.slots ? (c->sale_ids.mask + 1) * sizeof *c->sale_ids.slots : 0);
    acr__table_free(c->customers.ents,
                    c->customers.ents ? (c->customers.mask + 1) * sizeof *c->customers.ents : 0);
    free(c->pool.data);
    free(c->rsums);
    free(c->partners);
    free(c->updates);
    free(c->sales);
    free(c->refunds);
    free(c->adjs);
    for (size_t i = 0; i < c->closed_count; i++)
        free(c->closed[i].blocks);
    free(c->closed);
    acr__arena_free(&c->arena);
    free(c);
}

static int nomem(acr_err_t *err)
{
    return acr_err_set(err, ACR_ENOMEM, "out of memory in the commission processor");
}


/* Interns an optional string field into the attrs table (ACR__NONE when absent). */
static int attr_of(acr_comm_t *c, const acr_event_t *ev, int field, uint32_t *out)
{
    *out = ACR__NONE;
    if (!ACR_HAS(ev, field))
        return 0;
    return acr__strtab_intern(&c->attrs, &c->arena, ev->str[field].ptr, ev->str[field].len, out,
                              NULL);
}

static int feed_registered(acr_comm_t *c, const acr_event_t *ev)
{
    uint32_t idx;
    const acr_str_t *id = &ev->str[ACR_F_PARTNER_ID];
    if (acr__partner_intern(c, id->ptr, id->len, &idx) != 0)
        return ACR_ENOMEM;
    acr__attrs_t a;
    if (attr_of(c, ev, ACR_F_TIER, &a.tier) != 0 || attr_of(c, ev, ACR_F_KIND, &a.kind) != 0 ||
        attr_of(c, ev, ACR_F_REGION, &a.region) != 0 || attr_of(c, ev, ACR_F_PLAN_ID, &a.plan) != 0)
        return ACR_ENOMEM;
    acr__partner_t *p = &c->partners[idx];
    p->reg = a;
    p->registered = true;
    memset(p->currency, 0, sizeof p->currency);
    const acr_str_t *cur = &ev->str[ACR_F_CURRENCY];
    if (ACR_HAS(ev, ACR_F_CURRENCY))
        memcpy(p->currency, cur->ptr, cur->len < 3 ? cur->len : 3);
    return 0;
}

static int feed_updated(acr_comm_t *c, const acr_event_t *ev)
{
    uint32_t idx;
    const acr_str_t *id = &ev->str[ACR_F_PARTNER_ID];
    if (acr__partner_intern(c, id->ptr, id->len, &idx) != 0)
        return ACR_ENOMEM;
    acr__update_t u = {ev->at_ms, ev->seq, idx, 0, {ACR__NONE, ACR__NONE, ACR__NONE, ACR__NONE}};
    if (attr_of(c, ev, ACR_F_TIER, &u.v.tier) != 0 ||
        attr_of(c, ev, ACR_F_REGION, &u.v.region) != 0 ||
        attr_of(c, ev, ACR_F_PLAN_ID, &u.v.plan) != 0)
        return ACR_ENOMEM;
    u.mask = (ACR_HAS(ev, ACR_F_TIER) ? ACR__UPD_TIER : 0u) |
             (ACR_HAS(ev, ACR_F_PLAN_ID) ? ACR__UPD_PLAN : 0u) |
             (ACR_HAS(ev, ACR_F_REGION) ? ACR__UPD_REGION : 0u);
    if (u.mask == 0)
        return 0; /* a name change: no commission attribute */
    if (acr__grow((void **)&c->updates, &c->updates_cap, c->update_count + 1,
                  sizeof *c->updates) != 0)
        return ACR_ENOMEM;
    c->updates[c->update_count++] = u;
    return 0;
}

static inline uint64_t hash64(const void *p, size_t n)
{
    return XXH3_64bits(p, n);
}

/* ---- sale ids: {tag, index} slots; bytes compared only on a tag match ---- */

static bool sale_id_eq(const acr_comm_t *c, uint32_t idx, const char *s, uint32_t n)
{
    uint32_t len;
    const char *id = acr__sale_id(c, &c->sales[idx], &len);
    return len == n && acr__bytes_eq(id, s, n);
}

/* The index of sale id s, or ACR__NONE with *slot the empty slot that ends the probe. */
static uint32_t sid_find(const acr_comm_t *c, const char *s, uint32_t n, uint64_t h,
                         uint64_t *slot)
{
    const acr__sidtab_t *t = &c->sale_ids;
    *slot = 0;
    if (t->slots == NULL)
        return ACR__NONE;
    uint32_t tag = (uint32_t)(h >> 32);
    for (uint64_t i = h & t->mask;; i = (i + 1) & t->mask) {
        uint64_t v = t->slots[i];
        if (v == 0) {
            *slot = i;
            return ACR__NONE;
        }
        if ((uint32_t)(v >> 32) == tag && sale_id_eq(c, (uint32_t)v - 1, s, n))
            return (uint32_t)v - 1;
    }
}

/* Doubles the slots (load <= 3/4) and reinserts every sale, rehashing its id. */
static int sid_grow(acr_comm_t *c)
{
    acr__sidtab_t *t = &c->sale_ids;
    uint64_t n = t->slots ? (t->mask + 1) * 2 : 1024;
    uint64_t *slots = acr__table_alloc(n * sizeof *slots);
    if (slots == NULL)
        return ACR_ENOMEM;
    for (size_t k = 0; k < c->sale_count; k++) {
        if (c->sales[k].at_ms >= c->run_end_ms)
            continue; /* fed for the budgets alone: in no table */
        uint32_t len;
        const char *id = acr__sale_id(c, &c->sales[k], &len);
        uint64_t h = hash64(id, len), i = h & (n - 1);
        while (slots[i] != 0)
            i = (i + 1) & (n - 1);
        slots[i] = (h >> 32 << 32) | (k + 1);
    }
    acr__table_free(t->slots, t->slots ? (t->mask + 1) * sizeof *t->slots : 0);
    t->slots = slots;
    t->mask = n - 1;
    return 0;
}

/* Slots for n entries at a load of at most 3/4 (the feeds' grow rule): a power of two. */
static uint64_t slots_for(size_t n)
{
    uint64_t s = 1024;
    while (s * 3 < (uint64_t)n * 4)
        s <<= 1;
    return s;
}

void acr_comm_reserve(acr_comm_t *c, size_t sales, size_t customers)
{
    if (c->output.promotions_only)
        return; /* builds neither table (feed_one) */
    if (c->sale_ids.slots == NULL && sales > 0 && sales <= SALES_RESERVE_MAX) {
        uint64_t n = slots_for(sales);
        if ((c->sale_ids.slots = acr__table_alloc(n * sizeof *c->sale_ids.slots)) != NULL)
            c->sale_ids.mask = n - 1; /* else the feed grows it as it goes */
    }
    if (c->customers.ents == NULL && customers > 0 && customers <= SALES_RESERVE_MAX) {
        uint64_t n = slots_for(customers);
        if ((c->customers.ents = acr__table_alloc(n * sizeof *c->customers.ents)) != NULL)
            c->customers.mask = n - 1;
    }
}

/* ---- customers: inline 32-byte entries ---- */

static bool cust_eq(const acr_comm_t *c, const acr__cust_t *e, const char *s, uint32_t n)
{
    if (e->len != 255)
        return e->len - 1u == n && acr__bytes_eq(e->b, s, n);
    uint64_t off;
    uint32_t len;
    memcpy(&off, e->b, 8);
    memcpy(&len, c->pool.data + off, 4);
    return len == n && memcmp(c->pool.data + off + 4, s, n) == 0;
}

static uint64_t cust_hash(const acr_comm_t *c, const acr__cust_t *e)
{
    if (e->len != 255)
        return hash64(e->b, e->len - 1u);
    uint64_t off;
    uint32_t len;
    memcpy(&off, e->b, 8);
    memcpy(&len, c->pool.data + off, 4);
    return hash64(c->pool.data + off + 4, len);
}

static int cust_grow(acr_comm_t *c)
{
    acr__custtab_t *t = &c->customers;
    uint64_t n = t->ents ? (t->mask + 1) * 2 : 1024;
    acr__cust_t *ents = acr__table_alloc(n * sizeof *ents);
    if (ents == NULL)
        return ACR_ENOMEM;
    for (uint64_t k = 0; t->ents != NULL && k <= t->mask; k++) {
        if (t->ents[k].len == 0)
            continue;
        uint64_t i = cust_hash(c, &t->ents[k]) & (n - 1);
        while (ents[i].len != 0)
            i = (i + 1) & (n - 1);
        ents[i] = t->ents[k];
    }
    acr__table_free(t->ents, t->ents ? (t->mask + 1) * sizeof *t->ents : 0);
    t->ents = ents;
    t->mask = n - 1;
    return 0;
}

/* Keeps the customer's first sale by (at, seq) among the sales up to U; sale is its record
 * index or ACR__NONE (a duplicate id). */
static int note_customer(acr_comm_t *c, const acr_event_t *ev, uint64_t h, uint32_t sale)
{
    acr__custtab_t *t = &c->customers;
    const acr_str_t *cid = &ev->str[ACR_F_CUSTOMER_ID];
    if (t->ents == NULL || (t->count + 1) * 4 > (t->mask + 1) * 3) {
        if (cust_grow(c) != 0)
            return ACR_ENOMEM;
    }
    uint32_t tag = (uint32_t)(h >> 32);
    uint64_t i = h & t->mask;
    for (;; i = (i + 1) & t->mask) {
        acr__cust_t *e = &t->ents[i];
        if (e->len == 0)
            break;
        if (e->tag == tag && cust_eq(c, e, cid->ptr, cid->len)) {
            /* seq grows with feed order, so an equal at keeps the earlier sale */
            if (ev->at_ms < e->first_at_ms) {
                e->first_at_ms = ev->at_ms;
                e->first_sale = sale;
            }
            return 0;
        }
    }
    acr__cust_t *e = &t->ents[i];
    e->tag = tag;
    e->first_sale = sale;
    e->first_at_ms = ev->at_ms;
    if (cid->len <= sizeof e->b) {
        e->len = (uint8_t)(cid->len + 1);
        if (cid->len > 0)
            memcpy(e->b, cid->ptr, cid->len);
    } else {
        uint64_t off;
        if (acr__pool_add(&c->pool, cid->ptr, cid->len, &off) != 0)
            return ACR_ENOMEM;
        e->len = 255;
        memcpy(e->b, &off, 8);
    }
    t->count++;
    return 0;
}

static int feed_sale(acr_comm_t *c, const acr_event_t *ev, uint64_t hs, uint64_t hc)
{
    /* A sale after U needs no record but for the budgets (acr_comm_budgets_through), and
     * never the customer map: a sale ordered before a sale S of a period <= U has at <= S's
     * at < U's end, so a sale after U is never the first of a customer that also has a sale
     * up to U (note_customer would replace it by the earlier one), and a customer whose
     * sales are all after U gets no line. */
    if (ev->at_ms >= c->feed_end_ms)
        return 0;
    const acr_str_t *sid = &ev->str[ACR_F_SALE_ID];
    uint64_t slot = 0;
    /* no table for a promotions-only run (feed_one), nor for a sale fed for the budgets
     * alone (acr_comm_budgets_through) */
    bool lines = !c->output.promotions_only && ev->at_ms < c->run_end_ms;
    if (lines && sid_find(c, sid->ptr, sid->len, hs, &slot) != ACR__NONE)
        /* the log never holds two sales with one id; keep the first */
        return note_customer(c, ev, hc, ACR__NONE);
    if (lines &&
        ((c->sale_count + 1) * 4 > (c->sale_ids.mask + 1) * 3 || c->sale_ids.slots == NULL)) {
        if (sid_grow(c) != 0 || sid_find(c, sid->ptr, sid->len, hs, &slot) != ACR__NONE)
            return ACR_ENOMEM;
    }
    if (c->sale_count >= UINT32_MAX - 1)
        return ACR_ENOMEM;
    uint32_t partner, product;
    const acr_str_t *pid = &ev->str[ACR_F_PARTNER_ID];
    const acr_str_t *prod = &ev->str[ACR_F_PRODUCT];
    if (acr__partner_intern(c, pid->ptr, pid->len, &partner) != 0 ||
        acr__strtab_intern(&c->attrs, &c->arena, prod->ptr, prod->len, &product, NULL) != 0 ||
        product >= ACR_RUN_ATTRS_MAX ||
        acr__grow((void **)&c->sales, &c->sales_cap, c->sale_count + 1, sizeof *c->sales) != 0)
        return ACR_ENOMEM;
    uint32_t idx = (uint32_t)c->sale_count;
    acr__sale_t *s = &c->sales[idx];
    s->at_ms = ev->at_ms;
    s->seq = ev->seq;
    s->amount_minor = ev->num[ACR_F_AMOUNT_MINOR];
    s->partner = partner;
    s->id.off = 0;
    if (sid->len <= sizeof s->id.inl) {
        s->meta = product | (uint32_t)sid->len << ACR__SALE_LEN_SHIFT;
        if (sid->len > 0)
            memcpy(s->id.inl, sid->ptr, sid->len);
    } else {
        s->meta = product | ACR__SALE_LEN_POOL << ACR__SALE_LEN_SHIFT;
        if (acr__pool_add(&c->pool, sid->ptr, sid->len, &s->id.off) != 0)
            return ACR_ENOMEM;
    }
    c->sale_count++;
    if (!lines)
        return 0;
    c->sale_ids.slots[slot] = (hs >> 32 << 32) | (idx + 1);
    c->sale_ids.count++;
    return note_customer(c, ev, hc, idx);
}

static int feed_refund(acr_comm_t *c, const acr_event_t *ev, uint64_t hs, acr_err_t *err)
{
    const acr_str_t *sid = &ev->str[ACR_F_SALE_ID];
    uint64_t slot;
    uint32_t idx = sid_find(c, sid->ptr, sid->len, hs, &slot);
    if (idx == ACR__NONE)
        return 0; /* a sale after U: its refunds are after U too */
    acr__sale_t *s = &c->sales[idx];
    acr__rsum_t *rs = acr__rsum_get(c, idx, true);
    if (rs == NULL)
        return nomem(err);
    s->meta |= ACR__SALE_REFUNDED;
    int64_t before = rs->refunded_minor;
    if (!acr_add_checked(&rs->refunded_minor, ev->num[ACR_F_AMOUNT_MINOR]))
        return acr__overflow(c, err, c->partners[s->partner].id, acr__period_of(c, ev->at_ms));
    if (ev->at_ms >= c->run_end_ms)
        return 0;
    if (acr__grow((void **)&c->refunds, &c->refunds_cap, c->refund_count + 1,
                  sizeof *c->refunds) != 0)
        return nomem(err);
    const char *id = acr__arena_strdup(&c->arena, ev->id.ptr, ev->id.len);
    if (id == NULL)
        return nomem(err);
    c->refunds[c->refund_count++] =
        (acr__refund_t){ev->at_ms, ev->seq, ev->num[ACR_F_AMOUNT_MINOR], before, id, idx};
    return 0;
}

static int feed_adjustment(acr_comm_t *c, const acr_event_t *ev)
{
    if (ev->at_ms >= c->run_end_ms)
        return 0;
    uint32_t partner;
    const acr_str_t *pid = &ev->str[ACR_F_PARTNER_ID];
    if (acr__partner_intern(c, pid->ptr, pid->len, &partner) != 0 ||
        acr__grow((void **)&c->adjs, &c->adjs_cap, c->adj_count + 1, sizeof *c->adjs) != 0)
        return ACR_ENOMEM;
    const char *id = acr__arena_strdup(&c->arena, ev->id.ptr, ev->id.len);
    if (id == NULL)
        return ACR_ENOMEM;
    c->adjs[c->adj_count++] =
        (acr__adj_t){ev->at_ms, ev->seq, ev->num[ACR_F_AMOUNT_MINOR], id, partner};
    return 0;
}

/* Interns plan_id and the rule match values, and builds the rule strings. */
static int plan_compile(acr_comm_t *c, acr__plan_ver_t *v)
{
    const acr_plan_t *p = &v->plan;
    if (acr__strtab_intern(&c->attrs, &c->arena, p->plan_id, (uint32_t)strlen(p->plan_id), &v->key,
                           NULL) != 0)
        return ACR_ENOMEM;
    v->match = calloc((size_t)p->rule_count * 4, sizeof *v->match);
    v->rule_tags = calloc(p->rule_count, sizeof *v->rule_tags);
    if (v->match == NULL || v->rule_tags == NULL)
        return ACR_ENOMEM;
    char buf[128];
    int n = snprintf(buf, sizeof buf, "%s@%lld", p->plan_id, (long long)p->version);
    if ((v->tag = acr__arena_strdup(&c->arena, buf, (size_t)n)) == NULL)
        return ACR_ENOMEM;
    for (uint32_t i = 0; i < p->rule_count; i++) {
        const acr_rule_t *r = &p->rules[i];
        const char *vals[4] = {r->tier, r->kind, r->region, r->product};
        for (unsigned k = 0; k < 4; k++) {
            v->match[4 * i + k] = ACR__NONE;
            if (vals[k] != NULL && acr__strtab_intern(&c->attrs, &c->arena, vals[k],
                                                      (uint32_t)strlen(vals[k]),
                                                      &v->match[4 * i + k], NULL) != 0)
                return ACR_ENOMEM;
        }
        n = snprintf(buf, sizeof buf, "%s#%u", v->tag, (unsigned)i);
        if ((v->rule_tags[i] = acr__arena_strdup(&c->arena, buf, (size_t)n)) == NULL)
            return ACR_ENOMEM;
    }
    return 0;
}

/* Takes ownership of *plan (also on failure). */
static int plan_add(acr_comm_t *c, acr_plan_t *plan, acr_err_t *err)
{
    if (acr__grow((void **)&c->plans, &c->plans_cap, c->plan_count + 1, sizeof *c->plans) != 0) {
        acr_plan_destroy(plan);
        return nomem(err);
    }
    acr__plan_ver_t *v = &c->plans[c->plan_count++];
    memset(v, 0, sizeof *v);
    v->plan = *plan;
    return plan_compile(c, v) != 0 ? nomem(err) : 0;
}

static int feed_plan(acr_comm_t *c, const acr_event_t *ev, acr_err_t *err)
{
    acr_plan_t plan;
    acr_err_t perr;
    acr_err_clear(&perr);
    const acr_str_t *doc = &ev->str[ACR_F_PLAN];
    int rc = acr_plan_parse(doc->ptr, doc->len, &plan, &perr);
    if (rc == ACR_ENOMEM)
        return nomem(err); /* running out of memory is not a damaged ledger */
    if (rc != 0) {
        acr_err_set(err, ACR_ECORRUPT, "stored plan of seq %llu does not parse: %s",
                    (unsigned long long)ev->seq, perr.msg);
        return ACR_ECORRUPT;
    }
    return plan_add(c, &plan, err);
}

static int feed_one(acr_comm_t *c, const acr_event_t *ev, uint64_t hs, uint64_t hc,
                    acr_err_t *err)
{
    if (ev->seq > c->cfg.through_seq)
        return 0; /* does not exist as of X */
    /* Only the promotions' budgets asked (promotions_only): what a sale gets depends on its
     * partner, attributes and certification as of its `at`, its product, amount and plan
     * rule (program.md), never on refunds (they claw no promotion back), adjustments, sale
     * ids or customers: those are not fed, and no sale-id or customer table is built. */
    if (c->output.promotions_only &&
        (ev->type == ACR_EV_SALE_REFUNDED || ev->type == ACR_EV_ADJUSTMENT_RECORDED))
        return 0;
    int rc = 0;
    switch (ev->type) {
    case ACR_EV_PARTNER_REGISTERED: rc = feed_registered(c, ev); break;
    case ACR_EV_PARTNER_UPDATED: rc = feed_updated(c, ev); break;
    case ACR_EV_SALE_RECORDED: rc = feed_sale(c, ev, hs, hc); break;
    case ACR_EV_SALE_REFUNDED: return feed_refund(c, ev, hs, err);
    case ACR_EV_ADJUSTMENT_RECORDED: rc = feed_adjustment(c, ev); break;
    case ACR_EV_PLAN_PUBLISHED: return feed_plan(c, ev, err);
    case ACR_EV_TRAINING_COMPLETED:
    case ACR_EV_ONBOARDING_DEFINED:
    case ACR_EV_PROMOTION_PUBLISHED:
    case ACR_EV_PROMOTION_ENDED: return acr__prog_feed(c, ev, err);
    default: return 0; /* period.closed passes through: its lines come via add_closed */
    }
    return rc != 0 ? nomem(err) : 0;
}

/* The hashes feed_one needs: sale id (sales up to U, refunds) and customer id (sales). */
static void hash_ids(const acr_comm_t *c, const acr_event_t *ev, uint64_t *hs, uint64_t *hc)
{
    *hs = *hc = 0;
    if (c->output.promotions_only)
        return; /* no sale-id or customer table (feed_one) */
    if (ev->type == ACR_EV_SALE_RECORDED) {
        if (ev->at_ms >= c->run_end_ms)
            return; /* after U: not fed (feed_sale) */
        const acr_str_t *cid = &ev->str[ACR_F_CUSTOMER_ID];
        *hc = hash64(cid->ptr, cid->len);
    } else if (ev->type != ACR_EV_SALE_REFUNDED) {
        return;
    }
    const acr_str_t *sid = &ev->str[ACR_F_SALE_ID];
    *hs = hash64(sid->ptr, sid->len);
}

int acr_comm_feed(acr_comm_t *c, const acr_event_t *ev, acr_err_t *err)
{
    uint64_t hs, hc;
    hash_ids(c, ev, &hs, &hc);
    return feed_one(c, ev, hs, hc, err);
}

#define FEED_BATCH 32

int acr_comm_feed_batch(acr_comm_t *c, const acr_event_t *evs, size_t n, acr_err_t *err)
{
    uint64_t hs[FEED_BATCH], hc[FEED_BATCH];
    for (size_t base = 0; base < n; base += FEED_BATCH) {
        size_t m = n - base < FEED_BATCH ? n - base : FEED_BATCH;
        for (size_t i = 0; i < m; i++) {
            const acr_event_t *ev = &evs[base + i];
            hash_ids(c, ev, &hs[i], &hc[i]);
            if (hs[i] != 0 && c->sale_ids.slots != NULL)
                __builtin_prefetch(&c->sale_ids.slots[hs[i] & c->sale_ids.mask]);
            if (hc[i] != 0 && c->customers.ents != NULL)
                __builtin_prefetch(&c->customers.ents[hc[i] & c->customers.mask]);
        }
        for (size_t i = 0; i < m; i++) {
            int rc = feed_one(c, &evs[base + i], hs[i], hc[i], err);
            if (rc != 0)
                return rc;
        }
    }
    return 0;
}

/* A partner is on a plan when its registration or any update names it. */
static bool partner_on_plan(const acr_comm_t *c, uint32_t p, uint32_t key)
{
    if (c->partners[p].reg.plan == key)
        return true;
    for (size_t i = 0; i < c->update_count; i++) {
        const acr__update_t *u = &c->updates[i];
        if (u->partner == p && (u->mask & ACR__UPD_PLAN) && u->v.plan == key)
            return true;
    }
    return false;
}

static int whatif_check(const acr_comm_t *c, const acr_plan_t *plan, acr_err_t *err)
{
    const acr_plan_t *latest = NULL; /* the stale check names the version it must exceed */
    for (size_t i = 0; i < c->plan_count; i++) {
        const acr_plan_t *q = &c->plans[i].plan;
        if (strcmp(q->plan_id, plan->plan_id) == 0 &&
            (latest == NULL || q->version > latest->version))
            latest = q;
    }
    if (latest != NULL && plan->version <= latest->version) {
        acr_err_set(err, ACR_ESTALE_VERSION, "plan %s version %lld is not above version %lld",
                    plan->plan_id, (long long)plan->version, (long long)latest->version);
        snprintf(err->field, sizeof err->field, "%s", "plan.version");
        return ACR_ESTALE_VERSION;
    }
    for (size_t i = 0; i < c->plan_count; i++) {
        const acr_plan_t *q = &c->plans[i].plan;
        if (strcmp(q->plan_id, plan->plan_id) != 0)
            continue;
        if (strcmp(q->currency, plan->currency) != 0) {
            acr_err_set(err, ACR_ECURRENCY_MISMATCH, "plan %s is in %s, not %s", plan->plan_id,
                        q->currency, plan->currency);
            snprintf(err->field, sizeof err->field, "%s", "plan.currency");
            return ACR_ECURRENCY_MISMATCH;
        }
    }
    for (size_t i = 0; i < c->prog.promo_count; i++) { /* program.md: the ceiling */
        const acr_promo_t *m = &c->prog.promos[i].p;
        if (strcmp(m->plan_id, plan->plan_id) == 0 &&
            (int64_t)acr_plan_max_rate(plan) + m->rate_bp > plan->ceiling_bp) {
            acr_err_set(err, ACR_EABOVE_CEILING,
                        "promotion %s pays %d bp on top of this version's top rate: above "
                        "ceiling_bp %d",
                        m->promo_id, (int)m->rate_bp, (int)plan->ceiling_bp);
            snprintf(err->field, sizeof err->field, "%s", "plan.ceiling_bp");
            return ACR_EABOVE_CEILING;
        }
    }
    uint32_t key = acr__strtab_find(&c->attrs, plan->plan_id, (uint32_t)strlen(plan->plan_id),
                                    acr__hash(plan->plan_id, strlen(plan->plan_id)));
    for (uint32_t p = 0; key != ACR__NONE && p < c->partner_ids.count; p++) {
        const acr__partner_t *pa = &c->partners[p];
        if (pa->registered && partner_on_plan(c, p, key) &&
            strcmp(pa->currency, plan->currency) != 0) {
            acr_err_set(err, ACR_ECURRENCY_MISMATCH, "partner %s on plan %s is in %s, not %s",
                        pa->id, plan->plan_id, pa->currency, plan->currency);
            snprintf(err->field, sizeof err->field, "%s", "plan.currency");
            return ACR_ECURRENCY_MISMATCH;
        }
    }
    return 0;
}

int acr_comm_add_whatif_plan(acr_comm_t *c, const char *json, size_t len, acr_err_t *err)
{
    acr_plan_t plan;
    acr_err_t tmp;
    if (err == NULL)
        err = &tmp;
    acr_err_clear(err);
    int rc = acr_plan_parse(json, len, &plan, err);
    if (rc != 0)
        return rc;
    if ((rc = whatif_check(c, &plan, err)) != 0) {
        acr_plan_destroy(&plan);
        return rc;
    }
    return plan_add(c, &plan, err);
}

int acr_comm_finish(acr_comm_t *c, acr_statement_t *out, acr_err_t *err)
{
    memset(out, 0, sizeof *out);
    out->period = c->cfg.run_period;
    if (c->finished)
        return acr_err_set(err, ACR_EUSAGE, "acr_comm_finish called twice");
    int rc = acr__compute_lines(c, out, err);
    if (rc == 0) {
        acr__arena_t *a = malloc(sizeof *a);
        if (a == NULL)
            rc = nomem(err);
        else {
            *a = c->arena; /* the statement's strings live here: hand it over */
            c->arena.head = NULL;
            out->arena = a;
            c->finished = true;
        }
    }
    if (rc != 0) {
        acr_statement_destroy(out);
        out->period = c->cfg.run_period;
    }
    return rc;
}

void acr_statement_destroy(acr_statement_t *s)
{
    if (s == NULL)
        return;
    free(s->lines);
    free(s->csv);
    free(s->partners);
    free(s->unplanned);
    free(s->plans_used);
    free(s->currency_totals);
    free(s->promotions);
    if (s->arena != NULL) {
        acr__arena_free(s->arena);
        free(s->arena);
    }
    memset(s, 0, sizeof *s);
}
