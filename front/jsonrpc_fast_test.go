package front

import (
	"bytes"
	"testing"
)

// The fast paths of jsonrpc.go (the general code cost measurable CPU on
// every call) must give what the general code
// gives.

func TestAppendQuotedMatchesEncoder(t *testing.T) {
	for _, s := range []string{"", "tools/call", "files__read", "a b~", `q"uote`, `back\slash`, "<&>", "tab\t", "nl\n", "é", "\u2028", "\xff", "\x7f"} {
		want, err := MarshalNoEscape(s)
		if err != nil {
			t.Fatal(err)
		}
		if got := AppendQuoted([]byte("x"), s); string(got) != "x"+string(want) {
			t.Errorf("AppendQuoted(%q) = %s, want x%s", s, got, want)
		}
	}
}

func FuzzAppendQuoted(f *testing.F) {
	f.Add("tools/call")
	f.Add("\u2028<\x01")
	f.Fuzz(func(t *testing.T, s string) {
		want, err := MarshalNoEscape(s)
		if err != nil {
			t.Skip()
		}
		if got := Quote(s); !bytes.Equal(got, want) {
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
