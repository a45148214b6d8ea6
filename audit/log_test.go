package audit_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sigilcore/sigil-hub/audit"
)

const testHash = "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0"

func rec(callID string) audit.Record {
	return audit.Record{
		Time:        time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC),
		CallID:      callID,
		ServerID:    "srv",
		Tool:        "echo",
		ExposedTool: "srv__echo",
		ArgsSHA256:  testHash,
		Decision:    "APPROVED",
		Outcome:     audit.OutcomeForwarded,
	}
}

// lines splits output into lines, failing on any line that is not a JSON
// object, and returns the decoded records.
func lines(t *testing.T, out []byte) []map[string]any {
	t.Helper()
	var got []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("line %d is not a JSON object (%v): %q", len(got)+1, err, sc.Bytes())
		}
		got = append(got, m)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return got
}

func TestConcurrentWriters(t *testing.T) {
	const writers, total = 32, 1000
	tests := []struct {
		name string
		open func(t *testing.T) (*audit.Log, func() []byte)
	}{
		{"writer", func(t *testing.T) (*audit.Log, func() []byte) {
			var b bytes.Buffer // only the Log's goroutine writes; read after Close
			return audit.New(&b, audit.Options{}), b.Bytes
		}},
		{"file", func(t *testing.T) (*audit.Log, func() []byte) {
			path := filepath.Join(t.TempDir(), "audit.jsonl")
			l, err := audit.Open(path, audit.Options{})
			if err != nil {
				t.Fatal(err)
			}
			return l, func() []byte {
				b, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				return b
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, read := tt.open(t)
			var wg sync.WaitGroup
			errs := make(chan error, total)
			for w := range writers {
				wg.Go(func() {
					for i := w; i < total; i += writers {
						r := rec(fmt.Sprintf("call-%04d", i))
						// A long field makes interleaving visible if it happened.
						r.Reason = strings.Repeat("x", 2000+i)
						if err := l.Write(context.Background(), r); err != nil {
							errs <- err
						}
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Errorf("Write: %v", err)
			}
			if err := l.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			got := lines(t, read())
			if len(got) != total {
				t.Fatalf("got %d lines, want %d", len(got), total)
			}
			seen := map[string]bool{}
			for _, m := range got {
				id, _ := m["call_id"].(string)
				if seen[id] {
					t.Fatalf("call_id %q written twice", id)
				}
				seen[id] = true
				var i int
				if _, err := fmt.Sscanf(id, "call-%d", &i); err != nil || len(m["reason"].(string)) != 2000+i {
					t.Fatalf("record %q damaged", id)
				}
			}
		})
	}
}

// blockingWriter never returns from Write until release is closed.
type blockingWriter struct{ release chan struct{} }

func (w blockingWriter) Write(p []byte) (int, error) {
	<-w.release
	return len(p), nil
}

func TestWriteTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := blockingWriter{release: make(chan struct{})}
		l := audit.New(w, audit.Options{WriteTimeout: 2 * time.Second})

		// The first record reaches the stuck writer; the second cannot even
		// be queued. Both give up after WriteTimeout with a clear error.
		for _, id := range []string{"first", "second"} {
			err := l.Write(context.Background(), rec(id))
			if err == nil || !strings.Contains(err.Error(), "not completed within 2s") || !strings.Contains(err.Error(), "blocked") {
				t.Fatalf("Write(%s) = %v, want a stalled-disk error", id, err)
			}
		}

		// The caller's context bounds the wait too.
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		if err := l.Write(ctx, rec("ctx")); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Write with expiring ctx = %v, want DeadlineExceeded", err)
		}
		cancelled, cancel2 := context.WithCancel(context.Background())
		cancel2()
		if err := l.Write(cancelled, rec("cancelled")); !errors.Is(err, context.Canceled) {
			t.Fatalf("Write with cancelled ctx = %v, want Canceled", err)
		}

		close(w.release)
		if err := l.Write(context.Background(), rec("after")); err != nil {
			t.Fatalf("Write after the disk recovered: %v", err)
		}
		if err := l.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
	})
}

func TestCloseStalled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := blockingWriter{release: make(chan struct{})}
		l := audit.New(w, audit.Options{WriteTimeout: time.Second})
		if err := l.Write(context.Background(), rec("stuck")); err == nil {
			t.Fatal("Write to a stuck writer succeeded")
		}
		err := l.Close()
		if err == nil || !strings.Contains(err.Error(), "still blocked") {
			t.Fatalf("Close with a stuck writer = %v, want a still-blocked error", err)
		}
		close(w.release) // let the bubble's goroutines end
	})
}

// failingWriter fails with err while fail is set, writing part of the
// line first when partial is set.
type failingWriter struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	fail    bool
	partial bool
	err     error
}

func (w *failingWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.fail {
		return w.buf.Write(p)
	}
	if w.partial {
		n, _ := w.buf.Write(p[:len(p)/2])
		return n, w.err
	}
	return 0, w.err
}

func (w *failingWriter) set(fail bool) {
	w.mu.Lock()
	w.fail = fail
	w.mu.Unlock()
}

func TestDiskFull(t *testing.T) {
	const name = "/var/log/sigil-hub/audit.jsonl"
	for _, partial := range []bool{false, true} {
		t.Run(fmt.Sprintf("partial=%v", partial), func(t *testing.T) {
			w := &failingWriter{fail: true, partial: partial, err: syscall.ENOSPC}
			var logs bytes.Buffer
			logger := slog.New(slog.NewTextHandler(&logs, nil))
			l := audit.NewNamed(w, name, audit.Options{Logger: logger})
			defer l.Close()

			for range 2 {
				err := l.Write(context.Background(), rec("full"))
				if !errors.Is(err, syscall.ENOSPC) {
					t.Fatalf("Write on a full disk = %v, want ENOSPC", err)
				}
				for _, want := range []string{name, "no space left", "tool calls are blocked"} {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("error %q does not contain %q", err, want)
					}
				}
			}
			w.set(false)
			if err := l.Write(context.Background(), rec("ok")); err != nil {
				t.Fatalf("Write after space was freed: %v", err)
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			// Two failures, one error log line; then one recovery line.
			if n := strings.Count(logs.String(), "level=ERROR"); n != 1 {
				t.Errorf("got %d error log lines, want 1:\n%s", n, logs.String())
			}
			if !strings.Contains(logs.String(), "writable again") {
				t.Errorf("no recovery log line:\n%s", logs.String())
			}
			// A partial line left by the failure is cut off by a newline, so
			// the next record is a line of its own.
			out := w.buf.String()
			last := out[strings.LastIndexByte(strings.TrimSuffix(out, "\n"), '\n')+1:]
			var m map[string]any
			if err := json.Unmarshal([]byte(last), &m); err != nil || m["call_id"] != "ok" {
				t.Fatalf("last line %q is not the recovered record (%v)", last, err)
			}
			// Each failed write left half a line: two torn lines, then the record.
			wantLines := 1
			if partial {
				wantLines = 3
			}
			if n := strings.Count(out, "\n"); n != wantLines {
				t.Fatalf("output %q has %d lines, want %d", out, n, wantLines)
			}
		})
	}
}

func TestCloseSyncsAndCloses(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	l, err := audit.Open(path, audit.Options{SyncEvery: -1})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := l.Write(context.Background(), rec(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	if n := audit.SyncCount(l); n != 0 {
		t.Fatalf("synced %d times before Close with SyncEvery < 0", n)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if n := audit.SyncCount(l); n != 1 {
		t.Fatalf("Close synced %d times, want 1", n)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := len(lines(t, b)); got != 3 {
		t.Fatalf("file has %d records, want 3", got)
	}
	if err := l.Write(context.Background(), rec("late")); !errors.Is(err, audit.ErrClosed) || !strings.Contains(err.Error(), path) {
		t.Fatalf("Write after Close = %v, want ErrClosed naming the file", err)
	}
	if err := l.Close(); !errors.Is(err, audit.ErrClosed) {
		t.Fatalf("second Close = %v, want ErrClosed", err)
	}
}

func TestPeriodicSync(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	synctest.Test(t, func(t *testing.T) {
		l, err := audit.Open(path, audit.Options{SyncEvery: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(3 * time.Second) // fake time: nothing written, nothing synced
		synctest.Wait()
		if n := audit.SyncCount(l); n != 0 {
			t.Fatalf("synced %d times with nothing written", n)
		}
		if err := l.Write(context.Background(), rec("a")); err != nil {
			t.Fatal(err)
		}
		time.Sleep(1500 * time.Millisecond)
		synctest.Wait()
		if n := audit.SyncCount(l); n != 1 {
			t.Fatalf("synced %d times one tick after a write, want 1", n)
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	})
}

func TestOpen(t *testing.T) {
	dir := t.TempDir()
	t.Run("creates 0600", func(t *testing.T) {
		if runtime.GOOS == "windows" {
			t.Skip("no POSIX modes on windows")
		}
		path := filepath.Join(dir, "new.jsonl")
		l, err := audit.Open(path, audit.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Fatalf("mode %v, want 0600", fi.Mode().Perm())
		}
	})
	t.Run("appends after a torn line", func(t *testing.T) {
		path := filepath.Join(dir, "torn.jsonl")
		if err := os.WriteFile(path, []byte(`{"call_id":"old"}`+"\n"+`{"call_id":"to`), 0o600); err != nil {
			t.Fatal(err)
		}
		l, err := audit.Open(path, audit.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if err := l.Write(context.Background(), rec("new")); err != nil {
			t.Fatal(err)
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(path)
		want := `{"call_id":"old"}` + "\n" + `{"call_id":"to` + "\n"
		if !bytes.HasPrefix(b, []byte(want)) || !bytes.Contains(b[len(want):], []byte(`"call_id":"new"`)) {
			t.Fatalf("file = %q", b)
		}
	})
	refused := []struct{ name, path string }{
		{"directory", dir},
		{"empty", ""},
		{"missing parent", filepath.Join(dir, "no", "such", "dir", "a.jsonl")},
	}
	if runtime.GOOS != "windows" {
		if _, err := os.Stat("/dev/null"); err == nil {
			refused = append(refused, struct{ name, path string }{"device", "/dev/null"})
		}
	}
	for _, tt := range refused {
		t.Run("refuses "+tt.name, func(t *testing.T) {
			l, err := audit.Open(tt.path, audit.Options{})
			if err == nil {
				l.Close()
				t.Fatalf("Open(%q) succeeded", tt.path)
			}
		})
	}
}

func TestWriteRejectsBadRecords(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*audit.Record)
	}{
		{"argument values in the hash field", func(r *audit.Record) { r.ArgsSHA256 = `{"path":"/etc/passwd"}` }},
		{"uppercase hash", func(r *audit.Record) { r.ArgsSHA256 = strings.ToUpper(testHash) }},
		{"short hash", func(r *audit.Record) { r.ArgsSHA256 = testHash[:63] }},
		{"NaN latency", func(r *audit.Record) { r.AuthzMillis = nan() }},
	}
	var b bytes.Buffer
	l := audit.New(&b, audit.Options{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := rec("bad")
			tt.mod(&r)
			if err := l.Write(context.Background(), r); err == nil {
				t.Fatal("Write accepted the record")
			} else if strings.Contains(err.Error(), "passwd") {
				t.Fatalf("error echoes the value: %v", err)
			}
		})
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if b.Len() != 0 {
		t.Fatalf("rejected records were written: %q", b.String())
	}
}

func nan() float64 { return math.NaN() }

func BenchmarkWrite(b *testing.B) {
	sinks := []struct {
		name string
		open func(b *testing.B) *audit.Log
	}{
		{"discard", func(b *testing.B) *audit.Log { return audit.New(io.Discard, audit.Options{}) }},
		{"file", func(b *testing.B) *audit.Log {
			l, err := audit.Open(filepath.Join(b.TempDir(), "audit.jsonl"), audit.Options{})
			if err != nil {
				b.Fatal(err)
			}
			return l
		}},
	}
	for _, s := range sinks {
		b.Run(s.name, func(b *testing.B) {
			l := s.open(b)
			r := rec("bench")
			r.AuthzMillis, r.UpstreamMillis = 12.345, 67.891
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := l.Write(context.Background(), r); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.StopTimer()
			if err := l.Close(); err != nil {
				b.Fatal(err)
			}
		})
	}
}
