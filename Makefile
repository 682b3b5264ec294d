# Two-command quick start: `make up` then `make test` (README.md).
SHELL    := /bin/bash
BUILD    ?= build
JOBS     ?= $(shell nproc)
INFRACTL := $(BUILD)/infractl
CMAKE_ARGS ?=

.PHONY: all deps build up down status test unit asan tsan fuzz bench format clean install

all: build

deps:
	@scripts/install-deps.sh

build:
	@cmake -S . -B $(BUILD) $(CMAKE_ARGS) >/dev/null
	@cmake --build $(BUILD) -j$(JOBS)

# Installs what is missing, builds, starts the stack, waits until healthy, prints status.
up: deps build
	$(INFRACTL) up --detach --wait
	$(INFRACTL) status

down:
	$(INFRACTL) down

status:
	$(INFRACTL) status

# Unit tests, then integration tests against the real stack (started if it is not running,
# and left as found).
test: build
	cd $(BUILD) && ctest --output-on-failure

unit: build
	cd $(BUILD) && ctest --output-on-failure -L unit

# Unit tests under ASan+UBSan in a separate build tree.
asan:
	@cmake -S . -B $(BUILD)-asan -DCMAKE_C_COMPILER=clang -DUT_SANITIZE=ON \
		-DCMAKE_BUILD_TYPE=Debug >/dev/null
	@cmake --build $(BUILD)-asan -j$(JOBS)
	cd $(BUILD)-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
		UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest --output-on-failure -L unit

# Tests of threaded code (metrics atomics, MHD threads, snapshot swaps, gpu_agent collector)
# under ThreadSanitizer.
TSAN_TESTS ?= metrics|http|rollout|gpu
tsan:
	@cmake -S . -B $(BUILD)-tsan -DCMAKE_C_COMPILER=clang -DUT_TSAN=ON \
		-DCMAKE_BUILD_TYPE=Debug >/dev/null
	@cmake --build $(BUILD)-tsan -j$(JOBS)
	cd $(BUILD)-tsan && TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
		ctest --output-on-failure -L unit -R '$(TSAN_TESTS)'

# Each libFuzzer target for FUZZ_SECONDS, starting from (a copy of) its corpus.
FUZZ_SECONDS ?= 30
fuzz:
	@cmake -S . -B $(BUILD)-fuzz -DCMAKE_C_COMPILER=clang -DUT_LIBFUZZER=ON \
		-DCMAKE_BUILD_TYPE=Debug >/dev/null
	@cmake --build $(BUILD)-fuzz -j$(JOBS) --target $$(cd tests/fuzz && ls fuzz_*.c | sed 's/\.c$$//')
	@for t in tests/fuzz/fuzz_*.c; do n=$$(basename $$t .c); c=$$(mktemp -d); \
		cp -r tests/fuzz/corpus/$$n/. $$c/ 2>/dev/null; \
		echo "== fuzz $$n ($(FUZZ_SECONDS)s)"; \
		$(BUILD)-fuzz/tests/$$n -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 $$c 2>&1 | \
			grep -E "stat::number_of_executed_units|ERROR|SUMMARY|crash-" ; \
		rc=$${PIPESTATUS[0]}; rm -rf $$c; [ $$rc -eq 0 ] || exit $$rc; done

# Figures for the issue notes and docs; compare peers within one run (the machine is shared).
bench: deps build
	@echo "== bench: local stack (infractl): time to healthy, status latency"
	tests/bench/bench_stack.sh $(INFRACTL)
	@echo "== bench: flag evaluation in process (librollout vs unleash-client, GrowthBook)"
	tests/bench/rollout/run.sh $(BUILD)
	@echo "== bench: gpu_agent scrape latency and RSS (fake NVML) vs nvidia-smi"
	tests/bench/gpu/bench.sh $(BUILD)
	@echo "== bench: rolloutd OFREP on loopback (wrk; needs the wrk package)"
	bash tests/integration/test_rolloutd_bench.sh $(BUILD)/rolloutd 10

# librollout for C services: include/rollout.h, librollout.a, librollout.so (SONAME
# librollout.so.0) and lib/pkgconfig/rollout.pc under PREFIX (DESTDIR honoured).
PREFIX ?= /usr/local
install: build
	cmake --install $(BUILD) --prefix $(PREFIX) --component rollout

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD) $(BUILD)-asan $(BUILD)-tsan $(BUILD)-fuzz
