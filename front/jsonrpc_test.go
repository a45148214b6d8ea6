package hub

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
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
		{"A1 not JSON", `{"jsonrpc":`, codeParseError, "null"},
		{"A2 array (batch)", `[{"jsonrpc":"2.0","id":1,"method":"ping"}]`, codeInvalidRequest, "null"},
		{"A2 scalar", `42`, codeInvalidRequest, "null"},
		{"A2 null", `null`, codeInvalidRequest, "null"},
		{"A3 jsonrpc missing", `{"id":7,"method":"ping"}`, codeInvalidRequest, "7"},
		{"A3 jsonrpc 1.0", `{"jsonrpc":"1.0","id":"a","method":"ping"}`, codeInvalidRequest, `"a"`},
		{"A4 id true", `{"jsonrpc":"2.0","id":true,"method":"ping"}`, codeInvalidRequest, "null"},
		{"A4 id fraction", `{"jsonrpc":"2.0","id":1.5,"method":"ping"}`, codeInvalidRequest, "null"},
		{"A4 id object", `{"jsonrpc":"2.0","id":{},"method":"ping"}`, codeInvalidRequest, "null"},
		{"A5 id null", `{"jsonrpc":"2.0","id":null,"method":"ping"}`, codeInvalidRequest, "null"},
		{"A6 method empty", `{"jsonrpc":"2.0","id":1,"method":""}`, codeInvalidRequest, "1"},
		{"A6 method number", `{"jsonrpc":"2.0","id":1,"method":3}`, codeInvalidRequest, "1"},
		{"A6 method missing", `{"jsonrpc":"2.0","id":1}`, codeInvalidRequest, "1"},
		{"A9 duplicate key", `{"jsonrpc":"2.0","id":1,"method":"ping","method":"tools/call"}`, codeInvalidRequest, "1"},
		{"A9 duplicate id", `{"jsonrpc":"2.0","id":1,"id":2,"method":"ping"}`, codeInvalidRequest, "null"},
		{"A9 case variant", `{"jsonrpc":"2.0","id":1,"method":"ping","Method":"tools/call"}`, codeInvalidRequest, "1"},
		{"A10 invalid UTF-8", "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\",\"params\":{\"a\":\"\xff\"}}", codeParseError, "null"},
		{"params not object", `{"jsonrpc":"2.0","id":1,"method":"ping","params":[]}`, codeInvalidRequest, "1"},
		{"A16 big id kept", `{"jsonrpc":"2.0","id":9007199254740993,"method":"ping"}`, 0, "9007199254740993"},
		{"string id", `{"jsonrpc":"2.0","id":"1","method":"ping"}`, 0, `"1"`},
		{"notification", `{"jsonrpc":"2.0","method":"notifications/initialized"}`, 0, "null"},
		{"response", `{"jsonrpc":"2.0","id":3,"result":{}}`, 0, "3"},
		{"response with both", `{"jsonrpc":"2.0","id":3,"result":{},"error":{}}`, codeInvalidRequest, "3"},
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

func TestRenamedKeepsEveryOtherByte(t *testing.T) {
	raw := []byte(`{"inputSchema":{"anyOf":[{"type":"string"}],"x-vendor":1}, "name" : "read",  "_meta":{"a/b":true}}`)
	got := string(renamed(raw, "files__read", "read"))
	want := `{"inputSchema":{"anyOf":[{"type":"string"}],"x-vendor":1}, "name" : "files__read",  "_meta":{"a/b":true}}`
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
}

func TestPageCursor(t *testing.T) {
	items := make([][]byte, 5)
	for i := range items {
		items[i] = []byte{byte('0' + i)}
	}
	var all []string
	cursor := ""
	for {
		pg, next, err := page(toRaw(items), cursor, 2)
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range pg {
			all = append(all, string(it))
		}
		if next == "" {
			break
		}
		cursor = next
	}
	if strings.Join(all, "") != "01234" {
		t.Fatalf("pages gave %q", all)
	}
	if _, _, err := page(toRaw(items), "garbage!", 2); err == nil {
		t.Fatal("invalid cursor accepted")
	}
}

func toRaw(items [][]byte) []json.RawMessage {
	out := make([]json.RawMessage, len(items))
	for i, it := range items {
		out[i] = it
	}
	return out
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
