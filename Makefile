# classicd: the classic Unix network daemons.
#   make          release build (installs missing build packages when root)
#   make test     lint (fmt, clippy), unit tests, the interop suite with real clients
#   make lab      every daemon on 127.0.0.1 with a demo account
#   make install  PREFIX=/usr/local DESTDIR= (binaries to sbin, man pages, samples)
#   make bench    benchmarks side by side with the reference daemons
#   make fuzz     every cargo-fuzz target for FUZZ_SECONDS (not part of make test)

PREFIX     ?= /usr/local
DESTDIR    ?=
SBINDIR    ?= $(PREFIX)/sbin
MANDIR     ?= $(PREFIX)/share/man
DOCDIR     ?= $(PREFIX)/share/doc/classicd
SYSCONFDIR ?= /etc
CARGO      ?= cargo
PYTHON     ?= python3
DAEMONS    := $(patsubst src/bin/%.rs,%,$(wildcard src/bin/*.rs))
PYTEST_ARGS ?=
# make fuzz: seconds per target; FUZZ_RUNS=N (executions instead), FUZZ_TARGETS="a b"
FUZZ_SECONDS ?= 60
FUZZ_RUNS ?=
FUZZ_TARGETS ?=

# Compiled in as the default configuration directory; exported only when it
# differs from the built-in /etc, so plain cargo builds and make agree.
ifneq ($(SYSCONFDIR),/etc)
export SYSCONFDIR
endif

.PHONY: all build deps test-deps test unit interop lab install uninstall bench clean lint bsd-check fuzz

all: build

deps:
	@sh scripts/deps.sh build

test-deps:
	@PYTHON=$(PYTHON) sh scripts/deps.sh test

build: deps
	$(CARGO) build --release

unit: deps
	$(CARGO) test --release --lib --bins --tests

# The interpreter that has pytest: $(PYTHON), or the venv deps.sh made for it.
interop: build test-deps
	@py=$(PYTHON); [ -x target/interop-venv/bin/python ] && py=target/interop-venv/bin/python; \
	echo "$$py -m pytest -q -p no:cacheprovider tests/interop $(PYTEST_ARGS)"; \
	$$py -m pytest -q -p no:cacheprovider tests/interop $(PYTEST_ARGS)

test: lint unit bsd-check interop

lint:
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets -- -D warnings

# The suite must build for the BSDs too: checked for FreeBSD where its Rust
# target is installed (rustup target add x86_64-unknown-freebsd), without
# PAM, whose headers (OpenPAM's) a Linux machine lacks.
bsd-check:
	@if rustup target list --installed 2>/dev/null | grep -q x86_64-unknown-freebsd; then \
		echo "$(CARGO) check --target x86_64-unknown-freebsd --no-default-features --lib --bins"; \
		RUSTFLAGS="-D warnings" $(CARGO) check --target x86_64-unknown-freebsd --no-default-features --lib --bins; \
	else echo "bsd-check: skipped (rustup target add x86_64-unknown-freebsd to run it)"; fi

lab: build
	$(PYTHON) scripts/lab.py

install: build
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man8 \
		$(DESTDIR)$(DOCDIR)/examples
	for d in $(DAEMONS); do install -m 755 target/release/$$d $(DESTDIR)$(SBINDIR)/$$d; done
	for m in man/*.8; do [ -f "$$m" ] && install -m 644 $$m $(DESTDIR)$(MANDIR)/man8/; done; true
	for m in man/*.5; do [ -f "$$m" ] && install -m 644 $$m $(DESTDIR)$(MANDIR)/man5/; done; true
	cp -R etc/. $(DESTDIR)$(DOCDIR)/examples/
	@echo "Sample configurations, inetd/xinetd lines and systemd units: $(DOCDIR)/examples"

uninstall:
	for d in $(DAEMONS); do rm -f $(DESTDIR)$(SBINDIR)/$$d $(DESTDIR)$(MANDIR)/man8/$$d.8; done
	rm -f $(DESTDIR)$(MANDIR)/man5/classicd.conf.5
	rm -rf $(DESTDIR)$(DOCDIR)

# cargo-fuzz (nightly) targets in fuzz/, one niced process at a time; see
# HACKING.md (Fuzzing). Needs `cargo install cargo-fuzz`.
fuzz:
	FUZZ_SECONDS=$(FUZZ_SECONDS) FUZZ_RUNS=$(FUZZ_RUNS) FUZZ_TARGETS="$(FUZZ_TARGETS)" sh scripts/fuzz.sh

bench: build
	@for b in scripts/bench-*.sh; do [ -x "$$b" ] && { echo "== $$b"; $$b; }; done; true

clean:
	$(CARGO) clean
	rm -rf lab
