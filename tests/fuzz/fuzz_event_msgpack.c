/* fuzz_event_msgpack.c - msgpack event input (a stream of maps).
 *
 * Input: a msgpack stream as `append --format msgpack` reads it. Walks it
 * map by map like the CLI (stops when the framing is bad, consumed == 0).
 * Oracles: consumed never exceeds what remains; an accepted event's record
 * decodes; a rejected one leaves the output untouched.
 */
#include <stdint.h>
#include <string.h>

#include "accrue/event.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    acr_buf_t rec;
    acr_buf_init(&rec);
    size_t pos = 0;
    for (int n = 0; pos < size && n < 64; n++) {
        size_t consumed = 0, before = rec.len;
        acr_err_t err;
        int64_t ev_version = 0;
        int rc = acr_event_parse_msgpack(data + pos, size - pos, &consumed, 540, &rec,
                                         &ev_version, &err);
        FUZZ_ASSERT(consumed <= size - pos, "consumed past the end of the input");
        if (rc == 0) {
            acr_event_t ev;
            memset(&ev, 0, sizeof ev);
            FUZZ_ASSERT(consumed > 0, "an accepted event consumed nothing");
            FUZZ_ASSERT(acr_record_decode(rec.data + before, rec.len - before, &ev) == 0,
                        "an accepted event's record does not decode");
            FUZZ_ASSERT(ev.type != ACR_EV_PERIOD_CLOSED, "msgpack accepted period.closed");
        } else {
            FUZZ_ASSERT(rec.len == before, "a rejected event left bytes in the output");
        }
        if (consumed == 0)
            break;
        pos += consumed;
    }
    acr_buf_destroy(&rec);
    return 0;
}
