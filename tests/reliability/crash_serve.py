#!/usr/bin/env python3
"""crash_serve.py - the server crash loop: SIGKILL `accrue serve` under concurrent HTTP ingest.

On a fresh ledger the server is started on a free loopback port (`serve --listen 127.0.0.1:0`,
the port read from its `listening on` line) with an ingest token (`token create --role ingest`).
The first request registers a plan and four partners. Then, for every kill, N client threads
(default 16, one keep-alive connection each) post `POST /v1/events` JSON arrays of 1 to 200
sale.recorded events with unique ids, recording every request: its ids and, for a 200, the
answer's first_seq/last_seq/appended/duplicates (an *acknowledged* request). The server gets a
SIGKILL after a random delay of 20-400 ms from the start of the load; on half of the kills the
driver instead waits (from a random 20-300 ms, at most until 400 ms) until one of the server's
threads is inside a write or sync system call on data.mdb (/proc/PID/task/*/syscall and the fd
it names: write, pwrite64, writev, pwritev, fsync, fdatasync: the commit's page writes, its
fsync, or the meta page write), and kills it right there. After every kill the ledger is checked with `accrue log --format jsonl` and
`accrue verify`:

  * seqs are gapless from 1, and the log holds exactly the setup events and the events of the
    requests found present (nothing extra, nothing twice);
  * every event of every acknowledged request is present, at the acknowledged seqs, in body
    order (first_seq + k for the k-th event);
  * each request is all or nothing (its ids all present or all absent), acknowledged or not;
  * a request that was not acknowledged keeps the state first seen after its kill (present or
    absent) until it is resent;
  * `accrue verify` exits 0;
  * a request answered with anything but 200, or a connection error before the kill, fails.

The server is then restarted on the same ledger and the load goes on; before it, a few
unacknowledged requests are resent (one found committed and one found absent when there are
such): a committed one must answer `appended 0`, `duplicates` = its size and the seqs the log
shows; an absent one must be appended whole. One acknowledged request is resent as well (all
duplicates, the same seqs). A new ledger starts every --per-ledger kills (keeps `log` short).
At the end the server runs one more load and is stopped with SIGTERM (exit 0), and the ledger
is checked once more.

Exit 0 when every check held; the last line is `crash_serve: P passed, F failed` (one check
group per kill plus one per ledger end). Standard library only; loopback only; bounded: --kills
kills, each load at most 400 ms, HTTP timeouts of 10 s.

Usage: crash_serve.py [--kills N] [--clients N] [--per-ledger N] [--accrue build/accrue]
                      [--seed S] [--keep] [-v]
"""
import argparse
import http.client
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

# x86_64 and aarch64 numbers of the system calls a commit spends its time in (on data.mdb).
COMMIT_SYSCALLS = {
    "x86_64": {1: "write", 18: "pwrite64", 20: "writev", 74: "fsync", 75: "fdatasync",
               296: "pwritev"},
    "aarch64": {64: "write", 68: "pwrite64", 66: "writev", 82: "fsync", 83: "fdatasync",
                70: "pwritev"},
}.get(os.uname().machine, {})

PARTNERS = ["P1", "P2", "P3", "P4"]
TIERS = ["gold", "silver", "bronze", "gold"]
PLAN = {"plan_id": "std", "version": 1, "effective_from": "2026-01-01", "currency": "JPY",
        "ceiling_bp": 4000,
        "rules": [{"match": {"tier": "gold"}, "brackets": [{"from_minor": 0, "rate_bp": 1500}]},
                  {"match": {}, "brackets": [{"from_minor": 0, "rate_bp": 500}]}],
        "clawback_days": 90}
SIZES = [1, 1, 2, 3, 5, 8, 13, 20, 32, 50, 64, 100, 128, 150, 199, 200]


def run(cmd, **kw):
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def setup_events():
    evs = [{"id": "plan-std-v1", "type": "plan.published", "at": "2025-12-31T00:00:00Z",
            "data": {"plan": PLAN}}]
    for p, t in zip(PARTNERS, TIERS):
        evs.append({"id": "p-" + p, "type": "partner.registered", "at": "2025-12-31T00:00:00Z",
                    "data": {"partner_id": p, "name": "Partner " + p, "kind": "reseller",
                             "tier": t, "plan_id": "std", "currency": "JPY"}})
    return evs


class Req:
    """One POST /v1/events: its ids and what became of it."""
    __slots__ = ("ids", "evs", "state", "first", "last", "appended", "dup", "seen", "inc")

    def __init__(self, evs, inc):
        self.evs = evs          # the body, kept while a resend may pick it
        self.ids = [e["id"] for e in evs]
        self.inc = inc          # server incarnation that got it
        self.state = "sent"     # sent -> ack | unack | bad
        self.first = self.last = None
        self.appended = self.dup = 0
        self.seen = None        # unack: present (True) / absent (False) at the first check


class Server:
    def __init__(self, accrue, ledger, errpath):
        self.errpath = errpath
        self.err = open(errpath, "w")
        self.p = subprocess.Popen([accrue, "--ledger", ledger, "serve", "--listen",
                                   "127.0.0.1:0", "--header-timeout-ms", "5000"],
                                  stdout=subprocess.DEVNULL, stderr=self.err)
        self.port = None
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with open(errpath) as f:
                m = re.search(r"listening on http://127\.0\.0\.1:(\d+)", f.read(4096))
            if m:
                self.port = int(m.group(1))
                break
            if self.p.poll() is not None:
                break
            time.sleep(0.005)
        self.t_ready = time.monotonic()

    def conn(self):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)

    def in_commit(self):
        """The name of the commit system call one of the server's threads is in, else None."""
        try:
            tids = os.listdir("/proc/%d/task" % self.p.pid)
        except OSError:
            return None
        for t in tids:
            try:
                with open("/proc/%d/task/%s/syscall" % (self.p.pid, t)) as f:
                    w = f.read().split(None, 1)
            except OSError:
                continue
            if not (w and w[0].isdigit() and int(w[0]) in COMMIT_SYSCALLS and len(w) > 1):
                continue
            # write/writev also serve sockets and the access log: count only calls on the
            # ledger's data.mdb (the first argument is the fd).
            try:
                fd = int(w[1].split()[0], 16)
                target = os.readlink("/proc/%d/fd/%d" % (self.p.pid, fd))
            except (OSError, ValueError, IndexError):
                continue
            if target.endswith("/data.mdb"):
                return COMMIT_SYSCALLS[int(w[0])]
        return None

    def kill(self):
        alive = self.p.poll() is None
        if alive:
            self.p.send_signal(signal.SIGKILL)
        self.p.wait()
        self.err.close()
        return alive

    def stop(self):
        self.p.send_signal(signal.SIGTERM)
        try:
            rc = self.p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.p.kill()
            rc = self.p.wait()
            rc = "timeout"
        self.err.close()
        return rc


def post(conn, token, events):
    body = json.dumps(events).encode()
    conn.request("POST", "/v1/events", body=body,
                 headers={"Authorization": "Bearer " + token,
                          "Content-Type": "application/json"})
    r = conn.getresponse()
    return r.status, r.read()


class CrashServe:
    def __init__(self, a):
        self.a = a
        self.rng = random.Random(a.seed)
        self.tmp = tempfile.mkdtemp(prefix="accrue-crash-serve.")
        # A private copy of the binary: a rebuild in the tree during the run (make clean, make
        # test in another shell) must not change or remove the program under test.
        exe = os.path.join(self.tmp, "accrue")
        shutil.copy2(a.accrue, exe)
        a.accrue = exe
        self.passed = self.failed = 0
        self.kills = 0
        self.kills_in_commit = {}   # syscall name -> kills delivered inside it
        self.kills_timed = 0        # kills at the plain random delay
        self.ledgers = 0
        self.incarnations = 0
        self.acked_reqs = self.acked_events = 0
        self.unacked = self.unacked_committed = self.unacked_absent = 0
        self.resent = self.resent_dup = self.resent_new = self.resent_acked = 0
        self.lost = 0
        self.partial = 0
        self.max_events = 0

    def fail(self, msg):
        self.failed += 1
        print("FAIL  " + msg, flush=True)

    # ---- ledger and server ----
    def new_ledger(self):
        self.ledgers += 1
        self.dir = os.path.join(self.tmp, "ledger%d" % self.ledgers)
        r = run([self.a.accrue, "--ledger", self.dir, "init", "--period", "month",
                 "--utc-offset", "+09:00"])
        if r.returncode != 0:
            sys.exit("crash_serve: init failed: " + r.stderr)
        r = run([self.a.accrue, "--ledger", self.dir, "--quiet", "token", "create", "--role",
                 "ingest", "--name", "crash"])
        if r.returncode != 0 or not re.fullmatch(r"[0-9a-f]{64}", r.stdout.strip()):
            sys.exit("crash_serve: token create failed: %r %r" % (r.stdout, r.stderr))
        self.token = r.stdout.strip()
        self.reqs = []
        self.ack_pick = None
        self.setup_ids = [e["id"] for e in setup_events()]
        self.setup_done = False
        self.ledger_kills = 0

    def start(self):
        self.incarnations += 1
        srv = Server(self.a.accrue, self.dir,
                     os.path.join(self.tmp, "srv%d.err" % self.incarnations))
        if srv.port is None:
            with open(srv.errpath) as f:
                msg = f.read(2000)
            srv.kill()
            self.fail("server did not start (ledger %d): %s" % (self.ledgers, msg.strip()))
            return None
        if not self.setup_done:
            try:
                st, data = post(srv.conn(), self.token, setup_events())
            except OSError as e:
                st, data = -1, str(e).encode()
            if st != 200:
                srv.kill()
                self.fail("setup request: %d %s" % (st, data[:300]))
                return None
            self.setup_done = True
        return srv

    # ---- the load ----
    def load(self, srv, until_kill):
        """Run the client threads; kill the server (until_kill) or run 300 ms then return.
        Returns (killed, kill time, how)."""
        stop = threading.Event()
        lists = [[] for _ in range(self.a.clients)]
        early = []   # connection errors before the kill
        inc = self.incarnations
        base_rng = self.rng.random()
        t_kill = [None]

        def worker(i):
            rng = random.Random("%s-%d" % (base_rng, i))
            mine = lists[i]
            try:
                c = srv.conn()
            except OSError as e:
                early.append((time.monotonic(), "connect: %s" % e))
                return
            j = 0
            while not stop.is_set():
                n = rng.choice(SIZES) if rng.random() < 0.7 else rng.randint(1, 200)
                pref = "s%d-%d-%d-%d" % (self.ledgers, inc, i, j)
                evs = []
                for k in range(n):
                    day = rng.randint(1, 178)
                    evs.append({"id": "%s-%d" % (pref, k), "type": "sale.recorded",
                                "at": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                    time.gmtime(1767657600 + day * 86400 +
                                                                rng.randint(0, 86399))),
                                "data": {"sale_id": "S%s-%d" % (pref, k),
                                         "partner_id": rng.choice(PARTNERS),
                                         "customer_id": "C%d" % rng.randint(1, 500),
                                         "product": rng.choice(["license", "support",
                                                                "training"]),
                                         "amount_minor": rng.randint(1, 5000) * 100,
                                         "currency": "JPY"}})
                r = Req(evs, inc)
                mine.append(r)
                j += 1
                try:
                    st, data = post(c, self.token, evs)
                except (OSError, http.client.HTTPException) as e:
                    r.state = "unack"
                    if t_kill[0] is None or time.monotonic() < t_kill[0]:
                        # Not caused by the kill (yet): tolerated only if the kill follows at
                        # once (checked below against the kill time).
                        early.append((time.monotonic(), "%s: %r" % (pref, e)))
                    return
                if st != 200:
                    r.state = "bad"
                    self.fail("%s (%d events): status %d %s" % (pref, n, st, data[:300]))
                    return
                try:
                    d = json.loads(data)
                    r.first, r.last = d["first_seq"], d["last_seq"]
                    r.appended, r.dup = d["appended"], d["duplicates"]
                except (ValueError, KeyError, TypeError):
                    r.state = "bad"
                    self.fail("%s: answer %r" % (pref, data[:300]))
                    return
                r.state = "ack"

        ts = [threading.Thread(target=worker, args=(i,), daemon=True)
              for i in range(self.a.clients)]
        t0 = time.monotonic()
        for t in ts:
            t.start()
        how = None
        if until_kill:
            if COMMIT_SYSCALLS and self.rng.random() < 0.5:
                end = t0 + 0.4
                time.sleep(self.rng.uniform(0.02, 0.3))
                while time.monotonic() < end:
                    how = srv.in_commit()
                    if how:
                        break
            else:
                time.sleep(max(0.0, t0 + self.rng.uniform(0.02, 0.4) - time.monotonic()))
            t_kill[0] = time.monotonic()
            killed = srv.kill()
        else:
            time.sleep(0.3)
            killed = False
        stop.set()
        for t in ts:
            t.join(30)
        if any(t.is_alive() for t in ts):
            self.fail("a client thread is still blocked 30 s after the load ended")
        for at, what in early:
            if t_kill[0] is None or at < t_kill[0]:
                self.fail("connection error while the server was up: " + what)
        for l in lists:
            self.reqs.extend(l)
        return killed, t_kill[0] - t0 if t_kill[0] else None, how

    # ---- resending unacknowledged requests ----
    def resend(self, srv):
        un = [r for r in self.reqs if r.state == "unack"]
        pick = []
        pres = [r for r in un if r.seen]
        absent = [r for r in un if r.seen is False]
        if pres:
            pick.append(self.rng.choice(pres))
        if absent:
            pick.append(self.rng.choice(absent))
        rest = [r for r in un if r not in pick]
        self.rng.shuffle(rest)
        pick += rest[:max(0, self.a.resend - len(pick))]
        if self.ack_pick is not None:
            pick.append(self.ack_pick)
        c = srv.conn()
        for r in pick:
            try:
                st, data = post(c, self.token, r.evs)
                d = json.loads(data) if st == 200 else None
            except (OSError, http.client.HTTPException, ValueError) as e:
                self.fail("resend of %s: %r" % (r.ids[0], e))
                return
            if d is None:
                self.fail("resend of %s: status %d %s" % (r.ids[0], st, data[:300]))
                return
            self.resent += 1
            n = len(r.ids)
            was_present = r.state == "ack" or r.seen
            if was_present:
                seqs = [self.seq_of[i] for i in r.ids]
                if d["appended"] != 0 or d["duplicates"] != n or \
                        (d["first_seq"], d["last_seq"]) != (min(seqs), max(seqs)):
                    self.fail("resend of committed %s (%d events, seq %d..%d): answer %r" %
                              (r.ids[0], n, min(seqs), max(seqs), d))
                    continue
                if r.state == "ack":
                    self.resent_acked += 1
                else:
                    self.resent_dup += 1
                    r.state, r.first, r.last, r.appended, r.dup = \
                        "ack", d["first_seq"], d["last_seq"], 0, n
            else:
                if d["appended"] != n or d["duplicates"] != 0:
                    self.fail("resend of absent %s (%d events): answer %r" % (r.ids[0], n, d))
                    continue
                self.resent_new += 1
                r.state, r.first, r.last, r.appended, r.dup = \
                    "ack", d["first_seq"], d["last_seq"], n, 0
                self.acked_reqs += 1
                self.acked_events += n

    # ---- the checks ----
    def check(self, phase):
        ok = True
        r = run([self.a.accrue, "--ledger", self.dir, "log", "--format", "jsonl"])
        if r.returncode != 0:
            self.fail("%s: log exited %d: %s" % (phase, r.returncode, r.stderr.strip()))
            return False
        seq_of = {}
        expect = 1
        for line in r.stdout.splitlines():
            e = json.loads(line)
            if e["seq"] != expect:
                self.fail("%s: seq gap: expected %d, got %d" % (phase, expect, e["seq"]))
                ok = False
                break
            if e["id"] in seq_of:
                self.fail("%s: id %s stored twice (seq %d, %d)" % (phase, e["id"],
                                                                  seq_of[e["id"]], e["seq"]))
                ok = False
            seq_of[e["id"]] = e["seq"]
            expect += 1
        self.seq_of = seq_of
        self.max_events = max(self.max_events, len(seq_of))
        accounted = sum(1 for i in self.setup_ids if i in seq_of)
        if self.setup_done and accounted != len(self.setup_ids):
            self.fail("%s: setup events missing" % phase)
            ok = False
        for q in self.reqs:
            n = len(q.ids)
            present = sum(1 for i in q.ids if i in seq_of)
            accounted += present
            if present not in (0, n):
                self.partial += 1
                self.fail("%s: request %s: %d of %d events present (partial batch)" %
                          (phase, q.ids[0], present, n))
                ok = False
                continue
            if q.state == "ack":
                if present != n:
                    self.lost += n - present
                    self.fail("%s: request %s acknowledged (seq %d..%d) but %d events missing" %
                              (phase, q.ids[0], q.first, q.last, n - present))
                    ok = False
                    continue
                want = list(range(q.first, q.first + n))
                got = [seq_of[i] for i in q.ids]
                if q.last != q.first + n - 1 or got != want:
                    self.fail("%s: request %s (%d events) acknowledged seq %d..%d, the log "
                              "has them at %d..%d%s" %
                              (phase, q.ids[0], n, q.first, q.last, min(got), max(got),
                               "" if got == sorted(got) else ", out of order"))
                    ok = False
            elif q.state == "unack":
                if q.seen is None:
                    q.seen = present == n
                    self.unacked += 1
                    if q.seen:
                        self.unacked_committed += 1
                    else:
                        self.unacked_absent += 1
                elif q.seen != (present == n):
                    self.fail("%s: unacknowledged request %s was %s, now %s" %
                              (phase, q.ids[0], "present" if q.seen else "absent",
                               "present" if present else "absent"))
                    ok = False
            elif q.state == "sent":
                self.fail("%s: request %s neither answered nor failed" % (phase, q.ids[0]))
                ok = False
        # Keep the bodies a resend may pick: unacknowledged requests, and one acknowledged
        # request of the last load.
        acked = [q for q in self.reqs if q.state == "ack" and q.evs is not None]
        self.ack_pick = self.rng.choice(acked) if acked else None
        for q in self.reqs:
            if q.state != "unack" and q is not self.ack_pick:
                q.evs = None
        if accounted != len(seq_of):
            self.fail("%s: log holds %d events, the setup and the requests account for %d" %
                      (phase, len(seq_of), accounted))
            ok = False
        v = run([self.a.accrue, "--ledger", self.dir, "verify"])
        if v.returncode != 0:
            self.fail("%s: verify exited %d: %s %s" % (phase, v.returncode, v.stdout.strip(),
                                                       v.stderr.strip()))
            ok = False
        if ok:
            self.passed += 1
        return ok

    def count_acks(self, start):
        for q in self.reqs[start:]:
            if q.state == "ack":
                self.acked_reqs += 1
                self.acked_events += q.appended
                if q.appended != len(q.ids) or q.dup != 0:
                    self.fail("request %s (new ids): appended %d, duplicates %d of %d" %
                              (q.ids[0], q.appended, q.dup, len(q.ids)))

    def main(self):
        t_start = time.monotonic()
        self.new_ledger()
        srv = self.start()
        while srv is not None and self.kills < self.a.kills and self.failed == 0:
            n0 = len(self.reqs)
            killed, at, how = self.load(srv, True)
            if not killed:
                self.fail("the server had exited before the kill (rc %s): %s" %
                          (srv.p.returncode, open(srv.errpath).read()[-600:]))
                break
            self.kills += 1
            self.ledger_kills += 1
            if how:
                self.kills_in_commit[how] = self.kills_in_commit.get(how, 0) + 1
            else:
                self.kills_timed += 1
            self.count_acks(n0)
            ok = self.check("kill %d" % self.kills)
            if self.a.verbose:
                print("kill %d at %.0f ms%s: %d requests, %d events in the log" %
                      (self.kills, at * 1000, " in " + how if how else "",
                       len(self.reqs) - n0, len(self.seq_of)), flush=True)
            if not ok:
                break
            if self.ledger_kills >= self.a.per_ledger and self.kills < self.a.kills:
                self.new_ledger()
            srv = self.start()
            if srv is None:
                break
            self.resend(srv)
        if srv is not None and self.failed == 0:
            # The restart goes on: one more load without a kill, then a graceful stop.
            n0 = len(self.reqs)
            self.load(srv, False)
            self.count_acks(n0)
            rc = srv.stop()
            if rc != 0:
                self.fail("SIGTERM: server exit status %s" % rc)
            self.check("final")
        elif srv is not None:
            srv.kill()
        secs = time.monotonic() - t_start
        inc = sum(self.kills_in_commit.values())
        print("crash_serve: %d kills of a live server under %d concurrent clients (%d inside a "
              "commit system call: %s; %d at a random 20-400 ms), %d ledgers, %d server starts"
              % (self.kills, self.a.clients, inc,
                 ", ".join("%s %d" % kv for kv in sorted(self.kills_in_commit.items())) or "-",
                 self.kills_timed, self.ledgers, self.incarnations))
        print("crash_serve: %d requests / %d events acknowledged, %d acknowledged events lost, "
              "%d partial batches; %d unacknowledged requests (%d committed, %d absent); "
              "%d resent (%d committed -> all duplicates, %d absent -> appended, "
              "%d acknowledged -> all duplicates); largest ledger %d events; %.0f s" %
              (self.acked_reqs, self.acked_events, self.lost, self.partial, self.unacked,
               self.unacked_committed, self.unacked_absent, self.resent, self.resent_dup,
               self.resent_new, self.resent_acked, self.max_events, secs))
        if self.a.keep or self.failed:
            print("crash_serve: kept " + self.tmp)
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)
        print("crash_serve: %d passed, %d failed" % (self.passed, self.failed))
        return 0 if self.failed == 0 else 1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kills", type=int, default=200)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--per-ledger", type=int, default=10)
    ap.add_argument("--resend", type=int, default=3)
    ap.add_argument("--accrue", default=os.environ.get("ACCRUE", "build/accrue"))
    ap.add_argument("--seed", type=int, default=int(os.environ.get("CRASH_SEED", "1")))
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args()
    os.chdir(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
    if not os.access(args.accrue, os.X_OK):
        print("crash_serve: %s is not built" % args.accrue)
        print("crash_serve: 0 passed, 1 failed")
        sys.exit(1)
    sys.exit(CrashServe(args).main())


if __name__ == "__main__":
    main()
