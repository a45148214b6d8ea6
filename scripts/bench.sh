#!/bin/sh
# bench.sh runs the sigil-hub performance suite (package ./bench) and
# prints a summary table with the targets of README "Performance", the floors
# measured in the same run (a do-nothing relay process for stdio, Go's
# httputil.ReverseProxy for Streamable HTTP) beside the hub, the machine and
# the command. It takes a few minutes on a 2-core machine. Nothing here
# passes or fails on wall time: the exit status is non-zero only when a
# benchmark cannot run (the summary is printed anyway).
#
# Usage: scripts/bench.sh [-p]
#   -p   also write CPU and allocation profiles of the latency and throughput
#        runs to $OUT (inspect with: go tool pprof -top $OUT/bench.test $OUT/cpu.out)
# Environment: OUT (default: a new temporary folder) keeps the raw output.
# COUNT (default 1) runs the latency and throughput groups that many times;
# the summary shows the median of each metric over the runs (on a shared
# machine a single throughput ratio can be off by ±30%).
set -eu

cmdline="COUNT=${COUNT:-1} scripts/bench.sh $*"
cd "$(dirname "$0")/.."
profile=0
if [ "${1:-}" = "-p" ]; then profile=1; fi
OUT=${OUT:-$(mktemp -d "${TMPDIR:-/tmp}/sigil-hub-bench.XXXXXX")}
mkdir -p "$OUT"
raw="$OUT/bench.txt"
: >"$raw"

echo "building the benchmark binary..." >&2
go test -c -o "$OUT/bench.test" ./bench/

# run PATTERN BENCHTIME [extra flags...]: one benchmark group, appended to
# $raw. A group that fails is reported and the others still run.
failed=0
run() {
	pat=$1 n=$2
	shift 2
	echo "running $pat ($n)..." >&2
	(
		cd bench
		st=0
		"$OUT/bench.test" -test.run '^$' -test.bench "$pat" -test.benchtime "$n" "$@" || st=$?
		echo "$st" >"$OUT/status"
	) | tee -a "$raw" | grep -E '^(Benchmark|--- FAIL|[[:space:]]+[^[:space:]]+_test\.go:[0-9]+:)' >&2 || true
	st=$(cat "$OUT/status")
	if [ "$st" != 0 ]; then
		echo "bench: $pat failed (exit status $st); see $raw" >&2
		failed=1
	fi
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
ncpu=$(nproc 2>/dev/null || getconf _NPROCESSORS_ONLN 2>/dev/null || echo '?')
model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo 2>/dev/null | head -n 1)
machine="$ncpu cores, ${model:-CPU model unknown}, $(go version | sed 's/^go version //')"
awk -v machine="$machine" -v cmdline="$cmdline" '
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
function has(name, unit) { return (name, unit) in all }
# verdict: "met"/"NOT met" for a <= b (le) or a >= b, or "not measured".
function verdict(measured, le, a, b) { return !measured ? "not measured" : ok(le ? a + 0 <= b + 0 : a + 0 >= b + 0) }
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
	printf "\nstart-up: 20 upstreams %s ms, slowest alone %s ms (direct %s ms), ratio %s; the same 20 started directly at once %s ms\n", v(s, "all-20-ms"), v(s, "slowest-alone-ms"), v(s, "slowest-direct-ms"), v(s, "ratio"), v(s, "all-20-direct-ms")
	printf "tools/list of 5,000 tools: %s ms (%s pages, %s KB, %s allocs)\n", v(l, "ms/list"), v(l, "pages"), v(l, "KB/list"), v(l, "allocs/op")
	printf "binary RSS: 1 upstream %s MB, 10: %s MB, 50: %s MB (%s MB/upstream), 50x100 tools: %s MB\n", v(r, "rss-1-MB"), v(r, "rss-10-MB"), v(r, "rss-50-MB"), v(r, "per-upstream-MB"), v(r, "rss-50x100tools-MB")
	p = "Latency/policy"; t = "Throughput/up1/policy/c64"
	pb = "Latency/policy-binary"; tb = "Throughput/up1/policy-binary/c64"
	printf "\ntargets\n"
	printf "  hub-added p50 <= 100 µs (policy):   %-8s %s\n", v(p, "added-p50-µs"), verdict(has(p, "added-p50-µs"), 1, v(p, "added-p50-µs"), 100)
	printf "  hub-added p99 <= 1000 µs (policy):  %-8s %s\n", v(p, "added-p99-µs"), verdict(has(p, "added-p99-µs"), 1, v(p, "added-p99-µs"), 1000)
	printf "  throughput >= 0.8x direct at c64:   %-8s %s\n", v(t, "ratio"), verdict(has(t, "ratio"), 0, v(t, "ratio"), 0.8)
	hp = "Latency/http-policy"; hx = "Latency/http-proxy"
	printf "  the same over Streamable HTTP (client and upstream both HTTP):\n"
	printf "    hub-added p50 <= 100 µs:          %-8s %s (a do-nothing reverse proxy adds %s)\n", v(hp, "added-p50-µs"), verdict(has(hp, "added-p50-µs"), 1, v(hp, "added-p50-µs"), 100), v(hx, "added-p50-µs")
	printf "    hub-added p99 <= 1000 µs:         %-8s %s (the proxy: %s)\n", v(hp, "added-p99-µs"), verdict(has(hp, "added-p99-µs"), 1, v(hp, "added-p99-µs"), 1000), v(hx, "added-p99-µs")
	printf "  the same, the binary in its own process:\n"
	printf "    hub-added p50 <= 100 µs:          %-8s %s\n", v(pb, "added-p50-µs"), verdict(has(pb, "added-p50-µs"), 1, v(pb, "added-p50-µs"), 100)
	printf "    hub-added p99 <= 1000 µs:         %-8s %s\n", v(pb, "added-p99-µs"), verdict(has(pb, "added-p99-µs"), 1, v(pb, "added-p99-µs"), 1000)
	printf "    throughput >= 0.8x at c64:        %-8s %s\n", v(tb, "ratio"), verdict(has(tb, "ratio"), 0, v(tb, "ratio"), 0.8)
	tn = "Throughput/up1/policy-binary-node/c64"
	printf "    the same, server-everything:      %-8s %s\n", v(tn, "ratio"), verdict(has(tn, "ratio"), 0, v(tn, "ratio"), 0.8)
	printf "  tools/list of 5,000 <= 5 ms:        %-8s %s\n", v(l, "ms/list"), verdict(has(l, "ms/list"), 1, v(l, "ms/list"), 5)
	printf "  RSS <= 30 MB + 1 MB/upstream (50):  %-8s %s\n", v(r, "rss-50-MB"), !has(r, "rss-50-MB") ? "not measured" : ok(v(r, "rss-50-MB") + 0 <= 80 && v(r, "rss-1-MB") + 0 <= 31)
	# The targets against the floors measured in this run.
	rl = "Latency/relay"; hx = "Latency/http-proxy"
	tr = "Throughput/up1/relay/c64"
	printf "\ntargets against the floors measured in this run\n"
	m = has(pb, "added-p50-µs") && has(rl, "added-p50-µs")
	d = v(pb, "added-p50-µs") - v(rl, "added-p50-µs")
	printf "  stdio, added p50: the binary (embedded policy) %s µs, the do-nothing relay %s µs\n", v(pb, "added-p50-µs"), v(rl, "added-p50-µs")
	printf "    binary - relay <= 50 µs:          %-8s %s\n", m ? sprintf("%.1f", d) : "-", verdict(m, 1, d, 50)
	printf "  stdio, added p99: the binary %s µs, the relay %s µs (no target)\n", v(pb, "added-p99-µs"), v(rl, "added-p99-µs")
	printf "  start-up: 20 upstreams through the hub %s ms, the same 20 started directly at once %s ms\n", v(s, "all-20-ms"), v(s, "all-20-direct-ms")
	printf "    hub / direct <= 1.2:              %-8s %s (against the slowest alone: %s)\n", v(s, "ratio-vs-20-direct"), verdict(has(s, "ratio-vs-20-direct"), 1, v(s, "ratio-vs-20-direct"), 1.2), v(s, "ratio")
	m = has(tb, "hub-calls/s") && has(tr, "hub-calls/s") && v(tr, "hub-calls/s") + 0 > 0
	q = m ? v(tb, "hub-calls/s") / v(tr, "hub-calls/s") : 0
	printf "  stdio, throughput at c64: the binary %s calls/s, the relay %s calls/s\n", v(tb, "hub-calls/s"), v(tr, "hub-calls/s")
	printf "    binary / relay >= 0.9:            %-8s %s", m ? sprintf("%.2f", q) : "-", verdict(m, 0, q, 0.9)
	if (m && v(tr, "ratio") + 0 > 0)
		printf " (each against direct in its own run: %.2f)", v(tb, "ratio") / v(tr, "ratio")
	printf "\n"
	tn = "Throughput/up1/policy-binary-node/c64"; trn = "Throughput/up1/relay-node/c64"
	if (has(tn, "hub-calls/s") && has(trn, "hub-calls/s") && v(trn, "hub-calls/s") + 0 > 0)
		printf "    the same, server-everything:      %-8.2f %s\n", v(tn, "hub-calls/s") / v(trn, "hub-calls/s"), ok(v(tn, "hub-calls/s") / v(trn, "hub-calls/s") >= 0.9)
	m = has(hp, "added-p50-µs") && has(hx, "added-p50-µs")
	d = v(hp, "added-p50-µs") - v(hx, "added-p50-µs")
	printf "  Streamable HTTP, added p50: the hub %s µs, httputil.ReverseProxy %s µs\n", v(hp, "added-p50-µs"), v(hx, "added-p50-µs")
	printf "    hub - proxy <= 30 µs:             %-8s %s\n", m ? sprintf("%.1f", d) : "-", verdict(m, 1, d, 30)
	printf "\nmachine: %s\ncommand: %s\n", machine, cmdline
	printf "figures on a shared machine are noisy: compare within one run, and use COUNT=3 or more\n"
	printf "\nraw output: %s\n", FILENAME
}' "$raw"
exit "$failed"
