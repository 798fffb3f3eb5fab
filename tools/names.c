/* names.c - partner display names for the human tables of the CLI.
 *
 * Finance reads "P1  Alpha Resale", not "P1". The names are read once per
 * command from the partner projection (acr_query_partners: an array sorted by
 * partner_id bytewise) and looked up by binary search, so a run with 100 000
 * partners costs one query and a log2 look-up per partner block.
 */
#include <stdlib.h>
#include <string.h>

#include "accrue/buf.h"
#include "accrue/projection.h"
#include "cli.h"

void acr__names_load(acr_ledger_t *ledger, acr_names_t *n)
{
    acr_buf_t out;
    acr_err_t err;
    acr_jv_t arr, row, v;
    size_t pos = 0, cap = 0;
    memset(n, 0, sizeof *n);
    acr_buf_init(&out);
    acr_err_clear(&err);
    if (acr_query_partners(ledger, NULL, &out, &err) != 0 ||
        acr__json_value((const char *)out.data, out.len, &pos, &arr) != 0 || arr.kind != 'a') {
        acr_buf_destroy(&out); /* names are a courtesy: a table without them is still right */
        return;
    }
    pos = 0;
    while (acr__json_arr_next(&arr, &pos, &row) == 1) {
        if (n->count == cap) {
            cap = cap ? cap * 2 : 64;
            acr_name_t *grown = realloc(n->items, cap * sizeof *grown);
            if (grown == NULL)
                break;
            n->items = grown;
        }
        acr_name_t *it = &n->items[n->count];
        it->partner_id[0] = it->name[0] = '\0';
        if (acr__json_get(&row, "partner_id", &v))
            acr__json_text(&v, it->partner_id, sizeof it->partner_id);
        if (acr__json_get(&row, "name", &v) && v.kind == 's')
            acr__json_text(&v, it->name, sizeof it->name);
        n->count++;
    }
    acr_buf_destroy(&out);
}

static int by_id(const void *key, const void *item)
{
    return strcmp(key, ((const acr_name_t *)item)->partner_id);
}

const char *acr__name_of(void *names, const char *partner_id)
{
    const acr_names_t *n = names;
    const acr_name_t *it =
        n->count ? bsearch(partner_id, n->items, n->count, sizeof *n->items, by_id) : NULL;
    return it != NULL ? it->name : NULL;
}

void acr__names_free(acr_names_t *n)
{
    free(n->items);
    memset(n, 0, sizeof *n);
}
