/* test_token_cache.c - the token cache (issue 18) is
 * exactly as valid as the tokens table, whatever the server's writer does
 * around a revoke, and an expiry is honoured by the table and the cache.
 *
 * The revoke race of issue 18 (finding 1), made deterministic: the writer
 * brackets a group that commits nothing (only duplicates, or only rejected
 * batches: LMDB gives such a commit no txn id) and a revoke from "another
 * process" (here another transaction on the same environment) lands inside
 * the bracket. The old rule accepted `now == stamp + 1` as the writer's own
 * commit and kept the revoked token cached. */
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "accrue/log.h"
#include "accrue/token.h"
#include "test_util.h"

#define AT "\"at\":\"2026-07-03T10:00:00Z\""
#define PARTNER(id, pid)                                                                           \
    "{\"id\":\"" id "\",\"type\":\"partner.registered\"," AT ",\"data\":{\"partner_id\":\"" pid    \
    "\",\"name\":\"n\",\"kind\":\"reseller\",\"tier\":\"gold\",\"plan_id\":\"std\","               \
    "\"currency\":\"JPY\"}}"
#define BAD_SALE                                                                                   \
    "{\"id\":\"bad\",\"type\":\"sale.recorded\"," AT ",\"data\":{\"sale_id\":\"S9\","              \
    "\"partner_id\":\"NOBODY\",\"customer_id\":\"C1\",\"product\":\"x\",\"amount_minor\":100,"     \
    "\"currency\":\"JPY\"}}"

static char dir[64];
static acr_ledger_t *ledger;
static acr_token_cache_t *cache;

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/acr-test-token.XXXXXX");
    cr_assert(mkdtemp(dir) != NULL);
    acr_config_t cfg = {{1, 2, 3}, ACR_PERIOD_MONTH, 0};
    acr_err_t err;
    char sub[80];
    snprintf(sub, sizeof sub, "%s/l", dir);
    ASSERT_EQ_MSG(acr_ledger_create(sub, &cfg, 0, &err), 0, "%s", err.msg);
    ASSERT_EQ_MSG(acr_ledger_open(sub, &ledger, &err), 0, "%s", err.msg);
    cache = acr_token_cache_new(ledger);
    cr_assert_not_null(cache);
}

static void teardown(void)
{
    acr_token_cache_free(cache);
    acr_ledger_close(ledger);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    ASSERT_EQ(system(cmd), 0);
}

/* Appends each event as its own batch in one group, like the server's writer; returns
 * whether the group wrote (the writer's rule). */
static bool group(const char *const *events, size_t n)
{
    acr_batch_t b[4];
    const acr_batch_t *bp[4];
    acr_append_result_t res[4];
    acr_errlist_t *el = calloc(4, sizeof *el);
    int rcs[4];
    cr_assert(n <= 4 && el != NULL);
    for (size_t i = 0; i < n; i++) {
        acr_err_t err;
        acr_batch_init(&b[i]);
        ASSERT_EQ_MSG(acr_batch_add_json(&b[i], acr_ledger_config(ledger), 1, events[i],
                                         strlen(events[i]), &err),
                      0, "%s", err.msg);
        bp[i] = &b[i];
        memset(&res[i], 0, sizeof res[i]);
    }
    int grc = acr_ledger_append_group(ledger, bp, n, res, el, rcs);
    bool wrote = false;
    for (size_t i = 0; grc == 0 && i < n; i++)
        wrote = wrote || (rcs[i] == 0 && res[i].appended > 0);
    for (size_t i = 0; i < n; i++)
        acr_batch_destroy(&b[i]);
    free(el);
    return wrote;
}

/* Creates a token and caches it through one table check; returns its hash. */
static void cached_token(const char *name, int64_t expires_ms, uint8_t hash[ACR_TOKEN_HASH_LEN])
{
    char used[ACR_TOKEN_NAME_MAX + 1], secret[ACR_TOKEN_SECRET_HEX_LEN + 1],
        partner[ACR_ID_LEN_MAX + 1];
    acr_err_t err;
    int role;
    ASSERT_EQ_MSG(
        acr_token_create(ledger, ACR_ROLE_INGEST, NULL, name, expires_ms, used, secret, &err), 0,
        "%s", err.msg);
    ASSERT_EQ(acr_token_hash(secret, strlen(secret), hash), 0);
    char who[ACR_TOKEN_NAME_MAX + 1] = "";
    ASSERT_EQ(acr_token_check_hash(ledger, cache, hash, &role, partner, NULL), 0);
    ASSERT_EQ_MSG(acr_token_cache_get(cache, hash, &role, partner, who), 0,
                  "cached after the check");
    ASSERT_EQ(role, ACR_ROLE_INGEST);
    cr_assert_str_eq(who, used, "the cache answers the token's name (the actor of its appends)");
}

static void revoke_token(const char *name)
{
    acr_err_t err;
    ASSERT_EQ_MSG(acr_token_revoke(ledger, name, &err), 0, "%s", err.msg);
}

static void assert_gone(const uint8_t hash[ACR_TOKEN_HASH_LEN], const char *what)
{
    int role;
    char partner[ACR_ID_LEN_MAX + 1];
    ASSERT_EQ_MSG(acr_token_cache_get(cache, hash, &role, partner, NULL), ACR_ENOT_FOUND,
                  "%s: the cache still answers a revoked token", what);
    ASSERT_EQ_MSG(acr_token_check_hash(ledger, cache, hash, &role, partner, NULL),
                  ACR_EUNAUTHORIZED, "%s: the table still knows it", what);
}

TestSuite(token, .init = setup, .fini = teardown);

Test(token, revoke_inside_a_group_of_duplicates)
{
    const char *one[] = {PARTNER("p1", "P1")};
    cr_assert(group(one, 1));
    uint8_t hash[ACR_TOKEN_HASH_LEN];
    cached_token("t1", 0, hash);
    uint64_t stamp = acr_token_cache_write_begin(cache);
    revoke_token("t1"); /* another process, inside the writer's bracket */
    const char *dups[] = {PARTNER("p1", "P1"), PARTNER("p1", "P1")};
    bool wrote = group(dups, 2); /* a commit of nothing */
    cr_assert(!wrote, "duplicates write nothing");
    acr_token_cache_write_end(cache, stamp, wrote);
    assert_gone(hash, "after a group of duplicates");
}

Test(token, revoke_inside_a_group_of_rejected_batches)
{
    const char *one[] = {PARTNER("p1", "P1")};
    cr_assert(group(one, 1));
    uint8_t hash[ACR_TOKEN_HASH_LEN];
    cached_token("t1", 0, hash);
    uint64_t stamp = acr_token_cache_write_begin(cache);
    revoke_token("t1");
    const char *bad[] = {BAD_SALE, BAD_SALE};
    bool wrote = group(bad, 2);
    cr_assert(!wrote);
    acr_token_cache_write_end(cache, stamp, wrote);
    assert_gone(hash, "after a group of rejected batches");
    /* and it stays gone across the writer's later, real commits */
    stamp = acr_token_cache_write_begin(cache);
    const char *two[] = {PARTNER("p2", "P2")};
    acr_token_cache_write_end(cache, stamp, group(two, 1));
    assert_gone(hash, "after a later commit");
}

Test(token, own_commit_keeps_the_cache_and_a_revoke_beside_it_empties_it)
{
    uint8_t hash[ACR_TOKEN_HASH_LEN];
    cached_token("t1", 0, hash);
    int role;
    char partner[ACR_ID_LEN_MAX + 1];
    uint64_t stamp = acr_token_cache_write_begin(cache);
    const char *one[] = {PARTNER("p1", "P1")};
    acr_token_cache_write_end(cache, stamp, group(one, 1));
    ASSERT_EQ_MSG(acr_token_cache_get(cache, hash, &role, partner, NULL), 0,
                  "the server's own token-free commit keeps the cache valid");
    stamp = acr_token_cache_write_begin(cache);
    revoke_token("t1"); /* before the writer's transaction begins */
    const char *two[] = {PARTNER("p2", "P2")};
    acr_token_cache_write_end(cache, stamp, group(two, 1));
    assert_gone(hash, "revoke before the writer's commit");
    cached_token("t2", 0, hash);
    stamp = acr_token_cache_write_begin(cache);
    const char *three[] = {PARTNER("p3", "P3")};
    bool wrote = group(three, 1);
    revoke_token("t2"); /* after the writer's commit, before write_end */
    acr_token_cache_write_end(cache, stamp, wrote);
    assert_gone(hash, "revoke after the writer's commit");
}

Test(token, expiry)
{
    char used[ACR_TOKEN_NAME_MAX + 1], secret[ACR_TOKEN_SECRET_HEX_LEN + 1];
    acr_err_t err;
    ASSERT_EQ_MSG(acr_token_create(ledger, ACR_ROLE_ADMIN, NULL, "old", 1000, used, secret, &err),
                  ACR_EUSAGE, "an expiry in the past is refused");
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    uint8_t hash[ACR_TOKEN_HASH_LEN];
    /* 3 s ahead: the create (a durable commit) and the cached check come well before it */
    cached_token("soon", now + 3000, hash);
    acr_token_info_t *list;
    size_t n;
    ASSERT_EQ(acr_token_list(ledger, &list, &n, &err), 0);
    ASSERT_EQ(n, 1);
    ASSERT_EQ_MSG(list[0].expires_ms, now + 3000, "list shows the expiry");
    free(list);
    do { /* until the expiry has passed by the clock the cache reads */
        usleep(100 * 1000);
        clock_gettime(CLOCK_REALTIME, &ts);
    } while ((int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 <= now + 3000);
    assert_gone(hash, "expired");
}
