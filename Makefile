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

.PHONY: npm dist

# npm builds the npm packages (sigil-hub and one sigil-hub-<os>-<arch> per
# platform) into dist/npm, packed and ready to publish; `npx -y sigil-hub`
# then runs the matching binary. scripts/npm-e2e.sh publishes them to a
# registry on loopback and installs them from there (.ci/run runs it).
npm:
	./scripts/npm.sh

# dist builds the release archives and their SHA256SUMS into dist/release.
dist:
	./scripts/dist.sh
