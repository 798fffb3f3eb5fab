/* idem.c - the Idempotency-Key at the door of every write route (http.md).
 *
 * One layer above the leaves it joins: respond.c answers, job.c hashes the request and looks
 * its key up. A key already used is answered here, before the body is read, so the same key
 * with another request is 409 whatever that request holds; the writer looks the key up
 * again in its own transaction, which decides between two requests racing with one key.
 */
#include "internal.h"

bool acr_srv_idem_refused(acr_srv_t *s, acr_srv_req_t *req)
{
    if (req->idem_bad) {
        acr_srv_set_error(req, 400, "bad_request",
                          "Idempotency-Key must be given once, as 1 to %d characters of "
                          "[A-Za-z0-9._:-]", ACR_ID_LEN_MAX);
        return true;
    }
    /* A key already used is answered before the request is even read (http.md: the same
     * key with another body is 409, whatever that body holds; the same body, the first
     * answer). The writer looks again in its transaction: two requests racing with one key
     * are decided there. */
    acr_idem_t idem;
    if (!acr_srv_idem_seen(s, req, &idem))
        return false;
    acr_srv_answer_idem(req, &idem);
    acr_idem_destroy(&idem);
    return true;
}
