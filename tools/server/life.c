/* life.c - the end of the server's life: when it is stopping and nothing is
 * in flight any more (no connection, no pool job, no slow-lane job, no write
 * job), the last handles that keep the loop alive are closed and acr_srv_run
 * returns.
 *
 * A leaf: every layer reports "one less in flight" here, and it calls
 * nothing else of the module.
 */
#include "internal.h"

void acr_srv_maybe_finish(acr_srv_t *s)
{
    if (!s->stopping || s->finished || s->conn_count > 0 || s->pool_jobs > 0 ||
        s->lane.in_flight > 0 || s->writer.in_flight > 0)
        return;
    s->finished = true;
    uv_close((uv_handle_t *)&s->writer.async, NULL);
    if (s->lane.ready)
        uv_close((uv_handle_t *)&s->lane.async, NULL);
}
