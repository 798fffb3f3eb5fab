-- statement.sql - the statement of a payout run with no closed periods, in portable SQL.
--
-- One query, run unchanged by SQLite, PostgreSQL and DuckDB after two textual substitutions:
--   {{U}}    the run's period id ('2026-07'); every origin period <= U is emitted
--   {{DIV}}  integer division: '/' (SQLite, PostgreSQL on bigint) or '//' (DuckDB)
-- Input: the tables of load.py/load.mjs. Output: one text column `csv`, the statement's records in
-- order, without the header (the runner prints it). Follows commissions.md: with no closes, the
-- run of U is the union of the lines of every origin period O <= U, as of the head.
-- All sums are cast to BIGINT so that '/' stays integer division in PostgreSQL; amounts of the
-- generator keep every product far below 2^63 (SQLite has no 128-bit integers).
WITH
-- The version in force from each distinct effective day: latest effective_from, then highest
-- version; it lasts until the next distinct effective day of that plan.
pv AS (
    SELECT plan_id, eff_day AS from_day,
           LEAD(eff_day) OVER (PARTITION BY plan_id ORDER BY eff_day) AS to_day, version
    FROM (SELECT plan_id, eff_day, MAX(version) AS version FROM plans GROUP BY plan_id, eff_day) x
),
-- The first matching rule for each (partner, version, product, certified): partners' attributes
-- are constant (load.py's assumption), so this small table replaces matching per sale.
pr AS (
    SELECT p.partner_id, v.version, pp.product, cc.cert,
           (SELECT MIN(r.ridx) FROM rules r
             WHERE r.plan_id = p.plan_id AND r.version = v.version
               AND (r.m_tier IS NULL OR r.m_tier = p.tier)
               AND (r.m_kind IS NULL OR r.m_kind = p.kind)
               AND (r.m_region IS NULL OR r.m_region = p.region)
               AND (r.m_product IS NULL OR r.m_product = pp.product)
               AND (r.m_cert IS NULL OR r.m_cert = cc.cert)) AS ridx
    FROM partners p
    JOIN plans v ON v.plan_id = p.plan_id
    CROSS JOIN (SELECT DISTINCT product FROM sales) pp
    CROSS JOIN (SELECT 0 AS cert UNION ALL SELECT 1) cc
),
-- Certification (program.md): the onboarding list in force at T is the last by (at, seq) with
-- at <= T, i.e. each list rules [its at, the next list's at); a partner completed it at the
-- latest of its modules' first trainings (NULL: a module never done).
lv AS (
    SELECT seq, at_ms AS from_at, LEAD(at_ms) OVER (ORDER BY at_ms, seq) AS to_at
    FROM (SELECT DISTINCT seq, at_ms FROM onboarding) l
),
tm AS (
    SELECT partner_id, module, MIN(at_ms) AS first_at FROM trainings GROUP BY partner_id, module
),
since AS (
    SELECT p.partner_id, o.seq,
           CASE WHEN COUNT(tm.first_at) = COUNT(*) THEN MAX(tm.first_at) END AS done_at
    FROM partners p
    CROSS JOIN onboarding o
    LEFT JOIN tm ON tm.partner_id = p.partner_id AND tm.module = o.module
    GROUP BY p.partner_id, o.seq
),
-- Sales of origin periods <= U (a refund is never before its sale, so no later sale matters),
-- with their plan version (NULL: unplanned), rule, and gross cum of the partner's earlier sales
-- in the period by (at, seq), planned or not.
s0 AS (
    SELECT s.seq, s.sale_id, s.partner_id, s.customer_id, s.product, s.amount, s.at_ms,
           s.at_txt, s.day, s.period, p.plan_id, p.currency, pv.version,
           CAST(COALESCE(SUM(s.amount) OVER (PARTITION BY s.partner_id, s.period
                                             ORDER BY s.at_ms, s.seq
                                             ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING),
                         0) AS BIGINT) AS cum,
           CASE WHEN lv.seq IS NULL THEN 1
                WHEN si.done_at IS NOT NULL AND si.done_at <= s.at_ms THEN 1 ELSE 0 END AS cert
    FROM sales s
    JOIN partners p ON p.partner_id = s.partner_id
    LEFT JOIN pv ON pv.plan_id = p.plan_id AND pv.from_day <= s.day
                AND (pv.to_day IS NULL OR s.day < pv.to_day)
    LEFT JOIN lv ON lv.from_at <= s.at_ms AND (lv.to_at IS NULL OR s.at_ms < lv.to_at)
    LEFT JOIN since si ON si.partner_id = s.partner_id AND si.seq = lv.seq
    WHERE s.period <= '{{U}}'
),
s1 AS (
    SELECT s0.*, pr.ridx
    FROM s0 LEFT JOIN pr ON pr.partner_id = s0.partner_id AND pr.version = s0.version
                        AND pr.product = s0.product AND pr.cert = s0.cert
),
-- Exact commission: the overlap of [cum, cum + amount) with each bracket, times its rate.
sx AS (
    SELECT s.seq,
           CAST(SUM(b.rate_bp * (
               (CASE WHEN b.to_minor IS NOT NULL AND b.to_minor < s.cum + s.amount
                     THEN b.to_minor ELSE s.cum + s.amount END)
             - (CASE WHEN b.from_minor > s.cum THEN b.from_minor ELSE s.cum END))) AS BIGINT) AS exact
    FROM s1 s
    JOIN brackets b ON b.plan_id = s.plan_id AND b.version = s.version AND b.ridx = s.ridx
                   AND b.from_minor < s.cum + s.amount
                   AND (b.to_minor IS NULL OR b.to_minor > s.cum)
    GROUP BY s.seq
),
-- Sale lines of planned sales, c = round_half_even(exact / 10000) (zero lines kept here: a
-- refund of such a sale still needs c; they are dropped at the end).
sl AS (
    SELECT s.seq, s.sale_id, s.partner_id, s.period, s.at_ms, s.at_txt, s.amount, s.day,
           s.currency, s.plan_id, s.version, s.product, s.cert,
           s.plan_id || '@' || CAST(s.version AS VARCHAR) || '#' || CAST(s.ridx AS VARCHAR) AS rule,
           CASE WHEN 2 * (COALESCE(x.exact, 0) % 10000) > 10000 THEN COALESCE(x.exact, 0) {{DIV}} 10000 + 1
                WHEN 2 * (COALESCE(x.exact, 0) % 10000) = 10000
                     THEN COALESCE(x.exact, 0) {{DIV}} 10000 + (COALESCE(x.exact, 0) {{DIV}} 10000) % 2
                ELSE COALESCE(x.exact, 0) {{DIV}} 10000 END AS c
    FROM s1 s LEFT JOIN sx x ON x.seq = s.seq
    WHERE s.ridx IS NOT NULL
),
-- Promotions (program.md): each planned sale gets the qualifying promotion with the highest
-- rate_bp, then per_sale, then the lowest seq; its want = rhe(amount x rate / 10000) + per_sale.
-- A budget is consumed in (at, seq) order: with cw the running sum of wants, a sale gets
-- min(B, cw) - min(B, cw - want), which is min(want, what the earlier ones left).
pm AS (
    SELECT m.*, CASE WHEN e.ends_day IS NOT NULL AND e.ends_day < m.to_day THEN e.ends_day
                     ELSE m.to_day END AS last_day
    FROM promos m
    LEFT JOIN (SELECT promo_id, MIN(ends_day) AS ends_day FROM promo_ends GROUP BY promo_id) e
           ON e.promo_id = m.promo_id
),
pc AS (
    SELECT s.seq, s.sale_id, s.partner_id, s.period, s.at_ms, s.at_txt, s.amount, s.currency,
           m.promo_id, m.budget, m.rate_bp, m.per_sale,
           ROW_NUMBER() OVER (PARTITION BY s.seq
                              ORDER BY m.rate_bp DESC, m.per_sale DESC, m.seq) AS rn
    FROM sl s
    JOIN partners p ON p.partner_id = s.partner_id
    JOIN pm m ON m.plan_id = s.plan_id AND s.day >= m.from_day AND s.day <= m.last_day
             AND (m.m_tier IS NULL OR m.m_tier = p.tier)
             AND (m.m_kind IS NULL OR m.m_kind = p.kind)
             AND (m.m_region IS NULL OR m.m_region = p.region)
             AND (m.m_product IS NULL OR m.m_product = s.product)
             AND (m.m_cert IS NULL OR m.m_cert = s.cert)
),
pw AS (
    SELECT pc.*,
           CASE WHEN 2 * ((amount * rate_bp) % 10000) > 10000 THEN (amount * rate_bp) {{DIV}} 10000 + 1
                WHEN 2 * ((amount * rate_bp) % 10000) = 10000
                     THEN (amount * rate_bp) {{DIV}} 10000 + ((amount * rate_bp) {{DIV}} 10000) % 2
                ELSE (amount * rate_bp) {{DIV}} 10000 END + per_sale AS want
    FROM pc WHERE rn = 1
),
pcw AS (
    SELECT pw.*, CAST(SUM(want) OVER (PARTITION BY promo_id ORDER BY at_ms, seq
                                      ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS BIGINT) AS cw
    FROM pw
),
pl AS (
    SELECT seq, sale_id, partner_id, period, at_ms, at_txt, amount, currency,
           'promotion:' || promo_id AS rule,
           CASE WHEN budget IS NULL THEN want
                ELSE (CASE WHEN cw < budget THEN cw ELSE budget END)
                   - (CASE WHEN cw - want < budget THEN cw - want ELSE budget END) END AS amt
    FROM pcw
),
-- Refunds with `before` = the sale's earlier refunds by seq, whatever their period.
rb AS (
    SELECT r.seq, r.id, r.sale_id, r.amount, r.at_ms, r.at_txt, r.day, r.period,
           CAST(COALESCE(SUM(r.amount) OVER (PARTITION BY r.sale_id ORDER BY r.seq
                                             ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING),
                         0) AS BIGINT) AS before
    FROM refunds r
),
rc AS (
    SELECT rb.seq, rb.id, rb.amount, rb.at_ms, rb.at_txt, rb.period, sl.partner_id, sl.currency,
           sl.rule, sl.amount AS a, rb.before * sl.c AS nb, (rb.before + rb.amount) * sl.c AS na
    FROM rb
    JOIN sl ON sl.sale_id = rb.sale_id
    JOIN plans v ON v.plan_id = sl.plan_id AND v.version = sl.version
    WHERE rb.period <= '{{U}}'
      AND (v.clawback_days IS NULL OR rb.day - sl.day <= v.clawback_days)
),
cl AS (
    SELECT seq, id, amount, at_ms, at_txt, period, partner_id, currency, rule,
           -((CASE WHEN 2 * (na % a) > a THEN na {{DIV}} a + 1
                   WHEN 2 * (na % a) = a THEN na {{DIV}} a + (na {{DIV}} a) % 2
                   ELSE na {{DIV}} a END)
           - (CASE WHEN 2 * (nb % a) > a THEN nb {{DIV}} a + 1
                   WHEN 2 * (nb % a) = a THEN nb {{DIV}} a + (nb {{DIV}} a) % 2
                   ELSE nb {{DIV}} a END)) AS amt
    FROM rc
),
-- New customers: the first sale of the customer in the whole log by (at, seq).
nc AS (
    SELECT s.seq, s.sale_id, s.partner_id, s.period, s.at_ms, s.at_txt, s.currency,
           s.plan_id || '@' || CAST(s.version AS VARCHAR) AS rule, v.ncb AS amt
    FROM (SELECT s0.*, ROW_NUMBER() OVER (PARTITION BY customer_id ORDER BY at_ms, seq) AS rn
          FROM s0) s
    JOIN plans v ON v.plan_id = s.plan_id AND v.version = s.version
    WHERE s.rn = 1 AND v.ncb > 0
),
-- Partner-periods with activity, their net, and the period-level plan version (the version
-- applicable on the period's last local day).
net AS (
    SELECT partner_id, period, CAST(SUM(amt) AS BIGINT) AS net
    FROM (SELECT partner_id, period, amount AS amt FROM s0
          UNION ALL
          SELECT s.partner_id, r.period, -r.amount FROM refunds r JOIN sales s ON s.sale_id = r.sale_id
          WHERE r.period <= '{{U}}') u
    GROUP BY partner_id, period
),
pp AS (
    SELECT n.partner_id, n.period, n.net, p.currency, p.plan_id, pv.version,
           v.cap_bp
    FROM net n
    JOIN partners p ON p.partner_id = n.partner_id
    JOIN periods q ON q.period = n.period
    JOIN pv ON pv.plan_id = p.plan_id AND pv.from_day <= q.last_day
           AND (pv.to_day IS NULL OR q.last_day < pv.to_day)
    JOIN plans v ON v.plan_id = p.plan_id AND v.version = pv.version
),
tb AS (
    SELECT pp.partner_id, pp.period, pp.net, pp.currency,
           pp.plan_id || '@' || CAST(pp.version AS VARCHAR) AS rule,
           (SELECT t.bonus FROM targets t
             WHERE t.plan_id = pp.plan_id AND t.version = pp.version AND t.net_min <= pp.net
             ORDER BY t.net_min DESC LIMIT 1) AS amt
    FROM pp WHERE pp.net > 0
),
-- Lines of kinds 1-4 (zero lines count 0 in sub, so they need no filtering here).
k14 AS (
    SELECT partner_id, period, c AS amt FROM sl WHERE period <= '{{U}}'
    UNION ALL SELECT partner_id, period, amt FROM cl
    UNION ALL SELECT partner_id, period, amt FROM nc
    UNION ALL SELECT partner_id, period, amt FROM tb WHERE amt IS NOT NULL
    UNION ALL SELECT partner_id, period, amt FROM pl
),
sub AS (
    SELECT partner_id, period, CAST(SUM(amt) AS BIGINT) AS sub FROM k14 GROUP BY partner_id, period
),
cap AS (
    SELECT pp.partner_id, pp.period, pp.net, pp.currency, pp.plan_id, pp.version,
           (CASE WHEN pp.net > 0 THEN pp.net ELSE 0 END) * pp.cap_bp {{DIV}} 10000 - sub.sub AS amt
    FROM pp JOIN sub ON sub.partner_id = pp.partner_id AND sub.period = pp.period
    WHERE pp.cap_bp IS NOT NULL
      AND sub.sub > (CASE WHEN pp.net > 0 THEN pp.net ELSE 0 END) * pp.cap_bp {{DIV}} 10000
),
-- Every line: kind order 1 sale, 2 clawback, 3 new_customer_bonus, 4 promotion,
-- 5 target_bonus, 6 adjustment, 7 cap.
lines AS (
    SELECT partner_id, period AS origin, 1 AS k, 'sale' AS kind, sale_id AS source_id,
           seq AS source_seq, at_ms, at_txt, rule, amount AS basis, c AS amt, currency
    FROM sl
    UNION ALL
    SELECT partner_id, period, 2, 'clawback', id, seq, at_ms, at_txt, rule, amount, amt, currency
    FROM cl
    UNION ALL
    SELECT partner_id, period, 3, 'new_customer_bonus', sale_id, seq, at_ms, at_txt, rule, 0, amt,
           currency
    FROM nc
    UNION ALL
    SELECT partner_id, period, 4, 'promotion', sale_id, seq, at_ms, at_txt, rule, amount, amt,
           currency
    FROM pl
    UNION ALL
    SELECT partner_id, period, 5, 'target_bonus', period, NULL, NULL, NULL, rule, net, amt, currency
    FROM tb WHERE amt IS NOT NULL
    UNION ALL
    SELECT a.partner_id, a.period, 6, 'adjustment', a.id, a.seq, a.at_ms, a.at_txt, NULL, 0,
           a.amount, p.currency
    FROM adjustments a JOIN partners p ON p.partner_id = a.partner_id
    WHERE a.period <= '{{U}}'
    UNION ALL
    SELECT partner_id, period, 7, 'cap', period, NULL, NULL, NULL,
           plan_id || '@' || CAST(version AS VARCHAR), net, amt, currency
    FROM cap
),
numbered AS (
    SELECT l.*, ROW_NUMBER() OVER (PARTITION BY partner_id
                                   ORDER BY origin, k, at_ms, source_seq, source_id) AS line
    FROM lines l
    WHERE amt <> 0
)
SELECT '{{U}}' || ',' || partner_id || ',' || CAST(line AS VARCHAR) || ',' || origin || ',' || kind
       || ',' || source_id || ',' || COALESCE(CAST(source_seq AS VARCHAR), '') || ','
       || COALESCE(at_txt, '') || ',' || COALESCE(rule, '') || ',' || CAST(basis AS VARCHAR)
       || ',' || CAST(amt AS VARCHAR) || ',' || currency AS csv
FROM numbered
ORDER BY partner_id, line;
