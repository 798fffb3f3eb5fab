/* fuzz_event_json.c - the JSON event parser and validator.
 *
 * Input: one JSON event as a client sends it. Oracles beyond "no crash, no
 * leak, no UB": an accepted event's record decodes (acr_record_decode), and
 * printing it as JSON and parsing that again gives the same canonical
 * content bytes (event.h: the log output re-parses into the same content).
 */
#include <stdint.h>
#include <string.h>

#include "accrue/event.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    acr_buf_t rec, js, rec2;
    acr_buf_init(&rec);
    acr_buf_init(&js);
    acr_buf_init(&rec2);
    acr_err_t err;
    int64_t ev_version = 0;
    /* +09:00 exercises the local-date rules; allow_internal covers period.closed. */
    int rc = acr_event_parse_json((const char *)data, size, 540, true, &rec, &ev_version, &err);
    if (rc == 0) {
        FUZZ_ASSERT(rec.len > ACR_RECORD_CONTENT_OFF, "record shorter than its header");
        acr_event_t ev;
        memset(&ev, 0, sizeof ev);
        FUZZ_ASSERT(acr_record_decode(rec.data, rec.len, &ev) == 0,
                    "an accepted event's record does not decode");
        FUZZ_ASSERT(acr_event_to_json(&ev, NULL, false, &js) == 0, "to_json failed");
        int rc2 = acr_event_parse_json((const char *)js.data, js.len, 540, true, &rec2, NULL, &err);
        if (rc2 != 0)
            fprintf(stderr, "re-parse of %.*s: %s %s %s\n", (int)js.len, (const char *)js.data,
                    acr_err_name(rc2), err.field, err.msg);
        FUZZ_ASSERT(rc2 == 0, "the printed event does not re-parse");
        FUZZ_ASSERT(rec2.len == rec.len &&
                        memcmp(rec2.data + ACR_RECORD_CONTENT_OFF,
                               rec.data + ACR_RECORD_CONTENT_OFF,
                               rec.len - ACR_RECORD_CONTENT_OFF) == 0,
                    "the printed event re-parses into different content");
    } else {
        FUZZ_ASSERT(rec.len == 0, "a rejected event left bytes in the output");
        FUZZ_ASSERT(rc < 0 && acr_err_exit_code(rc) != 0, "error code out of range");
    }
    acr_buf_destroy(&rec);
    acr_buf_destroy(&js);
    acr_buf_destroy(&rec2);
    return 0;
}
