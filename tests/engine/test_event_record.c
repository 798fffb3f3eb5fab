/* test_event_record.c - the stored record: round trips, canonical bytes, the
 * bounded decoder against hostile input, and the decoder's speed. */
#include <time.h>

#include "accrue/date.h"
#include "accrue/event.h"
#include "test_util.h"

/* Fills every field of the type's schema (or only the required ones). */
static void fill(acr_event_t *ev, int type, bool all)
{
    memset(ev, 0, sizeof *ev);
    ev->type = (uint8_t)type;
    ev->at_ms = 1783072800123LL;
    ev->recorded_at_ms = -5;
    ev->version = 7;
    ev->id.ptr = "ev-1";
    ev->id.len = 4;
    const acr_type_schema_t *sc = acr_event_schema(type);
    static const char long_str[] = "0123456789012345678901234567890123456789";
    for (unsigned i = 0; i < sc->field_count; i++) {
        int f = sc->fields[i];
        if (!all && !((sc->required >> f) & 1u))
            continue;
        ev->present |= 1ull << f;
        ev->num[f] = f == ACR_F_AMOUNT_MINOR ? -1000000000000000LL : 300 + f;
        ev->str[f].ptr = f == ACR_F_NAME ? long_str : "2026-07-03";
        ev->str[f].len = f == ACR_F_NAME ? (uint32_t)strlen(long_str) : 10;
        if (f == ACR_F_EXPECTED_CLOSE || f == ACR_F_ENDS_ON || f == ACR_F_DUE)
            ev->num[f] = acr_days_from_civil(2026, 7, 3);
        if (f == ACR_F_REQUIRES_ACK) { /* a boolean: no string form */
            ev->num[f] = 1;
            ev->str[f].ptr = NULL;
            ev->str[f].len = 0;
        }
    }
}

static void assert_same(const acr_event_t *a, const acr_event_t *b)
{
    ASSERT_EQ(a->type, b->type);
    ASSERT_EQ(a->at_ms, b->at_ms);
    ASSERT_EQ(a->recorded_at_ms, b->recorded_at_ms);
    ASSERT_EQ(a->version, b->version);
    ASSERT_EQ_MSG(a->present, b->present, "present %llx vs %llx", (unsigned long long)a->present,
                  (unsigned long long)b->present);
    ASSERT_BYTES_EQ(a->id.ptr, a->id.len, b->id.ptr, b->id.len);
    const acr_type_schema_t *sc = acr_event_schema(a->type);
    for (unsigned i = 0; i < sc->field_count; i++) {
        int f = sc->fields[i];
        if (!ACR_HAS(a, f))
            continue;
        int k = -1;
        switch (f) {
        case ACR_F_AMOUNT_MINOR: case ACR_F_THROUGH_SEQ: case ACR_F_LINES:
        case ACR_F_REQUIRES_ACK: k = 0; break;
        case ACR_F_EXPECTED_CLOSE: case ACR_F_ENDS_ON: case ACR_F_DUE: k = 1; break;
        default: k = 2;
        }
        if (k <= 1)
            ASSERT_EQ_MSG(a->num[f], b->num[f], "%s", acr_field_name(f));
        if (k >= 1)
            ASSERT_BYTES_EQ(a->str[f].ptr, a->str[f].len, b->str[f].ptr, b->str[f].len);
    }
}

Test(event_record, roundtrip_every_type)
{
    for (int t = 1; t < ACR_EV__COUNT; t++) {
        for (int all = 0; all <= 1; all++) {
            acr_event_t ev, back;
            fill(&ev, t, all);
            acr_buf_t b;
            acr_buf_init(&b);
            ASSERT_EQ(acr_record_encode(&ev, &b), 0);
            ASSERT_EQ(b.data[ACR_RECORD_RECORDED_AT_OFF], 0xd3);
            ASSERT_EQ(b.data[ACR_RECORD_VERSION_OFF], 0xcf);
            ASSERT_EQ(b.data[ACR_RECORD_CONTENT_OFF], t);
            ASSERT_EQ_MSG(acr_record_decode(b.data, b.len, &back), 0, "%s",
                         acr_event_type_name(t));
            assert_same(&ev, &back);
            /* Encoding the decoded event gives the same bytes. */
            acr_buf_t b2;
            acr_buf_init(&b2);
            ASSERT_EQ(acr_record_encode(&back, &b2), 0);
            ASSERT_BYTES_EQ(b2.data, b2.len, b.data, b.len);
            acr_buf_destroy(&b2);
            acr_buf_destroy(&b);
        }
    }
}

Test(event_record, patch)
{
    acr_event_t ev, back;
    fill(&ev, ACR_EV_SALE_RECORDED, true);
    ev.recorded_at_ms = 0;
    ev.version = 0;
    acr_buf_t b;
    acr_buf_init(&b);
    ASSERT_EQ(acr_record_encode(&ev, &b), 0);
    uint8_t *content = malloc(b.len);
    memcpy(content, b.data, b.len);
    acr_record_patch(b.data, 1783072800999LL, 123456789012ULL);
    ASSERT_EQ(acr_record_decode(b.data, b.len, &back), 0);
    ASSERT_EQ(back.recorded_at_ms, 1783072800999LL);
    ASSERT_EQ(back.version, 123456789012ULL);
    cr_assert(memcmp(content + ACR_RECORD_CONTENT_OFF, b.data + ACR_RECORD_CONTENT_OFF,
                     b.len - ACR_RECORD_CONTENT_OFF) == 0, "patching leaves the content alone");
    free(content);
    acr_buf_destroy(&b);
}

/* The actor (events.md) is the last element of a committed record (fmt 2, one element
 * more); a record of fmt 1, stored before the actor existed, still decodes, with none.
 * The content bytes, which idempotency compares, are the same either way. The fmt-2
 * bytes are built here by hand from the msgpack spec (fixstr a0|n, str8 d9 n), not by
 * the append path that writes them. */
Test(event_record, actor_is_last_and_optional)
{
    for (int t = 1; t < ACR_EV__COUNT; t++) {
        acr_event_t ev, back;
        fill(&ev, t, true);
        acr_buf_t b;
        acr_buf_init(&b);
        ASSERT_EQ(acr_record_encode(&ev, &b), 0);
        ASSERT_EQ_MSG(b.data[1], ACR_RECORD_FMT, "a parsed record has no actor");
        ASSERT_EQ(acr_record_decode(b.data, b.len, &back), 0);
        ASSERT_EQ_MSG(back.actor.len, 0, "fmt 1: no actor");
        ASSERT_EQ(acr_record_content_len(b.data, b.len), b.len);
        static const char *actors[] = {"cli:alice", "token:a-very-long-token-name-of-40-bytes-x"};
        for (int a = 0; a < 2; a++) {
            size_t n = strlen(actors[a]);
            uint8_t *rec = malloc(b.len + 2 + n);
            memcpy(rec, b.data, b.len);
            rec[0] = (uint8_t)(b.data[0] + 1);
            rec[1] = ACR_RECORD_FMT_ACTOR;
            size_t h = n < 32 ? 1 : 2;
            if (h == 1) {
                rec[b.len] = (uint8_t)(0xa0 | n);
            } else {
                rec[b.len] = 0xd9;
                rec[b.len + 1] = (uint8_t)n;
            }
            memcpy(rec + b.len + h, actors[a], n);
            ASSERT_EQ_MSG(acr_record_decode(rec, b.len + h + n, &back), 0, "%s with actor",
                          acr_event_type_name(t));
            assert_same(&ev, &back);
            ASSERT_BYTES_EQ(back.actor.ptr, back.actor.len, actors[a], n);
            ASSERT_EQ(acr_record_content_len(rec, b.len + h + n), b.len);
            ASSERT_EQ(acr_record_check_header(rec, b.len + h + n), t);
            /* fmt 2 without its actor, or fmt 1 with one, is damage */
            ASSERT_EQ(acr_record_decode(rec, b.len, &back), ACR_ECORRUPT);
            rec[1] = ACR_RECORD_FMT;
            ASSERT_EQ(acr_record_decode(rec, b.len + h + n, &back), ACR_ECORRUPT);
            rec[0] = b.data[0];
            ASSERT_EQ(acr_record_decode(rec, b.len + h + n, &back), ACR_ECORRUPT);
            free(rec);
        }
        acr_buf_destroy(&b);
    }
}

/* Canonical integers: the smallest msgpack encoding of each value. */
Test(event_record, canonical_ints)
{
    static const struct {
        int64_t v;
        size_t bytes;
    } cases[] = {{1, 1},        {127, 1},    {128, 2},       {255, 2},          {256, 3},
                 {65535, 3},    {65536, 5},  {4294967295LL, 5}, {4294967296LL, 9}, {-1, 1},
                 {-32, 1},      {-33, 2},    {-128, 2},      {-129, 3},         {-32768, 3},
                 {-32769, 5},   {-2147483648LL, 5}, {-2147483649LL, 9}};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        acr_event_t ev, back;
        fill(&ev, ACR_EV_ADJUSTMENT_RECORDED, true);
        ev.num[ACR_F_AMOUNT_MINOR] = cases[i].v;
        acr_buf_t b;
        acr_buf_init(&b);
        ASSERT_EQ(acr_record_encode(&ev, &b), 0);
        /* record = header(30) + id(5) + partner_id(11) + amount + currency(11) + reason(11) */
        ASSERT_EQ_MSG(b.len, 30 + 5 + 11 + cases[i].bytes + 11 + 11, "%lld",
                     (long long)cases[i].v);
        ASSERT_EQ(acr_record_decode(b.data, b.len, &back), 0);
        ASSERT_EQ(back.num[ACR_F_AMOUNT_MINOR], cases[i].v);
        acr_buf_destroy(&b);
    }
}

Test(event_record, str_widths)
{
    static char big[70000];
    memset(big, 'x', sizeof big);
    static const uint32_t lens[] = {0, 31, 32, 255, 256, 65535, 65536, 70000};
    for (size_t i = 0; i < sizeof lens / sizeof *lens; i++) {
        acr_event_t ev, back;
        fill(&ev, ACR_EV_REP_ADDED, true);
        ev.str[ACR_F_NAME].ptr = big;
        ev.str[ACR_F_NAME].len = lens[i];
        acr_buf_t b;
        acr_buf_init(&b);
        ASSERT_EQ(acr_record_encode(&ev, &b), 0);
        ASSERT_EQ_MSG(acr_record_decode(b.data, b.len, &back), 0, "len %u", lens[i]);
        ASSERT_EQ(back.str[ACR_F_NAME].len, lens[i]);
        cr_assert(back.str[ACR_F_NAME].ptr >= (const char *)b.data &&
                  back.str[ACR_F_NAME].ptr <= (const char *)b.data + b.len, "zero-copy");
        acr_buf_destroy(&b);
    }
}

Test(event_record, rejects_truncation_and_trailing)
{
    acr_event_t ev, back;
    fill(&ev, ACR_EV_SALE_RECORDED, true);
    acr_buf_t b;
    acr_buf_init(&b);
    ASSERT_EQ(acr_record_encode(&ev, &b), 0);
    for (size_t n = 0; n < b.len; n++) {
        uint8_t *copy = malloc(n ? n : 1); /* exact size: ASan catches any over-read */
        memcpy(copy, b.data, n);
        ASSERT_EQ_MSG(acr_record_decode(copy, n, &back), ACR_ECORRUPT, "prefix %zu", n);
        free(copy);
    }
    ASSERT_EQ(acr_record_decode(NULL, 0, &back), ACR_ECORRUPT);
    uint8_t byte = 0;
    cr_assert(acr_buf_append(&b, &byte, 1) == 0);
    ASSERT_EQ_MSG(acr_record_decode(b.data, b.len, &back), ACR_ECORRUPT, "trailing byte");
    acr_buf_destroy(&b);
}

/* acr_record_check_header: the type of every well-formed record, 0 for a bad header; it
 * agrees with acr_record_decode on every header byte and never reads past len. */
Test(event_record, check_header)
{
    acr_buf_t b;
    acr_buf_init(&b);
    for (int type = ACR_EV_NONE + 1; type < ACR_EV__COUNT; type++) {
        acr_event_t ev;
        fill(&ev, type, type % 2 == 0);
        acr_buf_reset(&b);
        ASSERT_EQ(acr_record_encode(&ev, &b), 0);
        ASSERT_EQ_MSG(acr_record_check_header(b.data, b.len), type, "type %d", type);
        for (size_t n = 0; n < ACR_RECORD_CONTENT_OFF + 11; n++) {
            uint8_t *copy = malloc(n ? n : 1); /* exact size: ASan catches any over-read */
            memcpy(copy, b.data, n);
            ASSERT_EQ_MSG(acr_record_check_header(copy, n), 0, "prefix %zu", n);
            free(copy);
        }
        for (size_t i = 0; i < ACR_RECORD_CONTENT_OFF + 2; i++) {
            if (i >= 3 && i < 11) /* recorded_at: any value */
                continue;
            if (i >= 12 && i < 20) /* version: any value */
                continue;
            uint8_t save = b.data[i];
            b.data[i] ^= i == 20 ? 0x40 : 0x01;
            acr_event_t back;
            int t = acr_record_check_header(b.data, b.len);
            cr_assert(t == 0 || acr_record_decode(b.data, b.len, &back) != 0 ||
                          back.type == t, "byte %zu", i);
            if (i != 20)
                ASSERT_EQ_MSG(t, 0, "type %d byte %zu", type, i);
            b.data[i] = save;
        }
    }
    ASSERT_EQ(acr_record_check_header(NULL, 0), 0);
    acr_buf_destroy(&b);
}

/* Builds a record by hand: header for type, then the given tail bytes. */
static size_t hand_record(uint8_t *out, uint8_t count, uint8_t type, const uint8_t *tail,
                          size_t tail_len)
{
    size_t n = 0;
    out[n++] = (uint8_t)(0x90 | count);
    out[n++] = ACR_RECORD_FMT;
    out[n++] = 0xd3;
    memset(out + n, 0, 8), n += 8;
    out[n++] = 0xcf;
    memset(out + n, 0, 8), n += 8;
    out[n++] = type;
    out[n++] = 0xd3;
    memset(out + n, 0, 8), n += 8;
    memcpy(out + n, tail, tail_len);
    return n + tail_len;
}

static int decode_hand(uint8_t count, uint8_t type, const uint8_t *tail, size_t tail_len)
{
    uint8_t *rec = malloc(64 + tail_len);
    size_t n = hand_record(rec, count, type, tail, tail_len);
    uint8_t *exact = malloc(n);
    memcpy(exact, rec, n);
    acr_event_t ev;
    int rc = acr_record_decode(exact, n, &ev);
    free(exact);
    free(rec);
    return rc;
}

Test(event_record, rejects_hostile_lengths)
{
    /* sale.refunded: id, sale_id, amount_minor (8 items). */
    const uint8_t ok[] = {0xa1, 'e', 0xa1, 'S', 0x05};
    ASSERT_EQ(decode_hand(8, ACR_EV_SALE_REFUNDED, ok, sizeof ok), 0);
    /* A str32 id claiming 2 GiB. */
    const uint8_t huge_str[] = {0xdb, 0x80, 0x00, 0x00, 0x00, 'e'};
    ASSERT_EQ(decode_hand(8, ACR_EV_SALE_REFUNDED, huge_str, sizeof huge_str), ACR_ECORRUPT);
    /* array32 / map32 headers where a field should be: millions of items claimed. */
    const uint8_t arr[] = {0xa1, 'e', 0xdd, 0x0a, 0x80, 0x00, 0x00, 0x05};
    ASSERT_EQ(decode_hand(8, ACR_EV_SALE_REFUNDED, arr, sizeof arr), ACR_ECORRUPT);
    const uint8_t arr16[] = {0xa1, 'e', 0xdc, 0x0a, 0x80, 0x00, 0x00};
    ASSERT_EQ(decode_hand(8, ACR_EV_SALE_REFUNDED, arr16, sizeof arr16), ACR_ECORRUPT);
    /* Wrong element count for the type, unknown type, wrong kinds. */
    ASSERT_EQ(decode_hand(9, ACR_EV_SALE_REFUNDED, ok, sizeof ok), ACR_ECORRUPT);
    ASSERT_EQ(decode_hand(8, ACR_EV__COUNT, ok, sizeof ok), ACR_ECORRUPT);
    ASSERT_EQ(decode_hand(8, 0, ok, sizeof ok), ACR_ECORRUPT);
    const uint8_t amount_as_str[] = {0xa1, 'e', 0xa1, 'S', 0xa1, '5'};
    ASSERT_EQ(decode_hand(8, ACR_EV_SALE_REFUNDED, amount_as_str, sizeof amount_as_str),
                 ACR_ECORRUPT);
    const uint8_t id_as_int[] = {0x01, 0xa1, 'S', 0x05};
    ASSERT_EQ(decode_hand(8, ACR_EV_SALE_REFUNDED, id_as_int, sizeof id_as_int),
                 ACR_ECORRUPT);
    const uint8_t required_nil[] = {0xa1, 'e', 0xc0, 0x05};
    ASSERT_EQ(decode_hand(8, ACR_EV_SALE_REFUNDED, required_nil, sizeof required_nil),
                 ACR_ECORRUPT);
    const uint8_t big_uint[] = {0xa1, 'e', 0xa1, 'S', 0xcf, 0xff, 0, 0, 0, 0, 0, 0, 0};
    ASSERT_EQ(decode_hand(8, ACR_EV_SALE_REFUNDED, big_uint, sizeof big_uint), ACR_ECORRUPT);
    const uint8_t short_int[] = {0xa1, 'e', 0xa1, 'S', 0xd2, 0xff, 0xff};
    ASSERT_EQ(decode_hand(8, ACR_EV_SALE_REFUNDED, short_int, sizeof short_int),
                 ACR_ECORRUPT);
    const uint8_t float_amt[] = {0xa1, 'e', 0xa1, 'S', 0xcb, 0, 0, 0, 0, 0, 0, 0, 0};
    ASSERT_EQ(decode_hand(8, ACR_EV_SALE_REFUNDED, float_amt, sizeof float_amt),
                 ACR_ECORRUPT);
    /* period.closed: through_seq is a UINT, a negative value is corrupt. */
    const uint8_t neg_uint[] = {0xa1, 'e', 0xa7, '2', '0', '2', '6', '-', '0', '7', 0xff,
                                0xa1, 'f', 0x00, 0xa2, '{', '}'};
    ASSERT_EQ(decode_hand(11, ACR_EV_PERIOD_CLOSED, neg_uint, sizeof neg_uint), ACR_ECORRUPT);
    /* The 5-byte array header claiming millions of items, alone. */
    const uint8_t lone[] = {0xdc, 0x0a, 0x80, 0x00, 0x00};
    acr_event_t ev;
    ASSERT_EQ(acr_record_decode(lone, sizeof lone, &ev), ACR_ECORRUPT);
    const uint8_t lone32[] = {0xdd, 0xff, 0xff, 0xff, 0xff};
    ASSERT_EQ(acr_record_decode(lone32, sizeof lone32, &ev), ACR_ECORRUPT);
}

/* Random mutations of valid records never crash and never read out of bounds. */
Test(event_record, fuzz_mutations)
{
    uint64_t x = 88172645463325252ULL;
    for (int t = 1; t < ACR_EV__COUNT; t++) {
        acr_event_t ev, back;
        fill(&ev, t, true);
        acr_buf_t b;
        acr_buf_init(&b);
        ASSERT_EQ(acr_record_encode(&ev, &b), 0);
        for (int round = 0; round < 3000; round++) {
            uint8_t *m = malloc(b.len);
            memcpy(m, b.data, b.len);
            for (int k = 0; k < 3; k++) {
                x ^= x << 13, x ^= x >> 7, x ^= x << 17;
                m[x % b.len] = (uint8_t)(x >> 32);
            }
            size_t n = (size_t)(x >> 40) % (b.len + 1);
            (void)acr_record_decode(m, n, &back);
            free(m);
        }
        acr_buf_destroy(&b);
    }
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Replay speed of the bare decoder over a buffer of mixed records. */
Test(event_record, decoder_speed, .timeout = 120)
{
    enum { N = 1024 };
    acr_buf_t b;
    acr_buf_init(&b);
    size_t off[N + 1];
    for (int i = 0; i < N; i++) {
        acr_event_t ev;
        /* Mostly sales, like a real log; a few of every type. */
        int t = i % 8 == 0 ? 1 + (i / 8) % (ACR_EV__COUNT - 1) : ACR_EV_SALE_RECORDED;
        fill(&ev, t, i % 3 != 0);
        off[i] = b.len;
        ASSERT_EQ(acr_record_encode(&ev, &b), 0);
    }
    off[N] = b.len;
    size_t rounds = 10000;
    uint64_t sink = 0;
    double t0 = now_s();
    for (size_t r = 0; r < rounds; r++) {
        for (int i = 0; i < N; i++) {
            acr_event_t ev;
            int rc = acr_record_decode(b.data + off[i], off[i + 1] - off[i], &ev);
            sink += (uint64_t)rc + ev.present + (uint64_t)ev.at_ms;
        }
    }
    double dt = now_s() - t0;
    double rate = (double)(rounds * N) / dt;
    fprintf(stderr, "decoder: %zu records (avg %zu bytes) in %.3f s = %.1f M records/s (%llu)\n",
            rounds * N, b.len / N, dt, rate / 1e6, (unsigned long long)(sink & 1));
    acr_buf_destroy(&b);
}
