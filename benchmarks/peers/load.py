#!/usr/bin/env python3
"""load.py - convert an accrue JSON Lines history into the CSV tables the SQL peers bulk-load.

    python3 load.py EVENTS.jsonl OUTDIR [--utc-offset +09:00] [--period month|quarter]
                    [--seq-base 0] [--validate]

The loader does what accrue's append does at ingest and no more: it parses each event, gives it
its seq (line number + --seq-base: the file is appended whole into a fresh ledger), turns `at`
into UTC milliseconds and its canonical text, and derives the local day and period id under the
ledger's UTC offset. Every commission rule (plan versions, rule matching, brackets, clawbacks,
bonuses, caps, rounding, ordering) is left to the SQL in statement.sql.

Assumption, checked: partner attributes never change (no partner.updated; the generator writes
none). A history with partner.updated is refused rather than computed wrongly.

Tables (CSV, no header, empty field = NULL):
  partners(partner_id, kind, tier, region, plan_id, currency)
  plans(plan_id, version, eff_day, clawback_days, ncb, cap_bp)
  rules(plan_id, version, ridx, m_tier, m_kind, m_region, m_product)
  brackets(plan_id, version, ridx, from_minor, to_minor, rate_bp)
  targets(plan_id, version, net_min, bonus)
  sales(seq, sale_id, partner_id, customer_id, product, amount, at_ms, at_txt, day, period)
  refunds(seq, id, sale_id, amount, at_ms, at_txt, day, period)
  adjustments(seq, id, partner_id, amount, at_ms, at_txt, period)
  periods(period, last_day)
  onboarding(seq, at_ms, module)            one row per module of each onboarding.defined
  trainings(partner_id, module, at_ms)      training.completed
  promos(promo_id, plan_id, seq, from_day, to_day, m_tier, m_kind, m_region, m_product, m_cert,
         rate_bp, per_sale, budget)         promotion.published (m_cert: 1 / 0 / empty)
  promo_ends(promo_id, seq, ends_day)       promotion.ended
  (rules gains m_cert, the rule's `certified` key: 1 / 0 / empty)

--validate also checks the rules of events.md that a generator can break (ids, references,
pipeline exit criteria, channel conflict, over-refund, refund before sale, plan versions and
ceiling) and exits 3 naming the first violation.
"""
import datetime
import json
import os
import re
import sys

MS_PER_DAY = 86400000
ID_RE = re.compile(r"[A-Za-z0-9._:-]{1,64}\Z")
TS_RE = re.compile(r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,3}))?(Z|[+-]\d{2}:\d{2})\Z")
EPOCH = datetime.date(1970, 1, 1).toordinal()


class Invalid(Exception):
    pass


def parse_offset(s):
    m = re.fullmatch(r"([+-])(\d{2}):(\d{2})", s)
    if not m:
        raise SystemExit("load.py: bad --utc-offset %r" % s)
    mins = int(m.group(2)) * 60 + int(m.group(3))
    return (-mins if m.group(1) == "-" else mins) * 60000


class Clock:
    """RFC 3339 -> UTC ms, canonical text, local day and period, with per-day caches."""

    def __init__(self, offset_ms, quarter):
        self.offset_ms = offset_ms
        self.quarter = quarter
        self.day_cache = {}
        self.text_cache = {}
        self.period_cache = {}

    def day_of_date(self, y, m, d):
        key = (y, m, d)
        v = self.day_cache.get(key)
        if v is None:
            v = datetime.date(y, m, d).toordinal() - EPOCH
            self.day_cache[key] = v
        return v

    def parse(self, s):
        # Fast path: "YYYY-MM-DDTHH:MM:SSZ" or "...SS.mmmZ", the generator's forms.
        if len(s) in (20, 24) and s[-1] == "Z" and s[10] == "T" and (len(s) == 20 or s[19] == "."):
            day = self.day_cache.get(s[:10])
            if day is not None and s[13] == ":" and s[16] == ":":
                try:
                    ms = ((int(s[11:13]) * 60 + int(s[14:16])) * 60 + int(s[17:19])) * 1000
                    if len(s) == 24:
                        ms += int(s[20:23])
                except ValueError:
                    raise Invalid("invalid_timestamp %r" % s)
                return day * MS_PER_DAY + ms
        m = TS_RE.match(s)
        if not m:
            raise Invalid("invalid_timestamp %r" % s)
        y, mo, d, hh, mi, ss, frac, off = m.groups()
        try:
            day = self.day_of_date(int(y), int(mo), int(d))
        except ValueError:
            raise Invalid("invalid_timestamp %r" % s)
        if int(hh) > 23 or int(mi) > 59 or int(ss) > 59:
            raise Invalid("invalid_timestamp %r" % s)
        self.day_cache[s[:10]] = day
        ms = (day * MS_PER_DAY
              + ((int(hh) * 60 + int(mi)) * 60 + int(ss)) * 1000)
        if frac:
            ms += int(frac.ljust(3, "0"))
        if off != "Z":
            mins = int(off[1:3]) * 60 + int(off[4:6])
            ms -= (mins if off[0] == "+" else -mins) * 60000
        return ms

    def date_text(self, day):
        t = self.text_cache.get(day)
        if t is None:
            t = datetime.date.fromordinal(day + EPOCH).isoformat()
            self.text_cache[day] = t
        return t

    def canonical_of(self, text, ms):
        """The canonical text: the input itself when it already is canonical."""
        if text[-1] == "Z" and (len(text) == 20 or (len(text) == 24 and text[20:23] != "000")):
            return text
        return self.canonical(ms)

    def canonical(self, ms):
        day, rem = divmod(ms, MS_PER_DAY)
        sec, milli = divmod(rem, 1000)
        hms = "%02d:%02d:%02d" % (sec // 3600, sec // 60 % 60, sec % 60)
        if milli:
            return "%sT%s.%03dZ" % (self.date_text(day), hms, milli)
        return "%sT%sZ" % (self.date_text(day), hms)

    def local_day(self, ms):
        return (ms + self.offset_ms) // MS_PER_DAY

    def period(self, day):
        p = self.period_cache.get(day)
        if p is None:
            date = datetime.date.fromordinal(day + EPOCH)
            if self.quarter:
                q = (date.month - 1) // 3
                p = ("%04d-Q%d" % (date.year, q + 1),
                     self.day_of_date(date.year + (q == 3), (q + 1) % 4 * 3 + 1, 1) - 1)
            else:
                p = ("%04d-%02d" % (date.year, date.month),
                     self.day_of_date(date.year + (date.month == 12), date.month % 12 + 1, 1) - 1)
            self.period_cache[day] = p
        return p


class Validator:
    """The rules of events.md that a history generator can violate."""

    STAGES = [("registered", ("amount",)), ("qualified", ("expected_close",)),
              ("proposal", ()), ("negotiation", ())]

    def __init__(self):
        self.ids = set()
        self.partners = {}       # id -> currency
        self.reps = set()        # (partner, rep)
        self.deals = {}          # id -> [partner, customer, stage_index, amount?, close?, open]
        self.open_by_customer = {}  # customer -> {partner: open deal count}
        self.sales = {}          # id -> [partner, amount, at_ms, refunded]
        self.plans = {}          # plan_id -> highest version

    def event(self, ev, at_ms):
        if not isinstance(ev.get("id"), str) or not ID_RE.match(ev["id"]):
            raise Invalid("invalid_id %r" % ev.get("id"))
        if ev["id"] in self.ids:
            raise Invalid("duplicate event id %s" % ev["id"])
        self.ids.add(ev["id"])
        if set(ev) - {"id", "type", "at", "data"}:
            raise Invalid("unknown_field in envelope")
        getattr(self, "on_" + ev["type"].replace(".", "_"))(ev["data"], at_ms)

    def check_ids(self, d, *keys):
        for k in keys:
            if k in d and not ID_RE.match(d[k]):
                raise Invalid("invalid_id %s=%r" % (k, d[k]))

    def partner(self, pid):
        if pid not in self.partners:
            raise Invalid("unknown_partner %s" % pid)
        return self.partners[pid]

    def on_plan_published(self, d, at_ms):
        p = d["plan"]
        if p["version"] <= self.plans.get(p["plan_id"], 0):
            raise Invalid("stale_version %s" % p["version"])
        self.plans[p["plan_id"]] = p["version"]
        for r in p["rules"]:
            froms = [b["from_minor"] for b in r["brackets"]]
            if froms[0] != 0 or froms != sorted(set(froms)):
                raise Invalid("invalid_plan brackets")
            if any(b["rate_bp"] > p["ceiling_bp"] for b in r["brackets"]):
                raise Invalid("above_ceiling")
        nets = [t["net_revenue_minor"] for t in p.get("targets", [])]
        if nets != sorted(set(nets)):
            raise Invalid("invalid_plan targets")

    def on_partner_registered(self, d, at_ms):
        self.check_ids(d, "partner_id", "plan_id")
        if d["partner_id"] in self.partners:
            raise Invalid("duplicate partner %s" % d["partner_id"])
        if d["kind"] not in ("reseller", "distributor", "broker", "referral"):
            raise Invalid("invalid_value kind")
        self.partners[d["partner_id"]] = d["currency"]

    def on_rep_added(self, d, at_ms):
        self.check_ids(d, "rep_id")
        self.partner(d["partner_id"])
        key = (d["partner_id"], d["rep_id"])
        if key in self.reps:
            raise Invalid("duplicate rep %s" % d["rep_id"])
        self.reps.add(key)

    def on_training_completed(self, d, at_ms):
        self.partner(d["partner_id"])
        if "rep_id" in d and (d["partner_id"], d["rep_id"]) not in self.reps:
            raise Invalid("unknown_rep %s" % d["rep_id"])

    def on_deal_registered(self, d, at_ms):
        self.check_ids(d, "deal_id", "customer_id")
        cur = self.partner(d["partner_id"])
        if d["currency"] != cur:
            raise Invalid("currency_mismatch")
        if d["deal_id"] in self.deals:
            raise Invalid("duplicate deal %s" % d["deal_id"])
        if "rep_id" in d and (d["partner_id"], d["rep_id"]) not in self.reps:
            raise Invalid("unknown_rep %s" % d["rep_id"])
        holders = self.open_by_customer.setdefault(d["customer_id"], {})
        if any(p != d["partner_id"] and n > 0 for p, n in holders.items()):
            raise Invalid("channel_conflict %s" % d["customer_id"])
        holders[d["partner_id"]] = holders.get(d["partner_id"], 0) + 1
        self.deals[d["deal_id"]] = [d["partner_id"], d["customer_id"], 0,
                                    "amount_minor" in d, "expected_close" in d, True]

    def deal(self, did):
        deal = self.deals.get(did)
        if deal is None:
            raise Invalid("unknown_deal %s" % did)
        if not deal[5]:
            raise Invalid("deal_closed %s" % did)
        return deal

    def on_deal_stage_changed(self, d, at_ms):
        deal = self.deal(d["deal_id"])
        deal[3] |= "amount_minor" in d
        deal[4] |= "expected_close" in d
        names = [s for s, _ in self.STAGES]
        if d["stage"] not in names:
            raise Invalid("unknown_stage %s" % d["stage"])
        for need in self.STAGES[deal[2]][1]:
            if (need == "amount" and not deal[3]) or (need == "expected_close" and not deal[4]):
                raise Invalid("exit_criteria_unmet %s %s" % (d["deal_id"], need))
        deal[2] = names.index(d["stage"])

    def on_deal_closed(self, d, at_ms):
        deal = self.deal(d["deal_id"])
        deal[5] = False
        self.open_by_customer[deal[1]][deal[0]] -= 1

    def on_sale_recorded(self, d, at_ms):
        self.check_ids(d, "sale_id", "customer_id")
        if self.partner(d["partner_id"]) != d["currency"]:
            raise Invalid("currency_mismatch")
        if d["sale_id"] in self.sales:
            raise Invalid("duplicate sale %s" % d["sale_id"])
        if not (isinstance(d["amount_minor"], int) and 0 < d["amount_minor"] <= 10**15):
            raise Invalid("invalid_value amount")
        if "deal_id" in d and self.deals.get(d["deal_id"], [None])[0] != d["partner_id"]:
            raise Invalid("unknown_deal %s" % d["deal_id"])
        if "rep_id" in d and (d["partner_id"], d["rep_id"]) not in self.reps:
            raise Invalid("unknown_rep %s" % d["rep_id"])
        self.sales[d["sale_id"]] = [d["partner_id"], d["amount_minor"], at_ms, 0]

    def on_sale_refunded(self, d, at_ms):
        s = self.sales.get(d["sale_id"])
        if s is None:
            raise Invalid("unknown_sale %s" % d["sale_id"])
        if at_ms < s[2]:
            raise Invalid("refund_before_sale %s" % d["sale_id"])
        s[3] += d["amount_minor"]
        if d["amount_minor"] <= 0 or s[3] > s[1]:
            raise Invalid("over_refund %s" % d["sale_id"])

    def on_adjustment_recorded(self, d, at_ms):
        if self.partner(d["partner_id"]) != d["currency"] or d["amount_minor"] == 0:
            raise Invalid("invalid adjustment")

    def on_partner_updated(self, d, at_ms):
        raise Invalid("partner.updated is not supported by the peers")

    def on_partner_status_changed(self, d, at_ms):
        self.partner(d["partner_id"])


def nz(v):
    return "" if v is None else str(v)


def main(argv):
    import argparse
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("events")
    ap.add_argument("outdir")
    ap.add_argument("--utc-offset", default="+00:00")
    ap.add_argument("--period", choices=("month", "quarter"), default="month")
    ap.add_argument("--seq-base", type=int, default=0)
    ap.add_argument("--validate", action="store_true")
    a = ap.parse_args(argv)
    clock = Clock(parse_offset(a.utc_offset), a.period == "quarter")
    validator = Validator() if a.validate else None
    os.makedirs(a.outdir, exist_ok=True)
    names = ("partners", "plans", "rules", "brackets", "targets", "sales", "refunds",
             "adjustments", "periods", "onboarding", "trainings", "promos", "promo_ends")
    out = {n: open(os.path.join(a.outdir, n + ".csv"), "w", buffering=1 << 20) for n in names}
    periods = {}
    w_sale, w_refund = out["sales"].write, out["refunds"].write
    loads = json.loads
    seq = a.seq_base
    counts = {}
    wanted = (b"sale.re", b"adjustment.recorded", b"partner.", b"plan.published",
              b"training.completed", b"onboarding.defined", b"promotion.")
    with open(a.events, "rb") as f:
        for raw in f:
            seq += 1
            # Lines that cannot be of a type the peers need are skipped unparsed (the type
            # name would appear in them literally); --validate parses everything.
            if not validator and not any(w in raw for w in wanted):
                counts["other"] = counts.get("other", 0) + 1
                continue
            try:
                ev = loads(raw.decode())
                t = ev["type"]
                d = ev["data"]
                at = clock.parse(ev["at"])
                if validator:
                    validator.event(ev, at)
            except (Invalid, KeyError, ValueError, TypeError, AttributeError) as e:
                sys.stderr.write("load.py: line %d: %s\n" % (seq - a.seq_base, e))
                return 3
            counts[t] = counts.get(t, 0) + 1
            if t == "sale.recorded":
                if "," in d["product"] or '"' in d["product"]:
                    sys.stderr.write("load.py: line %d: a product with , or \" is not "
                                     "supported\n" % (seq - a.seq_base))
                    return 3
                day = clock.local_day(at)
                per, last = clock.period(day)
                periods[per] = last
                w_sale("%d,%s,%s,%s,%s,%d,%d,%s,%d,%s\n" % (
                    seq, d["sale_id"], d["partner_id"], d["customer_id"], d["product"],
                    d["amount_minor"], at, clock.canonical_of(ev["at"], at), day, per))
            elif t == "sale.refunded":
                day = clock.local_day(at)
                per, last = clock.period(day)
                periods[per] = last
                w_refund("%d,%s,%s,%d,%d,%s,%d,%s\n" % (
                    seq, ev["id"], d["sale_id"], d["amount_minor"], at, clock.canonical_of(ev["at"], at),
                    day, per))
            elif t == "adjustment.recorded":
                per, last = clock.period(clock.local_day(at))
                periods[per] = last
                out["adjustments"].write("%d,%s,%s,%d,%d,%s,%s\n" % (
                    seq, ev["id"], d["partner_id"], d["amount_minor"], at, clock.canonical_of(ev["at"], at),
                    per))
            elif t == "partner.registered":
                out["partners"].write("%s,%s,%s,%s,%s,%s\n" % (
                    d["partner_id"], d["kind"], d["tier"], d.get("region", ""), d["plan_id"],
                    d["currency"]))
            elif t == "plan.published":
                write_plan(out, d["plan"])
            elif t == "training.completed":
                out["trainings"].write("%s,%s,%d\n" % (d["partner_id"], d["module"], at))
            elif t == "onboarding.defined":
                for m in d["modules"]:
                    if "," in m or '"' in m:
                        sys.stderr.write("load.py: line %d: a module with , or \" is not "
                                         "supported\n" % (seq - a.seq_base))
                        return 3
                    out["onboarding"].write("%d,%d,%s\n" % (seq, at, m))
            elif t == "promotion.published":
                write_promo(out, seq, d["promotion"])
            elif t == "promotion.ended":
                out["promo_ends"].write("%s,%d,%d\n" % (d["promo_id"], seq,
                                                         day_of_text(d["ends_on"])))
            elif t == "partner.updated":
                sys.stderr.write("load.py: line %d: partner.updated is not supported: the "
                                 "peers assume constant partner attributes\n" % (seq - a.seq_base))
                return 3
    for per in sorted(periods):
        out["periods"].write("%s,%d\n" % (per, periods[per]))
    for f in out.values():
        f.close()
    sys.stderr.write("load.py: %d events (%s)\n" % (
        seq - a.seq_base, ", ".join("%s %d" % kv for kv in sorted(counts.items()))))
    return 0


def day_of_text(s):
    y, m, d = (int(x) for x in s.split("-"))
    return datetime.date(y, m, d).toordinal() - EPOCH


def cert_of(mt):
    c = mt.get("certified")
    return "" if c is None else ("1" if c else "0")


def write_promo(out, seq, p):
    mt = p.get("match", {})
    out["promos"].write("%s,%s,%d,%d,%d,%s,%s,%s,%s,%s,%d,%d,%s\n" % (
        p["promo_id"], p["plan_id"], seq, day_of_text(p["from"]), day_of_text(p["to"]),
        nz(mt.get("tier")), nz(mt.get("kind")), nz(mt.get("region")), nz(mt.get("product")),
        cert_of(mt), p.get("rate_bp", 0), p.get("per_sale_minor", 0), nz(p.get("budget_minor"))))


def write_plan(out, p):
    y, m, d = (int(x) for x in p["effective_from"].split("-"))
    eff_day = datetime.date(y, m, d).toordinal() - EPOCH
    key = "%s,%d" % (p["plan_id"], p["version"])
    out["plans"].write("%s,%d,%s,%s,%s\n" % (
        key, eff_day, nz(p.get("clawback_days")), nz(p.get("new_customer_bonus_minor")),
        nz(p.get("cap_bp"))))
    for i, r in enumerate(p["rules"]):
        mt = r.get("match", {})
        for v in mt.values():
            if v == "":
                raise SystemExit("load.py: an empty match value cannot be told from NULL")
        out["rules"].write("%s,%d,%s,%s,%s,%s,%s\n" % (
            key, i, nz(mt.get("tier")), nz(mt.get("kind")), nz(mt.get("region")),
            nz(mt.get("product")), cert_of(mt)))
        br = r["brackets"]
        for j, b in enumerate(br):
            upper = br[j + 1]["from_minor"] if j + 1 < len(br) else None
            out["brackets"].write("%s,%d,%d,%s,%d\n" % (
                key, i, b["from_minor"], nz(upper), b["rate_bp"]))
    for t in p.get("targets", []):
        out["targets"].write("%s,%d,%d\n" % (key, t["net_revenue_minor"], t["bonus_minor"]))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
