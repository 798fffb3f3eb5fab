#!/usr/bin/env bash
# test_first_command.sh - the first `make` of a fresh clone plans its build only after the
# packages it needs are installed.
#
# Make reads every rule and $(wildcard) before it runs a recipe, and caches what it saw of a
# directory; a build planned in the same make that installs the packages is planned against a
# machine without them. The real case: Debian's node-llhttp puts llhttp.c under
# /usr/share/llhttp, and a fresh clone's first `make demo` stopped with "No rule to make target
# build/obj/llhttp/llhttp.o". This test replays it without removing any package: the install
# step (DEPS_INSTALL) is replaced by a stand-in that creates the llhttp source folder only when
# it runs, and LLHTTP_DIR points there. A makefile that plans before installing fails; ours
# installs, then plans. Also checks that a machine with everything installed does no install
# work, and that every goal a newcomer types goes through the install step.
# MAKEFILE=path runs it against another makefile (to see it fail on the old one).
set -u
cd "$(dirname "$0")/../.."
# Run as a first command would be: not inside the make of `make test`, whose MAKEFLAGS carry
# ACR_DEPS_READY=1 (the second pass) to every make below it.
unset MAKEFLAGS MFLAGS MAKELEVEL MAKEOVERRIDES ACR_DEPS_READY
MAKEFILE=${MAKEFILE:-Makefile}
T=$(mktemp -d "${TMPDIR:-/tmp}/accrue-first.XXXXXX")
trap 'rm -rf "$T"' EXIT
pass=0 fail=0
ok() { pass=$((pass + 1)); echo "ok   $*"; }
bad() { fail=$((fail + 1)); echo "FAIL $*"; }

cat >"$T/install.sh" <<STUB
#!/bin/sh
# stand-in for tools/deps.sh: "installs" llhttp's sources where the build will look for them
echo "\$@" >>"$T/install.log"
mkdir -p "$T/llhttp" && cp /usr/share/llhttp/*.c "$T/llhttp/"
STUB
chmod +x "$T/install.sh"

# 1. The llhttp object, on a machine where its sources appear only when the install step runs.
if make -f "$MAKEFILE" --no-print-directory -j2 DEPS_INSTALL="$T/install.sh" LLHTTP_DIR="$T/llhttp" \
    BUILD="$T/build" "$T/build/obj/llhttp/llhttp.o" "$T/build/obj/llhttp/api.o" >"$T/out" 2>&1 &&
    [ -f "$T/build/obj/llhttp/llhttp.o" ] && [ -f "$T/build/obj/llhttp/api.o" ]; then
    ok "sources installed by the first pass are seen by the build (make -j2)"
else
    bad "the build was planned before the install step ran:"; sed 's/^/    /' "$T/out" | tail -5
fi

# 2. The install step ran exactly once, before anything was compiled.
if [ -f "$T/install.log" ] && [ "$(wc -l <"$T/install.log")" -eq 1 ]; then
    ok "the install step ran once for two goals"
else
    bad "the install step ran $(cat "$T/install.log" 2>/dev/null | wc -l) times"
fi

# 3. Every goal of the README goes through the install step first (dry run: nothing built).
for goal in all demo test bench-quick install; do
    rm -f "$T/install.log"
    make -f "$MAKEFILE" --no-print-directory -n DEPS_INSTALL="$T/install.sh" LLHTTP_DIR="$T/llhttp" \
        BUILD="$T/build" "$goal" >"$T/out" 2>&1
    if grep -q "$T/install.sh" "$T/out" && [ "$(grep -n "$T/install.sh" "$T/out" | head -1 | cut -d: -f1)" -eq 1 ]; then
        ok "make $goal installs before it plans"
    else
        bad "make $goal does not run the install step first"
    fi
done

# 4. test and bench goals ask for the test packages, plain make only for the build ones.
n_all=$(make -f "$MAKEFILE" -n DEPS_INSTALL="echo PKGS:" all 2>/dev/null | grep -m1 '^echo PKGS:' | wc -w)
n_test=$(make -f "$MAKEFILE" -n DEPS_INSTALL="echo PKGS:" test 2>/dev/null | grep -m1 '^echo PKGS:' | wc -w)
if [ "$n_all" -gt 2 ] && [ "$n_test" -gt "$n_all" ]; then
    ok "make test installs more than make ($n_test vs $n_all words)"
else
    bad "package lists: make asks $n_all, make test $n_test"
fi

# 5. The real install step does nothing on a machine that has every package.
if out=$(tools/deps.sh liblmdb-dev libxxhash-dev node-llhttp 2>&1) && [ -z "$out" ]; then
    ok "tools/deps.sh is silent when everything is installed"
else
    bad "tools/deps.sh on an installed machine said: $out"
fi

echo "test_first_command.sh: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
