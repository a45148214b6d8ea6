//go:build linux

package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// Memory figures for faults.md §5 G6 (floods) and G7 (oversize lines): the
// hub's resident set is sampled from /proc while a fault runs, and the peak
// is compared with the baseline taken just before it. Memory bounds are
// asserted; wall time never is.

// G6 and G7 bounds (faults.md §5).
const (
	g6FloodBound = 64 << 20 // peak ≤ baseline + 64 MiB under a flood
	clientCap    = 4 << 20  // the hub's client line cap (hub maxClientMessage)
	upstreamCap  = 16 << 20 // the hub's upstream line cap (upstreams maxUpstreamLine)
)

// rssWatch samples one process's VmRSS every few milliseconds.
type rssWatch struct {
	pid   int
	base  int // VmRSS when the watch started
	hwm0  int // VmHWM when the watch started
	peak  atomic.Int64
	n     atomic.Int64
	stop  chan struct{}
	ended chan struct{}
}

// procStatus returns the named field of /proc/PID/status in bytes (0 if
// unknown).
func procStatus(pid int, field string) int {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == field+":" {
			kb, _ := strconv.Atoi(f[1])
			return kb << 10
		}
	}
	return 0
}

// watchRSS starts sampling pid's resident set. It returns nil where /proc
// has no VmRSS (the measurement is then skipped).
func watchRSS(pid int) *rssWatch {
	base := procStatus(pid, "VmRSS")
	if base == 0 {
		return nil
	}
	w := &rssWatch{pid: pid, base: base, hwm0: procStatus(pid, "VmHWM"), stop: make(chan struct{}), ended: make(chan struct{})}
	w.peak.Store(int64(base))
	go func() {
		defer close(w.ended)
		tk := time.NewTicker(2 * time.Millisecond)
		defer tk.Stop()
		for {
			w.sample()
			select {
			case <-w.stop:
				return
			case <-tk.C:
			}
		}
	}()
	return w
}

func (w *rssWatch) sample() {
	r := procStatus(w.pid, "VmRSS")
	if r == 0 {
		return
	}
	w.n.Add(1)
	for {
		p := w.peak.Load()
		if int64(r) <= p || w.peak.CompareAndSwap(p, int64(r)) {
			return
		}
	}
}

// end stops the sampling and returns the baseline and the peak. The peak
// also counts VmHWM when it rose during the watch: the kernel's high-water
// mark catches a spike between two samples.
func (w *rssWatch) end() (base, peak int) {
	w.sample()
	close(w.stop)
	<-w.ended
	peak = int(w.peak.Load())
	if hwm := procStatus(w.pid, "VmHWM"); hwm > w.hwm0 && hwm > peak {
		peak = hwm
	}
	return w.base, peak
}

// checkRSS ends w and logs the figures under label. It returns a
// description of the breach when the peak exceeds the baseline by more than
// bound, "" otherwise (or when /proc had no figures).
func checkRSS(t *testing.T, w *rssWatch, goal, label string, bound int) string {
	t.Helper()
	if w == nil {
		t.Logf("%s %s: no VmRSS in /proc; memory not measured", goal, label)
		return ""
	}
	base, peak := w.end()
	t.Logf("%s %s: hub RSS baseline %.1f MiB, peak %.1f MiB, increase %.1f MiB (bound %.0f MiB; %d samples)",
		goal, label, mib(base), mib(peak), mib(peak-base), mib(bound), w.n.Load())
	if peak-base <= bound {
		return ""
	}
	return fmt.Sprintf("%s: %s raised the hub's RSS by %.1f MiB (baseline %.1f, peak %.1f), over the %.0f MiB bound",
		goal, label, mib(peak-base), mib(base), mib(peak), mib(bound))
}

func mib(n int) float64 { return float64(n) / (1 << 20) }
