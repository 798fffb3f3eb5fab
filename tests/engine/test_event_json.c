/* test_event_json.c - client events in (JSON, msgpack) and out (JSON Lines):
 * every stateless error code with its field path, canonical content, and the
 * JSON -> record -> JSON -> record round trip. */
#include <jansson.h>
#include <msgpack.h>

#include "accrue/date.h"
#include "accrue/event.h"
#include "test_util.h"

#define SALE_DATA                                                                                  \
    "\"sale_id\":\"S1001\",\"partner_id\":\"P1\",\"customer_id\":\"C9\",\"product\":\"cloud\","    \
    "\"amount_minor\":120000,\"currency\":\"JPY\""

#define PLAN_DOC                                                                                   \
    "{\"plan_id\":\"standard\",\"version\":1,\"effective_from\":\"2026-01-01\","                   \
    "\"currency\":\"JPY\",\"ceiling_bp\":4000,\"rules\":[{\"match\":{\"tier\":\"gold\"},"         \
    "\"brackets\":[{\"from_minor\":0,\"rate_bp\":1500},{\"from_minor\":1000000,"                  \
    "\"rate_bp\":2500}]},{\"match\":{},\"brackets\":[{\"from_minor\":0,\"rate_bp\":1000}]}],"     \
    "\"clawback_days\":90,\"new_customer_bonus_minor\":10000,"                                     \
    "\"targets\":[{\"net_revenue_minor\":1500000,\"bonus_minor\":50000}],\"cap_bp\":3000}"

/* Valid events, one per client type, plus optional fields. */
static const char *const valid[] = {
    "{\"id\":\"e1\",\"type\":\"partner.registered\",\"at\":\"2026-07-01T00:00:00Z\",\"data\":{"
    "\"partner_id\":\"P1\",\"name\":\"Acme \\\"KK\\\" \\u00e9\\n\",\"kind\":\"reseller\","
    "\"tier\":\"gold\",\"plan_id\":\"standard\",\"currency\":\"JPY\",\"region\":\"apac\","
    "\"source\":\"inbound\"}}",
    "{\"id\":\"e2\",\"type\":\"partner.updated\",\"at\":\"2026-07-01T00:00:00Z\",\"data\":{"
    "\"partner_id\":\"P1\",\"tier\":\"silver\"}}",
    "{\"id\":\"e3\",\"type\":\"partner.status_changed\",\"at\":\"2026-07-01T00:00:00Z\",\"data\":{"
    "\"partner_id\":\"P1\",\"status\":\"suspended\",\"reason\":\"audit\"}}",
    "{\"id\":\"e4\",\"type\":\"rep.added\",\"at\":\"2026-07-01T00:00:00Z\",\"data\":{"
    "\"partner_id\":\"P1\",\"rep_id\":\"R1\",\"name\":\"Hana\"}}",
    "{\"id\":\"e5\",\"type\":\"training.completed\",\"at\":\"2026-07-01T00:00:00Z\",\"data\":{"
    "\"partner_id\":\"P1\",\"rep_id\":\"R1\",\"module\":\"basics\"}}",
    "{\"id\":\"e6\",\"type\":\"pipeline.defined\",\"at\":\"2026-07-01T00:00:00Z\",\"data\":{"
    "\"stages\":[{\"name\":\"registered\",\"exit_requires\":[\"amount\"]},"
    "{\"name\":\"proposal\"}]}}",
    "{\"id\":\"e7\",\"type\":\"deal.registered\",\"at\":\"2026-07-01T00:00:00Z\",\"data\":{"
    "\"deal_id\":\"D1\",\"partner_id\":\"P1\",\"customer_id\":\"C9\",\"amount_minor\":500000,"
    "\"currency\":\"JPY\",\"rep_id\":\"R1\",\"expected_close\":\"2026-09-30\",\"name\":\"big\"}}",
    "{\"id\":\"e8\",\"type\":\"deal.stage_changed\",\"at\":\"2026-07-01T00:00:00Z\",\"data\":{"
    "\"deal_id\":\"D1\",\"stage\":\"qualified\",\"expected_close\":\"2026-10-01\"}}",
    "{\"id\":\"e9\",\"type\":\"deal.closed\",\"at\":\"2026-07-01T00:00:00Z\",\"data\":{"
    "\"deal_id\":\"D1\",\"outcome\":\"won\"}}",
    "{\"id\":\"s-1001\",\"type\":\"sale.recorded\",\"at\":\"2026-07-03T10:00:00Z\",\"data\":{"
    SALE_DATA ",\"deal_id\":\"D1\",\"rep_id\":\"R1\"}}",
    "{\"id\":\"e11\",\"type\":\"sale.refunded\",\"at\":\"2026-07-04T10:00:00.250+09:00\",\"data\":{"
    "\"sale_id\":\"S1001\",\"amount_minor\":1000}}",
    "{\"id\":\"e12\",\"type\":\"plan.published\",\"at\":\"2026-07-01T00:00:00Z\",\"data\":{"
    "\"plan\":" PLAN_DOC "}}",
    "{\"id\":\"e13\",\"type\":\"adjustment.recorded\",\"at\":\"2026-07-01T00:00:00Z\",\"data\":{"
    "\"partner_id\":\"P1\",\"amount_minor\":-1000000000000000,\"currency\":\"KWD\","
    "\"reason\":\"fix\"}}",
};

static const char *const closed =
    "{\"id\":\"period.closed:2026-07\",\"type\":\"period.closed\",\"at\":\"2026-08-01T00:00:00Z\","
    "\"data\":{\"period\":\"2026-07\",\"through_seq\":42,"
    "\"fingerprint\":\"0123456789abcdef0123456789abcdef\",\"lines\":3,"
    "\"totals\":[{\"currency\":\"JPY\",\"amount_minor\":5}]}}";

static int parse(const char *json, acr_buf_t *out, acr_err_t *err)
{
    return acr_event_parse_json(json, strlen(json), 540, false, out, NULL, err);
}

static void roundtrip(const char *json, bool internal)
{
    acr_buf_t rec, line, rec2;
    acr_buf_init(&rec);
    acr_buf_init(&line);
    acr_buf_init(&rec2);
    acr_err_t err;
    int rc = acr_event_parse_json(json, strlen(json), 540, internal, &rec, NULL, &err);
    ASSERT_EQ_MSG(rc, 0, "%s: %s at %s", json, err.msg, err.field);
    acr_event_t ev;
    ASSERT_EQ(acr_record_decode(rec.data, rec.len, &ev), 0);
    static const uint8_t hash[ACR_HASH_LEN] = {0xde, 0xad, 0xbe, 0xef};
    ev.seq = 9;
    ASSERT_EQ(acr_event_to_json(&ev, hash, true, &line), 0);
    rc = acr_event_parse_json((const char *)line.data, line.len, 540, internal, &rec2, NULL,
                              &err);
    ASSERT_EQ_MSG(rc, 0, "re-parse %.*s: %s", (int)line.len, line.data, err.msg);
    ASSERT_BYTES_EQ(rec2.data, rec2.len, rec.data, rec.len);
    acr_buf_destroy(&rec);
    acr_buf_destroy(&line);
    acr_buf_destroy(&rec2);
}

Test(event_json, roundtrip_every_type)
{
    for (size_t i = 0; i < sizeof valid / sizeof *valid; i++)
        roundtrip(valid[i], false);
    roundtrip(closed, true);
}

Test(event_json, log_line_shape)
{
    acr_buf_t rec, line;
    acr_buf_init(&rec);
    acr_buf_init(&line);
    acr_err_t err;
    ASSERT_EQ(parse(valid[9], &rec, &err), 0);
    acr_record_patch(rec.data, 1783072800500LL, 1);
    acr_event_t ev;
    ASSERT_EQ(acr_record_decode(rec.data, rec.len, &ev), 0);
    ev.seq = 17;
    uint8_t hash[ACR_HASH_LEN];
    for (int i = 0; i < ACR_HASH_LEN; i++)
        hash[i] = (uint8_t)(i * 17);
    ASSERT_EQ(acr_event_to_json(&ev, hash, true, &line), 0);
    const char *want =
        "{\"seq\":17,\"recorded_at\":\"2026-07-03T10:00:00.500Z\",\"stream\":\"sale:S1001\","
        "\"version\":1,\"hash\":\"00112233445566778899aabbccddeeff\",\"id\":\"s-1001\","
        "\"type\":\"sale.recorded\",\"at\":\"2026-07-03T10:00:00Z\",\"data\":{" SALE_DATA
        ",\"deal_id\":\"D1\",\"rep_id\":\"R1\"}}";
    ASSERT_BYTES_EQ(line.data, line.len, want, strlen(want));
    acr_buf_reset(&line);
    ASSERT_EQ(acr_event_to_json(&ev, NULL, false, &line), 0);
    cr_assert(line.len > 0 && memcmp(line.data, "{\"id\":\"s-1001\"", 14) == 0);
    acr_buf_destroy(&rec);
    acr_buf_destroy(&line);
}

static void content_of(const char *json, acr_buf_t *rec)
{
    acr_err_t err;
    acr_buf_init(rec);
    ASSERT_EQ_MSG(parse(json, rec, &err), 0, "%s: %s", json, err.msg);
}

Test(event_json, canonical_content)
{
    acr_buf_t a, b, c;
    content_of("{\"id\":\"x\",\"type\":\"sale.refunded\",\"at\":\"2026-07-03T10:00:00Z\","
               "\"data\":{\"sale_id\":\"S1\",\"amount_minor\":5}}", &a);
    content_of("{\"data\":{\"amount_minor\":5,\"sale_id\":\"S1\"},\"at\":"
               "\"2026-07-03T19:00:00.000+09:00\",  \"type\":\"sale.refunded\",\"id\":\"x\","
               "\"expected_version\":3}", &b);
    ASSERT_BYTES_EQ(b.data, b.len, a.data, a.len);
    /* A plan with its keys in another order is the same content. */
    content_of("{\"id\":\"p\",\"type\":\"plan.published\",\"at\":\"2026-07-01T00:00:00Z\","
               "\"data\":{\"plan\":" PLAN_DOC "}}", &c);
    acr_buf_t d;
    content_of("{\"id\":\"p\",\"type\":\"plan.published\",\"at\":\"2026-07-01T00:00:00Z\","
               "\"data\":{\"plan\":{\"cap_bp\":3000,\"targets\":[{\"bonus_minor\":50000,"
               "\"net_revenue_minor\":1500000}],\"new_customer_bonus_minor\":10000,"
               "\"clawback_days\":90,\"rules\":[{\"brackets\":[{\"rate_bp\":1500,"
               "\"from_minor\":0},{\"from_minor\":1000000,\"rate_bp\":2500}],\"match\":{\"tier\":"
               "\"gold\"}},{\"match\":{},\"brackets\":[{\"from_minor\":0,\"rate_bp\":1000}]}],"
               "\"ceiling_bp\":4000,\"currency\":\"JPY\",\"effective_from\":\"2026-01-01\","
               "\"version\":1,\"plan_id\":\"standard\"}}}", &d);
    ASSERT_BYTES_EQ(d.data, d.len, c.data, c.len);
    acr_event_t ev;
    ASSERT_EQ(acr_record_decode(c.data, c.len, &ev), 0);
    char stream[80];
    acr_event_stream(&ev, stream, sizeof stream);
    ASSERT_STR_EQ(stream, "plan:standard");
    acr_buf_destroy(&a);
    acr_buf_destroy(&b);
    acr_buf_destroy(&c);
    acr_buf_destroy(&d);
}

Test(event_json, expected_version)
{
    acr_buf_t rec;
    acr_buf_init(&rec);
    acr_err_t err;
    int64_t v = 99;
    const char *with = "{\"id\":\"x\",\"type\":\"sale.refunded\",\"at\":\"2026-07-03T10:00:00Z\","
                       "\"expected_version\":0,\"data\":{\"sale_id\":\"S1\",\"amount_minor\":5}}";
    ASSERT_EQ(acr_event_parse_json(with, strlen(with), 0, false, &rec, &v, &err), 0);
    ASSERT_EQ(v, 0);
    const char *without = "{\"id\":\"x\",\"type\":\"sale.refunded\",\"at\":"
                          "\"2026-07-03T10:00:00Z\",\"data\":{\"sale_id\":\"S1\","
                          "\"amount_minor\":5}}";
    ASSERT_EQ(acr_event_parse_json(without, strlen(without), 0, false, &rec, &v, &err), 0);
    ASSERT_EQ(v, ACR_NO_EXPECTED_VERSION);
    acr_buf_destroy(&rec);
}

Test(event_json, streams)
{
    static const char *const want[] = {
        "partner:P1", "partner:P1", "partner:P1", "partner:P1", "partner:P1", "pipeline",
        "deal:D1",    "deal:D1",    "deal:D1",    "sale:S1001", "sale:S1001", "plan:standard",
        "partner:P1",
    };
    for (size_t i = 0; i < sizeof valid / sizeof *valid; i++) {
        acr_buf_t rec;
        content_of(valid[i], &rec);
        acr_event_t ev;
        ASSERT_EQ(acr_record_decode(rec.data, rec.len, &ev), 0);
        char s[80];
        size_t n = acr_event_stream(&ev, s, sizeof s);
        ASSERT_STR_EQ(s, want[i]);
        ASSERT_EQ(n, strlen(want[i]));
        acr_buf_destroy(&rec);
    }
}

#define EV(type, data)                                                                             \
    "{\"id\":\"bad-1\",\"type\":\"" type "\",\"at\":\"2026-07-03T10:00:00Z\",\"data\":{" data "}}"
#define SALE(extra) EV("sale.recorded", SALE_DATA extra)
#define PIPE(stages) EV("pipeline.defined", "\"stages\":" stages)
#define PLAN(doc) EV("plan.published", "\"plan\":" doc)

typedef struct bad_case {
    const char *json;
    int code;
    const char *field;
} bad_case_t;

static const bad_case_t bad[] = {
    {"{\"id\":", ACR_EMALFORMED_JSON, ""},
    {"[1,2]x", ACR_EMALFORMED_JSON, ""},
    {"{\"id\":\"a\",\"id\":\"b\",\"type\":\"sale.recorded\"}", ACR_EMALFORMED_JSON, ""},
    /* \u0000 is valid JSON: a NUL in a value is the field's error, as in msgpack */
    {"{\"id\":\"a\\u0000\"}", ACR_EINVALID_ID, "id"},
    {"[]", ACR_EMALFORMED_JSON, ""},
    {"{\"type\":\"sale.refunded\",\"at\":\"2026-07-03T10:00:00Z\",\"data\":{}}",
     ACR_EMISSING_FIELD, "id"},
    {"{\"id\":\"x\",\"at\":\"2026-07-03T10:00:00Z\",\"data\":{}}", ACR_EMISSING_FIELD, "type"},
    {"{\"id\":\"x\",\"type\":\"sale.refunded\",\"data\":{}}", ACR_EMISSING_FIELD, "at"},
    {"{\"id\":\"x\",\"type\":\"sale.refunded\",\"at\":\"2026-07-03T10:00:00Z\"}",
     ACR_EMISSING_FIELD, "data"},
    {EV("sale.refunded", "\"sale_id\":\"S1\""), ACR_EMISSING_FIELD, "data.amount_minor"},
    {EV("partner.registered", "\"partner_id\":\"P1\""), ACR_EMISSING_FIELD, "data.name"},
    {PIPE("[{\"exit_requires\":[]}]"), ACR_EMISSING_FIELD, "data.stages[0].name"},
    {"{\"id\":\"x\",\"type\":\"sale.refunded\",\"at\":\"2026-07-03T10:00:00Z\",\"data\":{},"
     "\"extra\":1}", ACR_EUNKNOWN_FIELD, "extra"},
    {SALE(",\"discount\":5"), ACR_EUNKNOWN_FIELD, "data.discount"},
    {EV("sale.refunded", "\"sale_id\":\"S1\",\"amount_minor\":5,\"currency\":\"JPY\""),
     ACR_EUNKNOWN_FIELD, "data.currency"},
    {PIPE("[{\"name\":\"a\",\"exit\":[]}]"), ACR_EUNKNOWN_FIELD, "data.stages[0].exit"},
    {"{\"id\":7,\"type\":\"sale.refunded\",\"at\":\"2026-07-03T10:00:00Z\",\"data\":{}}",
     ACR_EWRONG_TYPE, "id"},
    {"{\"id\":\"x\",\"type\":null,\"at\":\"2026-07-03T10:00:00Z\",\"data\":{}}", ACR_EWRONG_TYPE,
     "type"},
    {"{\"id\":\"x\",\"type\":\"sale.refunded\",\"at\":1783072800000,\"data\":{}}",
     ACR_EWRONG_TYPE, "at"},
    {"{\"id\":\"x\",\"type\":\"sale.refunded\",\"at\":\"2026-07-03T10:00:00Z\",\"data\":[]}",
     ACR_EWRONG_TYPE, "data"},
    {EV("sale.refunded", "\"sale_id\":\"S1\",\"amount_minor\":\"5\""), ACR_EWRONG_TYPE,
     "data.amount_minor"},
    {EV("sale.refunded", "\"sale_id\":\"S1\",\"amount_minor\":5.0"), ACR_EWRONG_TYPE,
     "data.amount_minor"},
    {EV("sale.refunded", "\"sale_id\":\"S1\",\"amount_minor\":null"), ACR_EWRONG_TYPE,
     "data.amount_minor"},
    {EV("sale.refunded", "\"sale_id\":null,\"amount_minor\":5"), ACR_EWRONG_TYPE,
     "data.sale_id"},
    {SALE(",\"rep_id\":null"), ACR_EWRONG_TYPE, "data.rep_id"},
    {EV("sale.refunded", "\"sale_id\":\"S1\",\"amount_minor\":5"), 0, ""},
    {"{\"id\":\"x\",\"type\":\"sale.refunded\",\"at\":\"2026-07-03T10:00:00Z\","
     "\"expected_version\":\"1\",\"data\":{\"sale_id\":\"S1\",\"amount_minor\":5}}",
     ACR_EWRONG_TYPE, "expected_version"},
    {PIPE("{}"), ACR_EWRONG_TYPE, "data.stages"},
    {PIPE("[{\"name\":\"a\",\"exit_requires\":\"amount\"}]"), ACR_EWRONG_TYPE,
     "data.stages[0].exit_requires"},
    {PLAN("[]"), ACR_EWRONG_TYPE, "data.plan"},
    {"{\"id\":\"x\",\"type\":\"sale.refunded\",\"at\":\"2026-07-03T10:00:00Z\","
     "\"expected_version\":-1,\"data\":{\"sale_id\":\"S1\",\"amount_minor\":5}}",
     ACR_EINVALID_VALUE, "expected_version"},
    {EV("sale.refunded", "\"sale_id\":\"S1\",\"amount_minor\":0"), ACR_EINVALID_VALUE,
     "data.amount_minor"},
    {EV("sale.refunded", "\"sale_id\":\"S1\",\"amount_minor\":-5"), ACR_EINVALID_VALUE,
     "data.amount_minor"},
    {EV("sale.recorded", "\"sale_id\":\"S1\",\"partner_id\":\"P1\",\"customer_id\":\"C9\","
                         "\"product\":\"cloud\",\"amount_minor\":0,\"currency\":\"JPY\""),
     ACR_EINVALID_VALUE, "data.amount_minor"},
    {EV("adjustment.recorded", "\"partner_id\":\"P1\",\"amount_minor\":0,\"currency\":\"JPY\","
                               "\"reason\":\"r\""),
     ACR_EINVALID_VALUE, "data.amount_minor"},
    {EV("sale.refunded", "\"sale_id\":\"S1\",\"amount_minor\":1000000000000001"),
     ACR_EINVALID_VALUE, "data.amount_minor"},
    {EV("adjustment.recorded", "\"partner_id\":\"P1\",\"amount_minor\":-1000000000000001,"
                               "\"currency\":\"JPY\",\"reason\":\"r\""),
     ACR_EINVALID_VALUE, "data.amount_minor"},
    {EV("sale.refunded", "\"sale_id\":\"S1\",\"amount_minor\":100000000000000000000"),
     ACR_EINVALID_VALUE, "data.amount_minor"}, /* beyond 64 bits: named too (issue 16) */
    {EV("deal.registered", "\"deal_id\":\"D1\",\"partner_id\":\"P1\",\"customer_id\":\"C\","
                           "\"amount_minor\":-1,\"currency\":\"JPY\""),
     ACR_EINVALID_VALUE, "data.amount_minor"},
    {EV("partner.registered", "\"partner_id\":\"P1\",\"name\":\"n\",\"kind\":\"vendor\","
                              "\"tier\":\"t\",\"plan_id\":\"p\",\"currency\":\"JPY\""),
     ACR_EINVALID_VALUE, "data.kind"},
    {EV("partner.registered", "\"partner_id\":\"P1\",\"name\":\"n\",\"kind\":\"broker\","
                              "\"tier\":\"t\",\"plan_id\":\"p\",\"currency\":\"JPY\","
                              "\"source\":\"cold\""),
     ACR_EINVALID_VALUE, "data.source"},
    {EV("partner.status_changed", "\"partner_id\":\"P1\",\"status\":\"Active\""),
     ACR_EINVALID_VALUE, "data.status"},
    {EV("deal.closed", "\"deal_id\":\"D1\",\"outcome\":\"draw\""), ACR_EINVALID_VALUE,
     "data.outcome"},
    {EV("partner.updated", "\"partner_id\":\"P1\""), ACR_EINVALID_VALUE, "data"},
    {EV("deal.stage_changed", "\"deal_id\":\"D1\",\"stage\":\"s\",\"expected_close\":"
                              "\"2026-02-30\""),
     ACR_EINVALID_VALUE, "data.expected_close"},
    {PIPE("[]"), ACR_EINVALID_VALUE, "data.stages"},
    {PIPE("[{\"name\":\"a\"},{\"name\":\"a\"}]"), ACR_EINVALID_VALUE, "data.stages[1].name"},
    {PIPE("[{\"name\":\"won\"}]"), ACR_EINVALID_VALUE, "data.stages[0].name"},
    {PIPE("[{\"name\":\"a\"},{\"name\":\"lost\"}]"), ACR_EINVALID_VALUE, "data.stages[1].name"},
    {PIPE("[{\"name\":\"a\",\"exit_requires\":[\"amount\",\"budget\"]}]"), ACR_EINVALID_VALUE,
     "data.stages[0].exit_requires[1]"},
    {PIPE("[{\"name\":\"a\",\"exit_requires\":[\"rep\",\"rep\"]}]"), ACR_EINVALID_VALUE,
     "data.stages[0].exit_requires[1]"},
    {PIPE("[{\"name\":\"a\\tb\"}]"), ACR_EINVALID_VALUE, "data.stages[0].name"},
    {PIPE("[{\"name\":\"\"}]"), ACR_EINVALID_VALUE, "data.stages[0].name"},
    {"{\"id\":\"bad id\",\"type\":\"sale.refunded\",\"at\":\"2026-07-03T10:00:00Z\","
     "\"data\":{}}", ACR_EINVALID_ID, "id"},
    {"{\"id\":\"\",\"type\":\"sale.refunded\",\"at\":\"2026-07-03T10:00:00Z\",\"data\":{}}",
     ACR_EINVALID_ID, "id"},
    {"{\"id\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\","
     "\"type\":\"sale.refunded\",\"at\":\"2026-07-03T10:00:00Z\",\"data\":{}}",
     ACR_EINVALID_ID, "id"},
    {EV("sale.refunded", "\"sale_id\":\"S/1\",\"amount_minor\":5"), ACR_EINVALID_ID,
     "data.sale_id"},
    {SALE(",\"deal_id\":\"D 1\""), ACR_EINVALID_ID, "data.deal_id"},
    {"{\"id\":\"x\",\"type\":\"sale.refunded\",\"at\":\"2026-07-03t10:00:00Z\",\"data\":{}}",
     ACR_EINVALID_TIMESTAMP, "at"},
    {"{\"id\":\"x\",\"type\":\"sale.refunded\",\"at\":\"2026-02-29T10:00:00Z\",\"data\":{}}",
     ACR_EINVALID_TIMESTAMP, "at"},
    {"{\"id\":\"x\",\"type\":\"sale.refunded\",\"at\":\"2026-07-03T10:00:00.1234Z\","
     "\"data\":{}}", ACR_EINVALID_TIMESTAMP, "at"},
    /* 1970-01-01T08:00Z is 1970-01-01 17:00 at +09:00; 1969-12-31T14:59Z is the 1969 side. */
    {"{\"id\":\"x\",\"type\":\"sale.refunded\",\"at\":\"1969-12-31T14:59:59Z\",\"data\":{}}",
     ACR_EINVALID_TIMESTAMP, "at"},
    {"{\"id\":\"x\",\"type\":\"sale.refunded\",\"at\":\"9999-12-31T15:00:00Z\",\"data\":{}}",
     ACR_EINVALID_TIMESTAMP, "at"},
    {EV("adjustment.recorded", "\"partner_id\":\"P1\",\"amount_minor\":5,\"currency\":\"jpy\","
                               "\"reason\":\"r\""),
     ACR_EINVALID_CURRENCY, "data.currency"},
    {EV("deal.registered", "\"deal_id\":\"D1\",\"partner_id\":\"P1\",\"customer_id\":\"C\","
                           "\"currency\":\"XXX\""),
     ACR_EINVALID_CURRENCY, "data.currency"},
    {EV("sale.voided", "\"sale_id\":\"S1\""), ACR_EUNKNOWN_TYPE, "type"},
    {EV("period.closed", "\"period\":\"2026-07\""), ACR_EFORBIDDEN_TYPE, "type"},
    {EV("rep.added", "\"partner_id\":\"P1\",\"rep_id\":\"R1\",\"name\":\""
                     "0123456789012345678901234567890123456789012345678901234567890123"
                     "0123456789012345678901234567890123456789012345678901234567890123"
                     "0123456789012345678901234567890123456789012345678901234567890123"
                     "0123456789012345678901234567890123456789012345678901234567890123x\""),
     ACR_ETOO_LARGE, "data.name"},
    {PLAN("{\"plan_id\":\"p\"}"), ACR_EINVALID_PLAN, NULL},
    {PLAN("{\"plan_id\":\"standard\",\"version\":1,\"effective_from\":\"2026-01-01\","
          "\"currency\":\"JPY\",\"ceiling_bp\":1000,\"rules\":[{\"match\":{},\"brackets\":"
          "[{\"from_minor\":0,\"rate_bp\":1500}]}]}"),
     ACR_EABOVE_CEILING, NULL},
};

Test(event_json, every_error_code)
{
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        acr_buf_t out;
        acr_buf_init(&out);
        acr_err_t err;
        int rc = parse(bad[i].json, &out, &err);
        ASSERT_EQ_MSG(rc, bad[i].code, "case %zu %s: got %s (%s: %s), want %s", i, bad[i].json,
                     acr_err_name(rc), err.field, err.msg, acr_err_name(bad[i].code));
        if (rc != 0) {
            ASSERT_EQ_MSG(out.len, 0, "case %zu: out untouched on error", i);
            ASSERT_EQ(err.code, rc);
            cr_assert(err.msg[0] != '\0', "case %zu has a message", i);
            if (bad[i].field != NULL)
                cr_assert(strcmp(err.field, bad[i].field) == 0, "case %zu %s: field %s, want %s",
                          i, bad[i].json, err.field, bad[i].field);
            else
                cr_assert(strncmp(err.field, "data.plan", 9) == 0, "case %zu: %s", i, err.field);
        }
        acr_buf_destroy(&out);
    }
}

Test(event_json, err_id_and_limits)
{
    acr_buf_t out;
    acr_buf_init(&out);
    acr_err_t err;
    err.line = 12;
    ASSERT_EQ(parse(SALE(",\"bogus\":1"), &out, &err), ACR_EUNKNOWN_FIELD);
    ASSERT_STR_EQ(err.id, "bad-1");
    ASSERT_EQ_MSG(err.line, 12, "line is the caller's");
    /* Event JSON above 64 KiB. */
    size_t n = 70 * 1024;
    char *big = malloc(n + 1);
    memset(big, ' ', n);
    big[n] = '\0';
    memcpy(big, valid[9], strlen(valid[9]));
    ASSERT_EQ(acr_event_parse_json(big, n, 0, false, &out, NULL, &err), ACR_ETOO_LARGE);
    free(big);
    /* period.closed is fine for the engine itself. */
    ASSERT_EQ(acr_event_parse_json(closed, strlen(closed), 0, true, &out, NULL, &err), 0);
    acr_buf_destroy(&out);
}

/* ---- msgpack input ------------------------------------------------------- */

static void pk_str(msgpack_packer *pk, const char *s)
{
    msgpack_pack_str_with_body(pk, s, strlen(s));
}

/* Packs the sale.refunded event {id,type,at,data{sale_id,amount_minor}}. */
static void pack_refund_at(msgpack_packer *pk, const char *id, int64_t amount, const char *at)
{
    msgpack_pack_map(pk, 4);
    pk_str(pk, "data");
    msgpack_pack_map(pk, 2);
    pk_str(pk, "amount_minor");
    msgpack_pack_int64(pk, amount);
    pk_str(pk, "sale_id");
    pk_str(pk, "S1");
    pk_str(pk, "id");
    pk_str(pk, id);
    pk_str(pk, "type");
    pk_str(pk, "sale.refunded");
    pk_str(pk, "at");
    pk_str(pk, at);
}

static void pack_refund(msgpack_packer *pk, const char *id, int64_t amount)
{
    pack_refund_at(pk, id, amount, "2026-07-03T19:00:00+09:00");
}

static int parse_mp(const void *p, size_t len, size_t *consumed, acr_buf_t *out, acr_err_t *err)
{
    /* Exact-size copy so that ASan sees any over-read. */
    uint8_t *copy = malloc(len ? len : 1);
    memcpy(copy, p, len);
    int rc = acr_event_parse_msgpack(copy, len, consumed, 0, out, NULL, err);
    free(copy);
    return rc;
}

Test(event_msgpack, same_record_as_json)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    pack_refund(&pk, "x", 5);
    pack_refund(&pk, "y", 6);
    acr_buf_t a, b;
    acr_buf_init(&a);
    content_of("{\"id\":\"x\",\"type\":\"sale.refunded\",\"at\":\"2026-07-03T10:00:00Z\","
               "\"data\":{\"sale_id\":\"S1\",\"amount_minor\":5}}", &b);
    acr_err_t err;
    size_t used = 0;
    uint8_t *p = (uint8_t *)sb.data;
    int64_t ev = 7;
    ASSERT_EQ_MSG(acr_event_parse_msgpack(p, sb.size, &used, 540, &a, &ev, &err), 0, "%s",
                 err.msg);
    ASSERT_EQ(ev, ACR_NO_EXPECTED_VERSION);
    cr_assert(used > 0 && used < sb.size);
    ASSERT_BYTES_EQ(a.data, a.len, b.data, b.len);
    size_t used2 = 0;
    ASSERT_EQ(acr_event_parse_msgpack(p + used, sb.size - used, &used2, 540, &a, NULL, &err),
                 0);
    ASSERT_EQ(used + used2, sb.size);
    acr_buf_destroy(&a);
    acr_buf_destroy(&b);
    msgpack_sbuffer_destroy(&sb);
}

Test(event_msgpack, errors)
{
    acr_buf_t out;
    acr_buf_init(&out);
    acr_err_t err;
    size_t used;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    pack_refund(&pk, "x", 5);
    /* Every truncation is malformed, with nothing consumed. */
    for (size_t n = 0; n < sb.size; n++) {
        ASSERT_EQ_MSG(parse_mp(sb.data, n, &used, &out, &err), ACR_EMALFORMED_MSGPACK, "%zu", n);
        ASSERT_EQ(used, 0);
    }
    /* Declared counts far beyond the input: rejected without allocating. */
    const uint8_t huge_map[] = {0xdf, 0x7f, 0xff, 0xff, 0xff, 0xa1, 'a', 0x01};
    ASSERT_EQ(parse_mp(huge_map, sizeof huge_map, &used, &out, &err), ACR_EMALFORMED_MSGPACK);
    const uint8_t huge_arr[] = {0x81, 0xa1, 'a', 0xdc, 0x0a, 0x80, 0x00, 0x00};
    ASSERT_EQ(parse_mp(huge_arr, sizeof huge_arr, &used, &out, &err), ACR_EMALFORMED_MSGPACK);
    const uint8_t huge_str[] = {0x81, 0xa1, 'a', 0xdb, 0xff, 0xff, 0xff, 0xff, 'x'};
    ASSERT_EQ(parse_mp(huge_str, sizeof huge_str, &used, &out, &err), ACR_EMALFORMED_MSGPACK);
    const uint8_t not_map[] = {0x92, 0x01, 0x02};
    ASSERT_EQ(parse_mp(not_map, sizeof not_map, &used, &out, &err), ACR_EMALFORMED_MSGPACK);
    const uint8_t int_key[] = {0x81, 0x01, 0x02};
    ASSERT_EQ(parse_mp(int_key, sizeof int_key, &used, &out, &err), ACR_EMALFORMED_MSGPACK);
    ASSERT_EQ_MSG(used, sizeof int_key, "framing was fine: the map is consumed");
    const uint8_t dup_key[] = {0x82, 0xa1, 'a', 0x01, 0xa1, 'a', 0x02};
    ASSERT_EQ(parse_mp(dup_key, sizeof dup_key, &used, &out, &err), ACR_EMALFORMED_MSGPACK);
    const uint8_t bad_utf8[] = {0x81, 0xa2, 'i', 'd', 0xa1, 0xff};
    ASSERT_EQ(parse_mp(bad_utf8, sizeof bad_utf8, &used, &out, &err), ACR_EMALFORMED_MSGPACK);
    const uint8_t never[] = {0x81, 0xa1, 'a', 0xc1};
    ASSERT_EQ(parse_mp(never, sizeof never, &used, &out, &err), ACR_EMALFORMED_MSGPACK);
    /* A float amount is wrong_type with its path; a u64 beyond int64 invalid_value. */
    msgpack_sbuffer_clear(&sb);
    msgpack_pack_map(&pk, 1);
    pk_str(&pk, "data");
    msgpack_pack_map(&pk, 1);
    pk_str(&pk, "amount_minor");
    msgpack_pack_double(&pk, 5.0);
    ASSERT_EQ(parse_mp(sb.data, sb.size, &used, &out, &err), ACR_EWRONG_TYPE);
    ASSERT_STR_EQ(err.field, "data.amount_minor");
    ASSERT_EQ(used, sb.size);
    msgpack_sbuffer_clear(&sb);
    msgpack_pack_map(&pk, 1);
    pk_str(&pk, "expected_version");
    msgpack_pack_uint64(&pk, UINT64_MAX);
    ASSERT_EQ(parse_mp(sb.data, sb.size, &used, &out, &err), ACR_EINVALID_VALUE);
    /* Validation errors come from the shared JSON path. */
    msgpack_sbuffer_clear(&sb);
    pack_refund(&pk, "x", 0);
    ASSERT_EQ(parse_mp(sb.data, sb.size, &used, &out, &err), ACR_EINVALID_VALUE);
    ASSERT_STR_EQ(err.field, "data.amount_minor");
    ASSERT_STR_EQ(err.id, "x");
    msgpack_sbuffer_clear(&sb);
    msgpack_pack_map(&pk, 4);
    pk_str(&pk, "id");
    pk_str(&pk, "c");
    pk_str(&pk, "type");
    pk_str(&pk, "period.closed");
    pk_str(&pk, "at");
    pk_str(&pk, "2026-07-03T10:00:00Z");
    pk_str(&pk, "data");
    msgpack_pack_map(&pk, 0);
    ASSERT_EQ(parse_mp(sb.data, sb.size, &used, &out, &err), ACR_EFORBIDDEN_TYPE);
    /* Nesting deeper than the limit. */
    msgpack_sbuffer_clear(&sb);
    msgpack_pack_map(&pk, 1);
    pk_str(&pk, "data");
    for (int i = 0; i < 100; i++)
        msgpack_pack_array(&pk, 1);
    msgpack_pack_nil(&pk);
    ASSERT_EQ(parse_mp(sb.data, sb.size, &used, &out, &err), ACR_ETOO_LARGE);
    ASSERT_EQ(out.len, 0);
    msgpack_sbuffer_destroy(&sb);
    acr_buf_destroy(&out);
}

/* Random mutations of a valid map never crash or over-read. */
Test(event_msgpack, fuzz_mutations)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    pack_refund(&pk, "x", 5);
    uint64_t x = 0x9e3779b97f4a7c15ULL;
    acr_buf_t out;
    acr_buf_init(&out);
    for (int round = 0; round < 20000; round++) {
        uint8_t m[256];
        memcpy(m, sb.data, sb.size);
        for (int k = 0; k < 2; k++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            m[x % sb.size] = (uint8_t)(x >> 32);
        }
        size_t used;
        acr_err_t err;
        (void)parse_mp(m, sb.size, &used, &out, &err);
        cr_assert(used <= sb.size);
    }
    acr_buf_destroy(&out);
    msgpack_sbuffer_destroy(&sb);
}

/* ---- the flat fast path against the jansson path ------------------------- */

/* Flat events the fast path takes (generator shapes), and near misses. */
static const char *const flat[] = {
    "{\"id\":\"s0\",\"type\":\"sale.recorded\",\"at\":\"2026-01-01T14:00:23Z\",\"data\":{"
    "\"sale_id\":\"S0\",\"partner_id\":\"P000100\",\"customer_id\":\"C0\",\"product\":\"cloud\","
    "\"amount_minor\":124000,\"currency\":\"JPY\",\"rep_id\":\"R100.1\"}}",
    " {\"data\":{\"amount_minor\":45000,\"sale_id\":\"S481\"},\"at\":\"2026-01-02T01:23:40+09:00\","
    "\"type\":\"sale.refunded\",\"id\":\"rf481a\",\"expected_version\":1} \r\n",
    "{\"id\":\"d1.0\",\"type\":\"deal.registered\",\"at\":\"2026-01-01T14:02:01Z\",\"data\":{"
    "\"deal_id\":\"D1\",\"partner_id\":\"P000098\",\"customer_id\":\"K98-0\",\"currency\":\"JPY\","
    "\"name\":\"Deal 1\",\"amount_minor\":12300000,\"expected_close\":\"2026-03-31\"}}",
    "{\"seq\":3,\"recorded_at\":\"x\",\"stream\":\"s\",\"version\":-0,\"id\":\"a\","
    "\"type\":\"deal.closed\",\"at\":\"2026-01-01T15:54:51.5Z\",\"data\":{\"deal_id\":\"D10\","
    "\"outcome\":\"lost\",\"reason\":\"no budget ~\\u007f\"}}",
    "{\"id\":\"x\",\"type\":\"sale.refunded\",\"at\":\"2026-07-03T10:00:00Z\",\"data\":{"
    "\"sale_id\":\"S1\",\"amount_minor\":-0}}",
    "{\"id\":\"x\",\"type\":\"sale.refunded\",\"at\":\"2026-07-03T10:00:00Z\",\"data\":{"
    "\"sale_id\":\"S1\",\"amount_minor\":012}}",
    "{\"id\":\"x\",\"type\":\"sale.refunded\",\"at\":\"2026-07-03T10:00:00Z\",\"data\":{"
    "\"sale_id\":\"S1\",\"amount_minor\":999999999999999999}}",
    "{\"id\":\"x\",\"type\":\"sale.refunded\",\"at\":\"2026-07-03T10:00:00Z\",\"data\":{"
    "\"sale_id\":\"S1\",\"amount_minor\":1e3}}",
    "{\"id\":\"x\",\"type\":\"sale.refunded\",\"at\":\"2026-07-03T10:00:00Z\",\"data\":{"
    "\"sale_id\":\"S1\",\"sale_id\":\"S1\",\"amount_minor\":5}}",
    "{\"id\":\"x\",\"type\":\"sale.refunded\",\"at\":\"2026-07-03T10:00:00Z\",\"at\":\"2026-07-03T10:00:00Z\","
    "\"data\":{\"sale_id\":\"S1\",\"amount_minor\":5}}",
    "{\"id\":\"x\",\"type\":\"sale.refunded\",\"at\":\"2026-07-03T10:00:00Z\",\"data\":{"
    "\"sale_id\":\"S1\",\"amount_minor\":5},}",
    "{\"id\":\"x\",\"type\":\"sale.refunded\",\"at\":\"2026-07-03T10:00:00Z\",\"data\":{"
    "\"sale_id\":\"S1\",\"amount_minor\":5}} x",
    "{\"id\":\"x\",\"type\":\"partner.updated\",\"at\":\"2026-07-03T10:00:00Z\",\"data\":{"
    "\"partner_id\":\"P1\",\"name\":\"tab\there\"}}",
    "{\"id\":\"x\",\"type\":\"partner.updated\",\"at\":\"2026-07-03T10:00:00Z\",\"data\":{"
    "\"partner_id\":\"P1\",\"name\":\"caf\xc3\xa9\"}}",
    "{\"id\":\"x\",\"type\":\"partner.updated\",\"at\":\"2026-07-03T10:00:00Z\",\"data\":{"
    "\"partner_id\":\"P1\",\"name\":\"bad \xc3\"}}",
};

/* Both buffers hold the same bytes (memcmp is not called on empty ones). */
static void same_bytes(const acr_buf_t *got, const acr_buf_t *want)
{
    ASSERT_EQ_MSG(got->len, want->len, "record lengths %zu and %zu", got->len, want->len);
    if (want->len > 0)
        ASSERT_BYTES_EQ(got->data, got->len, want->data, want->len);
}

/* The same event with the engine field "hash" spelled with an escape in front: the
 * fast path never takes it, the jansson path ignores it. */
static char *force_slow(const char *json, size_t len, size_t *out_len)
{
    size_t i = 0;
    while (i < len && strchr(" \t\r\n", json[i]) != NULL && json[i] != '\0')
        i++;
    if (i >= len || json[i] != '{')
        return NULL;
    size_t j = i + 1;
    while (j < len && strchr(" \t\r\n", json[j]) != NULL && json[j] != '\0')
        j++;
    const char *ins = j < len && json[j] == '}' ? "\"\\u0068ash\":0" : "\"\\u0068ash\":0,";
    size_t n = strlen(ins);
    char *out = malloc(len + n + 1);
    memcpy(out, json, i + 1);
    memcpy(out + i + 1, ins, n);
    memcpy(out + i + 1 + n, json + i + 1, len - i - 1);
    *out_len = len + n;
    out[*out_len] = '\0';
    return out;
}

/* Parses json both ways; asserts the same verdict, error and record. */
static void same_both_ways(const char *json, size_t len, const char *what)
{
    size_t slen;
    char *slow = force_slow(json, len, &slen);
    if (slow == NULL)
        return;
    acr_buf_t a, b;
    acr_buf_init(&a);
    acr_buf_init(&b);
    acr_err_t ea, eb;
    int64_t va = 5, vb = 6;
    int ra = acr_event_parse_json(json, len, 540, false, &a, &va, &ea);
    int rb = acr_event_parse_json(slow, slen, 540, false, &b, &vb, &eb);
    ASSERT_EQ_MSG(ra, rb, "%s: %.*s: fast %s, slow %s (%s)", what, (int)len, json,
                 acr_err_name(ra), acr_err_name(rb), eb.msg);
    ASSERT_EQ(ea.code, eb.code);
    ASSERT_STR_EQ(ea.field, eb.field);
    ASSERT_STR_EQ(ea.id, eb.id);
    if (strstr(eb.msg, "column") == NULL) /* a column moves with the inserted member */
        ASSERT_STR_EQ(ea.msg, eb.msg);
    ASSERT_EQ(va, vb);
    same_bytes(&a, &b);
    free(slow);
    acr_buf_destroy(&a);
    acr_buf_destroy(&b);
}

Test(event_fast, same_as_jansson_path)
{
    for (size_t i = 0; i < sizeof valid / sizeof *valid; i++)
        same_both_ways(valid[i], strlen(valid[i]), "valid");
    for (size_t i = 0; i < sizeof flat / sizeof *flat; i++)
        same_both_ways(flat[i], strlen(flat[i]), "flat");
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        same_both_ways(bad[i].json, strlen(bad[i].json), "bad");
}

/* Random byte mutations of flat events: both paths agree on every one. */
Test(event_fast, fuzz_same_as_jansson_path)
{
    static const char alphabet[] = "{}[]\":,-0123456789.eE \\ntux\x7f\x80\xc3";
    uint64_t x = 0x2545f4914f6cdd1dULL;
    for (int round = 0; round < 40000; round++) {
        const char *src = flat[round % 5];
        size_t len = strlen(src);
        char m[512];
        memcpy(m, src, len);
        for (int k = 0; k < 1 + round % 3; k++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            size_t at = (size_t)(x % len);
            m[at] = (x >> 40) & 1 ? alphabet[(x >> 20) % (sizeof alphabet - 1)]
                                  : (char)(x >> 32);
        }
        same_both_ways(m, len, "mutation");
    }
}

/* ---- msgpack input against JSON input, byte for byte --------------------- */

static void pack_json(msgpack_packer *pk, json_t *v)
{
    if (json_is_object(v)) {
        msgpack_pack_map(pk, json_object_size(v));
        const char *k;
        json_t *e;
        json_object_foreach(v, k, e) {
            pk_str(pk, k);
            pack_json(pk, e);
        }
    } else if (json_is_array(v)) {
        msgpack_pack_array(pk, json_array_size(v));
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e) pack_json(pk, e);
    } else if (json_is_string(v)) {
        msgpack_pack_str_with_body(pk, json_string_value(v), json_string_length(v));
    } else if (json_is_integer(v)) {
        msgpack_pack_int64(pk, json_integer_value(v));
    } else if (json_is_real(v)) {
        msgpack_pack_double(pk, json_real_value(v));
    } else if (json_is_boolean(v)) {
        if (json_is_true(v))
            msgpack_pack_true(pk);
        else
            msgpack_pack_false(pk);
    } else {
        msgpack_pack_nil(pk);
    }
}

/* json as msgpack (NULL when jansson cannot load it). */
static bool to_msgpack(const char *json, msgpack_sbuffer *sb)
{
    json_t *root = json_loads(json, JSON_REJECT_DUPLICATES, NULL);
    if (root == NULL)
        return false;
    msgpack_packer pk;
    msgpack_sbuffer_clear(sb);
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    pack_json(&pk, root);
    json_decref(root);
    return true;
}

static void same_json_msgpack(const char *json)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    if (!to_msgpack(json, &sb) || strstr(json, "period.closed") != NULL) {
        msgpack_sbuffer_destroy(&sb);
        return;
    }
    acr_buf_t a, b;
    acr_buf_init(&a);
    acr_buf_init(&b);
    acr_err_t ea, eb;
    int64_t va = 5, vb = 6;
    size_t used = 0;
    int ra = acr_event_parse_json(json, strlen(json), 540, false, &a, &va, &ea);
    int rb = acr_event_parse_msgpack((const uint8_t *)sb.data, sb.size, &used, 540, &b, &vb, &eb);
    if (ra == ACR_EMALFORMED_JSON && rb == ACR_EMALFORMED_MSGPACK)
        ra = rb; /* not an object: each format's own code */
    ASSERT_EQ_MSG(ra, rb, "%s: json %s, msgpack %s (%s)", json, acr_err_name(ra),
                 acr_err_name(rb), eb.msg);
    ASSERT_STR_EQ(ea.field, eb.field);
    cr_assert(strcmp(ea.id, eb.id) == 0 || (ra == ACR_EWRONG_TYPE && eb.id[0] == '\0'),
              "%s: id %s / %s", json, ea.id, eb.id); /* a msgpack float fails before the id */
    ASSERT_EQ(va, vb);
    ASSERT_EQ(used, sb.size);
    same_bytes(&a, &b);
    /* And the msgpack jansson path: a leading "hash": nil forces it. */
    if ((uint8_t)sb.data[0] >= 0x80 && (uint8_t)sb.data[0] < 0x8f) {
        size_t n = sb.size + 6;
        uint8_t *m = malloc(n);
        m[0] = (uint8_t)(sb.data[0] + 1);
        memcpy(m + 1, "\xa4hash\xc0", 6);
        memcpy(m + 7, sb.data + 1, sb.size - 1);
        acr_buf_t c;
        acr_buf_init(&c);
        acr_err_t ec;
        int rc = acr_event_parse_msgpack(m, n, &used, 540, &c, NULL, &ec);
        ASSERT_EQ_MSG(rc, rb, "%s: slow msgpack %s", json, acr_err_name(rc));
        ASSERT_STR_EQ(ec.field, eb.field);
        ASSERT_STR_EQ(ec.msg, eb.msg);
        ASSERT_EQ(used, n);
        same_bytes(&c, &b);
        acr_buf_destroy(&c);
        free(m);
    }
    acr_buf_destroy(&a);
    acr_buf_destroy(&b);
    msgpack_sbuffer_destroy(&sb);
}

Test(event_msgpack, same_records_as_json_every_case)
{
    for (size_t i = 0; i < sizeof valid / sizeof *valid; i++)
        same_json_msgpack(valid[i]);
    for (size_t i = 0; i < sizeof flat / sizeof *flat; i++)
        same_json_msgpack(flat[i]);
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        same_json_msgpack(bad[i].json);
}

/* A ledger west of UTC: a local 9999-12-31 evening is 10000-01-01 in UTC, which the canonical
 * form (four-digit years) cannot write, so `log` could not give back what `append` took. Such
 * an `at` is invalid_timestamp on both input paths; the last instant that prints is taken. */
Test(event_json, utc_year_10000_refused_west_of_utc)
{
    static const char *const ats[] = {"9999-12-31T23:30:00-05:00", "9999-12-31T12:00:00-12:00",
                                      "9999-12-31T23:59:59.999Z"};
    static const int want[] = {ACR_EINVALID_TIMESTAMP, ACR_EINVALID_TIMESTAMP, 0};
    for (size_t i = 0; i < sizeof ats / sizeof *ats; i++) {
        char json[256];
        snprintf(json, sizeof json,
                 "{\"id\":\"x\",\"type\":\"sale.refunded\",\"at\":\"%s\","
                 "\"data\":{\"sale_id\":\"S1\",\"amount_minor\":5}}",
                 ats[i]);
        acr_buf_t out;
        acr_buf_init(&out);
        acr_err_t err;
        int rc = acr_event_parse_json(json, strlen(json), -720, false, &out, NULL, &err);
        ASSERT_EQ_MSG(rc, want[i], "json at %s: %s", ats[i], rc ? err.msg : "accepted");
        if (rc != 0)
            cr_assert(strcmp(err.field, "at") == 0, "field %s", err.field);
        acr_buf_destroy(&out);

        msgpack_sbuffer sb;
        msgpack_sbuffer_init(&sb);
        msgpack_packer pk;
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        pack_refund_at(&pk, "x", 5, ats[i]);
        size_t used = 0;
        acr_buf_init(&out);
        uint8_t *copy = malloc(sb.size);
        memcpy(copy, sb.data, sb.size);
        rc = acr_event_parse_msgpack(copy, sb.size, &used, -720, &out, NULL, &err);
        free(copy);
        ASSERT_EQ_MSG(rc, want[i], "msgpack at %s: %s", ats[i], rc ? err.msg : "accepted");
        acr_buf_destroy(&out);
        msgpack_sbuffer_destroy(&sb);
    }
}
