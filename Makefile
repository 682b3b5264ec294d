# Two-command quick start: `make up` then `make test` (README.md).
SHELL    := /bin/bash
BUILD    ?= build
JOBS     ?= $(shell nproc)
INFRACTL := $(BUILD)/infractl
CMAKE_ARGS ?=
# No "Entering directory" lines from the sub-makes CMake's build runs.
MAKEFLAGS += --no-print-directory

.PHONY: all deps deps-test build build-quiet up down status test unit asan tsan fuzz
.PHONY: bench drill drill-rk drill-netns drill-netns-redis drill-netns-kafka format clean install
.PHONY: ui-screenshot

all: build

# scripts/install-deps.sh is the one list of packages, by purpose (runtime, tests, ci).
deps:
	@scripts/install-deps.sh runtime

deps-test:
	@scripts/install-deps.sh tests

build:
	@cmake -S . -B $(BUILD) $(CMAKE_ARGS) >/dev/null
	@cmake --build $(BUILD) -j$(JOBS)

# The build without its progress lines: warnings and errors only (the whole log on failure).
build-quiet:
	@cmake -S . -B $(BUILD) $(CMAKE_ARGS) >/dev/null
	@log=$(BUILD)/build.log; if cmake --build $(BUILD) -j$(JOBS) >$$log 2>&1; then \
		grep -E "warning:" $$log || true; echo "build: ok ($(BUILD)/, log $$log)"; \
	else cat $$log; echo "build: FAILED (log $$log)"; exit 1; fi

# Installs what is missing, builds, starts the stack, waits until healthy, prints status.
up: deps build-quiet
	@$(INFRACTL) up --detach --wait
	@$(INFRACTL) status

down:
	$(INFRACTL) down

status:
	$(INFRACTL) status

# Unit tests, then integration tests against the real stack (started if it is not running,
# and left as found).  Installs the test packages first.  A test that cannot run is reported
# as skipped with its reason; NO_SKIP=1 (CI) turns any skip into a failure.
test: deps-test build-quiet
	@scripts/ctest.sh $(BUILD) $(CTEST_ARGS)

unit: build
	@scripts/ctest.sh $(BUILD) -L unit

# Unit tests under ASan+UBSan in a separate build tree.
asan:
	@cmake -S . -B $(BUILD)-asan -DCMAKE_C_COMPILER=clang -DUT_SANITIZE=ON \
		-DCMAKE_BUILD_TYPE=Debug >/dev/null
	@cmake --build $(BUILD)-asan -j$(JOBS)
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		scripts/ctest.sh $(BUILD)-asan -L unit

# Tests of threaded code (metrics atomics, MHD threads, snapshot swaps, gpu_agent collector,
# core/bgjob and the kafka probe's thread on it) under ThreadSanitizer.  Not unit.kafka nor
# unit.probe: librdkafka (2.12.1 built WITH_C11THREADS, as 2.0.2) starts its threads with
# glibc's C11 thrd_create(), which clang 14's TSan does not intercept (it crashes in its
# allocator on those threads); unit.probe_kafka runs the probe's thread with a fake
# kfk_probe() instead.
TSAN_TESTS ?= metrics|http|rollout|gpu|probe_kafka|bgjob
tsan:
	@cmake -S . -B $(BUILD)-tsan -DCMAKE_C_COMPILER=clang -DUT_TSAN=ON \
		-DCMAKE_BUILD_TYPE=Debug >/dev/null
	@cmake --build $(BUILD)-tsan -j$(JOBS)
	TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
		scripts/ctest.sh $(BUILD)-tsan -L unit -R '$(TSAN_TESTS)'

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
bench: deps-test build-quiet
	@echo "== bench: local stack (infractl): time to healthy, status latency"
	tests/bench/bench_stack.sh $(INFRACTL)
	@echo "== bench: Kafka: brokers healthy cold/warm, 1 KiB acks=all throughput (Java tools vs kcat)"
	tests/bench/bench_kafka.sh $(INFRACTL)
	@echo "== bench: pgBackRest backup and restore of a >= 1 GB pgbench database (compressions compared)"
	tests/bench/bench_backup.sh $(INFRACTL)
	@echo "== bench: flag evaluation in process (librollout vs unleash-client, GrowthBook)"
	tests/bench/rollout/run.sh $(BUILD)
	@echo "== bench: gpu_agent scrape latency and RSS (fake NVML) vs nvidia-smi"
	tests/bench/gpu/bench.sh $(BUILD)
	@echo "== bench: rolloutd OFREP on loopback (wrk; needs the wrk package)"
	bash tests/integration/test_rolloutd_bench.sh $(BUILD)/rolloutd 10

# Failover drills on the running stack (infractl drill; docs/drills.md): DRILL_RUNS runs of
# each PostgreSQL fault, reports in docs/drill-report/ (committed: the figures docs cite).
# DRILL_FAULTS picks some: NAME or NAME:ARGS (commas for spaces), the report postgres-NAME.
DRILL_RUNS ?= 10
DRILL_PROXY := proxy-haproxy:--fault,proxy,--target,haproxy proxy-pgbouncer:--fault,proxy,--target,pgbouncer
DRILL_DCS := dcs-crash:--fault,dcs,--mode,crash dcs-pause:--fault,dcs,--mode,pause
DRILL_FAULTS ?= pause crash pg-crash stop switchover $(DRILL_DCS) $(DRILL_PROXY)
# The Redis and Kafka faults first (drill-rk, also on its own; DRILL_RK picks some), each with
# an HTML timeline: CLUSTER:NAME or CLUSTER:NAME:ARGS (commas for spaces), the report
# CLUSTER-NAME.
DRILL_KAFKA_CTL := kafka:crash-controller:--fault,crash,--victim,controller
DRILL_RK ?= redis:crash redis:pause redis:switchover kafka:crash $(DRILL_KAFKA_CTL) kafka:pause
drill-rk: build-quiet
	@mkdir -p docs/drill-report
	@$(INFRACTL) status >/dev/null || $(INFRACTL) up --detach --wait --quiet
	@for cf in $(DRILL_RK); do \
		c=$${cf%%:*} rest=$${cf#*:}; f=$${rest%%:*}; args="--fault $$f"; \
		case $$rest in *:*) args=$$(echo "$${rest#*:}" | tr , ' ');; esac; \
		echo "== drill $$c $$args --runs $(DRILL_RUNS)"; \
		$(INFRACTL) drill $$c $$args --runs $(DRILL_RUNS) --json \
			--html docs/drill-report/$$c-$$f.html \
			>docs/drill-report/$$c-$$f.json 2>docs/drill-report/$$c-$$f.log; \
		echo "exit $$?: $$(grep -c '^drill: run [0-9]*: ' docs/drill-report/$$c-$$f.log) runs"; \
		jq -c '{cluster, fault, gap_ms, totals, passed}' docs/drill-report/$$c-$$f.json; done

drill: build-quiet drill-rk
	@mkdir -p docs/drill-report
	@$(INFRACTL) status >/dev/null || $(INFRACTL) up --detach --wait --quiet
	@for spec in $(DRILL_FAULTS); do \
		f=$${spec%%:*}; args="--fault $$f"; \
		case $$spec in *:*) args=$$(echo "$${spec#*:}" | tr , ' ');; esac; \
		echo "== drill postgres $$args --runs $(DRILL_RUNS)"; \
		$(INFRACTL) drill postgres $$args --runs $(DRILL_RUNS) --json \
			--html docs/drill-report/postgres-$$f.html >docs/drill-report/postgres-$$f.json 2>docs/drill-report/postgres-$$f.log; \
		echo "exit $$?: $$(grep -c '^drill: run [0-9]*: ' docs/drill-report/postgres-$$f.log) runs"; \
		jq -c '{fault, gap_ms, lost, passed}' docs/drill-report/postgres-$$f.json; done

# docs/images/rolloutd-ui.png: rolloutd's web page as the browser test leaves it (a killed flag,
# its history, the rollout fixture's charts).  Only this target writes the committed file.
ui-screenshot: build-quiet
	@mkdir -p docs/images
	bash tests/browser/test_ui.sh $(BUILD)/rolloutd $(BUILD)/tests/browser/npm docs/images/rolloutd-ui.png

# Partition and host death (scripts/drill-netns.sh, as root: the drill-only cluster in network
# namespaces, brought up and down around the runs; its ports 31500-31599).
drill-netns: build-quiet
	@mkdir -p docs/drill-report
	@scripts/drill-netns.sh up $(INFRACTL)
	@for f in partition host-death; do \
		echo "== drill postgres --fault $$f --runs $(DRILL_RUNS) (drill-netns cluster)"; \
		INFRACTL=$(INFRACTL) scripts/drill-netns.sh infractl drill postgres --fault $$f \
			--runs $(DRILL_RUNS) --max-gap 23s --json --html docs/drill-report/postgres-$$f.html \
			>docs/drill-report/postgres-$$f.json 2>docs/drill-report/postgres-$$f.log; \
		echo "exit $$?: $$(grep -c '^drill: run [0-9]*: ' docs/drill-report/postgres-$$f.log) runs"; \
		jq -c '{fault, gap_ms, lost, passed}' docs/drill-report/postgres-$$f.json; done
	@scripts/drill-netns.sh down $(INFRACTL)

# The Redis partition (scripts/drill-netns.sh --cluster redis: three namespaces, each a Redis
# node and a Sentinel; docs/drills.md), part of drill-netns and also on its own: DRILL_RUNS runs
# as production is configured (min-replicas-to-write 0), then DRILL_RUNS with
# min-replicas-to-write 1 and min-replicas-max-lag REDIS_MIN_REPLICAS_LAG set on every node by
# CONFIG SET (put back to 0, and rewritten, before the cluster goes down); reports
# redis-partition.* and redis-partition-min-replicas.* (json, log, html).
REDIS_MIN_REPLICAS_LAG ?= 1
drill-netns: drill-netns-redis
drill-netns-redis: build-quiet
	@mkdir -p docs/drill-report
	@scripts/drill-netns.sh --cluster redis up $(INFRACTL)
	@min_replicas() { for i in 1 2 3; do \
		REDISCLI_AUTH=$$(cat .infra-netns-redis/secrets/redis) redis-cli -h 10.232.0.1$$i -p 6379 \
			CONFIG SET min-replicas-to-write $$1 min-replicas-max-lag $$2 >/dev/null && \
		REDISCLI_AUTH=$$(cat .infra-netns-redis/secrets/redis) redis-cli -h 10.232.0.1$$i -p 6379 \
			CONFIG REWRITE >/dev/null || return 1; done; }; \
	for v in "0 10" "1 $(REDIS_MIN_REPLICAS_LAG)"; do \
		r=docs/drill-report/redis-partition; [ "$${v% *}" = 0 ] || r=$$r-min-replicas; \
		echo "== drill redis --fault partition --runs $(DRILL_RUNS) (drill-netns redis cluster, min-replicas-to-write/max-lag $$v)"; \
		min_replicas $$v && INFRACTL=$(INFRACTL) scripts/drill-netns.sh --cluster redis infractl \
			drill redis --fault partition --runs $(DRILL_RUNS) --json --html $$r.html \
			>$$r.json 2>$$r.log; \
		echo "exit $$?: $$(grep -c '^drill: run [0-9]*: ' $$r.log) runs"; \
		jq -c '{fault, gap_ms, totals, healed, passed}' $$r.json; done; \
	min_replicas 0 10; scripts/drill-netns.sh --cluster redis down $(INFRACTL)

# The Kafka partition series (scripts/drill-netns.sh --cluster kafka: the KRaft drill cluster in
# namespaces, up and down around the runs); part of drill-netns, also on its own.
drill-netns: drill-netns-kafka
drill-netns-kafka: build-quiet
	@mkdir -p docs/drill-report
	@scripts/drill-netns.sh --cluster kafka up $(INFRACTL)
	@echo "== drill kafka --fault partition --runs $(DRILL_RUNS) (drill-netns-kafka cluster)"; \
	INFRACTL=$(INFRACTL) scripts/drill-netns.sh --cluster kafka infractl drill kafka \
		--fault partition --runs $(DRILL_RUNS) --json --html docs/drill-report/kafka-partition.html \
		>docs/drill-report/kafka-partition.json 2>docs/drill-report/kafka-partition.log; \
	echo "exit $$?: $$(grep -c '^drill: run [0-9]*: ' docs/drill-report/kafka-partition.log) runs"; \
	jq -c '{cluster, fault, gap_ms, totals, healed, passed}' docs/drill-report/kafka-partition.json; \
	scripts/drill-netns.sh --cluster kafka down $(INFRACTL)

# librollout for C services: include/rollout.h, librollout.a, librollout.so (SONAME
# librollout.so.0) and lib/pkgconfig/rollout.pc under PREFIX (DESTDIR honoured).
PREFIX ?= /usr/local
install: build
	cmake --install $(BUILD) --prefix $(PREFIX) --component rollout

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD) $(BUILD)-asan $(BUILD)-tsan $(BUILD)-fuzz
