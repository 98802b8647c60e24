# berth: `make run` installs what is missing, builds, starts the daemon in the background and
# imports the busybox image; `make test` runs the unit and integration tests.

ROOT      ?= /var/lib/berth
EXEC_ROOT ?= /run/berth
SOCKET    ?= $(EXEC_ROOT)/berth.sock
TCP       ?= tcp://127.0.0.1:2376
LOG       ?= /var/log/berth.log
BIN       := target/release/berth
BUSYBOX   := target/busybox.tar
CURL      := curl -sf --unix-socket $(SOCKET)

.PHONY: all deps build run stop test bench conformance clean

all: build

deps:
	@scripts/install-deps.sh

build: deps
	cargo build --release

$(BUSYBOX): scripts/busybox-rootfs.sh
	@mkdir -p target
	scripts/busybox-rootfs.sh $@

run: build $(BUSYBOX)
	@if $(CURL) http://localhost/_ping >/dev/null 2>&1; then \
		echo "berth is already running on $(SOCKET)"; \
	else \
		mkdir -p $(EXEC_ROOT); \
		setsid $(BIN) --root $(ROOT) --exec-root $(EXEC_ROOT) -H unix://$(SOCKET) -H $(TCP) \
			>>$(LOG) 2>&1 < /dev/null & echo $$! > $(EXEC_ROOT)/berth.pid; \
		for i in $$(seq 100); do $(CURL) http://localhost/_ping >/dev/null 2>&1 && break; sleep 0.1; done; \
		$(CURL) http://localhost/_ping >/dev/null || { echo "berth did not start; see $(LOG)"; tail -n 20 $(LOG); exit 1; }; \
		echo "berth is running (pid $$(cat $(EXEC_ROOT)/berth.pid)) on unix://$(SOCKET) and $(TCP); log: $(LOG)"; \
	fi
	@if ! $(CURL) http://localhost/images/busybox/json >/dev/null 2>&1; then \
		$(CURL) -X POST -H 'Content-Type: application/x-tar' --data-binary @$(BUSYBOX) \
			'http://localhost/images/create?fromSrc=-&repo=busybox&tag=latest' >/dev/null && \
		echo "imported busybox:latest"; \
	fi

stop:
	@if [ -f $(EXEC_ROOT)/berth.pid ]; then kill $$(cat $(EXEC_ROOT)/berth.pid) && rm -f $(EXEC_ROOT)/berth.pid && echo "berth stopped (containers keep running)"; fi

test: deps $(BUSYBOX)
	cargo test --release -- --test-threads 4

bench: build $(BUSYBOX)
	python3 scripts/bench.py --berth $(BIN) --busybox $(BUSYBOX)

# Runs the same scenarios against the Docker Engine on this machine and a berth started for
# the run, prints where they differ and regenerates docs/compatibility.md (needs dockerd).
conformance: build $(BUSYBOX)
	python3 scripts/conformance.py --berth $(BIN) --busybox $(BUSYBOX)

clean:
	cargo clean
