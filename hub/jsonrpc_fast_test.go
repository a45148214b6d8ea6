package hub

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
)

// The fast paths of jsonrpc.go (the general code cost measurable CPU on
// every call) must give what the general code
// gives.

func TestAppendQuotedMatchesEncoder(t *testing.T) {
	for _, s := range []string{"", "tools/call", "files__read", "a b~", `q"uote`, `back\slash`, "<&>", "tab\t", "nl\n", "é", "\u2028", "\xff", "\x7f"} {
		want, err := marshalNoEscape(s)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendQuoted([]byte("x"), s); string(got) != "x"+string(want) {
			t.Errorf("appendQuoted(%q) = %s, want x%s", s, got, want)
		}
	}
}

func FuzzAppendQuoted(f *testing.F) {
	f.Add("tools/call")
	f.Add("\u2028<\x01")
	f.Fuzz(func(t *testing.T, s string) {
		want, err := marshalNoEscape(s)
		if err != nil {
			t.Skip()
		}
		if got := quote(s); !bytes.Equal(got, want) {
			t.Fatalf("quote(%q) = %s, want %s", s, got, want)
		}
	})
}

// TestParseMessageClassifies: a message strictjson rejects is still
// classified as before (parse error for bad UTF-8 or JSON, invalid request
// otherwise), and a plain method is read without decoding.
func TestParseMessageClassifies(t *testing.T) {
	tests := []struct {
		line   string
		code   int // 0: accepted
		method string
	}{
		{`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{}}`, 0, "tools/call"},
		{`{"jsonrpc":"2.0","id":1,"method":"tools\/call"}`, 0, "tools/call"},
		{`{"jsonrpc":"2.0","id":1,"method":""}`, codeInvalidRequest, ""},
		{`{"jsonrpc":"2.0","id":1,"method":7}`, codeInvalidRequest, ""},
		{"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"\xff\"}", codeParseError, ""},
		{`{"jsonrpc":"2.0","id":1,"method":"x"`, codeParseError, ""},
		{`{"jsonrpc":"2.0","id":1,"id":2,"method":"x"}`, codeInvalidRequest, ""},
		{`{"jsonrpc":"2.0","id":1,"method":"x","METHOD":"y"}`, codeInvalidRequest, ""},
	}
	for _, tt := range tests {
		t.Run(tt.line, func(t *testing.T) {
			m, _, rerr := parseMessage([]byte(tt.line))
			switch {
			case tt.code == 0 && rerr != nil:
				t.Fatalf("rejected: %v", rerr)
			case tt.code != 0 && (rerr == nil || rerr.Code != tt.code):
				t.Fatalf("got %v, want code %d", rerr, tt.code)
			case tt.code == 0 && m.Method != tt.method:
				t.Fatalf("method %q, want %q", m.Method, tt.method)
			}
		})
	}
}

// countingWriter counts Write calls; safe for concurrent use.
type countingWriter struct {
	mu     sync.Mutex
	b      bytes.Buffer
	writes int
}

func (c *countingWriter) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.writes++
	return c.b.Write(p)
}

// TestLineWriterConcurrent: lines from concurrent writers are whole, each
// writer's in its order, and all on the wire after flush.
func TestLineWriterConcurrent(t *testing.T) {
	w := &countingWriter{}
	lw := &lineWriter{w: w}
	const writers, each = 16, 100
	var wg sync.WaitGroup
	for g := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				if err := lw.write([]byte(fmt.Sprintf(`{"g":%d,"i":%d,"pad":%q}`, g, i, strings.Repeat("x", i)))); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	lw.flush()
	next := make([]int, writers)
	w.mu.Lock()
	sc := bufio.NewScanner(bytes.NewReader(w.b.Bytes()))
	w.mu.Unlock()
	n := 0
	for sc.Scan() {
		var m struct{ G, I int }
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		if m.I != next[m.G] {
			t.Fatalf("writer %d: line %d after %d", m.G, m.I, next[m.G]-1)
		}
		next[m.G]++
		n++
	}
	if n != writers*each {
		t.Fatalf("%d lines, want %d", n, writers*each)
	}
	t.Logf("%d lines in %d writes", n, w.writes)
}
