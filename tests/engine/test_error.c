/* test_error.c - the one error table: every code's wire name, exit code (cli.md) and HTTP
 * status (http.md), written out here by hand from the spec rather than read back from the
 * table, so a class moved by mistake fails. */
#include "accrue/error.h"
#include "test_util.h"

typedef struct want {
    int code;
    const char *wire;
    int exit_code;
    int http;
    bool rejects;
} want_t;

static const want_t table[] = {
    /* events.md validation: exit 3, 422 */
    {ACR_EMALFORMED_JSON, "malformed_json", 3, 422, true},
    {ACR_EMALFORMED_MSGPACK, "malformed_msgpack", 3, 422, true},
    {ACR_EMISSING_FIELD, "missing_field", 3, 422, true},
    {ACR_EUNKNOWN_FIELD, "unknown_field", 3, 422, true},
    {ACR_EWRONG_TYPE, "wrong_type", 3, 422, true},
    {ACR_EINVALID_VALUE, "invalid_value", 3, 422, true},
    {ACR_EINVALID_ID, "invalid_id", 3, 422, true},
    {ACR_EINVALID_TIMESTAMP, "invalid_timestamp", 3, 422, true},
    {ACR_EINVALID_CURRENCY, "invalid_currency", 3, 422, true},
    {ACR_EUNKNOWN_TYPE, "unknown_type", 3, 422, true},
    {ACR_EFORBIDDEN_TYPE, "forbidden_type", 3, 422, true},
    {ACR_EDUPLICATE, "duplicate", 3, 422, true},
    {ACR_EUNKNOWN_PARTNER, "unknown_partner", 3, 422, true},
    {ACR_EUNKNOWN_REP, "unknown_rep", 3, 422, true},
    {ACR_EUNKNOWN_DEAL, "unknown_deal", 3, 422, true},
    {ACR_EUNKNOWN_SALE, "unknown_sale", 3, 422, true},
    {ACR_EUNKNOWN_STAGE, "unknown_stage", 3, 422, true},
    {ACR_EPARTNER_INACTIVE, "partner_inactive", 3, 422, true},
    {ACR_ECHANNEL_CONFLICT, "channel_conflict", 3, 422, true},
    {ACR_EDEAL_CLOSED, "deal_closed", 3, 422, true},
    {ACR_EEXIT_CRITERIA_UNMET, "exit_criteria_unmet", 3, 422, true},
    {ACR_EINVALID_TRANSITION, "invalid_transition", 3, 422, true},
    {ACR_ECURRENCY_MISMATCH, "currency_mismatch", 3, 422, true},
    {ACR_EOVER_REFUND, "over_refund", 3, 422, true},
    {ACR_EINVALID_PLAN, "invalid_plan", 3, 422, true},
    {ACR_ESTALE_VERSION, "stale_version", 3, 422, true},
    {ACR_EABOVE_CEILING, "above_ceiling", 3, 422, true},
    {ACR_EREFUND_BEFORE_SALE, "refund_before_sale", 3, 422, true},
    {ACR_EUNKNOWN_PLAN, "unknown_plan", 3, 422, true},
    {ACR_EUNKNOWN_PROMOTION, "unknown_promotion", 3, 422, true},
    {ACR_EUNKNOWN_ANNOUNCEMENT, "unknown_announcement", 3, 422, true},
    {ACR_ENOT_IN_AUDIENCE, "not_in_audience", 3, 422, true},
    {ACR_ETOO_LARGE, "too_large", 3, 413, true},
    /* conflicts: exit 4, 409 */
    {ACR_EID_CONFLICT, "id_conflict", 4, 409, true},
    {ACR_EVERSION_CONFLICT, "version_conflict", 4, 409, true},
    {ACR_EPERIOD_CLOSED, "period_closed", 4, 409, true},
    {ACR_EPERIOD_ORDER, "period_order", 4, 409, true},
    {ACR_EUNPLANNED_SALES, "unplanned_sales", 4, 409, true},
    {ACR_EPERIOD_OPEN, "period_open", 4, 409, true},
    /* integrity: exit 5 */
    {ACR_ECHAIN_BROKEN, "chain_broken", 5, 500, false},
    {ACR_EMISMATCH, "mismatch", 5, 500, false},
    {ACR_ECORRUPT, "corrupt", 5, 500, false},
    /* usage: exit 2, 400 */
    {ACR_EUSAGE, "usage", 2, 400, false},
    /* the server's answers (http.md) */
    {ACR_EUNAUTHORIZED, "unauthorized", 1, 401, false},
    {ACR_EFORBIDDEN, "forbidden", 1, 403, false},
    {ACR_ENOT_FOUND, "not_found", 3, 404, false}, /* events.md: not_found (exit 3) */
    {ACR_EMETHOD_NOT_ALLOWED, "method_not_allowed", 1, 405, false},
    {ACR_EBAD_REQUEST, "bad_request", 1, 400, false},
    {ACR_ETIMEOUT, "timeout", 1, 408, false},
    {ACR_EHEADERS_TOO_LARGE, "headers_too_large", 1, 431, false},
    {ACR_ELEDGER_FULL, "ledger_full", 1, 507, false},
    {ACR_EUNAVAILABLE, "unavailable", 1, 503, false},
    /* failures: exit 1, 500 */
    {ACR_EOVERFLOW, "overflow", 1, 500, false},
    {ACR_EIO, "io_error", 1, 500, false},
    {ACR_ENOMEM, "out_of_memory", 1, 500, false},
    {ACR_ESTORE, "store_error", 1, 500, false},
    {ACR_EEXISTS, "exists", 1, 500, false},
    {ACR_ENO_LEDGER, "no_ledger", 1, 500, false},
    {ACR_EINTERNAL, "internal", 1, 500, false},
    {ACR_EREAD_ONLY, "read_only", 4, 403, false}, /* reporting.md: a write on a replica */
};

Test(error, every_code_by_hand)
{
    size_t n = sizeof table / sizeof table[0];
    ASSERT_EQ_MSG(n, (size_t)(ACR_E__END - ACR_E__FIRST_MINUS_ONE - 1),
                  "a code of error.h is missing from this test");
    for (size_t i = 0; i < n; i++) {
        const want_t *w = &table[i];
        ASSERT_STR_EQ(acr_err_name(w->code), w->wire);
        ASSERT_EQ_MSG(acr_err_exit_code(w->code), w->exit_code, "%s", w->wire);
        ASSERT_EQ_MSG(acr_err_http_status(w->code), w->http, "%s", w->wire);
        ASSERT_EQ_MSG(acr_err_rejects_input(w->code), w->rejects, "%s", w->wire);
        ASSERT_EQ_MSG(acr_err_from_name(w->wire), w->code, "%s", w->wire);
    }
}

Test(error, ok_and_unknown_codes)
{
    ASSERT_STR_EQ(acr_err_name(0), "ok");
    ASSERT_EQ(acr_err_exit_code(0), 0);
    ASSERT_EQ(acr_err_http_status(0), 200);
    ASSERT_EQ(acr_err_rejects_input(0), false);
    int unknown[] = {ACR_E__END, ACR_E__FIRST_MINUS_ONE, -5000, 7};
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
        ASSERT_STR_EQ(acr_err_name(unknown[i]), "unknown_error");
        ASSERT_EQ_MSG(acr_err_exit_code(unknown[i]), 1, "code %d", unknown[i]);
        ASSERT_EQ_MSG(acr_err_http_status(unknown[i]), 500, "code %d", unknown[i]);
        ASSERT_EQ_MSG(acr_err_rejects_input(unknown[i]), false, "code %d", unknown[i]);
    }
    ASSERT_EQ(acr_err_from_name("no_such_error"), 0);
}

/* A batch's exit code: a conflict anywhere wins (cli.md), else the first error's. */
Test(error, errlist_exit_code)
{
    acr_errlist_t *list = malloc(sizeof *list);
    cr_assert_not_null(list);
    acr_errlist_clear(list);
    ASSERT_EQ(acr_errlist_exit_code(list), 0);
    acr_err_t e = {0};
    e.code = ACR_EOVER_REFUND;
    acr_errlist_add(list, &e);
    ASSERT_EQ(acr_errlist_exit_code(list), 3);
    e.code = ACR_EVERSION_CONFLICT;
    acr_errlist_add(list, &e);
    ASSERT_EQ(acr_errlist_exit_code(list), 4);
    for (int i = 0; i < ACR_ERRLIST_MAX + 5; i++)
        acr_errlist_add(list, &e);
    ASSERT_EQ(list->count, (size_t)ACR_ERRLIST_MAX);
    ASSERT_EQ(list->total, (size_t)ACR_ERRLIST_MAX + 7);
    free(list);
}
