//go:build linux

package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/sigilcore/sigil-hub/internal/signtest"
)

// The soak (goal G9 of docs/faults.md): calls at a steady rate through one
// hub to several fake upstreams, one upstream SIGKILLed every few seconds,
// ~10% of Sign's answers faulty (500, 503, a hang, a garbage body). It checks
// 0 panics, the invariants I1–I5 on every call, and that the hub's goroutines
// and fds stay flat: a least-squares slope over periodic samples.
//
// The hub runs in process (runMain over io.Pipe stdio), so that
// runtime.NumGoroutine and /proc/self/fd count its goroutines and fds; the
// fake upstreams are child processes (the re-exec trick). The test process
// also holds the Sign double and the client: both are flat by construction
// (a bounded in-flight window), so growth is the hub's.
//
// TestSoakShort (60 s of load, ~90 s in all; skipped with -short) runs in every `go test`;
// TestSoak (build tag soak) runs for SIGIL_SOAK_DURATION (a Go duration,
// default 1h) at G9's figures: `go test -tags soak -run 'TestSoak$' -timeout 0 -v ./cmd/sigil-hub/`.

// soakConfig sets the load.
type soakConfig struct {
	Duration  time.Duration // calls are sent for this long
	Rate      int           // calls per second
	KillEvery time.Duration // one upstream SIGKILLed this often
	Sample    time.Duration // goroutines/fds sampled this often
	Upstreams int
}

func TestSoakShort(t *testing.T) {
	if testing.Short() {
		t.Skip("the short soak takes ~90 s; skipped with -short")
	}
	runSoak(t, soakConfig{Duration: 60 * time.Second, Rate: 50, KillEvery: 10 * time.Second, Sample: time.Second, Upstreams: 3})
}

// soakSample is one periodic measurement.
type soakSample struct {
	at               time.Duration // since the load started
	goroutines, fds  int
	sockets          int
	rss, outstanding int
	heapLive         uint64 // bytes live after the last GC
}

// soakCall is one tools/call in flight.
type soakCall struct {
	up, tool, args string
	sent           time.Time
}

// soakClient drives the in-process hub over its stdio pipes and checks
// every line it writes as it arrives (I3, the canary), so that an hour of
// traffic is never held in memory.
type soakClient struct {
	t     *testing.T
	in    *io.PipeWriter
	queue chan string // lines for the writer goroutine: a slow hub shows as latency, not as a slower rate

	mu          sync.Mutex
	outstanding map[string]soakCall // raw id → call
	waiters     map[string]chan map[string]json.RawMessage
	seq         int
	calls       int            // tools/call sent
	outcomes    map[string]int // "ok", "blocked:<reason>", "upstream:<reason>", …
	violations  []string
	latencies   []time.Duration // ok calls
	notes       map[string]int
	lines       int
}

func (c *soakClient) violate(format string, args ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.violations) < 50 {
		c.violations = append(c.violations, fmt.Sprintf(format, args...))
	} else if len(c.violations) == 50 {
		c.violations = append(c.violations, "… more violations not shown")
	}
}

// write queues one line for the hub's stdin.
func (c *soakClient) write(line string) {
	c.queue <- line + "\n"
}

// writeLoop writes the queued lines until the queue is closed, then closes
// the hub's stdin.
func (c *soakClient) writeLoop() {
	for line := range c.queue {
		if _, err := io.WriteString(c.in, line); err != nil {
			c.violate("write to the hub: %v", err)
		}
	}
	_ = c.in.Close()
}

// request sends a request and waits for its response (not for tools/call).
func (c *soakClient) request(method, params string) map[string]json.RawMessage {
	c.t.Helper()
	c.mu.Lock()
	c.seq++
	id := strconv.Quote("r-" + strconv.Itoa(c.seq))
	ch := make(chan map[string]json.RawMessage, 1)
	c.waiters[id] = ch
	c.mu.Unlock()
	c.write(`{"jsonrpc":"2.0","id":` + id + `,"method":"` + method + `","params":` + params + `}`)
	select {
	case m := <-ch:
		return m
	case <-time.After(90 * time.Second):
		c.t.Fatalf("no answer to %s", method)
		return nil
	}
}

// call sends one tools/call without waiting. It reports false when the
// in-flight window is full (the hub stopped answering).
func (c *soakClient) call(up, tool, args string, window int) bool {
	c.mu.Lock()
	if len(c.outstanding) >= window {
		c.mu.Unlock()
		return false
	}
	if len(c.queue) == cap(c.queue) {
		c.mu.Unlock()
		return false
	}
	c.seq++
	id := strconv.Quote("s-" + strconv.Itoa(c.seq))
	c.outstanding[id] = soakCall{up: up, tool: tool, args: args, sent: time.Now()}
	c.calls++
	c.mu.Unlock()
	c.write(`{"jsonrpc":"2.0","id":` + id + `,"method":"tools/call","params":{"name":"` + up + "__" + tool + `","arguments":` + args + `}}`)
	return true
}

func (c *soakClient) inFlight() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.outstanding)
}

// read checks every line the hub writes until stdout closes.
func (c *soakClient) read(out io.Reader) {
	br := bufio.NewReaderSize(out, 1<<20)
	for {
		line, err := br.ReadBytes('\n')
		if line = bytes.TrimSpace(line); len(line) > 0 {
			c.line(line)
		}
		if err != nil {
			return
		}
	}
}

func (c *soakClient) line(line []byte) {
	c.mu.Lock()
	c.lines++
	c.mu.Unlock()
	if bytes.Contains(line, []byte(testKey)) || bytes.Contains(line, []byte("CANARY")) {
		c.violate("I4: the API key canary in stdout: %.200s", line)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(line, &m); err != nil {
		c.violate("I3: a stdout line that is not JSON: %.200q", line)
		return
	}
	id := string(m["id"])
	if m["method"] != nil {
		var method string
		_ = json.Unmarshal(m["method"], &method)
		c.mu.Lock()
		c.notes[method]++
		c.mu.Unlock()
		if id != "" {
			c.violate("a request from the hub to a client without capabilities: %.200s", line)
		}
		return
	}
	c.mu.Lock()
	if ch, ok := c.waiters[id]; ok {
		delete(c.waiters, id)
		c.mu.Unlock()
		ch <- m
		return
	}
	call, ok := c.outstanding[id]
	delete(c.outstanding, id)
	c.mu.Unlock()
	if !ok {
		c.violate("I3: a response for id %s, which is not in flight (never sent, or answered twice): %.200s", id, line)
		return
	}
	outcome, lat := c.outcome(call, m, line)
	c.mu.Lock()
	c.outcomes[outcome]++
	if outcome == "ok" {
		c.latencies = append(c.latencies, lat)
	}
	c.mu.Unlock()
}

// outcome classifies one tools/call response; anything unexpected is a
// violation.
func (c *soakClient) outcome(call soakCall, m map[string]json.RawMessage, line []byte) (string, time.Duration) {
	lat := time.Since(call.sent)
	if m["result"] != nil {
		var r struct {
			Content []struct{ Text string } `json:"content"`
			IsError bool                    `json:"isError"`
		}
		want := call.args
		if call.tool == "slow" {
			want = "slept"
		}
		if json.Unmarshal(m["result"], &r) != nil || r.IsError || len(r.Content) == 0 || r.Content[0].Text != want {
			c.violate("a result that is not this call's (misrouted or corrupted): want %s, got %.200s", want, line)
			return "bad_result", lat
		}
		return "ok", lat
	}
	e, ok := errOf(m)
	if !ok {
		c.violate("a response with neither result nor error: %.200s", line)
		return "malformed", lat
	}
	switch {
	case e.Code == -32001 && (e.Data.Reason == "invalid_decision" || e.Data.Reason == "unreachable"):
		return "blocked:" + e.Data.Reason, lat
	case e.Code == -32603 && slices.Contains([]string{"upstream_exited", "upstream_unavailable", "upstream_timeout", "upstream_protocol_error"}, e.Data.Reason):
		return "upstream:" + e.Data.Reason, lat
	case e.Code == -32602 && strings.Contains(e.Message, "unknown tool"):
		// Only in the instant a killed upstream's tools are off the list.
		return "unknown_tool", lat
	}
	c.violate("an unexpected error: %.300s", line)
	return fmt.Sprintf("error:%d:%s", e.Code, e.Data.Reason), lat
}

// soakStderr keeps the hub's log bounded: it scans every write for the
// canary and for panics and keeps only the tail.
type soakStderr struct {
	mu     sync.Mutex
	tail   []byte
	lines  int
	panics []string
	leaks  int
	warns  int
}

func (w *soakStderr) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.lines += bytes.Count(p, []byte("\n"))
	if bytes.Contains(p, []byte(testKey)) || bytes.Contains(p, []byte("CANARY")) {
		w.leaks++
	}
	if bytes.Contains(bytes.ToLower(p), []byte("panic")) && len(w.panics) < 10 {
		w.panics = append(w.panics, string(p))
	}
	if bytes.Contains(p, []byte("WRN")) {
		w.warns++
	}
	w.tail = append(w.tail, p...)
	if len(w.tail) > 64<<10 {
		w.tail = append([]byte(nil), w.tail[len(w.tail)-32<<10:]...)
	}
	return len(p), nil
}

// slope is the least-squares slope of ys over xs (units of y per unit of x).
func slope(xs, ys []float64) float64 {
	n := float64(len(xs))
	if n < 2 {
		return 0
	}
	var sx, sy, sxx, sxy float64
	for i := range xs {
		sx += xs[i]
		sy += ys[i]
		sxx += xs[i] * xs[i]
		sxy += xs[i] * ys[i]
	}
	d := n*sxx - sx*sx
	if d == 0 {
		return 0
	}
	return (n*sxy - sx*sy) / d
}

// selfFDs counts this process's open fds.
func selfFDs() int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return -1
	}
	return len(ents)
}

// heapLive reads the heap bytes live after the last GC (runtime/metrics: no
// stop-the-world).
func heapLive() uint64 {
	m := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(m)
	if m[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return m[0].Value.Uint64()
}

// fdLinks maps this process's open fds to what they point at.
func fdLinks() map[string]string {
	ents, _ := os.ReadDir("/proc/self/fd")
	m := make(map[string]string, len(ents))
	for _, e := range ents {
		l, _ := os.Readlink("/proc/self/fd/" + e.Name())
		m[e.Name()] = l
	}
	return m
}

// selfSockets counts this process's open sockets (the rest are pipes to
// the upstreams, files and the runtime's own).
func selfSockets() int {
	ents, _ := os.ReadDir("/proc/self/fd")
	n := 0
	for _, e := range ents {
		if l, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil && strings.HasPrefix(l, "socket:") {
			n++
		}
	}
	return n
}

func runSoak(t *testing.T, cfg soakConfig) {
	t0 := time.Now()
	runID := faultRunID(t)
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 61))
	var rngMu sync.Mutex
	roll := func(n int) int {
		rngMu.Lock()
		defer rngMu.Unlock()
		return rng.IntN(n)
	}
	// ~10% Sign faults: 500 (invalid), 503 (unreachable class), a hang
	// (until the hub's request timeout), a garbage body.
	var signFaults [4]atomic.Int64
	var signRequests atomic.Int64
	sign := newFaultSignOpts(t, signtest.Options{NoHistory: true, Decide: func(signtest.Request) signtest.Reply {
		signRequests.Add(1)
		if roll(100) >= 10 {
			return signtest.Approve()
		}
		k := roll(4)
		signFaults[k].Add(1)
		switch k {
		case 0:
			return signtest.Reply{Status: 500, Body: []byte(`{"status":"ERROR"}`)}
		case 1:
			return signtest.Reply{Status: 503}
		case 2:
			return signtest.Reply{Hang: true}
		default:
			return signtest.Reply{Status: 200, Body: []byte(`{"status":"APPR`)}
		}
	}})
	logs := map[string]upstreamLog{}
	var conf strings.Builder
	var names []string
	for i := range cfg.Upstreams {
		name := fmt.Sprintf("u%d", i+1)
		names = append(names, name)
		logs[name] = newUpstreamLog(t)
		conf.WriteString(faultServer(t, name, logs[name], runID))
	}
	audit := filepath.Join(t.TempDir(), "audit.jsonl")

	runtime.GC()
	baseGoroutines, baseFDs, baseLinks := runtime.NumGoroutine(), selfFDs(), fdLinks()

	stdinR, stdinW := io.Pipe()
	stdoutR, stdoutW := io.Pipe()
	stderr := &soakStderr{}
	c := &soakClient{t: t, in: stdinW, queue: make(chan string, 4096), outstanding: map[string]soakCall{},
		waiters: map[string]chan map[string]json.RawMessage{}, outcomes: map[string]int{}, notes: map[string]int{}}
	readDone, writeDone := make(chan struct{}), make(chan struct{})
	go func() { defer close(readDone); c.read(stdoutR) }()
	go func() { defer close(writeDone); c.writeLoop() }()
	var queueClosed sync.Once
	closeStdin := func() { queueClosed.Do(func() { close(c.queue) }); <-writeDone }
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	hubDone := make(chan struct{}) // closed when runMain returned, with hubErr set
	var hubErr error
	go func() {
		defer close(hubDone)
		hubErr = runMain(ctx, []string{"--config", writeConfig(t, conf.String()), "--audit", audit}, baseEnv(signEnv(sign.Server)...), stdinR, stdoutW, stderr)
		stdoutW.Close()
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-hubDone:
		case <-time.After(30 * time.Second):
		}
		_ = stdinR.Close() // unblocks the writer if the hub stopped reading
		closeStdin()
		if t.Failed() {
			stderr.mu.Lock()
			t.Logf("hub stderr (tail):\n%s", tail(string(stderr.tail), 8<<10))
			stderr.mu.Unlock()
		}
	})

	if m := c.request("initialize", `{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"soak","version":"1"}}`); m["result"] == nil {
		t.Fatalf("initialize: %s", m["error"])
	}
	c.write(`{"jsonrpc":"2.0","method":"notifications/initialized"}`)
	eventually(t, "every upstream's tools", func() bool {
		m := c.request("tools/list", `{}`)
		for _, n := range names {
			if !bytes.Contains(m["result"], []byte(`"`+n+`__echo"`)) {
				return false
			}
		}
		return true
	})

	// The load, the killer and the sampler.
	start := time.Now()
	setup := start.Sub(t0)
	var samples []soakSample
	var kills, stalls atomic.Int64
	var wg sync.WaitGroup
	stop := make(chan struct{})
	var stopOnce sync.Once
	halt := func() { stopOnce.Do(func() { close(stop) }); wg.Wait() }
	t.Cleanup(halt) // a Fatal on the way must not leave the killer running
	wg.Add(2)
	go func() {
		defer wg.Done()
		tk := time.NewTicker(cfg.KillEvery)
		defer tk.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tk.C:
			}
			if pids := marked(runID); len(pids) > 0 {
				if syscall.Kill(pids[roll(len(pids))], syscall.SIGKILL) == nil {
					kills.Add(1)
				}
			}
		}
	}()
	go func() {
		defer wg.Done()
		tk := time.NewTicker(cfg.Sample)
		defer tk.Stop()
		for {
			samples = append(samples, soakSample{at: time.Since(start), goroutines: runtime.NumGoroutine(), fds: selfFDs(),
				sockets: selfSockets(), rss: procStatus(os.Getpid(), "VmRSS"), outstanding: c.inFlight(), heapLive: heapLive()})
			select {
			case <-stop:
				return
			case <-tk.C:
			}
		}
	}()
	tk := time.NewTicker(time.Second / time.Duration(cfg.Rate))
	sent := 0
	for time.Since(start) < cfg.Duration {
		<-tk.C
		up := names[sent%len(names)]
		tool, args := "echo", fmt.Sprintf(`{"soak":%d,"up":%q}`, sent, up)
		if sent%5 == 4 { // a call in flight for a while: kills land mid-call
			tool, args = "slow", fmt.Sprintf(`{"ms":300,"soak":%d}`, sent)
		}
		sent++
		if !c.call(up, tool, args, 2000) {
			stalls.Add(1)
		}
	}
	tk.Stop()
	halt()
	elapsed := time.Since(start)

	// Drain: every call in flight answers (a hung Sign request ends at the
	// hub's request timeout).
	eventually(t, "every call answered", func() bool { return c.inFlight() == 0 })
	drained := time.Since(start) - elapsed
	// I1: the hub answers and exits 0 at EOF; I5: its goroutines, fds and
	// children are gone.
	if m := c.request("ping", `{}`); m["result"] == nil {
		t.Errorf("I1: ping answered %s", m["error"])
	}
	closeStdin()
	select {
	case <-hubDone:
		if hubErr != nil {
			t.Errorf("I1: the hub returned %v at stdin EOF", hubErr)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("I1: the hub did not return within 30 s of stdin EOF")
	}
	stopped := time.Since(start) - elapsed - drained
	<-readDone
	// Leftovers are counted without a GC first: an *os.File nobody closed
	// is closed by its finalizer at the next GC, which can be minutes away
	// in a quiet hub. What only a GC releases is reported apart.
	var leftG, leftFDs int
	settle := time.Now().Add(5 * time.Second)
	for {
		leftG, leftFDs = runtime.NumGoroutine()-baseGoroutines, selfFDs()-baseFDs
		if leftG <= 5 && leftFDs <= 0 || time.Now().After(settle) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	var finalizerFDs []string
	if leftFDs > 0 {
		before := fdLinks()
		runtime.GC()
		runtime.GC()
		time.Sleep(100 * time.Millisecond)
		after := fdLinks()
		for fd, l := range before {
			if baseLinks[fd] != l && after[fd] != l {
				finalizerFDs = append(finalizerFDs, l)
			}
		}
		sort.Strings(finalizerFDs)
		leftFDs = selfFDs() - baseFDs
	}
	if leftG > 5 {
		buf := make([]byte, 1<<20)
		t.Errorf("I5: %d goroutines more than before the hub started, after it returned:\n%s", leftG, tail(string(buf[:runtime.Stack(buf, true)]), 16<<10))
	}
	if leftFDs > 0 {
		var extra []string
		for fd, l := range fdLinks() {
			if baseLinks[fd] != l {
				extra = append(extra, fd+" → "+l)
			}
		}
		sort.Strings(extra)
		t.Errorf("I5: %d fds more than before the hub started, after it returned: %s", leftFDs, strings.Join(extra, ", "))
	}
	eventually(t, "no upstream process left", func() bool { return len(marked(runID)) == 0 })

	// I2: every tools/call an upstream received was approved for exactly
	// those bytes, and reached it at most once.
	unapproved, forwarded := checkApproved(t, sign, logs)
	for _, v := range unapproved {
		c.violate("%s", v)
	}
	// I4: one audit record per attempt, no canary anywhere.
	auditB, _ := os.ReadFile(audit)
	if n := bytes.Count(auditB, []byte("\n")); n != c.calls {
		c.violate("I4: %d audit records for %d tools/call", n, c.calls)
	}
	if bytes.Contains(auditB, []byte(testKey)) {
		c.violate("I4: the API key canary in the audit log")
	}
	stderr.mu.Lock()
	leaks, panics, logLines, warns := stderr.leaks, stderr.panics, stderr.lines, stderr.warns
	stderr.mu.Unlock()
	if leaks > 0 {
		c.violate("I4: the API key canary in %d stderr writes", leaks)
	}
	for _, p := range panics {
		c.violate("panic in the hub's log: %.300s", p)
	}
	if n := stalls.Load(); n > 0 {
		c.violate("%d calls not sent: 2000 calls in flight or 4096 lines queued, the hub stopped reading or answering", n)
	}

	// Figures.
	c.mu.Lock()
	defer c.mu.Unlock()
	sort.Slice(c.latencies, func(i, j int) bool { return c.latencies[i] < c.latencies[j] })
	var kinds []string
	for k, n := range c.outcomes {
		kinds = append(kinds, fmt.Sprintf("%s %d", k, n))
	}
	sort.Strings(kinds)
	t.Logf("G9 soak: %v at %d calls/s, %d upstreams: %d tools/call (%.1f/s), %d forwarded; %d upstream kills; Sign faults 500/503/hang/garbage %d/%d/%d/%d of %d requests",
		elapsed.Round(time.Second), cfg.Rate, cfg.Upstreams, c.calls, float64(c.calls)/elapsed.Seconds(), forwarded, kills.Load(),
		signFaults[0].Load(), signFaults[1].Load(), signFaults[2].Load(), signFaults[3].Load(), signRequests.Load())
	t.Logf("G9 outcomes: %s; ok latency p50 %s p99 %s; %d stdout lines, %d log lines (%d warnings), notifications %v; setup %v, drained in %v, hub returned %v after stdin EOF, checks done %v after the load",
		strings.Join(kinds, ", "), ms(pct(c.latencies, 50)), ms(pct(c.latencies, 99)), c.lines, logLines, warns, c.notes,
		setup.Round(time.Millisecond), drained.Round(time.Millisecond), stopped.Round(time.Millisecond), (time.Since(start) - elapsed).Round(time.Millisecond))

	// Flatness: least-squares slopes over the samples after a warm-up
	// (the first tenth, at least 5 s), shown as growth over the window.
	warm := max(cfg.Duration/10, 5*time.Second)
	var xs, gs, fs, ss, ps, rs, hs []float64
	var series []string
	every := max(len(samples)/12, 1)
	for i, smp := range samples {
		if i%every == 0 {
			series = append(series, fmt.Sprintf("%.0fs:%d/%d/%d", smp.at.Seconds(), smp.goroutines, smp.fds, smp.sockets))
		}
		if smp.at < warm {
			continue
		}
		xs = append(xs, smp.at.Seconds())
		gs = append(gs, float64(smp.goroutines))
		fs = append(fs, float64(smp.fds))
		ss = append(ss, float64(smp.sockets))
		ps = append(ps, float64(smp.fds-smp.sockets))
		rs = append(rs, float64(smp.rss)/(1<<20))
		hs = append(hs, float64(smp.heapLive)/(1<<20))
	}
	if len(xs) < 10 {
		t.Fatalf("only %d samples after the warm-up", len(xs))
	}
	window := xs[len(xs)-1] - xs[0]
	growth := func(ys []float64) float64 { return slope(xs, ys) * window }
	t.Logf("G9 samples (time:goroutines/fds/sockets): %s", strings.Join(series, " "))
	t.Logf("G9 flatness over %.0f s (%d samples after a %v warm-up), fitted growth over the window: goroutines %+.1f (%.0f..%.0f), fds %+.1f (%.0f..%.0f; sockets %+.1f, pipes and files %+.1f); test process (hub, Sign double, client records of every call): RSS %+.1f MiB, live heap %+.1f MiB (%.1f..%.1f); after the hub returned: goroutines %+d, fds %+d against the baseline before it started",
		window, len(xs), warm, growth(gs), slices.Min(gs), slices.Max(gs), growth(fs), slices.Min(fs), slices.Max(fs), growth(ss), growth(ps),
		growth(rs), growth(hs), slices.Min(hs), slices.Max(hs), leftG, leftFDs)
	// Flat: the fitted growth stays under a noise floor or 10% of the mean,
	// whichever is larger. Calls in flight, hung Sign requests (up to the
	// 10 s request timeout), restarting upstreams and the Sign client's
	// pool of idle connections (both ends of each are this process's) move
	// the counts; a leak of one goroutine or fd per call, per kill or per
	// Sign fault grows by hundreds to thousands over the run. The floors
	// leave room for a loaded CI machine (one minute fits a slope to
	// whatever the scheduler did), not for a per-call leak.
	if g := growth(gs); g > max(200, 0.1*mean(gs)) {
		t.Errorf("G9: goroutines grow: %+.1f over %.0f s", g, window)
	}
	if f := growth(ps); f > max(6, 0.1*mean(ps)) {
		t.Errorf("G9: fds other than sockets (pipes to upstreams, files) grow: %+.1f over %.0f s", f, window)
	}
	if f := growth(ss); f > max(100, 0.1*mean(ss)) {
		t.Errorf("G9: sockets grow: %+.1f over %.0f s", f, window)
	}
	if c.outcomes["ok"] == 0 || kills.Load() == 0 {
		t.Errorf("the soak exercised nothing: %d ok calls, %d kills", c.outcomes["ok"], kills.Load())
	}
	for _, v := range c.violations {
		t.Error(v)
	}
	if len(finalizerFDs) > 0 {
		t.Errorf("G9/I5: %d fds (%s) were still open after the hub returned and only a GC closed them",
			len(finalizerFDs), strings.Join(finalizerFDs, ", "))
	}
}

func mean(xs []float64) float64 {
	s := 0.0
	for _, x := range xs {
		s += x
	}
	return s / float64(max(len(xs), 1))
}
