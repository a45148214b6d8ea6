package bench

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sigilcore/sigil-hub/internal/procstat"
	"golang.org/x/sync/errgroup"
)

// warmup is how many calls each side makes before measuring.
const warmup = 200

// hubTool is the exposed name of the echo tool of upstream i.
func hubTool(i int) string { return "up" + strconv.Itoa(i) + "__echo" }

// BenchmarkLatency measures one tools/call at a time through the hub and
// directly, interleaved call by call, against the same fake upstream.
// Metrics (µs): direct-p50/p99, hub-p50/p99, added-p50/p99 (hub percentile
// minus direct percentile) and ratio (mean hub / mean direct). ns/op is one
// direct plus one hub call.
//
// Cases: policy (embedded engine, in process), sign (Sign double on
// loopback, in process), policy-binary (the real binary over OS pipes, with
// its default info logging to stderr): all over stdio. relay puts the
// do-nothing relay (relayMain: a process that only copies bytes both ways)
// where policy-binary puts the binary: what one more process on the stdio
// path costs when it does nothing at all, the floor under policy-binary's
// figure (README "Performance": its added p50 ≤ the relay's + 50 µs). http-policy and
// http-sign are the same over Streamable HTTP end to end: the client posts to
// the hub's HTTP front (in process, loopback) and the hub to the upstream, a
// fake serving Streamable HTTP in a process of its own, which the direct
// side's client posts to itself. http-proxy puts Go's httputil.ReverseProxy
// there instead of the hub: what one more HTTP hop costs when it does
// nothing at all, the floor under the hub's figure.
func BenchmarkLatency(b *testing.B) {
	direct := startDirect(b)
	b.Run("policy", func(b *testing.B) {
		measureLatency(b, direct, readyHub(b, hubSetup{mode: authPolicy, upstreams: upstreamNames(1, 0, 0)}), hubTool(0))
	})
	b.Run("sign", func(b *testing.B) {
		sd := startSign(b)
		measureLatency(b, direct, readyHub(b, hubSetup{mode: authSign, signURL: sd.URL, upstreams: upstreamNames(1, 0, 0)}), hubTool(0))
	})
	// The floor for any stdio hop, right before the binary it is the floor
	// of, so that both see the machine in about the same state.
	b.Run("relay", func(b *testing.B) {
		measureLatency(b, direct, startFakeRelay(b).conn, "echo")
	})
	b.Run("policy-binary", func(b *testing.B) {
		bin := buildHub(b, b.TempDir())
		conn := startBinary(b, bin, hubSetup{mode: authPolicy, upstreams: upstreamNames(1, 0, 0)}).conn
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		if _, err := conn.listTools(ctx); err != nil {
			b.Fatal(err)
		}
		measureLatency(b, direct, conn, hubTool(0))
	})
	httpDirect, url := directHTTP(b)
	httpUp := []upstreamSpec{{name: "up0", url: url}}
	b.Run("http-policy", func(b *testing.B) {
		measureLatency(b, httpDirect, readyHTTPHub(b, hubSetup{mode: authPolicy, upstreams: httpUp}), hubTool(0))
	})
	b.Run("http-sign", func(b *testing.B) {
		sd := startSign(b)
		measureLatency(b, httpDirect, readyHTTPHub(b, hubSetup{mode: authSign, signURL: sd.URL, upstreams: httpUp}), hubTool(0))
	})
	// The floor for any HTTP hop: a reverse proxy that only copies bytes.
	b.Run("http-proxy", func(b *testing.B) {
		measureLatency(b, httpDirect, proxiedHTTP(b, url), "echo")
	})
}

// caller is a client connection whose tool calls the benchmarks time:
// rpcConn (stdio) or httpConn (Streamable HTTP).
type caller interface {
	callTool(ctx context.Context, name, args string) error
}

// measureLatency times direct calls to "echo" and via calls to viaTool.
func measureLatency(b *testing.B, direct, via caller, viaTool string) {
	ctx := context.Background()
	name := viaTool
	for range warmup {
		if err := direct.callTool(ctx, "echo", echoArgs); err != nil {
			b.Fatal(err)
		}
		if err := via.callTool(ctx, name, echoArgs); err != nil {
			b.Fatal(err)
		}
	}
	dd := make([]time.Duration, 0, b.N)
	hd := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		// Alternate which side goes first so neither always runs on a
		// cache or scheduler state the other left behind.
		for k := range 2 {
			if (i+k)%2 == 0 {
				t := time.Now()
				if err := direct.callTool(ctx, "echo", echoArgs); err != nil {
					b.Fatal(err)
				}
				dd = append(dd, time.Since(t))
			} else {
				t := time.Now()
				if err := via.callTool(ctx, name, echoArgs); err != nil {
					b.Fatal(err)
				}
				hd = append(hd, time.Since(t))
			}
		}
	}
	b.StopTimer()
	reportLatency(b, dd, hd)
}

func reportLatency(b *testing.B, dd, hd []time.Duration) {
	md, mh := mean(dd), mean(hd)
	sortDurations(dd)
	sortDurations(hd)
	b.ReportMetric(us(percentile(dd, 50)), "direct-p50-µs")
	b.ReportMetric(us(percentile(dd, 99)), "direct-p99-µs")
	b.ReportMetric(us(percentile(hd, 50)), "hub-p50-µs")
	b.ReportMetric(us(percentile(hd, 99)), "hub-p99-µs")
	b.ReportMetric(us(percentile(hd, 50)-percentile(dd, 50)), "added-p50-µs")
	b.ReportMetric(us(percentile(hd, 99)-percentile(dd, 99)), "added-p99-µs")
	if md > 0 {
		b.ReportMetric(float64(mh)/float64(md), "ratio")
	}
}

// BenchmarkAuthz runs calls through the hub only, to isolate what the
// authorization step costs: allocs/op and B/op (b.ReportAllocs, the whole
// process: client plus hub), hub-allocs/call and hub-B/call (the same minus
// what the client alone allocates on a direct call), and for Sign
// new-conns/call: TCP connections the double accepted per call after
// warm-up (target 0: keep-alive reuse). sign-c64 runs 64 concurrent
// callers, more than the Sign client's idle pool.
func BenchmarkAuthz(b *testing.B) {
	direct := startDirect(b)
	clientAllocs, clientBytes := allocsPerCall(b, func() error { return direct.callTool(context.Background(), "echo", echoArgs) }, 500)
	b.Run("policy", func(b *testing.B) {
		conn := readyHub(b, hubSetup{mode: authPolicy, upstreams: upstreamNames(1, 0, 0)})
		measureAuthz(b, conn, nil, 1, clientAllocs, clientBytes)
	})
	b.Run("sign", func(b *testing.B) {
		sd := startSign(b)
		conn := readyHub(b, hubSetup{mode: authSign, signURL: sd.URL, upstreams: upstreamNames(1, 0, 0)})
		measureAuthz(b, conn, sd, 1, clientAllocs, clientBytes)
	})
	b.Run("sign-c64", func(b *testing.B) {
		sd := startSign(b)
		conn := readyHub(b, hubSetup{mode: authSign, signURL: sd.URL, upstreams: upstreamNames(1, 0, 0)})
		measureAuthz(b, conn, sd, 64, clientAllocs, clientBytes)
	})
}

// allocsPerCall returns the mallocs and bytes per call of f over n calls.
func allocsPerCall(b *testing.B, f func() error, n int) (float64, float64) {
	for range 50 {
		if err := f(); err != nil {
			b.Fatal(err)
		}
	}
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	for range n {
		if err := f(); err != nil {
			b.Fatal(err)
		}
	}
	runtime.ReadMemStats(&m1)
	return float64(m1.Mallocs-m0.Mallocs) / float64(n), float64(m1.TotalAlloc-m0.TotalAlloc) / float64(n)
}

func measureAuthz(b *testing.B, conn *rpcConn, sd *signDouble, workers int, clientAllocs, clientBytes float64) {
	ctx := context.Background()
	name := hubTool(0)
	call := func() error { return conn.callTool(ctx, name, echoArgs) }
	// Warm up with the same concurrency so the connection pool is filled.
	if err := parallel(workers, warmup+10*workers, func(int) error { return call() }); err != nil {
		b.Fatal(err)
	}
	var conns0 int64
	if sd != nil {
		conns0 = sd.ln.accepted.Load()
	}
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	b.ReportAllocs()
	b.ResetTimer()
	if err := parallel(workers, b.N, func(int) error { return call() }); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	runtime.ReadMemStats(&m1)
	n := float64(b.N)
	b.ReportMetric(float64(m1.Mallocs-m0.Mallocs)/n-clientAllocs, "hub-allocs/call")
	b.ReportMetric(float64(m1.TotalAlloc-m0.TotalAlloc)/n-clientBytes, "hub-B/call")
	if sd != nil {
		b.ReportMetric(float64(sd.ln.accepted.Load()-conns0)/n, "new-conns/call")
		b.ReportMetric(float64(sd.ln.accepted.Load()), "sign-conns-total")
	}
}

// parallel runs n calls of f on workers goroutines and returns the first
// error.
func parallel(workers, n int, f func(i int) error) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(n) {
					return
				}
				if err := f(int(i)); err != nil {
					once.Do(func() { first = err })
					return
				}
			}
		}()
	}
	wg.Wait()
	return first
}

// BenchmarkThroughput measures calls/s with c concurrent callers, through
// the hub and directly, for one upstream and for 8 (calls spread round
// robin). Each iteration is one direct call and one hub call (b.N of each,
// run as two phases). Metrics: direct-calls/s, hub-calls/s, ratio (hub /
// direct; the target is ≥ 0.8 at c = 64).
//
// The binary modes (the real hub in a process of its own, as users run it)
// also report where the CPU goes, per call, read from /proc: the client
// (this process) and the upstream in each phase, and the hub. policy-binary
// fronts the fake upstream (mcp-go's stdio server); policy-binary-node fronts
// the reference server @modelcontextprotocol/server-everything under Node
// (skipped when it is not installed), the same server as the direct side.
// relay and relay-node measure the do-nothing relay (relayMain) in the
// binary's place, the floor of a process in between (README "Performance":
// the binary's calls/s at c64 ≥ 0.9× the relay's); in their rows "hub" is
// the relay.
func BenchmarkThroughput(b *testing.B) {
	for _, ups := range []int{1, 8} {
		b.Run(fmt.Sprintf("up%d", ups), func(b *testing.B) {
			directs := make([]*rpcConn, ups)
			var directPid int
			for i := range directs {
				ch := startDirectChild(b)
				directs[i], directPid = ch.conn, ch.cmd.Process.Pid
			}
			fake := target{directs: directs, args: echoArgs}
			for _, mode := range []authMode{authPolicy, authSign} {
				b.Run(string(mode), func(b *testing.B) {
					s := hubSetup{mode: mode, upstreams: upstreamNames(ups, 0, 0)}
					if mode == authSign {
						s.signURL = startSign(b).URL
					}
					conn := readyHub(b, s)
					for _, c := range []int{1, 16, 64} {
						b.Run(fmt.Sprintf("c%d", c), func(b *testing.B) {
							measureThroughput(b, fake, conn, hubNames(ups), c, nil)
						})
					}
				})
			}
			if ups != 1 {
				return
			}
			fake.upstreamPid = directPid
			// Each floor right before the binary it is the floor of.
			b.Run("relay", func(b *testing.B) {
				processThroughput(b, fake, startFakeRelay(b), []string{"echo"})
			})
			b.Run("policy-binary", func(b *testing.B) {
				binaryThroughput(b, fake, upstreamNames(1, 0, 0))
			})
			entry := nodeEverything()
			var node target
			if entry != "" {
				ch := startChild(b, exec.Command("node", entry))
				node = target{directs: []*rpcConn{ch.conn}, upstreamPid: ch.cmd.Process.Pid, args: nodeEchoArgs}
			}
			b.Run("relay-node", func(b *testing.B) {
				if entry == "" {
					b.Skip("server-everything or node is not installed: run `cd testdata/npm && npm ci`")
				}
				processThroughput(b, node, startRelay(b, []string{"node", entry}), []string{"echo"})
			})
			b.Run("policy-binary-node", func(b *testing.B) {
				if entry == "" {
					b.Skip("server-everything or node is not installed: run `cd testdata/npm && npm ci`")
				}
				binaryThroughput(b, node, []upstreamSpec{{name: "up0", argv: []string{"node", entry}}})
			})
		})
	}
}

// target is what a throughput run calls: its upstream's echo tool, directly
// over directs and through the hub as upN__echo, with args.
type target struct {
	directs     []*rpcConn
	upstreamPid int // the direct upstream's process (binary modes), else 0
	args        string
}

// hubNames are the exposed names of the echo tools of n upstreams.
func hubNames(n int) []string {
	names := make([]string, n)
	for i := range names {
		names[i] = hubTool(i)
	}
	return names
}

// binaryThroughput runs the real binary in front of ups and measures it
// against t at concurrency 1, 16 and 64, with CPU read from /proc.
func binaryThroughput(b *testing.B, t target, ups []upstreamSpec) {
	ch := startBinary(b, buildHub(b, b.TempDir()), hubSetup{mode: authPolicy, upstreams: ups})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := ch.conn.listTools(ctx); err != nil {
		b.Fatal(err)
	}
	processThroughput(b, t, ch, hubNames(len(ups)))
}

// processThroughput measures the process ch (the binary, or the relay),
// which runs t's upstream as its one child, calling names, against t at
// concurrency 1, 16 and 64, with CPU read from /proc.
func processThroughput(b *testing.B, t target, ch *child, names []string) {
	pid := ch.cmd.Process.Pid
	kids := procstat.Children(pid)
	if len(kids) != 1 {
		b.Fatalf("process %d in between has children %v, want its one upstream", pid, kids)
	}
	procs := &binaryProcs{hub: pid, directUpstream: t.upstreamPid, hubUpstream: kids[0]}
	for _, c := range []int{1, 16, 64} {
		b.Run(fmt.Sprintf("c%d", c), func(b *testing.B) {
			measureThroughput(b, t, ch.conn, names, c, procs)
		})
	}
}

// binaryProcs are the processes whose CPU a binary-mode run reads: the
// process in between (the hub or the relay) and the upstreams.
type binaryProcs struct {
	hub, directUpstream, hubUpstream int
}

// measureThroughput runs the same calls directly (to "echo") and through
// conn, to names[i % len(names)] for upstream i. procs, when set, names the
// processes of a hub (or relay) running in its own process; without it the
// hub runs in this one.
func measureThroughput(b *testing.B, t target, conn *rpcConn, names []string, workers int, procs *binaryProcs) {
	ctx := context.Background()
	ups := len(t.directs)
	directCall := func(i int) error { return t.directs[i%ups].callTool(ctx, "echo", t.args) }
	// The names are built once, as the direct side's "echo" is: the client
	// must cost the same on both sides.
	hubCall := func(i int) error { return conn.callTool(ctx, names[i%ups], t.args) }
	for _, f := range []func(int) error{directCall, hubCall} {
		if err := parallel(workers, warmup, f); err != nil {
			b.Fatal(err)
		}
	}
	// cpu reads the CPU time used so far by this process and, in binary
	// mode, by the hub and both upstreams.
	type cpu struct{ client, hub, directUp, hubUp time.Duration }
	read := func() cpu {
		c := cpu{client: cpuTime()}
		if procs != nil {
			c.hub, c.directUp, c.hubUp = procstat.CPU(procs.hub), procstat.CPU(procs.directUpstream), procstat.CPU(procs.hubUpstream)
		}
		return c
	}
	b.ResetTimer()
	c0, t0 := read(), time.Now()
	if err := parallel(workers, b.N, directCall); err != nil {
		b.Fatal(err)
	}
	c1, dt := read(), time.Since(t0)
	t0 = time.Now()
	if err := parallel(workers, b.N, hubCall); err != nil {
		b.Fatal(err)
	}
	c2, ht := read(), time.Since(t0)
	b.StopTimer()
	dr := float64(b.N) / dt.Seconds()
	hr := float64(b.N) / ht.Seconds()
	b.ReportMetric(dr, "direct-calls/s")
	b.ReportMetric(hr, "hub-calls/s")
	b.ReportMetric(hr/dr, "ratio")
	perCall := func(d time.Duration) float64 { return us(d) / float64(b.N) }
	if procs == nil {
		// In process, this process is the client in both phases, plus the
		// hub in the second: the difference is the hub's own CPU per call.
		if hc := (c2.client - c1.client) - (c1.client - c0.client); hc > 0 {
			b.ReportMetric(perCall(hc), "hub-cpu-µs/call")
		}
		return
	}
	b.ReportMetric(perCall(c2.hub-c1.hub), "hub-cpu-µs/call")
	b.ReportMetric(perCall(c1.client-c0.client), "client-direct-µs/call")
	b.ReportMetric(perCall(c2.client-c1.client), "client-hub-µs/call")
	b.ReportMetric(perCall(c1.directUp-c0.directUp), "upstream-direct-µs/call")
	b.ReportMetric(perCall(c2.hubUp-c1.hubUp), "upstream-hub-µs/call")
}

// startupDelays gives upstream i of n a start delay of base + i×step, so the
// last one is the slowest.
const (
	startupBase = 100 * time.Millisecond
	startupStep = 10 * time.Millisecond
	startupN    = 20
)

// BenchmarkStartup measures the time from hub.New until the first
// tools/list answers with every upstream's tools, for 20 stdio upstreams
// that each sleep before exec'ing the fake (100 ms + 10 ms × i, the slowest
// 290 ms), against the same hub with only the slowest upstream, against
// spawning, initializing and listing the slowest one directly, and against
// doing that for all 20 at once with no hub: the floor of what starting 20
// processes costs on this machine (on 2 cores, 20 Go processes starting
// together take about 1.7× one alone). Metrics (ms): all-20,
// slowest-alone (through the hub), slowest-direct, all-20-direct; ratio =
// all-20 / slowest-alone, ratio-vs-direct, and ratio-vs-20-direct = all-20 /
// all-20-direct (target ≤ 1.2: README "Performance").
func BenchmarkStartup(b *testing.B) {
	all := make([]upstreamSpec, startupN)
	for i := range all {
		all[i] = upstreamSpec{name: "up" + strconv.Itoa(i), delay: startupBase + time.Duration(i)*startupStep}
	}
	slowest := all[len(all)-1:]
	delays := make([]time.Duration, len(all))
	for i, u := range all {
		delays[i] = u.delay
	}
	var tAll, tOne, tDirect, tAllDirect time.Duration
	for range b.N {
		tAll += hubStartup(b, hubSetup{mode: authPolicy, upstreams: all}, startupN)
		tOne += hubStartup(b, hubSetup{mode: authPolicy, upstreams: slowest}, 1)
		tDirect += directStartup(b, slowest[0].delay)
		tAllDirect += directStartup(b, delays...)
	}
	n := time.Duration(b.N)
	ms := func(d time.Duration) float64 { return float64(d/n) / float64(time.Millisecond) }
	b.ReportMetric(ms(tAll), "all-20-ms")
	b.ReportMetric(ms(tOne), "slowest-alone-ms")
	b.ReportMetric(ms(tDirect), "slowest-direct-ms")
	b.ReportMetric(ms(tAllDirect), "all-20-direct-ms")
	b.ReportMetric(float64(tAll)/float64(tOne), "ratio")
	b.ReportMetric(float64(tAll)/float64(tDirect), "ratio-vs-direct")
	b.ReportMetric(float64(tAll)/float64(tAllDirect), "ratio-vs-20-direct")
}

// hubStartup starts an in-process hub and returns the time until tools/list
// shows the echo tool of all n upstreams; it stops the hub before returning.
func hubStartup(b *testing.B, s hubSetup, n int) time.Duration {
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	t := time.Now()
	ih := startHub(b, s)
	defer ih.stop()
	if err := ih.conn.initialize(ctx); err != nil {
		b.Fatal(err)
	}
	names, err := ih.conn.toolNames(ctx)
	if err != nil {
		b.Fatal(err)
	}
	d := time.Since(t)
	echo := 0
	for _, name := range names {
		if bytes.HasSuffix([]byte(name), []byte("__echo")) {
			echo++
		}
	}
	if echo != n {
		b.Fatalf("first tools/list shows %d upstreams, want %d", echo, n)
	}
	return d
}

// directStartup spawns the fake upstream once per delay, each behind its
// sleep, all at once, and returns the time until every one has answered
// tools/list.
func directStartup(b *testing.B, delays ...time.Duration) time.Duration {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	t := time.Now()
	var g errgroup.Group
	for _, delay := range delays {
		cmd := exec.Command("sh", "-c", fmt.Sprintf("sleep %.3f; exec %s", delay.Seconds(), shQuote(selfExe(b))))
		cmd.Env = cleanEnv("SIGIL_HUB_TEST_UPSTREAM=1")
		c := spawnChild(b, cmd)
		defer c.stop()
		g.Go(func() error {
			if err := c.conn.initialize(ctx); err != nil {
				return err
			}
			_, err := c.conn.listTools(ctx)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		b.Fatal(err)
	}
	return time.Since(t)
}

// listUpstreams × listTools is the tools/list case of README "Performance".
const (
	listUpstreams = 50
	listTools     = 100
)

// BenchmarkToolsList measures one complete merged tools/list (every page,
// the hub pages at 1,000) over 50 upstreams × 100 tools = 5,000 tools, in
// process. ns/op is one full list; metrics: ms/list, pages, KB/list.
func BenchmarkToolsList(b *testing.B) {
	conn := readyHub(b, hubSetup{mode: authPolicy, upstreams: upstreamNames(listUpstreams, 0, listTools)})
	ctx := context.Background()
	n, err := conn.listTools(ctx)
	if err != nil {
		b.Fatal(err)
	}
	if n != listUpstreams*listTools {
		b.Fatalf("tools/list: %d tools, want %d", n, listUpstreams*listTools)
	}
	var pages, size int
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		pages, size = 0, 0
		cursor := ""
		for {
			params := `{}`
			if cursor != "" {
				params = `{"cursor":` + strconv.Quote(cursor) + `}`
			}
			line, err := conn.call(ctx, "tools/list", params)
			if err != nil {
				b.Fatal(err)
			}
			pages++
			size += len(line)
			cursor = nextCursor(line)
			if cursor == "" {
				break
			}
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed())/float64(b.N)/float64(time.Millisecond), "ms/list")
	b.ReportMetric(float64(pages), "pages")
	b.ReportMetric(float64(size)/1024, "KB/list")
}

// nextCursor finds the nextCursor of a tools/list response without decoding
// the page (the hub writes it after the tools array).
func nextCursor(line []byte) string {
	const key = `"nextCursor":`
	i := bytes.LastIndex(line, []byte(key))
	if i < 0 {
		return ""
	}
	rest := line[i+len(key):]
	end := bytes.IndexByte(rest[1:], '"')
	if len(rest) == 0 || rest[0] != '"' || end < 0 {
		return ""
	}
	s, err := strconv.Unquote(string(rest[:end+2]))
	if err != nil {
		return ""
	}
	return s
}

// BenchmarkRSS starts the real binary (embedded policy) with 1, 10 and 50
// upstreams, lists the tools, and reads VmRSS from /proc/<pid>/status.
// Metrics (MB): rss-1, rss-10, rss-50, per-upstream ((rss-50 − rss-1) / 49),
// and rss-50x100tools (50 upstreams with 100 extra tools each). Target:
// ≤ 30 MB + 1 MB per upstream. Linux only (0 elsewhere).
func BenchmarkRSS(b *testing.B) {
	bin := buildHub(b, b.TempDir())
	rss := func(s hubSetup) float64 {
		var total int64
		for range b.N {
			func() {
				c := startBinary(b, bin, s)
				defer c.stop()
				ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
				defer cancel()
				if _, err := c.conn.listTools(ctx); err != nil {
					b.Fatal(err)
				}
				// A few calls, as a live session would make (the echo
				// tool is filtered out when extra tools are exposed).
				for i := range 20 {
					if s.upstreams[0].tools == 0 {
						if err := c.conn.callTool(ctx, hubTool(i%len(s.upstreams)), echoArgs); err != nil {
							b.Fatal(err)
						}
					}
				}
				total += vmRSS(strconv.Itoa(c.cmd.Process.Pid))
			}()
		}
		return float64(total) / float64(b.N) / (1 << 20)
	}
	r1 := rss(hubSetup{mode: authPolicy, upstreams: upstreamNames(1, 0, 0)})
	r10 := rss(hubSetup{mode: authPolicy, upstreams: upstreamNames(10, 0, 0)})
	r50 := rss(hubSetup{mode: authPolicy, upstreams: upstreamNames(50, 0, 0)})
	r50t := rss(hubSetup{mode: authPolicy, upstreams: upstreamNames(50, 0, listTools)})
	b.ReportMetric(r1, "rss-1-MB")
	b.ReportMetric(r10, "rss-10-MB")
	b.ReportMetric(r50, "rss-50-MB")
	b.ReportMetric((r50-r1)/49, "per-upstream-MB")
	b.ReportMetric(r50t, "rss-50x100tools-MB")
}
