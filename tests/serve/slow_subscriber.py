#!/usr/bin/env python3
"""slow_subscriber.py PORT TOKEN - a feed subscriber that never reads is disconnected.

Opens /v1/feed with a tiny receive buffer and never reads, appends ~2 MB of
events, then checks that the server dropped it (accrue_feed_dropped_total)
and closed the stream. Exit 0 when it did.
"""
import socket, sys, json, time, http.client
port, tok = int(sys.argv[1]), sys.argv[2]
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.connect(("127.0.0.1", port))
s.sendall(("GET /v1/feed?from=18 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n\r\n" % tok).encode())
time.sleep(0.3)
c = http.client.HTTPConnection("127.0.0.1", port)
for j in range(40):
    body = json.dumps([{"id": "ss-%d-%d" % (j, k), "type": "training.completed", "at": "2026-08-01T00:00:00Z", "data": {"partner_id": "GAMMA", "module": "x" * 200}} for k in range(200)])
    c.request("POST", "/v1/events", body, {"Authorization": "Bearer " + tok, "Content-Type": "application/json"}); r = c.getresponse(); r.read()
time.sleep(0.5)
c.request("GET", "/metrics", headers={"Authorization": "Bearer " + tok}); m = c.getresponse().read().decode()
dropped = [l for l in m.splitlines() if l.startswith("accrue_feed_dropped_total")]
print(dropped)
# the slow socket: read what's there until EOF
s.settimeout(5); n = 0
try:
    while True:
        d = s.recv(65536)
        if not d: break
        n += len(d)
except Exception as e: print("exc", e)
print("slow subscriber got", n, "bytes then EOF")
sys.exit(0 if dropped and dropped[0].split()[1] != "0" and n < 4 << 20 else 1)
