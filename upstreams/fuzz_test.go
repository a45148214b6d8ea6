package upstreams

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/sigilcore/sigil-hub/internal/framing"
	"github.com/sigilcore/sigil-hub/internal/strictjson"
)

// FuzzRawFrame fuzzes the framing of raw params, the bytes Upstream.Call
// forwards. Stdio: the request frame is written from the params themselves
// (appendMessage) by framing.Writer, which compacts a value holding line
// breaks: for valid params it is exactly one line that splitMessage reads
// back as that request, with the params byte for byte (or, when they held
// line breaks, the same value on one line). Remote: rawParams.substitute
// splices the caller's exact bytes into mcp-go's encoded frame: a request
// or notification frame carrying a registered token becomes exactly the
// frame with the bytes in its place, and once released the token is no
// longer substituted; an arbitrary frame is returned unchanged unless its
// first token-like string is replaced by the registered bytes. Nothing
// panics. Seed corpus: testdata/fuzz/FuzzRawFrame.
func FuzzRawFrame(f *testing.F) {
	f.Add([]byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":"sigil-raw-fz-1"}`), []byte(`{"name":"echo","arguments":{"s":"<b>&"}}`))
	f.Add([]byte(`{"method":"m","params":{"sigil-raw-fz-1":true}}`), []byte("{\n  \"a\" : [1, 2e10, \"x\\ny\"]\r\n}"))
	f.Add([]byte(`"sigil-raw-fz-01" "sigil-raw-fz-1"`), []byte("{\"a\":\n"))
	f.Fuzz(func(t *testing.T, frame, raw []byte) {
		fuzzCheckStdioFrame(t, raw)

		r := newRawParams("fz")
		tok, release := r.add(raw)
		key := string(tok[1 : len(tok)-1])
		const reqHead, notifHead = `{"jsonrpc":"2.0","id":3,"method":"tools/call","params":`, `{"jsonrpc":"2.0","method":"notifications/x","params":`
		for _, tt := range []struct{ frame, want string }{
			{reqHead + string(tok) + `}`, reqHead + string(raw) + `}`},
			{notifHead + `{"` + key + `":true}}`, notifHead + string(raw) + `}`},
		} {
			got := r.substitute([]byte(tt.frame))
			if string(got) != tt.want {
				t.Fatalf("substitute(%q) = %q, want %q", tt.frame, got, tt.want)
			}
			if json.Valid(raw) && !json.Valid(got) {
				t.Fatalf("valid params %q gave an invalid frame %q", raw, got)
			}
		}

		fuzzCheckArbitrary(t, r, frame, raw)
		release()
		if got := r.substitute([]byte(reqHead + string(tok) + `}`)); string(got) != reqHead+string(tok)+`}` {
			t.Fatalf("released token still substituted: %q", got)
		}
		if got := r.substitute(frame); !bytes.Equal(got, frame) {
			t.Fatalf("with no token registered, substitute(%q) = %q", frame, got)
		}
	})
}

// fuzzCheckStdioFrame writes a request with params raw as stdioConn does
// and reads it back.
func fuzzCheckStdioFrame(t *testing.T, raw []byte) {
	t.Helper()
	var out bytes.Buffer
	w := framing.NewWriter(&out, nil)
	err := w.Write(appendMessage(nil, []byte("3"), "tools/call", raw))
	if !json.Valid(raw) {
		return // Upstream.Call refuses params that are not valid JSON
	}
	if err != nil {
		t.Fatalf("params %q: %v", raw, err)
	}
	line := out.Bytes()
	if bytes.Count(line, []byte("\n")) != 1 || line[len(line)-1] != '\n' || bytes.ContainsRune(line, '\r') {
		t.Fatalf("params %q gave a frame that is not one line: %q", raw, line)
	}
	if strictjson.Validate(raw, 64) != nil {
		return // a duplicate member, say: the upstream gets it as json.Valid accepts it
	}
	m, ok := splitMessage(line[:len(line)-1])
	if !ok || m.method != "tools/call" || string(m.id) != "3" {
		t.Fatalf("params %q: frame %q does not read back as the request (%v, %+v)", raw, line, ok, m)
	}
	want := bytes.Trim(raw, " \t\r\n")
	switch {
	case string(want) == "null":
		if m.params != nil {
			t.Fatalf("params null read back as %q", m.params)
		}
	case !bytes.ContainsAny(raw, "\r\n"):
		if !bytes.Equal(m.params, want) {
			t.Fatalf("params %q read back as %q", raw, m.params)
		}
	case !fuzzSameJSON(raw, m.params):
		t.Fatalf("params %q read back as %q: not the same value", raw, m.params)
	}
}

// fuzzCheckArbitrary: substitute returns frame itself, or frame with one
// token string (or a notification's {"token":true}) at the first occurrence
// of the token prefix replaced by c.
func fuzzCheckArbitrary(t *testing.T, r *rawParams, frame, c []byte) {
	t.Helper()
	out := r.substitute(frame)
	if bytes.Equal(out, frame) {
		return
	}
	i := bytes.Index(frame, r.prefix)
	if i < 0 {
		t.Fatalf("substitute changed a frame without a token: %q → %q", frame, out)
	}
	for _, s := range []int{i, i - 1} {
		if s < 0 || !bytes.HasPrefix(out, frame[:s]) || !bytes.HasPrefix(out[s:], c) {
			continue
		}
		e := len(frame) - (len(out) - s - len(c))
		if e < s || e > len(frame) || !bytes.Equal(out[s+len(c):], frame[e:]) {
			continue
		}
		if fuzzIsToken(string(frame[s:e]), string(r.prefix)) {
			return
		}
	}
	t.Fatalf("substitute(%q) = %q: not one token replaced by %q", frame, out, c)
}

// fuzzIsToken matches `"PREFIX<digits>"` and `{"PREFIX<digits>":true}`
// (prefix includes the opening quote).
func fuzzIsToken(s, prefix string) bool {
	if strings.HasPrefix(s, "{") {
		var ok bool
		if s, ok = strings.CutSuffix(s[1:], ":true}"); !ok {
			return false
		}
	}
	digits, ok := strings.CutPrefix(s, prefix)
	if !ok {
		return false
	}
	digits, ok = strings.CutSuffix(digits, `"`)
	return ok && digits != "" && strings.Trim(digits, "0123456789") == ""
}

// fuzzSameJSON reports whether a and b decode to the same value, numbers
// compared as literals.
func fuzzSameJSON(a, b []byte) bool {
	decode := func(p []byte) (any, error) {
		d := json.NewDecoder(bytes.NewReader(p))
		d.UseNumber()
		var v any
		err := d.Decode(&v)
		return v, err
	}
	va, errA := decode(a)
	vb, errB := decode(b)
	return errA == nil && errB == nil && reflect.DeepEqual(va, vb)
}
