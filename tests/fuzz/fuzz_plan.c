/* fuzz_plan.c - the plan document parser and validator (acr_plan_parse).
 *
 * Oracles: an accepted plan satisfies the invariants plan.h promises
 * (version >= 1, >= 1 bracket per rule starting at 0, rates within the
 * ceiling, strictly increasing targets); a rejected one is zeroed.
 */
#include <stdint.h>
#include <string.h>

#include "accrue/limits.h"
#include "accrue/plan.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    acr_plan_t plan;
    acr_err_t err;
    int rc = acr_plan_parse((const char *)data, size, &plan, &err);
    if (rc == 0) {
        FUZZ_ASSERT(plan.version >= 1, "plan version < 1");
        FUZZ_ASSERT(plan.ceiling_bp >= 0 && plan.ceiling_bp <= ACR_BP_MAX, "ceiling out of range");
        for (uint32_t i = 0; i < plan.rule_count; i++) {
            const acr_rule_t *r = &plan.rules[i];
            FUZZ_ASSERT(r->bracket_count >= 1, "a rule without brackets");
            FUZZ_ASSERT(r->brackets[0].from_minor == 0, "first bracket does not start at 0");
            for (uint32_t b = 0; b < r->bracket_count; b++) {
                FUZZ_ASSERT(r->brackets[b].rate_bp >= 0 &&
                                r->brackets[b].rate_bp <= plan.ceiling_bp,
                            "a rate above the ceiling was accepted");
                if (b > 0)
                    FUZZ_ASSERT(r->brackets[b].from_minor > r->brackets[b - 1].from_minor,
                                "brackets not increasing");
            }
        }
        for (uint32_t t = 1; t < plan.target_count; t++)
            FUZZ_ASSERT(plan.targets[t].net_revenue_minor > plan.targets[t - 1].net_revenue_minor,
                        "targets not increasing");
        (void)acr_plan_match(&plan, "gold", "reseller", "emea", "cloud", 5);
        (void)acr_plan_match(&plan, NULL, NULL, NULL, NULL, 0);
        acr_plan_destroy(&plan);
    } else {
        static const acr_plan_t zero;
        FUZZ_ASSERT(memcmp(&plan, &zero, sizeof plan) == 0, "a rejected plan is not zeroed");
    }
    return 0;
}
