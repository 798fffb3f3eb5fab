/* event_record.c - the stored record: canonical msgpack encoding and a bounded,
 * zero-copy decoder.
 *
 * The layout is documented in event.h. The encoder is hand-written so that the
 * bytes are canonical by construction (smallest integer encoding, str8/16/32 by
 * length, fixed-width recorded_at/version/at): idempotency compares content
 * bytes and the hash chain covers them, so one event must have one encoding.
 * The decoder is the replay hot path. msgpack-c's unpacker builds a tree and
 * allocates from declared counts (deps.md §7); this reader instead walks the
 * known positional layout once, never reads past the bytes it was given, never
 * allocates, and leaves string slices pointing into the input.
 */
#include "event_internal.h"

#include <stdatomic.h>
#include <string.h>

#include "accrue/date.h"

/* ---- encoding ------------------------------------------------------------ */

static void put_be(uint8_t *p, uint64_t v, int n)
{
    for (int i = n - 1; i >= 0; i--) {
        p[i] = (uint8_t)(v & 0xff);
        v >>= 8;
    }
}

/* Appends a msgpack int in its smallest encoding (msgpack-c's choice: unsigned
 * families for v >= 0). */
static void put_int(acr_buf_t *b, int64_t v)
{
    uint8_t *p = b->data + b->len;
    if (v >= 0) {
        uint64_t u = (uint64_t)v;
        if (u < 128) {
            p[0] = (uint8_t)u;
            b->len += 1;
        } else if (u <= 0xff) {
            p[0] = 0xcc, put_be(p + 1, u, 1), b->len += 2;
        } else if (u <= 0xffff) {
            p[0] = 0xcd, put_be(p + 1, u, 2), b->len += 3;
        } else if (u <= 0xffffffffu) {
            p[0] = 0xce, put_be(p + 1, u, 4), b->len += 5;
        } else {
            p[0] = 0xcf, put_be(p + 1, u, 8), b->len += 9;
        }
    } else if (v >= -32) {
        p[0] = (uint8_t)(int8_t)v;
        b->len += 1;
    } else if (v >= INT8_MIN) {
        p[0] = 0xd0, put_be(p + 1, (uint64_t)v, 1), b->len += 2;
    } else if (v >= INT16_MIN) {
        p[0] = 0xd1, put_be(p + 1, (uint64_t)v, 2), b->len += 3;
    } else if (v >= INT32_MIN) {
        p[0] = 0xd2, put_be(p + 1, (uint64_t)v, 4), b->len += 5;
    } else {
        p[0] = 0xd3, put_be(p + 1, (uint64_t)v, 8), b->len += 9;
    }
}

static void put_fixed(acr_buf_t *b, uint8_t marker, uint64_t v)
{
    b->data[b->len] = marker;
    put_be(b->data + b->len + 1, v, 8);
    b->len += 9;
}

/* Appends a msgpack str (room reserved by the caller: len + 5). */
static void put_str(acr_buf_t *b, const char *s, uint32_t len)
{
    uint8_t *p = b->data + b->len;
    size_t h;
    if (len < 32) {
        p[0] = (uint8_t)(0xa0 | len), h = 1;
    } else if (len <= 0xff) {
        p[0] = 0xd9, put_be(p + 1, len, 1), h = 2;
    } else if (len <= 0xffff) {
        p[0] = 0xda, put_be(p + 1, len, 2), h = 3;
    } else {
        p[0] = 0xdb, put_be(p + 1, len, 4), h = 5;
    }
    if (len > 0)
        memcpy(p + h, s, len);
    b->len += h + len;
}

static bool is_num_kind(int kind)
{
    return kind == ACR_FK_AMOUNT || kind == ACR_FK_UINT;
}

int acr_record_encode(const acr_event_t *ev, acr_buf_t *out)
{
    const acr_type_schema_t *sc = acr_event_schema(ev->type);
    if (sc == NULL || sc->field_count > ACR_RECORD_FIELDS_MAX)
        return ACR_EINVALID_VALUE;
    size_t need = 1 + 1 + 9 + 9 + 1 + 9 + 5 + ev->id.len;
    for (unsigned i = 0; i < sc->field_count; i++)
        need += 9 + (is_num_kind(acr__field_kind[sc->fields[i]]) ? 0 : ev->str[sc->fields[i]].len);
    int rc = acr_buf_reserve(out, need);
    if (rc != 0)
        return rc;
    out->data[out->len++] = (uint8_t)(0x90 | (6 + sc->field_count));
    out->data[out->len++] = ACR_RECORD_FMT;
    put_fixed(out, 0xd3, (uint64_t)ev->recorded_at_ms);
    put_fixed(out, 0xcf, ev->version);
    out->data[out->len++] = ev->type;
    put_fixed(out, 0xd3, (uint64_t)ev->at_ms);
    put_str(out, ev->id.ptr, ev->id.len);
    for (unsigned i = 0; i < sc->field_count; i++) {
        int f = sc->fields[i];
        if (!ACR_HAS(ev, f))
            out->data[out->len++] = 0xc0;
        else if (acr__field_kind[f] == ACR_FK_BOOL)
            out->data[out->len++] = ev->num[f] ? 0xc3 : 0xc2;
        else if (is_num_kind(acr__field_kind[f]))
            put_int(out, ev->num[f]);
        else
            put_str(out, ev->str[f].ptr, ev->str[f].len);
    }
    return 0;
}

void acr_record_patch(uint8_t *record, int64_t recorded_at_ms, uint64_t version)
{
    put_be(record + ACR_RECORD_RECORDED_AT_OFF + 1, (uint64_t)recorded_at_ms, 8);
    put_be(record + ACR_RECORD_VERSION_OFF + 1, version, 8);
}

/* ---- decoding ------------------------------------------------------------ */

/* Fields by value kind, as constant bitmasks over acr_field_t (kinds are per
 * field, not per type), so the hot loop tests a bit instead of a table. */
#define XX(name, json, kind)                                                                       \
    | ((kind) == ACR_FK_AMOUNT || (kind) == ACR_FK_UINT ? 1ull << ACR_F_##name : 0ull)
static const uint64_t num_mask = 0ull ACR_FIELD_MAP(XX);
#undef XX
#define XX(name, json, kind) | ((kind) == ACR_FK_UINT ? 1ull << ACR_F_##name : 0ull)
static const uint64_t uint_mask = 0ull ACR_FIELD_MAP(XX);
#undef XX
#define XX(name, json, kind) | ((kind) == ACR_FK_DATE ? 1ull << ACR_F_##name : 0ull)
static const uint64_t date_mask = 0ull ACR_FIELD_MAP(XX);
#undef XX
#define XX(name, json, kind) | ((kind) == ACR_FK_BOOL ? 1ull << ACR_F_##name : 0ull)
static const uint64_t bool_mask = 0ull ACR_FIELD_MAP(XX);
#undef XX

static inline uint64_t get_be64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return __builtin_bswap64(v);
}

static inline uint64_t get_be(const uint8_t *p, int n)
{
    switch (n) {
    case 1: return p[0];
    case 2: return (uint64_t)p[0] << 8 | p[1];
    case 4: return (uint64_t)p[0] << 24 | (uint64_t)p[1] << 16 | (uint64_t)p[2] << 8 | p[3];
    default: return get_be64(p);
    }
}

/* Reads a str at *pp (p < end); false on another kind or a length beyond end. */
static inline bool get_str(const uint8_t **pp, const uint8_t *end, acr_str_t *out)
{
    const uint8_t *p = *pp;
    size_t avail = (size_t)(end - p), h, n;
    uint8_t m = p[0];
    if ((m & 0xe0) == 0xa0) {
        h = 1, n = m & 0x1f;
    } else if (m == 0xd9 && avail >= 2) {
        h = 2, n = p[1];
    } else if (m == 0xda && avail >= 3) {
        h = 3, n = (size_t)get_be(p + 1, 2);
    } else if (m == 0xdb && avail >= 5) {
        h = 5, n = (size_t)get_be(p + 1, 4);
    } else {
        return false;
    }
    if (n > avail - h)
        return false;
    out->ptr = (const char *)p + h;
    out->len = (uint32_t)n;
    *pp = p + h + n;
    return true;
}

/* Reads an int at *pp (p < end) into *out; false on another kind, short input
 * or a uint64 above INT64_MAX. */
static inline bool get_int(const uint8_t **pp, const uint8_t *end, int64_t *out)
{
    const uint8_t *p = *pp;
    uint8_t m = p[0];
    if (m < 0x80 || m >= 0xe0) {
        *out = (int8_t)m;
        *pp = p + 1;
        return true;
    }
    if (m < 0xcc || m > 0xd3)
        return false;
    int n = 1 << (m & 3); /* 0xcc..0xcf and 0xd0..0xd3: 1, 2, 4, 8 bytes */
    if ((size_t)(end - p) < (size_t)n + 1)
        return false;
    uint64_t u = get_be(p + 1, n);
    if (m <= 0xcf) {
        if (u > (uint64_t)INT64_MAX)
            return false;
        *out = (int64_t)u;
    } else {
        int sh = 64 - 8 * n; /* sign-extend */
        *out = (int64_t)(u << sh) >> sh;
    }
    *pp = p + 1 + n;
    return true;
}

/* Decodes the positional fields (count, fields, required) at q into ev; returns the
 * first byte after them, NULL on any mismatch. Always inlined: called with a constant
 * schema, the loop unrolls and every field's kind tests fold away. */
static inline __attribute__((always_inline)) const uint8_t *
get_fields_of(const uint8_t *q, const uint8_t *end, unsigned count, const uint8_t *fields,
              uint64_t required, acr_event_t *ev)
{
    uint64_t present = 0;
#pragma GCC unroll 12
    for (unsigned i = 0; i < count; i++) {
        unsigned f = fields[i];
        uint64_t bit = 1ull << f;
        if (q >= end)
            return NULL;
        uint8_t m = *q;
        if ((m & 0xe0) == 0xa0 && !(bit & (num_mask | date_mask | bool_mask))) {
            /* fixstr: most fields of most records; keep the chain short */
            size_t n = m & 0x1f;
            if (n >= (size_t)(end - q))
                return NULL;
            ev->str[f].ptr = (const char *)q + 1;
            ev->str[f].len = (uint32_t)n;
            q += m - 0x9fu; /* = 1 + n, one add on the load-to-load chain */
            present |= bit;
            continue;
        }
        if (m == 0xc0) {
            if (required & bit)
                return NULL;
            ev->str[f].ptr = NULL;
            ev->str[f].len = 0;
            ev->num[f] = 0;
            q++;
            continue;
        }
        present |= bit;
        if (bit & bool_mask) {
            if (m != 0xc2 && m != 0xc3)
                return false;
            ev->num[f] = m == 0xc3;
            q++;
            continue;
        }
        if (bit & num_mask) {
            if (!get_int(&q, end, &ev->num[f]) || ((bit & uint_mask) && ev->num[f] < 0))
                return NULL;
            continue;
        }
        if (!get_str(&q, end, &ev->str[f]))
            return NULL;
        if (bit & date_mask) {
            int32_t day;
            if (!acr_date_parse(ev->str[f].ptr, ev->str[f].len, &day))
                return NULL;
            ev->num[f] = day;
        }
    }
    ev->present = present;
    return q;
}

static const uint8_t *get_fields(const uint8_t *q, const uint8_t *end,
                                 const acr_type_schema_t *sc, acr_event_t *ev)
{
    return get_fields_of(q, end, sc->field_count, sc->fields, sc->required, ev);
}

/* After the fields: nothing (fmt 1), or the actor, a non-empty str, and nothing. */
static int get_actor(const uint8_t *q, const uint8_t *end, bool has_actor, acr_event_t *ev)
{
    ev->actor.ptr = NULL;
    ev->actor.len = 0;
    if (q == NULL)
        return ACR_ECORRUPT;
    if (!has_actor)
        return q == end ? 0 : ACR_ECORRUPT;
    if (q >= end || !get_str(&q, end, &ev->actor) || ev->actor.len == 0 ||
        ev->actor.len > ACR_ACTOR_MAX)
        return ACR_ECORRUPT;
    return q == end ? 0 : ACR_ECORRUPT;
}

/* The element count a header must have: 6 + fields, + 1 with an actor; 0 for an
 * unknown fmt. */
static unsigned header_count(uint8_t fmt, unsigned field_count)
{
    return fmt == ACR_RECORD_FMT ? 6u + field_count
           : fmt == ACR_RECORD_FMT_ACTOR ? 7u + field_count : 0u;
}

/* sale.recorded is ~80 % of a log: its schema as constants (checked against the table). */
#define SALE_FIELD_COUNT 8
static const uint8_t sale_fields[SALE_FIELD_COUNT] = {
    ACR_F_SALE_ID, ACR_F_PARTNER_ID, ACR_F_CUSTOMER_ID, ACR_F_PRODUCT,
    ACR_F_AMOUNT_MINOR, ACR_F_CURRENCY, ACR_F_DEAL_ID, ACR_F_REP_ID};
#define SALE_REQUIRED                                                                              \
    ((1ull << ACR_F_SALE_ID) | (1ull << ACR_F_PARTNER_ID) | (1ull << ACR_F_CUSTOMER_ID) |         \
     (1ull << ACR_F_PRODUCT) | (1ull << ACR_F_AMOUNT_MINOR) | (1ull << ACR_F_CURRENCY))

static bool sale_schema_is_constant(void)
{
    const acr_type_schema_t *sc = &acr__schemas[ACR_EV_SALE_RECORDED];
    return sc->field_count == SALE_FIELD_COUNT && sc->required == SALE_REQUIRED &&
           memcmp(sc->fields, sale_fields, SALE_FIELD_COUNT) == 0;
}

int acr_record_check_header(const void *p, size_t len)
{
    const uint8_t *b = p;
    if (b == NULL || len < ACR_RECORD_CONTENT_OFF + 11)
        return 0;
    if ((b[0] & 0xf0) != 0x90 || b[2] != 0xd3 || b[11] != 0xcf || b[21] != 0xd3)
        return 0;
    unsigned type = b[20];
    if (type <= ACR_EV_NONE || type >= ACR_EV__COUNT ||
        (b[0] & 0x0f) != header_count(b[1], acr__schemas[type].field_count))
        return 0;
    return (int)type;
}

int acr_record_decode(const void *p, size_t len, acr_event_t *out)
{
    const uint8_t *b = p;
    /* Header through the id's first byte: fixarray, fmt, 2x9, type, 9. */
    if (b == NULL || len < ACR_RECORD_CONTENT_OFF + 11)
        return ACR_ECORRUPT;
    if ((b[0] & 0xf0) != 0x90 || b[2] != 0xd3 || b[11] != 0xcf || b[21] != 0xd3)
        return ACR_ECORRUPT;
    unsigned type = b[20];
    if (type <= ACR_EV_NONE || type >= ACR_EV__COUNT)
        return ACR_ECORRUPT;
    const acr_type_schema_t *sc = &acr__schemas[type];
    bool has_actor = b[1] == ACR_RECORD_FMT_ACTOR;
    if ((b[0] & 0x0f) != header_count(b[1], sc->field_count))
        return ACR_ECORRUPT;
    out->seq = 0;
    out->recorded_at_ms = (int64_t)get_be64(b + 3);
    out->version = get_be64(b + 12);
    out->type = (uint8_t)type;
    out->at_ms = (int64_t)get_be64(b + 22);
    const uint8_t *q = b + 30, *end = b + len;
    if (!get_str(&q, end, &out->id))
        return ACR_ECORRUPT;
    /* whether the constant sale schema matches the table: -1 until checked (any thread) */
    static _Atomic int sale_fast = -1;
    if (type == ACR_EV_SALE_RECORDED) {
        int fast = atomic_load_explicit(&sale_fast, memory_order_relaxed);
        if (__builtin_expect(fast < 0, 0)) {
            fast = sale_schema_is_constant();
            atomic_store_explicit(&sale_fast, fast, memory_order_relaxed);
        }
        if (fast)
            return get_actor(
                get_fields_of(q, end, SALE_FIELD_COUNT, sale_fields, SALE_REQUIRED, out), end,
                has_actor, out);
    }
    return get_actor(get_fields(q, end, sc, out), end, has_actor, out);
}

size_t acr_record_content_len(const void *rec, size_t len)
{
    acr_event_t ev;
    if (acr_record_decode(rec, len, &ev) != 0)
        return 0;
    if (ev.actor.len == 0)
        return len;
    size_t header = ev.actor.len < 32 ? 1 : 2; /* fixstr or str8: ACR_ACTOR_MAX < 256 */
    return (size_t)((const uint8_t *)ev.actor.ptr - (const uint8_t *)rec) - header;
}
