-- schema.sql - the peers' tables (load.py's CSV files), in types all three engines accept.
CREATE TABLE partners (partner_id VARCHAR, kind VARCHAR, tier VARCHAR, region VARCHAR,
                       plan_id VARCHAR, currency VARCHAR);
CREATE TABLE plans (plan_id VARCHAR, version BIGINT, eff_day BIGINT, clawback_days BIGINT,
                    ncb BIGINT, cap_bp BIGINT);
CREATE TABLE rules (plan_id VARCHAR, version BIGINT, ridx BIGINT, m_tier VARCHAR, m_kind VARCHAR,
                    m_region VARCHAR, m_product VARCHAR, m_cert BIGINT);
CREATE TABLE brackets (plan_id VARCHAR, version BIGINT, ridx BIGINT, from_minor BIGINT,
                       to_minor BIGINT, rate_bp BIGINT);
CREATE TABLE targets (plan_id VARCHAR, version BIGINT, net_min BIGINT, bonus BIGINT);
CREATE TABLE sales (seq BIGINT, sale_id VARCHAR, partner_id VARCHAR, customer_id VARCHAR,
                    product VARCHAR, amount BIGINT, at_ms BIGINT, at_txt VARCHAR, day BIGINT,
                    period VARCHAR);
CREATE TABLE refunds (seq BIGINT, id VARCHAR, sale_id VARCHAR, amount BIGINT, at_ms BIGINT,
                      at_txt VARCHAR, day BIGINT, period VARCHAR);
CREATE TABLE adjustments (seq BIGINT, id VARCHAR, partner_id VARCHAR, amount BIGINT,
                          at_ms BIGINT, at_txt VARCHAR, period VARCHAR);
CREATE TABLE periods (period VARCHAR, last_day BIGINT);
-- the partner program (program.md)
CREATE TABLE onboarding (seq BIGINT, at_ms BIGINT, module VARCHAR);
CREATE TABLE trainings (partner_id VARCHAR, module VARCHAR, at_ms BIGINT);
CREATE TABLE promos (promo_id VARCHAR, plan_id VARCHAR, seq BIGINT, from_day BIGINT, to_day BIGINT,
                     m_tier VARCHAR, m_kind VARCHAR, m_region VARCHAR, m_product VARCHAR,
                     m_cert BIGINT, rate_bp BIGINT, per_sale BIGINT, budget BIGINT);
CREATE TABLE promo_ends (promo_id VARCHAR, seq BIGINT, ends_day BIGINT);
