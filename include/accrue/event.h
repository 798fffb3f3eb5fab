/* event.h - the stored record and the event codecs (engine/event), over the event
 * vocabulary of schema.h.
 *
 * Every event is one of the types of events.md. Its data fields come from one
 * table (ACR_FIELD_MAP, schema.h) and each type lists which fields it has (schema), so
 * the JSON parser, the msgpack record encoder/decoder and the JSON printer are
 * all driven by the same tables.
 *
 * The stored record (the LMDB value after the 16-byte chain hash) is one
 * msgpack fixarray, laid out for the replay hot path:
 *
 *   [0] fmt            positive fixint, ACR_RECORD_FMT
 *   [1] recorded_at_ms 0xd3 + int64 BE  (fixed width: patched at commit)
 *   [2] version        0xcf + uint64 BE (fixed width: patched at commit)
 *   [3] type           positive fixint (acr_event_type_t)
 *   [4] at_ms          0xd3 + int64 BE
 *   [5] id             str
 *   [6..] the type's fields in schema order; nil when an optional one is absent
 *   [last] actor       str, who appended it (fmt 2 only; records of fmt 1, written
 *                      before the actor existed, end with the fields)
 *
 * Bytes from ACR_RECORD_CONTENT_OFF up to the actor are the event's canonical
 * content (type, at, id, data): two submissions are "byte-identical" for
 * idempotency exactly when these bytes are equal (acr_record_content_len), whoever
 * sent them. The actor is added by the append itself (a parser's record is fmt 1,
 * without one): it is part of the stored bytes, so the chain covers it, but not of
 * the content, so a statement or fingerprint never depends on it. JSON-valued fields (stages, plan,
 * totals) are stored as msgpack str holding compact JSON with sorted keys
 * (stages normalised to [{"exit_requires":[...],"name":...}]). Integers use
 * their smallest msgpack encoding, strings fixstr/str8/16/32 by length; DATE
 * fields are stored as their "YYYY-MM-DD" str, enums and currencies as str.
 */
#ifndef ACCRUE_EVENT_H
#define ACCRUE_EVENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "accrue/buf.h"
#include "accrue/error.h"
#include "accrue/schema.h"

#define ACR_RECORD_FMT 1               /* a record without actor (as parsed; stored before it) */
#define ACR_RECORD_FMT_ACTOR 2         /* a committed record ending with its actor */
#define ACR_RECORD_FIELDS_MAX 8        /* 6 + 8 + actor = 15: the record stays a fixarray */
#define ACR_ACTOR_MAX 96               /* bytes of an actor ("token:<name>", "cli:<user>") */
#define ACR_RECORD_RECORDED_AT_OFF 2  /* offset of the 0xd3 marker of recorded_at_ms */
#define ACR_RECORD_VERSION_OFF 11     /* offset of the 0xcf marker of version */
#define ACR_RECORD_CONTENT_OFF 20     /* first byte of the canonical content */
#define ACR_HASH_LEN 16               /* XXH3-128, stored big-endian before the record */

/* Schema of one type: its fields in stored order and which are required. */
typedef struct acr_type_schema {
    const char *name;       /* wire name, "sale.recorded" */
    uint8_t field_count;    /* fields in stored order */
    uint8_t fields[12];     /* acr_field_t values */
    uint64_t required;      /* bitmask over acr_field_t */
} acr_type_schema_t;

/* The schema of a type, NULL for ACR_EV_NONE or out of range. */
const acr_type_schema_t *acr_event_schema(int type);
/* Type from its wire name; ACR_EV_NONE when unknown. */
int acr_event_type_from_name(const char *name, size_t len);
const char *acr_event_type_name(int type);
const char *acr_field_name(int field);

/* expected_version is not part of the stored event (events.md, Envelope): the
 * parsers return it through out_expected_version (may be NULL), set to the
 * value (>= 0) when the client gave one, else to ACR_NO_EXPECTED_VERSION. */
#define ACR_NO_EXPECTED_VERSION (-1)

/* The id of the close of period P is ACR_CLOSE_ID_PREFIX "P" (the engine finds a close by
 * it): a client event's id may not begin with it (invalid_id). */
#define ACR_CLOSE_ID_PREFIX "period.closed:"

/* Parses one client event (JSON object text) and appends its stored record
 * (recorded_at and version 0, to be patched at commit) to out. Applies every
 * stateless rule of events.md: envelope and data fields, unknown fields, id
 * pattern, timestamps (local date 1970..9999 under utc_offset_min), currency
 * codes, amount limits and signs, enums, string lengths, the pipeline stage
 * list, plan document validity (invalid_plan, above_ceiling), and refuses a
 * client period.closed (forbidden_type) and a client id in the closes' namespace
 * (ACR_CLOSE_ID_PREFIX, invalid_id) unless allow_internal. On error, out
 * is left as it was and err says code, field and reason (err->id filled when
 * readable; err->line is the caller's business).
 * A JSON null counts as a present value of the wrong type (wrong_type), never
 * as an absent field. The engine fields of a log line ("seq", "recorded_at",
 * "stream", "version", "actor", "hash") are accepted and ignored (cli.md, log): an
 * actor is never an input.
 * Errors: ACR_EMALFORMED_JSON (also duplicate keys), ACR_ETOO_LARGE,
 * ACR_EMISSING_FIELD, ACR_EUNKNOWN_FIELD, ACR_EWRONG_TYPE, ACR_EINVALID_VALUE,
 * ACR_EINVALID_ID, ACR_EINVALID_TIMESTAMP, ACR_EINVALID_CURRENCY,
 * ACR_EUNKNOWN_TYPE, ACR_EFORBIDDEN_TYPE, ACR_EINVALID_PLAN, ACR_EABOVE_CEILING
 * (from acr_plan_parse; its "plan..." field path is prefixed with "data."),
 * ACR_ENOMEM. */
int acr_event_parse_json(const char *text, size_t len, int32_t utc_offset_min,
                         bool allow_internal, acr_buf_t *out, int64_t *out_expected_version,
                         acr_err_t *err);

/* The same for one msgpack map event (keys as in JSON) at p[0..len): sets
 * *consumed to the bytes the map took (also on validation errors, so a caller
 * can go on to the next map; 0 when the framing itself is bad). Bounded: never
 * trusts a declared count beyond the bytes that remain. malformed_msgpack on
 * bad framing, non-string keys, duplicate keys or invalid UTF-8; msgpack
 * float/bin/ext values are wrong_type. Client events only (no period.closed). */
int acr_event_parse_msgpack(const uint8_t *p, size_t len, size_t *consumed,
                            int32_t utc_offset_min, acr_buf_t *out,
                            int64_t *out_expected_version, acr_err_t *err);

/* Encodes ev (type, at_ms, id, recorded_at_ms, version and present fields)
 * as a stored record appended to out. Used for engine-written events. */
int acr_record_encode(const acr_event_t *ev, acr_buf_t *out);
/* (Returns 0, ACR_ENOMEM, or ACR_EINVALID_VALUE for an unknown type. The
 * caller vouches for the values: ids, enums, amounts are not re-checked.) */

/* Decodes a stored record (bounded; zero-copy: slices point into p; no
 * allocation). Sets seq to 0 (the caller knows it), every header field, id,
 * present, and str/num of each field of the type's schema (absent ones to
 * NULL/0; DATE fields get both the str and the day number). Slots of fields
 * outside the type's schema are left untouched. ACR_ECORRUPT when the bytes
 * are not a well-formed record: short, trailing bytes, wrong element count
 * for the type, unknown type or fmt, wrong value kinds, a required field nil,
 * a negative UINT, a bad stored date. */
int acr_record_decode(const void *p, size_t len, acr_event_t *out);

/* Checks only the fixed header of a stored record (the checks of acr_record_decode
 * before the id: length, fmt, markers, a known type, the element count of its schema)
 * and returns its type (> 0), or 0 when the header is not well-formed. at_ms is then
 * the big-endian int64 at p + ACR_RECORD_CONTENT_OFF + 2. For a reader that decodes only
 * some types: the others still need a chain check, not a decode. */
int acr_record_check_header(const void *p, size_t len);

/* The bytes of a well-formed record without its actor element (len for a record of
 * fmt 1): the canonical content is rec[ACR_RECORD_CONTENT_OFF .. that). */
size_t acr_record_content_len(const void *rec, size_t len);

/* Patches recorded_at_ms and version into an encoded record in place. */
void acr_record_patch(uint8_t *record, int64_t recorded_at_ms, uint64_t version);

/* The stream name (events.md, Streams) into out; returns its length
 * (truncated to cap-1, always NUL-terminated). */
size_t acr_event_stream(const acr_event_t *ev, char *out, size_t cap);

/* Appends ev as one JSON object line (no newline): engine fields first
 * ("seq","recorded_at","stream","version","actor","hash"; "actor" only when the
 * record has one, "hash" only when hash is not NULL) when with_engine_fields,
 * then "id","type","at","data". JSON-valued fields are emitted as JSON, so
 * the output re-parses with acr_event_parse_json into the same content. */
int acr_event_to_json(const acr_event_t *ev, const uint8_t hash[ACR_HASH_LEN],
                      bool with_engine_fields, acr_buf_t *out);


#endif
