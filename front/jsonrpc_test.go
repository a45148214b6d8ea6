package front

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

// TestParseMessage pins the client framing rules of docs/faults.md cases 1–18.
func TestParseMessage(t *testing.T) {
	tests := []struct {
		name     string // docs/faults.md case
		line     string
		wantCode int    // 0: accepted
		wantID   string // id answered to
	}{
		{"A1 not JSON", `{"jsonrpc":`, CodeParseError, "null"},
		{"A2 array (batch)", `[{"jsonrpc":"2.0","id":1,"method":"ping"}]`, CodeInvalidRequest, "null"},
		{"A2 scalar", `42`, CodeInvalidRequest, "null"},
		{"A2 null", `null`, CodeInvalidRequest, "null"},
		{"A3 jsonrpc missing", `{"id":7,"method":"ping"}`, CodeInvalidRequest, "7"},
		{"A3 jsonrpc 1.0", `{"jsonrpc":"1.0","id":"a","method":"ping"}`, CodeInvalidRequest, `"a"`},
		{"A4 id true", `{"jsonrpc":"2.0","id":true,"method":"ping"}`, CodeInvalidRequest, "null"},
		{"A4 id fraction", `{"jsonrpc":"2.0","id":1.5,"method":"ping"}`, CodeInvalidRequest, "null"},
		{"A4 id object", `{"jsonrpc":"2.0","id":{},"method":"ping"}`, CodeInvalidRequest, "null"},
		{"A5 id null", `{"jsonrpc":"2.0","id":null,"method":"ping"}`, CodeInvalidRequest, "null"},
		{"A6 method empty", `{"jsonrpc":"2.0","id":1,"method":""}`, CodeInvalidRequest, "1"},
		{"A6 method number", `{"jsonrpc":"2.0","id":1,"method":3}`, CodeInvalidRequest, "1"},
		{"A6 method missing", `{"jsonrpc":"2.0","id":1}`, CodeInvalidRequest, "1"},
		{"A9 duplicate key", `{"jsonrpc":"2.0","id":1,"method":"ping","method":"tools/call"}`, CodeInvalidRequest, "1"},
		{"A9 duplicate id", `{"jsonrpc":"2.0","id":1,"id":2,"method":"ping"}`, CodeInvalidRequest, "null"},
		{"A9 case variant", `{"jsonrpc":"2.0","id":1,"method":"ping","Method":"tools/call"}`, CodeInvalidRequest, "1"},
		{"A10 invalid UTF-8", "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\",\"params\":{\"a\":\"\xff\"}}", CodeParseError, "null"},
		{"params not object", `{"jsonrpc":"2.0","id":1,"method":"ping","params":[]}`, CodeInvalidRequest, "1"},
		{"A16 big id kept", `{"jsonrpc":"2.0","id":9007199254740993,"method":"ping"}`, 0, "9007199254740993"},
		{"string id", `{"jsonrpc":"2.0","id":"1","method":"ping"}`, 0, `"1"`},
		{"notification", `{"jsonrpc":"2.0","method":"notifications/initialized"}`, 0, "null"},
		{"response", `{"jsonrpc":"2.0","id":3,"result":{}}`, 0, "3"},
		{"response with both", `{"jsonrpc":"2.0","id":3,"result":{},"error":{}}`, CodeInvalidRequest, "3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, id, err := parseMessage([]byte(tt.line))
			gotCode := 0
			if err != nil {
				gotCode = err.Code
			}
			if gotCode != tt.wantCode {
				t.Fatalf("code = %d (%v), want %d", gotCode, err, tt.wantCode)
			}
			gotID := string(id)
			if err == nil && m.ID != nil {
				gotID = string(m.ID)
			}
			if gotID != tt.wantID {
				t.Errorf("id = %s, want %s", gotID, tt.wantID)
			}
		})
	}
}

// TestLineReader pins framing: size cap with resynchronisation (A11, A12),
// CRLF, empty lines and a BOM at stream start (A13).
func TestLineReader(t *testing.T) {
	big := strings.Repeat("x", 100)
	in := "\xef\xbb\xbf{\"a\":1}\r\n\n   \n" + big + "\n{\"b\":2}\n{\"c\":3}"
	lr := newLineReader(strings.NewReader(in), 50)
	var got []string
	var tooLarge int
	for {
		line, err := lr.next()
		if errors.Is(err, errTooLarge) {
			tooLarge++
			continue
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, string(line))
	}
	want := []string{`{"a":1}`, `{"b":2}`, `{"c":3}`}
	if strings.Join(got, "|") != strings.Join(want, "|") || tooLarge != 1 {
		t.Fatalf("got %q with %d too-large, want %q with 1", got, tooLarge, want)
	}
}

// TestWriterCompactsPrettyJSON: a pretty-printed upstream result must never
// split one message over several lines on stdio.
func TestWriterCompactsPrettyJSON(t *testing.T) {
	var b bytes.Buffer
	lw := &lineWriter{w: &b}
	if err := lw.write(encodeResult([]byte("1"), []byte("{\n  \"text\": \"a\\nb\"\n}"))); err != nil {
		t.Fatal(err)
	}
	want := `{"jsonrpc":"2.0","id":1,"result":{"text":"a\nb"}}` + "\n"
	if b.String() != want {
		t.Fatalf("got %q, want %q", b.String(), want)
	}
}
