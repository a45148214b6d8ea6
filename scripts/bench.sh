#!/bin/sh
# bench.sh runs the sigil-hub performance suite (package ./bench, issue 7)
# and prints a summary table with the issue's targets. It takes a few
# minutes on a 2-core machine. Nothing here passes or fails on wall time:
# the exit status is non-zero only when a benchmark cannot run.
#
# Usage: scripts/bench.sh [-p]
#   -p   also write CPU and allocation profiles of the latency and throughput
#        runs to $OUT (inspect with: go tool pprof -top $OUT/bench.test $OUT/cpu.out)
# Environment: OUT (default: a new temporary folder) keeps the raw output.
# COUNT (default 1) runs the latency and throughput groups that many times;
# the summary shows the median of each metric over the runs (on a shared
# machine a single throughput ratio can be off by ±30%).
set -eu

cd "$(dirname "$0")/.."
profile=0
if [ "${1:-}" = "-p" ]; then profile=1; fi
OUT=${OUT:-$(mktemp -d "${TMPDIR:-/tmp}/sigil-hub-bench.XXXXXX")}
mkdir -p "$OUT"
raw="$OUT/bench.txt"
: >"$raw"

echo "building the benchmark binary..." >&2
go test -c -o "$OUT/bench.test" ./bench/

# run PATTERN BENCHTIME [extra flags...]: one benchmark group, appended to $raw.
run() {
	pat=$1 n=$2
	shift 2
	echo "running $pat ($n)..." >&2
	(cd bench && "$OUT/bench.test" -test.run '^$' -test.bench "$pat" -test.benchtime "$n" "$@") | tee -a "$raw" | grep '^Benchmark' >&2
}

if [ "$profile" = 1 ]; then
	run '^BenchmarkLatency$/^(policy|sign)$' 5000x -test.cpuprofile "$OUT/cpu-latency.out"
	run '^BenchmarkThroughput$/up1/policy/c64' 20000x -test.cpuprofile "$OUT/cpu.out"
	run '^BenchmarkAuthz$/policy' 20000x -test.memprofile "$OUT/mem.out" -test.memprofilerate 512
	run '^BenchmarkToolsList$' 50x -test.memprofile "$OUT/mem-list.out" -test.memprofilerate 4096
fi
COUNT=${COUNT:-1}
run '^BenchmarkLatency$' 5000x -test.count "$COUNT"
run '^BenchmarkAuthz$' 5000x
run '^BenchmarkThroughput$' 5000x -test.count "$COUNT"
run '^BenchmarkStartup$' 3x
run '^BenchmarkToolsList$' 50x
run '^BenchmarkRSS$' 1x

# Summary: each benchmark's metrics by unit, the median over its runs.
awk '
/^Benchmark/ {
	name = $1; sub(/-[0-9]+$/, "", name); sub(/^Benchmark/, "", name)
	if (!(name in seen)) { order[++n] = name; seen[name] = 1 }
	for (i = 3; i < NF; i += 2) { k = name SUBSEP $(i+1); all[k] = all[k] " " $i }
}
function median(list,   a, c, x, y, t) {
	c = split(list, a, " ")
	for (x = 1; x <= c; x++) for (y = x + 1; y <= c; y++) if (a[y] + 0 < a[x] + 0) { t = a[x]; a[x] = a[y]; a[y] = t }
	return (c % 2) ? a[(c + 1) / 2] : (a[c / 2] + a[c / 2 + 1]) / 2
}
function v(name, unit) { return ((name, unit) in all) ? median(all[name, unit]) : "-" }
function ok(cond) { return cond ? "met" : "NOT met" }
END {
	printf "\n%-34s %10s %10s %10s %10s %8s\n", "latency (µs)", "direct p50", "hub p50", "added p50", "added p99", "ratio"
	for (i = 1; i <= n; i++) if (order[i] ~ /^Latency\//)
		printf "%-34s %10s %10s %10s %10s %8s\n", order[i], v(order[i], "direct-p50-µs"), v(order[i], "hub-p50-µs"), v(order[i], "added-p50-µs"), v(order[i], "added-p99-µs"), v(order[i], "ratio")
	printf "\n%-34s %12s %12s %8s %14s\n", "throughput", "direct/s", "hub/s", "ratio", "hub cpu µs"
	for (i = 1; i <= n; i++) if (order[i] ~ /^Throughput\//)
		printf "%-34s %12s %12s %8s %14s\n", order[i], v(order[i], "direct-calls/s"), v(order[i], "hub-calls/s"), v(order[i], "ratio"), v(order[i], "hub-cpu-µs/call")
	printf "\nwhere the CPU goes in the binary runs (µs per call, from /proc). While both phases keep the\ncores busy, the ratio is about the cpu bound: (client+upstream) direct / (client+hub+upstream)\n"
	printf "%-40s %8s %8s %8s %8s %8s %10s\n", "", "direct:", "", "hub:", "", "", ""
	printf "%-40s %8s %8s %8s %8s %8s %10s\n", "", "client", "upstream", "client", "hub", "upstream", "cpu bound"
	for (i = 1; i <= n; i++) if (order[i] ~ /^Throughput\// && ((order[i], "upstream-hub-µs/call") in all)) {
		cd = v(order[i], "client-direct-µs/call"); ud = v(order[i], "upstream-direct-µs/call")
		ch = v(order[i], "client-hub-µs/call"); hc = v(order[i], "hub-cpu-µs/call"); uh = v(order[i], "upstream-hub-µs/call")
		printf "%-40s %8s %8s %8s %8s %8s %10.2f\n", order[i], cd, ud, ch, hc, uh, (cd + ud) / (ch + hc + uh)
	}
	printf "\n%-34s %12s %12s %14s\n", "authorization", "hub allocs", "hub B", "new conns/call"
	for (i = 1; i <= n; i++) if (order[i] ~ /^Authz\//)
		printf "%-34s %12s %12s %14s\n", order[i], v(order[i], "hub-allocs/call"), v(order[i], "hub-B/call"), v(order[i], "new-conns/call")
	s = "Startup"; l = "ToolsList"; r = "RSS"
	printf "\nstart-up: 20 upstreams %s ms, slowest alone %s ms (direct %s ms), ratio %s\n", v(s, "all-20-ms"), v(s, "slowest-alone-ms"), v(s, "slowest-direct-ms"), v(s, "ratio")
	printf "tools/list of 5,000 tools: %s ms (%s pages, %s KB, %s allocs)\n", v(l, "ms/list"), v(l, "pages"), v(l, "KB/list"), v(l, "allocs/op")
	printf "binary RSS: 1 upstream %s MB, 10: %s MB, 50: %s MB (%s MB/upstream), 50x100 tools: %s MB\n", v(r, "rss-1-MB"), v(r, "rss-10-MB"), v(r, "rss-50-MB"), v(r, "per-upstream-MB"), v(r, "rss-50x100tools-MB")
	p = "Latency/policy"; t = "Throughput/up1/policy/c64"
	pb = "Latency/policy-binary"; tb = "Throughput/up1/policy-binary/c64"
	printf "\ntargets (issue 7)\n"
	printf "  hub-added p50 <= 100 µs (policy):   %-8s %s\n", v(p, "added-p50-µs"), ok(v(p, "added-p50-µs") + 0 <= 100)
	printf "  hub-added p99 <= 1000 µs (policy):  %-8s %s\n", v(p, "added-p99-µs"), ok(v(p, "added-p99-µs") + 0 <= 1000)
	printf "  throughput >= 0.8x direct at c64:   %-8s %s\n", v(t, "ratio"), ok(v(t, "ratio") + 0 >= 0.8)
	hp = "Latency/http-policy"; hx = "Latency/http-proxy"
	printf "  the same over Streamable HTTP (client and upstream both HTTP):\n"
	printf "    hub-added p50 <= 100 µs:          %-8s %s (a do-nothing reverse proxy adds %s)\n", v(hp, "added-p50-µs"), ok(v(hp, "added-p50-µs") + 0 <= 100), v(hx, "added-p50-µs")
	printf "    hub-added p99 <= 1000 µs:         %-8s %s (the proxy: %s)\n", v(hp, "added-p99-µs"), ok(v(hp, "added-p99-µs") + 0 <= 1000), v(hx, "added-p99-µs")
	printf "  the same, the binary in its own process:\n"
	printf "    hub-added p50 <= 100 µs:          %-8s %s\n", v(pb, "added-p50-µs"), ok(v(pb, "added-p50-µs") + 0 <= 100)
	printf "    hub-added p99 <= 1000 µs:         %-8s %s\n", v(pb, "added-p99-µs"), ok(v(pb, "added-p99-µs") + 0 <= 1000)
	printf "    throughput >= 0.8x at c64:        %-8s %s\n", v(tb, "ratio"), ok(v(tb, "ratio") + 0 >= 0.8)
	tn = "Throughput/up1/policy-binary-node/c64"
	printf "    the same, server-everything:      %-8s %s\n", v(tn, "ratio"), ok(v(tn, "ratio") + 0 >= 0.8)
	printf "  20 upstreams ready <= 1.2x slowest: %-8s %s\n", v(s, "ratio"), ok(v(s, "ratio") + 0 <= 1.2)
	printf "  tools/list of 5,000 <= 5 ms:        %-8s %s\n", v(l, "ms/list"), ok(v(l, "ms/list") + 0 <= 5)
	printf "  RSS <= 30 MB + 1 MB/upstream (50):  %-8s %s\n", v(r, "rss-50-MB"), ok(v(r, "rss-50-MB") + 0 <= 80 && v(r, "rss-1-MB") + 0 <= 31)
	printf "\nraw output: %s\n", FILENAME
}' "$raw"
