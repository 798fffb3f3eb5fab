/* event_internal.h - tables shared by the event codecs (event.c, event_record.c,
 * event_json.c), all of engine/event. Nothing outside that part includes it. */
#ifndef ACCRUE_EVENT_INTERNAL_H
#define ACCRUE_EVENT_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "accrue/event.h"

/* The value kind (acr_field_kind_t) of each field, indexed by acr_field_t. */
extern const uint8_t acr__field_kind[ACR_F__COUNT];

/* Every type's schema, indexed by acr_event_type_t ([0] is empty). */
extern const acr_type_schema_t acr__schemas[ACR_EV__COUNT];

/* true when s[0..len) is one of the values of an ACR_FK_ENUM field. */
bool acr__enum_valid(int field, const char *s, size_t len);
/* A human list of the values of an enum field ("won|lost"), "" for others. */
const char *acr__enum_values(int field);

/* true when s[0..len) matches [A-Za-z0-9._:-]{1,64}. */
bool acr__id_valid(const char *s, size_t len);

/* Finds the top-level string member "plan_id" of a compact JSON object text
 * (the stored plan document); false when there is none. */
bool acr__plan_id_of(const char *json, size_t len, acr_str_t *out);
/* The same for any top-level string member; key is spelled "\"name\":\"". */
bool acr__json_top_id(const char *json, size_t len, const char *key, acr_str_t *out);

#endif
