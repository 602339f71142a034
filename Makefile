# secretfs: a plain Makefile. `make` builds build/secretfs and
# build/libsecretfs.a; `make test` runs every Check suite; `make asan` does
# the same under AddressSanitizer + UBSan in build-asan/.

PREFIX ?= /usr/local
DESTDIR ?=
BUILD ?= build
CC ?= cc

PKGS := fuse3 libsodium jansson sqlite3 check libmicrohttpd libpq
MISSING := $(strip $(foreach p,$(PKGS),$(if $(shell pkg-config --exists $(p) && echo y),,$(p))))
ifneq ($(MISSING),)
ifeq ($(filter clean deps run test asan lint uninstall,$(MAKECMDGOALS)),)
$(error missing libraries: $(MISSING); run scripts/deps (Debian) to install them)
endif
endif

WARN := -std=c11 -Wall -Wextra -Wpedantic -Wshadow -Wstrict-prototypes \
	-Wmissing-prototypes -Wformat=2 -Wvla
ifdef WERROR
WARN += -Werror
endif
OPT ?= -O2 -g
CPPFLAGS += -D_GNU_SOURCE -Icore/include -Ifs
CFLAGS += $(OPT) $(WARN) $(SAN) $(shell pkg-config --cflags fuse3 libsodium jansson sqlite3 libmicrohttpd libpq 2>/dev/null)
CORE_LIBS := $(shell pkg-config --libs libsodium jansson sqlite3 libpq 2>/dev/null) -lpthread
FUSE_LIBS := $(shell pkg-config --libs fuse3 libmicrohttpd 2>/dev/null)
CHECK_CFLAGS := $(shell pkg-config --cflags check 2>/dev/null)
CHECK_LIBS := $(shell pkg-config --libs check 2>/dev/null)
LDFLAGS += $(SAN)

CORE_SRC := $(sort $(wildcard core/*.c))
FS_SRC := $(sort $(wildcard fs/*.c fs/*/*.c))
TEST_SRC := $(sort $(wildcard tests/test_*.c))
TESTLIB_SRC := $(sort $(wildcard tests/lib/*.c))

CORE_OBJ := $(CORE_SRC:%.c=$(BUILD)/%.o)
FS_OBJ := $(FS_SRC:%.c=$(BUILD)/%.o)
TESTLIB_OBJ := $(TESTLIB_SRC:%.c=$(BUILD)/%.o)
TEST_BIN := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
LIB := $(BUILD)/libsecretfs.a
BIN := $(BUILD)/secretfs

all: $(BIN) $(LIB)

# Rebuild everything when the flags change.
FLAGS_FILE := $(BUILD)/.flags
FLAGS_NOW := $(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS)
$(FLAGS_FILE): FORCE
	@mkdir -p $(@D)
	@echo '$(FLAGS_NOW)' | cmp -s - $@ || echo '$(FLAGS_NOW)' > $@

$(BUILD)/%.o: %.c $(FLAGS_FILE)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(if $(filter tests/%,$<),$(CHECK_CFLAGS) -Itests) -MMD -MP -c $< -o $@

$(LIB): $(CORE_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BIN): $(FS_OBJ) $(LIB)
	$(CC) $(LDFLAGS) -o $@ $(FS_OBJ) $(LIB) $(FUSE_LIBS) $(CORE_LIBS)

$(BUILD)/tests/%: $(BUILD)/tests/%.o $(TESTLIB_OBJ) $(LIB)
	$(CC) $(LDFLAGS) -o $@ $< $(TESTLIB_OBJ) $(LIB) $(CHECK_LIBS) $(CORE_LIBS)

tests: $(TEST_BIN) $(BIN)

# `make test` and `make run` first install what is missing (scripts/deps),
# then build in a fresh make so pkg-config sees the new libraries.
test: deps
	$(MAKE) run-tests

# Each suite's output (with the error lines the tests provoke on purpose)
# goes to $(BUILD)/test-logs/SUITE.log; the run prints each suite's
# summary and SKIP lines, and a failed suite's whole log. It fails if any
# suite fails. Suites find the program through SECRETFS_BIN.
run-tests: tests
	@mkdir -p $(BUILD)/test-logs; fail=0; for t in $(TEST_BIN); do \
		n=$${t##*/}; log=$(BUILD)/test-logs/$$n.log; \
		if SECRETFS_BIN=$(abspath $(BIN)) SECRETFS_KDF_MIN=1 $$t \
			>$$log 2>&1; then \
			grep -E '^[0-9]+%: Checks|SKIP' $$log | sed "s|^|$$n: |"; \
		else \
			fail=1; echo "== $$n FAILED (log: $$log)"; cat $$log; \
		fi; \
	done; exit $$fail

asan: deps
	CK_FORK=yes ASAN_OPTIONS=detect_leaks=1 $(MAKE) BUILD=build-asan OPT='-O1 -g -fno-omit-frame-pointer' \
		SAN='-fsanitize=address,undefined -fno-sanitize-recover=undefined' \
		run-tests

run: deps
	$(MAKE) all
	scripts/run

deps:
	scripts/deps

lint:
	scripts/lint

# The mount helper goes to /sbin whatever PREFIX is: mount(8) looks for
# mount.<type> only in /sbin, /sbin/fs.d and /sbin/fs (on merged-/usr
# systems /sbin is /usr/sbin). SBINDIR=... overrides it. @BINDIR@ in the
# helper and the unit becomes the installed program's directory.
install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man1 \
		$(DESTDIR)$(PREFIX)/share/man/man5 $(DESTDIR)$(or $(SBINDIR),/sbin) \
		$(DESTDIR)$(PREFIX)/lib/systemd/system
	install -m 0755 $(BIN) $(DESTDIR)$(PREFIX)/bin/secretfs
	install -m 0644 fs/secretfs.1 $(DESTDIR)$(PREFIX)/share/man/man1/secretfs.1
	install -m 0644 fs/secretfs.5 $(DESTDIR)$(PREFIX)/share/man/man5/secretfs.5
	sed 's|@BINDIR@|$(PREFIX)/bin|g' scripts/mount.fuse.secretfs \
		> $(DESTDIR)$(or $(SBINDIR),/sbin)/mount.fuse.secretfs
	chmod 0755 $(DESTDIR)$(or $(SBINDIR),/sbin)/mount.fuse.secretfs
	sed 's|@BINDIR@|$(PREFIX)/bin|g' 'scripts/secretfs@.service' \
		> '$(DESTDIR)$(PREFIX)/lib/systemd/system/secretfs@.service'
	chmod 0644 '$(DESTDIR)$(PREFIX)/lib/systemd/system/secretfs@.service'
	for u in secretfs-volume.service secretfs-volume.socket; do \
		sed 's|@BINDIR@|$(PREFIX)/bin|g' scripts/$$u \
			> $(DESTDIR)$(PREFIX)/lib/systemd/system/$$u && \
		chmod 0644 $(DESTDIR)$(PREFIX)/lib/systemd/system/$$u || exit 1; \
	done

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/secretfs \
		$(DESTDIR)$(PREFIX)/share/man/man1/secretfs.1 \
		$(DESTDIR)$(PREFIX)/share/man/man5/secretfs.5 \
		$(DESTDIR)$(or $(SBINDIR),/sbin)/mount.fuse.secretfs \
		'$(DESTDIR)$(PREFIX)/lib/systemd/system/secretfs@.service' \
		$(DESTDIR)$(PREFIX)/lib/systemd/system/secretfs-volume.service \
		$(DESTDIR)$(PREFIX)/lib/systemd/system/secretfs-volume.socket

clean:
	rm -rf build build-asan

FORCE:
.PHONY: all tests test run-tests asan run deps lint install uninstall clean FORCE

-include $(CORE_OBJ:.o=.d) $(FS_OBJ:.o=.d) $(TESTLIB_OBJ:.o=.d) $(TEST_BIN:=.d)
