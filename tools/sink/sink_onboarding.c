/* sink_onboarding.c - the onboarding table: certification per partner and per rep.
 *
 * program.md defines certification over three kinds of facts the sink already
 * mirrors: the lists of required modules (`onboarding.defined`, in the events
 * table), the completions (trainings) and each subject's start (a partner's
 * registration, a rep's rep.added). So the onboarding rows are not built in
 * C beside the engine's projection a second time: they are recomputed in SQL
 * from those tables, inside the transaction that moves the position, for the
 * partners the range touched (all of them when it holds a new list, since a
 * list can change everyone's certification, even backdated).
 *
 * The look-ups of a completion go to the trainings table itself, through its index on
 * (partner_id, module, at), so the cost grows with the steps walked, not steps x completions.
 *
 * The rules, as the engine's query (engine/query/program_query.c) applies them:
 *   - modules: the current list, the latest onboarding.defined by (at, seq);
 *     completed / missing: its modules with / without a completion by the
 *     subject (a partner: by any of its reps or none; a rep: naming that rep);
 *   - certified: nothing missing (no list: everyone is certified);
 *   - certified_on: walk the subject's start, its completions and every list
 *     in (at, seq) order, those dated before the start included; after each step
 *     the subject is certified as of that step's at when every module of the list
 *     in force then (latest by (at, seq) with at <= the step's) has a completion
 *     with at <= the step's, and, before the start, only when a list is in force
 *     (with no list ever, certification begins at the start); the local date of
 *     the last step where it became certified, or null when it is not certified
 *     at the end.
 */
#include <stdio.h>
#include <string.h>

#include "sink.h"

/* @S the schema, @F the subject filter on table alias x, @O the UTC offset in minutes. */
static const char RECOMPUTE[] =
    "WITH subj AS ("
    "  SELECT x.partner_id, NULL::text AS rep_id, x.registered_at AS at, x.registered_seq AS seq"
    "  FROM \"@S\".partners x WHERE @F"
    "  UNION ALL"
    "  SELECT x.partner_id, x.rep_id, x.added_at, x.added_seq FROM \"@S\".reps x WHERE @F),"
    " lists AS (SELECT seq, at, data->'modules' AS mods FROM \"@S\".events"
    "  WHERE type = 'onboarding.defined'),"
    " cur AS (SELECT mods FROM lists ORDER BY at DESC, seq DESC LIMIT 1),"
    " tr AS (SELECT x.partner_id, x.rep_id, x.module, x.at, x.seq FROM \"@S\".trainings x"
    "  WHERE @F),"
    " steps AS ("
    "  SELECT s.partner_id, s.rep_id, s.at, s.seq, true AS started FROM subj s"
    "  UNION ALL"
    "  SELECT s.partner_id, s.rep_id, t.at, t.seq, (t.at, t.seq) > (s.at, s.seq)"
    "  FROM subj s JOIN tr t"
    "   ON t.partner_id = s.partner_id AND (s.rep_id IS NULL OR t.rep_id = s.rep_id)"
    "  UNION ALL"
    "  SELECT s.partner_id, s.rep_id, l.at, l.seq, (l.at, l.seq) > (s.at, s.seq)"
    "  FROM subj s, lists l),"
    " walk AS ("
    "  SELECT st.partner_id, st.rep_id, st.at, st.seq,"
    "   (st.started OR EXISTS (SELECT 1 FROM lists l WHERE l.at <= st.at)) AND coalesce(("
    "    SELECT bool_and(EXISTS (SELECT 1 FROM \"@S\".trainings t"
    "      WHERE t.partner_id = st.partner_id"
    "      AND (st.rep_id IS NULL OR t.rep_id = st.rep_id) AND t.module = m.value"
    "      AND t.at <= st.at))"
    "    FROM (SELECT l.mods FROM lists l WHERE l.at <= st.at"
    "          ORDER BY l.at DESC, l.seq DESC LIMIT 1) f,"
    "         jsonb_array_elements_text(f.mods) m(value)), true) AS ok"
    "  FROM steps st),"
    " flips AS ("
    "  SELECT partner_id, rep_id, at, seq, ok,"
    "   ok AND NOT coalesce(lag(ok) OVER w, false) AS became,"
    "   row_number() OVER (PARTITION BY partner_id, rep_id ORDER BY at DESC, seq DESC) AS from_end"
    "  FROM walk WINDOW w AS (PARTITION BY partner_id, rep_id ORDER BY at, seq)),"
    " ends AS ("
    "  SELECT partner_id, coalesce(rep_id, '') AS rk, bool_or(ok AND from_end = 1) AS ok_at_end,"
    "   (array_agg(at ORDER BY at DESC, seq DESC) FILTER (WHERE became))[1] AS became_at"
    "  FROM flips GROUP BY partner_id, rep_id),"
    " mods AS ("
    "  SELECT s.partner_id, coalesce(s.rep_id, '') AS rk, m.value AS module, m.ord,"
    "   EXISTS (SELECT 1 FROM \"@S\".trainings t WHERE t.partner_id = s.partner_id"
    "     AND (s.rep_id IS NULL OR t.rep_id = s.rep_id) AND t.module = m.value) AS done"
    "  FROM subj s, cur, jsonb_array_elements_text(cur.mods) WITH ORDINALITY m(value, ord)),"
    " agg AS ("
    "  SELECT partner_id, rk, array_agg(module ORDER BY ord) AS modules,"
    "   array_agg(module ORDER BY ord) FILTER (WHERE done) AS completed,"
    "   array_agg(module ORDER BY ord) FILTER (WHERE NOT done) AS missing"
    "  FROM mods GROUP BY partner_id, rk)"
    " INSERT INTO \"@S\".onboarding (partner_id, rep_id, modules, completed, missing,"
    "  certified, certified_on)"
    " SELECT s.partner_id, s.rep_id, coalesce(a.modules, '{}'), coalesce(a.completed, '{}'),"
    "  coalesce(a.missing, '{}'), a.missing IS NULL,"
    "  CASE WHEN e.ok_at_end THEN"
    "   ((e.became_at AT TIME ZONE 'UTC') + make_interval(mins => @O))::date END"
    " FROM subj s JOIN ends e ON e.partner_id = s.partner_id AND e.rk = coalesce(s.rep_id, '')"
    " LEFT JOIN agg a ON a.partner_id = s.partner_id AND a.rk = coalesce(s.rep_id, '')";

int acr__sink_onboarding_write(acr__sink_pg_t *pg, bool all, const acr_buf_t *touched,
                               int32_t utc_offset_min, acr_err_t *err)
{
    if (!all && touched->len == 0)
        return 0;
    const char *filter =
        all ? "true"
            : "x.partner_id IN (SELECT partner_id FROM pg_temp.accrue_onboarding_touch)";
    int rc = all ? 0
                 : acr__sink_pg_copy(pg, "pg_temp.accrue_onboarding_touch", "partner_id",
                                     touched, err);
    char sql[512], off[16];
    if (rc == 0) {
        snprintf(sql, sizeof sql, "DELETE FROM \"%s\".onboarding x WHERE %s", pg->schema, filter);
        rc = acr__sink_pg_exec(pg, sql, "clearing onboarding rows", err);
    }
    if (rc != 0)
        return rc;
    snprintf(off, sizeof off, "%d", (int)utc_offset_min);
    acr_buf_t q;
    acr_buf_init(&q);
    for (const char *p = RECOMPUTE; rc == 0 && *p != '\0'; p++) {
        const char *sub = NULL;
        if (p[0] == '@' && (p[1] == 'S' || p[1] == 'F' || p[1] == 'O'))
            sub = p[1] == 'S' ? pg->schema : p[1] == 'F' ? filter : off;
        rc = sub ? acr_buf_append_str(&q, sub) : acr_buf_append(&q, p, 1);
        p += sub != NULL;
    }
    rc = rc ? rc : acr_buf_append(&q, "", 1);
    rc = rc ? acr_err_set(err, ACR_ENOMEM, "out of memory")
            : acr__sink_pg_exec(pg, (const char *)q.data, "computing onboarding rows", err);
    acr_buf_destroy(&q);
    return rc;
}

/* The rules the rows were computed by, as a comment on the table: a mirror filled by a release
 * whose rules differ (rules 1: every step counted from the first; rules 2: the walk began at
 * the subject's start) has its rows recomputed once, whole, when a sink of this release opens
 * it. */
#define ONBOARDING_RULES "accrue onboarding rules 3"

int acr__sink_onboarding_upgrade(acr__sink_pg_t *pg, int32_t utc_offset_min, acr_err_t *err)
{
    char sql[512];
    snprintf(sql, sizeof sql,
             "SELECT coalesce(obj_description('\"%s\".onboarding'::regclass, 'pg_class'), '')",
             pg->schema);
    PGresult *res;
    int rc = acr__sink_pg_query(pg, sql, 0, NULL, &res, "reading the onboarding rules", err);
    if (rc != 0)
        return rc;
    bool current = PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 0), ONBOARDING_RULES) == 0;
    PQclear(res);
    if (current)
        return 0;
    acr_buf_t none;
    acr_buf_init(&none);
    rc = acr__sink_pg_exec(pg, "BEGIN", "recomputing the onboarding rows", err);
    if (rc == 0)
        rc = acr__sink_onboarding_write(pg, true, &none, utc_offset_min, err);
    snprintf(sql, sizeof sql, "COMMENT ON TABLE \"%s\".onboarding IS '%s'", pg->schema,
             ONBOARDING_RULES);
    if (rc == 0)
        rc = acr__sink_pg_exec(pg, sql, "recomputing the onboarding rows", err);
    if (rc == 0)
        rc = acr__sink_pg_exec(pg, "COMMIT", "recomputing the onboarding rows", err);
    else if (rc != ACR__SINK_RETRY)
        PQclear(PQexec(pg->conn, "ROLLBACK"));
    acr_buf_destroy(&none);
    return rc;
}
