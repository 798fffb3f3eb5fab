#!/usr/bin/env python3
"""layers.py - the server's files call only files of lower layers (tools/server/internal.h).

Reads each tools/server/*.c, finds the non-static functions it defines and the
ones it calls from other files, and fails when a call goes to the same or a
higher layer (a circle) or a file is missing from the table. Prints
`layers: P passed, F failed`."""
import os
import re
import sys

LAYER = {"parse.c": 0, "respond.c": 0, "metrics.c": 0, "job.c": 0, "life.c": 0,
         "http.c": 1, "lane.c": 1, "idem.c": 1, "feed.c": 2, "writer.c": 3, "ingest.c": 3, "program.c": 3, "dashboard.c": 3,
         "routes.c": 4, "server.c": 5}
root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools", "server")
src = {f: open(os.path.join(root, f)).read() for f in sorted(os.listdir(root)) if f.endswith(".c")}
defs = {}
for f, text in src.items():
    for m in re.finditer(r"^[a-z][^\n;]*?\b(acr_srv_\w+)\(", text, re.M):
        if not m.group(0).startswith("static"):
            defs[m.group(1)] = f
bad = []
for f, text in src.items():
    if f not in LAYER:
        bad.append("%s is not in the layer table" % f)
        continue
    body = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    for fn in set(re.findall(r"\b(acr_srv_\w+)\(", body)):
        g = defs.get(fn)
        if g and g != f and LAYER.get(g, 99) >= LAYER[f]:
            bad.append("%s (layer %d) calls %s of %s (layer %d)" % (f, LAYER[f], fn, g, LAYER[g]))
    for inc in re.findall(r'#include "([^"]+)"', text):
        if inc == "cli.h" or inc.endswith("/cli.h"):
            bad.append("%s includes the CLI header" % f)
for b in bad:
    print("  " + b)
print("layers: %d passed, %d failed" % (len(src) - len({b.split()[0] for b in bad}), len(bad)))
sys.exit(1 if bad else 0)
