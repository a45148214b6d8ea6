# sigil-hub developer targets.

.PHONY: bench

# bench runs the performance suite (./bench) and prints a summary: the hub's
# figures beside the floors measured in the same run (a do-nothing relay
# process for stdio, httputil.ReverseProxy for HTTP), each target met or not,
# the machine and the command. COUNT=3 repeats the latency and throughput
# groups and shows medians; BENCH_FLAGS=-p also writes CPU and allocation
# profiles.
bench:
	./scripts/bench.sh $(BENCH_FLAGS)
