/* test_idem.c - idempotency keys (idem.h, engine/log/idem.c, append.c): a keyed batch stores
 * its answer with its effect, the same key is answered from the record and not applied again
 * (also twice in one group), another request hash is a conflict, a rejected batch's answer is
 * kept while the batch is rolled back, and verify ignores the table while rebuild keeps it. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "accrue/idem.h"
#include "accrue/log.h"
#include "ledger_fixture.h"
#include "test_util.h"

#define PARTNER_P1                                                                                 \
    "{\"id\":\"p1\",\"type\":\"partner.registered\",\"at\":\"2026-07-03T10:00:00Z\","             \
    "\"data\":{\"partner_id\":\"P1\",\"name\":\"n\",\"kind\":\"reseller\",\"tier\":\"gold\","     \
    "\"plan_id\":\"std\",\"currency\":\"JPY\"}}"
#define SALE_NOPE                                                                                  \
    "{\"id\":\"s1\",\"type\":\"sale.recorded\",\"at\":\"2026-07-03T10:00:00Z\",\"data\":{"        \
    "\"sale_id\":\"S1\",\"partner_id\":\"NOPE\",\"customer_id\":\"C1\",\"product\":\"x\","        \
    "\"amount_minor\":100,\"currency\":\"JPY\"}}"

static fixture_t fx;
static acr_ledger_t *ledger;

static void setup(void)
{
    ledger = fx_open(&fx, ACR_PERIOD_MONTH, "+00:00");
}

static void teardown(void)
{
    fx_close(&fx);
}

static int answers; /* calls of the answer callback */

/* The answer: "rc=<code> appended=<n>", status 200 or 422 (a decided request). */
static bool answer(acr_idem_t *idem, int rc, const acr_append_result_t *res,
                   const acr_errlist_t *errs)
{
    (void)errs;
    answers++;
    idem->status = rc == 0 ? 200 : 422;
    snprintf(idem->ctype, sizeof idem->ctype, "text/plain");
    acr_buf_printf(&idem->body, "rc=%d appended=%llu", rc,
                   (unsigned long long)(res ? res->appended : 0));
    return true;
}

static void key(acr_idem_t *idem, const char *scope, const char *k, uint8_t hash_byte)
{
    cr_assert(acr_idem_init(idem, scope, k));
    memset(idem->req_hash, hash_byte, sizeof idem->req_hash);
    idem->answer = answer;
}

static void batch(acr_batch_t *b, const char *ev)
{
    acr_batch_init(b);
    acr_err_t err;
    ASSERT_EQ_MSG(acr_batch_add_json(b, acr_ledger_config(ledger), 1, ev, strlen(ev), &err), 0,
                  "%s", err.msg);
}

/* Appends the batches as one keyed group; returns the group's code. */
static int group(acr_batch_t *bs, acr_idem_t **idems, size_t n, int *rcs,
                 acr_append_result_t *res)
{
    const acr_batch_t *bp[4];
    acr_errlist_t *errs = calloc(n, sizeof *errs);
    cr_assert(errs != NULL && n <= 4);
    for (size_t i = 0; i < n; i++)
        bp[i] = &bs[i];
    memset(res, 0, n * sizeof *res);
    int rc = acr_ledger_append_group_idem(ledger, bp, n, res, errs, rcs, idems);
    free(errs);
    return rc;
}

static uint64_t head(void)
{
    acr_stats_t st;
    acr_err_t err;
    ASSERT_EQ(acr_ledger_stats(ledger, &st, &err), 0);
    return st.head_seq;
}

Test(idem, stored_replayed_conflict, .init = setup, .fini = teardown)
{
    acr_batch_t b[2];
    batch(&b[0], PARTNER_P1);
    batch(&b[1], PARTNER_P1);
    acr_idem_t k1, k1again, *idems[2] = {&k1, &k1again};
    key(&k1, "fin", "k1", 1);
    key(&k1again, "fin", "k1", 1);
    int rcs[2];
    acr_append_result_t res[2];
    ASSERT_EQ(group(b, idems, 2, rcs, res), 0);
    ASSERT_EQ(k1.state, ACR_IDEM_STORED);
    ASSERT_EQ(k1again.state, ACR_IDEM_REPLAY); /* the same key later in the same group */
    ASSERT_EQ(rcs[0], 0);
    ASSERT_EQ(res[0].appended, 1);
    ASSERT_EQ(res[1].appended, 0);
    ASSERT_EQ(k1again.status, 200);
    ASSERT_BYTES_EQ(k1again.body.data, k1again.body.len, k1.body.data, k1.body.len);
    ASSERT_EQ(head(), 1);

    acr_idem_t other, scoped;
    key(&other, "fin", "k1", 2);  /* another request under the key */
    key(&scoped, "fin2", "k1", 2); /* another token's key */
    acr_err_t err;
    ASSERT_EQ(acr_idem_lookup(ledger, &other, 0, &err), 0);
    ASSERT_EQ(other.state, ACR_IDEM_CONFLICT);
    ASSERT_EQ(acr_idem_lookup(ledger, &scoped, 0, &err), 0);
    ASSERT_EQ(scoped.state, ACR_IDEM_NEW);
    acr_idem_t late;
    key(&late, "fin", "k1", 1);
    int64_t now = k1again.at_ms + ACR_IDEM_TTL_MS + 1;
    ASSERT_EQ(acr_idem_lookup(ledger, &late, now, &err), 0);
    ASSERT_EQ(late.state, ACR_IDEM_NEW); /* expired: a new request */
    acr_idem_t *all[] = {&k1, &k1again, &other, &scoped, &late};
    for (size_t i = 0; i < 5; i++)
        acr_idem_destroy(all[i]);
    acr_batch_destroy(&b[0]);
    acr_batch_destroy(&b[1]);
}

Test(idem, rejection_kept_rebuild_keeps_verify_ignores, .init = setup, .fini = teardown)
{
    acr_batch_t b[1];
    batch(&b[0], SALE_NOPE);
    acr_idem_t k, *idems[1] = {&k};
    key(&k, "fin", "k-rej", 3);
    int rcs[1];
    acr_append_result_t res[1];
    answers = 0;
    ASSERT_EQ(group(b, idems, 1, rcs, res), 0);
    ASSERT_EQ(rcs[0], ACR_EUNKNOWN_PARTNER);
    ASSERT_EQ(k.state, ACR_IDEM_STORED);
    ASSERT_EQ(head(), 0); /* the batch rolled back, its answer kept */
    ASSERT_EQ(answers, 1);

    acr_err_t err;
    acr_verify_result_t vr;
    ASSERT_EQ_MSG(acr_ledger_verify(ledger, &vr, NULL, &err), 0, "%s", err.msg);
    ASSERT_EQ_MSG(acr_ledger_rebuild(ledger, NULL, &err), 0, "%s", err.msg);
    acr_idem_t again;
    key(&again, "fin", "k-rej", 3);
    ASSERT_EQ(acr_idem_lookup(ledger, &again, k.at_ms, &err), 0);
    ASSERT_EQ(again.state, ACR_IDEM_REPLAY);
    ASSERT_EQ(again.status, 422);
    ASSERT_BYTES_EQ(again.body.data, again.body.len, k.body.data, k.body.len);
    ASSERT_STR_EQ(again.ctype, "text/plain");
    acr_idem_destroy(&k);
    acr_idem_destroy(&again);
    acr_batch_destroy(&b[0]);
}
