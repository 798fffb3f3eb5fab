/* test_reader.c - read snapshots (engine/store/reader.c): the chain recomputed here with
 * xxHash from the raw LMDB values (an independent path), snapshot isolation, seeks, a
 * tampered record refused at its seq, the raw bulk read of the payout driver, and the
 * stored statement of a close. */
#include <xxhash.h>

#include "../../engine/store/store_internal.h" /* raw LMDB access, acr__reader_next_raw */
#include "accrue/payout.h"
#include "ledger_fixture.h"

#define FIVE                                                                                       \
    PARTNER("p-1", "P1", "gold") PARTNER("p-2", "P2", "silver") PLAN                              \
    SALE("s-1", "2026-07-02T01:00:00Z", "S1", "P1", "C1", "600000", "")                           \
    SALE("s-2", "2026-07-10T03:00:00Z", "S2", "P2", "C2", "700000", "")

static void canonical(XXH128_hash_t h, uint8_t out[16])
{
    XXH128_canonical_t c;
    XXH128_canonicalFromHash(&c, h);
    memcpy(out, c.digest, 16);
}

/* hash(0) = XXH3-128(ledger id); hash(n) = XXH3-128(hash(n-1) || record n), compared
 * with what the reader returns for every seq and with the stored hash. */
Test(reader, chain_recomputed_independently)
{
    fixture_t fx;
    acr_ledger_t *l = fx_open(&fx, ACR_PERIOD_MONTH, "+09:00");
    fx_append_ok(l, FIVE);
    acr_err_t err;
    acr_reader_t *r;
    ASSERT_EQ(acr_reader_open(l, &r, &err), 0);
    ASSERT_EQ(acr_reader_head_seq(r), (uint64_t)5);

    uint8_t prev[16], got[16];
    canonical(XXH3_128bits("0123456789abcdef", 16), prev);
    ASSERT_EQ(acr_reader_hash_at(r, 0, got, &err), 0);
    ASSERT_BYTES_EQ(got, 16, prev, 16);

    MDB_txn *txn;
    ASSERT_EQ(mdb_txn_begin(l->env, NULL, MDB_RDONLY, &txn), 0);
    ASSERT_EQ(acr_reader_seek(r, 1, &err), 0);
    for (uint64_t seq = 1; seq <= 5; seq++) {
        uint8_t key[8];
        acr__u64_be(seq, key);
        MDB_val k = {8, key}, v;
        ASSERT_EQ_MSG(mdb_get(txn, l->dbi[ACR_DB_LOG], &k, &v), 0, "seq %d", (int)seq);
        cr_assert(v.mv_size > 16);
        uint8_t buf[4096];
        cr_assert(v.mv_size <= sizeof buf);
        memcpy(buf, prev, 16);
        memcpy(buf + 16, (const uint8_t *)v.mv_data + 16, v.mv_size - 16);
        uint8_t want[16];
        canonical(XXH3_128bits(buf, v.mv_size), want);
        ASSERT_BYTES_EQ(v.mv_data, 16, want, 16); /* the stored hash */
        acr_event_t ev;
        ASSERT_EQ(acr_reader_next(r, &ev, got, &err), 1);
        ASSERT_EQ(ev.seq, seq);
        ASSERT_BYTES_EQ(got, 16, want, 16);
        ASSERT_EQ(acr_reader_hash_at(r, seq, got, &err), 0);
        ASSERT_BYTES_EQ(got, 16, want, 16);
        memcpy(prev, want, 16);
    }
    mdb_txn_abort(txn);
    acr_event_t ev;
    ASSERT_EQ(acr_reader_next(r, &ev, NULL, &err), 0); /* the end */
    acr_reader_head_hash(r, got);
    ASSERT_BYTES_EQ(got, 16, prev, 16);
    char hex[33];
    acr_hash_hex(prev, hex);
    ASSERT_EQ(strlen(hex), (size_t)32);
    acr_reader_close(r);
    fx_close(&fx);
}

Test(reader, snapshot_isolation_and_seek)
{
    fixture_t fx;
    acr_ledger_t *l = fx_open(&fx, ACR_PERIOD_MONTH, "+09:00");
    acr_err_t err;
    acr_reader_t *empty, *r, *r2;
    ASSERT_EQ(acr_reader_open(l, &empty, &err), 0);
    ASSERT_EQ(acr_reader_head_seq(empty), (uint64_t)0);
    fx_append_ok(l, FIVE);
    ASSERT_EQ(acr_reader_open(l, &r, &err), 0);
    fx_append_ok(l, SALE("s-3", "2026-07-11T05:00:00Z", "S3", "P2", "C1", "200000", ""));
    ASSERT_EQ(acr_reader_head_seq(empty), (uint64_t)0); /* each sees its own commit */
    ASSERT_EQ(acr_reader_head_seq(r), (uint64_t)5);
    ASSERT_EQ(acr_reader_open(l, &r2, &err), 0);
    ASSERT_EQ(acr_reader_head_seq(r2), (uint64_t)6);

    acr_event_t ev;
    ASSERT_EQ(acr_reader_seek(r, 4, &err), 0);
    ASSERT_EQ(acr_reader_next(r, &ev, NULL, &err), 1);
    ASSERT_EQ(ev.seq, (uint64_t)4);
    ASSERT_EQ(ev.type, ACR_EV_SALE_RECORDED);
    cr_assert(ev.id.len == 3 && memcmp(ev.id.ptr, "s-1", 3) == 0);
    ASSERT_EQ(acr_reader_next(r, &ev, NULL, &err), 1);
    ASSERT_EQ(acr_reader_next(r, &ev, NULL, &err), 0); /* seq 6 is not in r's snapshot */
    ASSERT_EQ(acr_reader_seek(r2, 6, &err), 0);
    ASSERT_EQ(acr_reader_next(r2, &ev, NULL, &err), 1);
    ASSERT_EQ(ev.seq, (uint64_t)6);
    ASSERT_EQ(ev.num[ACR_F_AMOUNT_MINOR], 200000);
    acr_reader_close(empty);
    acr_reader_close(r);
    acr_reader_close(r2);
    fx_close(&fx);
}

/* One flipped byte in record 3: seqs 1 and 2 read, 3 is chain_broken, naming seq 3. */
Test(reader, tampered_record_refused_at_its_seq)
{
    fixture_t fx;
    acr_ledger_t *l = fx_open(&fx, ACR_PERIOD_MONTH, "+09:00");
    fx_append_ok(l, FIVE);
    MDB_txn *txn;
    ASSERT_EQ(mdb_txn_begin(l->env, NULL, 0, &txn), 0);
    uint8_t key[8], copy[4096];
    acr__u64_be(3, key);
    MDB_val k = {8, key}, v;
    ASSERT_EQ(mdb_get(txn, l->dbi[ACR_DB_LOG], &k, &v), 0);
    cr_assert(v.mv_size <= sizeof copy);
    memcpy(copy, v.mv_data, v.mv_size);
    copy[v.mv_size - 1] ^= 0x01; /* the last byte of the record */
    MDB_val nv = {v.mv_size, copy};
    ASSERT_EQ(mdb_put(txn, l->dbi[ACR_DB_LOG], &k, &nv, 0), 0);
    ASSERT_EQ(mdb_txn_commit(txn), 0);

    acr_err_t err;
    acr_reader_t *r;
    ASSERT_EQ(acr_reader_open(l, &r, &err), 0);
    acr_event_t ev;
    ASSERT_EQ(acr_reader_next(r, &ev, NULL, &err), 1);
    ASSERT_EQ(acr_reader_next(r, &ev, NULL, &err), 1);
    acr_err_clear(&err);
    ASSERT_EQ(acr_reader_next(r, &ev, NULL, &err), ACR_ECHAIN_BROKEN);
    cr_assert(strstr(err.msg, "3") != NULL, "the message names seq 3: %s", err.msg);

    /* the bulk read of the payout driver stops at the same seq, records before it kept */
    ASSERT_EQ(acr_reader_seek(r, 1, &err), 0);
    acr_str_t recs[8];
    uint64_t seqs[8];
    size_t n = 99;
    int64_t max_at = INT64_MIN;
    ASSERT_EQ(acr__reader_next_raw(r, 5, UINT32_MAX, recs, seqs, 8, &n, &max_at, &err),
              ACR_ECHAIN_BROKEN);
    ASSERT_EQ(n, (size_t)2);
    ASSERT_EQ(seqs[1], (uint64_t)2);
    acr_reader_close(r);
    fx_close(&fx);
}

/* The raw read returns only the asked types, undecoded, and ends a chunk after a close. */
Test(reader, raw_read_by_type_and_statement_of_a_close)
{
    fixture_t fx;
    acr_ledger_t *l = fx_open(&fx, ACR_PERIOD_MONTH, "+09:00");
    fx_append_ok(l, FIVE);
    acr_payout_t po;
    acr_err_t err;
    uint64_t close_seq;
    ASSERT_EQ_MSG(acr_payout_close(l, &(acr_close_request_t){.period_id = "2026-07", .now_ms = INT64_MAX}, &po, &close_seq, &err), 0, "%s", err.msg);
    ASSERT_EQ(close_seq, (uint64_t)6);
    fx_append_ok(l, SALE("s-3", "2026-08-11T05:00:00Z", "S3", "P2", "C1", "200000", ""));

    acr_reader_t *r;
    ASSERT_EQ(acr_reader_open(l, &r, &err), 0);
    const char *csv;
    size_t len;
    ASSERT_EQ(acr_reader_statement(r, "2026-08", &csv, &len, NULL, &err), ACR_ENOT_FOUND);
    ASSERT_EQ(acr_reader_statement(r, "2026-07", &csv, &len, NULL, &err), 0);
    ASSERT_BYTES_EQ(csv, len, po.stmt.csv, po.stmt.csv_len);

    ASSERT_EQ(acr_reader_seek(r, 1, &err), 0);
    uint32_t mask = (1u << ACR_EV_SALE_RECORDED) | (1u << ACR_EV_PERIOD_CLOSED);
    acr_str_t recs[8];
    uint64_t seqs[8];
    size_t n;
    int64_t max_at = INT64_MIN;
    ASSERT_EQ(acr__reader_next_raw(r, 7, mask, recs, seqs, 8, &n, &max_at, &err), 0);
    ASSERT_EQ(n, (size_t)3); /* S1, S2, then the close ends the chunk */
    ASSERT_EQ(seqs[0], (uint64_t)4);
    ASSERT_EQ(seqs[1], (uint64_t)5);
    ASSERT_EQ(seqs[2], (uint64_t)6);
    acr_event_t ev;
    ASSERT_EQ(acr_record_decode(recs[1].ptr, recs[1].len, &ev), 0);
    ASSERT_EQ(ev.type, ACR_EV_SALE_RECORDED);
    ASSERT_EQ(ev.num[ACR_F_AMOUNT_MINOR], 700000);
    int64_t s2_at;
    cr_assert(acr_ts_parse("2026-07-10T03:00:00Z", 20, &s2_at));
    ASSERT_EQ(max_at, s2_at); /* the latest business time read, the close not counted */
    ASSERT_EQ(acr__reader_next_raw(r, 7, mask, recs, seqs, 8, &n, &max_at, &err), 0);
    ASSERT_EQ(n, (size_t)1);
    ASSERT_EQ(seqs[0], (uint64_t)7);
    ASSERT_EQ(acr__reader_next_raw(r, 7, mask, recs, seqs, 8, &n, &max_at, &err), 0);
    ASSERT_EQ(n, (size_t)0);
    acr_reader_close(r);
    acr_payout_destroy(&po);
    fx_close(&fx);
}
