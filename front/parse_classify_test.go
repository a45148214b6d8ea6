package front

import (
	"testing"
)

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
		{`{"jsonrpc":"2.0","id":1,"method":""}`, CodeInvalidRequest, ""},
		{`{"jsonrpc":"2.0","id":1,"method":7}`, CodeInvalidRequest, ""},
		{"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"\xff\"}", CodeParseError, ""},
		{`{"jsonrpc":"2.0","id":1,"method":"x"`, CodeParseError, ""},
		{`{"jsonrpc":"2.0","id":1,"id":2,"method":"x"}`, CodeInvalidRequest, ""},
		{`{"jsonrpc":"2.0","id":1,"method":"x","METHOD":"y"}`, CodeInvalidRequest, ""},
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
