/* test_replica.c - the engine side of replication (replica.h): stored records
 * read from a primary are applied to a replica byte for byte; a record that
 * does not link to the replica's head, a gap, a stream of another ledger and
 * a redelivery that differs are refused with chain_broken and change nothing;
 * an identical redelivery is skipped; a replica refuses appends (read_only). */
#include <stdlib.h>
#include <unistd.h>

#include <lmdb.h>
#include <sys/stat.h>

#include "accrue/log.h"
#include "accrue/replica.h"
#include "test_util.h"

#define AT "\"at\":\"2026-07-03T10:00:00Z\""
#define PARTNER(n)                                                                                 \
    "{\"id\":\"p" n "\",\"type\":\"partner.registered\"," AT ",\"data\":{\"partner_id\":\"P" n   \
    "\",\"name\":\"n\",\"kind\":\"reseller\",\"tier\":\"gold\",\"plan_id\":\"std\","             \
    "\"currency\":\"JPY\"}}"

static char dir[64];
static acr_ledger_t *primary, *replica;
static const acr_config_t cfg = {{1, 2, 3}, ACR_PERIOD_MONTH, 0};

/* copies of the primary's stored records */
static uint8_t *bytes[8];
static acr_stored_t recs[8];
static size_t nrecs;

static acr_ledger_t *make(const char *name, const acr_config_t *c, bool as_replica)
{
    char sub[96];
    acr_err_t err;
    acr_ledger_t *l;
    snprintf(sub, sizeof sub, "%s/%s", dir, name);
    if (as_replica) {
        acr_replica_info_t info = {.last_lag_ms = -1};
        snprintf(info.stream, sizeof info.stream, "ACCRUE_test");
        snprintf(info.consumer, sizeof info.consumer, "accrue_replica_test");
        ASSERT_EQ_MSG(acr_replica_create(sub, c, &info, &err), 0, "%s", err.msg);
    } else {
        ASSERT_EQ_MSG(acr_ledger_create(sub, c, 0, &err), 0, "%s", err.msg);
    }
    ASSERT_EQ_MSG(acr_ledger_open(sub, &l, &err), 0, "%s", err.msg);
    return l;
}

static int append(acr_ledger_t *l, const char *event)
{
    acr_batch_t b;
    acr_errlist_t *errs = malloc(sizeof *errs);
    acr_err_t err;
    acr_batch_init(&b);
    ASSERT_EQ_MSG(acr_batch_add_json(&b, acr_ledger_config(l), 1, event, strlen(event), &err), 0,
                  "%s", err.msg);
    acr_errlist_clear(errs);
    int rc = acr_ledger_append(l, &b, NULL, errs);
    acr_batch_destroy(&b);
    free(errs);
    return rc;
}

static void read_primary(void)
{
    acr_reader_t *r;
    acr_err_t err;
    acr_stored_t tmp[8];
    ASSERT_EQ(acr_reader_open(primary, &r, &err), 0);
    ASSERT_EQ_MSG(acr_log_read_stored(r, 1, tmp, 8, &nrecs, &err), 0, "%s", err.msg);
    for (size_t i = 0; i < nrecs; i++) {
        bytes[i] = malloc(tmp[i].len);
        memcpy(bytes[i], tmp[i].bytes, tmp[i].len);
        recs[i] = (acr_stored_t){tmp[i].seq, bytes[i], tmp[i].len};
    }
    acr_reader_close(r);
}

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/acr-test-replica.XXXXXX");
    cr_assert(mkdtemp(dir) != NULL);
    primary = make("p", &cfg, false);
    replica = make("r", &cfg, true);
    ASSERT_EQ(append(primary, PARTNER("1")), 0);
    ASSERT_EQ(append(primary, PARTNER("2")), 0);
    ASSERT_EQ(append(primary, PARTNER("3")), 0);
    read_primary();
    ASSERT_EQ(nrecs, 3);
}

static void teardown(void)
{
    for (size_t i = 0; i < nrecs; i++)
        free(bytes[i]);
    acr_ledger_close(primary);
    acr_ledger_close(replica);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    ASSERT_EQ(system(cmd), 0);
}

static void head(acr_ledger_t *l, uint64_t *seq, uint8_t hash[ACR_HASH_LEN])
{
    acr_reader_t *r;
    acr_err_t err;
    ASSERT_EQ(acr_reader_open(l, &r, &err), 0);
    *seq = acr_reader_head_seq(r);
    acr_reader_head_hash(r, hash);
    acr_reader_close(r);
}

TestSuite(replica, .init = setup, .fini = teardown);

Test(replica, applies_byte_for_byte_and_verifies)
{
    uint64_t h = 0, ps, rs;
    uint8_t ph[ACR_HASH_LEN], rh[ACR_HASH_LEN];
    acr_err_t err;
    ASSERT_EQ_MSG(acr_replica_apply(replica, recs, nrecs, 3, 1, &h, &err), 0, "%s", err.msg);
    ASSERT_EQ(h, 3);
    head(primary, &ps, ph);
    head(replica, &rs, rh);
    ASSERT_EQ(rs, ps);
    cr_assert(memcmp(rh, ph, ACR_HASH_LEN) == 0);
    acr_reader_t *r;
    acr_stored_t got[3];
    size_t n;
    ASSERT_EQ(acr_reader_open(replica, &r, &err), 0);
    ASSERT_EQ(acr_log_read_stored(r, 1, got, 3, &n, &err), 0);
    ASSERT_EQ(n, 3);
    for (size_t i = 0; i < n; i++)
        ASSERT_BYTES_EQ(got[i].bytes, got[i].len, recs[i].bytes, recs[i].len);
    acr_reader_close(r);
    acr_verify_result_t vr;
    ASSERT_EQ_MSG(acr_ledger_verify(replica, &vr, NULL, &err), 0, "%s", err.msg);
    acr_replica_info_t info;
    ASSERT_EQ(acr_replica_get(replica, &info, &err), 1);
    ASSERT_STR_EQ(info.stream, "ACCRUE_test");
    ASSERT_EQ(info.source_head, 3);
    ASSERT_EQ(acr_replica_get(primary, &info, &err), 0);
}

Test(replica, identical_redelivery_is_skipped)
{
    uint64_t h = 0;
    acr_err_t err;
    ASSERT_EQ_MSG(acr_replica_apply(replica, recs, 2, 0, 0, &h, &err), 0, "%s", err.msg);
    ASSERT_EQ_MSG(acr_replica_apply(replica, recs, 3, 0, 0, &h, &err), 0, "%s", err.msg);
    ASSERT_EQ(h, 3);
}

Test(replica, broken_link_is_refused)
{
    uint64_t h = 0;
    acr_err_t err;
    ASSERT_EQ_MSG(acr_replica_apply(replica, recs, 1, 0, 0, &h, &err), 0, "%s", err.msg);
    bytes[1][recs[1].len - 1] ^= 1; /* one bit of the record: its hash no longer links */
    ASSERT_EQ(acr_replica_apply(replica, recs + 1, 2, 0, 0, &h, &err), ACR_ECHAIN_BROKEN);
    ASSERT_EQ_MSG(h, 1, "nothing of the bad record or after it applied");
    bytes[1][recs[1].len - 1] ^= 1;
    bytes[1][0] ^= 1; /* the hash itself */
    ASSERT_EQ(acr_replica_apply(replica, recs + 1, 1, 0, 0, &h, &err), ACR_ECHAIN_BROKEN);
    ASSERT_EQ(h, 1);
}

Test(replica, gap_is_refused)
{
    uint64_t h = 0;
    acr_err_t err;
    ASSERT_EQ_MSG(acr_replica_apply(replica, recs, 1, 0, 0, &h, &err), 0, "%s", err.msg);
    ASSERT_EQ(acr_replica_apply(replica, recs + 2, 1, 0, 0, &h, &err), ACR_ECHAIN_BROKEN);
    ASSERT_EQ(h, 1);
}

Test(replica, differing_redelivery_is_refused)
{
    uint64_t h = 0;
    acr_err_t err;
    ASSERT_EQ_MSG(acr_replica_apply(replica, recs, 3, 0, 0, &h, &err), 0, "%s", err.msg);
    bytes[0][5] ^= 1;
    ASSERT_EQ(acr_replica_apply(replica, recs, 1, 0, 0, &h, &err), ACR_ECHAIN_BROKEN);
}

Test(replica, another_ledgers_records_are_refused)
{
    acr_config_t other = cfg;
    other.ledger_id[0] = 9; /* another genesis hash */
    acr_ledger_t *r2 = make("r2", &other, true);
    uint64_t h = 0;
    acr_err_t err;
    ASSERT_EQ(acr_replica_apply(r2, recs, 3, 0, 0, &h, &err), ACR_ECHAIN_BROKEN);
    ASSERT_EQ(h, 0);
    acr_ledger_close(r2);
}

Test(replica, writes_are_refused_read_only)
{
    ASSERT_EQ(append(replica, PARTNER("9")), ACR_EREAD_ONLY);
    ASSERT_EQ(acr_err_exit_code(ACR_EREAD_ONLY), 4);
    ASSERT_STR_EQ(acr_err_name(ACR_EREAD_ONLY), "read_only");
    uint64_t h = 0;
    acr_err_t err;
    ASSERT_EQ_MSG(acr_replica_apply(primary, recs, 1, 0, 0, &h, &err), ACR_EUSAGE,
                  "a primary is not a replica");
}

/* What a create killed midway leaves in a folder (LMDB's own calls, as the create makes
 * them): an environment with no table, or with tables named as a ledger's but no config. */
static void leftover(const char *name, const char *const *tables, const char *row_table)
{
    char sub[96];
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    snprintf(sub, sizeof sub, "%s/%s", dir, name);
    cr_assert(mkdir(sub, 0700) == 0);
    ASSERT_EQ(mdb_env_create(&env), 0);
    mdb_env_set_maxdbs(env, 32);
    ASSERT_EQ(mdb_env_open(env, sub, 0, 0600), 0);
    ASSERT_EQ(mdb_txn_begin(env, NULL, 0, &txn), 0);
    for (size_t i = 0; tables != NULL && tables[i] != NULL; i++)
        ASSERT_EQ(mdb_dbi_open(txn, tables[i], MDB_CREATE, &dbi), 0);
    if (row_table != NULL) {
        MDB_val k = {1, "k"}, v = {1, "v"};
        ASSERT_EQ(mdb_dbi_open(txn, row_table, MDB_CREATE, &dbi), 0);
        ASSERT_EQ(mdb_put(txn, dbi, &k, &v, 0), 0);
    }
    ASSERT_EQ(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
}

/* reporting.md: a replica refuses writes, and a killed `follow` resumes. The replica's
 * marker is written with the config, and the files of a create cut short are replaced by
 * the next create (a `follow` killed at the wrong instant once left a writable ledger with
 * the primary's id, or files no command would take). Anything else is never touched. */
Test(replica, creation_cut_short_is_replaced_a_ledger_never)
{
    static const char *const ledger_tables[] = {"ledger", "log", NULL};
    acr_replica_info_t info = {.last_lag_ms = -1};
    snprintf(info.stream, sizeof info.stream, "ACCRUE_test");
    acr_err_t err;
    char sub[96];
    leftover("u1", NULL, NULL);
    leftover("u2", ledger_tables, NULL);
    leftover("u3", NULL, "other");
    const char *names[] = {"u1", "u2"};
    for (int i = 0; i < 2; i++) {
        snprintf(sub, sizeof sub, "%s/%s", dir, names[i]);
        ASSERT_EQ_MSG(acr_ledger_unfinished(sub, &err), 1, "%s", names[i]);
        ASSERT_EQ_MSG(acr_replica_create(sub, &cfg, &info, &err), 0, "%s: %s", names[i], err.msg);
        acr_ledger_t *l;
        ASSERT_EQ_MSG(acr_ledger_open(sub, &l, &err), 0, "%s", err.msg);
        ASSERT_EQ_MSG(acr_replica_get(l, NULL, &err), 1, "%s: a replica from the start",
                      names[i]);
        ASSERT_EQ(append(l, PARTNER("7")), ACR_EREAD_ONLY);
        acr_ledger_close(l);
    }
    snprintf(sub, sizeof sub, "%s/u3", dir); /* another program's data */
    ASSERT_EQ(acr_ledger_unfinished(sub, &err), 0);
    ASSERT_EQ(acr_replica_create(sub, &cfg, &info, &err), ACR_EEXISTS);
    /* a ledger, even one with no event (not one this process holds open: LMDB allows one
     * handle of an environment per process) */
    acr_ledger_close(make("e", &cfg, false));
    snprintf(sub, sizeof sub, "%s/e", dir);
    ASSERT_EQ(acr_ledger_unfinished(sub, &err), 0);
    ASSERT_EQ(acr_replica_create(sub, &cfg, &info, &err), ACR_EEXISTS);
    ASSERT_EQ(acr_ledger_create(sub, &cfg, 0, &err), ACR_EEXISTS);
}
