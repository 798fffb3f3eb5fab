/* test_state.c - the state machine of validation (engine/state), driven directly: each
 * event is parsed, decoded and handed to acr__state_apply inside a write transaction of
 * its own, as the append path does, without the log, ids or streams around it. Every rule
 * of events.md's table refuses with its code and field, and a refused event changes
 * nothing: its transaction is flushed and committed anyway, and every table still hashes
 * the same. */
#include <xxhash.h>

#include "../../engine/state/state_internal.h"
#include "ledger_fixture.h"

typedef struct sm {
    fixture_t fx;
    acr_ledger_t *l;
    uint64_t seq;
} sm_t;

/* XXH3 of every table of the state environment (keys and values, in table order). */
static uint64_t state_hash(acr_ledger_t *l)
{
    MDB_txn *txn;
    ASSERT_EQ(mdb_txn_begin(l->senv, NULL, MDB_RDONLY, &txn), 0);
    XXH3_state_t *st = XXH3_createState();
    XXH3_64bits_reset(st);
    for (int db = ACR__DB_LOG_LAST + 1; db < ACR_DB__COUNT; db++) {
        MDB_cursor *cur;
        MDB_val k, v;
        ASSERT_EQ(mdb_cursor_open(txn, l->dbi[db], &cur), 0);
        XXH3_64bits_update(st, &db, sizeof db);
        while (mdb_cursor_get(cur, &k, &v, MDB_NEXT) == 0) {
            XXH3_64bits_update(st, k.mv_data, k.mv_size);
            XXH3_64bits_update(st, v.mv_data, v.mv_size);
        }
        mdb_cursor_close(cur);
    }
    uint64_t h = XXH3_64bits_digest(st);
    XXH3_freeState(st);
    mdb_txn_abort(txn);
    return h;
}

/* Applies one JSON event in a transaction of its own; commits whatever the outcome (a
 * refusal must not have changed anything). The rule's code, err filled. */
static int apply(sm_t *s, const char *json, acr_err_t *err)
{
    acr_buf_t rec;
    acr_buf_init(&rec);
    size_t len = strlen(json);
    while (len > 0 && json[len - 1] == '\n')
        len--;
    int rc = acr_event_parse_json(json, len, s->l->cfg.utc_offset_min, false, &rec, NULL, err);
    ASSERT_EQ_MSG(rc, 0, "parse: %s (%s)", err->msg, json);
    acr_event_t ev;
    ASSERT_EQ(acr_record_decode(rec.data, rec.len, &ev), 0);
    ev.seq = ++s->seq;
    ev.version = 1;
    acr__txn_t tx = {.ledger = s->l, .dbi = s->l->dbi};
    tx.utc_offset_min = s->l->cfg.utc_offset_min;
    acr_buf_init(&tx.scratch);
    acr_buf_init(&tx.scratch2);
    ASSERT_EQ(mdb_txn_begin(s->l->senv, NULL, 0, &tx.txn), 0);
    acr_err_clear(err);
    rc = acr__state_apply(&tx, &ev, err);
    cr_assert(rc == 0 || acr_err_rejects_input(rc), "a store failure: %s", acr_err_name(rc));
    acr_err_t ferr;
    ASSERT_EQ_MSG(acr__tx_flush(&tx, &ferr), 0, "%s", ferr.msg);
    ASSERT_EQ(mdb_txn_commit(tx.txn), 0);
    acr_buf_destroy(&tx.scratch);
    acr_buf_destroy(&tx.scratch2);
    acr__cache_free(&tx.cache);
    acr_buf_destroy(&rec);
    return rc;
}

static void ok(sm_t *s, const char *json)
{
    acr_err_t err;
    int rc = apply(s, json, &err);
    ASSERT_EQ_MSG(rc, 0, "%s: %s (%s)", acr_err_name(rc), err.msg, json);
}

/* The event is refused with code naming field, and nothing changes. */
static void refused(sm_t *s, const char *json, int code, const char *field)
{
    uint64_t before = state_hash(s->l);
    acr_err_t err;
    int rc = apply(s, json, &err);
    ASSERT_EQ_MSG(rc, code, "%s: %s, want %s (%s)", acr_err_name(rc), err.msg,
                  acr_err_name(code), json);
    if (field != NULL)
        ASSERT_STR_EQ(err.field, field);
    ASSERT_EQ_MSG(state_hash(s->l), before, "a refused %s changed the state", acr_err_name(code));
}

static void sm_open(sm_t *s)
{
    s->l = fx_open(&s->fx, ACR_PERIOD_MONTH, "+00:00");
    s->seq = 0;
}

#define AT "2026-07-01T00:00:00Z"
#define DEALREG(id, did, pid, cust, extra)                                                         \
    EV(id, "deal.registered", AT,                                                                  \
       "\"deal_id\":\"" did "\",\"partner_id\":\"" pid "\",\"customer_id\":\"" cust               \
       "\",\"currency\":\"JPY\"" extra)
#define STATUS(id, pid, status)                                                                    \
    EV(id, "partner.status_changed", AT, "\"partner_id\":\"" pid "\",\"status\":\"" status "\"")

Test(state, partners_and_reps)
{
    sm_t s;
    sm_open(&s);
    refused(&s, EV("u0", "partner.updated", AT, "\"partner_id\":\"P1\",\"tier\":\"gold\""),
            ACR_EUNKNOWN_PARTNER, "data.partner_id");
    ok(&s, PARTNER("p1", "P1", "gold"));
    refused(&s, PARTNER("p1b", "P1", "silver"), ACR_EDUPLICATE, "data.partner_id");
    ok(&s, EV("r1", "rep.added", AT, "\"partner_id\":\"P1\",\"rep_id\":\"R1\",\"name\":\"Rei\""));
    refused(&s,
            EV("r1b", "rep.added", AT, "\"partner_id\":\"P1\",\"rep_id\":\"R1\",\"name\":\"X\""),
            ACR_EDUPLICATE, "data.rep_id");
    refused(&s, EV("t0", "training.completed", AT,
                   "\"partner_id\":\"P1\",\"rep_id\":\"R9\",\"module\":\"m\""),
            ACR_EUNKNOWN_REP, "data.rep_id");
    ok(&s, EV("t1", "training.completed", AT,
              "\"partner_id\":\"P1\",\"rep_id\":\"R1\",\"module\":\"m\""));
    ok(&s, STATUS("st1", "P1", "suspended"));
    ok(&s, STATUS("st2", "P1", "offboarded"));
    refused(&s, STATUS("st3", "P1", "active"), ACR_EINVALID_TRANSITION, NULL);
    fx_close(&s.fx);
}

Test(state, sales_and_refunds)
{
    sm_t s;
    sm_open(&s);
    ok(&s, PARTNER("p1", "P1", "gold"));
    ok(&s, PARTNER("p2", "P2", "gold"));
    refused(&s, SALE("s0", AT, "S0", "P9", "C1", "100", ""), ACR_EUNKNOWN_PARTNER,
            "data.partner_id");
    refused(&s, EV("s0c", "sale.recorded", AT,
                   "\"sale_id\":\"S0\",\"partner_id\":\"P1\",\"customer_id\":\"C1\","
                   "\"product\":\"x\",\"amount_minor\":100,\"currency\":\"EUR\""),
            ACR_ECURRENCY_MISMATCH, "data.currency");
    refused(&s, SALE("s0r", AT, "S0", "P1", "C1", "100", ",\"rep_id\":\"R9\""), ACR_EUNKNOWN_REP,
            "data.rep_id");
    refused(&s, SALE("s0d", AT, "S0", "P1", "C1", "100", ",\"deal_id\":\"D9\""),
            ACR_EUNKNOWN_DEAL, "data.deal_id");
    ok(&s, DEALREG("d2", "D2", "P2", "C2", ""));
    refused(&s, SALE("s0x", AT, "S0", "P1", "C1", "100", ",\"deal_id\":\"D2\""),
            ACR_EUNKNOWN_DEAL, "data.deal_id"); /* another partner's deal */
    ok(&s, SALE("s1", "2026-07-10T00:00:00Z", "S1", "P1", "C1", "1000", ""));
    refused(&s, SALE("s1b", AT, "S1", "P1", "C1", "5", ""), ACR_EDUPLICATE, "data.sale_id");
    refused(&s, REFUND("f0", "2026-07-10T00:00:00Z", "S9", "1"), ACR_EUNKNOWN_SALE,
            "data.sale_id");
    refused(&s, REFUND("f1", "2026-07-09T23:59:59Z", "S1", "1"), ACR_EREFUND_BEFORE_SALE, NULL);
    ok(&s, REFUND("f2", "2026-07-10T00:00:00Z", "S1", "600"));
    ok(&s, REFUND("f3", "2026-07-11T00:00:00Z", "S1", "400")); /* exactly the rest */
    refused(&s, REFUND("f4", "2026-07-12T00:00:00Z", "S1", "1"), ACR_EOVER_REFUND,
            "data.amount_minor");
    ok(&s, STATUS("st", "P1", "offboarded"));
    refused(&s, SALE("s2", AT, "S2", "P1", "C1", "100", ""), ACR_EPARTNER_INACTIVE,
            "data.partner_id");
    fx_close(&s.fx);
}

Test(state, deals_through_the_pipeline)
{
    sm_t s;
    sm_open(&s);
    ok(&s, PARTNER("p1", "P1", "gold"));
    ok(&s, PARTNER("p2", "P2", "gold"));
    ok(&s, EV("pl", "pipeline.defined", AT,
              "\"stages\":[{\"name\":\"lead\",\"exit_requires\":[\"amount\"]},"
              "{\"name\":\"qualified\",\"exit_requires\":[\"rep\"]},"
              "{\"name\":\"proposal\",\"exit_requires\":[]}]"));
    ok(&s, EV("r1", "rep.added", AT, "\"partner_id\":\"P1\",\"rep_id\":\"R1\",\"name\":\"Rei\""));
    ok(&s, DEALREG("d1", "D1", "P1", "C1", ""));
    refused(&s, DEALREG("d1b", "D1", "P1", "C5", ""), ACR_EDUPLICATE, "data.deal_id");
    refused(&s, DEALREG("d2", "D2", "P2", "C1", ""), ACR_ECHANNEL_CONFLICT, "data.customer_id");
    ok(&s, DEALREG("d3", "D3", "P1", "C1", "")); /* the same partner may hold two */
    refused(&s, EV("m0", "deal.stage_changed", AT, "\"deal_id\":\"D1\",\"stage\":\"nowhere\""),
            ACR_EUNKNOWN_STAGE, "data.stage");
    refused(&s, EV("m1", "deal.stage_changed", AT, "\"deal_id\":\"D1\",\"stage\":\"qualified\""),
            ACR_EEXIT_CRITERIA_UNMET, "data.amount_minor");
    ok(&s, EV("m2", "deal.stage_changed", AT,
              "\"deal_id\":\"D1\",\"stage\":\"qualified\",\"amount_minor\":500"));
    refused(&s, EV("m3", "deal.stage_changed", AT, "\"deal_id\":\"D1\",\"stage\":\"proposal\""),
            ACR_EEXIT_CRITERIA_UNMET, "data.rep_id");
    ok(&s, EV("m4", "deal.stage_changed", AT,
              "\"deal_id\":\"D1\",\"stage\":\"proposal\",\"rep_id\":\"R1\""));
    ok(&s, EV("c1", "deal.closed", AT, "\"deal_id\":\"D1\",\"outcome\":\"won\""));
    refused(&s, EV("c2", "deal.closed", AT, "\"deal_id\":\"D1\",\"outcome\":\"lost\""),
            ACR_EDEAL_CLOSED, NULL);
    refused(&s, EV("m5", "deal.stage_changed", AT, "\"deal_id\":\"D1\",\"stage\":\"lead\""),
            ACR_EDEAL_CLOSED, NULL);
    refused(&s, EV("c3", "deal.closed", AT, "\"deal_id\":\"D9\",\"outcome\":\"won\""),
            ACR_EUNKNOWN_DEAL, "data.deal_id");
    ok(&s, EV("c4", "deal.closed", AT, "\"deal_id\":\"D3\",\"outcome\":\"lost\""));
    ok(&s, DEALREG("d2", "D2", "P2", "C1", "")); /* C1 has no open deal any more */
    ok(&s, STATUS("st", "P2", "suspended"));
    refused(&s, DEALREG("d4", "D4", "P2", "C4", ""), ACR_EPARTNER_INACTIVE, "data.partner_id");
    fx_close(&s.fx);
}

Test(state, plans)
{
    sm_t s;
    sm_open(&s);
    ok(&s, PLAN);
    refused(&s, EV("plan-1b", "plan.published", AT, "\"plan\":" PLAN_DOC), ACR_ESTALE_VERSION,
            NULL);
    ok(&s, PARTNER("p1", "P1", "gold")); /* a JPY partner on the plan "standard" */
    const char *eur = EV("plan-2", "plan.published", AT,
                         "\"plan\":{\"plan_id\":\"standard\",\"version\":2,\"effective_from\":"
                         "\"2026-08-01\",\"currency\":\"EUR\",\"ceiling_bp\":4000,\"rules\":[{"
                         "\"match\":{},\"brackets\":[{\"from_minor\":0,\"rate_bp\":1000}]}]}");
    refused(&s, eur, ACR_ECURRENCY_MISMATCH, NULL);
    fx_close(&s.fx);
}

/* The stage list parser and the default pipeline of events.md. */
Test(state, pipeline_parse)
{
    acr__pipeline_t p;
    ASSERT_EQ(acr__pipeline_parse(ACR__DEFAULT_PIPELINE_JSON, strlen(ACR__DEFAULT_PIPELINE_JSON),
                                  &p),
              0);
    cr_assert(p.count >= 1);
    const char *two = "[{\"exit_requires\":[\"amount\",\"rep\"],\"name\":\"a\"},"
                      "{\"exit_requires\":[],\"name\":\"b\"}]";
    ASSERT_EQ(acr__pipeline_parse(two, strlen(two), &p), 0);
    ASSERT_EQ(p.count, 2u);
    ASSERT_STR_EQ(p.names[0], "a");
    ASSERT_STR_EQ(p.names[1], "b");
    ASSERT_EQ(p.exit_mask[0], ACR__EXIT_AMOUNT | ACR__EXIT_REP);
    ASSERT_EQ(p.exit_mask[1], 0);
    ASSERT_EQ(acr__pipeline_parse("[", 1, &p), ACR_ECORRUPT);
}
