#!/usr/bin/env python3
"""crash.py - the crash loop: SIGKILL `accrue append` at random points, then check the ledger.

A history from accrue-gen is cut into consecutive batches of random sizes (some large, so the
write transaction is long enough to be hit). Each batch is submitted with `accrue append FILE`
and, on most attempts, the process is SIGKILLed after a random delay drawn from the range of
durations seen so far. A batch is *acknowledged* only when the process exited 0 and printed
`appended N events (seq A..B), M already present`. After every kill (and at the end) the ledger
is checked:

  * seqs are gapless from 1 (accrue log);
  * every event of every acknowledged batch is present, at the seqs that were acknowledged;
  * no partial batch: for every batch submitted so far, all or none of its ids are in the log;
  * `accrue verify` exits 0;
  * the next append continues (the killed batch is resubmitted: ids are idempotent, so a batch
    that did commit before the kill answers `already present`).

When the history is used up a new ledger (next seed) is started. Exit 0 when every check held;
the last line is `crash: P passed, F failed` (one check group per kill plus the final one).

Standard library only. Usage: crash.py [--kills N] [--accrue build/accrue] [--seed S] [--keep]
"""
import argparse
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

ACK_RE = re.compile(r"appended (\d+) events(?: \(seq (\d+)\.\.(\d+)\))?, (\d+) already present")


def run(cmd, **kw):
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


class Crash:
    def __init__(self, args):
        self.a = args
        self.rng = random.Random(args.seed)
        self.tmp = tempfile.mkdtemp(prefix="accrue-crash.")
        self.kills = 0          # SIGKILLs delivered to a live append
        self.kills_committed = 0  # ... after which the batch turned out committed
        self.kills_absent = 0     # ... after which it turned out absent
        self.acked_batches = 0
        self.acked_events = 0
        self.lost = 0           # acknowledged events missing after a kill (must stay 0)
        self.partial = 0        # batches seen partially applied (must stay 0)
        self.passed = 0
        self.failed = 0
        self.ledgers = 0
        self.durations = {}     # batch size -> wall time of the last completed append

    # ---- a ledger and its batches ----
    def new_ledger(self):
        self.ledgers += 1
        seed = self.a.seed * 1000 + self.ledgers
        self.dir = os.path.join(self.tmp, "ledger%d" % self.ledgers)
        r = run([self.a.accrue, "--ledger", self.dir, "init", "--period", "month",
                 "--utc-offset", "+09:00"])
        if r.returncode != 0:
            sys.exit("crash: init failed: " + r.stderr)
        gen = run([self.a.gen, "--partners", "20", "--sales", str(self.a.sales),
                   "--seed", str(seed), "--months", "6"])
        lines = gen.stdout.splitlines()
        self.batches = []     # (path, [ids])
        i = 0
        while i < len(lines):
            # mostly mid-size, sometimes large batches: long transactions to kill inside
            n = self.rng.choice([1, 5, 20, 50, 100, 200, 400, 800, 1500])
            chunk = lines[i:i + n]
            path = os.path.join(self.tmp, "b%d_%d.jsonl" % (self.ledgers, len(self.batches)))
            with open(path, "w") as f:
                f.write("\n".join(chunk) + "\n")
            self.batches.append((path, [json.loads(x)["id"] for x in chunk]))
            i += n
        self.next_batch = 0
        self.acked = {}       # batch index -> (first_seq, last_seq) when it appended new events

    def delay(self, size):
        """Half of the kills anywhere in the run, half near its end (the commit and fsync),
        scaled by the last completed append of the same batch size."""
        est = self.durations.get(size) or (max(self.durations.values()) if self.durations
                                           else 0.05)
        if self.rng.random() < 0.5:
            return self.rng.uniform(0, est * 1.1)
        return self.rng.uniform(est * 0.6, est * 1.1)

    # ---- one attempt ----
    def attempt(self, kill):
        path, ids = self.batches[self.next_batch]
        t0 = time.monotonic()
        p = subprocess.Popen([self.a.accrue, "--ledger", self.dir, "append", path],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        killed = False
        if kill:
            d = self.delay(len(ids))
            try:
                p.wait(timeout=d)
            except subprocess.TimeoutExpired:
                p.send_signal(signal.SIGKILL)
                killed = True
        out, err = p.communicate()
        if not killed:
            self.durations[len(ids)] = time.monotonic() - t0
            if p.returncode != 0:
                self.fail("append of %s exited %d: %s" % (path, p.returncode, err.strip()))
                return None
            m = ACK_RE.search(out)
            if not m:
                self.fail("append of %s printed no acknowledgement: %r" % (path, out))
                return None
            new, a, b, dup = (int(x) if x is not None else 0 for x in m.groups())
            if new + dup != len(ids):
                self.fail("batch %s: %d new + %d dup != %d events" % (path, new, dup, len(ids)))
            if new:
                self.acked[self.next_batch] = (a, b)
                self.acked_events += new
            elif self.next_batch not in self.acked:
                # A resubmission after a kill that had committed: acknowledged now, at the
                # seqs the log shows (checked by check()).
                self.acked[self.next_batch] = None
            self.acked_batches += 1
            self.next_batch += 1
        return killed

    def fail(self, msg):
        self.failed += 1
        print("FAIL  " + msg)

    # ---- the checks after a kill ----
    def check(self, killed_batch=None):
        ok = True
        r = run([self.a.accrue, "--ledger", self.dir, "log"])
        if r.returncode != 0:
            self.fail("log exited %d: %s" % (r.returncode, r.stderr.strip()))
            return False
        seq_of = {}
        expect = 1
        for line in r.stdout.splitlines():
            e = json.loads(line)
            if e["seq"] != expect:
                self.fail("seq gap: expected %d, got %d" % (expect, e["seq"]))
                ok = False
                break
            seq_of[e["id"]] = e["seq"]
            expect += 1
        upto = self.next_batch + (1 if killed_batch is not None else 0)
        for bi in range(min(upto, len(self.batches))):
            _, ids = self.batches[bi]
            present = sum(1 for i in ids if i in seq_of)
            if present not in (0, len(ids)):
                self.partial += 1
                self.fail("batch %d: %d of %d events present (partial batch)" %
                          (bi, present, len(ids)))
                ok = False
            if bi in self.acked and present != len(ids):
                self.lost += len(ids) - present
                self.fail("batch %d acknowledged but %d events missing" %
                          (bi, len(ids) - present))
                ok = False
            rng = self.acked.get(bi)
            if rng is not None and present == len(ids):
                seqs = sorted(seq_of[i] for i in ids)
                # ids of a batch may repeat an earlier event (never in accrue-gen output), so
                # the acknowledged range must hold exactly this batch's events.
                if (seqs[0], seqs[-1]) != rng:
                    self.fail("batch %d acknowledged seq %d..%d, log has %d..%d" %
                              (bi, rng[0], rng[1], seqs[0], seqs[-1]))
                    ok = False
        if killed_batch is not None:
            _, ids = self.batches[killed_batch]
            if all(i in seq_of for i in ids):
                self.kills_committed += 1
            else:
                self.kills_absent += 1
        v = run([self.a.accrue, "--ledger", self.dir, "verify"])
        if v.returncode != 0:
            self.fail("verify exited %d after kill: %s %s" % (v.returncode, v.stdout.strip(),
                                                             v.stderr.strip()))
            ok = False
        if ok:
            self.passed += 1
        return ok

    def main(self):
        self.new_ledger()
        t_start = time.monotonic()
        while self.kills < self.a.kills:
            if self.next_batch >= len(self.batches):
                if not self.check():
                    break
                self.new_ledger()
            kill = self.rng.random() < 0.8
            bi = self.next_batch
            killed = self.attempt(kill)
            if killed:
                self.kills += 1
                if not self.check(killed_batch=bi):
                    break
                if self.a.verbose:
                    print("kill %d: batch %d (%d events)" % (self.kills, bi,
                                                               len(self.batches[bi][1])))
            elif killed is None:
                break
        # The next append continues: finish the current history without kills.
        while self.failed == 0 and self.next_batch < len(self.batches):
            if self.attempt(False) is None:
                break
        if self.failed == 0:
            self.check()
        secs = time.monotonic() - t_start
        print("crash: %d kills of a live append (%d left the batch committed, %d absent), "
              "%d ledgers, %d batches / %d events acknowledged, %d acknowledged events lost, "
              "%d partial batches, %.0f s" %
              (self.kills, self.kills_committed, self.kills_absent, self.ledgers,
               self.acked_batches, self.acked_events, self.lost, self.partial, secs))
        if not self.a.keep:
            shutil.rmtree(self.tmp, ignore_errors=True)
        else:
            print("crash: kept " + self.tmp)
        print("crash: %d passed, %d failed" % (self.passed, self.failed))
        return 0 if self.failed == 0 else 1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kills", type=int, default=200)
    ap.add_argument("--accrue", default=os.environ.get("ACCRUE", "build/accrue"))
    ap.add_argument("--gen", default="build/accrue-gen")
    ap.add_argument("--sales", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=int(os.environ.get("CRASH_SEED", "1")))
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args()
    os.chdir(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
    sys.exit(Crash(args).main())


if __name__ == "__main__":
    main()
