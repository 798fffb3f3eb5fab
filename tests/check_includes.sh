#!/usr/bin/env bash
# check_includes.sh - the module map of docs/architecture.md, enforced.
#
#   tests/check_includes.sh [ROOT]       check the tree at ROOT (default: the repository)
#
# Fails when
#   1. an #include crosses a forbidden direction: an engine part includes a part it may not
#      use (the list below, the same as docs/architecture.md), processors/ include more than
#      engine/base, tools/ or benchmarks/ reach past include/accrue/ into engine/ or
#      processors/, a module under tools/<m>/ includes a file outside its folder;
#   2. #includes close a circle (a header that ends up including itself, or parts that
#      depend on each other);
#   3. with the objects of a build present ($BUILD/obj, default build/obj): a file of engine/
#      or processors/ calls into a part it may not use (an extern declaration cannot sneak
#      past rule 1), or the files of engine/ and processors/ call each other in a circle.
# Then runs itself on a small tree with one forbidden include, one circle of headers and
# one circle of calls, and fails unless it finds all three (the check can fail).
# Ends with `check_includes.sh: P passed, F failed` (counted by tests/run.sh).
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=${1:-$(cd "$here/.." && pwd)}
build=${BUILD:-build}

exec python3 - "$root" "$build" "${CHECK_INCLUDES_NESTED:-0}" "$here/check_includes.sh" <<'PY'
import collections, os, re, subprocess, sys, tempfile

root, build, nested, self_path = sys.argv[1], sys.argv[2], sys.argv[3] == "1", sys.argv[4]

# ---- the module map (docs/architecture.md, "Allowed directions") ----------------------
# Which engine part owns each public header of include/accrue/.
OWNER = {
    "buf.h": "base", "error.h": "base", "date.h": "base", "limits.h": "base",
    "money.h": "base", "schema.h": "base", "jsonmem.h": "base",
    "plan.h": "processors", "commission.h": "processors",
    "event.h": "event", "log.h": "store", "projection.h": "query",
    "payout.h": "payout", "token.h": "token", "idem.h": "log",
    "program.h": "processors", "program_query.h": "query", "replica.h": "replica",
}
# What each part may use (besides itself). Acyclic by construction; checked below.
ALLOWED = {
    "base": set(),
    "processors": {"base"},
    "event": {"base", "processors"},
    "store": {"base", "event"},
    "projection": {"base", "event", "store"},
    "state": {"base", "event", "processors", "store", "projection"},
    "log": {"base", "event", "processors", "store", "projection", "state"},
    "payout": {"base", "event", "processors", "store", "log"},
    "query": {"base", "event", "processors", "store", "projection", "state", "log", "payout"},
    "token": {"base", "event", "store"},
    "replica": {"base", "event", "processors", "store", "projection", "state", "log", "payout"},
}
PARTS = set(ALLOWED)

passed = failed = 0
notes = []

def ok(cond, what):
    global passed, failed
    if cond:
        passed += 1
    else:
        failed += 1
        print("FAIL  " + what)

def rel(p):
    return os.path.relpath(p, root)

def part_of(path):
    """The part of a repository file: an engine part, 'processors', 'engine-root' (a file
    at engine/'s root, not yet sorted into a part), 'tools', 'tools/<m>', 'benchmarks',
    'tests', or None (elsewhere)."""
    parts = path.split("/")
    if parts[0] == "include" and len(parts) == 3 and parts[1] == "accrue":
        return OWNER.get(parts[2], "unowned")
    if parts[0] == "engine":
        if len(parts) == 2:
            return "engine-root"
        return parts[1] if parts[1] in PARTS else "engine/" + parts[1]
    if parts[0] == "processors":
        return "processors"
    if parts[0] == "tools":
        return "tools" if len(parts) == 2 else "tools/" + parts[1]
    if parts[0] in ("benchmarks", "tests"):
        return parts[0]
    return None

# ---- collect files and their includes ------------------------------------------------
SRC_DIRS = ["engine", "processors", "include", "tools", "benchmarks", "tests"]
files = []
for d in SRC_DIRS:
    for dp, dn, fn in os.walk(os.path.join(root, d)):
        dn[:] = [x for x in dn if x not in ("node_modules", "out", "corpus")]
        for f in fn:
            if f.endswith((".c", ".h")):
                files.append(rel(os.path.join(dp, f)))
files.sort()
INC = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]', re.M)

def resolve(src, kind, name):
    cands = []
    if kind == '"':
        cands.append(os.path.normpath(os.path.join(os.path.dirname(src), name)))
    cands += [os.path.normpath(os.path.join("include", name)), os.path.normpath(os.path.join("tests", name))]
    for c in cands:
        if os.path.isfile(os.path.join(root, c)):
            return c
    return None  # a system header

edges = collections.defaultdict(set)
for f in files:
    with open(os.path.join(root, f), errors="replace") as fh:
        text = fh.read()
    for kind, name in INC.findall(text):
        t = resolve(f, kind, name)
        if t is not None:
            edges[f].add(t)

# ---- 1. directions ---------------------------------------------------------------------
def allowed(f, t):
    """None when f may include t, else the reason it may not."""
    pf, pt = part_of(f), part_of(t)
    if pf in ("tests", None):
        return None  # tests are white-box
    if pt == "unowned":
        notes.append("note: %s has no part in check_includes.sh's OWNER table" % t)
        return None
    if pf == "engine-root":
        notes.append("note: %s is at engine/'s root, not in a part yet" % f)
        return None if pt in PARTS or pt == "engine-root" else "engine/ uses no tools/tests"
    if pf == "unowned":
        return None if pt in PARTS or pt == "unowned" else "a public header includes " + t
    if pf in PARTS:
        if pt == pf:
            return None
        if pt in PARTS:
            return None if pt in ALLOWED[pf] else "%s may not use %s" % (pf, pt)
        if pt == "engine-root" and pf != "base" and pf != "processors":
            return None
        return "%s may not include %s" % (pf, t)
    if pf == "tools" or pf == "benchmarks":
        if t.startswith("include/accrue/"):
            return None
        if pf == "tools" and (pt == "tools" or (pt.startswith("tools/") and
                                                not t.endswith("_internal.h"))):
            return None
        if pf == "benchmarks" and pt == "benchmarks":
            return None
        return "%s/ reaches %s (only include/accrue/ is a door)" % (pf, t)
    if pf.startswith("tools/"):
        if t.startswith("include/accrue/") or pt == pf:
            return None
        return "module %s/ is not self-contained: includes %s" % (pf, t)
    if pf.startswith("engine/"):
        return "%s is not a known engine part (add it to ALLOWED)" % pf
    return None

for f in files:
    bad = [(t, allowed(f, t)) for t in sorted(edges[f])]
    bad = [(t, why) for t, why in bad if why]
    ok(not bad, "%s: %s" % (f, "; ".join("#include %s (%s)" % b for b in bad)))

# ---- 2. circles of includes, and of parts ----------------------------------------------
def find_cycle(graph, nodes):
    color, stack = {}, []
    def dfs(n):
        color[n] = 1
        stack.append(n)
        for m in sorted(graph.get(n, ())):
            if color.get(m) == 1:
                return stack[stack.index(m):] + [m]
            if color.get(m) is None:
                c = dfs(m)
                if c:
                    return c
        stack.pop()
        color[n] = 2
        return None
    for n in sorted(nodes):
        if color.get(n) is None:
            c = dfs(n)
            if c:
                return c
    return None

sys.setrecursionlimit(10000)
c = find_cycle(edges, files)
ok(c is None, "a circle of #includes: " + " -> ".join(c or []))
c = find_cycle({p: ALLOWED[p] for p in ALLOWED}, ALLOWED)
ok(c is None, "the allowed directions close a circle: " + " -> ".join(c or []))
pg = collections.defaultdict(set)
for f in files:
    for t in edges[f]:
        pf, pt = part_of(f), part_of(t)
        if pf and pt and pf != pt and pf not in ("tests",):
            pg[pf].add(pt)
c = find_cycle(pg, list(pg))
ok(c is None, "parts include each other in a circle: " + " -> ".join(c or []))

# ---- 3. calls between object files (when a build is present) ---------------------------
objdir = os.path.join(root, build, "obj")
objs = []
for d in ("engine", "processors"):
    for dp, dn, fn in os.walk(os.path.join(objdir, d)):
        objs += [os.path.join(dp, f) for f in fn if f.endswith(".o")]
if objs:
    defs, und = {}, {}
    for o in sorted(objs):
        src = os.path.relpath(o, objdir)[:-2] + ".c"
        if not os.path.isfile(os.path.join(root, src)):
            continue  # a stale object of a moved or deleted file
        out = subprocess.run(["nm", o], capture_output=True, text=True).stdout
        und[src] = set()
        for line in out.splitlines():
            w = line.split()
            if len(w) == 2 and w[0] == "U":
                und[src].add(w[1])
            elif len(w) == 3 and w[1] in "TDRBCVG":
                defs[w[2]] = src
    calls = collections.defaultdict(set)
    for s in und:
        for sym in und[s]:
            t = defs.get(sym)
            if t and t != s:
                calls[s].add(t)
    for s in sorted(calls):
        bad = [t for t in sorted(calls[s]) if allowed(s, t)]
        ok(not bad, "%s calls into %s" % (s, ", ".join("%s (%s)" % (t, allowed(s, t)) for t in bad)))
    c = find_cycle(calls, list(und))
    ok(c is None, "files call each other in a circle: " + " -> ".join(c or []))
else:
    notes.append("note: no objects in %s: the call checks were skipped" % objdir)

# ---- the check can fail: a small tree with three faults --------------------------------
if not nested:
    with tempfile.TemporaryDirectory() as tmp:
        def put(p, text):
            os.makedirs(os.path.dirname(os.path.join(tmp, p)), exist_ok=True)
            with open(os.path.join(tmp, p), "w") as fh:
                fh.write(text)
        put("include/accrue/buf.h", "")
        put("engine/store/store_internal.h", '#include "accrue/buf.h"\n')
        put("engine/base/buf.c", '#include "../store/store_internal.h"\n')  # forbidden
        put("engine/event/a.h", '#include "b.h"\n')
        put("engine/event/b.h", '#include "a.h"\n')                         # a circle
        put("processors/x.c", "int px(void); int py(void);\nint px(void) { return py(); }\n")
        put("processors/y.c", "int px(void); int py(void);\nint py(void) { return px(); }\n")
        os.makedirs(os.path.join(tmp, "build/obj/processors"))
        for n in ("x", "y"):
            subprocess.run(["cc", "-c", os.path.join(tmp, "processors/%s.c" % n), "-o",
                            os.path.join(tmp, "build/obj/processors/%s.o" % n)], check=True)
        r = subprocess.run(["bash", self_path, tmp], capture_output=True, text=True,
                           env=dict(os.environ, CHECK_INCLUDES_NESTED="1", BUILD="build"))
        out = r.stdout
        ok(r.returncode != 0, "self-test: a tree with faults passed")
        ok("engine/base/buf.c: #include engine/store/store_internal.h (base may not use store)"
           in out, "self-test: the forbidden include was not found\n" + out)
        ok("a circle of #includes: engine/event/a.h -> engine/event/b.h -> engine/event/a.h"
           in out, "self-test: the circle of headers was not found\n" + out)
        ok("files call each other in a circle: processors/x.c -> processors/y.c -> processors/x.c"
           in out, "self-test: the circle of calls was not found\n" + out)

for n in sorted(set(notes)):
    print(n)
print("check_includes.sh: %d passed, %d failed" % (passed, failed))
sys.exit(1 if failed else 0)
PY
