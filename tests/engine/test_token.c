/* test_token.c - API tokens (engine/token): roles, creation rules, the BLAKE2b-256 hash
 * (checked against libsodium called directly), check, list, revoke and the cache. */
#include <sodium.h>

#include "accrue/token.h"
#include "ledger_fixture.h"

Test(token, role_names)
{
    const char *names[] = {"none", "admin", "finance", "auditor", "ingest", "feed", "partner"};
    for (int r = 0; r < ACR_ROLE__COUNT; r++) {
        ASSERT_STR_EQ(acr_role_name(r), names[r]);
        if (r != ACR_ROLE_NONE)
            ASSERT_EQ_MSG(acr_role_from_name(names[r]), r, "%s", names[r]);
    }
    ASSERT_STR_EQ(acr_role_name(ACR_ROLE__COUNT), "?");
    ASSERT_EQ(acr_role_from_name("root"), ACR_ROLE_NONE);
}

/* The stored hash is BLAKE2b-256 of the secret's bytes: libsodium's generichash, unkeyed. */
Test(token, hash_is_blake2b_256)
{
    cr_assert(sodium_init() >= 0);
    const char *secrets[] = {"", "a",
                             "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"};
    for (size_t i = 0; i < sizeof secrets / sizeof secrets[0]; i++) {
        uint8_t got[ACR_TOKEN_HASH_LEN], want[ACR_TOKEN_HASH_LEN];
        ASSERT_EQ(acr_token_hash(secrets[i], strlen(secrets[i]), got), 0);
        ASSERT_EQ(crypto_generichash(want, sizeof want, (const unsigned char *)secrets[i],
                                     strlen(secrets[i]), NULL, 0),
                  0);
        ASSERT_BYTES_EQ(got, sizeof got, want, sizeof want);
    }
}

Test(token, create_check_list_revoke)
{
    fixture_t fx;
    acr_ledger_t *l = fx_open(&fx, ACR_PERIOD_MONTH, "+00:00");
    acr_err_t err;
    char name[ACR_TOKEN_NAME_MAX + 1], secret[ACR_TOKEN_SECRET_HEX_LEN + 1];
    char pname[ACR_TOKEN_NAME_MAX + 1], psecret[ACR_TOKEN_SECRET_HEX_LEN + 1];
    ASSERT_EQ_MSG(acr_token_create(l, ACR_ROLE_FINANCE, NULL, "books", 0, name, secret, &err), 0,
                  "%s", err.msg);
    ASSERT_STR_EQ(name, "books");
    ASSERT_EQ(strlen(secret), (size_t)ACR_TOKEN_SECRET_HEX_LEN);
    for (size_t i = 0; i < strlen(secret); i++)
        cr_assert(strchr("0123456789abcdef", secret[i]) != NULL, "secret is lowercase hex");
    /* a partner token needs the partner (issue 16: GHOST was accepted) */
    ASSERT_EQ(acr_token_create(l, ACR_ROLE_PARTNER, "P1", NULL, 0, pname, psecret, &err),
              ACR_EUNKNOWN_PARTNER);
    fx_append_ok(l, PARTNER("p-1", "P1", "gold"));
    ASSERT_EQ_MSG(acr_token_create(l, ACR_ROLE_PARTNER, "P1", NULL, 0, pname, psecret, &err), 0,
                  "%s", err.msg);
    cr_assert(strncmp(pname, "partner-", 8) == 0 && strlen(pname) == 16, "picked %s", pname);

    /* the rules of creation (into scratch buffers: a refused create may have written them) */
    char xn[ACR_TOKEN_NAME_MAX + 1], xs[ACR_TOKEN_SECRET_HEX_LEN + 1];
    ASSERT_EQ(acr_token_create(l, ACR_ROLE_FINANCE, NULL, "books", 0, xn, xs, &err), ACR_EDUPLICATE);
    ASSERT_EQ(acr_token_create(l, ACR_ROLE_PARTNER, NULL, "p", 0, xn, xs, &err), ACR_EUSAGE);
    ASSERT_EQ(acr_token_create(l, ACR_ROLE_ADMIN, "P1", "a", 0, xn, xs, &err), ACR_EUSAGE);
    ASSERT_EQ(acr_token_create(l, ACR_ROLE_NONE, NULL, "n", 0, xn, xs, &err), ACR_EUSAGE);
    ASSERT_EQ(acr_token_create(l, ACR_ROLE_ADMIN, NULL, "bad name", 0, xn, xs, &err), ACR_EUSAGE);

    /* check: the right secret gives role and partner; anything else is unauthorized */
    int role = -1;
    char partner[ACR_ID_LEN_MAX + 1], who[ACR_TOKEN_NAME_MAX + 1];
    ASSERT_EQ(acr_token_check(l, psecret, strlen(psecret), &role, partner, who), 0);
    ASSERT_EQ(role, ACR_ROLE_PARTNER);
    ASSERT_STR_EQ(partner, "P1");
    ASSERT_STR_EQ(who, pname);
    ASSERT_EQ(acr_token_check(l, secret, strlen(secret), &role, partner, NULL), 0);
    ASSERT_EQ(role, ACR_ROLE_FINANCE);
    ASSERT_STR_EQ(partner, "");
    char wrong[ACR_TOKEN_SECRET_HEX_LEN + 1];
    memcpy(wrong, secret, sizeof wrong);
    wrong[0] = wrong[0] == 'a' ? 'b' : 'a';
    ASSERT_EQ(acr_token_check(l, wrong, strlen(wrong), &role, partner, NULL), ACR_EUNAUTHORIZED);
    ASSERT_EQ(acr_token_check(l, secret, strlen(secret) - 1, &role, partner, NULL),
              ACR_EUNAUTHORIZED);

    /* list: sorted by name, the hash prefix is the stored hash's first 8 bytes */
    acr_token_info_t *infos;
    size_t n;
    ASSERT_EQ(acr_token_list(l, &infos, &n, &err), 0);
    ASSERT_EQ(n, (size_t)2);
    ASSERT_STR_EQ(infos[0].name, "books");
    ASSERT_EQ(infos[0].role, ACR_ROLE_FINANCE);
    ASSERT_STR_EQ(infos[1].name, pname);
    ASSERT_STR_EQ(infos[1].partner_id, "P1");
    uint8_t h[ACR_TOKEN_HASH_LEN];
    char hex[17];
    ASSERT_EQ(acr_token_hash(secret, strlen(secret), h), 0);
    for (int i = 0; i < 8; i++)
        snprintf(hex + 2 * i, 3, "%02x", h[i]);
    ASSERT_STR_EQ(infos[0].hash_prefix, hex);
    free(infos);

    /* the cache answers a checked hash until a token is revoked */
    acr_token_cache_t *cache = acr_token_cache_new(l);
    cr_assert_not_null(cache);
    ASSERT_EQ(acr_token_cache_get(cache, h, &role, partner, NULL), ACR_ENOT_FOUND);
    ASSERT_EQ(acr_token_check_hash(l, cache, h, &role, partner, NULL), 0);
    ASSERT_EQ(acr_token_cache_get(cache, h, &role, partner, NULL), 0);
    ASSERT_EQ(role, ACR_ROLE_FINANCE);

    ASSERT_EQ(acr_token_revoke(l, "books", &err), 0);
    ASSERT_EQ(acr_token_revoke(l, "books", &err), ACR_ENOT_FOUND);
    ASSERT_EQ(acr_token_cache_get(cache, h, &role, partner, NULL), ACR_ENOT_FOUND);
    ASSERT_EQ(acr_token_check_hash(l, cache, h, &role, partner, NULL), ACR_EUNAUTHORIZED);
    ASSERT_EQ(acr_token_check(l, secret, strlen(secret), &role, partner, NULL),
              ACR_EUNAUTHORIZED);
    acr_token_cache_free(cache);
    ASSERT_EQ(acr_token_list(l, &infos, &n, &err), 0);
    ASSERT_EQ(n, (size_t)1);
    free(infos);
    fx_close(&fx);
}
