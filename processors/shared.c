/* shared.c - the helpers the processor's files share (commission.c, lines.c,
 * paid.c, statement.c): the statement header, line kind names, the overflow
 * error, interning a partner. Each of those files calls down into this one and
 * intern.c; none calls back, so the processor's files form no circle:
 * commission.c -> lines.c -> paid.c, statement.c -> shared.c -> intern.c.
 */
#include <stdio.h>
#include <string.h>

#include "accrue/date.h"
#include "accrue/limits.h"
#include "comm_internal.h"

const char ACR_STATEMENT_HEADER[] = "period,partner_id,line,origin_period,kind,source_id,"
                                    "source_seq,at,rule,basis_minor,amount_minor,currency\n";

const char *acr_line_kind_name(int kind)
{
    static const char *const names[] = {
#define XX(name, wire) wire,
        ACR_LINE_KIND_MAP(XX)
#undef XX
    };
    if (kind < 0 || kind >= ACR_LINE__COUNT)
        return "unknown";
    return names[kind];
}

int acr__overflow(const acr_comm_t *c, acr_err_t *err, const char *partner_id, int32_t period)
{
    char pid[ACR_PERIOD_ID_MAX];
    acr_period_format(c->cfg.period_kind, period, pid);
    acr_err_set(err, ACR_EOVERFLOW, "amounts of partner %s in period %s leave int64",
                partner_id ? partner_id : "?", pid);
    if (err != NULL)
        snprintf(err->field, sizeof err->field, "%s", "amount_minor");
    return ACR_EOVERFLOW;
}

int acr__partner_intern(acr_comm_t *c, const char *id, uint32_t len, uint32_t *out_idx)
{
    bool is_new;
    if (acr__strtab_intern(&c->partner_ids, &c->arena, id, len, out_idx, &is_new) != 0)
        return ACR_ENOMEM;
    if (!is_new)
        return 0;
    if (acr__grow((void **)&c->partners, &c->partners_cap, c->partner_ids.count,
                  sizeof *c->partners) != 0)
        return ACR_ENOMEM;
    acr__partner_t *p = &c->partners[*out_idx];
    memset(p, 0, sizeof *p);
    p->id = c->partner_ids.ents[*out_idx].s;
    p->reg = (acr__attrs_t){ACR__NONE, ACR__NONE, ACR__NONE, ACR__NONE};
    return 0;
}
