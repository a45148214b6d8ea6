package front

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"testing"
)

// FuzzParseMessage checks the client framing (docs/faults.md cases 1–18):
// parseMessage never panics; the id it answers to is always usable, and when
// it accepts a message its id is a string or an integer and a result or error
// for it is valid JSON; the line reader over arbitrary bytes with a small cap
// never panics, always makes progress and never returns a line over the cap.
// Seed corpus: testdata/fuzz/FuzzParseMessage.
func FuzzParseMessage(f *testing.F) {
	for _, s := range []string{
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a__b","arguments":{"x":1}}}`,
		`{"jsonrpc":"2.0","id":"abc","result":{}}`,
		`{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":1}}`,
		`{"jsonrpc":"2.0","id":1.5,"method":"m"}`,
		`{"jsonrpc":"2.0","id":1,"ID":2,"method":"m"}`,
		"\xef\xbb\xbf{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}\r\n\n{\"jsonrpc\":\"2.0\"}",
	} {
		f.Add([]byte(s), uint8(16))
	}
	f.Fuzz(func(t *testing.T, data []byte, capSeed uint8) {
		fuzzCheckMessage(t, data)

		// The line reader: a cap from 1 to 64 bytes.
		max := 1 + int(capSeed)%64
		lr := newLineReader(bytes.NewReader(data), max)
		for calls := 0; ; calls++ {
			if calls > len(data)+1 {
				t.Fatalf("line reader made no progress after %d calls on %d bytes", calls, len(data))
			}
			line, err := lr.next()
			if errors.Is(err, errTooLarge) {
				continue
			}
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("unexpected error from a bytes.Reader: %v", err)
			}
			if len(line) > max {
				t.Fatalf("line of %d bytes returned with a cap of %d: %q", len(line), max, line)
			}
			if len(line) == 0 || bytes.ContainsAny(line, "\n") {
				t.Fatalf("bad line %q", line)
			}
			fuzzCheckMessage(t, line)
		}
	})
}

func fuzzCheckMessage(t *testing.T, line []byte) {
	t.Helper()
	m, id, rerr := parseMessage(line)
	// The answer id is either null or a valid id, whatever the input.
	if string(id) != "null" && !fuzzValidID(id) {
		t.Fatalf("answer id %q for %q is neither null nor a string or integer", id, line)
	}
	if rerr != nil {
		if b := encodeError(id, rerr); !json.Valid(b) {
			t.Fatalf("error answer is not valid JSON: %q", b)
		}
		return
	}
	if !json.Valid(line) {
		t.Fatalf("accepted invalid JSON %q", line)
	}
	if m.ID != nil {
		if !fuzzValidID(m.ID) {
			t.Fatalf("accepted id %q in %q", m.ID, line)
		}
		if !bytes.Equal(m.ID, id) {
			t.Fatalf("message id %q but answer id %q", m.ID, id)
		}
		if b := encodeResult(m.ID, json.RawMessage(`{}`)); !json.Valid(b) {
			t.Fatalf("result for id %q is not valid JSON: %q", m.ID, b)
		}
	}
	switch {
	case m.Method != "":
		if m.Params != nil && !bytes.HasPrefix(m.Params, []byte("{")) {
			t.Fatalf("accepted non-object params %q", m.Params)
		}
	case m.ID == nil:
		t.Fatalf("accepted a message with neither method nor id: %q", line)
	case (m.Result == nil) == (m.Error == nil):
		t.Fatalf("accepted a response without exactly one of result and error: %q", line)
	}
}

// fuzzValidID is an independent statement of MCP's id rule: a JSON string or
// an integer literal.
func fuzzValidID(raw json.RawMessage) bool {
	if !json.Valid(raw) {
		return false
	}
	var s string
	if json.Unmarshal(raw, &s) == nil && raw[0] == '"' {
		return true
	}
	return fuzzIntegerLiteral(raw)
}

// fuzzIntegerLiteral matches -?(0|[1-9][0-9]*): no fraction, no exponent.
func fuzzIntegerLiteral(b []byte) bool {
	b = bytes.TrimPrefix(b, []byte("-"))
	if len(b) == 0 || (b[0] == '0' && len(b) > 1) {
		return false
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
