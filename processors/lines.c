/* lines.c - the lines of every origin period <= U, and their restatement.
 *
 * acr_comm_finish's core. Records are grouped by partner (a counting sort on
 * the partner index, so one partner's records keep their feed order) and
 * each group is put in (at, seq) order with a merge sort that returns at
 * once on already-ordered input. Partners are then visited in partner_id
 * byte order, and for each one, in four steps:
 *   A. sales in (at, seq) order, one period at a time: attributes as of the
 *      sale (partner.updated applied by business time through a cursor), the
 *      plan version on the sale's local date, the first matching rule, the
 *      bracket commission on [cum, cum + amount); the period-level plan as of
 *      the period's end - 1 ms;
 *   B. refunds: clawbacks, and the refunds' share of each period's net;
 *   C. target bonus and cap per period;
 *   D. the lines, period by period in statement kind order, each compared
 *      with what closed statements paid for its identity (delta = now - paid);
 *      paid identities with no now-side line then get -paid.
 * Every step emits in statement order, so lines go straight to the output
 * (statement.c) without being kept. The partner's paid identities come in the
 * same order (paid.c), so each line finds its paid amount by walking them
 * beside the emission, and a paid-only identity is output at its place as
 * the walk passes it.
 *
 * A partner's sales are gathered from the global feed-order array into one
 * contiguous scratch array (prefetched), with their plan version, rule and
 * commission beside them; refunds find their sale's position through the
 * refund-sum table.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "accrue/date.h"
#include "accrue/limits.h"
#include "accrue/money.h"
#include "comm_internal.h"

typedef struct pinfo {
    int32_t period;       /* an origin period in which the partner has sales */
    uint32_t sale_lo;     /* the period's sales: positions in the partner's sale order */
    uint32_t sale_hi;
    int32_t level_ver;    /* plan version of the period-level lines, -1 = none */
    int64_t net_minor;    /* sales minus refunds of the period */
    int64_t sub_minor;    /* lines of kinds sale .. target_bonus */
    int64_t target_minor; /* target bonus line, 0 = none */
    int64_t cap_minor;    /* cap line, 0 = none */
} pinfo_t;

typedef struct group {
    uint32_t *ord;   /* record indexes, grouped by partner */
    uint32_t *start; /* partner p's records are ord[start[p] .. start[p + 1]) */
} group_t;

typedef struct cursor {
    acr__attrs_t a;       /* attributes as of the last advance */
    const uint32_t *upd;  /* the partner's updates in (at, seq) order */
    size_t n;
    size_t i;             /* updates applied */
} cursor_t;

typedef struct psale {    /* one sale of the partner being processed, in (at, seq) order */
    acr__sale_t s;
    uint32_t idx;         /* sales index */
    int32_t ver;          /* plan version on its date, -1 */
    int32_t rule;         /* matched rule, -1 = unplanned */
    int64_t comm;         /* its sale-line amount (0 when unplanned) */
    uint32_t promo;       /* second pass: the promotion it gets (ACR__NONE) */
    int64_t promo_minor;  /* and what it is paid (after the budget) */
} psale_t;

typedef struct run {
    acr_comm_t *c;
    acr_statement_t *st;
    acr_err_t *err;
    acr__out_t *out;
    size_t unplanned_cap;
    psale_t *ps;          /* the partner's sales */
    size_t ps_count, ps_cap;
    psale_t *late;        /* gather: the sales out of (at, seq) order */
    size_t late_cap;
    int64_t *claw;        /* per refund: its clawback line amount (<= 0) */
    group_t sales, refunds, adjs, upds;
    uint32_t *sales_end;  /* per partner: the end of its sales that have lines (those after,
                             to sales.start[p + 1], are fed for the budgets alone) */
    pinfo_t *pinfo;
    size_t pinfo_count, pinfo_cap;
    int32_t *period_keys; /* period id strings, interned in the arena */
    const char **period_strs;
    size_t period_count, period_cap;
    const uint32_t *pblk; /* per close and partner, its block of paid lines (acr__paid_index) */
    const size_t *plines; /* per partner, its paid lines over every close */
    acr__paid_set_t pset; /* the partner's paid identities, in statement order */
    size_t ppos;          /* the first of them the emission has not passed */
    bool has_paid;        /* the partner has some (pset loaded) */
    char *idbuf;          /* the NUL-terminated id of the sale line being emitted */
    size_t idbuf_cap;
    const char *partner_id; /* the partner being processed */
    uint32_t partner;
    int64_t *since;       /* per onboarding list: when the partner completed it (cache) */
    bool prepass;         /* promotions' first pass: choose, do not emit */
    int32_t promo_lo_day, promo_hi_day; /* the days some promotion runs within */
    int32_t lo;           /* output.window_only: the first origin computed, else INT32_MIN */
    int32_t *need;        /* the partner's periods before lo that a clawback in the window needs */
    size_t need_count, need_cap;
    acr__arena_t *arena;  /* where period ids and unplanned sale ids go: the processor's, or
                             a helper's own (moved into the processor's at the end) */
    acr__arena_t own_arena;
    struct chunk *rec;    /* the parallel finish: the group being computed, which records the
                             lines and unplanned sales instead of outputting them */
    struct run *crew;     /* the parallel finish's runs (the caller's first), kept from the
                             promotions' pass to the lines so their scratch is reused */
    unsigned crew_n;
} run_t;

typedef struct cert_ctx {
    run_t *r;
    int64_t at_ms;
} cert_ctx_t;

/* The partner's certification as of the sale being processed (program.md). */
static int cert_now(void *ctx)
{
    cert_ctx_t *x = ctx;
    return acr__certified(x->r->c, x->r->partner, x->at_ms, x->r->since);
}

static int nomem(run_t *r)
{
    return acr_err_set(r->err, ACR_ENOMEM, "out of memory computing statement lines");
}

static const char *period_str(run_t *r, int32_t period)
{
    for (size_t i = r->period_count; i-- > 0;)
        if (r->period_keys[i] == period)
            return r->period_strs[i];
    size_t cap = r->period_cap;
    if (acr__grow((void **)&r->period_keys, &cap, r->period_count + 1, sizeof(int32_t)) != 0 ||
        acr__grow((void **)&r->period_strs, &r->period_cap, r->period_count + 1,
                  sizeof(char *)) != 0)
        return NULL;
    char buf[ACR_PERIOD_ID_MAX];
    acr_period_format(r->c->cfg.period_kind, period, buf);
    const char *s = acr__arena_strdup(r->arena, buf, strlen(buf));
    if (s == NULL)
        return NULL;
    r->period_keys[r->period_count] = period;
    r->period_strs[r->period_count++] = s;
    return s;
}

/* A NUL-terminated copy of sale s's id in r->idbuf (valid until the next call). */
static const char *sale_id_str(run_t *r, const acr__sale_t *s)
{
    uint32_t n;
    const char *id = acr__sale_id(r->c, s, &n);
    if (n + 1 > r->idbuf_cap) {
        size_t cap = r->idbuf_cap;
        if (acr__grow((void **)&r->idbuf, &cap, (size_t)n + 1, 1) != 0)
            return NULL;
        r->idbuf_cap = cap;
    }
    memcpy(r->idbuf, id, n);
    r->idbuf[n] = '\0';
    return r->idbuf;
}

/* ---- grouping and ordering ---- */

typedef uint32_t (*key_fn)(const acr_comm_t *c, size_t i);

static uint32_t refund_key(const acr_comm_t *c, size_t i)
{
    return c->sales[c->refunds[i].sale].partner;
}
static uint32_t adj_key(const acr_comm_t *c, size_t i) { return c->adjs[i].partner; }
static uint32_t upd_key(const acr_comm_t *c, size_t i) { return c->updates[i].partner; }

#define AT_SEQ_LESS(T)                                                                             \
    static bool T##_less(const void *ctx, uint32_t a, uint32_t b)                                  \
    {                                                                                              \
        const acr__##T##_t *x = (const acr__##T##_t *)ctx + a, *y = (const acr__##T##_t *)ctx + b; \
        return x->at_ms < y->at_ms || (x->at_ms == y->at_ms && x->seq < y->seq);                   \
    }
AT_SEQ_LESS(refund)
AT_SEQ_LESS(adj)
AT_SEQ_LESS(update)

/* Counting sort of n records by partner, then each partner's run by less (NULL: feed order). */
static int group(run_t *r, group_t *g, size_t n, key_fn key, acr__less_fn less, const void *ctx)
{
    size_t np = r->c->partner_ids.count;
    g->start = calloc(np + 1, sizeof *g->start);
    g->ord = malloc((n ? n : 1) * sizeof *g->ord);
    uint32_t *cursor = malloc((np ? np : 1) * sizeof *cursor);
    uint32_t *tmp = less ? malloc((n ? n : 1) * sizeof *tmp) : NULL;
    int rc = 0;
    if (g->start == NULL || g->ord == NULL || cursor == NULL || (less && tmp == NULL)) {
        rc = nomem(r);
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        g->start[key(r->c, i) + 1]++;
    for (size_t p = 0; p < np; p++) {
        g->start[p + 1] += g->start[p];
        cursor[p] = g->start[p];
    }
    for (size_t i = 0; i < n; i++)
        g->ord[cursor[key(r->c, i)]++] = (uint32_t)i;
    for (size_t p = 0; less != NULL && p < np; p++)
        acr__sort_idx(g->ord + g->start[p], tmp, g->start[p + 1] - g->start[p], less, ctx);
out:
    free(cursor);
    free(tmp);
    return rc;
}

/* The sales grouped by partner like group(), each partner's in feed order, but with the
 * sales fed for the promotions' budgets alone (at >= run_end_ms: after the run's period,
 * acr_comm_budgets_through) after the others, so that the lines pass gathers none of them:
 * a first-month run feeds the year for its budgets, and gathering each of those sales (a
 * random access) cost the lines pass as much as the budgets' own. */
static int group_sales(run_t *r)
{
    const acr_comm_t *c = r->c;
    size_t np = c->partner_ids.count, n = c->sale_count;
    group_t *g = &r->sales;
    g->start = calloc(np + 1, sizeof *g->start);
    g->ord = malloc((n ? n : 1) * sizeof *g->ord);
    r->sales_end = calloc(np ? np : 1, sizeof *r->sales_end);
    uint32_t *cursor = malloc((np ? np : 1) * sizeof *cursor);
    if (g->start == NULL || g->ord == NULL || r->sales_end == NULL || cursor == NULL) {
        free(cursor);
        return nomem(r);
    }
    for (size_t i = 0; i < n; i++) {
        g->start[c->sales[i].partner + 1]++;
        r->sales_end[c->sales[i].partner] += c->sales[i].at_ms >= c->run_end_ms; /* late */
    }
    for (size_t p = 0; p < np; p++) {
        g->start[p + 1] += g->start[p];
        cursor[p] = g->start[p];
        r->sales_end[p] = g->start[p + 1] - r->sales_end[p];
    }
    uint32_t *late = malloc((np ? np : 1) * sizeof *late);
    if (late == NULL) {
        free(cursor);
        return nomem(r);
    }
    memcpy(late, r->sales_end, (np ? np : 1) * sizeof *late);
    for (size_t i = 0; i < n; i++) {
        uint32_t p = c->sales[i].partner;
        g->ord[c->sales[i].at_ms >= c->run_end_ms ? late[p]++ : cursor[p]++] = (uint32_t)i;
    }
    free(late);
    free(cursor);
    return 0;
}

static void group_free(group_t *g)
{
    free(g->ord);
    free(g->start);
}

static int psale_cmp(const void *pa, const void *pb)
{
    const psale_t *a = pa, *b = pb;
    if (a->s.at_ms != b->s.at_ms)
        return a->s.at_ms < b->s.at_ms ? -1 : 1;
    return a->s.seq < b->s.seq ? -1 : a->s.seq > b->s.seq;
}

/* Puts r->ps in (at, seq) order ((at, seq) is unique: a total order). The feed order is
 * seq order, and all but the late sales (at below an earlier one's) are in order already:
 * those are taken out, sorted, and merged back from the end, in place, O(n) plus a sort of
 * the few. */
static int order_sales(run_t *r)
{
    size_t n = r->ps_count, kept = 0, nl = 0;
    for (size_t i = 0; i < n; i++) {
        if (kept == 0 || psale_cmp(&r->ps[i], &r->ps[kept - 1]) > 0) {
            r->ps[kept++] = r->ps[i];
            continue;
        }
        if (acr__grow((void **)&r->late, &r->late_cap, nl + 1, sizeof *r->late) != 0)
            return ACR_ENOMEM;
        r->late[nl++] = r->ps[i];
    }
    if (nl > 1)
        qsort(r->late, nl, sizeof *r->late, psale_cmp);
    /* ps[0 .. kept) and late[0 .. nl) into ps[0 .. n), the greatest first: the next place
     * written, k, is never below a kept sale not yet moved (k - a = late ones left) */
    size_t a = kept, b = nl, k = n;
    while (b > 0) {
        if (a > 0 && psale_cmp(&r->ps[a - 1], &r->late[b - 1]) > 0)
            r->ps[--k] = r->ps[--a];
        else
            r->ps[--k] = r->late[--b];
    }
    return 0;
}

/* Gathers the partner's sales (feed order, prefetched) into r->ps and orders them by
 * (at, seq); notes each refunded sale's position for its refunds. The per-sale promotion
 * arrays are indexed like the feed-order sales, so their entries are prefetched with the
 * sales (the prepass writes them, the second pass copies them into ps). */
static int gather_sales(run_t *r)
{
    const acr_comm_t *c = r->c;
    const acr__program_t *g = &c->prog;
    const uint32_t *ord = r->sales.ord + r->sales.start[r->partner];
    size_t n = (r->prepass ? r->sales.start[r->partner + 1] : r->sales_end[r->partner]) -
               r->sales.start[r->partner];
    if (acr__grow((void **)&r->ps, &r->ps_cap, n ? n : 1, sizeof *r->ps) != 0)
        return nomem(r);
    bool sorted = true, promos = g->sale_promo != NULL;
    for (size_t i = 0; i < n; i++) {
        if (i + 12 < n) {
            __builtin_prefetch(&c->sales[ord[i + 12]]);
            if (promos) {
                __builtin_prefetch(&g->sale_promo[ord[i + 12]]);
                __builtin_prefetch(&g->sale_promo_minor[ord[i + 12]]);
            }
        }
        psale_t *p = &r->ps[i];
        p->s = c->sales[ord[i]];
        p->idx = ord[i];
        p->promo = promos && !r->prepass ? g->sale_promo[ord[i]] : ACR__NONE;
        p->promo_minor = promos && !r->prepass ? g->sale_promo_minor[ord[i]] : 0;
        if (i > 0 && psale_cmp(p - 1, p) > 0)
            sorted = false;
    }
    r->ps_count = n; /* the lines pass: without the sales fed for the budgets alone */
    if (!sorted && order_sales(r) != 0)
        return nomem(r);
    for (size_t i = 0; i < n; i++) {
        if (!(r->ps[i].s.meta & ACR__SALE_REFUNDED))
            continue;
        acr__rsum_t *rs = acr__rsum_get(r->c, r->ps[i].idx, false);
        if (rs != NULL)
            rs->pos = (uint32_t)i;
    }
    return 0;
}

/* The partner's sale that refund rf refunds. */
static psale_t *refund_sale(run_t *r, const acr__refund_t *rf)
{
    return &r->ps[acr__rsum_get(r->c, rf->sale, false)->pos];
}

static void cursor_advance(const acr_comm_t *c, cursor_t *cur, int64_t t_ms)
{
    while (cur->i < cur->n) {
        const acr__update_t *u = &c->updates[cur->upd[cur->i]];
        if (u->at_ms > t_ms)
            break;
        if (u->mask & ACR__UPD_TIER)
            cur->a.tier = u->v.tier;
        if (u->mask & ACR__UPD_PLAN)
            cur->a.plan = u->v.plan;
        if (u->mask & ACR__UPD_REGION)
            cur->a.region = u->v.region;
        cur->i++;
    }
}

/* ---- plan choice and the money of one line ---- */

/* effective_from <= day, then the latest effective_from, then the highest version. */
static int32_t version_on(const acr_comm_t *c, uint32_t plan_key, int32_t day)
{
    int32_t best = -1;
    for (size_t i = 0; plan_key != ACR__NONE && i < c->plan_count; i++) {
        const acr_plan_t *p = &c->plans[i].plan;
        if (c->plans[i].key != plan_key || p->effective_from_day > day)
            continue;
        const acr_plan_t *b = best >= 0 ? &c->plans[best].plan : NULL;
        if (b == NULL || p->effective_from_day > b->effective_from_day ||
            (p->effective_from_day == b->effective_from_day && p->version > b->version))
            best = (int32_t)i;
    }
    return best;
}

static int32_t rule_match(const acr__plan_ver_t *v, const acr__attrs_t *a, uint32_t product,
                          cert_ctx_t *cx)
{
    const uint32_t have[4] = {a->tier, a->kind, a->region, product};
    int cert = -1;
    for (uint32_t i = 0; i < v->plan.rule_count; i++) {
        unsigned has = v->plan.rules[i].match_has;
        bool ok = true;
        for (unsigned k = 0; k < 4 && ok; k++)
            ok = !(has & (1u << k)) || (have[k] != ACR__NONE && have[k] == v->match[4 * i + k]);
        if (ok && (has & ACR_MATCH_CERTIFIED)) { /* program.md: certification as of the sale */
            if (cert < 0)
                cert = cert_now(cx);
            ok = (cert != 0) == v->plan.rules[i].certified;
        }
        if (ok)
            return (int32_t)i;
    }
    return -1;
}

/* round_half_even(sum over brackets of overlap x rate / 10000). */
static bool bracket_comm(const acr_rule_t *rule, int64_t cum, int64_t amount, int64_t *out)
{
    acr_i128_t lo = cum, hi = (acr_i128_t)cum + amount, exact = 0;
    for (uint32_t i = 0; i < rule->bracket_count; i++) {
        acr_i128_t from = rule->brackets[i].from_minor;
        acr_i128_t to = i + 1 < rule->bracket_count ? rule->brackets[i + 1].from_minor : hi;
        acr_i128_t a = lo > from ? lo : from, b = hi < to ? hi : to;
        if (b > a)
            exact += (b - a) * rule->brackets[i].rate_bp;
    }
    return acr_round_half_even(exact, ACR_BP_MAX, out);
}

/* ---- the parallel finish's groups (below): what one records ---- */

typedef struct chunk {
    uint32_t lo, hi;         /* the partners rank[lo .. hi) */
    size_t weight;           /* their records (sales, refunds, adjustments, paid lines) */
    acr_line_t *lines;       /* in statement order */
    size_t nlines, lines_cap;
    acr_unplanned_t *unpl;   /* in the order found */
    size_t nunpl, unpl_cap;
    acr__arena_t arena;      /* the lines' sale ids */
    int rc;                  /* the computation's code, err its error */
    acr_err_t err;
    bool done;
} chunk_t;

static int push_unplanned(run_t *r, const acr__sale_t *s, int32_t period)
{
    acr_statement_t *st = r->st;
    uint32_t n;
    const char *id = acr__sale_id(r->c, s, &n);
    const char *copy = acr__arena_strdup(r->arena, id, n);
    acr_unplanned_t **arr = r->rec ? &r->rec->unpl : &st->unplanned;
    size_t *count = r->rec ? &r->rec->nunpl : &st->unplanned_count;
    size_t *cap = r->rec ? &r->rec->unpl_cap : &r->unplanned_cap;
    if (copy == NULL || acr__grow((void **)arr, cap, *count + 1, sizeof **arr) != 0)
        return nomem(r);
    (*arr)[(*count)++] = (acr_unplanned_t){copy, r->partner_id, period};
    return 0;
}

static bool is_new_customer(const acr__sale_t *s)
{
    return (s->meta & ACR__SALE_NEWCUST) != 0;
}

/* Step A for one sale: plan, rule, commission; its share of the period sums. */
static int one_sale(run_t *r, cursor_t *cur, psale_t *p, int64_t *cum, pinfo_t *pi)
{
    const acr_comm_t *c = r->c;
    const acr__sale_t *s = &p->s;
    cursor_advance(c, cur, s->at_ms);
    int32_t day = acr_local_day(s->at_ms, c->cfg.utc_offset_min);
    int32_t ver = version_on(c, cur->a.plan, day), rule = -1;
    int64_t comm = 0;
    cert_ctx_t cx = {r, s->at_ms};
    if (ver >= 0)
        rule = rule_match(&c->plans[ver], &cur->a, ACR__SALE_PRODUCT(s), &cx);
    if (rule >= 0 &&
        !bracket_comm(&c->plans[ver].plan.rules[rule], *cum, s->amount_minor, &comm))
        return acr__overflow(c, r->err, r->partner_id, pi->period);
    if (rule < 0 && push_unplanned(r, s, pi->period) != 0)
        return ACR_ENOMEM;
    /* program.md: only a planned sale can get a promotion (chosen by partner_promos) */
    int64_t promo = rule >= 0 ? p->promo_minor : 0;
    p->ver = ver;
    p->rule = rule;
    p->comm = comm;
    int64_t bonus = ver >= 0 && is_new_customer(s) ? c->plans[ver].plan.new_customer_bonus_minor
                                                   : 0;
    if (!acr_add_checked(cum, s->amount_minor) ||
        !acr_add_checked(&pi->net_minor, s->amount_minor) ||
        !acr_add_checked(&pi->sub_minor, comm) || !acr_add_checked(&pi->sub_minor, bonus) ||
        !acr_add_checked(&pi->sub_minor, promo))
        return acr__overflow(c, r->err, r->partner_id, pi->period);
    return 0;
}

/* The promotions' first pass over the partner's sales, in (at, seq) order: the promotion
 * each planned sale gets and the amount it wants (program.md, Which promotion), which the
 * budget pass then turns into what it is paid. A sale on a day no promotion runs gets none:
 * it is passed over before its plan is looked up (the cursor of the partner's attributes
 * catches up at the next sale that needs it). */
static int partner_promos(run_t *r, cursor_t *cur, int32_t lo_day, int32_t hi_day)
{
    acr_comm_t *c = r->c;
    for (size_t i = 0; i < r->ps_count; i++) {
        const psale_t *p = &r->ps[i];
        const acr__sale_t *s = &p->s;
        int32_t day = acr_local_day(s->at_ms, c->cfg.utc_offset_min);
        if (day < lo_day || day > hi_day)
            continue;
        cursor_advance(c, cur, s->at_ms);
        int32_t ver = version_on(c, cur->a.plan, day);
        cert_ctx_t cx = {r, s->at_ms};
        if (ver < 0 || rule_match(&c->plans[ver], &cur->a, ACR__SALE_PRODUCT(s), &cx) < 0)
            continue;
        uint32_t m = acr__promo_choose(c, &cur->a, ACR__SALE_PRODUCT(s), day, cert_now, &cx);
        int64_t want = 0;
        if (m == ACR__NONE)
            continue;
        if (!acr_promo_want(&c->prog.promos[m].p, s->amount_minor, &want))
            return acr__overflow(c, r->err, r->partner_id, acr__period_of(c, s->at_ms));
        c->prog.sale_promo[p->idx] = m;
        c->prog.sale_promo_minor[p->idx] = want;
    }
    return 0;
}

/* With a window only (r->lo): the periods before it whose sales a refund in the window
 * claws back (their commission, and so their period's brackets, are needed), in r->need. */
static int periods_needed(run_t *r)
{
    const acr_comm_t *c = r->c;
    r->need_count = 0;
    for (size_t i = r->refunds.start[r->partner]; i < r->refunds.start[r->partner + 1]; i++) {
        const acr__refund_t *rf = &c->refunds[r->refunds.ord[i]];
        if (acr__period_of(c, rf->at_ms) < r->lo)
            continue;
        int32_t p = acr__period_of(c, refund_sale(r, rf)->s.at_ms);
        bool seen = p >= r->lo;
        for (size_t k = 0; !seen && k < r->need_count; k++)
            seen = r->need[k] == p;
        if (seen)
            continue;
        if (acr__grow((void **)&r->need, &r->need_cap, r->need_count + 1, sizeof *r->need))
            return nomem(r);
        r->need[r->need_count++] = p;
    }
    return 0;
}

static bool period_skipped(const run_t *r, int32_t period)
{
    if (period >= r->lo)
        return false;
    for (size_t k = 0; k < r->need_count; k++)
        if (r->need[k] == period)
            return false;
    return true;
}

/* Step A: the partner's sales, period by period. */
static int partner_sales(run_t *r, cursor_t *cur)
{
    const acr_comm_t *c = r->c;
    size_t n = r->ps_count;
    r->pinfo_count = 0;
    if (r->lo != INT32_MIN && periods_needed(r) != 0)
        return ACR_ENOMEM;
    for (size_t i = 0; i < n;) {
        int32_t period = acr__period_of(c, r->ps[i].s.at_ms);
        /* the period's sales: at below its end (ps is in at order) */
        int64_t end_ms = acr_period_end_ms(c->cfg.period_kind, period, c->cfg.utc_offset_min);
        if (r->lo != INT32_MIN && period_skipped(r, period)) {
            for (; i < n && r->ps[i].s.at_ms < end_ms; i++) {
                r->ps[i].ver = r->ps[i].rule = -1; /* no line: nothing reads them */
                r->ps[i].comm = 0;
            }
            continue;
        }
        if (acr__grow((void **)&r->pinfo, &r->pinfo_cap, r->pinfo_count + 1, sizeof *r->pinfo))
            return nomem(r);
        pinfo_t *pi = &r->pinfo[r->pinfo_count++];
        memset(pi, 0, sizeof *pi);
        pi->period = period;
        pi->sale_lo = (uint32_t)i;
        int64_t cum = 0;
        for (; i < n && r->ps[i].s.at_ms < end_ms; i++) {
            int rc = one_sale(r, cur, &r->ps[i], &cum, pi);
            if (rc != 0)
                return rc;
        }
        pi->sale_hi = (uint32_t)i;
        /* period-level lines: attributes as of the end - 1 ms, plan on the last local day */
        cursor_advance(c, cur, end_ms - 1);
        pi->level_ver = version_on(c, cur->a.plan,
                                   acr_period_end_day(c->cfg.period_kind, pi->period) - 1);
    }
    return 0;
}

/* -(rhe(after*c/a) - rhe(before*c/a)) when the refund is inside the window. */
static int clawback_of(run_t *r, const acr__refund_t *rf, int64_t *out)
{
    const acr_comm_t *c = r->c;
    const psale_t *p = refund_sale(r, rf);
    const acr__sale_t *s = &p->s;
    *out = 0;
    if (p->rule < 0 || p->comm == 0)
        return 0;
    const acr_plan_t *plan = &c->plans[p->ver].plan;
    int32_t day_r = acr_local_day(rf->at_ms, c->cfg.utc_offset_min);
    int32_t day_s = acr_local_day(s->at_ms, c->cfg.utc_offset_min);
    if (plan->has_clawback_days && (int64_t)day_r - day_s > plan->clawback_days)
        return 0;
    int64_t after = rf->before_minor, hi, lo;
    acr_i128_t comm = p->comm;
    if (!acr_add_checked(&after, rf->amount_minor) ||
        !acr_round_half_even(after * comm, s->amount_minor, &hi) ||
        !acr_round_half_even(rf->before_minor * comm, s->amount_minor, &lo))
        return acr__overflow(c, r->err, r->partner_id, acr__period_of(c, rf->at_ms));
    *out = lo - hi;
    return 0;
}

/* Step B: clawbacks, and refunds in each period's net. */
static int partner_refunds(run_t *r)
{
    const acr_comm_t *c = r->c;
    size_t k = 0;
    for (size_t i = r->refunds.start[r->partner]; i < r->refunds.start[r->partner + 1]; i++) {
        uint32_t ri = r->refunds.ord[i];
        const acr__refund_t *rf = &c->refunds[ri];
        int rc = clawback_of(r, rf, &r->claw[ri]);
        if (rc != 0)
            return rc;
        int32_t period = acr__period_of(c, rf->at_ms);
        while (k < r->pinfo_count && r->pinfo[k].period < period)
            k++;
        if (k == r->pinfo_count || r->pinfo[k].period != period)
            continue; /* no sales in that period: no target, no cap to feed */
        pinfo_t *pi = &r->pinfo[k];
        if (!acr_add_checked(&pi->sub_minor, r->claw[ri]) ||
            !acr_add_checked(&pi->net_minor, -rf->amount_minor))
            return acr__overflow(c, r->err, r->partner_id, period);
    }
    return 0;
}

/* Step C: target bonus and cap of each period with sales. */
static int partner_period_level(run_t *r)
{
    for (size_t k = 0; k < r->pinfo_count; k++) {
        pinfo_t *pi = &r->pinfo[k];
        if (pi->level_ver < 0)
            continue;
        const acr_plan_t *plan = &r->c->plans[pi->level_ver].plan;
        for (uint32_t t = 0; pi->net_minor > 0 && t < plan->target_count; t++)
            if (plan->targets[t].net_revenue_minor <= pi->net_minor)
                pi->target_minor = plan->targets[t].bonus_minor;
        int64_t limit = 0;
        if (!acr_add_checked(&pi->sub_minor, pi->target_minor) ||
            !acr_floor_div((acr_i128_t)(pi->net_minor > 0 ? pi->net_minor : 0) * plan->cap_bp,
                           ACR_BP_MAX, &limit))
            return acr__overflow(r->c, r->err, r->partner_id, pi->period);
        if (plan->has_cap && pi->sub_minor > limit)
            pi->cap_minor = limit - pi->sub_minor;
    }
    return 0;
}

/* ---- step D: emission and restatement ---- */

/* A line in statement order: to the output, or recorded by the group being computed (a
 * transient sale id copied into the group's arena). */
static int put_line(run_t *r, const acr_line_t *l, bool stable)
{
    chunk_t *k = r->rec;
    if (k == NULL)
        return acr__out_line(r->out, l, stable, r->err);
    /* sized at once for about what a group holds (a line or two per record: a sale line, a
     * promotion line): growing by doubling copied every recorded line once or twice more,
     * ~4 % of a 10 M-event run's CPU (only the pages written are ever touched) */
    size_t want = k->lines == NULL && 2 * k->weight > k->nlines + 1 ? 2 * k->weight
                                                                     : k->nlines + 1;
    if (acr__grow((void **)&k->lines, &k->lines_cap, want, sizeof *k->lines) != 0)
        return nomem(r);
    acr_line_t *d = &k->lines[k->nlines];
    *d = *l;
    if (!stable &&
        (d->source_id = acr__arena_strdup(&k->arena, l->source_id, strlen(l->source_id))) == NULL)
        return nomem(r);
    k->nlines++;
    return 0;
}

/* The partner's paid identities, parsed from its blocks of the stored statements, in
 * statement order: the emission, in the same order, walks them beside its lines. */
static int paid_load(run_t *r)
{
    r->ppos = 0;
    r->has_paid = r->plines != NULL && r->plines[r->partner] > 0;
    return r->has_paid ? acr__paid_load(r->c, r->pblk, r->partner, r->plines[r->partner],
                                        &r->pset, r->err)
                       : 0;
}

static acr_line_t line_base(const run_t *r, int32_t origin, unsigned kind);

/* A paid identity with no now-side line: -paid, with the fields of its latest closed line. */
static int paid_only(run_t *r, const acr__paid_t *pd)
{
    const acr_comm_t *c = r->c;
    if (pd->amount_minor == 0 || pd->origin > c->cfg.run_period)
        return 0;
    if (pd->amount_minor == INT64_MIN)
        return acr__overflow(c, r->err, r->partner_id, pd->origin);
    acr_line_t l = line_base(r, pd->origin, pd->kind);
    /* NUL-terminated, and kept until the line is output (a group's lines are output after
     * the group): rare lines, so copies */
    if ((l.source_id = acr__arena_strdup(r->arena, pd->source, pd->source_len)) == NULL ||
        (l.rule = acr__arena_strdup(r->arena, pd->rule, pd->rule_len)) == NULL)
        return nomem(r);
    l.source_seq = pd->seq;
    l.at_ms = pd->at_ms;
    l.basis_minor = pd->basis_minor;
    l.amount_minor = -pd->amount_minor;
    memcpy(l.currency, pd->currency, sizeof l.currency);
    return put_line(r, &l, true);
}

/* Emits now - paid for the identity of a now-side line of amount != 0, after the paid-only
 * identities that sort before it. The lines come in statement order; one that does not
 * (a line at or before an identity already passed) would be paired wrongly, so it stops the
 * run instead. */
static int emit(run_t *r, acr_line_t *line, bool stable)
{
    const acr_comm_t *c = r->c;
    if (line->amount_minor == 0)
        return 0; /* a zero line is not a line */
    if (r->has_paid) {
        const acr__paid_set_t *ps = &r->pset;
        size_t n = strlen(line->source_id);
        if (r->ppos > 0 && acr__paid_line_cmp(&ps->v[r->ppos - 1], line, n) >= 0)
            return acr_err_set(r->err, ACR_EINTERNAL, "partner %s: lines out of statement "
                               "order against its paid lines", r->partner_id);
        int rc = 0, d = -1;
        while (rc == 0 && r->ppos < ps->n &&
               (d = acr__paid_line_cmp(&ps->v[r->ppos], line, n)) < 0)
            rc = paid_only(r, &ps->v[r->ppos++]);
        if (rc != 0)
            return rc;
        if (r->ppos < ps->n && d == 0) {
            int64_t delta;
            if (__builtin_sub_overflow(line->amount_minor, ps->v[r->ppos].amount_minor, &delta))
                return acr__overflow(c, r->err, r->partner_id, line->origin_period);
            line->amount_minor = delta;
            r->ppos++;
        }
        if (line->amount_minor == 0)
            return 0;
    }
    return put_line(r, line, stable);
}

/* The paid-only identities left after the partner's last line. */
static int paid_rest(run_t *r)
{
    int rc = 0;
    while (rc == 0 && r->has_paid && r->ppos < r->pset.n)
        rc = paid_only(r, &r->pset.v[r->ppos++]);
    return rc;
}

static acr_line_t line_base(const run_t *r, int32_t origin, unsigned kind)
{
    acr_line_t l;
    memset(&l, 0, sizeof l);
    l.partner_id = r->partner_id;
    l.origin_period = origin;
    l.kind = (uint8_t)kind;
    l.rule = "";
    memcpy(l.currency, r->c->partners[r->partner].currency, sizeof l.currency);
    return l;
}

/* Sale lines (ncb = false) or new-customer bonus lines (ncb = true) of a period. */
static int emit_sales(run_t *r, const pinfo_t *pi, bool ncb)
{
    const acr_comm_t *c = r->c;
    acr_line_t l = line_base(r, pi->period, ncb ? ACR_LINE_NEW_CUSTOMER_BONUS : ACR_LINE_SALE);
    for (uint32_t i = pi->sale_lo; i < pi->sale_hi; i++) {
        const psale_t *p = &r->ps[i];
        const acr__sale_t *s = &p->s;
        l.rule = "";
        l.basis_minor = 0;
        l.amount_minor = 0;
        if (!ncb && p->rule >= 0) {
            l.rule = c->plans[p->ver].rule_tags[p->rule];
            l.basis_minor = s->amount_minor;
            l.amount_minor = p->comm;
        } else if (ncb && p->ver >= 0 && is_new_customer(s)) {
            l.rule = c->plans[p->ver].tag;
            l.amount_minor = c->plans[p->ver].plan.new_customer_bonus_minor;
        }
        if (l.amount_minor == 0)
            continue; /* a zero line is not a line */
        if ((l.source_id = sale_id_str(r, s)) == NULL)
            return nomem(r);
        l.source_seq = s->seq;
        l.at_ms = s->at_ms;
        int rc = emit(r, &l, false);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* Promotion lines of a period (program.md, The line): amounts fixed by the budget pass. */
static int emit_promos(run_t *r, const pinfo_t *pi)
{
    const acr_comm_t *c = r->c;
    if (c->prog.sale_promo == NULL)
        return 0;
    acr_line_t l = line_base(r, pi->period, ACR_LINE_PROMOTION);
    for (uint32_t i = pi->sale_lo; i < pi->sale_hi; i++) {
        const psale_t *p = &r->ps[i];
        uint32_t m = p->promo;
        if (p->rule < 0 || m == ACR__NONE || p->promo_minor == 0)
            continue; /* a 0 amount is not a line */
        if ((l.source_id = sale_id_str(r, &p->s)) == NULL)
            return nomem(r);
        l.rule = c->prog.promos[m].rule;
        l.basis_minor = p->s.amount_minor;
        l.amount_minor = p->promo_minor;
        l.source_seq = p->s.seq;
        l.at_ms = p->s.at_ms;
        int rc = emit(r, &l, false);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static int emit_period_level(run_t *r, const pinfo_t *pi, unsigned kind)
{
    acr_line_t l = line_base(r, pi->period, kind);
    l.amount_minor = kind == ACR_LINE_TARGET_BONUS ? pi->target_minor : pi->cap_minor;
    if (l.amount_minor == 0)
        return 0;
    if ((l.source_id = period_str(r, pi->period)) == NULL)
        return nomem(r);
    l.rule = pi->level_ver >= 0 ? r->c->plans[pi->level_ver].tag : "";
    l.basis_minor = pi->net_minor;
    return emit(r, &l, true);
}

/* Clawback (refunds) or adjustment lines of period O, advancing *pos. */
static int emit_events(run_t *r, int32_t period, bool adj, size_t *pos)
{
    const acr_comm_t *c = r->c;
    const group_t *g = adj ? &r->adjs : &r->refunds;
    for (; *pos < g->start[r->partner + 1]; (*pos)++) {
        uint32_t i = g->ord[*pos];
        int64_t at_ms = adj ? c->adjs[i].at_ms : c->refunds[i].at_ms;
        if (acr__period_of(c, at_ms) != period)
            break;
        acr_line_t l = line_base(r, period, adj ? ACR_LINE_ADJUSTMENT : ACR_LINE_CLAWBACK);
        l.at_ms = at_ms;
        if (adj) {
            l.source_id = c->adjs[i].id;
            l.source_seq = c->adjs[i].seq;
            l.amount_minor = c->adjs[i].amount_minor;
        } else {
            const acr__refund_t *rf = &c->refunds[i];
            const psale_t *p = refund_sale(r, rf);
            l.source_id = rf->id;
            l.source_seq = rf->seq;
            l.basis_minor = rf->amount_minor;
            l.amount_minor = r->claw[i];
            if (p->rule >= 0)
                l.rule = c->plans[p->ver].rule_tags[p->rule];
        }
        int rc = emit(r, &l, true);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* Moves *pos past the partner's refunds (or adjustments) of period O. */
static void skip_events(const run_t *r, int32_t period, bool adj, size_t *pos)
{
    const acr_comm_t *c = r->c;
    const group_t *g = adj ? &r->adjs : &r->refunds;
    for (; *pos < g->start[r->partner + 1]; (*pos)++) {
        uint32_t i = g->ord[*pos];
        if (acr__period_of(c, adj ? c->adjs[i].at_ms : c->refunds[i].at_ms) != period)
            break;
    }
}

static int32_t next_period(const run_t *r, size_t k, size_t ri, size_t ai)
{
    const acr_comm_t *c = r->c;
    int32_t o = INT32_MAX;
    if (k < r->pinfo_count)
        o = r->pinfo[k].period;
    if (ri < r->refunds.start[r->partner + 1]) {
        int32_t p = acr__period_of(c, c->refunds[r->refunds.ord[ri]].at_ms);
        o = p < o ? p : o;
    }
    if (ai < r->adjs.start[r->partner + 1]) {
        int32_t p = acr__period_of(c, c->adjs[r->adjs.ord[ai]].at_ms);
        o = p < o ? p : o;
    }
    return o;
}

/* Step D: every origin period of the partner, lines in statement kind order. */
static int partner_emit(run_t *r)
{
    size_t k = 0, ri = r->refunds.start[r->partner], ai = r->adjs.start[r->partner];
    for (;;) {
        int32_t o = next_period(r, k, ri, ai);
        if (o == INT32_MAX)
            return 0;
        const pinfo_t *pi = k < r->pinfo_count && r->pinfo[k].period == o ? &r->pinfo[k] : NULL;
        if (o < r->lo) { /* output.window_only: passed over, not output */
            skip_events(r, o, false, &ri);
            skip_events(r, o, true, &ai);
            k += pi != NULL;
            continue;
        }
        int rc = pi ? emit_sales(r, pi, false) : 0;
        if (rc == 0)
            rc = emit_events(r, o, false, &ri);
        if (rc == 0 && pi)
            rc = emit_sales(r, pi, true);
        if (rc == 0 && pi)
            rc = emit_promos(r, pi);
        if (rc == 0 && pi)
            rc = emit_period_level(r, pi, ACR_LINE_TARGET_BONUS);
        if (rc == 0)
            rc = emit_events(r, o, true, &ai);
        if (rc == 0 && pi)
            rc = emit_period_level(r, pi, ACR_LINE_CAP);
        if (rc != 0)
            return rc;
        k += pi != NULL;
    }
}

static void since_reset(run_t *r)
{
    for (size_t i = 0; i < r->c->prog.onb_count; i++)
        r->since[i] = INT64_MIN;
}

/* Starts partner p: its id, the certification cache, and (returned) the cursor of its
 * attributes over its updates in (at, seq) order. */
static cursor_t partner_begin(run_t *r, uint32_t p)
{
    const acr_comm_t *c = r->c;
    r->partner = p;
    r->partner_id = c->partners[p].id;
    since_reset(r);
    return (cursor_t){c->partners[p].reg, r->upds.ord + r->upds.start[p],
                      r->upds.start[p + 1] - r->upds.start[p], 0};
}

static int do_partner(run_t *r, uint32_t p)
{
    cursor_t cur = partner_begin(r, p);
    int rc = gather_sales(r);
    if (rc == 0)
        rc = partner_sales(r, &cur);
    if (rc == 0)
        rc = partner_refunds(r);
    if (rc == 0)
        rc = partner_period_level(r);
    if (rc == 0)
        rc = paid_load(r);
    if (rc == 0)
        rc = partner_emit(r);
    if (rc == 0)
        rc = paid_rest(r);
    r->has_paid = false;
    return rc;
}

static bool partner_less(const void *ctx, uint32_t a, uint32_t b)
{
    const acr_comm_t *c = ctx;
    return strcmp(c->partners[a].id, c->partners[b].id) < 0;
}

static int run_setup(run_t *r)
{
    acr_comm_t *c = r->c;
    r->claw = calloc(c->refund_count ? c->refund_count : 1, sizeof *r->claw);
    if (r->claw == NULL)
        return nomem(r);
    int rc = group_sales(r);
    if (rc == 0)
        rc = group(r, &r->refunds, c->refund_count, refund_key, refund_less, c->refunds);
    if (rc == 0)
        rc = group(r, &r->adjs, c->adj_count, adj_key, adj_less, c->adjs);
    if (rc == 0)
        rc = group(r, &r->upds, c->update_count, upd_key, update_less, c->updates);
    if (rc == 0 && c->closed_count > 0 &&
        acr__paid_index(c, (uint32_t **)&r->pblk, (size_t **)&r->plines) != 0)
        rc = nomem(r);
    return rc;
}

/* The promotions' first pass over partner p's sales (r->prepass set). */
static int prepass_partner(run_t *r, uint32_t p)
{
    cursor_t cur = partner_begin(r, p);
    int rc = gather_sales(r);
    return rc != 0 ? rc : partner_promos(r, &cur, r->promo_lo_day, r->promo_hi_day);
}

/* ---- the parallel finish ----
 *
 * Two steps of the finish go partner by partner: the promotions' first pass (each planned
 * sale's promotion and the amount it wants) and, once the budgets are spent in (at, seq)
 * order over every partner (the one step that crosses partners, sequential), the lines. In
 * both, a partner's work reads only its own records and tables nothing writes any more,
 * and writes only entries of that partner (its sales' promotion slots, its refund sums'
 * positions, its paid identities' flags, its refunds' clawbacks). So the partners, in
 * output order (index order for the first pass), are cut into groups of at least
 * chunk_sales records; the caller and threads-1 helpers each compute whole groups with a
 * run of their own (their own scratch and arena), recording the lines and unplanned sales
 * in the group; the caller outputs the groups strictly in order, every line through the
 * same acr__out_line as the sequential finish, so the CSV, the totals (with their overflow
 * checks, line by line), the line numbers and the promotion tallies are the sequential
 * finish's. A group's error is reported when its turn to be output comes, after the lines
 * it recorded before it: the first error in partner order, as the sequential finish would
 * report it. The groups computed ahead of the output are bounded in records (AHEAD_WEIGHT). */

#define CHUNK_SALES_DEFAULT 16384u
#define AHEAD_WEIGHT 1000000u /* ~1.7 M recorded lines, ~130 MB, at most */
#define FINISH_THREADS_MAX 8u

typedef struct par {
    const uint32_t *rank;
    chunk_t *chunks;
    size_t n;
    size_t next_take; /* the groups taken to compute, in take order */
    uint32_t *order;  /* the promotions' pass: groups by weight, heaviest first (NULL: in
                         output order); its groups record nothing, so any order will do */
    size_t next_out;  /* the next group to output */
    size_t ahead;     /* the weight of the groups taken and not yet output */
    bool prepass;     /* the groups are the promotions' first pass */
    bool stop;
    pthread_mutex_t mu;
    pthread_cond_t cv;
} par_t;

typedef struct helper {
    par_t *p;
    run_t *w;
    pthread_t th;
    bool started;
} helper_t;

/* A run for groups: r's shared tables, scratch and an arena of its own. */
static int worker_init(run_t *w, const run_t *r)
{
    memset(w, 0, sizeof *w);
    w->c = r->c;
    w->st = r->st;
    w->lo = r->lo;
    w->promo_lo_day = r->promo_lo_day;
    w->promo_hi_day = r->promo_hi_day;
    w->claw = r->claw;
    w->sales = r->sales;
    w->sales_end = r->sales_end;
    w->refunds = r->refunds;
    w->adjs = r->adjs;
    w->upds = r->upds;
    w->pblk = r->pblk;
    w->plines = r->plines;
    w->arena = &w->own_arena;
    size_t n = r->c->prog.onb_count;
    w->since = malloc((n ? n : 1) * sizeof *w->since);
    return w->since != NULL ? 0 : ACR_ENOMEM;
}

/* Frees w's scratch (not the shared tables) and moves its arena into the processor's. */
static void worker_done(run_t *w)
{
    acr__arena_move(&w->c->arena, &w->own_arena);
    free(w->since);
    free(w->ps);
    free(w->late);
    free(w->pinfo);
    free(w->period_keys);
    free(w->period_strs);
    free(w->idbuf);
    free(w->need);
    acr__paid_set_free(&w->pset);
}

static void chunk_compute(run_t *w, chunk_t *k, const par_t *p)
{
    const uint32_t *rank = p->rank;
    acr_err_clear(&k->err);
    w->err = &k->err;
    w->rec = k;
    w->prepass = p->prepass;
    int rc = 0;
    for (uint32_t i = k->lo; rc == 0 && i < k->hi; i++)
        rc = w->prepass ? prepass_partner(w, rank[i]) : do_partner(w, rank[i]);
    k->rc = rc;
}

static void chunk_free(chunk_t *k)
{
    free(k->lines);
    free(k->unpl);
    acr__arena_free(&k->arena);
    k->lines = NULL;
    k->unpl = NULL;
}

/* Outputs group k's lines and unplanned sales, then its error, if any. */
static int chunk_output(run_t *r, chunk_t *k)
{
    acr_statement_t *st = r->st;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < k->nlines; i++)
        rc = acr__out_line(r->out, &k->lines[i], true, r->err);
    if (rc == 0 && k->nunpl > 0) {
        if (acr__grow((void **)&st->unplanned, &r->unplanned_cap,
                      st->unplanned_count + k->nunpl, sizeof *st->unplanned) != 0)
            rc = nomem(r);
        else
            memcpy(st->unplanned + st->unplanned_count, k->unpl, k->nunpl * sizeof *k->unpl);
        st->unplanned_count += rc == 0 ? k->nunpl : 0;
    }
    if (rc == 0 && k->rc != 0) {
        *r->err = k->err;
        rc = k->rc;
    }
    if (rc == 0 && !r->c->output.omit_lines)
        acr__arena_move(&r->c->arena, &k->arena); /* the lines point into it */
    chunk_free(k);
    return rc;
}

/* Takes the next group to compute, if one may be (p->mu held): its index, or p->n. The
 * next group to output may always be taken; another only while the groups ahead of the
 * output, whose lines wait recorded, stay within AHEAD_WEIGHT records. */
static size_t take(par_t *p)
{
    if (p->stop || p->next_take >= p->n)
        return p->n;
    if (p->order != NULL)
        return p->order[p->next_take++];
    size_t w = p->chunks[p->next_take].weight;
    if (p->next_take > p->next_out && p->ahead + w > AHEAD_WEIGHT)
        return p->n;
    p->ahead += w;
    return p->next_take++;
}

typedef struct weighed {
    size_t weight;
    uint32_t i;
} weighed_t;

static int heavier_first(const void *a, const void *b)
{
    const weighed_t *x = a, *y = b;
    if (x->weight != y->weight)
        return x->weight < y->weight ? 1 : -1;
    return (x->i > y->i) - (x->i < y->i);
}

/* The groups' indexes, heaviest first; NULL on out of memory. */
static uint32_t *heaviest_first(const chunk_t *ks, size_t n)
{
    weighed_t *w = malloc(n * sizeof *w);
    uint32_t *order = malloc(n * sizeof *order);
    if (w != NULL && order != NULL) {
        for (size_t i = 0; i < n; i++)
            w[i] = (weighed_t){ks[i].weight, (uint32_t)i};
        qsort(w, n, sizeof *w, heavier_first);
        for (size_t i = 0; i < n; i++)
            order[i] = w[i].i;
    } else {
        free(order);
        order = NULL;
    }
    free(w);
    return order;
}

static void *helper_main(void *arg)
{
    helper_t *h = arg;
    par_t *p = h->p;
    pthread_mutex_lock(&p->mu);
    while (!p->stop && p->next_take < p->n) {
        size_t i = take(p);
        if (i == p->n) {
            pthread_cond_wait(&p->cv, &p->mu);
            continue;
        }
        pthread_mutex_unlock(&p->mu);
        chunk_compute(h->w, &p->chunks[i], p);
        pthread_mutex_lock(&p->mu);
        p->chunks[i].done = true;
        pthread_cond_broadcast(&p->cv);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

/* The groups of rank[0 .. np): consecutive partners holding at least `want` records. */
static chunk_t *make_chunks(const run_t *r, const uint32_t *rank, uint32_t np, size_t *n_out)
{
    const acr_comm_t *c = r->c;
    size_t want = c->output.chunk_sales ? c->output.chunk_sales : CHUNK_SALES_DEFAULT, n = 0,
           cap = 0;
    chunk_t *ks = NULL;
    for (uint32_t i = 0; i < np;) {
        uint32_t lo = i;
        size_t weight = 0;
        while (i < np && (i == lo || weight < want)) {
            uint32_t p = rank[i++];
            weight += 1 +
                      ((r->prepass ? r->sales.start[p + 1] : r->sales_end[p]) -
                       r->sales.start[p]) +
                      (r->refunds.start[p + 1] - r->refunds.start[p]) +
                      (r->adjs.start[p + 1] - r->adjs.start[p]) +
                      (r->plines != NULL ? r->plines[p] : 0);
        }
        if (acr__grow((void **)&ks, &cap, n + 1, sizeof *ks) != 0) {
            free(ks);
            return NULL;
        }
        memset(&ks[n], 0, sizeof ks[n]);
        ks[n].lo = lo;
        ks[n].weight = weight;
        ks[n++].hi = i;
    }
    *n_out = n;
    return ks;
}

#define NOT_PARALLEL 1 /* (error codes are negative) */

/* The partners' lines on `threads` threads: the run's code, or NOT_PARALLEL when there are
 * not two groups or no room to make them (the caller then goes the sequential way). */
static int run_parallel(run_t *r, const uint32_t *rank, uint32_t np, unsigned threads)
{
    par_t p = {.rank = rank};
    if ((p.chunks = make_chunks(r, rank, np, &p.n)) == NULL || p.n < 2) {
        free(p.chunks);
        return NOT_PARALLEL;
    }
    if (pthread_mutex_init(&p.mu, NULL) != 0) {
        free(p.chunks);
        return NOT_PARALLEL;
    }
    if (pthread_cond_init(&p.cv, NULL) != 0) {
        pthread_mutex_destroy(&p.mu);
        free(p.chunks);
        return NOT_PARALLEL;
    }
    p.prepass = r->prepass;
    if (p.prepass)
        p.order = heaviest_first(p.chunks, p.n); /* NULL: output order, also right */
    if (r->crew == NULL && (r->crew = calloc(threads, sizeof *r->crew)) != NULL) {
        while (r->crew_n < threads && worker_init(&r->crew[r->crew_n], r) == 0)
            r->crew_n++; /* fewer: the caller computes more groups itself */
        /* the caller's scratch: each run of the crew has its own */
        free(r->ps);
        free(r->late);
        r->ps = r->late = NULL;
        r->ps_cap = r->late_cap = 0;
    }
    unsigned nh = r->crew_n > 0 ? r->crew_n - 1 : 0;
    helper_t *hs = calloc(nh ? nh : 1, sizeof *hs);
    int rc = hs != NULL && r->crew_n > 0 ? 0 : nomem(r);
    for (unsigned i = 0; rc == 0 && i < nh; i++) {
        hs[i].p = &p;
        hs[i].w = &r->crew[i + 1];
        if (!(hs[i].started = pthread_create(&hs[i].th, NULL, helper_main, &hs[i]) == 0))
            break;
    }
    pthread_mutex_lock(&p.mu);
    while (rc == 0 && p.next_out < p.n) {
        chunk_t *k = &p.chunks[p.next_out];
        size_t i;
        if (k->done) {
            pthread_mutex_unlock(&p.mu);
            rc = chunk_output(r, k);
            pthread_mutex_lock(&p.mu);
            p.ahead -= p.order != NULL ? 0 : k->weight;
            p.next_out++;
            pthread_cond_broadcast(&p.cv); /* room for another group ahead */
        } else if ((i = take(&p)) < p.n) {
            pthread_mutex_unlock(&p.mu);
            chunk_compute(&r->crew[0], &p.chunks[i], &p);
            pthread_mutex_lock(&p.mu);
            p.chunks[i].done = true;
        } else {
            pthread_cond_wait(&p.cv, &p.mu);
        }
    }
    p.stop = true;
    pthread_cond_broadcast(&p.cv);
    pthread_mutex_unlock(&p.mu);
    for (unsigned i = 0; hs != NULL && i < nh && hs[i].started; i++)
        pthread_join(hs[i].th, NULL);
    for (size_t i = p.next_out; i < p.n; i++)
        chunk_free(&p.chunks[i]); /* after an error: computed or not, never output */
    free(hs);
    free(p.order);
    free(p.chunks);
    pthread_cond_destroy(&p.cv);
    pthread_mutex_destroy(&p.mu);
    return rc;
}

static bool sale_less(const void *ctx, uint32_t a, uint32_t b)
{
    const acr__sale_t *x = (const acr__sale_t *)ctx + a, *y = (const acr__sale_t *)ctx + b;
    return x->at_ms < y->at_ms || (x->at_ms == y->at_ms && x->seq < y->seq);
}

/* One promoted sale k in the budget pass: its wanted amount, within what is left. */
static int promo_spend(run_t *r, uint32_t k)
{
    acr_comm_t *c = r->c;
    acr__promo_t *m = &c->prog.promos[c->prog.sale_promo[k]];
    int64_t amt = c->prog.sale_promo_minor[k];
    if (m->p.has_budget && amt > m->p.budget_minor - m->used_minor)
        amt = m->p.budget_minor - m->used_minor; /* never beyond the budget */
    if (!acr_add_checked(&m->used_minor, amt))
        return acr__overflow(c, r->err, c->partners[c->sales[k].partner].id,
                             acr__period_of(c, c->sales[k].at_ms));
    c->prog.sale_promo_minor[k] = amt;
    if (c->output.promotions_only && amt != 0)
        m->lines++; /* no line is output: counted here (the total is used_minor) */
    return 0;
}

/* The budget pass over the promoted sales in (at, seq) order. Sales are fed in seq order,
 * so all but the late ones (at below an earlier promoted sale's) are in that order
 * already: those are taken out, sorted, and merged back. */
static int promo_budgets(run_t *r)
{
    const acr_comm_t *c = r->c;
    const uint32_t *sp = c->prog.sale_promo;
    size_t n = c->sale_count, nl = 0, cap = 0;
    uint32_t *late = NULL, *sorted = NULL, *tmp = NULL;
    int64_t max_at = INT64_MIN;
    for (size_t i = 0; i < n; i++) {
        if (sp[i] == ACR__NONE)
            continue;
        if (c->sales[i].at_ms >= max_at) {
            max_at = c->sales[i].at_ms;
            continue;
        }
        if (acr__grow((void **)&late, &cap, nl + 1, sizeof *late) != 0)
            goto nomem;
        late[nl++] = (uint32_t)i;
    }
    sorted = malloc((nl ? nl : 1) * sizeof *sorted);
    tmp = malloc((nl ? nl : 1) * sizeof *tmp);
    if (sorted == NULL || tmp == NULL)
        goto nomem;
    if (nl > 0)
        memcpy(sorted, late, nl * sizeof *late);
    acr__sort_idx(sorted, tmp, nl, sale_less, c->sales);
    int rc = 0;
    size_t li = 0, si = 0; /* late (by index) to skip; sorted late to merge */
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (sp[i] == ACR__NONE)
            continue;
        if (li < nl && late[li] == i) {
            li++;
            continue;
        }
        while (rc == 0 && si < nl && sale_less(c->sales, sorted[si], (uint32_t)i))
            rc = promo_spend(r, sorted[si++]);
        if (rc == 0)
            rc = promo_spend(r, (uint32_t)i);
    }
    while (rc == 0 && si < nl)
        rc = promo_spend(r, sorted[si++]);
    free(late);
    free(sorted);
    free(tmp);
    return rc;
nomem:
    free(late);
    free(sorted);
    free(tmp);
    return nomem(r);
}

/* Promotions (program.md): the first pass chooses each planned sale's promotion over every
 * partner, then budgets are consumed in (at, seq) order over the whole log (every sale with
 * origin <= U; later sales come after all of them in that order). */
static int promo_pass(run_t *r)
{
    acr_comm_t *c = r->c;
    acr__program_t *g = &c->prog;
    size_t n = c->sale_count ? c->sale_count : 1;
    /* zeroed, huge-page advised: the prepass writes them at random */
    g->sale_promo = acr__table_alloc(n * sizeof *g->sale_promo);
    g->sale_promo_minor = acr__table_alloc(n * sizeof *g->sale_promo_minor);
    if (g->sale_promo == NULL || g->sale_promo_minor == NULL) {
        acr__table_free(g->sale_promo, n * sizeof *g->sale_promo);
        acr__table_free(g->sale_promo_minor, n * sizeof *g->sale_promo_minor);
        g->sale_promo = NULL;
        g->sale_promo_minor = NULL;
        return nomem(r);
    }
    g->sale_promo_n = n;
    memset(g->sale_promo, 0xff, n * sizeof *g->sale_promo); /* ACR__NONE */
    int32_t lo_day = INT32_MAX, hi_day = INT32_MIN; /* the days some promotion runs within */
    for (size_t i = 0; i < g->promo_count; i++) {
        lo_day = g->promos[i].p.from_day < lo_day ? g->promos[i].p.from_day : lo_day;
        hi_day = g->promos[i].last_day > hi_day ? g->promos[i].last_day : hi_day;
    }
    r->prepass = true;
    r->promo_lo_day = lo_day;
    r->promo_hi_day = hi_day;
    int rc = NOT_PARALLEL;
    uint32_t np = c->partner_ids.count;
    unsigned threads = c->output.threads < FINISH_THREADS_MAX ? c->output.threads
                                                              : FINISH_THREADS_MAX;
    uint32_t *order = threads > 1 && np > 1 ? malloc(np * sizeof *order) : NULL;
    for (uint32_t p = 0; order != NULL && p < np; p++)
        order[p] = p;
    if (order != NULL)
        rc = run_parallel(r, order, np, threads);
    free(order);
    bool done = rc != NOT_PARALLEL;
    if (!done)
        rc = 0;
    for (uint32_t p = 0; rc == 0 && !done && p < np; p++)
        rc = prepass_partner(r, p);
    r->prepass = false;
    return rc != 0 ? rc : promo_budgets(r);
}

/* The statement's promotions: every promotion fed, with this run's lines and budget use. */
static int promo_totals(run_t *r)
{
    acr_comm_t *c = r->c;
    acr_statement_t *st = r->st;
    size_t n = c->prog.promo_count;
    if (n == 0)
        return 0;
    if ((st->promotions = calloc(n, sizeof *st->promotions)) == NULL)
        return nomem(r);
    for (size_t i = 0; i < n; i++) {
        const acr__promo_t *m = &c->prog.promos[i];
        const char *t = m->p.title ? m->p.title : "";
        acr_promo_total_t *o = &st->promotions[i];
        o->promo_id = acr__arena_strdup(&c->arena, m->p.promo_id, strlen(m->p.promo_id));
        o->plan_id = acr__arena_strdup(&c->arena, m->p.plan_id, strlen(m->p.plan_id));
        o->title = acr__arena_strdup(&c->arena, t, strlen(t));
        if (o->promo_id == NULL || o->plan_id == NULL || o->title == NULL)
            return nomem(r);
        o->lines = m->lines;
        /* promotions_only outputs no line: every allotted amount is a line's, so the
         * total is what the budget pass spent */
        o->total_minor = c->output.promotions_only ? m->used_minor : m->total_minor;
        o->has_budget = m->p.has_budget;
        o->budget_minor = m->p.budget_minor;
        o->used_minor = m->used_minor;
        o->last_day = m->last_day;
    }
    st->promotion_count = n;
    return 0;
}

static void run_free(run_t *r)
{
    free(r->since);
    free(r->ps);
    free(r->late);
    free(r->claw);
    group_free(&r->sales);
    free(r->sales_end);
    group_free(&r->refunds);
    group_free(&r->adjs);
    group_free(&r->upds);
    free((void *)r->pblk);
    free((void *)r->plines);
    free(r->pinfo);
    free(r->period_keys);
    free(r->period_strs);
    free(r->idbuf);
    free(r->need);
    acr__paid_set_free(&r->pset);
}

int acr__compute_lines(acr_comm_t *c, acr_statement_t *st, acr_err_t *err)
{
    run_t r;
    memset(&r, 0, sizeof r);
    r.c = c;
    r.st = st;
    r.err = err;
    r.arena = &c->arena;
    r.lo = c->output.window && c->output.window_only ? c->output.window_lo : INT32_MIN;
    acr__mark_new_customers(c);
    uint32_t np = c->partner_ids.count;
    uint32_t *rank = malloc((np ? np : 1) * sizeof *rank);
    uint32_t *tmp = malloc((np ? np : 1) * sizeof *tmp);
    acr__prog_prepare(c);
    r.since = malloc((c->prog.onb_count ? c->prog.onb_count : 1) * sizeof *r.since);
    int rc = rank && tmp && r.since ? run_setup(&r) : nomem(&r);
    if (rc == 0 && c->prog.promo_count > 0)
        rc = promo_pass(&r);
    bool lines = !c->output.promotions_only; /* else the budgets' use is all that is asked */
    if (rc == 0 && !lines)
        rc = promo_totals(&r);
    for (uint32_t p = 0; rc == 0 && lines && p < np; p++)
        rank[p] = p;
    if (rc == 0 && lines)
        acr__sort_idx(rank, tmp, np, partner_less, c);
    if (rc == 0 && lines && (r.out = acr__out_begin(c, st, err)) == NULL)
        rc = ACR_ENOMEM;
    unsigned threads = c->output.threads < FINISH_THREADS_MAX ? c->output.threads
                                                              : FINISH_THREADS_MAX;
    int prc = rc == 0 && lines && threads > 1 && np > 1 ? run_parallel(&r, rank, np, threads)
                                                        : NOT_PARALLEL;
    if (prc != NOT_PARALLEL)
        rc = prc;
    for (uint32_t i = 0; rc == 0 && lines && prc == NOT_PARALLEL && i < np; i++)
        rc = do_partner(&r, rank[i]);
    if (r.out != NULL) {
        if (rc == 0)
            rc = acr__out_end(r.out, err);
        if (rc == 0)
            rc = promo_totals(&r);
        else
            acr__out_abort(r.out);
    }
    free(rank);
    free(tmp);
    for (unsigned i = 0; i < r.crew_n; i++)
        worker_done(&r.crew[i]);
    free(r.crew);
    run_free(&r);
    return rc;
}
