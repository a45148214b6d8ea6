package upstreams

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
)

// mcpgoLine classifies and decodes line as mcp-go's stdio transport does
// (transport.Stdio.readResponses): kind is "skip", "notification",
// "request" or "response".
func mcpgoLine(line []byte) (kind string, resp transport.JSONRPCResponse) {
	var base struct {
		JSONRPC string         `json:"jsonrpc"`
		ID      *mcp.RequestId `json:"id,omitempty"`
		Method  string         `json:"method,omitempty"`
	}
	if json.Unmarshal(line, &base) != nil {
		return "skip", resp
	}
	if base.Method != "" && base.ID == nil {
		var n mcp.JSONRPCNotification
		if json.Unmarshal(line, &n) != nil {
			return "skip", resp
		}
		return "notification", resp
	}
	if base.Method != "" && base.ID != nil {
		var r transport.JSONRPCRequest
		if json.Unmarshal(line, &r) == nil {
			return "request", resp
		}
	}
	if json.Unmarshal(line, &resp) != nil {
		return "skip", resp
	}
	return "response", resp
}

// checkFastResponse: whatever fastResponse accepts, mcp-go decodes as a
// response with the same id, version and result bytes, and no error.
func checkFastResponse(t *testing.T, line []byte) bool {
	t.Helper()
	id, got, ok := fastResponse(line)
	if !ok {
		return false
	}
	kind, want := mcpgoLine(line)
	if kind != "response" {
		t.Fatalf("fastResponse accepted %q, which mcp-go handles as %s", line, kind)
	}
	if want.ID.String() != fmt.Sprintf("int64:%d", id) || got.ID.String() != want.ID.String() {
		t.Fatalf("%q: fast id %d (%s), mcp-go id %s", line, id, got.ID.String(), want.ID.String())
	}
	if !bytes.Equal(got.Result, want.Result) || got.Error != nil || want.Error != nil || got.JSONRPC != want.JSONRPC {
		t.Fatalf("%q: fast %+v, mcp-go %+v", line, got, want)
	}
	return true
}

func TestFastResponse(t *testing.T) {
	tests := []struct {
		line string
		fast bool // taken by the fast path (else mcp-go's decoding)
	}{
		{`{"jsonrpc":"2.0","id":7,"result":{"content":[{"type":"text","text":"a \"}\" b"}]}}`, true},
		{` {"result" : [1,{"a":"]"}] , "id" : -3 , "x":{"id":1}}`, true},
		{`{"id":1,"result":null}`, true},
		{`{"jsonrpc":"2.0","id":12345678901234,"result":"x"}`, true},
		{`{"id":1234567890123456,"result":{}}`, false}, // beyond float64's exact integers
		{`{"id":1.0,"result":{}}`, false},
		{`{"id":1e2,"result":{}}`, false},
		{`{"id":"1","result":{}}`, false},
		{`{"id":null,"result":{}}`, false},
		{`{"jsonrpc":2,"id":1,"result":{}}`, false},
		{`{"jsonrpc":"1.0","id":1,"result":{}}`, false},
		{`{"id":1,"result":{},"error":{"code":1,"message":"m"}}`, false},
		{`{"id":1,"error":{"code":1,"message":"m"}}`, false},
		{`{"id":1,"method":"ping"}`, false},
		{`{"id":1,"method":"","result":{}}`, false},
		{`{"id":1,"result":{},"result":{}}`, false},  // duplicate key
		{`{"\u0069d":1,"result":{}}`, false},         // escaped name
		{`{"ID":1,"result":{}}`, false},              // encoding/json folds case
		{`{"id":1,"result":{},"Method":"x"}`, false}, // mcp-go: a request
		{`{"jsonrpC":"000","id":0,"result":{}}`, false},
		{`{"id":1,"result":{},"reſult":2}`, false}, // U+017F folds to s
		{`{"id":1,"result":{},"other":{"ID":2}}`, true},
		{`{"id":1,"result":"\xff"}`, false}, // invalid UTF-8
		{`{"id":1,"result":{}} trailing`, false},
		{`{"id":1}`, false},
		{`[1]`, false},
		{``, false},
	}
	for _, tt := range tests {
		t.Run(tt.line, func(t *testing.T) {
			if got := checkFastResponse(t, []byte(tt.line)); got != tt.fast {
				t.Errorf("fast path taken = %v, want %v", got, tt.fast)
			}
		})
	}
}

// FuzzFastResponse: the fast path never decodes a line differently from
// mcp-go's stdio transport (checkFastResponse), and never panics.
func FuzzFastResponse(f *testing.F) {
	f.Add([]byte(`{"jsonrpc":"2.0","id":7,"result":{"content":[{"type":"text","text":"hi"}]}}`))
	f.Add([]byte(`{"id":-1,"result":[],"x":"\\\""}`))
	f.Add([]byte(`{"id":1,"result":{},"error":null}`))
	f.Add([]byte(`{"jsonrpc":"2.0","method":"notifications/progress","params":{}}`))
	f.Fuzz(func(t *testing.T, line []byte) {
		checkFastResponse(t, line)
	})
}

// TestAppendRequest: the frames stdioConn writes are the bytes mcp-go's
// json.Marshal of the request gives, plus the newline.
func TestAppendRequest(t *testing.T) {
	tests := []struct {
		method string
		params any
	}{
		{"tools/call", json.RawMessage(`"sigil-raw-abc-12"`)},
		{"initialize", json.RawMessage(`{"protocolVersion":"2025-11-25","capabilities":{}}`)},
		{"ping", nil},
		{"odd/<&>\"\\é", map[string]any{"cursor": "c<1>"}},
		{"tools/list", json.RawMessage("{\n\"cursor\": \"x\"\n}")},
	}
	for _, tt := range tests {
		t.Run(tt.method, func(t *testing.T) {
			got, err := appendRequest(nil, 42, tt.method, tt.params)
			if err != nil {
				t.Fatal(err)
			}
			want, err := json.Marshal(transport.JSONRPCRequest{JSONRPC: mcp.JSONRPC_VERSION, ID: mcp.NewRequestId(int64(42)), Method: tt.method, Params: tt.params})
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != string(want)+"\n" {
				t.Errorf("got  %s\nwant %s", got, want)
			}
		})
	}
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

// TestFrameWriterConcurrent: concurrent frames arrive whole, each with its
// own bytes substituted, in each writer's order.
func TestFrameWriterConcurrent(t *testing.T) {
	out := &syncBuffer{}
	raw := newRawParams("fw")
	fw := newFrameWriter(out, raw, nil)
	const writers, each = 16, 50
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				tok, release := raw.add([]byte(fmt.Sprintf(`{"w":%d,"i":%d,"s":"<&>"}`, w, i)))
				frame := fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"m","params":%s}`+"\n", w*each+i, tok)
				if _, err := fw.Write([]byte(frame)); err != nil {
					t.Error(err)
				}
				release()
			}
		}()
	}
	wg.Wait()
	if err := fw.Close(); err != nil {
		t.Fatal(err)
	}
	next := make([]int, writers)
	sc := bufio.NewScanner(strings.NewReader(out.b.String()))
	n := 0
	for sc.Scan() {
		var m struct {
			ID     int
			Params struct{ W, I int }
		}
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("frame %q: %v", sc.Text(), err)
		}
		if !strings.Contains(sc.Text(), `"s":"<&>"`) || m.ID != m.Params.W*each+m.Params.I {
			t.Fatalf("frame %q: wrong bytes", sc.Text())
		}
		if m.Params.I != next[m.Params.W] {
			t.Fatalf("writer %d: frame %d after %d", m.Params.W, m.Params.I, next[m.Params.W]-1)
		}
		next[m.Params.W]++
		n++
	}
	if n != writers*each {
		t.Fatalf("%d frames, want %d", n, writers*each)
	}
	if !out.closed {
		t.Error("Close did not close the pipe")
	}
	t.Logf("%d frames in %d writes", n, out.writes)
}

// TestFrameWriterError: a write error is reported once and returned by
// every later Write; nothing is written after it.
func TestFrameWriterError(t *testing.T) {
	boom := errors.New("broken pipe")
	out := &syncBuffer{fail: boom}
	var reported []error
	fw := newFrameWriter(out, newRawParams("fw"), func(err error) { reported = append(reported, err) })
	for range 3 {
		if _, err := fw.Write([]byte("{}\n")); !errors.Is(err, boom) {
			t.Fatalf("Write = %v, want %v", err, boom)
		}
	}
	if len(reported) != 1 || !errors.Is(reported[0], boom) {
		t.Fatalf("reported %v, want one %v", reported, boom)
	}
	_ = fw.Close()
	if _, err := fw.Write([]byte("{}\n")); err == nil {
		t.Fatal("Write after Close succeeded")
	}
}

// TestStdioConnReadsLikeMCPGo drives stdioConn over pipes: garbage lines
// are skipped, a notification reaches the handler before the response
// that follows it, unknown and duplicate answers are dropped, a server
// request is answered, and the end of the stream fails what is pending.
func TestStdioConnReadsLikeMCPGo(t *testing.T) {
	upR, upW := io.Pipe() // upstream stdout → conn
	inR, inW := io.Pipe() // conn → upstream stdin
	var bg sync.WaitGroup
	spawn := func(f func()) bool { bg.Add(1); go func() { defer bg.Done(); f() }(); return true }
	c := newStdioConn(upR, newFrameWriter(inW, newRawParams("t"), nil), slog.New(slog.DiscardHandler), spawn)
	var mu sync.Mutex
	var notes []string
	c.SetNotificationHandler(func(n mcp.JSONRPCNotification) {
		mu.Lock()
		notes = append(notes, n.Method)
		mu.Unlock()
	})
	c.SetRequestHandler(func(ctx context.Context, req transport.JSONRPCRequest) (*transport.JSONRPCResponse, error) {
		return transport.NewJSONRPCResultResponse(req.ID, json.RawMessage(`{"roots":[]}`)), nil
	})
	if err := c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}

	// The fake upstream: answers request 1 after noise and a notification,
	// sends a request of its own, and checks the conn's answer to it.
	upDone := make(chan error, 1)
	go func() {
		br := bufio.NewReader(inR)
		line, err := br.ReadString('\n')
		if err != nil || !strings.Contains(line, `"id":1,"method":"tools/call"`) {
			upDone <- fmt.Errorf("request line %q: %v", line, err)
			return
		}
		io.WriteString(upW, "npm WARN banner\n{\"jsonrpc\":\n[1]\n")
		io.WriteString(upW, `{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":"p","progress":1}}`+"\n")
		io.WriteString(upW, `{"jsonrpc":"2.0","id":99,"result":{}}`+"\n")
		io.WriteString(upW, `{"jsonrpc":"2.0","id":1,"result":{"ok":1}}`+"\n")
		io.WriteString(upW, `{"jsonrpc":"2.0","id":1,"result":{"ok":2}}`+"\n")
		io.WriteString(upW, `{"jsonrpc":"2.0","id":"s1","method":"roots/list"}`+"\n")
		line, err = br.ReadString('\n')
		if err != nil || !strings.Contains(line, `"id":"s1"`) || !strings.Contains(line, `"roots":[]`) {
			upDone <- fmt.Errorf("answer line %q: %v", line, err)
			return
		}
		upDone <- nil
	}()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := c.SendRequest(ctx, transport.JSONRPCRequest{JSONRPC: mcp.JSONRPC_VERSION, ID: mcp.NewRequestId(int64(1)), Method: "tools/call", Params: json.RawMessage(`{}`)})
	if err != nil {
		t.Fatal(err)
	}
	if string(resp.Result) != `{"ok":1}` {
		t.Fatalf("result %s, want the first answer", resp.Result)
	}
	mu.Lock()
	got := strings.Join(notes, ",")
	mu.Unlock()
	if got != "notifications/progress" {
		t.Fatalf("notifications before the response: %q", got)
	}
	if err := <-upDone; err != nil {
		t.Fatal(err)
	}

	// A request still waiting when the stream ends fails at once.
	errc := make(chan error, 1)
	go func() {
		_, err := c.SendRequest(ctx, transport.JSONRPCRequest{JSONRPC: mcp.JSONRPC_VERSION, ID: mcp.NewRequestId(int64(2)), Method: "ping"})
		errc <- err
	}()
	go io.Copy(io.Discard, inR)
	upW.Close() // before or after the request registers: the error is the same

	if err := <-errc; !errors.Is(err, transport.ErrTransportClosed) {
		t.Fatalf("pending request: %v, want ErrTransportClosed", err)
	}
	_ = c.Close()
	inR.Close()
	bg.Wait()
}
