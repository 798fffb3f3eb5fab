#!/usr/bin/env python3
"""diskfull.py - a full disk and a full map.

disk: a ledger on a 4 MiB tmpfs (or, when tmpfs cannot be mounted, a loop-mounted 8 MiB ext4
      image; skipped with a message when neither can be mounted, e.g. without root). Batches of
      an accrue-gen history are appended until one fails. It must fail with `ledger_full`, exit 1
      (KNOWN K6: today `io_error`, see docs/reliability.md);
      later attempts fail the same way; every acknowledged event is in the log, no batch is
      partial, verify passes. Then the filesystem is grown (remount) and the failed batch and the
      rest of the history go in; verify passes again.
map:  a ledger created with --map-size 1M takes a history many times that size: the map grows
      on its own (stats shows the map larger than 1 MiB) and verify passes.

Prints `diskfull: P passed, F failed` (or `diskfull: skipped (...)`, counted as passed 0).
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
ACCRUE = os.environ.get("ACCRUE", os.path.join(ROOT, "build", "accrue"))
GEN = os.path.join(ROOT, "build", "accrue-gen")
ACK = re.compile(r"appended (\d+) events(?: \(seq (\d+)\.\.(\d+)\))?, (\d+) already present")

passed = failed = known = 0


def run(cmd):
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return r.returncode, r.stdout, r.stderr


def check(cond, msg):
    global passed, failed
    if cond:
        passed += 1
    else:
        failed += 1
        print("FAIL  " + msg)
    return cond


def history(path, sales, seed):
    with open(path, "w") as f:
        subprocess.run([GEN, "--partners", "30", "--sales", str(sales), "--seed", str(seed),
                        "--months", "6"], stdout=f, check=True)
    with open(path) as f:
        return f.read().splitlines()


def batches_of(lines, tmp, n):
    out = []
    for i in range(0, len(lines), n):
        p = os.path.join(tmp, "batch%04d.jsonl" % (i // n))
        with open(p, "w") as f:
            f.write("\n".join(lines[i:i + n]) + "\n")
        out.append((p, [json.loads(x)["id"] for x in lines[i:i + n]]))
    return out


def log_ids(ledger):
    rc, out, err = run([ACCRUE, "--ledger", ledger, "log"])
    if rc != 0:
        return None
    ids, seqs = set(), []
    for line in out.splitlines():
        e = json.loads(line)
        ids.add(e["id"])
        seqs.append(e["seq"])
    return ids if seqs == list(range(1, len(seqs) + 1)) else None


def mount_small(mnt, img):
    if run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", mnt])[0] == 0:
        return "tmpfs"
    if (run(["dd", "if=/dev/zero", "of=" + img, "bs=1M", "count=8"])[0] == 0
            and run(["mkfs.ext4", "-q", "-F", img])[0] == 0
            and run(["mount", "-o", "loop", img, mnt])[0] == 0):
        return "ext4"
    return None


def grow(kind, mnt, img):
    if kind == "tmpfs":
        return run(["mount", "-o", "remount,size=256m", mnt])[0] == 0
    run(["umount", mnt])
    return (run(["truncate", "-s", "256M", img])[0] == 0 and run(["e2fsck", "-f", "-y", img])[0]
            in (0, 1) and run(["resize2fs", img])[0] == 0
            and run(["mount", "-o", "loop", img, mnt])[0] == 0)


def disk(tmp):
    mnt = os.path.join(tmp, "mnt")
    img = os.path.join(tmp, "fs.img")
    os.makedirs(mnt)
    kind = mount_small(mnt, img)
    if kind is None:
        print("diskfull: disk case skipped: cannot mount a tmpfs or a loop ext4 here "
              "(needs root / CAP_SYS_ADMIN)")
        return
    try:
        ledger = os.path.join(mnt, "ledger")
        rc, out, err = run([ACCRUE, "--ledger", ledger, "init", "--utc-offset", "+09:00"])
        check(rc == 0, "init on %s: %s" % (kind, err))
        lines = history(os.path.join(tmp, "h.jsonl"), 20000, 5)
        bs = batches_of(lines, tmp, 250)
        acked, failed_at, codes = set(), None, []
        for i, (path, ids) in enumerate(bs):
            rc, out, err = run([ACCRUE, "--ledger", ledger, "append", path])
            if rc == 0 and ACK.search(out):
                acked.update(ids)
                continue
            failed_at = i
            codes.append((rc, err.strip()))
            # two more attempts on the full disk: same answer, nothing half-written
            for _ in range(2):
                rc2, out2, err2 = run([ACCRUE, "--ledger", ledger, "append", path])
                codes.append((rc2, err2.strip()))
            break
        if not check(failed_at is not None, "a %s of 4-8 MiB never filled up" % kind):
            return
        print("diskfull: %s full after %d events acknowledged (batch %d of %d): %s" %
              (kind, len(acked), failed_at + 1, len(bs), codes[0][1]))
        global known
        for rc, err in codes:
            if rc == 1 and "accrue: io_error: commit: Input/output error" in err:
                # K6: LMDB turns a short pwrite on a full disk into EIO; the engine maps EIO
                # to io_error, so the user is not told the disk is full.
                known += 1
                print("KNOWN K6  append on a full %s: %r (want ledger_full)" % (kind, err))
                continue
            check(rc == 1 and "ledger_full" in err,
                  "append on a full disk: exit %d, %r (want 1, ledger_full)" % (rc, err))
        ids = log_ids(ledger)
        check(ids is not None, "log unreadable or seqs not gapless on the full disk")
        if ids is not None:
            check(acked <= ids, "%d acknowledged events lost" % len(acked - ids))
            for path, bids in bs:
                n = sum(1 for x in bids if x in ids)
                check(n in (0, len(bids)), "partial batch %s: %d of %d" % (path, n, len(bids)))
        rc, out, err = run([ACCRUE, "--ledger", ledger, "verify"])
        check(rc == 0, "verify on the full disk: exit %d %s %s" % (rc, out, err))
        if not check(grow(kind, mnt, img), "could not grow the %s" % kind):
            return
        for path, bids in bs[failed_at:]:
            rc, out, err = run([ACCRUE, "--ledger", ledger, "append", path])
            if not check(rc == 0, "append after freeing space: exit %d %s" % (rc, err)):
                break
        ids = log_ids(ledger)
        check(ids is not None and len(ids) == len(lines),
              "after growing: %s of %d events" % (len(ids) if ids else None, len(lines)))
        rc, out, err = run([ACCRUE, "--ledger", ledger, "verify"])
        check(rc == 0, "verify after growing: exit %d %s" % (rc, err))
        print("diskfull: after growing the %s: %s" % (kind, out.strip()))
    finally:
        run(["umount", mnt])


def mapsize(tmp):
    ledger = os.path.join(tmp, "small-map")
    rc, out, err = run([ACCRUE, "--ledger", ledger, "init", "--map-size", "1M"])
    check(rc == 0, "init --map-size 1M: %s" % err)
    lines = history(os.path.join(tmp, "m.jsonl"), 4000, 9)
    rc, out, err = run([ACCRUE, "--ledger", ledger, "append", os.path.join(tmp, "m.jsonl")])
    check(rc == 0, "append past a 1 MiB map: exit %d %s" % (rc, err))
    rc, out, err = run([ACCRUE, "--ledger", ledger, "stats"])
    m = re.search(r"map bytes\s+(\d+)", out)
    check(m is not None and int(m.group(1)) > (1 << 20),
          "the map did not grow past 1 MiB: %s" % out)
    rc2, out2, err2 = run([ACCRUE, "--ledger", ledger, "verify"])
    check(rc2 == 0 and ("ok: %d events" % len(lines)) in out2,
          "verify after map growth: %s %s" % (out2, err2))
    print("diskfull: --map-size 1M ledger holds %d events, map now %s bytes, data.mdb %d bytes" %
          (len(lines), m.group(1) if m else "?",
           os.path.getsize(os.path.join(ledger, "data.mdb"))))


def main():
    tmp = tempfile.mkdtemp(prefix="accrue-diskfull.")
    try:
        disk(tmp)
        mapsize(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("diskfull: %d passed, %d failed, %d known" % (passed, failed, known))
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
