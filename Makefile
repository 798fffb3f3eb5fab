# accrue - one plain Makefile (LMDB style).
#
#   make            build build/accrue and build/accrue-gen (optimised)
#   make test       install missing packages, build, run the suite (ASan+UBSan and -O2)
#   make demo       the worked example, end to end, in a temporary ledger
#   make dashboard-shots  re-take the screenshots of docs/img/ (headless chromium)
#   make bench      the benchmarks at full size; make bench-quick at a small size
#   make install    PREFIX=/usr/local DESTDIR=

PREFIX   ?= /usr/local
DESTDIR  ?=
CC       ?= cc
BUILD    ?= build
CFLAGS   ?= -O2 -g
PKGS     := lmdb msgpack libuv libxxhash jansson libsodium
APT_PKGS := build-essential pkg-config liblmdb-dev lmdb-utils libmsgpack-dev libuv1-dev \
            libxxhash-dev xxhash libjansson-dev libcriterion-dev libsodium-dev node-llhttp \
            clang-14 libclang-rt-14-dev valgrind curl python3 \
            chromium nodejs npm
VERSION  := 0.1.0

# Fixed flags kept apart so that `make CFLAGS=...` cannot drop them.
WARN         := -Wall -Wextra -Wpedantic -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
                -Wpointer-arith -Wformat=2 -Wno-format-nonliteral -Wvla
ALL_CPPFLAGS := -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -Iinclude -I/usr/share/include/llhttp \
                -DACR_VERSION='"$(VERSION)"' $(CPPFLAGS)
ALL_CFLAGS    = -std=c17 $(WARN) $(PKG_CFLAGS) $(CFLAGS)
PKG_CFLAGS    = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LIBS          = $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lpthread
TEST_CFLAGS   = $(shell pkg-config --cflags criterion 2>/dev/null)
TEST_LIBS     = $(shell pkg-config --libs criterion 2>/dev/null)
SAN          := -fsanitize=address,undefined -fno-sanitize-recover=undefined \
                -fno-omit-frame-pointer

LIB_SRC   := $(sort $(wildcard engine/*.c processors/*.c))
TOOL_SRC  := $(sort $(wildcard tools/*.c))
GEN_SRC   := $(sort $(wildcard benchmarks/gen/*.c))
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

.PHONY: dashboard-driver dashboard-shots all deps test test-unit test-cli asan demo bench bench-quick install clean format

all: deps $(BUILD)/accrue $(BUILD)/accrue-gen

# Installs missing Debian packages, only when pkg-config says something is missing.
deps:
	@if ! pkg-config --exists $(PKGS) criterion 2>/dev/null || ! command -v xxh128sum >/dev/null \
	    || [ ! -f /usr/share/llhttp/llhttp.c ] || ! command -v clang-14 >/dev/null \
	    || ! command -v valgrind >/dev/null || ! command -v curl >/dev/null \
	    || ! command -v chromium >/dev/null || ! command -v npm >/dev/null; then \
	    echo "make: installing missing packages: $(APT_PKGS)"; \
	    if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	    for i in 1 2 3 4 5; do \
	        DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q $(APT_PKGS) && break; \
	        $$SUDO apt-get update -q || true; sleep 3; \
	    done; \
	fi

$(BUILD)/obj/%.o: %.c $(wildcard include/accrue/*.h engine/*.h processors/*.h tools/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CPPFLAGS) $(ALL_CFLAGS) -c $< -o $@

$(BUILD)/obj/llhttp/%.o: $(LLHTTP_DIR)/%.c
	@mkdir -p $(dir $@)
	$(CC) -std=c17 -D_POSIX_C_SOURCE=200809L -I/usr/share/include/llhttp $(CFLAGS) -w -c $< -o $@

$(BUILD)/libaccrue.a: $(LIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/dashboard-embed: tools/dashboard/embed.c
	@mkdir -p $(dir $@)
	$(CC) -std=c17 -O2 $(WARN) $(PKG_CFLAGS) tools/dashboard/embed.c -o $@ -lxxhash

$(BUILD)/gen/dashboard_assets.c: $(BUILD)/dashboard-embed $(DASH_FILES)
	@mkdir -p $(dir $@)
	$(BUILD)/dashboard-embed $@ $(DASH_FILES)

$(DASH_OBJ): $(BUILD)/gen/dashboard_assets.c tools/dashboard/assets.h
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CPPFLAGS) -Itools $(ALL_CFLAGS) -c $< -o $@

$(BUILD)/obj/tools/serve_dashboard.o: tools/dashboard/assets.h

$(BUILD)/accrue: $(TOOL_OBJ) $(DASH_OBJ) $(LLHTTP_OBJ) $(BUILD)/libaccrue.a
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) $^ -o $@ $(LIBS)

$(BUILD)/accrue-gen: $(GEN_OBJ) $(BUILD)/libaccrue.a
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) $^ -o $@ $(LIBS)

$(BUILD)/tests/%: tests/%.c $(BUILD)/libaccrue.a tests/test_util.h
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CPPFLAGS) -Itests $(ALL_CFLAGS) $(TEST_CFLAGS) $(LDFLAGS) $< -o $@ \
	    $(BUILD)/libaccrue.a $(LIBS) $(TEST_LIBS)

tests-bin: $(TEST_BIN)

# The suite: unit tests and CLI tests, under ASan+UBSan and in the -O2 build.
test: deps
	$(MAKE) --no-print-directory BUILD=build/asan CFLAGS="-O1 -g $(SAN)" LDFLAGS="$(SAN)" \
	    build/asan/accrue build/asan/accrue-gen tests-bin
	$(MAKE) --no-print-directory BUILD=build all tests-bin
	$(MAKE) --no-print-directory BUILD=build/o0 CFLAGS="-O0 -g" \
	    build/o0/tests/processors/test_commission
	$(MAKE) --no-print-directory dashboard-driver
	@bash tests/run.sh

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

format:
	clang-format -i $(LIB_SRC) $(TOOL_SRC) $(GEN_SRC) include/accrue/*.h

clean:
	rm -rf build
