/* test_plan.c - plan document parsing: every error code, field paths, matching. */
#include <stdio.h>

#include "accrue/error.h"
#include "accrue/plan.h"
#include "test_util.h"

#define RULES "\"rules\":[{\"match\":{\"tier\":\"gold\"},\"brackets\":[{\"from_minor\":0," \
              "\"rate_bp\":1500},{\"from_minor\":1000000,\"rate_bp\":2500}]},{\"match\":{}," \
              "\"brackets\":[{\"from_minor\":0,\"rate_bp\":1000}]}]"
#define HEAD "\"plan_id\":\"standard\",\"version\":1,\"effective_from\":\"2026-01-01\"," \
             "\"currency\":\"JPY\",\"ceiling_bp\":4000,"

static const char GOOD[] = "{" HEAD RULES ",\"clawback_days\":90,\"new_customer_bonus_minor\":"
                           "10000,\"targets\":[{\"net_revenue_minor\":1500000,\"bonus_minor\":"
                           "50000}],\"cap_bp\":3000}";

static void expect_error(const char *json, int code, const char *field)
{
    acr_plan_t p;
    acr_err_t err;
    acr_err_clear(&err);
    int rc = acr_plan_parse(json, strlen(json), &p, &err);
    ASSERT_EQ_MSG(rc, code, "%s: got %s (%s), want %s", json, acr_err_name(rc), err.msg,
                 acr_err_name(code));
    ASSERT_EQ(err.code, code);
    if (field != NULL)
        ASSERT_STR_EQ(err.field, field);
    ASSERT_EQ(p.rules, NULL); /* zeroed on failure */
}

Test(plan, parses_the_spec_example)
{
    acr_plan_t p;
    acr_err_t err;
    ASSERT_EQ_MSG(acr_plan_parse(GOOD, strlen(GOOD), &p, &err), 0, "%s", err.msg);
    ASSERT_STR_EQ(p.plan_id, "standard");
    ASSERT_EQ(p.version, 1);
    ASSERT_STR_EQ(p.currency, "JPY");
    ASSERT_EQ(p.ceiling_bp, 4000);
    ASSERT_EQ(p.rule_count, 2);
    ASSERT_EQ(p.rules[0].bracket_count, 2);
    ASSERT_EQ(p.rules[0].brackets[1].from_minor, 1000000);
    ASSERT_EQ(p.rules[0].brackets[1].rate_bp, 2500);
    ASSERT_STR_EQ(p.rules[0].tier, "gold");
    ASSERT_EQ(p.rules[0].match_has, ACR_MATCH_TIER);
    ASSERT_EQ(p.rules[1].match_has, 0);
    cr_assert(p.has_clawback_days);
    ASSERT_EQ(p.clawback_days, 90);
    ASSERT_EQ(p.new_customer_bonus_minor, 10000);
    ASSERT_EQ(p.target_count, 1);
    ASSERT_EQ(p.targets[0].bonus_minor, 50000);
    cr_assert(p.has_cap);
    ASSERT_EQ(p.cap_bp, 3000);
    /* 2026-01-01 is day 20454 since 1970-01-01 */
    ASSERT_EQ(p.effective_from_day, 20454);
    acr_plan_destroy(&p);
}

Test(plan, optional_fields_absent)
{
    const char *json = "{" HEAD RULES "}";
    acr_plan_t p;
    acr_err_t err;
    ASSERT_EQ_MSG(acr_plan_parse(json, strlen(json), &p, &err), 0, "%s", err.msg);
    cr_assert_not(p.has_clawback_days);
    cr_assert_not(p.has_cap);
    ASSERT_EQ(p.target_count, 0);
    ASSERT_EQ(p.new_customer_bonus_minor, 0);
    acr_plan_destroy(&p);
}

Test(plan, match)
{
    acr_plan_t p;
    acr_err_t err;
    const char *json = "{" HEAD "\"rules\":[{\"match\":{\"tier\":\"gold\",\"product\":\"cloud\"},"
                       "\"brackets\":[{\"from_minor\":0,\"rate_bp\":1}]},{\"match\":{\"region\":"
                       "\"EU\"},\"brackets\":[{\"from_minor\":0,\"rate_bp\":2}]}]}";
    ASSERT_EQ_MSG(acr_plan_parse(json, strlen(json), &p, &err), 0, "%s", err.msg);
    ASSERT_EQ(acr_plan_match(&p, "gold", "reseller", NULL, "cloud", 5), 0);
    ASSERT_EQ(acr_plan_match(&p, "gold", "reseller", NULL, "cloudy", 6), -1);
    ASSERT_EQ(acr_plan_match(&p, "gold", "reseller", "EU", "support", 7), 1);
    ASSERT_EQ(acr_plan_match(&p, NULL, "reseller", NULL, "cloud", 5), -1);
    ASSERT_EQ(acr_plan_match(&p, "Gold", "reseller", "eu", "cloud", 5), -1);
    acr_plan_destroy(&p);
}

Test(plan, invalid_plan_structure)
{
    expect_error("not json", ACR_EINVALID_PLAN, "plan");
    expect_error("[]", ACR_EINVALID_PLAN, "plan");
    expect_error("{" HEAD RULES ",\"extra\":1}", ACR_EINVALID_PLAN, "plan.extra");
    expect_error("{\"plan_id\":\"a\",\"plan_id\":\"b\"}", ACR_EINVALID_PLAN, "plan");
    expect_error("{" HEAD "\"rules\":[]}", ACR_EINVALID_PLAN, "plan.rules");
    expect_error("{" HEAD "\"rules\":{}}", ACR_EINVALID_PLAN, "plan.rules");
    expect_error("{\"plan_id\":\"standard\",\"effective_from\":\"2026-01-01\",\"currency\":"
                 "\"JPY\",\"ceiling_bp\":4000," RULES "}",
                 ACR_EINVALID_PLAN, "plan.version");
    expect_error("{\"plan_id\":\"standard\",\"version\":0,\"effective_from\":\"2026-01-01\","
                 "\"currency\":\"JPY\",\"ceiling_bp\":4000," RULES "}",
                 ACR_EINVALID_PLAN, "plan.version");
    expect_error("{\"plan_id\":\"standard\",\"version\":1.0,\"effective_from\":\"2026-01-01\","
                 "\"currency\":\"JPY\",\"ceiling_bp\":4000," RULES "}",
                 ACR_EINVALID_PLAN, "plan.version");
    expect_error("{\"plan_id\":\"standard\",\"version\":1,\"effective_from\":\"2026-02-30\","
                 "\"currency\":\"JPY\",\"ceiling_bp\":4000," RULES "}",
                 ACR_EINVALID_PLAN, "plan.effective_from");
    expect_error("{\"plan_id\":\"standard\",\"version\":1,\"effective_from\":\"2026-01-01\","
                 "\"currency\":\"JPY\",\"ceiling_bp\":10001," RULES "}",
                 ACR_EINVALID_PLAN, "plan.ceiling_bp");
}

Test(plan, invalid_plan_rules)
{
    expect_error("{" HEAD "\"rules\":[{\"brackets\":[{\"from_minor\":0,\"rate_bp\":1}]}]}",
                 ACR_EINVALID_PLAN, "plan.rules[0].match");
    expect_error("{" HEAD "\"rules\":[{\"match\":{\"color\":\"red\"},\"brackets\":[{"
                 "\"from_minor\":0,\"rate_bp\":1}]}]}",
                 ACR_EINVALID_PLAN, "plan.rules[0].match.color");
    expect_error("{" HEAD "\"rules\":[{\"match\":{\"tier\":1},\"brackets\":[{"
                 "\"from_minor\":0,\"rate_bp\":1}]}]}",
                 ACR_EINVALID_PLAN, "plan.rules[0].match.tier");
    expect_error("{" HEAD "\"rules\":[{\"match\":{},\"brackets\":[]}]}", ACR_EINVALID_PLAN,
                 "plan.rules[0].brackets");
    expect_error("{" HEAD "\"rules\":[{\"match\":{},\"brackets\":[{\"from_minor\":5,"
                 "\"rate_bp\":1}]}]}",
                 ACR_EINVALID_PLAN, "plan.rules[0].brackets[0].from_minor");
    expect_error("{" HEAD "\"rules\":[{\"match\":{},\"brackets\":[{\"from_minor\":0,"
                 "\"rate_bp\":1},{\"from_minor\":0,\"rate_bp\":2}]}]}",
                 ACR_EINVALID_PLAN, "plan.rules[0].brackets[1].from_minor");
    expect_error("{" HEAD "\"rules\":[{\"match\":{},\"brackets\":[{\"from_minor\":0,"
                 "\"rate_bp\":-1}]}]}",
                 ACR_EINVALID_PLAN, "plan.rules[0].brackets[0].rate_bp");
    expect_error("{" HEAD "\"rules\":[{\"match\":{},\"brackets\":[{\"from_minor\":0,"
                 "\"rate_bp\":1,\"x\":2}]}]}",
                 ACR_EINVALID_PLAN, "plan.rules[0].brackets[0].x");
}

Test(plan, invalid_plan_targets_cap_days)
{
    expect_error("{" HEAD RULES ",\"targets\":[{\"net_revenue_minor\":0,\"bonus_minor\":1}]}",
                 ACR_EINVALID_PLAN, "plan.targets[0].net_revenue_minor");
    expect_error("{" HEAD RULES ",\"targets\":[{\"net_revenue_minor\":5,\"bonus_minor\":1},"
                 "{\"net_revenue_minor\":5,\"bonus_minor\":2}]}",
                 ACR_EINVALID_PLAN, "plan.targets[1].net_revenue_minor");
    expect_error("{" HEAD RULES ",\"targets\":[{\"net_revenue_minor\":5,\"bonus_minor\":-1}]}",
                 ACR_EINVALID_PLAN, "plan.targets[0].bonus_minor");
    expect_error("{" HEAD RULES ",\"cap_bp\":10001}", ACR_EINVALID_PLAN, "plan.cap_bp");
    expect_error("{" HEAD RULES ",\"cap_bp\":null}", ACR_EINVALID_PLAN, "plan.cap_bp");
    expect_error("{" HEAD RULES ",\"clawback_days\":-1}", ACR_EINVALID_PLAN,
                 "plan.clawback_days");
    expect_error("{" HEAD RULES ",\"new_customer_bonus_minor\":-5}", ACR_EINVALID_PLAN,
                 "plan.new_customer_bonus_minor");
}

Test(plan, above_ceiling)
{
    expect_error("{" HEAD "\"rules\":[{\"match\":{},\"brackets\":[{\"from_minor\":0,"
                 "\"rate_bp\":4000},{\"from_minor\":10,\"rate_bp\":4001}]}]}",
                 ACR_EABOVE_CEILING, "plan.rules[0].brackets[1].rate_bp");
}

Test(plan, invalid_value_amounts)
{
    expect_error("{" HEAD RULES ",\"new_customer_bonus_minor\":1000000000000001}",
                 ACR_EINVALID_VALUE, "plan.new_customer_bonus_minor");
    expect_error("{" HEAD "\"rules\":[{\"match\":{},\"brackets\":[{\"from_minor\":0,"
                 "\"rate_bp\":1},{\"from_minor\":1000000000000001,\"rate_bp\":2}]}]}",
                 ACR_EINVALID_VALUE, "plan.rules[0].brackets[1].from_minor");
    expect_error("{" HEAD RULES ",\"targets\":[{\"net_revenue_minor\":2000000000000000,"
                 "\"bonus_minor\":1}]}",
                 ACR_EINVALID_VALUE, "plan.targets[0].net_revenue_minor");
    /* exactly 10^15 is allowed */
    const char *ok = "{" HEAD RULES ",\"new_customer_bonus_minor\":1000000000000000}";
    acr_plan_t p;
    acr_err_t err;
    ASSERT_EQ_MSG(acr_plan_parse(ok, strlen(ok), &p, &err), 0, "%s", err.msg);
    acr_plan_destroy(&p);
}

Test(plan, invalid_id_and_currency)
{
    expect_error("{\"plan_id\":\"bad id\",\"version\":1,\"effective_from\":\"2026-01-01\","
                 "\"currency\":\"JPY\",\"ceiling_bp\":4000," RULES "}",
                 ACR_EINVALID_ID, "plan.plan_id");
    expect_error("{\"plan_id\":\"\",\"version\":1,\"effective_from\":\"2026-01-01\","
                 "\"currency\":\"JPY\",\"ceiling_bp\":4000," RULES "}",
                 ACR_EINVALID_ID, "plan.plan_id");
    expect_error("{\"plan_id\":\"p\",\"version\":1,\"effective_from\":\"2026-01-01\","
                 "\"currency\":\"XYZ\",\"ceiling_bp\":4000," RULES "}",
                 ACR_EINVALID_CURRENCY, "plan.currency");
    expect_error("{\"plan_id\":\"p\",\"version\":1,\"effective_from\":\"2026-01-01\","
                 "\"currency\":\"jpy\",\"ceiling_bp\":4000," RULES "}",
                 ACR_EINVALID_CURRENCY, "plan.currency");
}
