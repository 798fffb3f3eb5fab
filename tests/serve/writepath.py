#!/usr/bin/env python3
"""writepath.py - the cheap request path of `accrue serve` (issue 11, item 6), as regression tests.

    writepath.py BASE_URL INGEST_TOKEN FEED_TOKEN

Standard library only; called by tests/cli/test_serve.sh. What it holds the server to:

- pipelined appends on one connection (one write holding many requests, a 422 and a GET among
  them) are answered in order, each exactly once, with increasing seqs;
- a response larger than what the socket takes at once (the server then finishes it with a
  write request, not the direct write) arrives whole, and the request pipelined behind it is
  answered after it, on a client that does not read for a while;
- a client that sends half a request and waits, or its head one byte at a time, is answered
  normally once the rest comes; a bare LF or a lone CR inside a header value is still 400;
- a request does not inherit anything of the one before it on the same connection (requests
  and write jobs are reused by the server): an Idempotency-Key, a Content-Type.
Exits 0 when every check held, 1 otherwise.
"""
import json
import os
import socket
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from client import check, ev, status_of, FAILS  # noqa: E402


def connect(base):
    u = urllib.parse.urlparse(base)
    return socket.create_connection((u.hostname, u.port), timeout=10)


def read_responses(s, n, first_wait=0.0):
    """Reads n whole responses (Content-Length framed) from s: [(status, headers, body)]."""
    if first_wait:
        time.sleep(first_wait)
    buf, out = b"", []
    while len(out) < n:
        end = buf.find(b"\r\n\r\n")
        if end >= 0:
            head = buf[:end].decode("latin1")
            clen = 0
            for line in head.split("\r\n")[1:]:
                k, _, v = line.partition(":")
                if k.strip().lower() == "content-length":
                    clen = int(v)
            if len(buf) >= end + 4 + clen:
                out.append((int(head.split(" ")[1]), head, buf[end + 4:end + 4 + clen]))
                buf = buf[end + 4 + clen:]
                continue
        d = s.recv(1 << 20)
        if not d:
            break
        buf += d
    return out, buf


def post(body, token, extra=b"", ctype=b"application/json"):
    return (b"POST /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + token.encode() +
            b"\r\nContent-Type: " + ctype + b"\r\n" + extra +
            b"Content-Length: %d\r\n\r\n" % len(body) + body)


def pipelined(base, tok, feed_tok):
    run = "wp%d" % os.getpid()
    reqs, want = [], []
    for i in range(20):
        if i == 7:
            reqs.append(post(b'[{"id":"bad id","type":"nope"}]', tok))
            want.append(422)
        elif i == 13:
            reqs.append(b"GET /v1/events?from=1&limit=1 HTTP/1.1\r\nHost: x\r\n"
                        b"Authorization: Bearer " + feed_tok.encode() + b"\r\n\r\n")
            want.append(200)
        else:
            reqs.append(post(json.dumps([ev("%s-%d" % (run, i))]).encode(), tok))
            want.append(200)
    s = connect(base)
    s.sendall(b"".join(reqs))
    got, rest = read_responses(s, len(reqs))
    s.close()
    sts = [g[0] for g in got]
    check(sts == want, "pipelined appends answered in order: %r" % sts)
    check(rest == b"", "no bytes after the last answer: %r" % rest[:80])
    seqs = [json.loads(g[2])["first_seq"] for g, w in zip(got, want)
            if w == 200 and b"first_seq" in g[2]]
    check(len(seqs) == 18 and seqs == sorted(seqs) and len(set(seqs)) == 18,
          "each pipelined append committed once, in order: %r" % seqs)
    print("pipelined: %d requests in one write, answered in order" % len(reqs))


def big_response(base, tok, feed_tok):
    """GET /v1/events with a large answer while the client does not read, then a request
    pipelined behind it; both arrive whole and in order."""
    run = "wb%d" % os.getpid()
    fill = b"".join(json.dumps(ev("%s-%d" % (run, i))).encode() + b"\n" for i in range(1500))
    s = connect(base)
    s.sendall(post(fill, tok, ctype=b"application/x-ndjson"))
    got, _ = read_responses(s, 1)
    s.close()
    check(got and got[0][0] == 200, "1500 events to read back: %r" % (got[0][:2] if got else None,))
    get = (b"GET /v1/events?from=1&limit=10000 HTTP/1.1\r\nHost: x\r\n"
           b"Authorization: Bearer " + feed_tok.encode() + b"\r\n\r\n")
    s = connect(base)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.sendall(get + b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    got, _ = read_responses(s, 2, first_wait=0.5)
    s.close()
    check(len(got) == 2, "two answers: %d" % len(got))
    if len(got) == 2:
        (st, head, body), (st2, _, body2) = got
        lines = body.count(b"\n")
        check(st == 200 and lines >= 1500, "the big answer: %d, %d lines" % (st, lines))
        check(all(json.loads(x)["seq"] > 0 for x in body.splitlines()),
              "the big answer is whole JSON Lines")
        check(st2 == 200 and body2.strip() == b"ok", "healthz after it: %d %r" % (st2, body2))
        print("big response: %d bytes while the client waited, then the next answer" %
              len(body))


def half_request(base, tok):
    run = "wh%d" % os.getpid()
    body = json.dumps([ev(run + "-half")]).encode()
    whole = post(body, tok)
    cut = len(whole) - len(body) // 2
    s = connect(base)
    s.sendall(whole[:cut])
    time.sleep(0.5)
    s.sendall(whole[cut:])
    got, _ = read_responses(s, 1)
    check(got and got[0][0] == 200, "half a request, a wait, the rest: %r" %
          (got[0][:2] if got else None,))
    # the head one byte at a time (header values split anywhere)
    whole = post(json.dumps([ev(run + "-bytes")]).encode(), tok)
    head_len = whole.index(b"\r\n\r\n") + 4
    for i in range(head_len):
        s.sendall(whole[i:i + 1])
        if i % 16 == 0:
            time.sleep(0.002)
    s.sendall(whole[head_len:])
    got, _ = read_responses(s, 1)
    check(got and got[0][0] == 200, "a head sent byte by byte: %r" % (got[0][:2] if got else None,))
    s.close()
    for name, bad in (("bare LF in a value", b"X-A: abc\ndef\r\n"),
                      ("lone CR in a value", b"X-A: abc\rdef\r\n")):
        s = connect(base)
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + bad + b"\r\n")
        got, _ = read_responses(s, 1)
        s.close()
        check(got and got[0][0] == 400, "%s: 400, got %r" % (name, got[0][:2] if got else None))
    print("half requests: answered once whole; bad bytes in a value still refused")


def no_inheritance(base, tok, feed_tok):
    run = "wi%d" % os.getpid()
    s = connect(base)
    a = json.dumps([ev(run + "-a")]).encode()
    b = json.dumps([ev(run + "-b")]).encode()
    s.sendall(post(a, tok, extra=b"Idempotency-Key: %s-key\r\n" % run.encode()))
    first, _ = read_responses(s, 1)
    s.sendall(post(b, tok))
    second, _ = read_responses(s, 1)
    check(first and first[0][0] == 200, "keyed append: %r" % (first[0][:2] if first else None,))
    check(second and second[0][0] == 200 and json.loads(second[0][2])["appended"] == 1,
          "the next append on the connection has no key: %r" %
          ((second[0][0], second[0][2][:120]) if second else None,))
    s.close()
    # one NDJSON body, then a JSON array body on the same connection: the second is parsed as
    # what its own Content-Type says (as NDJSON its one line would be an array: 422)
    s = connect(base)
    c = json.dumps(ev(run + "-c")).encode() + b"\n"
    d = json.dumps([ev(run + "-d")]).encode()
    s.sendall(post(c, tok, ctype=b"application/x-ndjson") + post(d, tok))
    got, _ = read_responses(s, 2)
    s.close()
    check([g[0] for g in got] == [200, 200],
          "an array body after an NDJSON one on the same connection: %r" %
          ([(g[0], g[2][:100]) for g in got],))
    print("reuse: no request inherits its predecessor's key or headers")


def group_semantics(base, tok, refused=True):
    """Concurrent requests that land in the same group commits (the server may commit a group
    of small batches as one batch): every request is answered as if applied on its own, in
    some order. Up to 40 connections at once: 16 new sales, 8 the same event X, 4 an event
    appended before, 4 a pair (new, X), and with `refused` 4 X with other content and 4 a pair
    (new, bad) (a group holding those cannot be committed as one batch)."""
    import threading
    run = "wg%d%s" % (os.getpid(), "r" if refused else "")
    old_ev = json.dumps(ev(run + "-old")).encode() + b"\n"
    s = connect(base)
    s.sendall(post(old_ev, tok, ctype=b"application/x-ndjson"))
    got, _ = read_responses(s, 1)
    s.close()
    old_seq = json.loads(got[0][2])["first_seq"] if got and got[0][0] == 200 else None
    check(old_seq is not None, "the earlier event: %r" % (got[0][:2] if got else None,))
    x = json.dumps(ev(run + "-x")).encode() + b"\n"
    x_other = json.dumps(ev(run + "-x", module="other")).encode() + b"\n"
    bodies = []
    for i in range(16):
        bodies.append(("new", json.dumps(ev("%s-n%d" % (run, i))).encode() + b"\n"))
    bodies += [("x", x)] * 8 + [("old", old_ev)] * 4
    for i in range(4):
        bodies.append(("pair", json.dumps(ev("%s-p%d" % (run, i))).encode() + b"\n" + x))
    for i in range(4 if refused else 0):
        bodies.append(("xother", x_other))
    for i in range(4 if refused else 0):
        bodies.append(("bad", json.dumps(ev("%s-b%d" % (run, i))).encode() + b"\n" +
                       json.dumps(ev("%s-z%d" % (run, i), partner="ZZZ")).encode() + b"\n"))
    socks = [connect(base) for _ in bodies]
    answers = [None] * len(bodies)
    gate = threading.Barrier(len(bodies))

    def one(k):
        gate.wait()
        socks[k].sendall(post(bodies[k][1], tok, ctype=b"application/x-ndjson"))
        r, _ = read_responses(socks[k], 1)
        answers[k] = (r[0][0], json.loads(r[0][2])) if r else (0, {})
        socks[k].close()
    ts = [threading.Thread(target=one, args=(k,)) for k in range(len(bodies))]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    kinds = [b[0] for b in bodies]
    by = lambda kind: [a for a, k in zip(answers, kinds) if k == kind]  # noqa: E731
    new_seqs = []
    for st, a in by("new"):
        check(st == 200 and a.get("appended") == 1 and a["first_seq"] == a["last_seq"],
              "a new sale: %d %r" % (st, a))
        new_seqs.append(a.get("first_seq"))
    for st, a in by("old"):
        check(st == 200 and a == {"first_seq": old_seq, "last_seq": old_seq, "appended": 0,
                                  "duplicates": 1}, "an event appended before: %d %r" % (st, a))
    # X: appended by exactly one request, in whichever content came first; the others with the
    # same content are duplicates at its seq, those with the other content 409
    x_like = [(k, st, a) for (st, a), k in zip(answers, kinds) if k in ("x", "pair", "xother")]
    winners = [(k, a) for k, st, a in x_like if st == 200 and
               (a.get("appended") == (2 if k == "pair" else 1))]
    x_new = [k for k, a in winners]
    first_kind = ("xother" if "xother" in x_new else "x") if x_new else None
    check(len([k for k in x_new if k != "pair"]) + len([k for k in x_new if k == "pair"]) >= 1,
          "X appended once: %r" % x_like)
    for k, st, a in x_like:
        same = (k == "xother") == (first_kind == "xother")
        if not same:
            check(st == 409, "X with the other content: 409, got %d %r" % (st, a))
        elif k == "pair":
            check(st == 200 and a.get("appended", 0) + a.get("duplicates", 0) == 2,
                  "a pair (new, X): %d %r" % (st, a))
        else:
            check(st == 200 and a.get("appended", 0) + a.get("duplicates", 0) == 1,
                  "X: %d %r" % (st, a))
    appended_x = sum(1 for k, st, a in x_like if st == 200 and k != "pair" and
                     a.get("appended") == 1) + \
        sum(1 for k, st, a in x_like if st == 200 and k == "pair" and a.get("appended") == 2)
    check(appended_x == 1, "X appended by exactly one request: %d %r" % (appended_x, x_like))
    for st, a in by("bad"):
        check(st == 422, "a pair with a refused event: 422, got %d %r" % (st, a))
    pair_seqs = [a["first_seq"] for st, a in by("pair") if st == 200 and a.get("appended")]
    allnew = [q for q in new_seqs + pair_seqs if q]
    check(len(allnew) == len(set(allnew)), "no seq answered twice: %r" % sorted(allnew))
    print("group semantics: %d concurrent requests answered as if one by one" % len(bodies))


if __name__ == "__main__":
    base, tok, feed_tok = sys.argv[1:4]
    pipelined(base, tok, feed_tok)
    big_response(base, tok, feed_tok)
    half_request(base, tok)
    no_inheritance(base, tok, feed_tok)
    group_semantics(base, tok, refused=False)
    group_semantics(base, tok)
    sys.exit(1 if FAILS else 0)
