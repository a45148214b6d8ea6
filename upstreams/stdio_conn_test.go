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
	"sync/atomic"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
)

// mcpgoLine classifies and decodes line as mcp-go's stdio transport does
// (transport.Stdio.readResponses): kind is "skip", "notification",
// "request" or "response".
func mcpgoLine(line []byte) (kind string, resp transport.JSONRPCResponse, n mcp.JSONRPCNotification) {
	var base struct {
		JSONRPC string         `json:"jsonrpc"`
		ID      *mcp.RequestId `json:"id,omitempty"`
		Method  string         `json:"method,omitempty"`
	}
	if json.Unmarshal(line, &base) != nil {
		return "skip", resp, n
	}
	if base.Method != "" && base.ID == nil {
		if json.Unmarshal(line, &n) != nil {
			return "skip", resp, n
		}
		return "notification", resp, n
	}
	if base.Method != "" && base.ID != nil {
		var r transport.JSONRPCRequest
		if json.Unmarshal(line, &r) == nil {
			return "request", resp, n
		}
	}
	if json.Unmarshal(line, &resp) != nil {
		return "skip", resp, n
	}
	return "response", resp, n
}

// kindOf names what handleLine does with m.
func kindOf(m message) string {
	switch {
	case m.method != "" && m.id == nil:
		return "notification"
	case m.method != "":
		return "request"
	}
	return "response"
}

// checkSplit: whatever splitMessage accepts, mcp-go's stdio transport
// (which the hub used before) reads the same way: the same kind, for a
// result the same id and result bytes, for a notification the same method
// and params. splitMessage is stricter (it refuses duplicate and
// case-variant members, which mcp-go reads one way and a peer may read
// another), never looser.
func checkSplit(t *testing.T, line []byte) (message, bool) {
	t.Helper()
	m, ok := splitMessage(line)
	if !ok {
		return m, false
	}
	if !json.Valid(line) {
		t.Fatalf("splitMessage accepted invalid JSON %q", line)
	}
	kind, resp, n := mcpgoLine(line)
	if kind == "skip" && m.error != nil {
		return m, true // an unusual error member: the caller gets ErrInvalidResponse
	}
	if got := kindOf(m); got != kind {
		t.Fatalf("splitMessage reads %q as a %s, mcp-go as a %s", line, got, kind)
	}
	switch kind {
	case "response":
		if id, ok := integerID(m.id); ok && m.error == nil {
			if resp.ID.String() != fmt.Sprintf("int64:%d", id) {
				t.Fatalf("%q: id %d, mcp-go %s", line, id, resp.ID.String())
			}
			if m.result != nil && !bytes.Equal(m.result, resp.Result) {
				t.Fatalf("%q: result %s, mcp-go %s", line, m.result, resp.Result)
			}
		}
	case "notification":
		if m.method != n.Method {
			t.Fatalf("%q: method %q, mcp-go %q", line, m.method, n.Method)
		}
	}
	return m, true
}

func TestSplitMessage(t *testing.T) {
	tests := []struct {
		line string
		kind string // "" when the line is skipped
	}{
		{`{"jsonrpc":"2.0","id":7,"result":{"content":[{"type":"text","text":"a \"}\" b"}]}}`, "response"},
		{` {"result" : [1,{"a":"]"}] , "id" : -3 , "x":{"id":1}}`, "response"},
		{`{"id":1,"result":null}`, "response"},
		{`{"id":1,"result":{},"error":{"code":1,"message":"m"}}`, "response"},
		{`{"id":1,"error":{"code":1,"message":"m","data":{"b":[1.50]}}}`, "response"},
		{`{"id":1,"method":"ping"}`, "request"},
		{`{"id":"s1","method":"roots/list","params":{"x":1}}`, "request"},
		{`{"id":1,"method":"","result":{}}`, "response"},
		{`{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":"p", "progress":1.50}}`, "notification"},
		{`{"method":"m","id":null}`, "notification"},
		{`{"method":"m","params":[1]}`, ""},
		{`{"method":1}`, ""},
		{`{"id":true,"result":{}}`, ""},
		{`{"jsonrpc":2,"id":1,"result":{}}`, ""},
		{`{"jsonrpc":"1.0","id":1,"result":{}}`, ""},
		{`{"id":1,"result":{},"result":{}}`, ""},  // duplicate member
		{`{"\u0069d":1,"result":{}}`, ""},         // escaped name
		{`{"ID":1,"result":{}}`, ""},              // encoding/json folds case
		{`{"id":1,"result":{},"Method":"x"}`, ""}, // mcp-go: a request
		{`{"id":1,"result":{},"reſult":2}`, ""},   // U+017F folds to s
		{`{"id":1,"result":{},"other":{"ID":2},"é":1}`, "response"},
		{`{"id":1,"result":"\xff"}`, ""}, // invalid UTF-8
		{`{"id":1,"result":{}} trailing`, ""},
		{`[1]`, ""},
		{`npm WARN banner`, ""},
		{``, ""},
	}
	for _, tt := range tests {
		t.Run(tt.line, func(t *testing.T) {
			m, ok := checkSplit(t, []byte(tt.line))
			got := ""
			if ok {
				got = kindOf(m)
			}
			if got != tt.kind {
				t.Errorf("read as %q, want %q", got, tt.kind)
			}
		})
	}
}

// FuzzSplitMessage: splitMessage never reads a line differently from
// mcp-go's stdio transport (checkSplit), and never panics.
func FuzzSplitMessage(f *testing.F) {
	f.Add([]byte(`{"jsonrpc":"2.0","id":7,"result":{"content":[{"type":"text","text":"hi"}]}}`))
	f.Add([]byte(`{"id":-1,"result":[],"x":"\\\""}`))
	f.Add([]byte(`{"id":1,"result":{},"error":null}`))
	f.Add([]byte(`{"jsonrpc":"2.0","method":"notifications/progress","params":{}}`))
	f.Add([]byte(`{"jsonrpc":"2.0","id":"a","method":"sampling/createMessage","params":{}}`))
	f.Fuzz(func(t *testing.T, line []byte) {
		checkSplit(t, line)
	})
}

// TestAppendMessage: the frames stdioConn writes carry params byte for
// byte (no escaping, no re-encoding) and the method as a JSON string.
func TestAppendMessage(t *testing.T) {
	tests := []struct {
		id     string
		method string
		params string
		want   string
	}{
		{"42", "tools/call", `{"name":"e","arguments":{"s":"<&>","n":1.50}}`, `{"jsonrpc":"2.0","id":42,"method":"tools/call","params":{"name":"e","arguments":{"s":"<&>","n":1.50}}}`},
		{"1", "ping", "", `{"jsonrpc":"2.0","id":1,"method":"ping"}`},
		{"", "notifications/initialized", "", `{"jsonrpc":"2.0","method":"notifications/initialized"}`},
		{"", "odd/\"\\é\n", `{}`, `{"jsonrpc":"2.0","method":"odd/\"\\é\n","params":{}}`},
	}
	for _, tt := range tests {
		var id []byte
		if tt.id != "" {
			id = []byte(tt.id)
		}
		var params json.RawMessage
		if tt.params != "" {
			params = json.RawMessage(tt.params)
		}
		if got := string(appendMessage(nil, id, tt.method, params)); got != tt.want {
			t.Errorf("got  %s\nwant %s", got, tt.want)
		}
	}
}

// inboundLog is an inbound that records what it gets.
type inboundLog struct {
	mu    sync.Mutex
	notes []string // method + " " + params
}

func (r *inboundLog) onNotification(method string, params json.RawMessage) {
	r.mu.Lock()
	r.notes = append(r.notes, method+" "+string(params))
	r.mu.Unlock()
}

func (r *inboundLog) onRequest(_ context.Context, method string, params json.RawMessage) (json.RawMessage, error) {
	if method == "fail" {
		return nil, &RPCError{Code: -32042, Message: "no <way>", Data: json.RawMessage(`{"why": 1.50}`)}
	}
	return json.RawMessage(`{"roots":[], "echo":` + string(params) + `}`), nil
}

func (r *inboundLog) got() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.notes, "|")
}

// TestStdioConnRawBytes drives stdioConn over pipes: garbage lines are
// skipped, a notification reaches the inbound, its params byte for byte,
// before the response that follows it; unknown and duplicate answers are
// dropped; server requests are answered with their id and params as sent;
// an error answer keeps its data; the end of the stream fails what is
// pending.
func TestStdioConnRawBytes(t *testing.T) {
	upR, upW := io.Pipe() // upstream stdout → conn
	inR, inW := io.Pipe() // conn → upstream stdin
	var bg sync.WaitGroup
	spawn := func(f func()) bool { bg.Add(1); go func() { defer bg.Done(); f() }(); return true }
	rec := &inboundLog{}
	var lost atomic.Pointer[error]
	c, err := newStdioConn(upR, inW, wire{in: rec, ids: new(atomic.Int64), bg: spawn, log: slog.New(slog.DiscardHandler)},
		func(err error) { lost.CompareAndSwap(nil, &err) })
	if err != nil {
		t.Fatal(err)
	}

	const progress = `{"progressToken":"p", "progress":1.50,"note":"<&>"}`
	upDone := make(chan error, 1)
	go func() {
		br := bufio.NewReader(inR)
		line, err := br.ReadString('\n')
		if err != nil || line != `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"a":"<&>"}}`+"\n" {
			upDone <- fmt.Errorf("request line %q: %v", line, err)
			return
		}
		io.WriteString(upW, "npm WARN banner\n{\"jsonrpc\":\n[1]\n")
		io.WriteString(upW, `{"jsonrpc":"2.0","method":"notifications/progress","params":`+progress+`}`+"\n")
		io.WriteString(upW, `{"jsonrpc":"2.0","id":99,"result":{}}`+"\n")
		io.WriteString(upW, `{"jsonrpc":"2.0","id":1,"result":{"ok":1}}`+"\n")
		io.WriteString(upW, `{"jsonrpc":"2.0","id":1,"result":{"ok":2}}`+"\n")
		for _, tc := range []struct{ req, want string }{
			{`{"jsonrpc":"2.0","id":"s1","method":"roots/list","params":{"x": 2.0}}`, `{"jsonrpc":"2.0","id":"s1","result":{"roots":[], "echo":{"x": 2.0}}}`},
			{`{"jsonrpc":"2.0","id":7,"method":"fail"}`, `{"jsonrpc":"2.0","id":7,"error":{"code":-32042,"message":"no <way>","data":{"why": 1.50}}}`},
		} {
			io.WriteString(upW, tc.req+"\n")
			line, err = br.ReadString('\n')
			if err != nil || line != tc.want+"\n" {
				upDone <- fmt.Errorf("answer line %q: %v, want %s", line, err, tc.want)
				return
			}
		}
		upDone <- nil
	}()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := c.call(ctx, "tools/call", json.RawMessage(`{"a":"<&>"}`))
	if err != nil {
		t.Fatal(err)
	}
	if string(res) != `{"ok":1}` {
		t.Fatalf("result %s, want the first answer", res)
	}
	if got := rec.got(); got != "notifications/progress "+progress {
		t.Fatalf("notifications before the response: %q", got)
	}
	if err := <-upDone; err != nil {
		t.Fatal(err)
	}

	// A request still waiting when the stream ends fails at once, with
	// ErrLost.
	errc := make(chan error, 1)
	go func() {
		_, err := c.call(ctx, "ping", nil)
		errc <- err
	}()
	go io.Copy(io.Discard, inR)
	upW.Close() // before or after the request registers: ErrLost or ErrUnavailable
	if err := <-errc; !errors.Is(err, ErrLost) && !errors.Is(err, ErrUnavailable) {
		t.Fatalf("pending request: %v, want ErrLost", err)
	}
	if p := lost.Load(); p == nil || !strings.Contains((*p).Error(), "stdout closed") {
		t.Fatalf("the end of stdout did not mark the session lost: %v", p)
	}
	_ = c.close()
	inR.Close()
	bg.Wait()
}
