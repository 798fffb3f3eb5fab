/* comm_internal.h - shared state of the commission processor's files.
 *
 * Not a public header: only the processors/ sources include it. The processor keeps
 * compact records (40-byte sales with the id inline, interned strings as u32
 * indexes) in growable arrays and open-addressing tables keyed by a 64-bit
 * hash (sale ids, customers), and strings in one arena that the finished
 * statement takes over (so lines point into it without copies).
 */
#ifndef ACCRUE_COMM_INTERNAL_H
#define ACCRUE_COMM_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "accrue/commission.h"
#include "accrue/date.h"
#include "accrue/limits.h"
#include "accrue/plan.h"
#include "accrue/program.h"

#define ACR__NONE UINT32_MAX /* no index: an absent attribute, no record */

/* ---- arena: bump allocation in chunks, freed all at once ---- */
typedef struct acr__chunk {
    struct acr__chunk *next; /* older chunk */
    size_t used;             /* bytes handed out */
    size_t cap;              /* bytes in data */
    _Alignas(8) char data[]; /* the memory */
} acr__chunk_t;

typedef struct acr__arena {
    acr__chunk_t *head; /* newest chunk, NULL when empty */
} acr__arena_t;

void *acr__arena_alloc(acr__arena_t *a, size_t n);
/* A NUL-terminated copy of s[0..n); NULL on out of memory. */
char *acr__arena_strdup(acr__arena_t *a, const char *s, size_t n);
void acr__arena_free(acr__arena_t *a);
/* Moves every chunk of from into to (from is left empty); what they hold stays put. */
void acr__arena_move(acr__arena_t *to, acr__arena_t *from);

/* ---- string table: interning, index-stable, open addressing ---- */
typedef struct acr__strent {
    const char *s; /* arena copy, NUL-terminated */
    uint32_t len;  /* bytes without the NUL */
    uint32_t hash; /* acr__hash(s, len) */
} acr__strent_t;

typedef struct acr__strtab {
    acr__strent_t *ents; /* by index */
    uint32_t count;      /* entries used */
    uint32_t ents_cap;   /* entries allocated */
    uint32_t *slots;     /* hash tag | (index + 1), 0 = empty */
    uint32_t mask;       /* slot count - 1 (a power of two), 0 before the first add */
} acr__strtab_t;

uint32_t acr__hash(const void *p, size_t n);
/* The index of s, or ACR__NONE. */
uint32_t acr__strtab_find(const acr__strtab_t *t, const char *s, uint32_t len, uint32_t hash);
/* Finds or adds s (copied into a); *out_new says whether it was added. */
int acr__strtab_intern(acr__strtab_t *t, acr__arena_t *a, const char *s, uint32_t len,
                       uint32_t *out_idx, bool *out_new);
void acr__strtab_free(acr__strtab_t *t);

/* Zeroed memory for a big hash table (2 MiB-aligned, advised for huge pages when large);
 * free it with acr__table_free and the same byte count. NULL on out of memory. */
void *acr__table_alloc(size_t bytes);
void acr__table_free(void *p, size_t bytes);

/* Grows *p (elements of elem bytes, capacity *cap) to hold need; amortised doubling. */
int acr__grow(void **p, size_t *cap, size_t need, size_t elem);

/* Sorts idx[0..n) by less(ctx, a, b), stable; tmp has room for n. Skips sorted input. */
typedef bool (*acr__less_fn)(const void *ctx, uint32_t a, uint32_t b);
void acr__sort_idx(uint32_t *idx, uint32_t *tmp, size_t n, acr__less_fn less, const void *ctx);

/* ---- records ---- */
typedef struct acr__attrs {
    uint32_t tier;   /* attrs-table index or ACR__NONE */
    uint32_t kind;
    uint32_t region;
    uint32_t plan;   /* plan_id */
} acr__attrs_t;

enum { ACR__UPD_TIER = 1, ACR__UPD_PLAN = 2, ACR__UPD_REGION = 4 };

typedef struct acr__partner {
    const char *id;      /* arena */
    char currency[4];    /* "" until registered */
    bool registered;     /* false for a partner seen only in a closed statement */
    acr__attrs_t reg;    /* attributes of partner.registered */
} acr__partner_t;

typedef struct acr__update {
    int64_t at_ms;
    uint64_t seq;
    uint32_t partner;
    uint32_t mask;       /* ACR__UPD_* present */
    acr__attrs_t v;      /* kind unused */
} acr__update_t;

/* One per sale with period <= U: 40 bytes, in feed (= seq) order. The sale id lives inline
 * when it has <= 8 bytes, else in the id pool (length-prefixed), see acr__sale_id(). */
typedef struct acr__sale {
    int64_t at_ms;
    uint64_t seq;
    int64_t amount_minor;
    uint32_t partner;
    uint32_t meta;           /* product (ACR__PRODUCT_BITS) | id length << 22 | flags */
    union {
        char inl[8];         /* id bytes when length <= 8 */
        uint64_t off;        /* else the pool offset of a u32 length + the bytes */
    } id;
} acr__sale_t;

#define ACR__PRODUCT_BITS 22
#define ACR__PRODUCT_MAX ((1u << ACR__PRODUCT_BITS) - 1) /* the product bits of meta */
_Static_assert(ACR_RUN_ATTRS_MAX == ACR__PRODUCT_MAX, "an attribute index fits the product bits");
#define ACR__SALE_LEN_SHIFT 22
#define ACR__SALE_LEN_POOL 255u          /* length field value: id in the pool */
#define ACR__SALE_NEWCUST (1u << 30)     /* first sale of its customer (set at finish) */
#define ACR__SALE_REFUNDED (1u << 31)    /* has a refund record (acr__rsum_t) */
#define ACR__SALE_PRODUCT(s) ((s)->meta & ACR__PRODUCT_MAX)

/* Refunded totals of the sales that have refunds: a small table keyed by sale index. */
typedef struct acr__rsum {
    uint32_t sale;           /* sales index + 1, 0 = empty slot */
    uint32_t pos;            /* finish: position in the partner's ordered sales */
    int64_t refunded_minor;  /* refunds fed so far (seq order) */
} acr__rsum_t;

/* Sale-id table: slots of {hash tag, sales index + 1}; the bytes are compared only when the
 * 32-bit tag (hash >> 32) matches, the low bits choosing the slot. */
typedef struct acr__sidtab {
    uint64_t *slots;         /* tag << 32 | (idx + 1), 0 = empty */
    uint64_t mask;           /* slot count - 1, 0 before the first insert */
    size_t count;
} acr__sidtab_t;

/* Customer -> first sale by (at, seq), one 32-byte entry stored inline in the table, so
 * a lookup is one cache line: tag, first sale, its at, and the id bytes (<= 15 inline). */
typedef struct acr__cust {
    uint32_t tag;            /* hash >> 32 */
    uint32_t first_sale;     /* sales index of the first sale, ACR__NONE when it has no record */
    int64_t first_at_ms;
    uint8_t len;             /* 0 = empty slot; id length + 1 when <= 15 bytes, else 255 (pool) */
    char b[15];              /* the id bytes, or the pool offset (uint64_t) */
} acr__cust_t;

typedef struct acr__custtab {
    acr__cust_t *ents;
    uint64_t mask;
    size_t count;
} acr__custtab_t;

/* Id bytes that do not fit inline: u32 length + bytes, in one growable buffer. */
typedef struct acr__pool {
    char *data;
    size_t len, cap;
} acr__pool_t;

typedef struct acr__refund { /* one per refund with period <= U */
    int64_t at_ms;
    uint64_t seq;
    int64_t amount_minor;
    int64_t before_minor;    /* the sale's earlier refunds (by seq) */
    const char *id;          /* arena: the refund event id */
    uint32_t sale;           /* sales index */
} acr__refund_t;

typedef struct acr__adj {    /* one per adjustment with period <= U */
    int64_t at_ms;
    uint64_t seq;
    int64_t amount_minor;
    const char *id;          /* arena */
    uint32_t partner;
} acr__adj_t;

typedef struct acr__plan_ver {
    acr_plan_t plan;
    uint32_t key;            /* attrs index of plan_id */
    uint32_t *match;         /* 4 attrs indexes per rule: tier, kind, region, product */
    const char *tag;         /* "plan_id@version", arena */
    const char **rule_tags;  /* "plan_id@version#i" per rule, arena */
} acr__plan_ver_t;

typedef struct acr__paid {   /* one line identity of the closed statements, of one partner */
    const char *source;      /* in the stored statement: source_len bytes, no NUL */
    const char *rule;        /* likewise, the latest closed line's */
    uint32_t source_len, rule_len;
    int32_t origin;
    uint8_t kind;
    char currency[4];
    int64_t amount_minor;    /* paid: the sum over every closed statement */
    uint64_t seq;            /* the latest closed line's fields */
    int64_t at_ms;
    int64_t basis_minor;
} acr__paid_t;

typedef struct acr__paid_set { /* one partner's paid identities (lines.c, paid.c) */
    acr__paid_t *v;          /* in statement order, one per identity */
    size_t n;
    acr__paid_t *w;          /* scratch: the lines as parsed */
    uint32_t *idx, *tmp;     /* scratch: their order */
    size_t cap;              /* of each of v, w, idx, tmp */
    size_t *runs;            /* scratch: where each close's lines start */
    size_t runs_cap;
} acr__paid_set_t;

typedef struct acr__closed_block { /* one partner's lines in a stored statement */
    uint32_t partner;
    uint32_t lines;
    size_t off, end;         /* bytes [off, end) of the CSV, whole lines */
    size_t line_no;          /* of the first (the header is line 1) */
} acr__closed_block_t;

typedef struct acr__closed { /* one stored statement, read where it lies */
    const char *csv;
    size_t len;
    acr__closed_block_t *blocks; /* in the statement's (partner_id) order */
    size_t nblocks;
} acr__closed_t;

/* ---- the partner program (program.md; processors/program.c) ---- */
typedef struct acr__onb {    /* one onboarding.defined: the modules of the list */
    int64_t at_ms;
    uint64_t seq;
    uint32_t *mods;          /* attrs indexes, malloc'd */
    uint32_t n;
} acr__onb_t;

typedef struct acr__trained { /* (partner, module) -> the earliest `at` of its trainings */
    uint64_t key;            /* partner << 32 | module, + 1 (0 = empty) */
    int64_t first_at_ms;
} acr__trained_t;

typedef struct acr__promo {
    acr_promo_t p;
    uint64_t seq;            /* publishing seq */
    int32_t last_day;        /* `to`, lowered by promotion.ended */
    uint32_t plan_key;       /* attrs index of plan_id */
    uint32_t match[4];       /* attrs indexes: tier, kind, region, product (ACR__NONE unused) */
    const char *rule;        /* "promotion:<promo_id>", arena */
    int64_t used_minor;      /* budget used by the sales with origin <= U (finish) */
    uint32_t lines;          /* lines of this run's statement */
    int64_t total_minor;     /* their amount */
} acr__promo_t;

typedef struct acr__program {
    acr__onb_t *onbs;        /* feed order; sorted by (at, seq) at finish */
    size_t onb_count, onbs_cap;
    acr__trained_t *trained; /* open addressing */
    size_t trained_count, trained_mask;
    acr__promo_t *promos;    /* publish order */
    size_t promo_count, promos_cap;
    bool cert_used;          /* some plan rule or promotion matches on `certified` */
    uint32_t *sale_promo;    /* finish: per sale index, the promotion it gets (ACR__NONE) */
    int64_t *sale_promo_minor; /* and the amount it is paid (after the budget) */
    size_t sale_promo_n;     /* their length (acr__table_alloc'd) */
} acr__program_t;

struct acr_comm {
    acr__program_t prog;         /* onboarding, trainings, promotions */
    acr_comm_config_t cfg;
    acr_comm_output_t output;
    acr__arena_t arena;          /* every string; handed to the statement at finish */
    acr__strtab_t partner_ids;   /* index = partners index */
    acr__strtab_t attrs;         /* tier/kind/region/plan_id/product values */
    acr__sidtab_t sale_ids;      /* sale id -> sales index */
    acr__custtab_t customers;    /* customer id -> first sale (sales up to U: feed_sale) */
    acr__pool_t pool;            /* long sale / customer ids */
    acr__partner_t *partners;
    size_t partners_cap;
    acr__update_t *updates;
    size_t update_count, updates_cap;
    acr__sale_t *sales;
    size_t sale_count, sales_cap;
    acr__rsum_t *rsums;          /* open addressing on the sale index */
    size_t rsum_count, rsum_mask;
    int64_t run_end_ms;          /* first ms after the run's period: later events are after U */
    int64_t feed_end_ms;         /* sales before it are fed (>= run_end_ms: the later ones for
                                    the budgets alone, acr_comm_budgets_through) */
    acr__refund_t *refunds;
    size_t refund_count, refunds_cap;
    acr__adj_t *adjs;
    size_t adj_count, adjs_cap;
    acr__plan_ver_t *plans;      /* publish order, what-if ones last */
    size_t plan_count, plans_cap;
    acr__closed_t *closed;       /* the stored statements fed, in close order (their bytes
                                    stay the caller's until the finish) */
    size_t closed_count, closed_cap;
    bool finished;
};

/* The period of an instant under the run's ledger configuration. */
static inline int32_t acr__period_of(const acr_comm_t *c, int64_t at_ms)
{
    return acr_period_of_ms(c->cfg.period_kind, c->cfg.utc_offset_min, at_ms);
}

/* a[0..n) == b[0..n) without a libc call for ids of up to 16 bytes (two overlapping
 * loads per side), memcmp beyond. */
static inline bool acr__bytes_eq(const void *a, const void *b, size_t n)
{
    const char *x = a, *y = b;
    if (n >= 8 && n <= 16) {
        uint64_t a0, b0, a1, b1;
        __builtin_memcpy(&a0, x, 8);
        __builtin_memcpy(&b0, y, 8);
        __builtin_memcpy(&a1, x + n - 8, 8);
        __builtin_memcpy(&b1, y + n - 8, 8);
        return ((a0 ^ b0) | (a1 ^ b1)) == 0;
    }
    if (n >= 4 && n < 8) {
        uint32_t a0, b0, a1, b1;
        __builtin_memcpy(&a0, x, 4);
        __builtin_memcpy(&b0, y, 4);
        __builtin_memcpy(&a1, x + n - 4, 4);
        __builtin_memcpy(&b1, y + n - 4, 4);
        return ((a0 ^ b0) | (a1 ^ b1)) == 0;
    }
    if (n < 4) {
        for (size_t i = 0; i < n; i++)
            if (x[i] != y[i])
                return false;
        return true;
    }
    return __builtin_memcmp(x, y, n) == 0;
}

/* The sale id of s: *n bytes at the returned pointer (inline or pool, not NUL-terminated). */
static inline const char *acr__sale_id(const acr_comm_t *c, const acr__sale_t *s, uint32_t *n)
{
    uint32_t len = (s->meta >> ACR__SALE_LEN_SHIFT) & 0xff;
    if (len != ACR__SALE_LEN_POOL) {
        *n = len;
        return s->id.inl;
    }
    uint32_t l32;
    __builtin_memcpy(&l32, c->pool.data + s->id.off, 4);
    *n = l32;
    return c->pool.data + s->id.off + 4;
}

/* Appends u32 length + bytes to the pool; *out_off its offset. */
int acr__pool_add(acr__pool_t *pl, const char *s, uint32_t n, uint64_t *out_off);
/* Refund sum entry of sale idx, created (zero) when create and missing; NULL when absent. */
acr__rsum_t *acr__rsum_get(acr_comm_t *c, uint32_t sale, bool create);
/* Drops the feed-only tables (sale ids, customers) once new-customer flags are set. */
void acr__mark_new_customers(acr_comm_t *c);

/* ---- shared.c ---- */

/* Partner index of id, added unregistered when new. */
int acr__partner_intern(acr_comm_t *c, const char *id, uint32_t len, uint32_t *out_idx);
/* Overflow error naming partner and period. */
int acr__overflow(const acr_comm_t *c, acr_err_t *err, const char *partner_id, int32_t period);

/* ---- paid.c: the paid lines ---- */

/* Per close k and partner p, blk[k * partners + p] = its block's index + 1 (0: none), and
 * lines[p] = p's lines over every close. Both malloc'ed: the caller frees them. */
int acr__paid_index(const acr_comm_t *c, uint32_t **blk, size_t **lines);
/* Partner's paid identities (it has `lines` paid lines, from acr__paid_index) into ps,
 * replacing what it held, in statement order. ACR_ECORRUPT on a line that does not parse,
 * ACR_EOVERFLOW when an identity's paid sum overflows. */
int acr__paid_load(const acr_comm_t *c, const uint32_t *blk, uint32_t partner, size_t lines,
                   acr__paid_set_t *ps, acr_err_t *err);
/* Statement order of a paid identity and a line of the same partner (src_len: the length
 * of l->source_id); 0: the line is that identity's. */
int acr__paid_line_cmp(const acr__paid_t *p, const acr_line_t *l, size_t src_len);
void acr__paid_set_free(acr__paid_set_t *ps);
/* The now-side lines and the restatement (lines.c), handed to the output one by one in
 * statement order; fills st->unplanned. */
int acr__compute_lines(acr_comm_t *c, acr_statement_t *st, acr_err_t *err);

/* The statement's output (statement.c): line numbers, totals, plans used, the CSV bytes
 * (kept or streamed to cfg.csv_write), the fingerprint, and st->lines unless omitted. */
typedef struct acr__out acr__out_t;
acr__out_t *acr__out_begin(acr_comm_t *c, acr_statement_t *st, acr_err_t *err);
/* One line in statement order. l->source_id is copied when !stable and lines are kept. */
int acr__out_line(acr__out_t *o, const acr_line_t *l, bool stable, acr_err_t *err);
/* Flushes the CSV, sets csv/csv_len/fingerprint and sorts the totals; frees o. */
int acr__out_end(acr__out_t *o, acr_err_t *err);
void acr__out_abort(acr__out_t *o);
/* The program's feed (processors/program.c): training.completed, onboarding.defined,
 * promotion.published, promotion.ended. 0 or ACR_ENOMEM / ACR_ECORRUPT (err set). */
int acr__prog_feed(acr_comm_t *c, const acr_event_t *ev, acr_err_t *err);
void acr__prog_free(acr_comm_t *c);
/* Sorts the onboarding lists by (at, seq); call once before the first acr__certified. */
void acr__prog_prepare(acr_comm_t *c);
/* Whether partner p is certified as of t_ms (program.md): 1 / 0. since[] caches, per
 * onboarding list, when p completed it (INT64_MIN = not computed yet; caller resets it per
 * partner, prog.onb_count entries). */
int acr__certified(const acr_comm_t *c, uint32_t p, int64_t t_ms, int64_t *since);
/* The promotion a planned sale gets (program.md, Which promotion), or ACR__NONE. a: the
 * partner's attributes as of the sale; cert: its certification then (-1: not computed,
 * computed through *cert_fn when a promotion needs it). */
uint32_t acr__promo_choose(const acr_comm_t *c, const acr__attrs_t *a, uint32_t product,
                           int32_t day, int (*cert_fn)(void *ctx), void *ctx);
/* Notes a promotion line of the statement in its promotion's run totals. */
void acr__promo_tally(acr_comm_t *c, const acr_line_t *l);


#endif
