# bench.mk - `make bench-rollout`: include from the Makefile with
#   -include tests/bench/rollout/bench.mk
.PHONY: bench-rollout
bench-rollout:
	tests/bench/rollout/run.sh $(BUILD)
