# accrue - one plain Makefile (LMDB style).
#
#   make            build build/accrue, build/accrue-gen, build/accrue-stack and
#                   build/accrue-http-load (optimised)
#   make test       install missing packages, build, run the suite (ASan+UBSan and -O2)
#   make demo       the worked example, end to end, in a temporary ledger
#   make dashboard-shots  re-take the screenshots of docs/img/ (headless chromium)
#   make bench      the benchmarks at full size; make bench-quick at a small size
#   make install    PREFIX=/usr/local DESTDIR=
#
# Two passes. Make reads every $(wildcard) and $(shell pkg-config) of a makefile before it runs
# a single recipe, so a build planned in the same invocation that installs the packages would
# be planned against a machine without them (a fresh clone's first `make demo` once stopped
# with "No rule to make target build/obj/llhttp/llhttp.o"). The first pass therefore only
# installs what is missing (`deps`), then runs make again with ACR_DEPS_READY=1 for the goals
# asked; that second make, and every make it starts, plans against the installed machine.
# tests/build/test_first_command.sh proves it with a stand-in for the install step.

PREFIX   ?= /usr/local
DESTDIR  ?=
CC       ?= cc
BUILD    ?= build
CFLAGS   ?= -O2 -g
PKGS     := lmdb msgpack libuv libxxhash jansson libsodium libpq libnats
# What building needs, and what the tests and benchmarks need beside it (real services
# started privately by the tests: PostgreSQL, nats-server, Chromium).
APT_BUILD := build-essential pkg-config liblmdb-dev lmdb-utils libmsgpack-dev libuv1-dev \
             libxxhash-dev xxhash libjansson-dev libsodium-dev node-llhttp libpq-dev \
             libnats-dev
APT_TEST  := libcriterion-dev clang-14 libclang-rt-14-dev valgrind curl python3 time \
             postgresql-15 nats-server chromium
VERSION  := 0.1.0
# The install step; tests/build/test_first_command.sh replaces it with a stand-in.
DEPS_INSTALL ?= tools/deps.sh
# Goals that need only the build packages; every other goal gets the test packages too.
BUILD_GOALS  := all install demo
NO_DEPS_GOALS := clean format deps

ifeq ($(ACR_DEPS_READY),)
ACR_GOALS := $(or $(MAKECMDGOALS),all)
ifneq ($(filter-out $(NO_DEPS_GOALS),$(ACR_GOALS)),)
ACR_NEEDS := $(if $(filter-out $(BUILD_GOALS) $(NO_DEPS_GOALS),$(ACR_GOALS)),$(APT_BUILD) $(APT_TEST),$(APT_BUILD))
.PHONY: $(ACR_GOALS) acr-first-pass
$(ACR_GOALS): acr-first-pass
	@:
acr-first-pass:
	@$(DEPS_INSTALL) $(ACR_NEEDS)
	@$(MAKE) --no-print-directory ACR_DEPS_READY=1 $(ACR_GOALS)
ACR_DISPATCH := 1
endif
endif

ifeq ($(ACR_DISPATCH),)
# Fixed flags kept apart so that `make CFLAGS=...` cannot drop them.
WARN         := -Wall -Wextra -Wpedantic -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
                -Wpointer-arith -Wformat=2 -Wno-format-nonliteral -Wvla
# llhttp in strict mode (checks CRLF after chunk data, among others): the same define for its
# objects and for the server that includes llhttp.h.
ALL_CPPFLAGS := -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -Iinclude -I/usr/share/include/llhttp \
                -DLLHTTP_STRICT_MODE=1 \
                -DACR_VERSION='"$(VERSION)"' $(CPPFLAGS)
ALL_CFLAGS    = -std=c17 $(WARN) $(PKG_CFLAGS) $(CFLAGS)
PKG_CFLAGS    = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LIBS          = $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lpthread
TEST_CFLAGS   = $(shell pkg-config --cflags criterion 2>/dev/null)
TEST_LIBS     = $(shell pkg-config --libs criterion 2>/dev/null)
SAN          := -fsanitize=address,undefined -fno-sanitize-recover=undefined \
                -fno-omit-frame-pointer

# engine/ is in parts (engine/base, engine/event, ...: docs/architecture.md); files other
# branches add at engine/'s root are picked up too.
LIB_SRC   := $(sort $(wildcard engine/*.c engine/*/*.c processors/*.c))
LIB_HDR   := $(wildcard include/accrue/*.h engine/*.h engine/*/*.h processors/*.h)
# tools/dashboard/ holds the page and its build-time embedder, not code of the binary.
TOOL_SRC  := $(sort $(filter-out tools/dashboard/%,$(wildcard tools/*.c tools/*/*.c)))
GEN_SRC   := $(sort $(wildcard benchmarks/gen/*.c))
# the stack's own rates over a ledger (LMDB + xxHash, no accrue code): the benchmark's peers
STACK_SRC := benchmarks/stack/stack.c
# the HTTP rows' load client (raw sockets and epoll: docs/benchmarks.md says why not Node or wrk)
HTTP_LOAD_SRC := benchmarks/http_load.c
TEST_SRC  := $(sort $(wildcard tests/engine/test_*.c tests/processors/test_*.c))
LIB_OBJ   := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
TOOL_OBJ  := $(TOOL_SRC:%.c=$(BUILD)/obj/%.o)
# llhttp (Node's maintained HTTP parser) is compiled from the sources Debian's node-llhttp
# package installs, so nothing of it is copied into this repository.
LLHTTP_DIR := /usr/share/llhttp
LLHTTP_OBJ := $(BUILD)/obj/llhttp/llhttp.o $(BUILD)/obj/llhttp/api.o $(BUILD)/obj/llhttp/http.o
GEN_OBJ   := $(GEN_SRC:%.c=$(BUILD)/obj/%.o)
TEST_BIN  := $(TEST_SRC:%.c=$(BUILD)/%)
# The dashboard (tools/dashboard/): its files become a C source of byte arrays at build time.
DASH_FILES := $(sort $(wildcard tools/dashboard/*.html tools/dashboard/*.css tools/dashboard/*.js \
                tools/dashboard/*.svg))
DASH_OBJ   := $(BUILD)/obj/gen/dashboard_assets.o

.PHONY: all deps test test-unit test-cli asan demo bench bench-quick install clean format \
        test-long test-sink-long dashboard-driver dashboard-shots

all: $(BUILD)/accrue $(BUILD)/accrue-gen $(BUILD)/accrue-stack $(BUILD)/accrue-http-load

# Installs missing Debian packages (tools/deps.sh asks dpkg, so a machine that has everything
# does no network work). The first pass runs it before anything is planned; these two targets
# are for CI and for running it by hand.
deps:
	@$(DEPS_INSTALL) $(APT_BUILD) $(APT_TEST)

$(BUILD)/obj/%.o: %.c $(LIB_HDR) $(wildcard tools/*.h tools/*/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CPPFLAGS) $(ALL_CFLAGS) -c $< -o $@

$(BUILD)/obj/llhttp/%.o: $(LLHTTP_DIR)/%.c Makefile
	@mkdir -p $(dir $@)
	$(CC) -std=c17 -D_POSIX_C_SOURCE=200809L -DLLHTTP_STRICT_MODE=1 -I/usr/share/include/llhttp $(CFLAGS) -w -c $< -o $@

$(BUILD)/libaccrue.a: $(LIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/dashboard-embed: tools/dashboard/embed.c
	@mkdir -p $(dir $@)
	$(CC) -std=c17 -O2 $(WARN) $(PKG_CFLAGS) tools/dashboard/embed.c -o $@ -lxxhash

$(BUILD)/gen/dashboard_assets.c: $(BUILD)/dashboard-embed $(DASH_FILES)
	@mkdir -p $(dir $@)
	$(BUILD)/dashboard-embed $@ $(DASH_FILES)

$(DASH_OBJ): $(BUILD)/gen/dashboard_assets.c tools/server/assets.h
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CPPFLAGS) -Itools/server $(ALL_CFLAGS) -c $< -o $@

$(BUILD)/accrue: $(TOOL_OBJ) $(DASH_OBJ) $(LLHTTP_OBJ) $(BUILD)/libaccrue.a
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) $^ -o $@ $(LIBS)

$(BUILD)/accrue-gen: $(GEN_OBJ) $(BUILD)/libaccrue.a
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) $^ -o $@ $(LIBS)

$(BUILD)/accrue-stack: $(STACK_SRC)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CPPFLAGS) $(ALL_CFLAGS) $(LDFLAGS) $< -o $@ $(LIBS)

$(BUILD)/accrue-http-load: $(HTTP_LOAD_SRC)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CPPFLAGS) $(ALL_CFLAGS) $(LDFLAGS) $< -o $@

$(BUILD)/tests/%: tests/%.c $(BUILD)/libaccrue.a tests/test_util.h
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CPPFLAGS) -Itests $(ALL_CFLAGS) $(TEST_CFLAGS) $(LDFLAGS) $< -o $@ \
	    $(BUILD)/libaccrue.a $(LIBS) $(TEST_LIBS)

tests-bin: $(TEST_BIN)

# The suite: unit tests and CLI tests, under ASan+UBSan and in the -O2 build. The builds use
# every core unless the caller chose a -j of its own.
TEST_J = $(if $(filter -j%,$(MAKEFLAGS)),,-j$(shell nproc))
test:
	$(MAKE) $(TEST_J) --no-print-directory BUILD=build/asan CFLAGS="-O1 -g $(SAN)" LDFLAGS="$(SAN)" \
	    build/asan/accrue build/asan/accrue-gen tests-bin
	$(MAKE) $(TEST_J) --no-print-directory BUILD=build all tests-bin
	$(MAKE) $(TEST_J) --no-print-directory BUILD=build/o0 CFLAGS="-O0 -g" \
	    build/o0/tests/processors/test_commission
	-$(MAKE) $(TEST_J) --no-print-directory -s fuzz-build
	$(MAKE) --no-print-directory dashboard-driver
	@bash tests/run.sh

# The long loops: the sink's kill -9 loop with 50 kills (make test runs 8).
test-long: test-sink-long
test-sink-long: all
	@SINK_KILLS=50 bash tests/cli/test_sink.sh

# The browser test's driver (playwright-core, pinned in tests/dashboard/package.json and its
# lock file) goes into the git-ignored tests/dashboard/node_modules, installed when missing.
dashboard-driver:
	@[ -f tests/dashboard/node_modules/playwright-core/package.json ] || \
	    (cd tests/dashboard && timeout 600 npm ci --no-audit --no-fund)

# Re-takes the committed screenshots of docs/img/ (the browser test at both window sizes).
dashboard-shots: all dashboard-driver
	node tests/dashboard/run.mjs --shots docs/img

demo: all
	@bash tools/demo.sh

bench: all
	@bash benchmarks/run.sh full

bench-quick: all
	@bash benchmarks/run.sh quick

install: all
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 755 $(BUILD)/accrue $(BUILD)/accrue-gen $(DESTDIR)$(PREFIX)/bin/

# Reliability targets (crash loop, fault injection, fuzzing) live beside their tests.
-include tests/reliability.mk
# The long replication test (make test-long) lives beside its script.
-include tests/replica/replica.mk

format:
	clang-format -i $(LIB_SRC) $(TOOL_SRC) $(GEN_SRC) include/accrue/*.h

clean:
	rm -rf build

endif # ACR_DISPATCH
