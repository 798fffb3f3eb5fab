/* fuzz_statement.c - the stored statement CSV parser (acr_comm_add_closed).
 *
 * Input: statement CSV bytes as a close stores them. Fed to a fresh
 * processor (monthly, +09:00, run period 2026-08), twice when the first is
 * accepted (two closes paying the same identities), then the run is
 * finished, which parses each partner's lines: paid lines with no now-side
 * must come back as negative corrections, and a line that does not parse
 * must be ACR_ECORRUPT, without overflow or crash.
 */
#include <stdint.h>
#include <string.h>

#include "accrue/commission.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    acr_comm_config_t cfg = {ACR_PERIOD_MONTH, 540, (2026 - 1970) * 12 + 7, UINT64_MAX};
    acr_comm_t *c = acr_comm_new(&cfg);
    if (c == NULL)
        return 0;
    acr_err_t err;
    int rc = acr_comm_add_closed(c, (const char *)data, size, &err);
    if (rc == 0)
        rc = acr_comm_add_closed(c, (const char *)data, size, &err);
    if (rc == 0) {
        acr_statement_t st;
        memset(&st, 0, sizeof st);
        rc = acr_comm_finish(c, &st, &err);
        if (rc == 0) {
            FUZZ_ASSERT(st.csv != NULL && st.csv_len >= strlen(ACR_STATEMENT_HEADER),
                        "statement without header");
            FUZZ_ASSERT(memcmp(st.csv, ACR_STATEMENT_HEADER, strlen(ACR_STATEMENT_HEADER)) == 0,
                        "statement header differs");
            acr_statement_destroy(&st);
        } else {
            FUZZ_ASSERT(rc == ACR_ECORRUPT || rc == ACR_ENOMEM || rc == ACR_EOVERFLOW,
                        "unexpected error code from the finish");
        }
    } else {
        FUZZ_ASSERT(rc == ACR_ECORRUPT || rc == ACR_ENOMEM || rc == ACR_EOVERFLOW,
                    "unexpected error code from add_closed");
    }
    acr_comm_free(c);
    return 0;
}
