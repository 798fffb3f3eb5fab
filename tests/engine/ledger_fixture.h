/* ledger_fixture.h - a throw-away ledger for the engine's unit tests: create one in a
 * temporary folder, append JSON events, remove it. Events are written with EV() and the
 * helpers below; the worked example of commissions.md (WORKED, PLAN_DOC) is the one of
 * test_projection.c, whose figures are computed by hand there. */
#ifndef ACCRUE_TEST_LEDGER_FIXTURE_H
#define ACCRUE_TEST_LEDGER_FIXTURE_H

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "accrue/date.h"
#include "accrue/log.h"
#include "test_util.h"

typedef struct fixture {
    char dir[64];
    char path[96];
    acr_ledger_t *l;
} fixture_t;

static inline acr_ledger_t *fx_open(fixture_t *fx, acr_period_kind_t kind, const char *offset)
{
    snprintf(fx->dir, sizeof fx->dir, "/tmp/acr-unit-XXXXXX");
    cr_assert_not_null(mkdtemp(fx->dir));
    acr_config_t cfg = {.period_kind = kind};
    memcpy(cfg.ledger_id, "0123456789abcdef", 16);
    cr_assert(acr_offset_parse(offset, strlen(offset), &cfg.utc_offset_min));
    acr_err_t err;
    snprintf(fx->path, sizeof fx->path, "%s/l", fx->dir);
    ASSERT_EQ_MSG(acr_ledger_create(fx->path, &cfg, 0, &err), 0, "%s", err.msg);
    ASSERT_EQ_MSG(acr_ledger_open(fx->path, &fx->l, &err), 0, "%s", err.msg);
    return fx->l;
}

static inline void fx_close(fixture_t *fx)
{
    if (fx->l != NULL)
        acr_ledger_close(fx->l);
    fx->l = NULL;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", fx->dir);
    ASSERT_EQ(system(cmd), 0);
}

/* Appends newline-separated JSON events as one batch: the append's code, the first
 * error in *first (may be NULL). */
static inline int fx_append(acr_ledger_t *l, const char *lines, acr_err_t *first)
{
    acr_batch_t b;
    acr_batch_init(&b);
    acr_err_t err;
    uint64_t n = 0;
    for (const char *p = lines; *p != '\0';) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        if (len > 0) {
            int rc = acr_batch_add_json(&b, acr_ledger_config(l), ++n, p, len, &err);
            ASSERT_EQ_MSG(rc, 0, "line %llu: %s (%s)", (unsigned long long)n, err.msg, p);
        }
        p += len + (nl != NULL);
    }
    acr_errlist_t *errs = malloc(sizeof *errs);
    cr_assert_not_null(errs);
    acr_errlist_clear(errs);
    int rc = acr_ledger_append(l, &b, NULL, errs);
    if (first != NULL) {
        if (errs->count > 0)
            *first = errs->items[0];
        else
            acr_err_clear(first);
    }
    free(errs);
    acr_batch_destroy(&b);
    return rc;
}

static inline void fx_append_ok(acr_ledger_t *l, const char *lines)
{
    acr_err_t err;
    int rc = fx_append(l, lines, &err);
    ASSERT_EQ_MSG(rc, 0, "append failed: %s: %s", acr_err_name(rc), err.msg);
}

#define EV(id, type, at, data)                                                                     \
    "{\"id\":\"" id "\",\"type\":\"" type "\",\"at\":\"" at "\",\"data\":{" data "}}\n"
#define PARTNER(id, pid, tier)                                                                     \
    EV(id, "partner.registered", "2026-06-01T00:00:00Z",                                          \
       "\"partner_id\":\"" pid "\",\"name\":\"N" pid "\",\"kind\":\"reseller\",\"tier\":\"" tier  \
       "\",\"plan_id\":\"standard\",\"currency\":\"JPY\"")
#define SALE(id, at, sid, pid, cust, amount, extra)                                                \
    EV(id, "sale.recorded", at,                                                                    \
       "\"sale_id\":\"" sid "\",\"partner_id\":\"" pid "\",\"customer_id\":\"" cust               \
       "\",\"product\":\"cloud\",\"amount_minor\":" amount ",\"currency\":\"JPY\"" extra)
#define REFUND(id, at, sid, amount)                                                                \
    EV(id, "sale.refunded", at, "\"sale_id\":\"" sid "\",\"amount_minor\":" amount)

#define PLAN_DOC                                                                                   \
    "{\"plan_id\":\"standard\",\"version\":1,\"effective_from\":\"2026-01-01\","               \
    "\"currency\":\"JPY\",\"ceiling_bp\":4000,\"rules\":[{\"match\":{\"tier\":\"gold\"},"      \
    "\"brackets\":[{\"from_minor\":0,\"rate_bp\":1500},{\"from_minor\":1000000,"                 \
    "\"rate_bp\":2500}]},{\"match\":{},\"brackets\":[{\"from_minor\":0,\"rate_bp\":1000}]}],"    \
    "\"clawback_days\":90,\"new_customer_bonus_minor\":10000,\"targets\":[{"                    \
    "\"net_revenue_minor\":1500000,\"bonus_minor\":50000}],\"cap_bp\":3000}"
#define PLAN EV("plan-1", "plan.published", "2026-06-01T00:00:00Z", "\"plan\":" PLAN_DOC)
/* July 2026 at +09:00, by hand (test_projection.c): P1 (gold) 90000 + 135000 - 15000 +
 * 10000 + 10000 = 230000; P2 (silver) 20000 (C1 is not new). */
#define WORKED                                                                                     \
    PARTNER("p-1", "P1", "gold") PARTNER("p-2", "P2", "silver") PLAN                              \
    EV("r1", "rep.added", "2026-06-01T00:00:00Z",                                                 \
       "\"partner_id\":\"P1\",\"rep_id\":\"R1\",\"name\":\"Rei\"")                                \
    SALE("s-1", "2026-07-02T01:00:00Z", "S1", "P1", "C1", "600000", "")                           \
    SALE("s-2", "2026-07-10T03:00:00Z", "S2", "P1", "C2", "700000", ",\"rep_id\":\"R1\"")         \
    SALE("s-3", "2026-07-11T05:00:00Z", "S3", "P2", "C1", "200000", "")                           \
    REFUND("r-1", "2026-07-20T02:00:00Z", "S1", "100000")

#endif
