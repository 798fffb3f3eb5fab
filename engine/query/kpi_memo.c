/* kpi_memo.c - the KPI's commission, kept per window within a process.
 *
 * A KPI with commission runs the commission processor over the whole log (query.c):
 * seconds on a large ledger, for every view of the dashboard's Partners page and of
 * every partner's portal. Most of those asks would find the answer unchanged, by a
 * property of commissions.md and program.md: an event whose effect date lies in period
 * Q changes no line of an origin period before Q.
 *   - sale.recorded, sale.refunded, adjustment.recorded: their lines, the net, the target
 *     bonus and the cap are those of their own period; a sale takes "new customer" and
 *     promotion budget only from sales ordered after it (whose at >= its at, so of its
 *     period or later); a refund is never dated before its sale, and the `before` of a
 *     clawback counts refunds of lower seq only (a new event has the highest).
 *   - partner.updated, training.completed, onboarding.defined: the partner's attributes
 *     and certification as of instants >= their `at` (a sale's `at`, a period's end
 *     minus one millisecond), so the periods from their own on.
 *   - partner.registered: a new partner, who has no line until events of its own.
 *   - period.closed and every type the processor does not read: no line as of the head
 *     ignoring closes (what the KPI sums) depends on them.
 *   - plan.published, promotion.published, promotion.ended: dated by fields of their
 *     documents; taken here as reaching every period (always a miss), which is safe.
 * So the per-partner sums of the origins [o_lo, o_hi] computed at head X0 still hold at
 * a head X > X0 when every event in (X0, X] has its effect period after o_hi: a
 * dashboard looking at last quarter while this month's sales come in, or anyone asking
 * again before the next write. The memo holds, per window, the sums with X0 and X0's
 * chain hash (checked against the reader's, so a memo can only ever stand for the log it
 * was computed from); a hit at X > X0 reads the events in between, at most SCAN_MAX.
 *
 * Threads: a mutex guards the slots; the sums are immutable once published and counted,
 * so a hit reads them without the lock. A request for a window another thread is
 * computing at the same head waits for that result instead of running the processor a
 * second time (the server's slow lane has a few threads, and a page of partners asks at
 * once). Nothing is written to the ledger: the memo lives and dies with the handle.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "accrue/date.h"
#include "accrue/projection.h"
#include "../store/store_internal.h"
#include "kpi_memo.h"

#define SLOTS 16          /* windows kept; the least recently used goes first */
#define SCAN_MAX 100000   /* events past a memo's head read to keep it; past that, a run */

struct memo_sums {
    atomic_int refs;
    size_t n;
    acr_partner_total_t *partners; /* partner_id (into ids) and window_minor only */
    char *ids;
};

typedef struct slot {
    bool used;
    int32_t o_lo, o_hi;
    memo_sums_t *sums;          /* NULL until a first run of the window is published */
    uint64_t through;           /* the head seq the sums hold at */
    uint8_t hash[ACR_HASH_LEN]; /* the chain hash at through */
    uint64_t computing;         /* a run of this window is under way at this head (0: none) */
    uint64_t last_use;
} slot_t;

struct acr__kpi_memo {
    pthread_mutex_t mu;
    pthread_cond_t done; /* a slot's computing went back to 0 */
    slot_t slots[SLOTS];
    uint64_t clock;
    uint64_t hits, misses;
};

static pthread_mutex_t make_mu = PTHREAD_MUTEX_INITIALIZER; /* guards l->kpi_memo */

static void sums_unref(memo_sums_t *s)
{
    if (s != NULL && atomic_fetch_sub(&s->refs, 1) == 1) {
        free(s->partners);
        free(s->ids);
        free(s);
    }
}

static void memo_free(struct acr__kpi_memo *m)
{
    if (m == NULL)
        return;
    for (int i = 0; i < SLOTS; i++)
        sums_unref(m->slots[i].sums);
    pthread_cond_destroy(&m->done);
    pthread_mutex_destroy(&m->mu);
    free(m);
}

static struct acr__kpi_memo *memo_of(acr_ledger_t *l)
{
    pthread_mutex_lock(&make_mu);
    struct acr__kpi_memo *m = l->kpi_memo;
    if (m == NULL && (m = calloc(1, sizeof *m)) != NULL) {
        if (pthread_mutex_init(&m->mu, NULL) != 0) {
            free(m);
            m = NULL;
        } else if (pthread_cond_init(&m->done, NULL) != 0) {
            pthread_mutex_destroy(&m->mu);
            free(m);
            m = NULL;
        } else {
            l->kpi_memo = m;
            l->kpi_memo_free = memo_free;
        }
    }
    pthread_mutex_unlock(&make_mu);
    return m;
}

/* The first period whose lines ev can change: INT32_MAX for none, INT32_MIN for any. */
static int32_t effect_period(const acr_ledger_t *l, const acr_event_t *ev)
{
    switch (ev->type) {
    case ACR_EV_SALE_RECORDED:
    case ACR_EV_SALE_REFUNDED:
    case ACR_EV_ADJUSTMENT_RECORDED:
    case ACR_EV_PARTNER_UPDATED:
    case ACR_EV_TRAINING_COMPLETED:
    case ACR_EV_ONBOARDING_DEFINED:
        return acr_period_of_ms(l->cfg.period_kind, l->cfg.utc_offset_min, ev->at_ms);
    case ACR_EV_PARTNER_REGISTERED:
    case ACR_EV_PERIOD_CLOSED:
        return INT32_MAX;
    default: /* a type the processor reads and this file does not date: every period */
        return ev->type < 32 && ((ACR_COMM_TYPE_MASK >> ev->type) & 1u) ? INT32_MIN
                                                                          : INT32_MAX;
    }
}

/* True when r's log is the one the slot's sums were computed from (the chain hash at
 * their head) and no event after it, up to the snapshot's head, reaches o_hi. */
static bool still_holds(acr_ledger_t *l, acr_reader_t *r, uint64_t through,
                        const uint8_t hash[ACR_HASH_LEN], uint64_t head, int32_t o_hi)
{
    uint8_t at[ACR_HASH_LEN];
    acr_err_t err;
    if (head - through > SCAN_MAX || acr_reader_hash_at(r, through, at, &err) != 0 ||
        memcmp(at, hash, ACR_HASH_LEN) != 0 || acr_reader_seek(r, through + 1, &err) != 0)
        return false;
    for (uint64_t seq = through + 1; seq <= head; seq++) {
        acr_event_t ev;
        if (acr_reader_next(r, &ev, NULL, &err) != 1 || effect_period(l, &ev) <= o_hi)
            return false;
    }
    return true;
}

static slot_t *find_slot(struct acr__kpi_memo *m, int32_t o_lo, int32_t o_hi)
{
    for (int i = 0; i < SLOTS; i++)
        if (m->slots[i].used && m->slots[i].o_lo == o_lo && m->slots[i].o_hi == o_hi)
            return &m->slots[i];
    return NULL;
}

/* A slot for a new window: a free one, else the least recently used not being computed. */
static slot_t *take_slot(struct acr__kpi_memo *m, int32_t o_lo, int32_t o_hi)
{
    slot_t *best = NULL;
    for (int i = 0; i < SLOTS; i++) {
        slot_t *s = &m->slots[i];
        if (!s->used) {
            best = s;
            break;
        }
        if (s->computing == 0 && (best == NULL || s->last_use < best->last_use))
            best = s;
    }
    if (best != NULL) {
        sums_unref(best->sums);
        *best = (slot_t){.used = true, .o_lo = o_lo, .o_hi = o_hi};
    }
    return best;
}

static void hit(struct acr__kpi_memo *m, slot_t *s, acr__kpi_memo_ref_t *ref)
{
    ref->sums = s->sums;
    atomic_fetch_add(&ref->sums->refs, 1);
    ref->view.partners = ref->sums->partners;
    ref->view.partner_count = ref->sums->n;
    s->last_use = ++m->clock;
    m->hits++;
}

int acr__kpi_memo_find(acr_ledger_t *l, acr_reader_t *r, int32_t o_lo, int32_t o_hi,
                       acr__kpi_memo_ref_t *ref)
{
    memset(ref, 0, sizeof *ref);
    ref->slot = -1;
    ref->o_lo = o_lo;
    ref->o_hi = o_hi;
    ref->head = acr_reader_head_seq(r);
    acr_reader_head_hash(r, ref->head_hash);
    struct acr__kpi_memo *m = memo_of(l);
    if (m == NULL)
        return 0;
    pthread_mutex_lock(&m->mu);
    for (;;) {
        slot_t *s = find_slot(m, o_lo, o_hi);
        if (s != NULL && s->sums != NULL && s->through == ref->head &&
            memcmp(s->hash, ref->head_hash, ACR_HASH_LEN) == 0) {
            hit(m, s, ref);
            pthread_mutex_unlock(&m->mu);
            return 1;
        }
        if (s != NULL && s->sums != NULL && s->through < ref->head) {
            memo_sums_t *sums = s->sums;
            uint64_t through = s->through;
            uint8_t hash[ACR_HASH_LEN];
            memcpy(hash, s->hash, ACR_HASH_LEN);
            atomic_fetch_add(&sums->refs, 1);
            pthread_mutex_unlock(&m->mu); /* the events in between are read unlocked */
            bool holds = still_holds(l, r, through, hash, ref->head, o_hi);
            pthread_mutex_lock(&m->mu);
            s = find_slot(m, o_lo, o_hi);
            if (holds && s != NULL && s->sums == sums && s->through < ref->head) {
                s->through = ref->head; /* the same sums, now known to hold at this head */
                memcpy(s->hash, ref->head_hash, ACR_HASH_LEN);
            }
            sums_unref(sums);
            if (holds && s != NULL && s->sums != NULL && s->through == ref->head &&
                memcmp(s->hash, ref->head_hash, ACR_HASH_LEN) == 0) {
                hit(m, s, ref);
                pthread_mutex_unlock(&m->mu);
                return 1;
            }
        }
        if (s == NULL || s->computing != ref->head)
            break;
        pthread_cond_wait(&m->done, &m->mu); /* the same run is under way: its result */
    }
    slot_t *s = find_slot(m, o_lo, o_hi);
    if (s == NULL)
        s = take_slot(m, o_lo, o_hi);
    if (s != NULL) {
        ref->slot = (int)(s - m->slots);
        ref->computing = s->computing == 0;
        if (ref->computing)
            s->computing = ref->head;
        s->last_use = ++m->clock;
    }
    m->misses++;
    pthread_mutex_unlock(&m->mu);
    return 0;
}

static memo_sums_t *sums_of(const acr_statement_t *stmt)
{
    memo_sums_t *s = calloc(1, sizeof *s);
    size_t bytes = 0;
    for (size_t i = 0; i < stmt->partner_count; i++)
        bytes += strlen(stmt->partners[i].partner_id) + 1;
    if (s == NULL || (s->partners = calloc(stmt->partner_count + 1, sizeof *s->partners)) == NULL ||
        (s->ids = malloc(bytes + 1)) == NULL) {
        if (s != NULL)
            free(s->partners);
        free(s);
        return NULL;
    }
    atomic_init(&s->refs, 1);
    char *p = s->ids;
    for (size_t i = 0; i < stmt->partner_count; i++) {
        size_t len = strlen(stmt->partners[i].partner_id) + 1;
        memcpy(p, stmt->partners[i].partner_id, len);
        s->partners[i].partner_id = p;
        s->partners[i].window_minor = stmt->partners[i].window_minor;
        p += len;
    }
    s->n = stmt->partner_count;
    return s;
}

void acr__kpi_memo_publish(acr_ledger_t *l, acr__kpi_memo_ref_t *ref, const acr_statement_t *stmt)
{
    struct acr__kpi_memo *m = ref->slot >= 0 ? memo_of(l) : NULL;
    if (m == NULL)
        return;
    memo_sums_t *sums = stmt != NULL ? sums_of(stmt) : NULL;
    pthread_mutex_lock(&m->mu);
    slot_t *s = &m->slots[ref->slot];
    bool mine = s->used && s->o_lo == ref->o_lo && s->o_hi == ref->o_hi;
    if (mine && sums != NULL && (s->sums == NULL || s->through < ref->head)) {
        sums_unref(s->sums);
        s->sums = sums;
        s->through = ref->head;
        memcpy(s->hash, ref->head_hash, ACR_HASH_LEN);
        sums = NULL;
    }
    if (mine && ref->computing) {
        s->computing = 0;
        pthread_cond_broadcast(&m->done);
    }
    pthread_mutex_unlock(&m->mu);
    sums_unref(sums); /* not kept: a newer head's sums are there already */
    ref->slot = -1;
}

void acr__kpi_memo_release(acr__kpi_memo_ref_t *ref)
{
    sums_unref(ref->sums);
    ref->sums = NULL;
}

void acr_query_kpi_memo_stats(acr_ledger_t *l, uint64_t *hits, uint64_t *misses)
{
    struct acr__kpi_memo *m = memo_of(l);
    *hits = *misses = 0;
    if (m == NULL)
        return;
    pthread_mutex_lock(&m->mu);
    *hits = m->hits;
    *misses = m->misses;
    pthread_mutex_unlock(&m->mu);
}
