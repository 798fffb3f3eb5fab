/* fuzz_record_decode.c - the bounded zero-copy decoder of stored records.
 *
 * Input: the bytes of one stored record (the LMDB value after the 16-byte
 * chain hash). The input is copied into an exactly-sized heap block so ASan
 * catches any read past its end. An accepted record must print as JSON and
 * name a stream without faults.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "accrue/event.h"
#include "accrue/limits.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *copy = malloc(size ? size : 1);
    if (copy == NULL)
        return 0;
    memcpy(copy, data, size);
    acr_event_t ev;
    memset(&ev, 0, sizeof ev);
    if (acr_record_decode(copy, size, &ev) == 0) {
        FUZZ_ASSERT(acr_event_schema(ev.type) != NULL, "decoded an unknown type");
        char stream[ACR_STRING_LEN_MAX + 16];
        size_t n = acr_event_stream(&ev, stream, sizeof stream);
        FUZZ_ASSERT(n < sizeof stream && stream[n] == '\0', "stream name not terminated");
        acr_buf_t js;
        acr_buf_init(&js);
        uint8_t hash[ACR_HASH_LEN] = {0};
        FUZZ_ASSERT(acr_event_to_json(&ev, hash, true, &js) == 0, "to_json failed");
        acr_buf_destroy(&js);
    }
    free(copy);
    return 0;
}
