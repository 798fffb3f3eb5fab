/* log.c - a ledger's lifecycle and its input: creating one (the config, the default
 * pipeline), opening and closing it, and batches (events parsed from JSON or msgpack into
 * stored records, to be handed to the append path). The append path itself is append.c;
 * rebuild, verify, stats and backup are maintain.c.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../state/state_internal.h"
#include "log_internal.h"

static void state_file(const char *dir, char *out, size_t n)
{
    snprintf(out, n, "%s/state.mdb", dir);
}

/* The rows of a new state.mdb: the stage list a replay starts from, the marker at 0. */
static int state_init(acr_ledger_t *l, MDB_env *senv)
{
    MDB_txn *txn;
    acr__head_t genesis = {.seq = 0};
    acr__genesis(l, genesis.hash);
    int rc = mdb_txn_begin(senv, NULL, 0, &txn);
    if (rc != 0)
        return rc;
    MDB_val pk = acr__val("stages", 6);
    MDB_val pv = acr__val(ACR__DEFAULT_PIPELINE_JSON, strlen(ACR__DEFAULT_PIPELINE_JSON));
    rc = mdb_put(txn, l->dbi[ACR_DB_PIPELINE], &pk, &pv, 0);
    if (rc == 0)
        rc = acr__applied_put(l, txn, &genesis);
    if (rc == 0)
        rc = acr__dg_rescan(l, txn);
    return rc == 0 ? mdb_txn_commit(txn) : (mdb_txn_abort(txn), rc);
}

/* An interrupted create's data.mdb holds no table at all, or this layout's tables with no
 * config record and no event: the config is what the first transaction of a new ledger's
 * data.mdb writes. Anything else (a ledger, an earlier release's, another program's data)
 * is never touched. */
int acr_ledger_unfinished(const char *dir, acr_err_t *err)
{
    MDB_env *env;
    MDB_txn *txn = NULL;
    MDB_dbi main, meta, log;
    MDB_stat st;
    int rc = mdb_env_create(&env), found = 0;
    if (rc != 0)
        return acr__mdb_err(rc, err, "mdb_env_create");
    mdb_env_set_maxdbs(env, ACR_DB__COUNT + 4);
    rc = mdb_env_open(env, dir, MDB_NOTLS | MDB_RDONLY, 0600);
    if (rc == 0)
        rc = mdb_txn_begin(env, NULL, MDB_RDONLY, &txn);
    if (rc == 0 && (rc = mdb_dbi_open(txn, NULL, 0, &main)) == 0 &&
        (rc = mdb_stat(txn, main, &st)) == 0) {
        MDB_val k = acr__val("config", 6), v;
        found = st.ms_entries == 0 ||
                (mdb_dbi_open(txn, acr__db_name(ACR_DB_META), 0, &meta) == 0 &&
                 mdb_get(txn, meta, &k, &v) == MDB_NOTFOUND &&
                 mdb_dbi_open(txn, acr__db_name(ACR_DB_LOG), 0, &log) == 0 &&
                 mdb_stat(txn, log, &st) == 0 && st.ms_entries == 0);
    }
    if (txn != NULL)
        mdb_txn_abort(txn);
    mdb_env_close(env);
    return rc != 0 ? acr__mdb_err(rc, err, dir) : found;
}

int acr_ledger_create(const char *dir, const acr_config_t *cfg, uint64_t map_size_bytes,
                      acr_err_t *err)
{
    return acr__ledger_create(dir, cfg, map_size_bytes, NULL, NULL, err);
}

int acr__ledger_create(const char *dir, const acr_config_t *cfg, uint64_t map_size_bytes,
                       int (*extra)(MDB_txn *txn, const MDB_dbi *dbi, void *arg), void *arg,
                       acr_err_t *err)
{
    char path[4096], spath[4096 + 16];
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) /* owner only (docs/reliability.md) */
        return acr_err_set(err, ACR_EIO, "cannot create %s: %s", dir, strerror(errno));
    snprintf(path, sizeof path, "%s/data.mdb", dir);
    struct stat st;
    if (stat(path, &st) == 0 && st.st_size == 0)
        return acr_err_set(err, ACR_EEXISTS, "%s exists but is empty (a damaged ledger): "
                           "restore it from a backup, or remove it to start afresh", path);
    if (stat(path, &st) == 0) {
        int u = acr_ledger_unfinished(dir, err);
        if (u < 0)
            return u;
        if (u == 0)
            return acr_err_set(err, ACR_EEXISTS, "a ledger already exists at %s", dir);
        /* finished in place, never unlinked: another create may still be under way in it
         * (its tables committed, its config not yet). The config goes in under LMDB's
         * writer lock with MDB_NOOVERWRITE, after a look at the log, so of two creates one
         * wins and the other finds a ledger. */
    }
    acr_ledger_t l = {.cfg = *cfg};
    uint64_t map = map_size_bytes ? map_size_bytes : ACR_MAP_SIZE_DEFAULT;
    /* the state first: a folder with data.mdb is a ledger, so data.mdb is made last */
    state_file(dir, spath, sizeof spath);
    unlink(spath);
    int rc = acr__env_open(spath, ACR__ENV_STATE, true, map, 0, &l.senv, l.dbi, NULL, err);
    if (rc != 0)
        return rc;
    rc = state_init(&l, l.senv);
    if (rc == 0)
        rc = mdb_env_sync(l.senv, 1);
    MDB_txn *txn;
    mdb_env_close(l.senv);
    if (rc != 0)
        return acr__mdb_err(rc, err, "init");
    if ((rc = acr__env_open(dir, ACR__ENV_LOG, true, map, 0, &l.env, l.dbi, NULL, err)) != 0)
        return rc;
    uint8_t conf[24];
    acr__config_encode(cfg, conf);
    rc = mdb_txn_begin(l.env, NULL, 0, &txn);
    if (rc == 0) {
        MDB_val k = acr__val("config", 6), v = acr__val(conf, sizeof conf);
        MDB_stat ls;
        rc = mdb_stat(txn, l.dbi[ACR_DB_LOG], &ls);
        if (rc == 0 && ls.ms_entries != 0)
            rc = MDB_KEYEXIST; /* events: a ledger after all */
        if (rc == 0)
            rc = mdb_put(txn, l.dbi[ACR_DB_META], &k, &v, MDB_NOOVERWRITE);
        if (rc == 0 && extra != NULL) /* with the config: a ledger never exists without it */
            rc = extra(txn, l.dbi, arg);
        rc = rc == 0 ? mdb_txn_commit(txn) : (mdb_txn_abort(txn), rc);
    }
    mdb_env_close(l.env);
    if (rc == MDB_KEYEXIST) /* a create beside this one finished first */
        return acr_err_set(err, ACR_EEXISTS, "a ledger already exists at %s", dir);
    return rc ? acr__mdb_err(rc, err, "init") : 0;
}

/* Reads the config of the log environment into l->cfg. */
static int read_config(acr_ledger_t *l, acr_err_t *err)
{
    MDB_txn *txn;
    MDB_val k = acr__val("config", 6), v;
    int rc = mdb_txn_begin(l->env, NULL, MDB_RDONLY, &txn);
    if (rc != 0)
        return acr__mdb_err(rc, err, "reading config");
    rc = mdb_get(txn, l->dbi[ACR_DB_META], &k, &v);
    rc = rc == 0 ? acr__config_decode(&v, &l->cfg) : acr__mdb_err(rc, err, "config");
    mdb_txn_abort(txn);
    if (rc == ACR_ECORRUPT)
        acr_err_set(err, rc, "the ledger's config record is damaged");
    return rc;
}

/* Opens the two environments of dir into l, upgrading an earlier release's ledger and
 * making a missing state.mdb afresh (filled from the log by the catch-up). */
static int open_envs(const char *dir, acr_ledger_t *l, acr_err_t *err)
{
    bool old = false;
    int rc = acr__env_open(dir, ACR__ENV_LOG, false, 0, 0, &l->env, l->dbi, &old, err);
    if (rc == 0 && old) {
        rc = acr__upgrade(dir, l->env, &l->cfg, err);
        mdb_env_close(l->env);
        l->env = NULL;
        if (rc == 0)
            rc = acr__env_open(dir, ACR__ENV_LOG, false, 0, 0, &l->env, l->dbi, &old, err);
        if (rc == 0 && old) {
            mdb_env_close(l->env);
            l->env = NULL;
            rc = acr_err_set(err, ACR_ECORRUPT, "%s: the upgrade did not take", dir);
        }
    }
    if (rc == 0)
        rc = read_config(l, err);
    char spath[4096 + 16];
    state_file(dir, spath, sizeof spath);
    MDB_envinfo info;
    if (rc == 0)
        mdb_env_info(l->env, &info);
    struct stat st;
    bool fresh = rc == 0 && stat(spath, &st) != 0 && errno == ENOENT;
    /* Map size 0: keep the size recorded in the file (grown by earlier appends). */
    if (rc == 0)
        rc = acr__env_open(spath, ACR__ENV_STATE, fresh, fresh ? info.me_mapsize : 0, 0,
                           &l->senv, l->dbi, NULL, err);
    if (rc == 0 && fresh && (rc = state_init(l, l->senv)) != 0)
        rc = acr__mdb_err(rc, err, "state.mdb");
    if (rc != 0 && l->env != NULL) {
        mdb_env_close(l->env);
        l->env = NULL;
    }
    return rc;
}

int acr_ledger_open(const char *dir, acr_ledger_t **out, acr_err_t *err)
{
    char path[4096];
    struct stat st;
    snprintf(path, sizeof path, "%s/data.mdb", dir);
    if (stat(path, &st) != 0)
        return acr_err_set(err, ACR_ENO_LEDGER, "no ledger at %s (run 'accrue init')", dir);
    acr_ledger_t *l = calloc(1, sizeof *l);
    if (l == NULL || (l->path = strdup(dir)) == NULL) {
        free(l);
        return acr_err_set(err, ACR_ENOMEM, "out of memory");
    }
    pthread_rwlock_init(&l->map_lock, NULL);
    int rc = open_envs(dir, l, err);
    /* A state that trails the log catches up now when this process may write; a reader
     * that may not sees the log through the marker. A catch-up that fails changes
     * nothing: the next write tries again and reports it (and `rebuild` must still open
     * a ledger whose state is damaged). */
    if (rc == 0 && access(path, W_OK) == 0) {
        acr_err_t ignored;
        acr_err_clear(&ignored);
        (void)acr__catch_up_open(l, &ignored);
    }
    if (rc != 0) {
        pthread_rwlock_destroy(&l->map_lock);
        free(l->path);
        free(l);
        return rc;
    }
    *out = l;
    return 0;
}

void acr_ledger_close(acr_ledger_t *l)
{
    if (l == NULL)
        return;
    if (l->kpi_memo_free != NULL)
        l->kpi_memo_free(l->kpi_memo);
    mdb_env_close(l->senv);
    mdb_env_close(l->env);
    pthread_rwlock_destroy(&l->map_lock);
    free(l->path);
    free(l);
}

uint64_t acr_ledger_last_txnid(acr_ledger_t *l)
{
    MDB_envinfo info;
    if (pthread_rwlock_tryrdlock(&l->map_lock) != 0)
        return 0;
    int rc = mdb_env_info(l->senv, &info); /* the state commits last */
    pthread_rwlock_unlock(&l->map_lock);
    return rc == 0 ? (uint64_t)info.me_last_txnid : 0;
}

const acr_config_t *acr_ledger_config(const acr_ledger_t *l)
{
    return &l->cfg;
}

const char *acr_ledger_path(const acr_ledger_t *l)
{
    return l->path;
}

/* ---- Batches ------------------------------------------------------------ */

void acr_batch_init(acr_batch_t *b)
{
    memset(b, 0, sizeof *b);
    acr_buf_init(&b->records);
}

void acr_batch_destroy(acr_batch_t *b)
{
    acr_buf_destroy(&b->records);
    free(b->items);
    acr_batch_init(b);
}

void acr_batch_set_actor(acr_batch_t *b, const char *actor)
{
    size_t n = 0;
    for (; actor != NULL && actor[n] != '\0' && n < ACR_ACTOR_MAX; n++) {
        unsigned char c = (unsigned char)actor[n];
        b->actor[n] = c > 0x20 && c < 0x7f ? (char)c : '?';
    }
    b->actor[n] = '\0';
}

void acr_batch_reset(acr_batch_t *b)
{
    acr_buf_reset(&b->records);
    b->count = 0;
    b->offered = 0;
    b->over_limit = false;
}

static int batch_push(acr_batch_t *b, size_t off, uint64_t line, int64_t expected_version)
{
    if (b->count == b->items_cap) {
        size_t cap = b->items_cap ? b->items_cap * 2 : 64;
        acr_batch_item_t *items = realloc(b->items, cap * sizeof *items);
        if (items == NULL)
            return ACR_ENOMEM;
        b->items = items;
        b->items_cap = cap;
    }
    acr_batch_item_t *it = &b->items[b->count++];
    it->off = off;
    it->len = (uint32_t)(b->records.len - off);
    it->line = line;
    it->expected_version = expected_version;
    return 0;
}

static int batch_finish_add(acr_batch_t *b, size_t off, uint64_t line, int64_t ev, int rc,
                            acr_err_t *err)
{
    if (rc == 0)
        rc = batch_push(b, off, line, ev);
    if (rc != 0) {
        b->records.len = off;
        if (err != NULL) {
            if (err->code != rc)
                acr_err_set(err, rc, "%s", rc == ACR_ENOMEM ? "out of memory" : "rejected");
            err->line = line;
        }
    }
    return rc;
}

/* A batch is full at ACR_BATCH_EVENTS_MAX events (events.md, Limits), counting every event
 * offered to it: an input of more events is too large even when some are invalid. */
static int batch_full(acr_batch_t *b, acr_err_t *err)
{
    if (b->offered < ACR_BATCH_EVENTS_MAX) {
        b->offered++;
        return 0;
    }
    b->over_limit = true;
    return acr_err_set(err, ACR_ETOO_LARGE, "a batch holds at most %d events",
                       ACR_BATCH_EVENTS_MAX);
}

int acr_batch_add_json(acr_batch_t *b, const acr_config_t *cfg, uint64_t line, const char *text,
                       size_t len, acr_err_t *err)
{
    size_t off = b->records.len;
    int64_t expected_version = -1;
    int rc = batch_full(b, err);
    if (rc == 0)
        rc = acr_event_parse_json(text, len, cfg->utc_offset_min, false, &b->records,
                                  &expected_version, err);
    return batch_finish_add(b, off, line, expected_version, rc, err);
}

int acr_batch_add_msgpack(acr_batch_t *b, const acr_config_t *cfg, uint64_t line,
                          const uint8_t *p, size_t len, size_t *consumed, acr_err_t *err)
{
    size_t off = b->records.len;
    int64_t expected_version = -1;
    int rc = batch_full(b, err);
    *consumed = 0;
    if (rc == 0)
        rc = acr_event_parse_msgpack(p, len, consumed, cfg->utc_offset_min, &b->records,
                                     &expected_version, err);
    return batch_finish_add(b, off, line, expected_version, rc, err);
}
