package framing

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
)

func readAll(t *testing.T, lr *Reader) (lines []string, tooLong int, end error) {
	t.Helper()
	for {
		line, err := lr.Next()
		switch {
		case errors.Is(err, ErrTooLong):
			tooLong++
			if lr.mode == Strict {
				return lines, tooLong, err
			}
		case err != nil:
			return lines, tooLong, err
		default:
			lines = append(lines, string(line))
		}
	}
}

// TestReaderResync pins the client pipe's framing: size cap with
// resynchronisation (docs/faults.md A11, A12), CRLF, blank lines, a BOM at the
// start of the stream (A13) and a last line without a line break.
func TestReaderResync(t *testing.T) {
	big := strings.Repeat("x", 100)
	in := "\xef\xbb\xbf{\"a\":1}\r\n\n   \n" + big + "\n{\"b\":2}\n{\"c\":3}"
	lines, tooLong, end := readAll(t, NewReader(strings.NewReader(in), 50, Resync))
	want := []string{`{"a":1}`, `{"b":2}`, `{"c":3}`}
	if strings.Join(lines, "|") != strings.Join(want, "|") || tooLong != 1 || end != io.EOF {
		t.Fatalf("got %q with %d too long, end %v; want %q with 1, io.EOF", lines, tooLong, end, want)
	}
}

// TestReaderStrict pins an upstream pipe's framing: a last line without a
// line break is not a message, and a line over the cap ends the stream.
func TestReaderStrict(t *testing.T) {
	lines, tooLong, end := readAll(t, NewReader(strings.NewReader("{\"a\":1}\n\n{\"b\":"), 50, Strict))
	if strings.Join(lines, "|") != `{"a":1}` || tooLong != 0 || end != io.EOF {
		t.Fatalf("got %q, %d too long, end %v", lines, tooLong, end)
	}
	in := "{\"a\":1}\n" + strings.Repeat("x", 100) + "\n{\"b\":2}\n"
	lines, tooLong, _ = readAll(t, NewReader(strings.NewReader(in), 50, Strict))
	if strings.Join(lines, "|") != `{"a":1}` || tooLong != 1 {
		t.Fatalf("got %q with %d too long", lines, tooLong)
	}
}

// TestReaderHugeLineBoundedMemory feeds a 100 MiB line (docs/faults.md A12, G7):
// it is reported as too long without being buffered whole; Resync then
// goes on with the next line, Strict stops at the cap without reading on.
func TestReaderHugeLineBoundedMemory(t *testing.T) {
	huge := func() (io.Reader, *countingReader) {
		c := &countingReader{r: io.MultiReader(io.LimitReader(repeatReader('a'), 100<<20), strings.NewReader("\n{\"ok\":1}\n"))}
		return c, c
	}
	r, _ := huge()
	lr := NewReader(r, 4<<20, Resync)
	if _, err := lr.Next(); !errors.Is(err, ErrTooLong) {
		t.Fatalf("first = %v, want ErrTooLong", err)
	}
	if line, err := lr.Next(); err != nil || string(line) != `{"ok":1}` {
		t.Fatalf("after resync: %q, %v", line, err)
	}
	r, c := huge()
	lr = NewReader(r, 4<<20, Strict)
	if _, err := lr.Next(); !errors.Is(err, ErrTooLong) {
		t.Fatalf("strict: %v, want ErrTooLong", err)
	}
	if c.n > 5<<20 {
		t.Fatalf("strict read %d bytes of the line, cap 4 MiB", c.n)
	}
}

type repeatReader byte

func (r repeatReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(r)
	}
	return len(p), nil
}

type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

// syncBuffer is a bytes.Buffer safe for concurrent use that counts writes.
type syncBuffer struct {
	mu     sync.Mutex
	b      bytes.Buffer
	writes int
	fail   error
	closed bool
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return 0, s.fail
	}
	s.writes++
	return s.b.Write(p)
}

func (s *syncBuffer) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	return nil
}

// TestWriterConcurrent: messages from concurrent writers arrive whole, one
// per line, each writer's in its order, all on the wire after Flush.
func TestWriterConcurrent(t *testing.T) {
	out := &syncBuffer{}
	w := NewWriter(out, nil)
	const writers, each = 16, 100
	var wg sync.WaitGroup
	for g := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				if err := w.Write([]byte(fmt.Sprintf(`{"g":%d,"i":%d,"pad":%q}`, g, i, strings.Repeat("x", i)))); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	w.Flush()
	out.mu.Lock()
	sc := bufio.NewScanner(bytes.NewReader(out.b.Bytes()))
	writes := out.writes
	out.mu.Unlock()
	next := make([]int, writers)
	n := 0
	for sc.Scan() {
		var m struct{ G, I int }
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		if m.I != next[m.G] {
			t.Fatalf("writer %d: message %d after %d", m.G, m.I, next[m.G]-1)
		}
		next[m.G]++
		n++
	}
	if n != writers*each {
		t.Fatalf("%d messages, want %d", n, writers*each)
	}
	if err := w.Close(); err != nil || !out.closed {
		t.Fatalf("Close = %v, closed the stream: %v", err, out.closed)
	}
	t.Logf("%d messages in %d writes", n, writes)
}

// TestWriterError: a write error is reported once and returned by every
// later Write; nothing is written after Close.
func TestWriterError(t *testing.T) {
	boom := errors.New("broken pipe")
	out := &syncBuffer{fail: boom}
	var reported []error
	w := NewWriter(out, func(err error) { reported = append(reported, err) })
	for range 3 {
		if err := w.Write([]byte("{}")); !errors.Is(err, boom) {
			t.Fatalf("Write = %v, want %v", err, boom)
		}
	}
	if len(reported) != 1 || !errors.Is(reported[0], boom) {
		t.Fatalf("reported %v, want one %v", reported, boom)
	}
	w = NewWriter(&syncBuffer{}, nil)
	_ = w.Close()
	if err := w.Write([]byte("{}")); err == nil {
		t.Fatal("Write after Close succeeded")
	}
}

// TestWriterOneLinePerMessage: pretty-printed JSON is compacted to one line
// (nothing but whitespace removed); what cannot be compacted is refused
// without breaking the stream.
func TestWriterOneLinePerMessage(t *testing.T) {
	out := &syncBuffer{}
	w := NewWriter(out, nil)
	if err := w.Write([]byte("{\n  \"text\": \"a\\nb <&>\",\r\n  \"n\": 1.50\n}")); err != nil {
		t.Fatal(err)
	}
	if err := w.Write([]byte("{\"a\":\n")); err == nil {
		t.Fatal("an invalid multi-line message was written")
	}
	if err := w.Write([]byte(`{"ok":true}`)); err != nil {
		t.Fatal(err)
	}
	want := `{"text":"a\nb <&>","n":1.50}` + "\n" + `{"ok":true}` + "\n"
	if got := out.b.String(); got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}
