# tests/reliability.mk - the reliability proof (issue 6), -included by the Makefile.
#
#   make test-reliability   the quick versions (what tests/run.sh calls): crash loops (20 kills
#                           each, append and serve),
#                           fault injection, disk/map full, tamper, money invariant; prints
#                           `reliability: P passed, F failed`
#   make test-crash         both crash loops (append, then serve) with CRASH_KILLS kills each
#                           (default 200)
#   make test-crash-serve   the server crash loop alone: SIGKILL `accrue serve` under 16
#                           concurrent HTTP ingest clients, CRASH_KILLS kills
#   make test-faults        fault injection over a whole append and a whole payout close
#   make fuzz               every libFuzzer target for FUZZ_SECONDS (default 300)
#   make fuzz-quick         every target for 20 s, then every file of its regression corpus
#   make fuzz-build         just the fuzz binaries (build/fuzz/)
#
# Uses the -O2 build (build/accrue): the fault shim is an LD_PRELOAD malloc interposer, which
# does not mix with ASan. See docs/reliability.md.

FUZZ_SECONDS ?= 300
CRASH_KILLS  ?= 200
FUZZ_CC      ?= clang-14
FUZZ_DIR     := build/fuzz
FUZZ_SAN     := -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
                -fno-omit-frame-pointer
FUZZ_TARGETS := event_json record_decode event_msgpack plan statement http
FUZZ_LIB_OBJ := $(LIB_SRC:%.c=$(FUZZ_DIR)/obj/%.o)
FUZZ_BINS    := $(FUZZ_TARGETS:%=$(FUZZ_DIR)/fuzz_%)
REL_TOOLS    := build/faultshim.so build/acr-tamper

.PHONY: test-reliability test-crash test-crash-serve test-faults fuzz fuzz-quick fuzz-build reliability-tools

reliability-tools: $(REL_TOOLS)

build/faultshim.so: tests/reliability/faultshim.c
	@mkdir -p $(dir $@)
	$(CC) -std=c17 -O2 -g -Wall -Wextra -shared -fPIC $< -o $@ -ldl

build/acr-tamper: tests/reliability/tamper.c
	@mkdir -p $(dir $@)
	$(CC) -std=c17 -O2 -g -Wall -Wextra $(ALL_CPPFLAGS) $(PKG_CFLAGS) $< -o $@ -llmdb

test-reliability: all reliability-tools
	@bash tests/reliability/run.sh quick

test-crash: all reliability-tools
	@rc=0; python3 tests/reliability/crash.py --kills $(CRASH_KILLS) || rc=1; \
	python3 tests/reliability/crash_serve.py --kills $(CRASH_KILLS) || rc=1; exit $$rc

test-crash-serve: all
	@python3 tests/reliability/crash_serve.py --kills $(CRASH_KILLS)

test-faults: all reliability-tools
	@python3 tests/reliability/faults.py full

# ---- libFuzzer (clang-14): the library rebuilt with coverage and sanitizers ----

$(FUZZ_DIR)/obj/%.o: %.c $(LIB_HDR)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(ALL_CPPFLAGS) -std=c17 -g -O1 $(PKG_CFLAGS) \
	    -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined \
	    -fno-omit-frame-pointer -c $< -o $@

$(FUZZ_DIR)/libaccrue.a: $(FUZZ_LIB_OBJ)
	rm -f $@ && ar rcs $@ $^

$(FUZZ_DIR)/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz_common.h $(FUZZ_DIR)/libaccrue.a
	$(FUZZ_CC) $(ALL_CPPFLAGS) -Itests/fuzz -std=c17 -g -O1 $(PKG_CFLAGS) $(FUZZ_SAN) \
	    $< $(FUZZ_DIR)/libaccrue.a -o $@ $(LIBS)

# fuzz_http also links the server's socket-free request handling (tools/server/parse.c) and
# llhttp, built from the sources of Debian's node-llhttp like the server's own copy.
FUZZ_HTTP_OBJ := $(FUZZ_DIR)/obj/tools/server/parse.o \
                 $(LLHTTP_OBJ:$(BUILD)/obj/llhttp/%=$(FUZZ_DIR)/obj/llhttp/%)

$(FUZZ_DIR)/obj/tools/server/parse.o: tools/server/parse.c tools/server/internal.h \
                                      tools/server/server.h $(wildcard include/accrue/*.h)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(ALL_CPPFLAGS) -std=c17 -g -O1 $(PKG_CFLAGS) \
	    -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined \
	    -fno-omit-frame-pointer -c $< -o $@

$(FUZZ_DIR)/obj/llhttp/%.o: $(LLHTTP_DIR)/%.c tests/reliability.mk
	@mkdir -p $(dir $@)
	$(FUZZ_CC) -std=c17 -D_POSIX_C_SOURCE=200809L -DLLHTTP_STRICT_MODE=1 -I/usr/share/include/llhttp -g -O1 -w \
	    -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined \
	    -fno-omit-frame-pointer -c $< -o $@

$(FUZZ_DIR)/fuzz_http: tests/fuzz/fuzz_http.c tests/fuzz/fuzz_common.h tools/server/internal.h \
                       $(FUZZ_HTTP_OBJ) $(FUZZ_DIR)/libaccrue.a
	$(FUZZ_CC) $(ALL_CPPFLAGS) -Itests/fuzz -Itools/server -std=c17 -g -O1 $(PKG_CFLAGS) $(FUZZ_SAN) \
	    $< $(FUZZ_HTTP_OBJ) $(FUZZ_DIR)/libaccrue.a -o $@ $(LIBS)

fuzz-build: $(FUZZ_BINS)

fuzz: fuzz-build
	@bash tests/fuzz/run.sh $(FUZZ_SECONDS) $(FUZZ_TARGETS)

fuzz-quick: fuzz-build
	@bash tests/fuzz/run.sh 20 $(FUZZ_TARGETS)
