/* program.c - the partner program in the commission processor (program.md):
 * certification as of an instant, and which promotion a sale gets.
 *
 * Feeding keeps three small things, whatever the run's period (certification
 * and promotions look at the whole log up to X):
 *   - onboarding lists (onboarding.defined): at, seq and the module names interned;
 *   - per (partner, module) the earliest `at` of its training.completed events
 *     (a partner completed m as of T exactly when that earliest `at` <= T);
 *   - promotions: the parsed document, its publishing seq, and its last day,
 *     lowered by every promotion.ended fed (all have seq <= X).
 * A partner is certified as of T when the list in force at T (the last by
 * (at, seq) with at <= T) is absent, or each of its modules was completed as
 * of T: i.e. when max over the list's modules of the earliest `at` is <= T.
 * That maximum is cached per partner and list by the caller (lines.c).
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "accrue/date.h"
#include "accrue/jsonmem.h"
#include "comm_internal.h"

static int nomem(acr_err_t *err)
{
    return acr_err_set(err, ACR_ENOMEM, "out of memory in the commission processor");
}

static acr__trained_t *trained_slot(const acr__program_t *g, uint64_t key)
{
    uint64_t h = key * 0x9E3779B97F4A7C15ull;
    for (size_t i = (size_t)(h >> 20) & g->trained_mask;; i = (i + 1) & g->trained_mask)
        if (g->trained[i].key == key || g->trained[i].key == 0)
            return &g->trained[i];
}

static int trained_note(acr__program_t *g, uint64_t key, int64_t at_ms)
{
    if ((g->trained_count + 1) * 4 > (g->trained_mask + 1) * 3 || g->trained == NULL) {
        size_t cap = g->trained ? (g->trained_mask + 1) * 2 : 64;
        acr__trained_t *old = g->trained;
        size_t old_cap = old ? g->trained_mask + 1 : 0;
        g->trained = calloc(cap, sizeof *g->trained);
        if (g->trained == NULL) {
            g->trained = old;
            return ACR_ENOMEM;
        }
        g->trained_mask = cap - 1;
        for (size_t i = 0; i < old_cap; i++)
            if (old[i].key != 0)
                *trained_slot(g, old[i].key) = old[i];
        free(old);
    }
    acr__trained_t *e = trained_slot(g, key);
    if (e->key == 0) {
        e->key = key;
        e->first_at_ms = at_ms;
        g->trained_count++;
    } else if (at_ms < e->first_at_ms) {
        e->first_at_ms = at_ms;
    }
    return 0;
}

static int intern(acr_comm_t *c, const char *s, size_t n, uint32_t *out)
{
    return acr__strtab_intern(&c->attrs, &c->arena, s, (uint32_t)n, out, NULL);
}

static int feed_training(acr_comm_t *c, const acr_event_t *ev)
{
    uint32_t p, m;
    const acr_str_t *pid = &ev->str[ACR_F_PARTNER_ID], *mod = &ev->str[ACR_F_MODULE];
    if (acr__partner_intern(c, pid->ptr, pid->len, &p) != 0 ||
        intern(c, mod->ptr, mod->len, &m) != 0)
        return ACR_ENOMEM;
    return trained_note(&c->prog, ((uint64_t)p << 32 | m) + 1, ev->at_ms);
}

static int feed_onboarding(acr_comm_t *c, const acr_event_t *ev, acr_err_t *err)
{
    acr__program_t *g = &c->prog;
    const acr_str_t *doc = &ev->str[ACR_F_MODULES];
    acr_jsonmem_begin();
    json_t *arr = json_loadb(doc->ptr, doc->len, 0, NULL);
    if (arr == NULL || !json_is_array(arr)) {
        json_decref(arr);
        if (acr_jsonmem_failed())
            return nomem(err);
        return acr_err_set(err, ACR_ECORRUPT, "stored modules of seq %llu do not parse",
                           (unsigned long long)ev->seq);
    }
    size_t n = json_array_size(arr);
    acr__onb_t o = {ev->at_ms, ev->seq, calloc(n ? n : 1, sizeof(uint32_t)), (uint32_t)n};
    int rc = o.mods ? 0 : ACR_ENOMEM;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        json_t *m = json_array_get(arr, i);
        rc = json_is_string(m) ? intern(c, json_string_value(m), json_string_length(m), &o.mods[i])
                               : ACR_ECORRUPT;
    }
    json_decref(arr);
    if (rc == 0 && acr__grow((void **)&g->onbs, &g->onbs_cap, g->onb_count + 1, sizeof o) != 0)
        rc = ACR_ENOMEM;
    if (rc != 0) {
        free(o.mods);
        return rc == ACR_ENOMEM ? nomem(err)
                                : acr_err_set(err, rc, "stored modules of seq %llu are damaged",
                                              (unsigned long long)ev->seq);
    }
    g->onbs[g->onb_count++] = o;
    return 0;
}

static int feed_promotion(acr_comm_t *c, const acr_event_t *ev, acr_err_t *err)
{
    acr__program_t *g = &c->prog;
    acr_promo_t p;
    acr_err_t perr;
    acr_err_clear(&perr);
    const acr_str_t *doc = &ev->str[ACR_F_PROMOTION];
    int rc = acr_promo_parse(doc->ptr, doc->len, &p, &perr);
    if (rc == ACR_ENOMEM)
        return nomem(err);
    if (rc != 0)
        return acr_err_set(err, ACR_ECORRUPT, "stored promotion of seq %llu does not parse: %s",
                           (unsigned long long)ev->seq, perr.msg);
    if (acr__grow((void **)&g->promos, &g->promos_cap, g->promo_count + 1, sizeof *g->promos)) {
        acr_promo_destroy(&p);
        return nomem(err);
    }
    acr__promo_t *m = &g->promos[g->promo_count++];
    memset(m, 0, sizeof *m);
    m->p = p;
    m->seq = ev->seq;
    m->last_day = p.to_day;
    const char *vals[4] = {p.tier, p.kind, p.region, p.product};
    rc = intern(c, p.plan_id, strlen(p.plan_id), &m->plan_key);
    for (int k = 0; rc == 0 && k < 4; k++) {
        m->match[k] = ACR__NONE;
        if (vals[k] != NULL)
            rc = intern(c, vals[k], strlen(vals[k]), &m->match[k]);
    }
    char rule[96];
    size_t n = (size_t)snprintf(rule, sizeof rule, "promotion:%s", p.promo_id);
    if (rc == 0 && (m->rule = acr__arena_strdup(&c->arena, rule, n)) == NULL)
        rc = ACR_ENOMEM;
    if (p.match_has & ACR_MATCH_CERTIFIED)
        g->cert_used = true;
    return rc ? nomem(err) : 0;
}

static void feed_ended(acr_comm_t *c, const acr_event_t *ev)
{
    const acr_str_t *id = &ev->str[ACR_F_PROMO_ID];
    for (size_t i = 0; i < c->prog.promo_count; i++) {
        acr__promo_t *m = &c->prog.promos[i];
        if (strlen(m->p.promo_id) == id->len && memcmp(m->p.promo_id, id->ptr, id->len) == 0 &&
            ev->num[ACR_F_ENDS_ON] < m->last_day)
            m->last_day = (int32_t)ev->num[ACR_F_ENDS_ON];
    }
}

int acr__prog_feed(acr_comm_t *c, const acr_event_t *ev, acr_err_t *err)
{
    switch (ev->type) {
    case ACR_EV_TRAINING_COMPLETED: return feed_training(c, ev) ? nomem(err) : 0;
    case ACR_EV_ONBOARDING_DEFINED: return feed_onboarding(c, ev, err);
    case ACR_EV_PROMOTION_PUBLISHED: return feed_promotion(c, ev, err);
    case ACR_EV_PROMOTION_ENDED: feed_ended(c, ev); return 0;
    default: return 0;
    }
}

void acr__prog_free(acr_comm_t *c)
{
    acr__program_t *g = &c->prog;
    for (size_t i = 0; i < g->onb_count; i++)
        free(g->onbs[i].mods);
    free(g->onbs);
    free(g->trained);
    for (size_t i = 0; i < g->promo_count; i++)
        acr_promo_destroy(&g->promos[i].p);
    free(g->promos);
    acr__table_free(g->sale_promo, g->sale_promo_n * sizeof *g->sale_promo);
    acr__table_free(g->sale_promo_minor, g->sale_promo_n * sizeof *g->sale_promo_minor);
    memset(g, 0, sizeof *g);
}

static int onb_cmp(const void *pa, const void *pb)
{
    const acr__onb_t *a = pa, *b = pb;
    if (a->at_ms != b->at_ms)
        return a->at_ms < b->at_ms ? -1 : 1;
    return a->seq < b->seq ? -1 : a->seq > b->seq;
}

void acr__prog_prepare(acr_comm_t *c)
{
    acr__program_t *g = &c->prog;
    if (g->onb_count > 1)
        qsort(g->onbs, g->onb_count, sizeof *g->onbs, onb_cmp);
}

int acr__certified(const acr_comm_t *c, uint32_t p, int64_t t_ms, int64_t *since)
{
    const acr__program_t *g = &c->prog;
    size_t lo = 0, hi = g->onb_count; /* the number of lists with at <= t */
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (g->onbs[mid].at_ms <= t_ms)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == 0)
        return 1; /* no list in force: every partner is certified */
    size_t l = lo - 1;
    if (since[l] == INT64_MIN) {
        int64_t worst = INT64_MIN + 1;
        for (uint32_t i = 0; i < g->onbs[l].n && worst != INT64_MAX; i++) {
            const acr__trained_t *e =
                g->trained ? trained_slot(g, ((uint64_t)p << 32 | g->onbs[l].mods[i]) + 1) : NULL;
            int64_t at = e != NULL && e->key != 0 ? e->first_at_ms : INT64_MAX;
            worst = at > worst ? at : worst;
        }
        since[l] = worst;
    }
    return since[l] <= t_ms;
}

uint32_t acr__promo_choose(const acr_comm_t *c, const acr__attrs_t *a, uint32_t product,
                           int32_t day, int (*cert_fn)(void *ctx), void *ctx)
{
    const acr__program_t *g = &c->prog;
    const uint32_t have[4] = {a->tier, a->kind, a->region, product};
    uint32_t best = ACR__NONE;
    int cert = -1;
    for (size_t i = 0; i < g->promo_count; i++) {
        const acr__promo_t *m = &g->promos[i];
        if (m->plan_key != a->plan || day < m->p.from_day || day > m->last_day)
            continue;
        bool ok = true;
        for (unsigned k = 0; k < 4 && ok; k++)
            ok = !(m->p.match_has & (1u << k)) || (have[k] != ACR__NONE && have[k] == m->match[k]);
        if (ok && (m->p.match_has & ACR_MATCH_CERTIFIED)) {
            if (cert < 0)
                cert = cert_fn(ctx);
            ok = (cert != 0) == m->p.certified;
        }
        if (!ok)
            continue;
        if (best != ACR__NONE) {
            const acr__promo_t *b = &g->promos[best];
            /* the highest rate_bp, then the highest per_sale_minor, then the lowest seq */
            if (m->p.rate_bp < b->p.rate_bp ||
                (m->p.rate_bp == b->p.rate_bp &&
                 (m->p.per_sale_minor < b->p.per_sale_minor ||
                  (m->p.per_sale_minor == b->p.per_sale_minor && m->seq > b->seq))))
                continue;
        }
        best = (uint32_t)i;
    }
    return best;
}

void acr__promo_tally(acr_comm_t *c, const acr_line_t *l)
{
    const char *id = strncmp(l->rule, "promotion:", 10) == 0 ? l->rule + 10 : NULL;
    for (size_t i = 0; id != NULL && i < c->prog.promo_count; i++) {
        acr__promo_t *m = &c->prog.promos[i];
        if (strcmp(m->p.promo_id, id) == 0) {
            m->lines++;
            if (__builtin_add_overflow(m->total_minor, l->amount_minor, &m->total_minor))
                m->total_minor = l->amount_minor < 0 ? INT64_MIN : INT64_MAX;
            return;
        }
    }
}
