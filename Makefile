# Two-command quick start: `make up` then `make test` (README.md).
BUILD    ?= build
JOBS     ?= $(shell nproc)
INFRACTL := $(BUILD)/infractl
CMAKE_ARGS ?=

.PHONY: all deps build up down status test unit asan bench format clean

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

bench: deps build
	@echo "== bench: local stack (infractl)"
	tests/bench/bench_stack.sh $(INFRACTL)

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD) $(BUILD)-asan
