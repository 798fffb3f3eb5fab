/* test_log_append.c - the write path's claims (append.c, state.c): the id,
 * a new stream and a new sale row are written where they are looked up, and
 * must vanish again when the event is rejected, so that a rejected batch
 * changes nothing, later events of the batch see the state as before, and
 * verify (which replays the log through the same code) finds no difference. */
#include <stdlib.h>
#include <unistd.h>

#include "accrue/log.h"
#include "test_util.h"

#define AT "\"at\":\"2026-07-03T10:00:00Z\""
#define PARTNER                                                                                    \
    "{\"id\":\"p1\",\"type\":\"partner.registered\"," AT ",\"data\":{\"partner_id\":\"P1\","      \
    "\"name\":\"n\",\"kind\":\"reseller\",\"tier\":\"gold\",\"plan_id\":\"std\","                \
    "\"currency\":\"JPY\"}}"
#define SALE(id, sale, extra)                                                                      \
    "{\"id\":\"" id "\",\"type\":\"sale.recorded\"," AT ",\"data\":{\"sale_id\":\"" sale "\","    \
    "\"partner_id\":\"P1\",\"customer_id\":\"C1\",\"product\":\"x\",\"amount_minor\":100,"       \
    "\"currency\":\"JPY\"" extra "}}"
#define REFUND(id, expv)                                                                           \
    "{\"id\":\"" id "\",\"type\":\"sale.refunded\"," AT expv ",\"data\":{\"sale_id\":\"S1\","     \
    "\"amount_minor\":10}}"

static char dir[64];
static acr_ledger_t *ledger;
static acr_errlist_t errs;

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/acr-test-append.XXXXXX");
    cr_assert(mkdtemp(dir) != NULL);
    acr_config_t cfg = {{1, 2, 3}, ACR_PERIOD_MONTH, 0};
    acr_err_t err;
    char sub[80];
    snprintf(sub, sizeof sub, "%s/l", dir);
    ASSERT_EQ_MSG(acr_ledger_create(sub, &cfg, 0, &err), 0, "%s", err.msg);
    ASSERT_EQ_MSG(acr_ledger_open(sub, &ledger, &err), 0, "%s", err.msg);
}

static void teardown(void)
{
    acr_ledger_close(ledger);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    ASSERT_EQ(system(cmd), 0);
}

/* Appends the events as one batch; returns the code, fills res and errs. */
static const char *g_actor; /* the actor of the next append (NULL = the engine's) */

static int append(const char *const *events, size_t n, acr_append_result_t *res)
{
    acr_batch_t b;
    acr_batch_init(&b);
    acr_batch_set_actor(&b, g_actor);
    for (size_t i = 0; i < n; i++) {
        acr_err_t err;
        ASSERT_EQ_MSG(acr_batch_add_json(&b, acr_ledger_config(ledger), i + 1, events[i],
                                        strlen(events[i]), &err),
                     0, "%s: %s", events[i], err.msg);
    }
    acr_errlist_clear(&errs);
    memset(res, 0, sizeof *res);
    int rc = acr_ledger_append(ledger, &b, res, &errs);
    acr_batch_destroy(&b);
    return rc;
}

static void assert_verifies(void)
{
    acr_err_t err;
    acr_verify_result_t vr;
    ASSERT_EQ_MSG(acr_ledger_verify(ledger, &vr, NULL, &err), 0, "verify: %s", err.msg);
}

TestSuite(log_append, .init = setup, .fini = teardown);

Test(log_append, rejected_events_leave_no_claims)
{
    acr_append_result_t res;
    const char *first[] = {PARTNER, SALE("s1", "S1", "")};
    ASSERT_EQ_MSG(append(first, 2, &res), 0, "%s", errs.count ? errs.items[0].msg : "");
    ASSERT_EQ(res.last_seq, 2);
    /* A new sale with an unknown rep: its id, stream and sale row were claimed, then released;
     * the same ids, stream and sale then pass in the same batch. */
    const char *batch[] = {SALE("s2", "S2", ",\"rep_id\":\"nobody\""), SALE("s2", "S2", ""),
                           REFUND("r1", ",\"expected_version\":7"), REFUND("r1", "")};
    ASSERT_EQ(append(batch, 4, &res), ACR_EUNKNOWN_REP);
    ASSERT_EQ_MSG(errs.total, 2, "the rep and the version conflict, nothing else");
    ASSERT_STR_EQ(acr_err_name(errs.items[0].code), "unknown_rep");
    ASSERT_EQ(errs.items[0].line, 1);
    ASSERT_STR_EQ(acr_err_name(errs.items[1].code), "version_conflict");
    ASSERT_EQ(errs.items[1].line, 3);
    /* Nothing of it stayed: the same events now append at seq 3.. */
    const char *again[] = {SALE("s2", "S2", ""), REFUND("r1", ",\"expected_version\":1"),
                           REFUND("r2", ",\"expected_version\":2")};
    ASSERT_EQ_MSG(append(again, 3, &res), 0, "%s", errs.count ? errs.items[0].msg : "");
    ASSERT_EQ(res.first_seq, 3);
    ASSERT_EQ(res.last_seq, 5);
    assert_verifies();
}

/* The actor is stored with the event and covered by the chain, but a resubmission by
 * another actor is the same event (a no-op answering the original seq), never a
 * conflict: idempotency compares the content, not who sent it. */
Test(log_append, actor_stored_not_compared)
{
    acr_append_result_t res;
    const char *evs[] = {PARTNER, SALE("s1", "S1", "")};
    g_actor = "token:first";
    ASSERT_EQ(append(evs, 2, &res), 0);
    g_actor = "token:second";
    ASSERT_EQ_MSG(append(evs, 2, &res), 0, "%s", errs.count ? errs.items[0].msg : "");
    ASSERT_EQ(res.appended, 0);
    ASSERT_EQ(res.duplicates, 2);
    g_actor = NULL;
    const char *more[] = {SALE("s2", "S2", "")};
    ASSERT_EQ(append(more, 1, &res), 0);
    acr_reader_t *r;
    acr_err_t err;
    acr_event_t ev;
    ASSERT_EQ(acr_reader_open(ledger, &r, &err), 0);
    ASSERT_EQ(acr_reader_seek(r, 1, &err), 0);
    static const char *want[] = {"token:first", "token:first", "accrue"};
    for (int i = 0; i < 3; i++) {
        ASSERT_EQ_MSG(acr_reader_next(r, &ev, NULL, &err), 1, "%s", err.msg);
        ASSERT_BYTES_EQ(ev.actor.ptr, ev.actor.len, want[i], strlen(want[i]));
    }
    acr_reader_close(r);
    assert_verifies();
}

Test(log_append, duplicates_and_conflicts)
{
    acr_append_result_t res;
    uint64_t seqs[4];
    const char *first[] = {PARTNER, SALE("s1", "S1", ""), SALE("s1", "S1", "")};
    res.seqs = seqs;
    ASSERT_EQ(append(first, 3, &res), 0);
    ASSERT_EQ(res.appended, 2);
    ASSERT_EQ_MSG(res.duplicates, 1, "a resubmission inside the batch");
    /* Same id, other content: id_conflict; a new sale id for an existing sale: duplicate. */
    const char *bad[] = {SALE("s1", "S9", ""), SALE("s3", "S1", "")};
    ASSERT_EQ(append(bad, 2, &res), ACR_EID_CONFLICT);
    ASSERT_EQ(errs.total, 2);
    ASSERT_STR_EQ(errs.items[0].field, "id");
    ASSERT_STR_EQ(acr_err_name(errs.items[1].code), "duplicate");
    ASSERT_STR_EQ(errs.items[1].field, "data.sale_id");
    const char *ok[] = {SALE("s1", "S1", ""), SALE("s9", "S9", "")};
    ASSERT_EQ(append(ok, 2, &res), 0);
    ASSERT_EQ(res.appended, 1);
    ASSERT_EQ(res.duplicates, 1);
    assert_verifies();
}

/* Group commit runs each batch in a child transaction: the rows cached by a
 * batch (KPI counters, deal and partner rows, written back at its end) must
 * neither leak from a rejected batch into the next one nor be lost when the
 * batch's child commits. verify compares every table with a fresh replay. */
Test(log_append, group_commit_keeps_cached_rows_per_batch)
{
    acr_append_result_t res;
    const char *first[] = {PARTNER, SALE("s1", "S1", "")};
    ASSERT_EQ_MSG(append(first, 2, &res), 0, "%s", errs.count ? errs.items[0].msg : "");
    const char *ok1[] = {SALE("s2", "S2", "")};
    const char *bad[] = {SALE("s3", "S3", ""), SALE("s4", "S4", ",\"rep_id\":\"nobody\"")};
    const char *ok2[] = {REFUND("r1", ""), SALE("s5", "S5", "")};
    const char *const *sets[] = {ok1, bad, ok2};
    size_t counts[] = {1, 2, 2};
    acr_batch_t b[3];
    const acr_batch_t *bp[3];
    for (int i = 0; i < 3; i++) {
        acr_batch_init(&b[i]);
        for (size_t j = 0; j < counts[i]; j++) {
            acr_err_t err;
            ASSERT_EQ_MSG(acr_batch_add_json(&b[i], acr_ledger_config(ledger), j + 1, sets[i][j],
                                            strlen(sets[i][j]), &err),
                         0, "%s", err.msg);
        }
        bp[i] = &b[i];
    }
    acr_append_result_t results[3] = {{0}};
    acr_errlist_t *el = calloc(3, sizeof *el);
    int rcs[3] = {0};
    cr_assert_not_null(el);
    ASSERT_EQ(acr_ledger_append_group(ledger, bp, 3, results, el, rcs), 0);
    ASSERT_EQ(rcs[0], 0);
    ASSERT_STR_EQ(acr_err_name(rcs[1]), "unknown_rep");
    ASSERT_EQ(rcs[2], 0);
    ASSERT_EQ_MSG(results[2].last_seq, 5, "s2, then r1 and s5; nothing of the rejected batch");
    for (int i = 0; i < 3; i++)
        acr_batch_destroy(&b[i]);
    free(el);
    assert_verifies();
    acr_err_t err;
    ASSERT_EQ_MSG(acr_ledger_rebuild(ledger, NULL, &err), 0, "rebuild: %s", err.msg);
    assert_verifies();
}

/* A rebuild writes the new derived tables before its commit frees the old ones, so it needs
 * room for both in the state's map. Found only at the copy, a full map used to cost a second
 * replay of the whole log (grow, then start again: 2x the time on a large ledger); the map is
 * now grown before the replay. Ledgers on the smallest map, each filled to another level (a
 * batch of 150 sales at a time, the maps doubling on the way) and rebuilt once, as a ledger
 * that was never rebuilt (no free pages of an earlier copy to reuse): the replay runs once
 * (its progress reports the end of a replay once), and verify passes. */
static int replays;

static void count_replays(uint64_t done, uint64_t total)
{
    replays += done == total;
}

static void fill_and_rebuild(const char *sub, int batches)
{
    acr_ledger_t *l;
    acr_config_t cfg = {{4, 5, 6}, ACR_PERIOD_MONTH, 0};
    acr_err_t err;
    ASSERT_EQ_MSG(acr_ledger_create(sub, &cfg, ACR_MAP_SIZE_MIN, &err), 0, "%s", err.msg);
    ASSERT_EQ_MSG(acr_ledger_open(sub, &l, &err), 0, "%s", err.msg);
    for (int k = 0, n = 0; k < batches; k++) {
        acr_batch_t b;
        acr_batch_init(&b);
        if (k == 0)
            ASSERT_EQ(acr_batch_add_json(&b, &cfg, 1, PARTNER, strlen(PARTNER), &err), 0);
        for (int i = 0; i < 150; i++, n++) {
            char ev[400];
            int len = snprintf(ev, sizeof ev,
                               "{\"id\":\"g%d\",\"type\":\"sale.recorded\"," AT ",\"data\":{"
                               "\"sale_id\":\"G%d\",\"partner_id\":\"P1\",\"customer_id\":"
                               "\"C%d\",\"product\":\"x\",\"amount_minor\":100,"
                               "\"currency\":\"JPY\"}}", n, n, n);
            ASSERT_EQ_MSG(acr_batch_add_json(&b, &cfg, (size_t)i + 2, ev, (size_t)len, &err), 0,
                          "%s", err.msg);
        }
        acr_errlist_clear(&errs);
        ASSERT_EQ_MSG(acr_ledger_append(l, &b, NULL, &errs), 0, "%s",
                      errs.count ? errs.items[0].msg : "");
        acr_batch_destroy(&b);
    }
    replays = 0;
    ASSERT_EQ_MSG(acr_ledger_rebuild(l, count_replays, &err), 0, "rebuild: %s", err.msg);
    ASSERT_EQ_MSG(replays, 1, "%d batches: the rebuild replayed the log %d times", batches,
                  replays);
    acr_verify_result_t vr;
    ASSERT_EQ_MSG(acr_ledger_verify(l, &vr, NULL, &err), 0, "verify: %s", err.msg);
    acr_ledger_close(l);
}

Test(log_append, rebuild_replays_the_log_once_whatever_the_map_holds)
{
    for (int batches = 1; batches <= 16; batches++) {
        char sub[96];
        snprintf(sub, sizeof sub, "%s/small%d", dir, batches);
        fill_and_rebuild(sub, batches);
    }
}
