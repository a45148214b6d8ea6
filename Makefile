# sigil-hub developer targets.

.PHONY: bench

# bench runs the performance suite (./bench, issue 7) and prints a summary.
# BENCH_FLAGS=-p also writes CPU and allocation profiles.
bench:
	./scripts/bench.sh $(BENCH_FLAGS)
